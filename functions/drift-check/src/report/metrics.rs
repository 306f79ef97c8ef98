//! The findings as CloudWatch metrics, in Embedded Metric Format: one line per kind and one
//! total of the kinds that are drift, which the alarm watches.

use std::{
    collections::BTreeMap,
    time::{SystemTime, UNIX_EPOCH},
};

use serde_json::{Value, json};

use ingress::capacity::{GroupUse, whole_percent};
use shared::metrics::rfc3339_millis;

use crate::report::Kind;

/// CloudWatch Embedded Metric Format: one line per kind (dimension `Kind`) and one total of
/// the drift kinds (the alarm's metric: allowlisted rules are not drift), printed straight to
/// stdout, where Lambda's log agent turns them into metrics. `println!` bypasses the tracing
/// filter, so `AWS_LAMBDA_LOG_LEVEL` never silences them in the process.
pub fn emit_metrics(counts: &BTreeMap<Kind, u64>, namespace: &str) {
    for line in metric_lines(counts, namespace, SystemTime::now()) {
        println!("{line}");
    }
}

/// The level metric lines carry. Lambda's log-level filter gives a JSON line without a valid
/// `level` and `timestamp` the level INFO, and drops it when the function's application log
/// level is WARN (which docs/local-development.md suggests for a quiet log): the drift alarm would then see
/// nothing. WARN lets them through at every level up to WARN.
pub const METRIC_LEVEL: &str = "WARN";

/// The EMF documents [`emit_metrics`] prints, stamped `at`.
pub fn metric_lines(counts: &BTreeMap<Kind, u64>, namespace: &str, at: SystemTime) -> Vec<Value> {
    let since_epoch = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let millis = since_epoch.as_millis() as u64;
    let timestamp = rfc3339_millis(millis);
    let line = |dimensions: Value, fields: Value| {
        let mut doc = json!({
            "level": METRIC_LEVEL,
            "timestamp": timestamp,
            "_aws": {"Timestamp": millis, "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": dimensions,
                "Metrics": [{"Name": "Findings", "Unit": "Count"}],
            }]},
        });
        if let (Value::Object(doc), Value::Object(fields)) = (&mut doc, fields) {
            doc.extend(fields);
        }
        doc
    };
    let mut lines: Vec<Value> = counts
        .iter()
        .map(|(kind, n)| line(json!([["Kind"]]), json!({"Kind": kind, "Findings": n})))
        .collect();
    let total: u64 = counts
        .iter()
        .filter(|(kind, _)| kind.is_drift())
        .map(|(_, n)| n)
        .sum();
    lines.push(line(json!([[]]), json!({"Findings": total})));
    lines
}

/// The managed groups' use against the quota, printed like [`emit_metrics`]: one line per group
/// (`GroupRulesUsedPercent`, dimension `SecurityGroupId`) and one of the groups as a whole
/// (`ManagedRulesUsedPercent`, no dimension), which the capacity alarm watches, only when
/// `whole`: the run read every managed group (a run of one group, or one cut short, would
/// show that group alone as the whole). Nothing when the run read no group.
pub fn emit_capacity(uses: &[GroupUse], quota: usize, namespace: &str, whole: bool) {
    for line in capacity_lines(uses, quota, namespace, SystemTime::now(), whole) {
        println!("{line}");
    }
}

/// The EMF documents [`emit_capacity`] prints, stamped `at`.
pub fn capacity_lines(
    uses: &[GroupUse],
    quota: usize,
    namespace: &str,
    at: SystemTime,
    whole: bool,
) -> Vec<Value> {
    if uses.is_empty() {
        return Vec::new();
    }
    let millis = at
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    let timestamp = rfc3339_millis(millis);
    let line = |dimensions: Value, name: &str, fields: Value| {
        let mut doc = json!({
            "level": METRIC_LEVEL,
            "timestamp": timestamp,
            "_aws": {"Timestamp": millis, "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": dimensions,
                "Metrics": [{"Name": name, "Unit": "Percent"}],
            }]},
        });
        if let (Value::Object(doc), Value::Object(fields)) = (&mut doc, fields) {
            doc.extend(fields);
        }
        doc
    };
    let mut lines: Vec<Value> = uses
        .iter()
        .map(|u| {
            line(
                json!([["SecurityGroupId"]]),
                "GroupRulesUsedPercent",
                json!({"SecurityGroupId": u.group, "GroupRulesUsedPercent": u.percent(quota),
                       "ipv4_rules": u.ipv4_rules, "ipv6_rules": u.ipv6_rules, "quota": quota}),
            )
        })
        .collect();
    if whole {
        lines.push(line(
            json!([[]]),
            "ManagedRulesUsedPercent",
            json!({"ManagedRulesUsedPercent": whole_percent(uses, quota), "groups": uses.len(),
                   "quota": quota}),
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn metric_lines_carry_the_namespace_a_level_and_a_timestamp() {
        let counts = BTreeMap::from([(Kind::Unexpected, 2), (Kind::Allowed, 1)]);
        let at = UNIX_EPOCH + Duration::from_millis(1_795_528_685_123);
        let lines = metric_lines(&counts, "DriftCheck/prod", at);
        assert_eq!(lines.len(), 3);
        for l in &lines {
            assert_eq!(
                l["_aws"]["CloudWatchMetrics"][0]["Namespace"],
                "DriftCheck/prod"
            );
            assert_eq!(l["level"], "WARN");
            assert_eq!(l["timestamp"], "2026-11-24T13:58:05.123Z");
            assert_eq!(l["_aws"]["Timestamp"], 1_795_528_685_123_u64);
        }
        let total = lines.last().unwrap();
        assert_eq!(total["Findings"], 2, "allowlisted rules are not drift");
        assert!(total.get("Kind").is_none());
    }

    #[test]
    fn capacity_lines_give_each_group_and_the_whole_against_the_quota() {
        let uses = [
            GroupUse {
                group: "sg-0aaaaaaa".into(),
                ipv4_rules: 48,
                ipv6_rules: 2,
            },
            GroupUse {
                group: "sg-0bbbbbbb".into(),
                ipv4_rules: 12,
                ipv6_rules: 0,
            },
        ];
        let lines = capacity_lines(&uses, 60, "DriftCheck/prod", UNIX_EPOCH, true);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["SecurityGroupId"], "sg-0aaaaaaa");
        assert_eq!(lines[0]["GroupRulesUsedPercent"], 80.0);
        assert_eq!(
            lines[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["SecurityGroupId"]])
        );
        assert_eq!(lines[1]["GroupRulesUsedPercent"], 20.0);
        assert_eq!(lines[2]["ManagedRulesUsedPercent"], 50.0);
        assert_eq!(
            lines[2]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([[]])
        );
        for l in &lines {
            assert_eq!(l["level"], "WARN");
            assert_eq!(
                l["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"],
                "Percent"
            );
        }
        assert!(capacity_lines(&[], 60, "ns", UNIX_EPOCH, true).is_empty());
        // Part of the groups only (one group's run, or a run cut short): no whole to give.
        let part = capacity_lines(&uses[..1], 60, "ns", UNIX_EPOCH, false);
        assert_eq!(part.len(), 1);
        assert!(part[0].get("ManagedRulesUsedPercent").is_none());
    }
}
