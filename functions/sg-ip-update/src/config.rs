//! The settings, read and checked once at cold start, and what is built from them once per
//! execution environment: the pool, the EC2 client, the schema guard.

use std::time::Duration;

use ingress::{
    capacity::{Groups, MAX_ADDITIONAL_GROUPS},
    ec2::Ec2,
    group::SecurityGroupId,
};
use shared::{
    db::{Db, DbConfig, DbError},
    env::{ConfigError, Env, ProcessEnv},
    schema::SchemaGuard,
};

use crate::{Envelope, Source};

/// The function's settings, read once at cold start.
#[derive(Debug, Clone)]
pub struct Config {
    pub db: DbConfig,
    /// The group the rows are managed under (`SECURITY_GROUP_ID`, DatabaseSecurityGroupId):
    /// their key, and the first group a rule is placed in.
    pub security_group_id: SecurityGroupId,
    /// Every managed group a rule may be placed in, `security_group_id` first, then
    /// `ADDITIONAL_SECURITY_GROUP_IDS`; and the rules each holds (`RULES_PER_SECURITY_GROUP`).
    /// Its IAM policy names exactly these.
    pub groups: Groups,
    pub aws_timeout: Duration,
    /// The EventBridge events this function takes; any other envelope is refused.
    pub envelope: Envelope,
    /// The kind of request this function takes (`SG_IP_UPDATE_SOURCE`, required: the
    /// template sets it per function).
    pub source: Source,
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
        let groups = managed_groups(env, &security_group_id)?;
        let source = env
            .required("SG_IP_UPDATE_SOURCE", "(function_url or eventbridge)")?
            .parse()
            .map_err(|e: String| ConfigError::invalid("SG_IP_UPDATE_SOURCE", e))?;
        let defaults = Envelope::default();
        Ok(Self {
            db: DbConfig::from_lookup(env)?,
            security_group_id,
            groups,
            source,
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

/// `security_group_id`, then the comma-separated `ADDITIONAL_SECURITY_GROUP_IDS` (each checked,
/// none twice, at most [`MAX_ADDITIONAL_GROUPS`]), held to `RULES_PER_SECURITY_GROUP` rules
/// each.
fn managed_groups(env: &impl Env, first: &SecurityGroupId) -> Result<Groups, ConfigError> {
    const VAR: &str = "ADDITIONAL_SECURITY_GROUP_IDS";
    let mut ids = vec![first.to_string()];
    let listed = env.non_empty(VAR).unwrap_or_default();
    for id in listed.split(',').map(str::trim).filter(|id| !id.is_empty()) {
        let group: SecurityGroupId = id.parse().map_err(|e: ingress::group::BadGroupId| {
            ConfigError::invalid(VAR, format!("{id:?}: {e}"))
        })?;
        if ids.contains(&group.to_string()) {
            return Err(ConfigError::invalid(VAR, format!("{id} is named twice")));
        }
        ids.push(group.to_string());
    }
    if ids.len() > 1 + MAX_ADDITIONAL_GROUPS {
        return Err(ConfigError::invalid(
            VAR,
            format!(
                "{} groups named; at most {MAX_ADDITIONAL_GROUPS} \
                 (AdditionalDatabaseSecurityGroupIds: the template grants no more)",
                ids.len() - 1
            ),
        ));
    }
    Ok(Groups {
        ids,
        rules_per_group: ingress::capacity::rules_per_group(env)?,
    })
}

/// What lives for the whole execution environment.
pub struct State {
    pub db: Db,
    pub ec2: Ec2,
    pub security_group_id: SecurityGroupId,
    pub groups: Groups,
    pub envelope: Envelope,
    pub source: Source,
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
            groups: config.groups,
            envelope: config.envelope,
            source: config.source,
            schema,
            lock_wait: config.lock_wait,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(sg: &'static str, source: Option<&'static str>) -> HashMap<&'static str, &'static str> {
        [
            ("SECURITY_GROUP_ID", sg),
            ("DATABASE_URL", "postgres://u@h/d"),
            ("DB_SSLMODE", "disable"),
        ]
        .into_iter()
        .chain(source.map(|s| ("SG_IP_UPDATE_SOURCE", s)))
        .collect()
    }

    #[test]
    fn security_group_ids_are_checked_at_cold_start() {
        let ok = Some("eventbridge");
        assert!(Config::from_lookup(&env("sg-0123456789abcdef0", ok)).is_ok());
        assert!(Config::from_lookup(&env("sg-XYZ", ok)).is_err());
    }

    #[test]
    fn the_additional_groups_and_the_quota_are_checked_at_cold_start() {
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut e = env("sg-0123456789abcdef0", Some("eventbridge"));
            e.extend(extra.iter().copied());
            Config::from_lookup(&e)
        };
        let c = with(&[]).unwrap();
        assert_eq!(c.groups.ids, ["sg-0123456789abcdef0"]);
        assert_eq!(c.groups.rules_per_group, 60);
        let c = with(&[
            (
                "ADDITIONAL_SECURITY_GROUP_IDS",
                " sg-0aaaaaaa, sg-0bbbbbbb ,",
            ),
            ("RULES_PER_SECURITY_GROUP", "120"),
        ])
        .unwrap();
        assert_eq!(
            c.groups.ids,
            ["sg-0123456789abcdef0", "sg-0aaaaaaa", "sg-0bbbbbbb"]
        );
        assert_eq!(c.groups.rules_per_group, 120);
        let four = "sg-0aaaaaaa,sg-0bbbbbbb,sg-0ccccccc,sg-0ddddddd";
        let c = with(&[("ADDITIONAL_SECURITY_GROUP_IDS", four)]).unwrap();
        assert_eq!(c.groups.ids.len(), 5);
        for bad in [
            ("ADDITIONAL_SECURITY_GROUP_IDS", "sg-0aaaaaaa,sg-XYZ"),
            ("ADDITIONAL_SECURITY_GROUP_IDS", "sg-0aaaaaaa,sg-0aaaaaaa"),
            ("ADDITIONAL_SECURITY_GROUP_IDS", "sg-0123456789abcdef0"),
            (
                "ADDITIONAL_SECURITY_GROUP_IDS",
                "sg-0aaaaaaa,sg-0bbbbbbb,sg-0ccccccc,sg-0ddddddd,sg-0eeeeeee",
            ),
            ("RULES_PER_SECURITY_GROUP", "0"),
            ("RULES_PER_SECURITY_GROUP", "1001"),
            ("RULES_PER_SECURITY_GROUP", "sixty"),
        ] {
            let e = with(&[bad]).unwrap_err().to_string();
            assert!(e.contains(bad.0), "{bad:?}: {e}");
        }
    }

    #[test]
    fn the_source_is_required_and_named_when_missing_or_unknown() {
        let sg = "sg-0123456789abcdef0";
        for (source, expected) in [
            (Some("function_url"), Ok(Source::FunctionUrl)),
            (Some("eventbridge"), Ok(Source::Eventbridge)),
            (None, Err("SG_IP_UPDATE_SOURCE must be set")),
            (Some(" "), Err("SG_IP_UPDATE_SOURCE must be set")),
            (Some("both"), Err("SG_IP_UPDATE_SOURCE is invalid")),
            (Some("FunctionUrl"), Err("SG_IP_UPDATE_SOURCE is invalid")),
        ] {
            let got = Config::from_lookup(&env(sg, source)).map(|c| c.source);
            match (got, expected) {
                (Ok(s), Ok(e)) => assert_eq!(s, e),
                (Err(e), Err(prefix)) => {
                    assert!(e.to_string().starts_with(prefix), "{source:?}: {e}")
                }
                (got, expected) => panic!("{source:?}: {got:?}, expected {expected:?}"),
            }
        }
    }
}
