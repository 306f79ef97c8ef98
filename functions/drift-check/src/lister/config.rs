//! The lister's settings, read and checked once at cold start, and the clients built from them:
//! Cognito (to list the pool) and Lambda (to hand the listing to drift-check). It reads no
//! database setting: the lister runs outside the VPC and never reaches Postgres.

use std::time::Duration;

use shared::env::{ConfigError, Env, ProcessEnv};

use crate::listing::MAX_CHUNK_BYTES;

/// The lister's settings.
#[derive(Debug, Clone)]
pub struct ListerConfig {
    /// The pool listed (`USER_POOL_ID`): drift-check refuses a listing of any other. `None`
    /// where the stack has no users half: the lister then only starts drift-check's run.
    pub user_pool_id: Option<String>,
    /// drift-check's function name or ARN (`DRIFT_CHECK_FUNCTION`).
    pub check_function: String,
    pub list_users_per_second: f64,
    pub page_size: i32,
    /// The bytes of users one hand-over aims at (`DRIFT_HANDOVER_BYTES`, default 1 MiB): well
    /// under Lambda's 6 MB synchronous payload and drift-check's own limit.
    pub handover_bytes: usize,
    /// Each Cognito call's budget (`AWS_CALL_TIMEOUT_MS`, default 5 s).
    pub aws_timeout: Duration,
    /// Each hand-over's (`begin`, `chunk`) budget, one attempt never re-sent
    /// (`DRIFT_HANDOVER_TIMEOUT_MS`, default 30 s): room for a cold start of drift-check in the
    /// VPC, whose init (Lambda allows it 10 s) fetches its secret and connects to Postgres
    /// before it stages anything under its own statement timeouts.
    pub handover_timeout: Duration,
    /// The time kept back for the last call, in which drift-check runs the whole check
    /// (`DRIFT_FINAL_CALL_MS`, default 310 s: drift-check's 300 s timeout and a margin).
    pub final_call: Duration,
    /// The secret holding the hand-over key (`DRIFT_HANDOVER_KEY_SECRET_ARN`), required with a
    /// pool: every hand-over is signed with it ([`crate::listing::seal`]).
    pub handover_key_secret: Option<String>,
}

impl ListerConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&ProcessEnv)
    }

    pub fn from_lookup(env: &impl Env) -> Result<Self, ConfigError> {
        // drift-check's own rules for these, so the two never disagree.
        let (user_pool_id, list_users_per_second, page_size) = match env.non_empty("USER_POOL_ID") {
            Some(_) => {
                let (pool, rate, size) = crate::cognito_pages::pool_and_pacing(env)?;
                (Some(pool), rate, size)
            }
            None => (None, crate::pacing::DEFAULT_PER_SECOND, 60),
        };
        let check_function = env.required("DRIFT_CHECK_FUNCTION", "(drift-check's name or ARN)")?;
        if check_function.len() > 170
            || !check_function
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_:.$".contains(c))
        {
            return Err(ConfigError::invalid(
                "DRIFT_CHECK_FUNCTION",
                "expected a function name or ARN",
            ));
        }
        let handover_bytes: usize =
            env.parse_or("DRIFT_HANDOVER_BYTES", 1024 * 1024, "a number of bytes")?;
        if !(256..=MAX_CHUNK_BYTES / 2).contains(&handover_bytes) {
            return Err(ConfigError::invalid(
                "DRIFT_HANDOVER_BYTES",
                format!("expected 256 to {} bytes", MAX_CHUNK_BYTES / 2),
            ));
        }
        let handover_key_secret = crate::listing::handover_key_secret(env, user_pool_id.is_some())?;
        Ok(Self {
            handover_key_secret,
            user_pool_id,
            check_function,
            list_users_per_second,
            page_size,
            handover_bytes,
            aws_timeout: env.millis_or("AWS_CALL_TIMEOUT_MS", 5000, 500..=60_000)?,
            handover_timeout: env.millis_or(
                "DRIFT_HANDOVER_TIMEOUT_MS",
                30_000,
                1_000..=300_000,
            )?,
            final_call: env.millis_or("DRIFT_FINAL_CALL_MS", 310_000, 1_000..=900_000)?,
        })
    }
}

/// What lives for the whole execution environment.
pub struct Lister {
    pub config: ListerConfig,
    pub cognito: aws_sdk_cognitoidentityprovider::Client,
    /// For the hand-overs, each answered within `handover_timeout`.
    pub lambda: aws_sdk_lambda::Client,
    /// For the last call, which runs the whole check within `final_call`.
    pub lambda_final: aws_sdk_lambda::Client,
    /// The hand-over key, read on the first listing (`None` without a pool).
    pub handover_key: Option<super::key::ListerKey>,
}

impl Lister {
    pub async fn init(config: ListerConfig) -> Self {
        let sdk = shared::aws::sdk_config().await;
        // An Invoke is never re-sent by the SDK: an attempt given up on may still be running
        // drift-check, so a second would stage or run it twice (and, at its reserved
        // concurrency of 1, be throttled by the first). Only a throttle, which proves the call
        // did not run, is tried again ([`super::invoke`]).
        let handover = shared::aws::single_attempt(&sdk, config.handover_timeout);
        let last = shared::aws::single_attempt(&sdk, config.final_call);
        Self {
            cognito: aws_sdk_cognitoidentityprovider::Client::new(&shared::aws::with_timeout(
                &sdk,
                config.aws_timeout,
            )),
            lambda: aws_sdk_lambda::Client::new(&handover),
            lambda_final: aws_sdk_lambda::Client::new(&last),
            handover_key: config.handover_key_secret.clone().map(|arn| {
                let sdk = shared::aws::with_timeout(&sdk, config.aws_timeout);
                super::key::ListerKey::new(aws_sdk_secretsmanager::Client::new(&sdk), arn)
            }),
            config,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(extra: &[(&'static str, &'static str)]) -> Result<ListerConfig, ConfigError> {
        let mut env: HashMap<&str, &str> = [
            ("USER_POOL_ID", "us-east-1_abc"),
            ("DRIFT_CHECK_FUNCTION", "stack-DriftCheckFunction-AbC123"),
            (
                "DRIFT_HANDOVER_KEY_SECRET_ARN",
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:key-AbCdEf",
            ),
        ]
        .into_iter()
        .collect();
        env.extend(extra.iter().copied());
        ListerConfig::from_lookup(&env)
    }

    /// The lister needs no database: no DATABASE_URL or secret is asked for.
    #[test]
    fn the_lister_needs_its_pool_and_drift_check_and_nothing_of_the_database() {
        let c = config(&[]).unwrap();
        assert_eq!(
            (
                c.handover_bytes,
                c.handover_timeout.as_secs(),
                c.final_call.as_secs(),
                c.page_size
            ),
            (1024 * 1024, 30, 310, 60)
        );
        for (var, value) in [
            ("DRIFT_CHECK_FUNCTION", "x; rm -rf /"),
            ("DRIFT_HANDOVER_BYTES", "10"),
            ("DRIFT_HANDOVER_BYTES", "6000000"),
            ("DRIFT_FINAL_CALL_MS", "5"),
            ("DRIFT_HANDOVER_TIMEOUT_MS", "500"),
            ("USER_POOL_ID", "nope"),
            ("DRIFT_LIST_USERS_PER_SECOND", "31"),
            ("DRIFT_HANDOVER_KEY_SECRET_ARN", "key"),
            ("DRIFT_HANDOVER_KEY_SECRET_ARN", "arn:aws:s3:::bucket"),
            ("DRIFT_HANDOVER_KEY_SECRET_ARN", ""),
        ] {
            let e = config(&[(var, value)]).unwrap_err();
            assert_eq!(e.var(), var, "{value}: {e}");
        }
        let mut env: HashMap<&str, &str> = HashMap::new();
        env.insert("USER_POOL_ID", "us-east-1_abc");
        env.insert("DRIFT_CHECK_FUNCTION", "f");
        // A pool is listed only with the key that signs its hand-overs.
        assert_eq!(
            ListerConfig::from_lookup(&env).unwrap_err().var(),
            "DRIFT_HANDOVER_KEY_SECRET_ARN"
        );
        env.remove("DRIFT_CHECK_FUNCTION");
        assert_eq!(
            ListerConfig::from_lookup(&env).unwrap_err().var(),
            "DRIFT_CHECK_FUNCTION"
        );
        // Without a pool (no users half) it only starts drift-check's runs.
        env.remove("USER_POOL_ID");
        env.insert("DRIFT_CHECK_FUNCTION", "f");
        assert_eq!(ListerConfig::from_lookup(&env).unwrap().user_pool_id, None);
    }
}
