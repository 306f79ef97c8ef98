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

/// The budget a custom resource's function (pool-trigger, cfn-responder, schema-migrations)
/// reads a runtime deadline already past as ([`Deadline::of`]; only a local Runtime API, such
/// as `cargo lambda watch`, hands one out): ample for a local migration run or a pool's
/// update, short enough that a local run that hangs is answered FAILED within minutes.
/// Deployed, Lambda's deadline (the function's `Timeout`) always applies.
pub const LOCAL_CUSTOM_RESOURCE_BUDGET: Duration = Duration::from_secs(120);

/// How long Cognito waits for a trigger's answer, counted from its call: on a cold start this
/// includes the init phase (the secret fetch and the connection), which Lambda's deadline for
/// the invocation does not.
pub const COGNITO_WAIT: Duration = Duration::from_secs(5);

/// Kept back from [`COGNITO_WAIT`] on a cold start for what the process cannot time itself:
/// the sandbox and runtime starting before `main`, and the answer's way back to Cognito.
pub const COLD_START_MARGIN: Duration = Duration::from_millis(500);

impl Deadline {
    /// The deadline brought forward, on the first invocation of an execution environment, so
    /// the answer reaches a caller that waits `caller_wait` from its call: at most
    /// `caller_wait - init - COLD_START_MARGIN` from now, where `init` is the time since `main`
    /// began ([`crate::cold_start::init_elapsed`], `None` when warm: then unchanged).
    pub fn within_caller_wait(self, caller_wait: Duration, init: Option<Duration>) -> Self {
        self.within_caller_wait_at(caller_wait, init, Instant::now())
    }

    /// [`Deadline::within_caller_wait`] at the moment `now`.
    pub fn within_caller_wait_at(
        self,
        caller_wait: Duration,
        init: Option<Duration>,
        now: Instant,
    ) -> Self {
        let Some(init) = init else {
            return self;
        };
        let left = caller_wait
            .saturating_sub(init)
            .saturating_sub(COLD_START_MARGIN);
        let at = self.at.min(now + left);
        Self {
            at,
            wall: self.wall - self.at.duration_since(at),
            source: self.source,
        }
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
    fn a_cold_start_leaves_cognitos_wait_less_init_and_the_margin() {
        let now = SystemTime::now();
        let (d, instant) = at(now, now + Duration::from_secs(3));
        // Init took 1.8 s of Cognito's 5: 5 - 1.8 - 0.5 = 2.7 s left, before Lambda's 3 s.
        let cold =
            d.within_caller_wait_at(COGNITO_WAIT, Some(Duration::from_millis(1800)), instant);
        assert_eq!(cold.instant(), instant + Duration::from_millis(2700));
        assert_eq!(cold.wall(), now + Duration::from_millis(2700));
        assert_eq!(cold.source(), Source::Runtime);
        // A quick init leaves Lambda's deadline the earlier one: unchanged.
        let quick =
            d.within_caller_wait_at(COGNITO_WAIT, Some(Duration::from_millis(100)), instant);
        assert_eq!(quick.instant(), instant + Duration::from_secs(3));
        // Init past the whole wait: no time left, not an underflow.
        let late = d.within_caller_wait_at(COGNITO_WAIT, Some(Duration::from_secs(6)), instant);
        assert_eq!(late.instant(), instant);
        // Warm: unchanged.
        let warm = d.within_caller_wait_at(COGNITO_WAIT, None, instant);
        assert_eq!(warm.instant(), instant + Duration::from_secs(3));
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
