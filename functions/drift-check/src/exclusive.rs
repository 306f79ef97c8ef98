//! One remediating run at a time. With its reserved concurrency of one, Lambda never runs two
//! drift-checks at once; a stack deployed without reservations (`ReserveConcurrency=false`)
//! can, when a schedule tick and a CloudTrail event arrive together. Two remediations of one
//! group would fight, so a run changes anything only while it holds a session advisory lock on
//! its connection; a run that finds it taken reports instead. A run that dies takes its
//! connection, and so the lock, with it.

use deadpool_postgres::ClientWrapper;

/// The lock's name; advisory locks are per database, so stacks on other databases never meet.
pub const REMEDIATION_LOCK: &str = "db-sync/drift-check/remediation";

/// Takes the lock if no other run holds it; never waits.
pub async fn try_take(client: &ClientWrapper) -> Result<bool, tokio_postgres::Error> {
    let stmt = client
        .prepare_cached("SELECT pg_try_advisory_lock(hashtext($1))")
        .await?;
    let row = client.query_one(&stmt, &[&REMEDIATION_LOCK]).await?;
    row.try_get(0)
}

/// Gives the lock back, so that the pooled connection does not keep it for the next run.
pub async fn release(client: &ClientWrapper) -> Result<(), tokio_postgres::Error> {
    let stmt = client
        .prepare_cached("SELECT pg_advisory_unlock(hashtext($1))")
        .await?;
    client
        .query_one(&stmt, &[&REMEDIATION_LOCK])
        .await
        .map(drop)
}
