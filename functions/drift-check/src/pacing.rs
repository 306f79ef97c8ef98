//! Pacing of `ListUsers`: Cognito's `UserList` quota (30 requests a second) is shared by every
//! caller in the account and region, so drift-check stays under a configured ceiling, and slows
//! down further (and waits) when Cognito answers `TooManyRequestsException` anyway.

use std::time::{Duration, Instant};

/// Cognito's `UserList` quota per account and region; a ceiling above it means nothing.
pub const QUOTA_PER_SECOND: f64 = 30.0;

/// The ceiling when `DRIFT_LIST_USERS_PER_SECOND` is unset: a third of the quota, leaving the
/// rest to the account's other callers (consoles, support tools).
pub const DEFAULT_PER_SECOND: f64 = 10.0;

/// After a throttle the interval doubles, up to this many times the configured one.
const MAX_SLOWDOWN: u32 = 8;

/// Spaces calls at least `1 / rate` apart, from the start of one call to the start of the next.
#[derive(Debug)]
pub struct Pacer {
    base: Duration,
    interval: Duration,
    next: Option<Instant>,
}

impl Pacer {
    pub fn new(per_second: f64) -> Self {
        let base = Duration::from_secs_f64(1.0 / per_second);
        Self {
            base,
            interval: base,
            next: None,
        }
    }

    /// When the next call may start, seen from `now`.
    pub fn next_slot(&self, now: Instant) -> Instant {
        self.next.map_or(now, |n| n.max(now))
    }

    /// Takes the slot at `at` (from [`Pacer::next_slot`]): the one after is an interval later.
    pub fn take(&mut self, at: Instant) {
        self.next = Some(at + self.interval);
    }

    /// Cognito throttled us: halve the rate for the rest of the run, down to a floor.
    pub fn slow_down(&mut self) {
        self.interval = (self.interval * 2).min(self.base * MAX_SLOWDOWN);
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }
}

/// How long to wait before retrying a throttled page, after `attempt` throttles in a row
/// (0 for the first): 0.5 s, 1 s, 2 s, ... up to 8 s. The SDK has already retried the call
/// with its own short backoff by then.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(500)
        .saturating_mul(1 << attempt.min(4))
        .min(Duration::from_secs(8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_an_interval_apart_and_never_in_the_past() {
        let t0 = Instant::now();
        let mut p = Pacer::new(4.0);
        assert_eq!(p.next_slot(t0), t0, "the first call goes at once");
        p.take(t0);
        assert_eq!(p.next_slot(t0), t0 + Duration::from_millis(250));
        // A caller that comes late is not owed a burst of calls to catch up.
        let late = t0 + Duration::from_secs(3);
        assert_eq!(p.next_slot(late), late);
        p.take(late);
        assert_eq!(p.next_slot(late), late + Duration::from_millis(250));
    }

    #[test]
    fn throttles_slow_the_pace_down_to_a_floor() {
        let mut p = Pacer::new(10.0);
        p.slow_down();
        assert_eq!(p.interval(), Duration::from_millis(200));
        for _ in 0..10 {
            p.slow_down();
        }
        assert_eq!(p.interval(), Duration::from_millis(800));
    }

    #[test]
    fn backoff_doubles_to_a_cap() {
        let waits: Vec<u64> = (0..7).map(|a| backoff(a).as_millis() as u64).collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 8000, 8000, 8000]);
    }
}
