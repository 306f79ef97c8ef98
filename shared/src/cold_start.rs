//! Where a cold start's time goes: [`begin`] starts a clock as `main` starts, and each phase of
//! the cold path ([`mark`]) prints one debug line under the target `cold_start`, up to the end
//! of the first invocation ([`end`]). Each line carries the microseconds since `main` began,
//! and the CPU time and minor page faults of the process so far, which a busy machine does
//! not inflate the way it inflates elapsed time. Off unless the log level lets the lines
//! through (`AWS_LAMBDA_LOG_LEVEL=info,cold_start=debug`); the bench reads them to break the
//! first response down phase by phase.

use std::{
    sync::{
        OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    time::{Instant, SystemTime, UNIX_EPOCH},
};

/// When `main` began: the monotonic clock, the wall clock (the process's start as another
/// process can see it), and the CPU time and page faults spent before it (exec, the dynamic
/// linker, Rust's start), read only when the lines are asked for.
struct Origin {
    at: Instant,
    wall: SystemTime,
    before_main: Option<Usage>,
}

static ORIGIN: OnceLock<Origin> = OnceLock::new();
/// Set once the first invocation has been handled: later marks would time a warm path.
static ENDED: AtomicBool = AtomicBool::new(false);

/// Starts the clock. The first thing `main` does, before the log level is known: whether to
/// read the CPU time already spent is decided from the environment's log settings alone.
pub fn begin() {
    ORIGIN.get_or_init(|| {
        let asked = ["AWS_LAMBDA_LOG_LEVEL", "RUST_LOG"]
            .iter()
            .any(|v| std::env::var(v).is_ok_and(|l| l.contains("cold_start")));
        Origin {
            at: Instant::now(),
            wall: SystemTime::now(),
            before_main: asked.then(Usage::now).flatten(),
        }
    });
}

/// Records that `phase` has just ended. Each line also gives the wall-clock time `main` began,
/// so a caller that noted when it started the process can tell how long the process took to
/// reach `main`.
pub fn mark(phase: &'static str) {
    if ENDED.load(Ordering::Relaxed)
        || !tracing::enabled!(target: "cold_start", tracing::Level::DEBUG)
    {
        return;
    }
    let Some(origin) = ORIGIN.get() else {
        return;
    };
    let us = origin.at.elapsed().as_micros() as u64;
    let main_unix_us = origin
        .wall
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    let usage = Usage::now().unwrap_or_default();
    let before_main = origin.before_main.unwrap_or_default();
    tracing::debug!(
        target: "cold_start",
        phase,
        us,
        cpu_us = usage.cpu_us,
        minflt = usage.minflt,
        main_unix_us,
        main_cpu_us = before_main.cpu_us,
        main_minflt = before_main.minflt,
        "cold start"
    );
}

/// When the state was built ([`initialised`]): the end of the init phase.
static INITIALISED: OnceLock<Instant> = OnceLock::new();

/// Longest wait between the end of init and the first event for which the event is taken to
/// have been waiting on the init (an on-demand cold start: the runtime's first poll finds it
/// already queued). A longer wait means Lambda initialised the environment ahead of any event
/// (proactive initialisation, provisioned concurrency): the caller's wait began after init.
pub const QUEUED_EVENT_GAP: std::time::Duration = std::time::Duration::from_secs(1);

/// Records the end of the init phase (called by [`crate::entry::init`]).
pub fn initialised() {
    INITIALISED.get_or_init(Instant::now);
}

/// How much of a caller's wait the cold start has used when the first event arrives: the time
/// since [`begin`] when that event was queued behind the init phase, which Lambda's deadline
/// for the invocation does not count (Cognito waits five seconds from its own call). `None`
/// after [`end`], without [`begin`], or when the event came more than [`QUEUED_EVENT_GAP`]
/// after init ended (an environment initialised ahead of its events).
pub fn init_elapsed() -> Option<std::time::Duration> {
    if ENDED.load(Ordering::Relaxed) {
        return None;
    }
    let origin = ORIGIN.get()?;
    init_cost(origin.at, INITIALISED.get().copied(), Instant::now())
}

/// [`init_elapsed`] for a process that began at `began`, ended init at `initialised` (`None`:
/// not recorded, so counted in full) and takes its first event at `now`.
fn init_cost(
    began: Instant,
    initialised: Option<Instant>,
    now: Instant,
) -> Option<std::time::Duration> {
    match initialised {
        Some(done) if now.saturating_duration_since(done) > QUEUED_EVENT_GAP => None,
        _ => Some(now.saturating_duration_since(began)),
    }
}

/// Records the last phase of the first invocation; every later [`mark`] is ignored.
pub fn end(phase: &'static str) {
    mark(phase);
    ENDED.store(true, Ordering::Relaxed);
}

/// CPU time and minor page faults of this thread so far (the functions run on one thread).
#[derive(Clone, Copy, Default)]
struct Usage {
    cpu_us: u64,
    minflt: u64,
}

impl Usage {
    fn now() -> Option<Usage> {
        // schedstat's first field: time on the CPU in ns, from the scheduler's own accounting.
        let schedstat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
        let cpu_ns: u64 = schedstat.split_whitespace().next()?.parse().ok()?;
        // stat's 10th field, counted after the command name (which may hold spaces).
        let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
        let after_name = &stat[stat.rfind(')')? + 1..];
        let minflt = after_name.split_whitespace().nth(7)?.parse().ok()?;
        Some(Usage {
            cpu_us: cpu_ns / 1000,
            minflt,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn an_event_queued_behind_init_is_charged_the_init_one_that_came_later_is_not() {
        let began = Instant::now();
        let done = began + Duration::from_millis(1800);
        // On-demand: the first poll finds the event waiting; the caller waited out the init.
        let queued = done + Duration::from_millis(20);
        assert_eq!(
            init_cost(began, Some(done), queued),
            Some(Duration::from_millis(1820))
        );
        // Initialised ahead of its events: the caller's wait began after the init.
        let later = done + QUEUED_EVENT_GAP + Duration::from_millis(1);
        assert_eq!(init_cost(began, Some(done), later), None);
        // Init's end not recorded: counted in full, the cautious reading.
        assert_eq!(
            init_cost(began, None, later),
            Some(later.duration_since(began))
        );
    }
}
