//! Counts as CloudWatch metrics, in Embedded Metric Format: a JSON line on stdout that Lambda's
//! log agent turns into a metric, with no API call and no IAM grant. For an event an alarm must
//! see (pre-sign-up letting a sign-up on unchecked, or refusing every sign-up on a setting).

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::env::{ConfigError, Env};

/// The level metric lines carry. Lambda's log-level filter gives a JSON line without a valid
/// `level` and `timestamp` the level INFO, and drops it when the function's application log
/// level is WARN: the alarm would then see nothing. WARN lets them through at every level up
/// to WARN.
pub const METRIC_LEVEL: &str = "WARN";

/// Reads `METRICS_NAMESPACE` (`default` when unset) with CloudWatch's rules for a namespace:
/// printable ASCII, at most 255 characters, not AWS's own (`AWS/`).
pub fn namespace_from(env: &impl Env, default: &str) -> Result<String, ConfigError> {
    let namespace = env
        .non_empty("METRICS_NAMESPACE")
        .unwrap_or_else(|| default.to_owned());
    if namespace.len() > 255
        || !namespace.chars().all(|c| c.is_ascii_graphic() || c == ' ')
        || namespace.starts_with("AWS/")
    {
        return Err(ConfigError::invalid(
            "METRICS_NAMESPACE",
            "printable ASCII, at most 255 characters, not starting with AWS/",
        ));
    }
    Ok(namespace)
}

/// Prints one count of `name` in `namespace`, without dimensions, straight to stdout:
/// `println!` bypasses the tracing filter, so `AWS_LAMBDA_LOG_LEVEL` never silences it.
pub fn emit_count(namespace: &str, name: &str, count: u64) {
    println!("{}", count_line(namespace, name, count, SystemTime::now()));
}

/// The EMF document [`emit_count`] prints, stamped `at`.
pub fn count_line(namespace: &str, name: &str, count: u64, at: SystemTime) -> Value {
    let millis = at
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    let mut line = json!({
        "level": METRIC_LEVEL,
        "timestamp": rfc3339_millis(millis),
        "_aws": {"Timestamp": millis, "CloudWatchMetrics": [{
            "Namespace": namespace,
            "Dimensions": [[]],
            "Metrics": [{"Name": name, "Unit": "Count"}],
        }]},
    });
    line[name] = json!(count);
    line
}

/// `millis` since the epoch as an RFC 3339 UTC time (`2026-11-24T13:58:05.123Z`), the form
/// Lambda's log-level filter accepts.
pub fn rfc3339_millis(millis: u64) -> String {
    let secs = millis / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm), for days >= 0.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        millis % 1000
    )
}

#[cfg(test)]
mod tests {
    use std::{collections::HashMap, time::Duration};

    use super::*;

    #[test]
    fn rfc3339_of_known_instants() {
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_millis(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(
            rfc3339_millis(1_709_251_199_999),
            "2024-02-29T23:59:59.999Z"
        );
        assert_eq!(
            rfc3339_millis(1_795_528_685_123),
            "2026-11-24T13:58:05.123Z"
        );
    }

    #[test]
    fn a_count_line_is_emf_with_a_level_and_a_timestamp() {
        let at = UNIX_EPOCH + Duration::from_millis(1_795_528_685_123);
        let l = count_line("PreSignUp/prod", "HandleCheckFailedOpen", 1, at);
        assert_eq!(
            l["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "PreSignUp/prod"
        );
        assert_eq!(
            l["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"],
            "HandleCheckFailedOpen"
        );
        assert_eq!(l["HandleCheckFailedOpen"], 1);
        assert_eq!(l["level"], "WARN");
        assert_eq!(l["timestamp"], "2026-11-24T13:58:05.123Z");
        assert_eq!(l["_aws"]["Timestamp"], 1_795_528_685_123_u64);
        assert_eq!(rfc3339_millis(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn the_namespace_follows_cloudwatchs_rules() {
        let env = |v: &'static str| -> HashMap<&str, &str> {
            [("METRICS_NAMESPACE", v)].into_iter().collect()
        };
        assert_eq!(namespace_from(&env(""), "PreSignUp").unwrap(), "PreSignUp");
        assert_eq!(namespace_from(&env("A/b c"), "x").unwrap(), "A/b c");
        for bad in ["AWS/Lambda", "tab\there", "é"] {
            let e = namespace_from(&env(bad), "x").unwrap_err();
            assert_eq!(e.var(), "METRICS_NAMESPACE", "{bad}");
        }
    }
}
