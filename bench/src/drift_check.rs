//! Section 6, second half: drift-check over Cognito pools of growing size on moto, beside the
//! AWS calls it makes timed alone.

use std::time::{Duration, Instant};

use anyhow::Result;
use futures_util::future::join_all;
use harness::{Outcome, aws};
use serde_json::{Value, json};

use crate::{
    fixtures::confirmed_user, procfs::peak_rss_kb, setup::Setup, stats::ms, subjects::Subject,
};

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
    pub total_ms: f64,
    pub peak_rss_kb: u64,
    /// The AWS calls drift-check makes, timed alone.
    pub aws_ms: f64,
    pub outcome: DriftOutcome,
}

pub enum DriftOutcome {
    /// drift-check's response: its status and its counts (kept as JSON, as it returned them).
    Report {
        status: String,
        missing_user: Value,
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
        while created < size {
            let batch: Vec<usize> = (created..size.min(created + 200)).collect();
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
            created += batch.len();
        }
        // The AWS calls alone, as drift-check makes them.
        let aws_started = Instant::now();
        let mut pages = cognito
            .list_users()
            .user_pool_id(&pool)
            .limit(60)
            .into_paginator()
            .send();
        while let Some(p) = pages.next().await {
            p?;
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
        for g in &groups {
            aws::ingress(ec2, g).await;
        }
        let aws_ms = ms(aws_started.elapsed());
        let mut env = s.db.url_env();
        env.push(("USER_POOL_ID".into(), pool.clone()));
        let drift = Subject::Rust {
            name: "drift-check",
            env,
        };
        let f = drift.spawn(s).await?;
        let inv = f.invoke_within(&json!({}), Duration::from_secs(900)).await;
        let rss = peak_rss_kb(f.pid());
        f.stop().await;
        let outcome = match &inv.outcome {
            Outcome::Response(v) => {
                let c = &v["counts"];
                DriftOutcome::Report {
                    status: v["status"].as_str().unwrap_or("?").to_owned(),
                    missing_user: c["missing_user"].clone(),
                    orphan_user: c["orphan_user"].clone(),
                    unexpected: c["unexpected"].clone(),
                }
            }
            other => DriftOutcome::Failed(format!("{other:?}")),
        };
        rows_out.push(DriftRow {
            users: size,
            lost,
            groups: groups.len(),
            total_ms: ms(inv.elapsed),
            peak_rss_kb: rss,
            aws_ms,
            outcome,
        });
    }
    Ok(DriftCheck {
        orphans,
        rows: rows_out,
    })
}
