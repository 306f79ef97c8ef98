//! The sign-in guard, Cognito's PostAuthentication trigger: writes the row a user lacks at
//! sign-in, before Cognito hands out tokens. PostConfirmation never fires for a user an
//! administrator creates (`AdminCreateUser`, then a new password at the first sign-in); without
//! the guard their row waits for drift-check's next pass while they already hold tokens.
//!
//! Cognito invokes PostAuthentication after authentication is complete and before the user
//! has received tokens, once per sign-in (`PostAuthentication_Authentication`). A token refresh
//! does not invoke it. PreTokenGeneration fires on every refresh as well, which would put a
//! database round trip and a way to fail on each one, for a row that is missing at most once.
//!
//! One round trip when all goes well: post-confirmation's own insert
//! ([`shared::users::insert_confirmed_user_with`], `INSERT ... ON CONFLICT DO NOTHING`), with
//! the schema guard in the same flight until it is found current. A user who has a row costs
//! that one exchange and changes nothing. The row is the one post-confirmation and
//! drift-check's backfill write ([`NewUser::from_confirmed_attributes`]), so the three paths
//! are idempotent with each other.
//!
//! What it lets through, and what it refuses:
//! - The database cannot be reached in time (an outage, [`DbError::is_unreachable`], or the
//!   budget spent): the sign-in goes on without the row. This is counted
//!   ([`FAILED_OPEN_METRIC`]) and alarmed, and drift-check's backfill writes the row later. A
//!   sign-in blocked by an outage is worse than a row written late.
//! - A user whose row cannot be written (no verified email, a handle the table refuses or
//!   another user holds): the sign-in goes on, logged at WARN. Refusing would lock the person
//!   out of the app over attributes they cannot change without signing in, and drift-check
//!   reports each one as `unwritable_user`.
//! - A database or secret the function cannot use (a wrong password, a missing grant), a
//!   schema older than this build, or an event that is not a PostAuthentication event: the
//!   sign-in is refused, logged at ERROR and alarmed through the function's errors. Each is a
//!   setting to fix, not an outage, and never lets users on unchecked.
//!
//! One file: [`Config`] and the [`State`] built from it once; [`Error`], each refusal with
//! what Cognito passes on; [`parse_event`], the event to the row without I/O; [`handle`], one
//! invocation.
#![forbid(unsafe_code)]
// The handler's future holds the shared insert's (`TriggerState::insert_user`): computing
// its layout across the two crates needs more than the default query depth.
#![recursion_limit = "256"]

use std::time::{Duration, Instant};

use aws_lambda_events::event::cognito::CognitoEventUserPoolsPostAuthentication;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Deserialize;
use serde_json::Value;
use shared::{
    db::DbError,
    errors::{Classified, diagnostic_for_client, truncate},
    schema::SchemaBehind,
    trigger::{TriggerDefaults, TriggerSettings, TriggerState, sub_of, trigger_source},
    users::{AttributeMapping, InsertOutcome, NewUser},
};

/// The metric counting sign-ins let on without their row because the database could not be
/// reached in time.
pub const FAILED_OPEN_METRIC: &str = "SignInGuardFailedOpen";
/// The metrics' namespace when `METRICS_NAMESPACE` is unset (local runs).
pub const DEFAULT_METRICS_NAMESPACE: &str = "SignInGuard";
/// The only trigger source Cognito sends to a PostAuthentication trigger.
pub const TRIGGER_SOURCE: &str = "PostAuthentication_Authentication";

/// What this function's settings default to: the insert may take 3 s before the sign-in goes
/// on without it (Cognito waits 5 s for the trigger, and a person waits on this at every
/// sign-in), and the metrics go to [`DEFAULT_METRICS_NAMESPACE`].
pub const DEFAULTS: TriggerDefaults = TriggerDefaults {
    budget_ms: 3000,
    metrics_namespace: Some(DEFAULT_METRICS_NAMESPACE),
};

/// The function's settings, read once at cold start (`Config::from_env(&DEFAULTS)`).
pub type Config = TriggerSettings;

/// What lives for the whole execution environment: the pool, the attribute mapping, the
/// budget, the metrics' namespace and the schema guard the first insert carries.
pub type State = TriggerState;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the event is not a Cognito PostAuthentication event: {0}")]
    BadEvent(String),
    #[error("unsupported trigger source {0:?}: expected PostAuthentication_Authentication")]
    UnknownTrigger(String),
    /// The insert cannot run on the function's settings: no wait fixes it.
    #[error(
        "could not write the user's row, and no wait will help (a setting or grant to fix): {0}"
    )]
    Misconfigured(DbError),
    #[error(transparent)]
    SchemaBehind(#[from] SchemaBehind),
}

impl Classified for Error {
    fn is_retryable(&self) -> bool {
        // Passes once the stack's migration step has run.
        matches!(self, Self::SchemaBehind(_))
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::BadEvent(_) => "BadEvent",
            Self::UnknownTrigger(_) => "UnknownTriggerSource",
            Self::Misconfigured(_) => "SignInGuardMisconfigured",
            Self::SchemaBehind(_) => "SchemaBehind",
        }
    }
}

impl Error {
    /// What the person signing in may read (Cognito passes it to the app): nothing of the
    /// database, the secret or another user.
    pub fn client_message(&self) -> String {
        match self {
            Self::BadEvent(_) | Self::UnknownTrigger(_) => {
                "the sign-in event could not be read".to_owned()
            }
            Self::Misconfigured(_) | Self::SchemaBehind(_) => {
                "sign-in is unavailable just now; please try again later".to_owned()
            }
        }
    }
}

impl From<Error> for Diagnostic {
    fn from(e: Error) -> Self {
        diagnostic_for_client(&e, e.client_message())
    }
}

/// What one sign-in did about the row, as logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The user had no row: it was written.
    Inserted,
    /// The user had a row; nothing was written.
    AlreadyPresent,
    /// The row cannot be written as the user stands (the reason); drift-check reports them.
    Unwritable(String),
    /// The database could not be reached in time: let on without the row.
    FailedOpen,
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Inserted => "inserted",
            Self::AlreadyPresent => "already_present",
            Self::Unwritable(_) => "unwritable",
            Self::FailedOpen => "failed_open",
        }
    }
}

/// Reads a PostAuthentication event into the row its user must have, or why none can be
/// written (`Ok(Err(reason))`). Pure: every decision on the input is made here.
pub fn parse_event(
    payload: &Value,
    mapping: &AttributeMapping,
) -> Result<Result<NewUser, String>, Error> {
    let source = trigger_source(payload).unwrap_or("");
    if source != TRIGGER_SOURCE {
        return Err(Error::UnknownTrigger(truncate(source, 64)));
    }
    let event = <CognitoEventUserPoolsPostAuthentication>::deserialize(payload)
        .map_err(|e| Error::BadEvent(truncate(&e.to_string(), 200)))?;
    Ok(NewUser::from_confirmed_attributes(
        event.cognito_event_user_pools_header.user_name.as_deref(),
        &event.request.user_attributes,
        mapping,
    )
    .map_err(|e| e.to_string()))
}

/// Handles one PostAuthentication event: the event unchanged, the only answer Cognito
/// accepts, unless the sign-in is refused.
pub async fn handle(state: &State, event: LambdaEvent<Value>) -> Result<Value, Error> {
    // On a cold start Cognito's five seconds include init: what is left of them caps the
    // budget, so a cold start during an outage still fails open in time.
    let (payload, invocation) = state.receive(event);
    let budget = state.budget_before(&invocation, Duration::from_millis(200));
    let sub = sub_of(&payload, &state.mapping).map_or_else(|| "-".to_owned(), |s| truncate(s, 64));
    let result = guard(state, &payload, budget).await;
    match &result {
        Ok(Outcome::Unwritable(reason)) => tracing::warn!(
            sub = %sub,
            outcome = "unwritable",
            reason = %reason,
            "sign-in-guard: the sign-in goes on; drift-check reports the user"
        ),
        Ok(Outcome::FailedOpen) => {
            state.count(FAILED_OPEN_METRIC);
            tracing::warn!(
                sub = %sub,
                outcome = "failed_open",
                budget_ms = budget.as_millis() as u64,
                "sign-in-guard: the database could not be reached in time; the sign-in goes on"
            )
        }
        Ok(outcome) => {
            tracing::info!(sub = %sub, outcome = outcome.as_str(), "sign-in-guard")
        }
        Err(e) => tracing::error!(
            sub = %sub,
            outcome = "error",
            error_type = e.kind(),
            error = %e,
            "sign-in-guard"
        ),
    }
    shared::cold_start::end("handler");
    result.map(|_| payload)
}

async fn guard(state: &State, payload: &Value, budget: Duration) -> Result<Outcome, Error> {
    let user = match parse_event(payload, &state.mapping)? {
        Ok(user) => user,
        Err(reason) => return Ok(Outcome::Unwritable(reason)),
    };
    let deadline = Instant::now() + budget;
    let written = tokio::time::timeout(budget, state.insert_user(&user, deadline)).await;
    match written {
        Ok(Ok(Ok(InsertOutcome::Inserted))) => Ok(Outcome::Inserted),
        Ok(Ok(Ok(InsertOutcome::AlreadyPresent))) => Ok(Outcome::AlreadyPresent),
        Ok(Ok(Ok(InsertOutcome::HandleTaken { other_sub }))) => Ok(Outcome::Unwritable(format!(
            "the handle is taken by {other_sub}"
        ))),
        Ok(Ok(Err(behind))) => Err(Error::SchemaBehind(behind)),
        Ok(Err(e)) if e.is_unreachable() => Ok(Outcome::FailedOpen),
        Ok(Err(e)) => Err(Error::Misconfigured(e)),
        Err(_) => Ok(Outcome::FailedOpen),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use super::*;

    const EVENT: &str = include_str!("../../../events/sign-in-guard.json");

    #[test]
    fn the_documented_event_is_read_into_the_row_post_confirmation_writes() {
        let payload: Value = serde_json::from_str(EVENT).unwrap();
        let user = parse_event(&payload, &AttributeMapping::default())
            .unwrap()
            .unwrap();
        assert_eq!(user.email, "staff@example.com");
        assert_eq!(user.handle, "staff");
    }

    #[test]
    fn an_unverified_email_lets_the_sign_in_on_without_a_row() {
        let mut payload: Value = serde_json::from_str(EVENT).unwrap();
        payload["request"]["userAttributes"]["email_verified"] = json!("false");
        let reason = parse_event(&payload, &AttributeMapping::default())
            .unwrap()
            .unwrap_err();
        assert!(reason.contains("not verified"), "{reason}");
    }

    #[test]
    fn another_trigger_source_is_refused_naming_nothing_of_the_database() {
        let mut payload: Value = serde_json::from_str(EVENT).unwrap();
        payload["triggerSource"] = json!("TokenGeneration_Authentication");
        let e = parse_event(&payload, &AttributeMapping::default()).unwrap_err();
        assert_eq!(e.kind(), "UnknownTriggerSource");
        let d = Diagnostic::from(Error::Misconfigured(DbError::ConnectTimeout {
            target: "db.internal:5432/app".into(),
            after: Duration::from_millis(1500),
        }));
        assert_eq!(d.error_type, "Permanent.SignInGuardMisconfigured");
        assert!(
            !d.error_message.contains("db.internal"),
            "{}",
            d.error_message
        );
    }

    #[test]
    fn the_budget_and_namespace_are_checked_at_cold_start() {
        let env: HashMap<&str, &str> = [
            ("DATABASE_URL", "postgres://app@localhost/app"),
            ("RESPONSE_BUDGET_MS", "10"),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            Config::from_lookup(&env, &DEFAULTS).unwrap_err().var(),
            "RESPONSE_BUDGET_MS"
        );
    }
}
