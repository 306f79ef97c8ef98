//! The Cognito PreSignUp trigger: refuses a sign-up that could never become a row, before the
//! account exists. post-confirmation runs after Cognito has confirmed the user; when it cannot
//! write the row (a handle the table refuses, a handle already taken without regard to case,
//! no email), the user would exist in Cognito with no row, and no later run could fix it. Here
//! the same rules refuse it first ([`shared::users::SignUp`], the one definition the insert
//! and drift-check's backfill use too), with a short message Cognito passes to the app.
//!
//! Two sign-ups may still pick the same free handle at once: both pass here, the first to
//! confirm gets the row, and the second's confirmation fails in post-confirmation ("that
//! username is already taken"); drift-check then reports that user as `unwritable_user`, so it
//! is never lost silently. When the database cannot be asked in time, the taken-handle check
//! lets the sign-up through (logged): a sign-up blocked by an outage is worse than a conflict
//! post-confirmation and drift-check catch; the checks that need no database always apply.
//!
//! One file: [`Config`] and the [`State`] built from it once; [`Error`], each refusal and
//! failure with what Cognito passes on; [`parse_event`], the event to a
//! [`shared::users::SignUp`] without I/O; and [`handle`], one invocation.
#![forbid(unsafe_code)]

use std::time::Duration;

use aws_lambda_events::event::cognito::CognitoEventUserPoolsPreSignup;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Deserialize;
use serde_json::Value;
use shared::{
    db::{Db, DbConfig, DbError},
    env::{ConfigError, Env, ProcessEnv},
    errors::{Classified, diagnostic_for_client, truncate},
    users::{AttributeMapping, SignUp, UserError, handle_is_taken},
};

/// The function's settings, read once at cold start.
#[derive(Debug, Clone)]
pub struct Config {
    pub db: DbConfig,
    pub mapping: AttributeMapping,
    /// How long the taken-handle check may take. Cognito waits 5 s for the trigger.
    pub budget: Duration,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&ProcessEnv)
    }

    pub fn from_lookup(env: &impl Env) -> Result<Self, ConfigError> {
        Ok(Self {
            db: DbConfig::for_trigger(env)?,
            mapping: AttributeMapping::from_lookup(env)?,
            budget: env.millis_or("RESPONSE_BUDGET_MS", 4000, 500..=900_000)?,
        })
    }
}

/// What lives for the whole execution environment.
pub struct State {
    pub db: Db,
    pub mapping: AttributeMapping,
    pub budget: Duration,
}

impl State {
    /// Builds the pool and opens its connection during init (best effort).
    pub async fn init(config: Config) -> Result<Self, DbError> {
        Ok(Self {
            db: Db::init_alone(&config.db).await?,
            mapping: config.mapping,
            budget: config.budget,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the event is not a Cognito PreSignUp event: {0}")]
    BadEvent(String),
    #[error(transparent)]
    User(#[from] UserError),
    #[error("the handle is already taken")]
    HandleTaken,
}

impl Classified for Error {
    /// A refusal is the answer: signing up again with the same attributes meets it again.
    fn is_retryable(&self) -> bool {
        false
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::BadEvent(_) => "BadEvent",
            Self::User(UserError::MissingAttribute(_)) => "MissingAttribute",
            Self::User(UserError::InvalidAttribute { .. }) => "InvalidAttribute",
            Self::HandleTaken => "HandleTaken",
        }
    }
}

impl Error {
    /// What the person signing up reads (Cognito passes it to the app): short, and never
    /// another user's identity.
    pub fn client_message(&self) -> String {
        match self {
            Self::BadEvent(_) => "the sign-up could not be read".to_owned(),
            Self::User(UserError::MissingAttribute(attribute)) => {
                format!("the attribute {attribute} is required")
            }
            Self::User(UserError::InvalidAttribute { attribute, reason }) => {
                format!("the attribute {attribute} cannot be used: {reason}")
            }
            Self::HandleTaken => "that username is already taken".to_owned(),
        }
    }
}

impl From<Error> for Diagnostic {
    fn from(e: Error) -> Self {
        diagnostic_for_client(&e, e.client_message())
    }
}

/// Reads a PreSignUp event into what the row would hold. Pure: every refusal that needs no
/// database is decided here.
pub fn parse_event(payload: &Value, mapping: &AttributeMapping) -> Result<SignUp, Error> {
    let event = <CognitoEventUserPoolsPreSignup>::deserialize(payload)
        .map_err(|e| Error::BadEvent(truncate(&e.to_string(), 200)))?;
    Ok(SignUp::from_attributes(
        event.cognito_event_user_pools_header.user_name.as_deref(),
        &event.request.user_attributes,
        mapping,
    )?)
}

/// Handles one PreSignUp event: the event unchanged (nothing auto-confirmed or auto-verified)
/// when the sign-up may go on, else the refusal.
pub async fn handle(state: &State, event: LambdaEvent<Value>) -> Result<Value, Error> {
    shared::cold_start::mark("event");
    let (payload, context) = event.into_parts();
    let source = payload
        .get("triggerSource")
        .and_then(Value::as_str)
        .map_or_else(String::new, |s| truncate(s, 64));
    let result = check(state, &payload, &context).await;
    match &result {
        Ok(()) => tracing::info!(trigger_source = %source, outcome = "accepted", "pre-sign-up"),
        Err(e) => tracing::warn!(
            trigger_source = %source,
            outcome = "refused",
            error_type = e.kind(),
            error = %e,
            "pre-sign-up"
        ),
    }
    shared::cold_start::end("handler");
    result.map(|()| payload)
}

async fn check(
    state: &State,
    payload: &Value,
    context: &lambda_runtime::Context,
) -> Result<(), Error> {
    let sign_up = parse_event(payload, &state.mapping)?;
    let left = shared::deadline::time_left(context).saturating_sub(Duration::from_millis(200));
    let budget = state.budget.min(left);
    let handle = sign_up.handle.as_str();
    let asked = tokio::time::timeout(
        budget,
        state
            .db
            .run(async |client| handle_is_taken(client, handle).await),
    )
    .await;
    match asked {
        Ok(Ok(true)) => Err(Error::HandleTaken),
        Ok(Ok(false)) => Ok(()),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "could not check the handle; the sign-up goes on");
            Ok(())
        }
        Err(_) => {
            tracing::warn!(
                budget_ms = budget.as_millis() as u64,
                "the handle check took too long; the sign-up goes on"
            );
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(attributes: Value) -> Value {
        json!({
            "version": "1", "region": "us-east-1", "userPoolId": "us-east-1_abc",
            "userName": "andrew", "triggerSource": "PreSignUp_SignUp",
            "callerContext": {"awsSdkVersion": "1", "clientId": "abc"},
            "request": {"userAttributes": attributes},
            "response": {"autoConfirmUser": false, "autoVerifyEmail": false, "autoVerifyPhone": false}
        })
    }

    #[test]
    fn a_sign_up_the_table_would_refuse_is_refused_with_a_short_message() {
        let mapping = AttributeMapping::default();
        let ok = parse_event(
            &event(json!({"email": "a@example.com", "preferred_username": "andrew"})),
            &mapping,
        )
        .unwrap();
        assert_eq!(ok.handle, "andrew");
        for (attributes, says) in [
            (
                json!({"preferred_username": "andrew"}),
                "the attribute email is required",
            ),
            (
                json!({"email": "a@example.com", "preferred_username": "a".repeat(65)}),
                "the attribute preferred_username cannot be used",
            ),
            (
                json!({"email": "a@example.com", "preferred_username": "ａｎｄｒｅｗ"}),
                "NFKC",
            ),
            (
                json!({"email": "a@example.com", "preferred_username": "and\u{200B}rew"}),
                "invisible",
            ),
        ] {
            let e = parse_event(&event(attributes.clone()), &mapping).unwrap_err();
            let message = e.client_message();
            assert!(message.contains(says), "{attributes}: {message}");
            assert!(message.len() <= 200, "{message}");
        }
        let e = parse_event(&json!({"request": 1}), &mapping).unwrap_err();
        assert_eq!(e.client_message(), "the sign-up could not be read");
    }
}
