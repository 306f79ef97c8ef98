//! Section 6, second half: drift-check over Cognito pools of growing size on moto, each pool
//! read by one pass at the default pacing, over as many short runs as it takes, and the table
//! of those passes. The table sits between its markers in BENCHMARKS.md, so
//! `BENCH_ONLY=drift bench/run` can measure it alone and replace it in place.

use std::{
    fmt::{self, Write as _},
    time::{Duration, Instant},
};

use anyhow::Result;
use futures_util::future::join_all;
use harness::{Outcome, aws};
use serde_json::{Value, json};

use crate::{
    fixtures::confirmed_user,
    procfs::peak_rss_kb,
    report::Provenance,
    setup::Setup,
    stats::{kib_to_mib, ms},
    subjects::Subject,
};

pub const BEGIN: &str = "<!-- drift-passes:begin -->";
pub const END: &str = "<!-- drift-passes:end -->";

/// Users created at once: each is two requests to moto, one Python process, so a bounded batch
/// keeps its queue and the driver's open sockets the same at 100,000 users as at 1,000.
const CREATE_BATCH: usize = 200;

/// How often seeding a pool says how far it got: 100,000 users take minutes in moto.
const PROGRESS_EVERY: usize = 10_000;

/// The pacing's floor for one page: 10 `ListUsers` calls a second.
const PACING_MS_PER_PAGE: i64 = 100;

/// drift-check's peak RSS target at the largest pool measured: a pass keeps a page and counts,
/// not the pool, so its memory should not grow with the pool.
const PEAK_RSS_TARGET_MIB: u64 = 64;

/// How long each invocation is given: far shorter than the template's 300 s, so a pool of
/// thousands already needs a pass over several runs, as millions do in production.
pub fn run_window() -> Duration {
    std::env::var("BENCH_DRIFT_RUN_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_secs(10), Duration::from_secs)
}

/// A pass that takes more runs than this is reported as not finished.
const MAX_RUNS: u32 = 2000;

pub struct DriftCheck {
    /// The rows the earlier sections wrote, all without a user in the pool.
    pub orphans: u64,
    /// One per pool size, in the order measured.
    pub rows: Vec<DriftRow>,
}

pub struct DriftRow {
    pub users: usize,
    /// Users left without a row so far: drift-check should find each as `missing_user`.
    pub lost: u64,
    pub groups: usize,
    /// All the pass's runs, end to end.
    pub total_ms: f64,
    /// Over all the runs (one process).
    pub peak_rss_kb: u64,
    /// Runs that read part of the pass, and the pages it read.
    pub runs: u32,
    pub pages: i64,
    pub outcome: DriftOutcome,
}

pub enum DriftOutcome {
    /// The last run's status; `missing_user` over the pass's runs, the rest from the last
    /// run (orphans come at the end of the pass, security groups are checked in every run).
    Report {
        status: String,
        missing_user: u64,
        orphan_user: Value,
        unexpected: Value,
    },
    /// Any other outcome, as the driver saw it.
    Failed(String),
}

pub async fn measure(s: &Setup, sizes: &[usize]) -> Result<DriftCheck> {
    let (admin, cognito, ec2) = (&s.admin, &s.cognito, &s.ec2);
    // The pool as production has it: confirmed users, each with a row, except one sign-up in a
    // thousand that was lost (no row). The rows the sections above wrote have no user in this
    // pool: backdated past the orphan cutoff, they are orphans, counted and capped.
    let orphans = admin
        .execute(
            "UPDATE users SET created_at = created_at - interval '1 hour'",
            &[],
        )
        .await?;
    let pool = aws::create_pool(cognito).await;
    for g in 0..49 {
        let group = aws::create_group(ec2).await;
        admin
            .execute(
                "INSERT INTO managed_ingress_rules (security_group_id, owner, cidr) VALUES ($1, $2, '34.201.17.5/32')",
                &[&group, &format!("dev{g}")],
            )
            .await?;
    }
    let mut rows_out = Vec::new();
    let mut created = 0;
    let mut lost = 0u64;
    for &size in sizes {
        eprintln!("bench: drift-check at {size} users");
        let seeding = Instant::now();
        while created < size {
            let batch: Vec<usize> = (created..size.min(created + CREATE_BATCH)).collect();
            let subs = join_all(batch.iter().map(|&i| confirmed_user(cognito, &pool, i))).await;
            let mut rows = Vec::new();
            for (&i, sub) in batch.iter().zip(subs) {
                if i % 1000 == 999 {
                    lost += 1;
                } else {
                    rows.push(sub?);
                }
            }
            admin
                .execute(
                    "INSERT INTO users (cognito_user_id, email, display_name, handle, created_at) \
                     SELECT s, s || '@example.com', s, 'h' || s, now() - interval '1 hour' \
                     FROM unnest($1::text[]) AS s",
                    &[&rows],
                )
                .await?;
            let before = created;
            created += batch.len();
            if created / PROGRESS_EVERY > before / PROGRESS_EVERY {
                eprintln!(
                    "bench: drift-check: {created} of {size} users in the pool ({:.0} s)",
                    seeding.elapsed().as_secs_f64()
                );
            }
        }
        let groups: Vec<String> = admin
            .query(
                "SELECT DISTINCT security_group_id FROM managed_ingress_rules",
                &[],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut env = s.db.url_env();
        env.push(("USER_POOL_ID".into(), pool.clone()));
        let drift = Subject::Rust {
            name: "drift-check",
            env,
        };
        let f = drift.spawn(s).await?;
        let (mut runs, mut pages, mut missing, mut total_ms) = (0u32, 0i64, 0u64, 0.0);
        let outcome = loop {
            let inv = f.invoke_within(&json!({}), run_window()).await;
            total_ms += ms(inv.elapsed);
            let v = match &inv.outcome {
                Outcome::Response(v) => v,
                other => break DriftOutcome::Failed(format!("{other:?}")),
            };
            missing += v["counts"]["missing_user"].as_u64().unwrap_or(0);
            if !v["pass"].is_null() {
                runs += 1;
                pages += v["pass"]["pages_read"].as_i64().unwrap_or(0);
            }
            if v["pass"]["finished"] == true || runs >= MAX_RUNS {
                let c = &v["counts"];
                break DriftOutcome::Report {
                    status: v["status"].as_str().unwrap_or("?").to_owned(),
                    missing_user: missing,
                    orphan_user: c["orphan_user"].clone(),
                    unexpected: c["unexpected"].clone(),
                };
            }
        };
        let rss = peak_rss_kb(f.pid());
        f.stop().await;
        rows_out.push(DriftRow {
            users: size,
            lost,
            groups: groups.len(),
            total_ms,
            peak_rss_kb: rss,
            runs,
            pages,
            outcome,
        });
    }
    Ok(DriftCheck {
        orphans,
        rows: rows_out,
    })
}

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
    use crate::report::replace_section;

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
