//! Section 6: sg-ip-update's warm IP moves and drift-check's passes against moto.

use std::fmt::{self, Write as _};

use serde_json::json;

use super::Report;
use crate::{
    drift_check::{DriftCheck, DriftOutcome},
    sg_ip_update::SgIpUpdate,
    stats::{kib_to_mib, median, pct},
};

impl Report {
    /// Section 6, first part: sg-ip-update's warm IP moves.
    pub(super) fn sg_ip_update(&mut self, sg: &SgIpUpdate) -> fmt::Result {
        let report = &mut self.body;
        writeln!(report, "## 6. sg-ip-update and drift-check against moto\n")?;
        writeln!(
            report,
            "- sg-ip-update, 200 warm IP moves (each a DescribeSecurityGroupRules and a ModifySecurityGroupRules): \
             p50 {:.2} ms, p99 {:.2} ms, {} errors.\n",
            median(&sg.warm_ms),
            pct(&sg.warm_ms, 0.99),
            sg.errors
        )?;
        Ok(())
    }

    /// Section 6, second part: drift-check's passes by pool size.
    pub(super) fn drift_check(&mut self, d: &DriftCheck) -> fmt::Result {
        let orphans = d.orphans;
        writeln!(
            self.body,
            "The pool holds confirmed users, each with a row in `users` except one in a thousand (lost \
             sign-ups, found as `missing_user`); the {orphans} rows the sections above wrote have no user in \
             the pool (`orphan_user`: all counted, the first 1,000 stored). Report mode.\n"
        )?;
        let window = crate::drift_check::run_window().as_secs();
        writeln!(
            self.body,
            "One pass per pool at the default pacing (10 `ListUsers` calls a second, 60 users a page), \
             each invocation given {window} s (`BENCH_DRIFT_RUN_SECS`; the template gives 300 s), \
             one process for all the pass's runs.\n"
        )?;
        writeln!(
            self.body,
            "| Cognito users | managed rules | runs | pages | all runs ms | pacing floor ms (pages / 10 per s) | peak RSS MiB | findings |"
        )?;
        writeln!(self.body, "|---|---|---|---|---|---|---|---|")?;
        let largest = d.rows.last().map(|row| row.users);
        for row in &d.rows {
            let (size, lost, total) = (row.users, row.lost, row.total_ms);
            let (status, findings) = match &row.outcome {
                DriftOutcome::Report {
                    status,
                    missing_user,
                    orphan_user,
                    unexpected,
                } => {
                    let found = format!(
                        "{missing_user} missing_user, {orphan_user} orphan_user, {unexpected} unexpected"
                    );
                    let expected = *missing_user == lost && *orphan_user == json!(orphans);
                    let found = if expected {
                        found
                    } else {
                        format!("{found} (expected {lost} missing_user, {orphans} orphan_user)")
                    };
                    (status.as_str(), found)
                }
                DriftOutcome::Failed(outcome) => (outcome.as_str(), String::new()),
            };
            writeln!(
                self.body,
                "| {size} | {} | {} | {} | {total:.0} ({status}) | {} | {:.1} | {findings} |",
                row.groups,
                row.runs,
                row.pages,
                row.pages * 100,
                kib_to_mib(row.peak_rss_kb),
            )?;
            if Some(size) == largest {
                self.target(
                    format!("drift-check peak RSS <= 64 MiB (at {size} users)"),
                    row.peak_rss_kb <= 64 * 1024,
                    format!("{:.1} MiB", kib_to_mib(row.peak_rss_kb)),
                );
            }
        }
        Ok(())
    }
}
