//! Section 6's drift-check table: rendered from [`crate::drift_check`]'s passes, between its
//! markers, for the full report (with its targets) or alone (`BENCH_ONLY=drift`).

use std::fmt::{self, Write as _};

use serde_json::json;

use crate::{
    drift_check::{
        BEGIN, DriftCheck, DriftOutcome, END, PACING_MS_PER_PAGE, PEAK_RSS_TARGET_MIB, run_window,
    },
    report::Provenance,
    stats::kib_to_mib,
};

/// A target the drift table checks: what it promises, whether it held, what was measured.
pub struct Verdict {
    pub name: String,
    pub met: bool,
    pub measured: String,
}

/// The drift table and the notes that belong to it, between the markers, as section 6 of the
/// full report has it; returns the targets it checks, for the report's targets table.
pub fn write_block(out: &mut String, d: &DriftCheck) -> Result<Vec<Verdict>, fmt::Error> {
    writeln!(out, "{BEGIN}")?;
    let verdicts = write_passes(out, d)?;
    writeln!(out, "{END}\n")?;
    Ok(verdicts)
}

/// The block alone, for `BENCH_ONLY=drift`: it says how it was made, and its targets' verdicts
/// follow the table, since a partial run leaves the report's targets table as it was.
pub fn render(d: &DriftCheck, p: &Provenance) -> Result<String, fmt::Error> {
    let mut doc = String::new();
    writeln!(doc, "{BEGIN}")?;
    writeln!(
        doc,
        "`BENCH_ONLY=drift {}`, {} on {} ({} cores), in place of the full run's table.\n",
        p.command, p.date, p.cpu, p.cores
    )?;
    let verdicts = write_passes(&mut doc, d)?;
    writeln!(doc)?;
    for v in &verdicts {
        let met = if v.met { "met" } else { "**not met**" };
        writeln!(doc, "- Target \"{}\": {met} ({}).", v.name, v.measured)?;
    }
    writeln!(doc, "{END}")?;
    Ok(doc)
}

/// The notes and the table, one row per pool size; the targets checked at the largest.
fn write_passes(out: &mut String, d: &DriftCheck) -> Result<Vec<Verdict>, fmt::Error> {
    let orphans = d.orphans;
    if orphans == 0 {
        writeln!(
            out,
            "The pool holds confirmed users, each with a row in `users` except one in a thousand \
             (lost sign-ups, found as `missing_user`); measured alone, no other section wrote rows, \
             so there are no orphans (`orphan_user`). Report mode.\n"
        )?;
    } else {
        writeln!(
            out,
            "The pool holds confirmed users, each with a row in `users` except one in a thousand (lost \
             sign-ups, found as `missing_user`); the {orphans} rows the sections above wrote have no user in \
             the pool (`orphan_user`: all counted, the first 1,000 stored). Report mode.\n"
        )?;
    }
    let window = run_window().as_secs();
    writeln!(
        out,
        "One pass per pool at the default pacing (10 `ListUsers` calls a second, 60 users a page), \
         each invocation given {window} s (`BENCH_DRIFT_RUN_SECS`; the template gives 300 s), \
         one process for all the pass's runs. Time per page is all runs over the pages, against \
         the pacing's {PACING_MS_PER_PAGE} ms; moto finds each page's start by scanning the pool \
         from its first user, so its share of a page grows with the pool.\n"
    )?;
    writeln!(
        out,
        "| Cognito users | managed rules | runs | pages | all runs ms | pacing floor ms (pages / 10 per s) | ms per page | peak RSS MiB | findings |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|---|---|")?;
    let mut verdicts = Vec::new();
    let largest = d.rows.last().map(|row| row.users);
    for row in &d.rows {
        let (size, lost, total) = (row.users, row.lost, row.total_ms);
        let (status, findings) = match &row.outcome {
            DriftOutcome::Report {
                status,
                missing_user,
                orphan_user,
                unexpected,
                other,
            } => {
                let mut found = format!(
                    "{missing_user} missing_user, {orphan_user} orphan_user, {unexpected} unexpected"
                );
                for (kind, n) in other {
                    found.push_str(&format!(", {n} {kind}"));
                }
                let expected =
                    *missing_user == lost && *orphan_user == json!(orphans) && other.is_empty();
                let found = if expected {
                    found
                } else {
                    format!("{found} (expected {lost} missing_user, {orphans} orphan_user)")
                };
                (status.as_str(), found)
            }
            DriftOutcome::Failed(outcome) => (outcome.as_str(), String::new()),
        };
        let per_page = if row.pages > 0 {
            format!("{:.1}", total / row.pages as f64)
        } else {
            "-".to_owned()
        };
        writeln!(
            out,
            "| {size} | {} | {} | {} | {total:.0} ({status}) | {} | {per_page} | {:.1} | {findings} |",
            row.groups,
            row.runs,
            row.pages,
            row.pages * PACING_MS_PER_PAGE,
            kib_to_mib(row.peak_rss_kb),
        )?;
        if Some(size) == largest {
            verdicts.push(Verdict {
                name: format!(
                    "drift-check peak RSS <= {PEAK_RSS_TARGET_MIB} MiB (at {size} users)"
                ),
                met: row.peak_rss_kb <= PEAK_RSS_TARGET_MIB * 1024,
                measured: format!("{:.1} MiB", kib_to_mib(row.peak_rss_kb)),
            });
        }
    }
    Ok(verdicts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{drift_check::DriftRow, report::replace_section};

    fn row(users: usize, pages: i64, total_ms: f64, peak_rss_kb: u64) -> DriftRow {
        let lost = (users / 1000) as u64;
        DriftRow {
            users,
            lost,
            groups: 50,
            total_ms,
            peak_rss_kb,
            runs: 1,
            pages,
            outcome: DriftOutcome::Report {
                status: "complete".into(),
                missing_user: lost,
                orphan_user: json!(0),
                unexpected: json!(0),
                other: Default::default(),
            },
        }
    }

    fn provenance() -> Provenance {
        Provenance {
            command: "bench/run".into(),
            date: "2026-12-06".into(),
            cpu: "cpu".into(),
            cores: 2,
        }
    }

    #[test]
    fn the_block_carries_its_markers_the_time_per_page_and_its_verdicts() {
        let d = DriftCheck {
            orphans: 0,
            rows: vec![
                row(1000, 17, 2085.0, 9 * 1024),
                row(100_000, 1667, 250_050.0, 80 * 1024),
            ],
        };
        let doc = render(&d, &provenance()).unwrap();
        assert!(
            doc.starts_with(BEGIN) && doc.trim_end().ends_with(END),
            "{doc}"
        );
        assert!(doc.contains("| ms per page |"), "{doc}");
        assert!(
            doc.contains("| 100000 | 50 | 1 | 1667 | 250050 (complete) | 166700 | 150.0 | 80.0 |"),
            "{doc}"
        );
        // Only the largest pool is held to the target, and here it fails.
        assert!(
            doc.contains(
                "- Target \"drift-check peak RSS <= 64 MiB (at 100000 users)\": **not met** (80.0 MiB).\n"
            ),
            "{doc}"
        );
        assert_eq!(doc.matches("- Target").count(), 1, "{doc}");
    }

    #[test]
    fn the_full_report_block_gives_its_targets_to_the_targets_table() {
        let d = DriftCheck {
            orphans: 486_845,
            rows: vec![row(10_000, 0, 17_434.0, 9 * 1024)],
        };
        let mut body = String::new();
        let verdicts = write_block(&mut body, &d).unwrap();
        assert!(
            body.starts_with(BEGIN) && body.trim_end().ends_with(END),
            "{body}"
        );
        assert!(!body.contains("- Target"), "{body}");
        // No pages read: no time per page rather than a division by zero.
        assert!(body.contains("| 0 | - | 9.0 |"), "{body}");
        assert!(
            body.contains("(expected 10 missing_user, 486845 orphan_user)"),
            "{body}"
        );
        assert_eq!(verdicts.len(), 1);
        assert!(verdicts[0].met && verdicts[0].measured == "9.0 MiB");
    }

    #[test]
    fn any_other_finding_is_shown_and_makes_the_row_unexpected() {
        let mut unwritable = row(1000, 17, 2085.0, 9 * 1024);
        if let DriftOutcome::Report { other, .. } = &mut unwritable.outcome {
            other.insert("unwritable_user".into(), 1);
        }
        let d = DriftCheck {
            orphans: 0,
            rows: vec![unwritable],
        };
        let doc = render(&d, &provenance()).unwrap();
        assert!(
            doc.contains("1 missing_user, 0 orphan_user, 0 unexpected, 1 unwritable_user (expected 1 missing_user, 0 orphan_user)"),
            "{doc}"
        );
    }

    #[test]
    fn a_partial_run_replaces_the_block_in_place() {
        let d = DriftCheck {
            orphans: 0,
            rows: vec![row(1000, 17, 2085.0, 9 * 1024)],
        };
        let previous = format!(
            "## 6\n\n- sg-ip-update\n\n{BEGIN}\nold table\n{END}\n\n## 7. Behind a pooler\n"
        );
        let doc = replace_section(&previous, &render(&d, &provenance()).unwrap(), BEGIN, END);
        assert!(
            doc.starts_with("## 6\n\n- sg-ip-update\n\n<!-- drift-passes:begin -->\n"),
            "{doc}"
        );
        assert!(!doc.contains("old table"), "{doc}");
        assert!(
            doc.ends_with(&format!("met (9.0 MiB).\n{END}\n\n## 7. Behind a pooler\n")),
            "{doc}"
        );
    }
}
