//! A pass over the user pool that may span many runs (`drift_user_passes`): claiming it for a
//! run, recording each page it read, finishing it, restarting it when Cognito refuses its
//! token. A run holds the pass under a lease that ends with its invocation; every write checks
//! the lease is still this run's, so two overlapping runs never both advance one pass.

use std::time::Duration;

use deadpool_postgres::ClientWrapper;
use serde::Serialize;

use crate::report::display_as_str;

/// Where a pass stands (`drift_user_passes.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PassStatus {
    /// Runs continue it from its stored token.
    Open,
    /// Every page was read and orphans were reported.
    Complete,
    /// Cognito refused its token (it expired): a new pass began from the first page.
    Restarted,
}

impl PassStatus {
    /// Every status, in the order of the SQL CHECK list.
    pub const ALL: [PassStatus; 3] = [
        PassStatus::Open,
        PassStatus::Complete,
        PassStatus::Restarted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Complete => "complete",
            Self::Restarted => "restarted",
        }
    }
}

display_as_str!(PassStatus);

/// The pass a run holds, as it stood when claimed.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    /// The next page's token; `None` for the first page.
    pub token: Option<String>,
    pub pages_read: i64,
    pub users_seen: i64,
    /// Runs that held the pass, this one included.
    pub runs: i32,
}

const OPEN_PASS: &str = "\
    INSERT INTO drift_user_passes (user_pool_id) VALUES ($1) \
    ON CONFLICT (user_pool_id) WHERE status = 'open' DO NOTHING";

// Row-locking UPDATE: of two runs claiming at once, the second waits for the first to commit
// and then finds the lease taken.
const CLAIM_PASS: &str = "\
    UPDATE drift_user_passes \
    SET claimed_by = $2::text::uuid, claimed_until = now() + make_interval(secs => $3), runs = runs + 1 \
    WHERE user_pool_id = $1 AND status = 'open' \
      AND (claimed_by IS NULL OR claimed_until < now()) \
    RETURNING id, next_token, pages_read, users_seen, runs";

/// Opens a pass for `pool` unless one is open, and claims the open one for `run_id` for
/// `lease`. `None`: another run holds it and its lease has not run out.
pub async fn claim(
    client: &ClientWrapper,
    pool: &str,
    run_id: &str,
    lease: Duration,
) -> Result<Option<Claimed>, tokio_postgres::Error> {
    let open = client.prepare_cached(OPEN_PASS).await?;
    client.execute(&open, &[&pool]).await?;
    let claim = client.prepare_cached(CLAIM_PASS).await?;
    let row = client
        .query_opt(&claim, &[&pool, &run_id, &lease.as_secs_f64()])
        .await?;
    let Some(r) = row else {
        return Ok(None);
    };
    let claimed = Claimed {
        id: r.get(0),
        token: r.get(1),
        pages_read: r.get(2),
        users_seen: r.get(3),
        runs: r.get(4),
    };
    // The run's row names its pass from the start, so a run that dies still shows its share.
    let stmt = client
        .prepare_cached(
            "UPDATE drift_runs SET pass_id = $2, pages_read = 0, users_seen = 0 WHERE id = $1::text::uuid",
        )
        .await?;
    client.execute(&stmt, &[&run_id, &claimed.id]).await?;
    Ok(Some(claimed))
}

const ADVANCE: &str = "\
    UPDATE drift_user_passes \
    SET next_token = $3, pages_read = pages_read + 1, users_seen = users_seen + $4 \
    WHERE id = $1 AND claimed_by = $2::text::uuid AND status = 'open' \
    RETURNING pages_read, users_seen";

const RUN_READ_PAGE: &str = "\
    UPDATE drift_runs SET pages_read = pages_read + 1, users_seen = users_seen + $2 \
    WHERE id = $1::text::uuid";

/// Moves the pass (and the run's share of it) past a page, inside the page's transaction
/// (which this locks the pass row for). `None`: the run's lease was taken over; the caller
/// must roll back.
pub async fn advance(
    client: &ClientWrapper,
    pass: i64,
    run_id: &str,
    next_token: Option<&str>,
    users: i64,
) -> Result<Option<(i64, i64)>, tokio_postgres::Error> {
    let stmt = client.prepare_cached(ADVANCE).await?;
    let Some(row) = client
        .query_opt(&stmt, &[&pass, &run_id, &next_token, &users])
        .await?
    else {
        return Ok(None);
    };
    let stmt = client.prepare_cached(RUN_READ_PAGE).await?;
    client.execute(&stmt, &[&run_id, &users]).await?;
    Ok(Some((row.get(0), row.get(1))))
}

/// Notes a page's subs for the pass and returns the confirmed ones that are new to the pass
/// and have no row: the page's missing users. A sub already noted (a page read twice, a user
/// Cognito listed on two pages) is never reported twice in one pass.
pub const NOTE_PAGE: &str = "\
    WITH noted AS ( \
        INSERT INTO drift_pass_subs (pass_id, sub) SELECT $1, unnest($2::text[]) \
        ON CONFLICT DO NOTHING RETURNING sub) \
    SELECT n.sub FROM noted n \
    WHERE n.sub = ANY ($3::text[]) \
      AND NOT EXISTS (SELECT 1 FROM users u WHERE u.cognito_user_id = n.sub)";

/// How many orphans the finished pass found, and the subs of the oldest $2 of them: a pool can
/// lose many users at once (a restored backup, a deleted pool), and only the findings under
/// the cap are stored, so no more rows than that are ever held in memory. Rows created after
/// the pass began (less a margin, for ListUsers lagging behind a sign-up) may belong to users
/// listed before they existed: only older rows can be orphans. The database's clock, because
/// it wrote created_at.
pub const ORPHANS: &str = "\
    WITH orphan AS ( \
        SELECT u.cognito_user_id, u.created_at, u.id FROM users u \
        WHERE u.created_at < (SELECT started_at - interval '5 minutes' FROM drift_user_passes WHERE id = $1) \
          AND NOT EXISTS (SELECT 1 FROM drift_pass_subs s WHERE s.pass_id = $1 AND s.sub = u.cognito_user_id)) \
    SELECT (SELECT count(*) FROM orphan), \
           ARRAY(SELECT cognito_user_id FROM orphan ORDER BY created_at, id LIMIT $2)";

/// Closes the pass as `status`; its subs are purged later, a batch at a time
/// ([`purge_closed`]). Only the run holding it may.
pub async fn close(
    client: &ClientWrapper,
    pass: i64,
    run_id: &str,
    status: PassStatus,
) -> Result<bool, tokio_postgres::Error> {
    let stmt = client
        .prepare_cached(
            "UPDATE drift_user_passes \
             SET status = $3, finished_at = now(), next_token = NULL, claimed_by = NULL, claimed_until = NULL \
             WHERE id = $1 AND claimed_by = $2::text::uuid AND status = 'open'",
        )
        .await?;
    let closed = client
        .execute(&stmt, &[&pass, &run_id, &status.as_str()])
        .await?;
    Ok(closed == 1)
}

/// Gives the pass back at the end of a run, for the next run to continue at once.
pub async fn release(
    client: &ClientWrapper,
    pass: i64,
    run_id: &str,
) -> Result<(), tokio_postgres::Error> {
    let stmt = client
        .prepare_cached(
            "UPDATE drift_user_passes SET claimed_by = NULL, claimed_until = NULL \
             WHERE id = $1 AND claimed_by = $2::text::uuid",
        )
        .await?;
    client.execute(&stmt, &[&pass, &run_id]).await.map(drop)
}

/// Rows of closed passes' subs dropped per statement: a pass over millions of users leaves
/// millions of rows, more than one statement deletes within the statement timeout.
pub const PURGE_BATCH: i64 = 20_000;

const PURGE_CLOSED: &str = "\
    DELETE FROM drift_pass_subs WHERE (pass_id, sub) IN ( \
        SELECT s.pass_id, s.sub FROM drift_pass_subs s \
        JOIN drift_user_passes p ON p.id = s.pass_id \
        WHERE p.status <> 'open' LIMIT $1)";

/// Drops up to [`PURGE_BATCH`] subs of closed passes; returns how many.
pub async fn purge_closed(client: &ClientWrapper) -> Result<u64, tokio_postgres::Error> {
    let stmt = client.prepare_cached(PURGE_CLOSED).await?;
    client.execute(&stmt, &[&PURGE_BATCH]).await
}
