//! JSON log lines for CloudWatch. The Lambda runtime opens a span carrying `requestId` around
//! each invocation; printing the current span puts the request id on every line.

use tracing_subscriber::{
    filter::{LevelFilter, Targets},
    layer::SubscriberExt,
    util::SubscriberInitExt,
};

/// Installs the global subscriber. The level comes from `AWS_LAMBDA_LOG_LEVEL` (Lambda's
/// advanced logging controls), else `RUST_LOG`, else `info`.
pub fn init() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_default();
    let filter = filter(&level);
    // A second init (tests calling it twice) keeps the first subscriber; that is fine.
    let _ = tracing_subscriber::fmt()
        .json()
        .with_max_level(LevelFilter::TRACE)
        .with_target(false)
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_writer(std::io::stdout)
        .finish()
        .with(filter)
        .try_init();
}

/// A level (`info`, `DEBUG`) or per-target levels (`info,cold_start=debug`); anything else is
/// `info`. Targets rather than `EnvFilter`: the same syntax for what Lambda sets, without the
/// regex engine `EnvFilter` links for its span and field filters (some 470 KB of binary).
fn filter(level: &str) -> Targets {
    // Blank directives dropped and each trimmed, as `EnvFilter` reads them: `Targets` would
    // read an empty one as "error" (so `info,` would mean errors only) and keep the spaces of
    // `info, cold_start=debug` in the target's name.
    let level = level
        .split(',')
        .map(|d| match d.trim().to_ascii_lowercase().as_str() {
            // Lambda's highest level; read as a target name it would silence everything.
            "fatal" => "error".to_owned(),
            other => other.to_owned(),
        })
        .filter(|d| !d.is_empty())
        .collect::<Vec<_>>()
        .join(",");
    if level.is_empty() {
        return Targets::new().with_default(LevelFilter::INFO);
    }
    level
        .parse()
        .unwrap_or_else(|_| Targets::new().with_default(LevelFilter::INFO))
}

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::*;

    fn enabled(filter: &Targets, target: &str, level: Level) -> bool {
        filter.would_enable(target, &level)
    }

    #[test]
    fn reads_what_lambda_and_rust_log_set() {
        let f = filter("DEBUG");
        assert!(enabled(&f, "shared::db", Level::DEBUG));
        assert!(!enabled(&f, "shared::db", Level::TRACE));

        let f = filter("");
        assert!(enabled(&f, "post_confirmation", Level::INFO));
        assert!(!enabled(&f, "post_confirmation", Level::DEBUG));

        let f = filter("info,cold_start=debug");
        assert!(enabled(&f, "cold_start", Level::DEBUG));
        assert!(!enabled(&f, "shared::db", Level::DEBUG));
        assert!(enabled(&f, "shared::db", Level::WARN));

        let f = filter("warn");
        assert!(!enabled(&f, "shared::db", Level::INFO));

        for spelled in ["info,", ",info", "info, cold_start=debug", " INFO ,, "] {
            let f = filter(spelled);
            assert!(enabled(&f, "shared::db", Level::INFO), "{spelled:?}");
            assert!(!enabled(&f, "shared::db", Level::DEBUG), "{spelled:?}");
        }
        assert!(enabled(
            &filter("info, cold_start=debug"),
            "cold_start",
            Level::DEBUG
        ));

        let f = filter("FATAL");
        assert!(enabled(&f, "shared::db", Level::ERROR));
        assert!(!enabled(&f, "shared::db", Level::WARN));
    }

    #[test]
    fn a_value_it_cannot_read_is_info() {
        let f = filter("info,cold_start=verbose");
        assert!(enabled(&f, "any", Level::INFO));
        assert!(!enabled(&f, "any", Level::DEBUG));
    }
}
