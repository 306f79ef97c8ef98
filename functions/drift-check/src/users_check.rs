//! Cognito users against `users`, by sub. Memory stays flat however large the pool: each page
//! of 60 users is checked against the table in one statement and its subs are noted in a
//! session table, so orphans are found at the end by one anti-join in Postgres.

use std::{
    collections::HashMap,
    time::{Instant, SystemTime},
};

use aws_sdk_cognitoidentityprovider::types::{UserStatusType, UserType};
use deadpool_postgres::ClientWrapper;
use serde_json::json;
use shared::users::{InsertOutcome, NewUser, insert_confirmed_user};

use crate::{
    Completion, Error, State,
    report::{Action, Finding, Kind, Run},
};

/// Cognito's largest ListUsers page.
const PAGE: i32 = 60;

const NOTE_PAGE: &str = "\
    WITH page AS (SELECT unnest($1::text[]) AS sub), \
    noted AS (INSERT INTO drift_seen_subs (sub) SELECT sub FROM page ON CONFLICT DO NOTHING) \
    SELECT c.sub FROM unnest($2::text[]) AS c(sub) \
    WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.cognito_user_id = c.sub)";

/// How many orphans there are, and the subs of the oldest $2 of them: a pool can lose many
/// users at once (a restored backup, a deleted pool), and only the findings under the cap are
/// stored, so no more rows than that are ever held in memory.
const ORPHANS: &str = "\
    WITH orphan AS ( \
        SELECT u.cognito_user_id, u.created_at, u.id FROM users u \
        WHERE u.created_at < $1 \
          AND NOT EXISTS (SELECT 1 FROM drift_seen_subs s WHERE s.sub = u.cognito_user_id)) \
    SELECT (SELECT count(*) FROM orphan), \
           ARRAY(SELECT cognito_user_id FROM orphan ORDER BY created_at, id LIMIT $2)";

fn attributes(user: &UserType) -> HashMap<String, String> {
    user.attributes()
        .iter()
        .filter_map(|a| Some((a.name().to_owned(), a.value()?.to_owned())))
        .collect()
}

/// Walks the whole pool; returns `Partial` when the deadline came first (then no orphan is
/// reported: an unfinished listing cannot tell a missing sub from an unread one).
pub async fn check_users(
    state: &State,
    client: &ClientWrapper,
    run: &mut Run,
    deadline: Instant,
) -> Result<Completion, Error> {
    // Rows created after this instant may belong to users listed before they existed, and
    // ListUsers may lag a moment behind a sign-up: only older rows can be orphans. The
    // database's clock, because it wrote created_at.
    let cutoff: SystemTime = client
        .query_one("SELECT now() - interval '5 minutes'", &[])
        .await?
        .get(0);
    client
        .batch_execute("CREATE TEMP TABLE IF NOT EXISTS drift_seen_subs (sub text PRIMARY KEY); TRUNCATE drift_seen_subs")
        .await?;
    let note = client.prepare_cached(NOTE_PAGE).await?;
    let sub_attr = state.config.mapping.sub.as_str();
    let mut pages = state
        .cognito
        .list_users()
        .user_pool_id(&state.config.user_pool_id)
        .limit(PAGE)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| Error::cognito(&e))?;
        let mut all = Vec::with_capacity(PAGE as usize);
        let mut confirmed = HashMap::new();
        for user in page.users() {
            let attrs = attributes(user);
            let Some(sub) = attrs.get(sub_attr).cloned() else {
                continue;
            };
            all.push(sub.clone());
            if user.user_status() == Some(&UserStatusType::Confirmed) {
                confirmed.insert(sub, (user.username().map(str::to_owned), attrs));
            }
        }
        let confirmed_subs: Vec<&String> = confirmed.keys().collect();
        let missing: Vec<String> = client
            .query(&note, &[&all, &confirmed_subs])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        for sub in missing {
            let Some((username, attrs)) = confirmed.get(&sub) else {
                continue;
            };
            let action = if run.remediating() && Instant::now() < deadline {
                backfill(state, client, username.as_deref(), attrs).await?
            } else if run.remediating() {
                Action::OutOfTime
            } else {
                Action::None
            };
            let finding = Finding {
                kind: Kind::MissingUser,
                resource: format!("{}/{sub}", state.config.user_pool_id),
                desired: Some(json!({"sub": sub, "status": "CONFIRMED"})),
                actual: None,
                action,
            };
            run.record(client, finding).await?;
        }
        if Instant::now() >= deadline {
            return Ok(Completion::Partial);
        }
    }

    // User data is never deleted automatically: orphans are reported, nothing more.
    let room = i64::try_from(run.room(Kind::OrphanUser)).unwrap_or(i64::MAX);
    let row = client.query_one(ORPHANS, &[&cutoff, &room]).await?;
    let (total, listed): (i64, Vec<String>) = (row.get(0), row.get(1));
    let unlisted = u64::try_from(total)
        .unwrap_or(0)
        .saturating_sub(listed.len() as u64);
    for sub in listed {
        let finding = Finding {
            kind: Kind::OrphanUser,
            resource: format!("users/{sub}"),
            desired: None,
            actual: Some(json!({"sub": sub})),
            action: Action::Reported,
        };
        run.record(client, finding).await?;
    }
    run.count_unstored(Kind::OrphanUser, &Action::Reported, unlisted);
    Ok(Completion::Complete)
}

/// Inserts the lost sign-up with the trigger's own mapping and insert.
async fn backfill(
    state: &State,
    client: &ClientWrapper,
    username: Option<&str>,
    attrs: &HashMap<String, String>,
) -> Result<Action, Error> {
    let user = match NewUser::from_attributes(username, attrs, &state.config.mapping) {
        Ok(u) => u,
        Err(e) => return Ok(Action::Failed(e.to_string())),
    };
    Ok(match insert_confirmed_user(client, &user).await? {
        InsertOutcome::Inserted => Action::Backfilled,
        InsertOutcome::AlreadyPresent => Action::InsertedMeanwhile,
        InsertOutcome::HandleTaken { other_sub } => {
            Action::Failed(format!("the handle is taken by {other_sub}"))
        }
    })
}
