//! What the Cognito user-pool triggers share (post-confirmation, pre-sign-up, sign-in-guard):
//! the settings each reads at cold start ([`TriggerSettings`]), the state built from them once
//! ([`TriggerState`]), the time one event has within Cognito's wait, and the idempotent insert
//! of a user's row with the schema guard in its round trip ([`TriggerState::insert_user`]).
//!
//! Each function keeps its own parts beside these: its event type, its errors and what
//! Cognito is told, its metrics.

use std::time::{Duration, Instant};

use lambda_runtime::LambdaEvent;
use serde_json::Value;

use crate::{
    cold_start,
    db::{Db, DbConfig, DbError, Pooling},
    deadline::{COGNITO_WAIT, Deadline},
    env::{ConfigError, Env, ProcessEnv},
    metrics,
    schema::{SchemaBehind, SchemaGuard},
    users::{AttributeMapping, InsertMode, InsertOutcome, NewUser, insert_confirmed_user_with},
};

/// What one trigger's settings default to: the rest is the same for all.
#[derive(Debug, Clone, Copy)]
pub struct TriggerDefaults {
    /// `RESPONSE_BUDGET_MS` when unset.
    pub budget_ms: u64,
    /// `METRICS_NAMESPACE` when unset; `None` for a function that sends no metrics, which
    /// then does not read the variable at all.
    pub metrics_namespace: Option<&'static str>,
}

/// The settings every trigger reads once at cold start.
#[derive(Debug, Clone)]
pub struct TriggerSettings {
    pub db: DbConfig,
    pub mapping: AttributeMapping,
    /// How long one event's work may take (`RESPONSE_BUDGET_MS`). Cognito waits 5 s for the
    /// trigger, so each function's default leaves room for the answer to travel back.
    pub budget: Duration,
    /// Where the metrics go (`METRICS_NAMESPACE`), for a function that sends any.
    pub metrics_namespace: Option<String>,
}

impl TriggerSettings {
    /// Reads the settings from the process environment.
    pub fn from_env(defaults: &TriggerDefaults) -> Result<Self, ConfigError> {
        Self::from_lookup(&ProcessEnv, defaults)
    }

    /// Reads the database settings ([`DbConfig::for_trigger`]), the attribute mapping,
    /// `RESPONSE_BUDGET_MS` (from 500 ms to 15 min) and, for a function that sends metrics,
    /// `METRICS_NAMESPACE` ([`metrics::namespace_from`]).
    pub fn from_lookup(env: &impl Env, defaults: &TriggerDefaults) -> Result<Self, ConfigError> {
        Ok(Self {
            db: DbConfig::for_trigger(env)?,
            mapping: AttributeMapping::from_lookup(env)?,
            budget: env.millis_or("RESPONSE_BUDGET_MS", defaults.budget_ms, 500..=900_000)?,
            metrics_namespace: defaults
                .metrics_namespace
                .map(|default| metrics::namespace_from(env, default))
                .transpose()?,
        })
    }
}

/// What every trigger keeps for the whole execution environment.
pub struct TriggerState {
    pub db: Db,
    pub mapping: AttributeMapping,
    pub budget: Duration,
    pub metrics_namespace: Option<String>,
    /// Asked in the first insert's own round trip, until the schema is found current.
    pub schema: SchemaGuard,
    /// Whether each statement sets its own timeout in a transaction of its own
    /// ([`Pooling::Transaction`]); otherwise the session's, set at login, applies.
    pub stateless: bool,
}

impl TriggerState {
    /// Builds the pool and opens its connection during init (best effort). The secret is the
    /// only AWS call, so the SDK is set up only when there is a secret to fetch. The schema is
    /// not asked here: the first insert carries its guard.
    pub async fn init(settings: TriggerSettings) -> Result<Self, DbError> {
        Ok(Self {
            db: Db::init_alone(&settings.db).await?,
            mapping: settings.mapping,
            budget: settings.budget,
            metrics_namespace: settings.metrics_namespace,
            schema: SchemaGuard::new(),
            stateless: settings.db.pooling == Pooling::Transaction,
        })
    }

    /// Counts one `metric` in the function's namespace. A function without one sends no
    /// metrics and has nothing to count.
    pub fn count(&self, metric: &str) {
        match &self.metrics_namespace {
            Some(namespace) => metrics::emit_count(namespace, metric, 1),
            None => tracing::warn!(metric, "no metrics namespace: not counted"),
        }
    }

    /// Takes one event as it arrives: marks it for the cold-start timing and reads the
    /// invocation's [`Deadline`] first, within what is left of Cognito's wait. A local Runtime
    /// API's deadline already past counts as the budget; on a cold start Cognito's five seconds
    /// include init, so a cold start during an outage still answers in time.
    pub fn receive(&self, event: LambdaEvent<Value>) -> (Value, Deadline) {
        cold_start::mark("event");
        let (payload, context) = event.into_parts();
        let deadline = Deadline::of(&context, self.budget)
            .within_caller_wait(COGNITO_WAIT, cold_start::init_elapsed());
        (payload, deadline)
    }

    /// The time the work may take now: the configured budget, or what is left before
    /// `deadline` less `margin` (kept for the answer), whichever is shorter.
    pub fn budget_before(&self, deadline: &Deadline, margin: Duration) -> Duration {
        self.budget.min(deadline.left().saturating_sub(margin))
    }

    /// Inserts the user's row unless one exists ([`insert_confirmed_user_with`]), riding out a
    /// server restart until `deadline`. The schema is checked in the insert's own round trip,
    /// and only until it is found current: the guard fails the insert's transaction on a schema
    /// this build was not made for, and only then does a second query say how far behind it
    /// is (the inner error).
    pub async fn insert_user(
        &self,
        user: &NewUser,
        deadline: Instant,
    ) -> Result<Result<InsertOutcome, SchemaBehind>, DbError> {
        let timeout = self.stateless.then(|| self.db.statement_timeout());
        self.db
            .run_until(deadline, async |client| {
                let guard = self.schema.guard_statement();
                let mode = InsertMode {
                    timeout,
                    guard: guard.as_deref(),
                };
                match insert_confirmed_user_with(client, user, mode).await {
                    Err(e) if guard.is_some() && SchemaGuard::refused(&e) => {
                        if let Err(behind) = self.schema.check(client).await? {
                            return Ok(Err(behind));
                        }
                        // Migrated between the two: the insert changed nothing, so run it again.
                        let mode = InsertMode {
                            timeout,
                            guard: None,
                        };
                        insert_confirmed_user_with(client, user, mode).await.map(Ok)
                    }
                    Ok(outcome) => {
                        if guard.is_some() {
                            self.schema.found_current();
                        }
                        Ok(Ok(outcome))
                    }
                    Err(e) => Err(e),
                }
            })
            .await
    }
}

/// The event's `triggerSource`, if it has one.
pub fn trigger_source(payload: &Value) -> Option<&str> {
    payload.get("triggerSource").and_then(Value::as_str)
}

/// The user's sub in the event, by the attribute `mapping` names, for the log line.
pub fn sub_of<'a>(payload: &'a Value, mapping: &AttributeMapping) -> Option<&'a str> {
    payload
        .get("request")?
        .get("userAttributes")?
        .get(&mapping.sub)?
        .as_str()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use super::*;

    const DEFAULTS: TriggerDefaults = TriggerDefaults {
        budget_ms: 4000,
        metrics_namespace: Some("Trigger"),
    };

    fn settings(
        vars: &[(&'static str, &'static str)],
        defaults: TriggerDefaults,
    ) -> Result<TriggerSettings, ConfigError> {
        let mut env: HashMap<&str, &str> = [("DATABASE_URL", "postgres://app@localhost/app")]
            .into_iter()
            .collect();
        env.extend(vars.iter().copied());
        TriggerSettings::from_lookup(&env, &defaults)
    }

    #[test]
    fn the_budget_is_the_functions_default_unless_set_and_checked_at_cold_start() {
        fn budget(vars: &[(&'static str, &'static str)]) -> Result<Duration, ConfigError> {
            settings(vars, DEFAULTS).map(|s| s.budget)
        }
        assert_eq!(budget(&[]).unwrap(), Duration::from_millis(4000));
        let set = budget(&[("RESPONSE_BUDGET_MS", "2500")]).unwrap();
        assert_eq!(set, Duration::from_millis(2500));
        for bad in ["10", "900001", "soon"] {
            let e = budget(&[("RESPONSE_BUDGET_MS", bad)]).unwrap_err();
            assert_eq!(e.var(), "RESPONSE_BUDGET_MS", "{bad}");
        }
        let pooling = settings(&[("DB_POOLING", "statement")], DEFAULTS);
        assert_eq!(pooling.unwrap_err().var(), "DB_POOLING");
    }

    #[test]
    fn the_metrics_namespace_is_read_only_by_a_function_that_sends_metrics() {
        let namespace = |vars, defaults| settings(vars, defaults).map(|s| s.metrics_namespace);
        let none = TriggerDefaults {
            metrics_namespace: None,
            ..DEFAULTS
        };
        let own = namespace(&[("METRICS_NAMESPACE", "Trigger/stack")], DEFAULTS);
        assert_eq!(own.unwrap().as_deref(), Some("Trigger/stack"));
        assert_eq!(
            namespace(&[], DEFAULTS).unwrap().as_deref(),
            Some("Trigger")
        );
        let aws = [("METRICS_NAMESPACE", "AWS/Lambda")];
        assert_eq!(
            namespace(&aws, DEFAULTS).unwrap_err().var(),
            "METRICS_NAMESPACE"
        );
        // Not read at all where the function sends none: no value of it stops a cold start.
        assert_eq!(namespace(&aws, none).unwrap(), None);
    }

    #[test]
    fn the_trigger_source_is_read_only_when_it_is_a_string() {
        assert_eq!(
            trigger_source(&json!({"triggerSource": "PreSignUp_SignUp"})),
            Some("PreSignUp_SignUp")
        );
        assert_eq!(trigger_source(&json!({"triggerSource": 1})), None);
        assert_eq!(trigger_source(&json!({})), None);
    }

    #[test]
    fn the_sub_is_found_under_the_mapped_attribute_whatever_its_name_holds() {
        let event = json!({"request": {"userAttributes": {
            "sub": "s-1", "custom:id/~1x": "s-2", "number": 7
        }}});
        let mut mapping = AttributeMapping::default();
        assert_eq!(sub_of(&event, &mapping), Some("s-1"));
        mapping.sub = "custom:id/~1x".to_owned();
        assert_eq!(sub_of(&event, &mapping), Some("s-2"));
        mapping.sub = "number".to_owned();
        assert_eq!(sub_of(&event, &mapping), None);
        assert_eq!(sub_of(&json!({"request": 1}), &mapping), None);
    }
}
