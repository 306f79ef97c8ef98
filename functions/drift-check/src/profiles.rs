//! Profile changes followed. A user who changes their email, name or preferred username in
//! Cognito after sign-up fires no trigger, and the row goes stale. Each page's confirmed users
//! that have a row are compared with it, from the same `ListUsers` page (no extra call): a
//! difference is a `profile_changed` finding, and in remediate mode the row is updated from
//! Cognito by the trigger's own mapping and rules, unless the new email is not verified or the
//! new handle is invalid or taken (then it is reported and nothing is written).

use std::collections::HashMap;

use deadpool_postgres::ClientWrapper;
use serde_json::json;
use shared::users::NewUser;
use tokio_postgres::error::SqlState;

use crate::{
    Error, State,
    report::{Action, Finding, Kind, Run, Skip},
    users_check::email_is_verified,
};

/// A confirmed user of the page: its Cognito user name and attributes, by sub.
pub type Confirmed = HashMap<String, (Option<String>, HashMap<String, String>)>;

/// What a row holds of a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stored {
    display_name: String,
    email: String,
    handle: String,
}

impl Stored {
    fn of(user: &NewUser) -> Self {
        Self {
            display_name: user.display_name.clone(),
            email: user.email.clone(),
            handle: user.handle.clone(),
        }
    }

    fn json(&self) -> serde_json::Value {
        json!({"display_name": self.display_name, "email": self.email, "handle": self.handle})
    }
}

/// Compares the page's confirmed users that have a row (all of `confirmed` but `missing`) with
/// their rows, inside the page's transaction.
pub async fn check_page(
    state: &State,
    client: &ClientWrapper,
    run: &mut Run,
    confirmed: &Confirmed,
    missing: &[String],
) -> Result<(), Error> {
    let subs: Vec<&String> = confirmed.keys().filter(|s| !missing.contains(s)).collect();
    if subs.is_empty() {
        return Ok(());
    }
    let stmt = client
        .prepare_cached(
            "SELECT cognito_user_id, display_name, email, handle FROM users \
             WHERE cognito_user_id = ANY($1) ORDER BY cognito_user_id",
        )
        .await?;
    let rows = client.query(&stmt, &[&subs]).await?;
    for row in rows {
        let sub: String = row.get(0);
        let stored = Stored {
            display_name: row.get(1),
            email: row.get(2),
            handle: row.get(3),
        };
        let Some((username, attrs)) = confirmed.get(&sub) else {
            continue;
        };
        let resource = format!("{}/{sub}", state.config.user_pool_id);
        let mapping = &state.config.mapping;
        let wanted = match NewUser::from_attributes(username.as_deref(), attrs, mapping) {
            Ok(user) => user,
            // Cognito holds a value the table refuses (a handle too long, say): the row,
            // which holds valid values, differs; it keeps them.
            Err(e) => {
                let finding = changed(
                    resource,
                    &stored,
                    None,
                    Action::Reported,
                    Some(&e.to_string()),
                );
                run.record(client, finding).await?;
                continue;
            }
        };
        let new = Stored::of(&wanted);
        if new == stored {
            continue;
        }
        let action = if new.email != stored.email && !email_is_verified(mapping, attrs) {
            Err("the new email is not verified".to_owned())
        } else if run.may_change(client).await? {
            Ok(follow(client, &sub, &new).await?)
        } else if run.remediating() {
            Ok(Action::Skipped(Skip::Paused))
        } else {
            Ok(Action::None)
        };
        let finding = match action {
            Ok(Action::Refused(reason)) => changed(
                resource,
                &stored,
                Some(&new),
                Action::Refused(reason.clone()),
                Some(&reason),
            ),
            Ok(action) => changed(resource, &stored, Some(&new), action, None),
            Err(reason) => changed(
                resource,
                &stored,
                Some(&new),
                Action::Reported,
                Some(&reason),
            ),
        };
        run.record(client, finding).await?;
    }
    Ok(())
}

fn changed(
    resource: String,
    stored: &Stored,
    new: Option<&Stored>,
    action: Action,
    reason: Option<&str>,
) -> Finding {
    let mut desired = new.map_or_else(|| json!({}), Stored::json);
    if let Some(reason) = reason {
        desired["not_written"] = json!(reason);
    }
    Finding {
        kind: Kind::ProfileChanged,
        resource,
        desired: Some(desired),
        actual: Some(stored.json()),
        action,
    }
}

/// Writes Cognito's profile into the row, under a savepoint: a handle another user holds
/// (compared without case) refuses this one update and nothing else.
async fn follow(client: &ClientWrapper, sub: &str, new: &Stored) -> Result<Action, Error> {
    client.batch_execute("SAVEPOINT profile").await?;
    let stmt = client
        .prepare_cached(
            "UPDATE users SET display_name = $2, email = $3, handle = $4 \
             WHERE cognito_user_id = $1",
        )
        .await?;
    let updated = client
        .execute(&stmt, &[&sub, &new.display_name, &new.email, &new.handle])
        .await;
    match updated {
        Ok(_) => {
            client.batch_execute("RELEASE SAVEPOINT profile").await?;
            Ok(Action::Modified)
        }
        Err(e) if e.is_closed() => Err(e.into()),
        Err(e) => {
            client
                .batch_execute("ROLLBACK TO SAVEPOINT profile; RELEASE SAVEPOINT profile")
                .await?;
            if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
                let holder = client
                    .query_opt(
                        "SELECT cognito_user_id FROM users \
                         WHERE lower(handle) = lower($1) AND cognito_user_id <> $2",
                        &[&new.handle, &sub],
                    )
                    .await?
                    .map_or_else(|| "another user".to_owned(), |r| r.get(0));
                return Ok(Action::Refused(format!("the handle is taken by {holder}")));
            }
            let reason = e
                .as_db_error()
                .map_or_else(|| e.to_string(), |db| db.message().to_owned());
            Ok(Action::Refused(format!(
                "the row could not be updated: {reason}"
            )))
        }
    }
}
