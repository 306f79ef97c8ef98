//! Which of two requests for one row is the newer.

use std::time::SystemTime;

/// Whether a request sent at `sent` is older than the newest one the row has taken.
/// EventBridge stamps events to the whole second while a direct request is stamped on
/// arrival to the microsecond, so both are compared to the second: a request in the same
/// second as the newest is taken (the later arrival wins), and only one from an earlier
/// second is stale. A newer request is never dropped.
pub fn is_stale(sent: Option<SystemTime>, newest: Option<SystemTime>) -> bool {
    let second = |t: SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    };
    matches!((sent, newest), (Some(s), Some(n)) if second(s) < second(n))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_request_from_the_same_second_is_never_stale() {
        let at = |ms: u64| Some(std::time::UNIX_EPOCH + Duration::from_millis(ms));
        // A direct request at 58.317 s, then an EventBridge event stamped 58 s: the event is
        // the newer one and must be taken.
        assert!(!is_stale(at(58_000), at(58_317)));
        assert!(is_stale(at(57_999), at(58_317)));
        assert!(!is_stale(at(59_000), at(58_317)));
        assert!(!is_stale(None, at(58_317)));
        assert!(!is_stale(at(58_000), None));
    }
}
