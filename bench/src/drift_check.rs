//! Section 6, second half: drift-check over Cognito pools of growing size on moto, each pool
//! read by one pass at the default pacing, over as many short runs as it takes, and the table
//! of those passes. The table sits between its markers in BENCHMARKS.md, so
//! `BENCH_ONLY=drift bench/run` can measure it alone and replace it in place.

use std::time::{Duration, Instant};

use anyhow::Result;
use futures_util::future::join_all;
use harness::{Outcome, aws};
use serde_json::{Value, json};

use crate::{
    fixtures::confirmed_user, procfs::peak_rss_kb, setup::Setup, stats::ms, subjects::Subject,
};

pub const BEGIN: &str = "<!-- drift-passes:begin -->";
pub const END: &str = "<!-- drift-passes:end -->";

/// Users created at once: each is two requests to moto, one Python process, so a bounded batch
/// keeps its queue and the driver's open sockets the same at 100,000 users as at 1,000.
const CREATE_BATCH: usize = 200;

/// How often seeding a pool says how far it got: 100,000 users take minutes in moto.
const PROGRESS_EVERY: usize = 10_000;

/// The pacing's floor for one page: 10 `ListUsers` calls a second.
pub const PACING_MS_PER_PAGE: i64 = 100;

/// drift-check's peak RSS target at the largest pool measured: a pass keeps a page and counts,
/// not the pool, so its memory should not grow with the pool.
pub const PEAK_RSS_TARGET_MIB: u64 = 64;

/// How long each invocation is given: far shorter than the template's 300 s, so a pool of
/// thousands already needs a pass over several runs, as millions do in production.
pub fn run_window() -> Duration {
    std::env::var("BENCH_DRIFT_RUN_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_secs(10), Duration::from_secs)
}

/// Findings about users other than the expected `missing_user` and `orphan_user`: each
/// would mean the pool's users are not what the bench meant them to be.
const OTHER_USER_KINDS: [&str; 2] = ["unwritable_user", "profile_changed"];

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
        /// The other user kinds found over the pass's runs, by kind: none is expected of this
        /// pool. (Its 49 groups' rows name a rule EC2 lacks, so every run reports each
        /// `missing`, by design: the rules are checked in every run.)
        other: std::collections::BTreeMap<String, u64>,
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
            let handles: Vec<String> = batch.iter().map(|i| format!("u{i:06}")).collect();
            let emails: Vec<String> = handles.iter().map(|h| format!("{h}@example.com")).collect();
            let subs = join_all(
                handles
                    .iter()
                    .zip(&emails)
                    .map(|(h, e)| confirmed_user(cognito, &pool, h, e)),
            )
            .await;
            // Each row as post-confirmation writes it from the user's attributes, so that a
            // user with a row differs in nothing (no profile_changed).
            let (mut rows, mut row_handles) = (Vec::new(), Vec::new());
            for ((&i, handle), sub) in batch.iter().zip(&handles).zip(subs) {
                if i % 1000 == 999 {
                    lost += 1;
                } else {
                    rows.push(sub?);
                    row_handles.push(handle.clone());
                }
            }
            admin
                .execute(
                    "INSERT INTO users (cognito_user_id, email, display_name, handle, created_at) \
                     SELECT s, h || '@example.com', h, h, now() - interval '1 hour' \
                     FROM unnest($1::text[], $2::text[]) AS t(s, h)",
                    &[&rows, &row_handles],
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
        let mut other = std::collections::BTreeMap::new();
        let outcome = loop {
            let inv = f.invoke_within(&json!({}), run_window()).await;
            total_ms += ms(inv.elapsed);
            let v = match &inv.outcome {
                Outcome::Response(v) => v,
                other => break DriftOutcome::Failed(format!("{other:?}")),
            };
            missing += v["counts"]["missing_user"].as_u64().unwrap_or(0);
            for (kind, n) in v["counts"].as_object().into_iter().flatten() {
                let n = n.as_u64().unwrap_or(0);
                if n > 0 && OTHER_USER_KINDS.contains(&kind.as_str()) {
                    *other.entry(kind.clone()).or_insert(0) += n;
                }
            }
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
                    other: std::mem::take(&mut other),
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
