//! The staged listings (`drift_listings`, `drift_listing_chunks`): opening one, staging its
//! chunks in order, closing it as complete (only when the lister's counts match what arrived)
//! or broken off, and reading a complete one back a chunk at a time.

use deadpool_postgres::ClientWrapper;
use serde::Serialize;

use super::{HandOverError, ListedUser, Staged};
use crate::{Error, report::display_as_str};

/// Where a listing stands (`drift_listings.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ListingStatus {
    /// Chunks arrive (or a suspended listing waits for the lister's next run).
    Staging,
    /// Every chunk the lister counted arrived: it may be compared.
    Complete,
    /// The lister could not finish, or its counts did not match: never compared.
    BrokenOff,
}

impl ListingStatus {
    /// Every status, in the order of the SQL CHECK list.
    pub const ALL: [ListingStatus; 3] = [Self::Staging, Self::Complete, Self::BrokenOff];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Staging => "staging",
            Self::Complete => "complete",
            Self::BrokenOff => "broken_off",
        }
    }
}

display_as_str!(ListingStatus);

/// Why a staging call failed: the hand-over itself, or the database.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error(transparent)]
    Refused(#[from] HandOverError),
    #[error(transparent)]
    Db(#[from] tokio_postgres::Error),
}

/// How long a finished listing's record is kept (its chunks go when it is compared or closed).
pub const RETENTION_DAYS: i32 = 14;

/// Continues the listing of `pool` an earlier run suspended, or opens one. A listing of the
/// pool still staging and not suspended is superseded (its lister broke off or died) and gives
/// up its chunks; a complete one keeps them (a run may be comparing it). Listings of the pool
/// finished more than [`RETENTION_DAYS`] ago are deleted, with any chunks they kept.
pub async fn begin(client: &ClientWrapper, pool: &str) -> Result<Staged, tokio_postgres::Error> {
    // Taken once: a lister that dies while continuing leaves it unsuspended, to be superseded.
    let suspended = client
        .query_opt(
            "WITH old AS ( \
                 SELECT id, chunks, users, next_token FROM drift_listings \
                 WHERE user_pool_id = $1 AND status = 'staging' AND next_token IS NOT NULL \
                 ORDER BY started_at DESC LIMIT 1 FOR UPDATE), \
             taken AS ( \
                 UPDATE drift_listings l SET next_token = NULL FROM old WHERE l.id = old.id \
                 RETURNING l.id) \
             SELECT old.id::text, old.chunks, old.users, old.next_token FROM old JOIN taken ON taken.id = old.id",
            &[&pool],
        )
        .await?;
    if let Some(row) = suspended {
        return Ok(Staged {
            listing: row.get(0),
            chunks: row.get(1),
            users: row.get(2),
            resume: row.get(3),
        });
    }
    client
        .execute(
            "WITH superseded AS ( \
                 UPDATE drift_listings SET status = $2, finished_at = now(), \
                 reason = 'superseded by a newer listing' \
                 WHERE user_pool_id = $1 AND status = 'staging' RETURNING id) \
             DELETE FROM drift_listing_chunks WHERE listing_id IN (SELECT id FROM superseded)",
            &[&pool, &ListingStatus::BrokenOff.as_str()],
        )
        .await?;
    client
        .execute(
            "DELETE FROM drift_listings WHERE user_pool_id = $1 AND status <> 'staging' \
             AND finished_at < now() - make_interval(days => $2)",
            &[&pool, &RETENTION_DAYS],
        )
        .await?;
    let row = client
        .query_one(
            "INSERT INTO drift_listings (user_pool_id) VALUES ($1) RETURNING id::text",
            &[&pool],
        )
        .await?;
    Ok(Staged {
        listing: row.get(0),
        chunks: 0,
        users: 0,
        resume: None,
    })
}

/// Suspends a listing being staged at `next_token`, for the lister's next run.
pub async fn suspend(
    client: &ClientWrapper,
    pool: &str,
    listing: &str,
    next_token: &str,
) -> Result<(), StageError> {
    let updated = client
        .execute(
            "UPDATE drift_listings SET next_token = $3 \
             WHERE id = $1::text::uuid AND user_pool_id = $2 AND status = 'staging'",
            &[&listing, &pool, &next_token],
        )
        .await?;
    if updated != 1 {
        return Err(HandOverError::UnknownListing(listing.to_owned()).into());
    }
    Ok(())
}

/// Stages chunk `seq` of a listing being staged. A chunk that already arrived (the lister
/// retried a call that had in fact succeeded) is kept as first received; one past the next
/// due is refused, so the chunks of a listing have no gap.
pub async fn stage(
    client: &ClientWrapper,
    pool: &str,
    listing: &str,
    seq: i32,
    users: &[ListedUser],
) -> Result<Staged, StageError> {
    let json = serde_json::to_string(users).unwrap_or_else(|_| "[]".to_owned());
    let count = i64::try_from(users.len()).unwrap_or(i64::MAX);
    client.batch_execute("BEGIN").await?;
    let result = async {
        let row = client
            .query_opt(
                "SELECT chunks, users FROM drift_listings \
                 WHERE id = $1::text::uuid AND user_pool_id = $2 AND status = 'staging' FOR UPDATE",
                &[&listing, &pool],
            )
            .await?;
        let Some(row) = row else {
            return Err(HandOverError::UnknownListing(listing.to_owned()).into());
        };
        let (chunks, staged_users): (i32, i64) = (row.get(0), row.get(1));
        if seq < chunks {
            return Ok(Staged {
                listing: listing.to_owned(),
                chunks,
                users: staged_users,
                resume: None,
            });
        }
        if seq > chunks {
            return Err(HandOverError::OutOfOrder {
                expected: chunks,
                got: seq,
            }
            .into());
        }
        client
            .execute(
                "INSERT INTO drift_listing_chunks (listing_id, seq, users) \
                 VALUES ($1::text::uuid, $2, $3::text::jsonb)",
                &[&listing, &seq, &json],
            )
            .await?;
        client
            .execute(
                "UPDATE drift_listings SET chunks = chunks + 1, users = users + $2 \
                 WHERE id = $1::text::uuid",
                &[&listing, &count],
            )
            .await?;
        Ok(Staged {
            listing: listing.to_owned(),
            chunks: chunks + 1,
            users: staged_users + count,
            resume: None,
        })
    }
    .await;
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    client.batch_execute(end).await?;
    result
}

/// Closes a listing as complete when the lister's counts are what arrived, in one statement
/// (no chunk can slip in between the count and the close); otherwise closes it as broken off
/// (nothing of it is ever compared) and says why.
pub async fn complete(
    client: &ClientWrapper,
    pool: &str,
    listing: &str,
    chunks: i32,
    users: i64,
) -> Result<(), StageError> {
    let closed = client
        .query_opt(
            "UPDATE drift_listings SET status = $5, finished_at = now() \
             WHERE id = $1::text::uuid AND user_pool_id = $2 AND status = 'staging' \
             AND chunks = $3 AND users = $4 RETURNING id",
            &[
                &listing,
                &pool,
                &chunks,
                &users,
                &ListingStatus::Complete.as_str(),
            ],
        )
        .await?;
    if closed.is_some() {
        return Ok(());
    }
    let row = client
        .query_opt(
            "SELECT chunks, users FROM drift_listings \
             WHERE id = $1::text::uuid AND user_pool_id = $2 AND status = 'staging'",
            &[&listing, &pool],
        )
        .await?;
    let Some(row) = row else {
        return Err(HandOverError::UnknownListing(listing.to_owned()).into());
    };
    let staged: (i32, i64) = (row.get(0), row.get(1));
    let e = HandOverError::CountsDiffer {
        claimed: format!("{chunks} chunks of {users} users"),
        staged: format!("{} chunks of {} users", staged.0, staged.1),
    };
    break_off(client, pool, listing, &e.to_string()).await?;
    Err(e.into())
}

/// Closes a listing being staged as broken off and drops its chunks. `false`: there was no
/// such listing being staged.
pub async fn break_off(
    client: &ClientWrapper,
    pool: &str,
    listing: &str,
    reason: &str,
) -> Result<bool, tokio_postgres::Error> {
    let closed = client
        .execute(
            "UPDATE drift_listings SET status = $4, finished_at = now(), reason = $3 \
             WHERE id = $1::text::uuid AND user_pool_id = $2 AND status = 'staging'",
            &[&listing, &pool, &reason, &ListingStatus::BrokenOff.as_str()],
        )
        .await?;
    client
        .execute(
            "DELETE FROM drift_listing_chunks WHERE listing_id = $1::text::uuid",
            &[&listing],
        )
        .await?;
    Ok(closed == 1)
}

/// Chunk `seq` of a complete listing, and how many chunks it has.
pub async fn chunk(
    client: &ClientWrapper,
    listing: &str,
    seq: i32,
) -> Result<Option<(Vec<ListedUser>, i32)>, Error> {
    let stmt = client
        .prepare_cached(
            "SELECT c.users::text, l.chunks FROM drift_listings l \
             JOIN drift_listing_chunks c ON c.listing_id = l.id \
             WHERE l.id = $1::text::uuid AND l.status = 'complete' AND c.seq = $2",
        )
        .await?;
    let Some(row) = client.query_opt(&stmt, &[&listing, &seq]).await? else {
        return Ok(None);
    };
    let text: String = row.get(0);
    // Staged only after the hand-over's checks: a chunk that no longer reads is the table's
    // fault, and the listing cannot be compared.
    let users = serde_json::from_str(&text).map_err(|e| Error::Listing(e.to_string()))?;
    Ok(Some((users, row.get(1))))
}

/// How many chunks a complete listing has (`None`: no complete listing of that id).
pub async fn chunks_of(client: &ClientWrapper, listing: &str) -> Result<Option<i32>, Error> {
    let row = client
        .query_opt(
            "SELECT chunks FROM drift_listings WHERE id = $1::text::uuid AND status = 'complete'",
            &[&listing],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// Records that `run` compared the listing to its end, and drops its chunks.
pub async fn compared(
    client: &ClientWrapper,
    listing: &str,
    run_id: &str,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE drift_listings SET compared_by = $2::text::uuid WHERE id = $1::text::uuid",
            &[&listing, &run_id],
        )
        .await?;
    client
        .execute(
            "DELETE FROM drift_listing_chunks WHERE listing_id = $1::text::uuid",
            &[&listing],
        )
        .await
        .map(drop)
}

/// Moves a fresh pass's start back to when the listing began: a row created after that (less
/// the orphan margin) may be missing from the listing without being an orphan.
pub async fn date_pass(
    client: &ClientWrapper,
    pass: i64,
    listing: &str,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE drift_user_passes SET started_at = LEAST(started_at, \
             (SELECT started_at FROM drift_listings WHERE id = $2::text::uuid)) WHERE id = $1",
            &[&pass, &listing],
        )
        .await
        .map(drop)
}
