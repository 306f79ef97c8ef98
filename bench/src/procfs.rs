//! What /proc says about a function process (or the driver's own thread): peak memory and
//! CPU time.

/// The process's peak resident set (VmHWM) in KiB; 0 if it cannot be read.
pub fn peak_rss_kb(pid: Option<u32>) -> u64 {
    let Some(pid) = pid else { return 0 };
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(str::to_owned)
        })
        .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// The first field of a schedstat file: the task's time on the CPU, in nanoseconds, from the
/// scheduler's own accounting (not clock ticks).
fn schedstat_ns(path: impl AsRef<std::path::Path>) -> Option<u64> {
    std::fs::read_to_string(path)
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// CPU time the calling thread has used so far. Its runtime is single-threaded, so this is all
/// the work of the loop it runs, the Postgres connection task included.
pub fn thread_cpu_ns() -> u64 {
    schedstat_ns("/proc/thread-self/schedstat").unwrap_or(0)
}

/// CPU time the process has used so far, all threads.
pub fn cpu_ns(pid: Option<u32>) -> u64 {
    let Some(pid) = pid else { return 0 };
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(|t| schedstat_ns(t.ok()?.path().join("schedstat")))
        .sum()
}
