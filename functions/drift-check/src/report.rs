//! A run's record: the runs and findings tables, one log line per finding, the summary the
//! function returns, and CloudWatch Embedded Metric Format counts an alarm can watch.
//!
//! [`findings`] holds the kinds of difference and what was done about each; [`run`] the run's
//! bookkeeping, from its row in `drift_runs` to its [`Summary`]; [`metrics`] the metric lines.

pub mod findings;
pub mod metrics;
pub mod run;

pub use findings::{Action, ActionClass, Finding, Kind, Skip};
pub use metrics::{METRIC_LEVEL, capacity_lines, emit_capacity, emit_metrics, metric_lines};
pub use run::{PassProgress, Run, RunStatus, Summary, expire_audit, remediation_paused};

/// Writes a vocabulary enum as its SQL/JSON spelling.
macro_rules! display_as_str {
    ($t:ty) => {
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use display_as_str;
