//! An operator's release of a group the share limit holds back: a row an operator writes in
//! `drift_releases` (drift-check's role may not), spent by the next remediating run that checks
//! the group, needed or not, so that no release waits for a later, unrelated mass change. The
//! spent row names the run and what it let through; a trigger keeps it spent.

use deadpool_postgres::ClientWrapper;

/// A release this run spent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub id: i64,
    pub reason: String,
    pub added_by: String,
}

/// Spends the group's oldest unspent release for run `run_id`, recording the `changes` it lets
/// through (0 when the group was within its share). `None` when there is none.
pub async fn spend(
    client: &ClientWrapper,
    group: &str,
    run_id: &str,
    changes: usize,
) -> Result<Option<Release>, tokio_postgres::Error> {
    let stmt = client
        .prepare_cached(
            "UPDATE drift_releases SET used_by_run = $2::text::uuid, used_at = now(), changes = $3 \
             WHERE id = (SELECT id FROM drift_releases \
                         WHERE security_group_id = $1 AND used_by_run IS NULL \
                         ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING id, reason, added_by",
        )
        .await?;
    let changes = i32::try_from(changes).unwrap_or(i32::MAX);
    client
        .query_opt(&stmt, &[&group, &run_id, &changes])
        .await?
        .map(|r| {
            Ok(Release {
                id: r.try_get(0)?,
                reason: r.try_get(1)?,
                added_by: r.try_get(2)?,
            })
        })
        .transpose()
}
