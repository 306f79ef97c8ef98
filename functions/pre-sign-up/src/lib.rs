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
//! is never lost silently. When the database cannot be reached in time (an outage:
//! [`shared::db::DbError::is_unreachable`]), the taken-handle check lets the sign-up through: a
//! sign-up blocked by an outage is worse than a conflict post-confirmation and drift-check
//! catch; the checks that need no database always apply, and each sign-up let on is a metric
//! ([`FAILED_OPEN_METRIC`]) the template alarms on. A database or secret the function cannot
//! use (a wrong password, a missing grant, a secret or KMS key it may not read) is a setting to
//! fix, not an outage: every sign-up is refused until it is fixed, logged at ERROR and counted
//! ([`MISCONFIGURED_METRIC`]), never let on unchecked.
//!
//! What it refuses depends on the trigger source ([`Source`]). A self-service sign-up
//! (`PreSignUp_SignUp`) is checked as above (a source the event type cannot read is refused
//! as unreadable): the person is
//! there to choose other attributes. An admin's `PreSignUp_AdminCreateUser` and a federated
//! user's first sign-in (`PreSignUp_ExternalProvider`) are never refused for the user's
//! attributes or handle, and the database is not asked: every attribute can still change
//! before a row is written (an admin sets them later; a provider's are mapped again at every
//! sign-in), and a refusal there would lock the user out of the app, not only out of the
//! table. What keeps such a user's row from being written yet is logged at WARN; the row then
//! comes from post-confirmation or drift-check's backfill, which apply the same rules.
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
    db::DbError,
    deadline::Deadline,
    errors::{Classified, diagnostic_for_client, truncate},
    trigger::{TriggerDefaults, TriggerSettings, TriggerState, trigger_source},
    users::{AttributeMapping, SignUp, UserError, handle_is_taken},
};

/// The metric counting sign-ups let on without the taken-handle check (an outage).
pub const FAILED_OPEN_METRIC: &str = "HandleCheckFailedOpen";
/// The metric counting sign-ups refused because the check cannot run on its settings.
pub const MISCONFIGURED_METRIC: &str = "HandleCheckMisconfigured";
/// The metrics' namespace when `METRICS_NAMESPACE` is unset (local runs).
pub const DEFAULT_METRICS_NAMESPACE: &str = "PreSignUp";

/// What this function's settings default to: the taken-handle check may take 4 s (Cognito
/// waits 5 s for the trigger), and the metrics go to [`DEFAULT_METRICS_NAMESPACE`].
pub const DEFAULTS: TriggerDefaults = TriggerDefaults {
    budget_ms: 4000,
    metrics_namespace: Some(DEFAULT_METRICS_NAMESPACE),
};

/// The function's settings, read once at cold start (`Config::from_env(&DEFAULTS)`).
pub type Config = TriggerSettings;

/// What lives for the whole execution environment: the pool, the attribute mapping, the
/// budget and the metrics' namespace.
pub type State = TriggerState;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the event is not a Cognito PreSignUp event: {0}")]
    BadEvent(String),
    #[error(transparent)]
    User(#[from] UserError),
    #[error("the handle is already taken")]
    HandleTaken,
    /// The check cannot run on the function's settings: no retry helps until someone fixes
    /// them, so every sign-up is refused rather than let on unchecked.
    #[error("could not check the handle, and no wait will help (a setting or grant to fix): {0}")]
    Misconfigured(DbError),
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
            Self::Misconfigured(_) => "HandleCheckMisconfigured",
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
            // Nothing of the database or the secret: the log line has the cause.
            Self::Misconfigured(_) => {
                "sign-ups cannot be checked just now; please try again later".to_owned()
            }
        }
    }
}

impl From<Error> for Diagnostic {
    fn from(e: Error) -> Self {
        diagnostic_for_client(&e, e.client_message())
    }
}

/// Where a PreSignUp event comes from (`triggerSource`), and so what may be refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `PreSignUp_SignUp`, or a source this code does not know: checked in full.
    SignUp,
    /// `PreSignUp_AdminCreateUser`: an admin may still set every attribute.
    AdminCreateUser,
    /// `PreSignUp_ExternalProvider`: a federated user's first sign-in; the provider's
    /// attributes are mapped again at every sign-in.
    ExternalProvider,
}

impl Source {
    /// The event's source; an unknown or missing one is checked as a sign-up.
    pub fn of(payload: &Value) -> Self {
        match trigger_source(payload) {
            Some("PreSignUp_AdminCreateUser") => Self::AdminCreateUser,
            Some("PreSignUp_ExternalProvider") => Self::ExternalProvider,
            _ => Self::SignUp,
        }
    }

    /// Whether a sign-up from here is refused when it cannot become a row as it stands.
    pub fn refuses_unwritable(self) -> bool {
        self == Self::SignUp
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
    let (payload, invocation) = state.receive(event);
    let source = trigger_source(&payload).map_or_else(String::new, |s| truncate(s, 64));
    let result = check(state, &payload, &invocation).await;
    match &result {
        Ok(()) => tracing::info!(trigger_source = %source, outcome = "accepted", "pre-sign-up"),
        Err(e @ Error::Misconfigured(_)) => {
            state.count(MISCONFIGURED_METRIC);
            tracing::error!(
                trigger_source = %source,
                outcome = "error",
                error_type = e.kind(),
                error = %e,
                "pre-sign-up"
            )
        }
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

async fn check(state: &State, payload: &Value, invocation: &Deadline) -> Result<(), Error> {
    let source = Source::of(payload);
    let sign_up = match parse_event(payload, &state.mapping) {
        Ok(sign_up) => sign_up,
        Err(Error::User(e)) if !source.refuses_unwritable() => {
            tracing::warn!(?source, error = %e,
                "accepted, but no row can be written yet: it is written once the attributes allow it");
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    if !source.refuses_unwritable() {
        // A taken handle is not asked about: no refusal could follow. post-confirmation and
        // drift-check's backfill meet it when they write the row, and report it.
        tracing::info!(
            ?source,
            "accepted without the taken-handle check; no row can be written yet if the handle is another user's"
        );
        return Ok(());
    }
    let budget = state.budget_before(invocation, Duration::from_millis(200));
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
        Ok(Err(e)) if e.is_unreachable() => {
            state.count(FAILED_OPEN_METRIC);
            tracing::warn!(error = %e, "could not check the handle; the sign-up goes on");
            Ok(())
        }
        Ok(Err(e)) => Err(Error::Misconfigured(e)),
        Err(_) => {
            state.count(FAILED_OPEN_METRIC);
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

    #[test]
    fn each_trigger_source_is_read_and_only_self_service_sign_up_is_refused() {
        for (source, expected, refuses) in [
            (json!("PreSignUp_SignUp"), Source::SignUp, true),
            (
                json!("PreSignUp_AdminCreateUser"),
                Source::AdminCreateUser,
                false,
            ),
            (
                json!("PreSignUp_ExternalProvider"),
                Source::ExternalProvider,
                false,
            ),
            (json!("PreSignUp_Unheard"), Source::SignUp, true),
            (json!("presignup_adminCreateUser"), Source::SignUp, true),
            (json!(null), Source::SignUp, true),
        ] {
            let mut e = event(json!({}));
            e["triggerSource"] = source.clone();
            assert_eq!(Source::of(&e), expected, "{source}");
            assert_eq!(expected.refuses_unwritable(), refuses, "{source}");
        }
    }

    #[test]
    fn a_check_that_cannot_run_on_its_settings_is_refused_naming_nothing_of_the_database() {
        let e = Error::Misconfigured(DbError::ConnectTimeout {
            target: "db.internal:5432/app".into(),
            after: Duration::from_millis(1500),
        });
        let d = Diagnostic::from(e);
        assert_eq!(d.error_type, "Permanent.HandleCheckMisconfigured");
        assert!(
            !d.error_message.contains("db.internal"),
            "{}",
            d.error_message
        );
        let env: std::collections::HashMap<&str, &str> = [
            ("DATABASE_URL", "postgres://app@localhost/app"),
            ("METRICS_NAMESPACE", "AWS/Lambda"),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            Config::from_lookup(&env, &DEFAULTS).unwrap_err().var(),
            "METRICS_NAMESPACE"
        );
    }
}
