//! Summaries of the samples and the units the report prints them in.

use std::time::Duration;

/// The `p` quantile (0 to 1) by nearest rank; NaN when there are no samples, so an empty row
/// reads as such rather than as zero.
pub fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s[((s.len() as f64 - 1.0) * p).round() as usize]
}

pub fn median(v: &[f64]) -> f64 {
    pct(v, 0.5)
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// KiB, as /proc reports memory, in MiB.
pub fn kib_to_mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

pub fn bytes_to_mib(bytes: u64) -> f64 {
    bytes as f64 / 1048576.0
}
