//! The Cognito PostConfirmation trigger: puts each newly confirmed user into `users`, exactly
//! once however often Cognito delivers the event, and answers within Cognito's 5 s.
//!
//! One file, in the order a call meets it: [`Config`] (the settings, read once at cold start)
//! and the [`State`] built from it; [`Trigger`], the trigger sources it accepts; [`Error`],
//! each failure with its class and what Cognito is told; [`handle`], one invocation; and
//! [`parse_event`], the event to a [`shared::users::NewUser`] without I/O.
#![forbid(unsafe_code)]
// The handler's future holds the shared insert's (`TriggerState::insert_user`): computing
// its layout across the two crates needs more than the default query depth.
#![recursion_limit = "256"]

use std::time::{Duration, Instant};

use aws_lambda_events::event::cognito::CognitoEventUserPoolsPostConfirmation;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Deserialize;
use serde_json::Value;
use shared::{
    db::DbError,
    errors::{Classified, diagnostic_for_client, truncate},
    schema::SchemaBehind,
    trigger::{TriggerDefaults, TriggerSettings, TriggerState, sub_of, trigger_source},
    users::{AttributeMapping, InsertOutcome, NewUser, UserError},
};

/// What this function's settings default to. One invocation may take 4.5 s before it gives
/// up with a clear error: Cognito waits 5 s, so that leaves room for the answer to travel
/// back. It sends no metrics.
pub const DEFAULTS: TriggerDefaults = TriggerDefaults {
    budget_ms: 4500,
    metrics_namespace: None,
};

/// The function's settings, read once at cold start (`Config::from_env(&DEFAULTS)`).
pub type Config = TriggerSettings;

/// What lives for the whole execution environment: the pool, the attribute mapping, the
/// budget, and the schema guard the first insert carries (see `confirm`).
pub type State = TriggerState;

/// The two trigger sources Cognito sends to a PostConfirmation trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    ConfirmSignUp,
    ConfirmForgotPassword,
}

impl Trigger {
    fn parse(source: &str) -> Option<Self> {
        match source {
            "PostConfirmation_ConfirmSignUp" => Some(Self::ConfirmSignUp),
            "PostConfirmation_ConfirmForgotPassword" => Some(Self::ConfirmForgotPassword),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::ConfirmSignUp => "PostConfirmation_ConfirmSignUp",
            Self::ConfirmForgotPassword => "PostConfirmation_ConfirmForgotPassword",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the event is not a Cognito PostConfirmation event: {0}")]
    BadEvent(String),
    #[error(
        "unsupported trigger source {0:?}: expected PostConfirmation_ConfirmSignUp or \
         PostConfirmation_ConfirmForgotPassword"
    )]
    UnknownTrigger(String),
    #[error(transparent)]
    User(#[from] UserError),
    #[error("the handle is already taken by another user (sub {other_sub})")]
    HandleTaken { other_sub: String },
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    SchemaBehind(#[from] SchemaBehind),
    #[error("gave up after {0:?}, before Cognito's deadline, without knowing the row was written")]
    OutOfTime(Duration),
}

impl Classified for Error {
    /// Whether delivering the same event again can succeed.
    fn is_retryable(&self) -> bool {
        match self {
            Self::Db(e) => e.is_retryable(),
            // Passes once the stack's migration step has run.
            Self::OutOfTime(_) | Self::SchemaBehind(_) => true,
            Self::BadEvent(_)
            | Self::UnknownTrigger(_)
            | Self::User(_)
            | Self::HandleTaken { .. } => false,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::BadEvent(_) => "BadEvent",
            Self::UnknownTrigger(_) => "UnknownTriggerSource",
            Self::User(UserError::MissingAttribute(_)) => "MissingAttribute",
            Self::User(UserError::InvalidAttribute { .. }) => "InvalidAttribute",
            Self::HandleTaken { .. } => "HandleTaken",
            Self::Db(DbError::Secret(_)) => "SecretUnavailable",
            Self::Db(DbError::Query(_)) => "DatabaseQuery",
            Self::Db(_) => "DatabaseUnavailable",
            Self::OutOfTime(_) => "OutOfTime",
            Self::SchemaBehind(_) => "SchemaBehind",
        }
    }
}

impl Error {
    /// What the person signing up may read: Cognito passes the message on to the app. No
    /// other user's sub, no host, port or database name, no SQL; the log line has those.
    pub fn client_message(&self) -> String {
        match self {
            Self::BadEvent(_) | Self::UnknownTrigger(_) => {
                "the sign-up event could not be read".to_owned()
            }
            Self::User(UserError::MissingAttribute(attribute)) => {
                format!("the attribute {attribute} is required")
            }
            Self::User(UserError::InvalidAttribute { attribute, reason }) => {
                format!("the attribute {attribute} cannot be used: {reason}")
            }
            Self::HandleTaken { .. } => "that username is already taken".to_owned(),
            Self::Db(_) | Self::SchemaBehind(_) | Self::OutOfTime(_) => {
                "the account could not be saved just now; please try again".to_owned()
            }
        }
    }
}

impl From<Error> for Diagnostic {
    fn from(e: Error) -> Self {
        diagnostic_for_client(&e, e.client_message())
    }
}

/// Handles one PostConfirmation event. Returns the event exactly as received, which is the
/// only answer Cognito accepts.
pub async fn handle(state: &State, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let (payload, invocation) = state.receive(event);
    let budget = state.budget_before(&invocation, Duration::from_millis(100));
    let source = trigger_source(&payload).unwrap_or("").to_owned();
    let sub = sub_of(&payload, &state.mapping).unwrap_or("-").to_owned();

    let deadline = Instant::now() + budget;
    let result = match tokio::time::timeout(budget, confirm(state, &payload, deadline)).await {
        Ok(result) => result,
        Err(_) => Err(Error::OutOfTime(budget)),
    };
    match &result {
        Ok(outcome) => {
            let outcome = outcome.as_str();
            tracing::info!(trigger_source = %source, sub = %sub, outcome, "post-confirmation");
        }
        Err(e) => {
            let other_sub = match e {
                Error::HandleTaken { other_sub } => other_sub.as_str(),
                _ => "-",
            };
            tracing::error!(
                trigger_source = %truncate(&source, 64),
                sub = %truncate(&sub, 64),
                other_sub,
                outcome = "error",
                retryable = e.is_retryable(),
                error = %e,
                "post-confirmation"
            );
        }
    }
    shared::cold_start::end("handler");
    result.map(|_| payload)
}

/// Reads a PostConfirmation event into the trigger and the row to insert. Pure: every
/// rejection of the input is decided here, before any I/O. The row is the one drift-check's
/// backfill would write ([`NewUser::from_confirmed_attributes`]): a user confirmed without a
/// verified email (AdminConfirmSignUp, then a password reset's heal) gets no row, and
/// drift-check reports them as `unwritable_user` with the same reason.
pub fn parse_event(
    payload: &Value,
    mapping: &AttributeMapping,
) -> Result<(Trigger, NewUser), Error> {
    let source = trigger_source(payload).unwrap_or("");
    // Checked before the typed parse, whose error for an unknown enum value is less clear.
    let trigger =
        Trigger::parse(source).ok_or_else(|| Error::UnknownTrigger(truncate(source, 64)))?;
    let event = <CognitoEventUserPoolsPostConfirmation>::deserialize(payload)
        .map_err(|e| Error::BadEvent(truncate(&e.to_string(), 200)))?;
    let user = NewUser::from_confirmed_attributes(
        event.cognito_event_user_pools_header.user_name.as_deref(),
        &event.request.user_attributes,
        mapping,
    )?;
    Ok((trigger, user))
}

async fn confirm(
    state: &State,
    payload: &Value,
    deadline: Instant,
) -> Result<InsertOutcome, Error> {
    let (trigger, user) = parse_event(payload, &state.mapping)?;
    tracing::debug!(trigger = trigger.as_str(), "inserting confirmed user");
    // Both trigger sources insert only when the row is missing: a sign-up creates it, a
    // password reset heals a row an earlier failure lost, and neither overwrites. A restart
    // of the server is ridden out while the budget allows: each failure here is a person
    // who sees an error at sign-up.
    match state.insert_user(&user, deadline).await?? {
        InsertOutcome::HandleTaken { other_sub } => Err(Error::HandleTaken { other_sub }),
        outcome => Ok(outcome),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use shared::{db::Pooling, env::ConfigError};

    use super::*;

    fn config(pooling: Option<&'static str>) -> Result<Config, ConfigError> {
        let mut env: HashMap<&str, &str> = [
            ("DATABASE_URL", "postgres://app@localhost/app"),
            ("DB_SSLMODE", "disable"),
        ]
        .into_iter()
        .collect();
        if let Some(p) = pooling {
            env.insert("DB_POOLING", p);
        }
        Config::from_lookup(&env, &DEFAULTS)
    }

    #[test]
    fn keeps_no_session_state_unless_told_the_session_is_its_own() {
        assert_eq!(config(None).unwrap().db.pooling, Pooling::Transaction);
        assert_eq!(
            config(Some("transaction")).unwrap().db.pooling,
            Pooling::Transaction
        );
        assert_eq!(
            config(Some("Session")).unwrap().db.pooling,
            Pooling::Session
        );
        let e = config(Some("statement")).unwrap_err();
        assert_eq!(e.var(), "DB_POOLING");
        assert!(e.to_string().contains("transaction"), "{e}");
    }
}
