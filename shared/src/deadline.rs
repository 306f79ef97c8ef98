//! The time one invocation has, which every function budgets its work against: Lambda's
//! deadline for the invocation, read once as the event arrives ([`Deadline::of`]).
//!
//! Lambda's deadline is always ahead of the event it comes with. A local Runtime API may hand
//! out one that is not: cargo-lambda 1.9.2's `cargo lambda watch` sends
//! `Lambda-Runtime-Deadline-Ms: 600000` (ten minutes after 1970), and a missing header reads
//! as 1970 itself. Such a deadline would leave no time at all before the work starts, so it is
//! read as the function's own budget from now instead (each function passes the budget it is
//! configured with).

use std::time::{Duration, Instant, SystemTime};

use lambda_runtime::Context;

/// Where an invocation's [`Deadline`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Lambda's own deadline for the invocation, still ahead when the event arrived.
    Runtime,
    /// The function's configured budget from the event's arrival: the runtime's deadline had
    /// already passed (or was missing) when the event arrived, which only a local Runtime API
    /// does.
    Budget,
}

/// When the current invocation must be done, fixed once as the event arrives.
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    at: Instant,
    wall: SystemTime,
    source: Source,
}

impl Deadline {
    /// The deadline for the invocation `context` describes; `budget` is the function's own
    /// limit, used in place of a runtime deadline already past (or missing) on arrival. Call
    /// it first thing in the handler: the time spent before counts against the invocation.
    pub fn of(context: &Context, budget: Duration) -> Self {
        let deadline = Self::from_runtime(
            context.deadline(),
            budget,
            SystemTime::now(),
            Instant::now(),
        );
        if deadline.source == Source::Budget {
            tracing::debug!(
                budget_ms = budget.as_millis() as u64,
                "the runtime's deadline had passed as the event arrived (a local Runtime API): the function's own budget applies"
            );
        }
        deadline
    }

    /// [`Deadline::of`] with the clocks given: `runtime` is the deadline the runtime sent,
    /// `now` and `now_instant` the same moment on the wall and monotonic clocks.
    pub fn from_runtime(
        runtime: SystemTime,
        budget: Duration,
        now: SystemTime,
        now_instant: Instant,
    ) -> Self {
        match runtime.duration_since(now) {
            Ok(left) if !left.is_zero() => Self {
                at: now_instant + left,
                wall: runtime,
                source: Source::Runtime,
            },
            _ => Self {
                at: now_instant + budget,
                wall: now + budget,
                source: Source::Budget,
            },
        }
    }

    /// How long until the deadline (zero once it has passed).
    pub fn left(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// The deadline on the monotonic clock.
    pub fn instant(&self) -> Instant {
        self.at
    }

    /// The deadline on the wall clock, for code that takes Lambda's `SystemTime` deadline.
    pub fn wall(&self) -> SystemTime {
        self.wall
    }

    /// Whether the deadline is Lambda's own or the function's budget.
    pub fn source(&self) -> Source {
        self.source
    }
}

/// How long until the invocation's deadline, zero once it has passed. A runtime deadline
/// already past on arrival reads as zero here: prefer [`Deadline::of`] with the function's
/// budget.
pub fn time_left(context: &Context) -> Duration {
    context
        .deadline()
        .duration_since(SystemTime::now())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUDGET: Duration = Duration::from_millis(4500);

    fn at(now: SystemTime, runtime: SystemTime) -> (Deadline, Instant) {
        let instant = Instant::now();
        (
            Deadline::from_runtime(runtime, BUDGET, now, instant),
            instant,
        )
    }

    #[test]
    fn a_deadline_ahead_is_lambdas_own() {
        let now = SystemTime::now();
        let (d, instant) = at(now, now + Duration::from_secs(3));
        assert_eq!(d.source(), Source::Runtime);
        assert_eq!(d.instant(), instant + Duration::from_secs(3));
        assert_eq!(d.wall(), now + Duration::from_secs(3));
    }

    #[test]
    fn a_deadline_ahead_but_past_the_budget_is_still_lambdas_own() {
        // The budget is a fallback, not a cap: each function caps its own work.
        let now = SystemTime::now();
        let (d, instant) = at(now, now + Duration::from_secs(900));
        assert_eq!(d.source(), Source::Runtime);
        assert_eq!(d.instant(), instant + Duration::from_secs(900));
    }

    #[test]
    fn cargo_lambda_watchs_deadline_reads_as_the_budget() {
        // cargo-lambda 1.9.2's Runtime API: `lambda-runtime-deadline-ms: 600000`.
        let sent = SystemTime::UNIX_EPOCH + Duration::from_millis(600_000);
        let now = SystemTime::now();
        let (d, instant) = at(now, sent);
        assert_eq!(d.source(), Source::Budget);
        assert_eq!(d.instant(), instant + BUDGET);
        assert_eq!(d.wall(), now + BUDGET);
        assert!(!d.left().is_zero(), "{d:?}");
    }

    #[test]
    fn a_missing_deadline_reads_as_the_budget() {
        // lambda_runtime reads a missing header as 0 ms: 1970.
        let (d, instant) = at(SystemTime::now(), SystemTime::UNIX_EPOCH);
        assert_eq!(d.source(), Source::Budget);
        assert_eq!(d.instant(), instant + BUDGET);
    }

    #[test]
    fn a_deadline_exactly_now_reads_as_the_budget() {
        let now = SystemTime::now();
        let (d, _) = at(now, now);
        assert_eq!(d.source(), Source::Budget);
    }

    #[test]
    fn time_left_reads_a_past_deadline_as_zero() {
        let mut context = Context::default();
        context.deadline = 600_000;
        assert_eq!(time_left(&context), Duration::ZERO);
        let d = Deadline::of(&context, BUDGET);
        assert_eq!(d.source(), Source::Budget);
        assert!(d.left() > Duration::ZERO);
    }
}
