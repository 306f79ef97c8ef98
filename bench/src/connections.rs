//! Section 4: how many database connections one environment holds, and how often it fetches
//! the database secret.

use std::collections::BTreeSet;

use anyhow::Result;

use crate::{fixtures::signup, setup::Setup, subjects::Subject};

pub struct Connections {
    /// Server backends one environment used over 1,000 warm invocations.
    pub db_connections: usize,
    /// GetSecretValue calls for one cold start and 100 invocations.
    pub secret_fetches: usize,
}

pub async fn measure(s: &Setup) -> Result<Connections> {
    let ours = Subject::ours(s);
    // One environment, 1,000 warm invocations, every server backend it uses noted.
    let f = ours.spawn(s).await?;
    f.invoke(&signup("conn", 0)).await;
    let mut pids_seen = BTreeSet::new();
    for i in 0..1000 {
        f.invoke(&signup("conn", i + 1)).await;
        if i % 10 == 0 {
            pids_seen.extend(pids(&s.admin, "post-confirmation").await?);
        }
    }
    f.stop().await;
    s.stack.start_recording();
    let f = ours.spawn(s).await?;
    for i in 0..100 {
        f.invoke(&signup("secret", i)).await;
    }
    let fetches = s
        .stack
        .recorded_actions()
        .iter()
        .filter(|a| *a == "GetSecretValue")
        .count();
    f.stop().await;
    Ok(Connections {
        db_connections: pids_seen.len(),
        secret_fetches: fetches,
    })
}

async fn pids(client: &tokio_postgres::Client, app: &str) -> Result<BTreeSet<i32>> {
    let rows = client
        .query(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1",
            &[&app],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}
