//! The SQL: whether a handle is taken, and inserting a confirmed user idempotently.

use std::time::Duration;

use deadpool_postgres::ClientWrapper;
use tokio_postgres::{
    error::SqlState,
    types::{ToSql, Type},
};

use super::NewUser;
use crate::db::stateless;

/// Whether a user already holds `handle`, compared without case as the unique index does.
pub async fn handle_is_taken(
    client: &ClientWrapper,
    handle: &str,
) -> Result<bool, tokio_postgres::Error> {
    // Unnamed, with its parameter's type given: one round trip even on a new connection, and
    // nothing left in the session for a pooler to trip on.
    let rows = client
        .query_typed(
            "SELECT EXISTS (SELECT 1 FROM users WHERE lower(handle) = lower($1))",
            &[(&handle, Type::TEXT)],
        )
        .await?;
    match rows.first() {
        Some(row) => row.try_get(0),
        None => Ok(false),
    }
}

/// What inserting a confirmed user did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InsertOutcome {
    Inserted,
    /// A row for this sub exists already; it was left as it was.
    AlreadyPresent,
    /// Another user holds this handle (compared without case); nothing was written.
    HandleTaken {
        other_sub: String,
    },
}

impl InsertOutcome {
    /// The outcome as logged: `inserted`, `already_present` or `handle_taken`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Inserted => "inserted",
            Self::AlreadyPresent => "already_present",
            Self::HandleTaken { .. } => "handle_taken",
        }
    }
}

const INSERT_CONFIRMED_USER: &str = "\
    INSERT INTO users (cognito_user_id, email, display_name, handle) \
    VALUES ($1, $2, $3, $4) \
    ON CONFLICT (cognito_user_id) DO NOTHING \
    RETURNING id";

const FIND_SUB_OR_HANDLE_OWNER: &str = "\
    SELECT cognito_user_id FROM users \
    WHERE cognito_user_id = $1 OR lower(handle) = lower($2) \
    ORDER BY (cognito_user_id = $1) DESC \
    LIMIT 1";

/// Inserts the user unless a row for its sub exists; never overwrites. Safe to repeat and to
/// run concurrently for the same user. It takes a plain connection, not a transaction: a
/// handle conflict aborts the statement and is then examined with a second query. The
/// statements are unnamed, so nothing is left in the session; their timeout is the session's
/// own `statement_timeout` ([`Pooling::Session`](crate::db::Pooling)).
pub async fn insert_confirmed_user(
    client: &ClientWrapper,
    user: &NewUser,
) -> Result<InsertOutcome, tokio_postgres::Error> {
    insert(client, user, InsertMode::default()).await
}

/// How [`insert_confirmed_user_with`] runs its statements.
#[derive(Debug, Clone, Copy, Default)]
pub struct InsertMode<'a> {
    /// For a connection that keeps no session state (behind a transaction-pooling proxy):
    /// each statement runs in its own transaction with `SET LOCAL statement_timeout`
    /// ([`crate::db::stateless`]).
    pub timeout: Option<Duration>,
    /// A statement run first in the insert's transaction, written in the same round trip,
    /// that fails the transaction, and so the insert, unless the schema is current
    /// ([`crate::schema::SchemaGuard::guard_statement`]). Its error is returned as it is.
    pub guard: Option<&'a str>,
}

/// [`insert_confirmed_user`] with its statements run as `mode` says: still one round trip
/// when all goes well.
pub async fn insert_confirmed_user_with(
    client: &ClientWrapper,
    user: &NewUser,
    mode: InsertMode<'_>,
) -> Result<InsertOutcome, tokio_postgres::Error> {
    insert(client, user, mode).await
}

/// The `BEGIN ...` that opens a statement's transaction in `mode`, if it needs one.
fn begin(mode: InsertMode<'_>) -> Option<String> {
    let mut begin = match (mode.timeout, mode.guard) {
        (None, None) => return None,
        (Some(t), _) => stateless::begin_within(t),
        (None, Some(_)) => String::from("BEGIN"),
    };
    if let Some(guard) = mode.guard {
        begin.push_str("; ");
        begin.push_str(guard);
    }
    Some(begin)
}

async fn insert(
    client: &ClientWrapper,
    user: &NewUser,
    mode: InsertMode<'_>,
) -> Result<InsertOutcome, tokio_postgres::Error> {
    let run = async |mode, sql: &str, params: &[(&(dyn ToSql + Sync), Type)]| match begin(mode) {
        Some(begin) => stateless::query_typed_in_transaction(client, &begin, sql, params).await,
        None => client.query_typed(sql, params).await,
    };
    let result = run(
        mode,
        INSERT_CONFIRMED_USER,
        &[
            (&user.cognito_user_id, Type::TEXT),
            (&user.email, Type::TEXT),
            (&user.display_name, Type::TEXT),
            (&user.handle, Type::TEXT),
        ],
    )
    .await;
    match result {
        Ok(rows) if !rows.is_empty() => Ok(InsertOutcome::Inserted),
        Ok(_) => Ok(InsertOutcome::AlreadyPresent),
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            // ON CONFLICT arbitrates only the sub. Two deliveries of the same user racing can
            // meet first on the handle index, so look at who holds what before calling it a
            // collision.
            // The guard passed (the insert ran): only the timeout applies from here.
            let found = run(
                InsertMode {
                    guard: None,
                    ..mode
                },
                FIND_SUB_OR_HANDLE_OWNER,
                &[
                    (&user.cognito_user_id, Type::TEXT),
                    (&user.handle, Type::TEXT),
                ],
            )
            .await?;
            match found.first() {
                Some(row) => {
                    let holder: String = row.get(0);
                    if holder == user.cognito_user_id {
                        Ok(InsertOutcome::AlreadyPresent)
                    } else {
                        Ok(InsertOutcome::HandleTaken { other_sub: holder })
                    }
                }
                None => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transaction_opens_with_the_timeout_then_the_guard_and_only_when_needed() {
        let t = Some(Duration::from_millis(1500));
        let guard = Some("DO $g$ BEGIN END $g$");
        let mode = |timeout, guard| InsertMode { timeout, guard };
        assert_eq!(begin(mode(None, None)), None);
        assert_eq!(
            begin(mode(t, None)).as_deref(),
            Some("BEGIN; SET LOCAL statement_timeout = 1500")
        );
        assert_eq!(
            begin(mode(None, guard)).as_deref(),
            Some("BEGIN; DO $g$ BEGIN END $g$")
        );
        assert_eq!(
            begin(mode(t, guard)).as_deref(),
            Some("BEGIN; SET LOCAL statement_timeout = 1500; DO $g$ BEGIN END $g$")
        );
    }
}
