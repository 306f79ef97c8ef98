//! The settings, read and checked once at cold start, and what is built from them once per
//! execution environment: the pool, the EC2 client, the schema guard.

use std::time::Duration;

use ingress::{ec2::Ec2, group::SecurityGroupId};
use shared::{
    db::{Db, DbConfig, DbError},
    env::{ConfigError, Env, ProcessEnv},
    schema::SchemaGuard,
};

use crate::Envelope;

/// The function's settings, read once at cold start.
#[derive(Debug, Clone)]
pub struct Config {
    pub db: DbConfig,
    /// The one security group this function may change (its IAM policy names only it).
    pub security_group_id: SecurityGroupId,
    pub aws_timeout: Duration,
    /// The EventBridge events this function takes; any other envelope is refused.
    pub envelope: Envelope,
    /// How long a request waits for another one for the same owner to finish.
    pub lock_wait: Duration,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&ProcessEnv)
    }

    pub fn from_lookup(env: &impl Env) -> Result<Self, ConfigError> {
        let security_group_id = env
            .required("SECURITY_GROUP_ID", "(sg-...)")?
            .parse()
            .map_err(|e: ingress::group::BadGroupId| {
                ConfigError::invalid("SECURITY_GROUP_ID", e.to_string())
            })?;
        let defaults = Envelope::default();
        Ok(Self {
            db: DbConfig::from_lookup(env)?,
            security_group_id,
            aws_timeout: env.millis_or("AWS_CALL_TIMEOUT_MS", 5000, 500..=60_000)?,
            lock_wait: env.millis_or("OWNER_LOCK_WAIT_MS", 20_000, 100..=60_000)?,
            envelope: Envelope {
                source: env.non_empty("IP_EVENT_SOURCE").unwrap_or(defaults.source),
                detail_type: env
                    .non_empty("IP_EVENT_DETAIL_TYPE")
                    .unwrap_or(defaults.detail_type),
            },
        })
    }
}

/// What lives for the whole execution environment.
pub struct State {
    pub db: Db,
    pub ec2: Ec2,
    pub security_group_id: SecurityGroupId,
    pub envelope: Envelope,
    pub schema: SchemaGuard,
    pub lock_wait: Duration,
}

impl State {
    pub async fn init(config: Config) -> Result<Self, DbError> {
        let sdk = shared::aws::sdk_config().await;
        let db = Db::init(&config.db, &sdk).await?;
        let schema = SchemaGuard::new();
        schema.warm_up(&db).await;
        Ok(Self {
            db,
            ec2: Ec2::new(&sdk, config.aws_timeout),
            security_group_id: config.security_group_id,
            envelope: config.envelope,
            schema,
            lock_wait: config.lock_wait,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_group_ids_are_checked_at_cold_start() {
        let env = |sg: &'static str| -> std::collections::HashMap<&str, &str> {
            [
                ("SECURITY_GROUP_ID", sg),
                ("DATABASE_URL", "postgres://u@h/d"),
                ("DB_SSLMODE", "disable"),
            ]
            .into_iter()
            .collect()
        };
        assert!(Config::from_lookup(&env("sg-0123456789abcdef0")).is_ok());
        assert!(Config::from_lookup(&env("sg-XYZ")).is_err());
    }
}
