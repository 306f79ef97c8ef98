//! Section 7: post-confirmation behind PgBouncer in transaction pooling, against a direct
//! burst past `max_connections`.

use std::fmt::{self, Write as _};

use super::Report;
use crate::{
    pooler::{ENVIRONMENTS, PER_ENVIRONMENT, Pooler, SERVER_POOL, Wave},
    stats::{median, pct},
};

impl Report {
    /// Section 7: behind a pooler.
    pub(super) fn pooler(&mut self, p: &Pooler) -> fmt::Result {
        let report = &mut self.body;
        let per_s = |w: &Wave| w.ok as f64 / w.secs;
        let signups = ENVIRONMENTS * PER_ENVIRONMENT;
        writeln!(
            report,
            "## 7. Behind a pooler: PgBouncer in transaction pooling (the local stand-in for RDS Proxy)\n"
        )?;
        writeln!(
            report,
            "{signups} sign-ups from {ENVIRONMENTS} environments ({PER_ENVIRONMENT} each, in turn), \
             each environment its own post-confirmation process with one connection. Server \
             connections: the peak count in `pg_stat_activity` for the burst's database.\n"
        )?;
        writeln!(
            report,
            "| path | ok | errors | of which past each environment's first | sign-ups/s | peak server connections | slowest answer ms (ok / error) |"
        )?;
        writeln!(report, "|---|---|---|---|---|---|---|")?;
        let o = &p.overflow;
        for (name, w) in [
            (
                format!("through PgBouncer, server pool {SERVER_POOL}"),
                &p.pooled,
            ),
            (
                format!("direct, `max_connections` = {}", o.max_connections),
                &o.wave,
            ),
        ] {
            writeln!(
                report,
                "| {name} | {} | {} | {} | {:.0} | {} | {:.0} / {:.0} |",
                w.ok,
                w.error_count(),
                w.errors_after_first,
                per_s(w),
                w.peak_server_connections,
                w.slowest_ok_ms,
                w.slowest_error_ms
            )?;
        }
        writeln!(report)?;
        if o.wave.errors.is_empty() {
            writeln!(report, "- The direct burst overflowed nobody.")?;
        }
        for (path, w) in [
            ("Through PgBouncer", &p.pooled),
            ("Direct overflow", &o.wave),
        ] {
            for (kind, n) in &w.errors {
                writeln!(
                    report,
                    "- {path}: {n} × `{kind}`, e.g. \"{}\"",
                    w.samples.get(kind).map_or("", String::as_str)
                )?;
            }
        }
        writeln!(
            report,
            "- After the direct burst: {} of {signups} rows; one drift-check (remediate): {}; then \
             {} of {signups} rows.\n",
            o.rows_after_burst, o.drift_status, o.rows_after_drift_check
        )?;
        let (pw, dw) = (&p.hop.pooled, &p.hop.direct);
        writeln!(
            report,
            "| post-confirmation | warm p50 ms | warm p99 ms | cold start p50 ms (spawn to answer) | init p50 ms |"
        )?;
        writeln!(report, "|---|---|---|---|---|")?;
        for (name, r) in [("through PgBouncer", pw), ("direct", dw)] {
            writeln!(
                report,
                "| {name} | {:.3} | {:.3} | {:.1} | {:.1} |",
                median(&r.warm_ms),
                pct(&r.warm_ms, 0.99),
                median(&r.cold_ms),
                median(&r.init_ms)
            )?;
        }
        writeln!(
            report,
            "\nStatement timeout without session state, the sign-up's insert timed alone (300 each, \
             taking turns, one warm connection):\n"
        )?;
        writeln!(report, "| style | path | p50 ms | p95 ms |")?;
        writeln!(report, "|---|---|---|---|")?;
        for t in &p.timeouts {
            writeln!(
                report,
                "| {} | {} | {:.3} | {:.3} |",
                t.style,
                t.route,
                median(&t.samples_ms),
                pct(&t.samples_ms, 0.95)
            )?;
        }
        writeln!(
            report,
            "\nBoth are one round trip (`BEGIN; SET LOCAL`, the statement and `COMMIT` are \
             pipelined); the difference is the transaction's own server work. `SET LOCAL` is kept: the server enforces it even when the environment \
             is frozen or killed mid-wait, where a client-side deadline never sends its cancel \
             request and the statement holds a pooled server connection for as long as the lock \
             lasts (`shared/src/db/stateless.rs`).\n"
        )?;
        let pooled_ok = p.pooled.error_count() == 0;
        self.target(
            format!(
                "{signups} sign-ups from {ENVIRONMENTS} environments through PgBouncer: 0 errors"
            ),
            pooled_ok,
            p.pooled.error_count().to_string(),
        );
        self.target(
            format!("... on at most {SERVER_POOL} server connections"),
            p.pooled.peak_server_connections <= SERVER_POOL as i64,
            p.pooled.peak_server_connections.to_string(),
        );
        let overflow_clear = o.wave.errors.keys().all(|k| k.starts_with("Retryable."))
            && o.wave.slowest_error_ms < 5000.0;
        self.target(
            "direct past max_connections: only retryable errors, each inside 5 s",
            overflow_clear,
            format!(
                "{} errors, slowest {:.0} ms",
                o.wave.error_count(),
                o.wave.slowest_error_ms
            ),
        );
        self.target(
            "... and after one drift-check nobody is lost",
            o.rows_after_drift_check == signups as i64,
            format!("{} of {signups}", o.rows_after_drift_check),
        );
        Ok(())
    }
}
