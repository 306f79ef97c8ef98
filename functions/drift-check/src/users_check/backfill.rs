//! A lost sign-up, one user at a time: whether the row the trigger would have written may be
//! written (the trigger's own rules, and an email the user has verified), writing it under a
//! savepoint so that no one user's failure holds back the page, and the findings that say so.

use std::collections::HashMap;

use deadpool_postgres::ClientWrapper;
use serde_json::json;
use shared::users::{InsertOutcome, NewUser, insert_confirmed_user};
use tokio_postgres::error::SqlState;

use crate::{
    Error, State,
    report::{Action, Finding, Kind},
};

pub(crate) fn missing_user(resource: String, sub: &str, action: Action) -> Finding {
    Finding {
        kind: Kind::MissingUser,
        resource,
        desired: Some(json!({"sub": sub, "status": "CONFIRMED"})),
        actual: None,
        action,
    }
}

pub(crate) fn unwritable(resource: String, sub: &str, action: Action, reason: &str) -> Finding {
    Finding {
        kind: Kind::UnwritableUser,
        resource,
        desired: Some(json!({"sub": sub, "status": "CONFIRMED"})),
        actual: Some(json!({"reason": reason})),
        action,
    }
}

/// The row the trigger would have written for this user, or why none may be: the trigger's
/// own mapping and rules, and an email the user has verified, the one rule both writers of a
/// row share ([`NewUser::from_confirmed_attributes`]). A user can fail the trigger on purpose,
/// then put someone else's address in `email` and leave it unverified: a backfill must not
/// write that address.
pub(crate) fn writable(
    state: &State,
    username: Option<&str>,
    attrs: &HashMap<String, String>,
) -> Result<NewUser, String> {
    NewUser::from_confirmed_attributes(username, attrs, &state.config.mapping)
        .map_err(|e| e.to_string())
}

/// What a backfill did.
pub(crate) enum Backfill {
    Done(Action),
    /// This user's row could not be written; the reason says why. Nothing of it was kept,
    /// and the page's transaction goes on.
    Refused(String),
}

/// Inserts the lost sign-up with the trigger's own insert, under a savepoint: the page's
/// transaction must survive anything that fails for this one user (a taken handle, a
/// constraint, a trigger). Only a lost connection ends the page.
pub(crate) async fn backfill(client: &ClientWrapper, user: &NewUser) -> Result<Backfill, Error> {
    client.batch_execute("SAVEPOINT backfill").await?;
    let failed = match insert_confirmed_user(client, user).await {
        Ok(outcome) => {
            client.batch_execute("RELEASE SAVEPOINT backfill").await?;
            return Ok(match outcome {
                InsertOutcome::Inserted => Backfill::Done(Action::Backfilled),
                InsertOutcome::AlreadyPresent => Backfill::Done(Action::InsertedMeanwhile),
                InsertOutcome::HandleTaken { other_sub } => {
                    Backfill::Refused(format!("the handle is taken by {other_sub}"))
                }
            });
        }
        Err(e) if e.is_closed() => return Err(e.into()),
        Err(e) => e,
    };
    client
        .batch_execute("ROLLBACK TO SAVEPOINT backfill; RELEASE SAVEPOINT backfill")
        .await?;
    // A unique violation other than the sub's aborts the transaction before the insert can
    // look at who holds the handle: look here, after the savepoint.
    if failed.code() == Some(&SqlState::IN_FAILED_SQL_TRANSACTION) {
        let stmt = client
            .prepare_cached("SELECT cognito_user_id FROM users WHERE lower(handle) = lower($1)")
            .await?;
        let holder = client.query_opt(&stmt, &[&user.handle]).await?;
        if let Some(row) = holder {
            return Ok(Backfill::Refused(format!(
                "the handle is taken by {}",
                row.get::<_, String>(0)
            )));
        }
    }
    let reason = match failed.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => failed.to_string(),
    };
    Ok(Backfill::Refused(format!(
        "the row could not be inserted: {reason}"
    )))
}
