//! The findings as CloudWatch metrics, in Embedded Metric Format: one line per kind and one
//! total of the kinds that are drift, which the alarm watches.

use std::{
    collections::BTreeMap,
    time::{SystemTime, UNIX_EPOCH},
};

use serde_json::{Value, json};

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
}
