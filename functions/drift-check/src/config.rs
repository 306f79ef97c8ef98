//! The settings, read and checked once at cold start, and what is built from them once per
//! execution environment: the pool, the EC2 and Cognito clients, the schema guard.

use std::time::Duration;

use ingress::{ec2::Ec2, group::SecurityGroupId};
use shared::{
    db::{Db, DbConfig, DbError},
    env::{ConfigError, Env, ProcessEnv},
    schema::SchemaGuard,
    users::AttributeMapping,
};

use crate::{
    pacing,
    request::{Lapse, Mode},
};

/// The function's settings, read once at cold start.
#[derive(Debug, Clone)]
pub struct Config {
    pub db: DbConfig,
    /// Which halves a run checks (`DRIFT_CHECKS`).
    pub checks: Checks,
    /// Where the users half gets its listing (`DRIFT_USERS_FROM`).
    pub users_from: crate::listing::UsersFrom,
    /// The pool the users half checks (`USER_POOL_ID`, required with that half). Empty when
    /// the users half is off and none was given: nothing reads it then.
    pub user_pool_id: String,
    /// The most a run may do (`DRIFT_MODE`): an invocation may ask for less, never more.
    pub mode: Mode,
    /// What a run does with a rule past its lifetime, whatever the mode (`DRIFT_LAPSE`).
    pub lapse: Lapse,
    pub mapping: AttributeMapping,
    pub aws_timeout: Duration,
    /// Stop this long before the invocation's deadline, to record a partial run in time.
    pub deadline_margin: Duration,
    /// Findings of one kind stored and logged per run; the rest are only counted.
    pub max_findings_per_kind: u64,
    /// The CloudWatch namespace of the findings metrics; the template scopes it to the stack
    /// (`DriftCheck/<stack>`) so two stacks in one account keep their alarms apart.
    pub metrics_namespace: String,
    /// The ceiling on ListUsers calls per second (Cognito's quota is 30 for the whole account).
    pub list_users_per_second: f64,
    /// Users per ListUsers page (Cognito's largest is 60).
    pub page_size: i32,
    /// The security groups whose CIDR rules are checked (`SECURITY_GROUP_IDS`; the template
    /// gives the database's group). A group stays checked when its last row is deleted, so an
    /// offboarded developer's rule, and any later 0.0.0.0/0, is still found. Unset (local
    /// runs only): the groups the rows name.
    pub managed_groups: Option<Vec<SecurityGroupId>>,
    /// The largest share of a group's developer rules one run may change
    /// (`DRIFT_MAX_CHANGE_SHARE`); a run that would change more changes none of them and
    /// reports why.
    pub max_change_share: f64,
    /// The functions' own security group (`FUNCTION_SECURITY_GROUP_ID`; the template gives
    /// it): a rule on a managed group whose source is this group is how the stack reaches the
    /// database, kept as `allowed`.
    pub function_group: Option<SecurityGroupId>,
    /// The inbound rules a managed group holds per address family (`RULES_PER_SECURITY_GROUP`,
    /// the quota "Inbound or outbound rules per security group"; 60 by default): each group's
    /// use is reported against it, and a missing rule is created only where there is room.
    pub rules_per_group: usize,
    /// The secret holding the hand-over key (`DRIFT_HANDOVER_KEY_SECRET_ARN`): required where
    /// the users half takes the lister's hand-over, each of which must be signed with it.
    pub handover_key_secret: Option<String>,
}

/// The namespace when `METRICS_NAMESPACE` is unset (local runs).
pub const DEFAULT_METRICS_NAMESPACE: &str = "DriftCheck";

mod halves;
pub use halves::{Checks, Half};

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&ProcessEnv)
    }

    pub fn from_lookup(env: &impl Env) -> Result<Self, ConfigError> {
        let checks = Checks::from_lookup(env)?;
        let user_pool_id = if checks.users {
            env.required(
                "USER_POOL_ID",
                "(region_id), for the users half (DRIFT_CHECKS)",
            )?
        } else {
            env.non_empty("USER_POOL_ID").unwrap_or_default()
        };
        // Empty only where the users half is off and no pool was given.
        let pool_ok = (user_pool_id.is_empty() && !checks.users)
            || user_pool_id.split_once('_').is_some_and(|(region, id)| {
                !region.is_empty()
                    && !id.is_empty()
                    && user_pool_id.len() <= 55
                    && user_pool_id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            });
        if !pool_ok {
            return Err(ConfigError::invalid(
                "USER_POOL_ID",
                "expected <region>_<id>",
            ));
        }
        let mode = match env.non_empty("DRIFT_MODE") {
            None => Mode::Report,
            Some(m) => Mode::parse(&m)
                .ok_or_else(|| ConfigError::invalid("DRIFT_MODE", "report or remediate"))?,
        };
        let lapse = match env.non_empty("DRIFT_LAPSE") {
            None => Lapse::Revoke,
            Some(l) => Lapse::parse(&l)
                .ok_or_else(|| ConfigError::invalid("DRIFT_LAPSE", "revoke or report"))?,
        };
        let metrics_namespace = env
            .non_empty("METRICS_NAMESPACE")
            .unwrap_or_else(|| DEFAULT_METRICS_NAMESPACE.to_owned());
        // CloudWatch's rules for a namespace: printable ASCII, at most 255, not AWS's own.
        if metrics_namespace.len() > 255
            || !metrics_namespace
                .chars()
                .all(|c| c.is_ascii_graphic() || c == ' ')
            || metrics_namespace.starts_with("AWS/")
        {
            return Err(ConfigError::invalid(
                "METRICS_NAMESPACE",
                "printable ASCII, at most 255 characters, not starting with AWS/",
            ));
        }
        let users_from = crate::listing::UsersFrom::from_lookup(env)?;
        let handover_key_secret = crate::listing::handover_key_secret(
            env,
            checks.users && users_from == crate::listing::UsersFrom::Lister,
        )?;
        Ok(Self {
            db: DbConfig::from_lookup(env)?,
            checks,
            users_from,
            handover_key_secret,
            user_pool_id,
            mode,
            lapse,
            mapping: AttributeMapping::from_lookup(env)?,
            aws_timeout: env.millis_or("AWS_CALL_TIMEOUT_MS", 5000, 500..=60_000)?,
            deadline_margin: env.millis_or("DRIFT_DEADLINE_MARGIN_MS", 2000, 100..=60_000)?,
            max_findings_per_kind: env.parse_or(
                "DRIFT_MAX_FINDINGS_PER_KIND",
                1000,
                "a whole number",
            )?,
            metrics_namespace,
            list_users_per_second: list_users_rate(env)?,
            page_size: env
                .parse_or("DRIFT_PAGE_SIZE", 60, "a whole number from 1 to 60")
                .and_then(|n: i32| {
                    (1..=60).contains(&n).then_some(n).ok_or_else(|| {
                        ConfigError::invalid(
                            "DRIFT_PAGE_SIZE",
                            "expected a whole number from 1 to 60",
                        )
                    })
                })?,
            managed_groups: managed_groups(env)?,
            rules_per_group: ingress::capacity::rules_per_group(env)?,
            max_change_share: max_change_share(env)?,
            function_group: env
                .non_empty("FUNCTION_SECURITY_GROUP_ID")
                .map(|id| {
                    id.parse().map_err(|e: ingress::group::BadGroupId| {
                        ConfigError::invalid("FUNCTION_SECURITY_GROUP_ID", e.to_string())
                    })
                })
                .transpose()?,
        })
    }
}

/// `DRIFT_MAX_CHANGE_SHARE`: above 0, at most 1 (every rule); default one half.
fn max_change_share(env: &impl Env) -> Result<f64, ConfigError> {
    const VAR: &str = "DRIFT_MAX_CHANGE_SHARE";
    let share: f64 = env.parse_or(VAR, 0.5, "a share of a group's rules, from 0 to 1")?;
    if !(share > 0.0 && share <= 1.0) {
        return Err(ConfigError::invalid(
            VAR,
            "expected a share of a group's rules above 0 and at most 1",
        ));
    }
    Ok(share)
}

/// `SECURITY_GROUP_IDS`: a comma-separated list of group ids, each checked.
fn managed_groups(env: &impl Env) -> Result<Option<Vec<SecurityGroupId>>, ConfigError> {
    const VAR: &str = "SECURITY_GROUP_IDS";
    let Some(list) = env.non_empty(VAR) else {
        return Ok(None);
    };
    let mut groups = Vec::new();
    for id in list.split(',').map(str::trim).filter(|id| !id.is_empty()) {
        let group: SecurityGroupId = id
            .parse()
            .map_err(|e: ingress::group::BadGroupId| ConfigError::invalid(VAR, e.to_string()))?;
        if !groups.contains(&group) {
            groups.push(group);
        }
    }
    if groups.is_empty() {
        return Err(ConfigError::invalid(
            VAR,
            "expected sg-... ids, comma-separated",
        ));
    }
    // DatabaseSecurityGroupId and AdditionalDatabaseSecurityGroupIds: the IAM grants cover
    // the first and four more.
    let most = 1 + ingress::capacity::MAX_ADDITIONAL_GROUPS;
    if groups.len() > most {
        return Err(ConfigError::invalid(
            VAR,
            format!(
                "{} groups named; at most {most} (DatabaseSecurityGroupId and at most four \
                 AdditionalDatabaseSecurityGroupIds: the template grants no more)",
                groups.len()
            ),
        ));
    }
    Ok(Some(groups))
}

/// `DRIFT_LIST_USERS_PER_SECOND`: above zero, at most Cognito's quota.
pub(crate) fn list_users_rate(env: &impl Env) -> Result<f64, ConfigError> {
    const VAR: &str = "DRIFT_LIST_USERS_PER_SECOND";
    let rate: f64 = env.parse_or(
        VAR,
        pacing::DEFAULT_PER_SECOND,
        "a number of calls per second",
    )?;
    // At least one call a minute: slower would make the pacer sleep through a whole run.
    if !(1.0 / 60.0..=pacing::QUOTA_PER_SECOND).contains(&rate) {
        return Err(ConfigError::invalid(
            VAR,
            format!(
                "expected calls per second from 1/60 to {} (Cognito's ListUsers quota for the whole account)",
                pacing::QUOTA_PER_SECOND
            ),
        ));
    }
    Ok(rate)
}

/// What lives for the whole execution environment.
pub struct State {
    pub db: Db,
    pub ec2: Ec2,
    pub cognito: aws_sdk_cognitoidentityprovider::Client,
    pub config: Config,
    pub schema: SchemaGuard,
    /// The hand-over key, read on the first hand-over (`None`: no hand-over is taken).
    pub handover_key: Option<crate::listing::key::HandOverKey>,
}

impl State {
    pub async fn init(config: Config) -> Result<Self, DbError> {
        let sdk = shared::aws::sdk_config().await;
        let db = Db::init(&config.db, &sdk).await?;
        let schema = SchemaGuard::new();
        schema.warm_up(&db).await;
        let cognito = aws_sdk_cognitoidentityprovider::Client::new(&shared::aws::with_timeout(
            &sdk,
            config.aws_timeout,
        ));
        let handover_key = config.handover_key_secret.clone().map(|arn| {
            let sdk = shared::aws::with_timeout(&sdk, config.aws_timeout);
            crate::listing::key::HandOverKey::new(aws_sdk_secretsmanager::Client::new(&sdk), arn)
        });
        Ok(Self {
            handover_key,
            db,
            ec2: Ec2::new(&sdk, config.aws_timeout),
            cognito,
            config,
            schema,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(extra: &[(&'static str, &'static str)]) -> Result<Config, ConfigError> {
        let mut env: HashMap<&str, &str> = [
            ("USER_POOL_ID", "us-east-1_abc"),
            ("DATABASE_URL", "postgres://app@localhost/app"),
            ("DB_SSLMODE", "disable"),
        ]
        .into_iter()
        .collect();
        env.extend(extra.iter().copied());
        Config::from_lookup(&env)
    }

    /// Deployed with no settings, a run only reports drift but revokes a lapsed rule.
    #[test]
    fn by_default_drift_is_reported_and_lapsed_access_revoked() {
        let c = config(&[]).unwrap();
        assert_eq!((c.mode, c.lapse), (Mode::Report, Lapse::Revoke));
        let c = config(&[("DRIFT_LAPSE", "report")]).unwrap();
        assert_eq!(c.lapse, Lapse::Report);
        let e = config(&[("DRIFT_LAPSE", "never")]).unwrap_err();
        assert_eq!(e.var(), "DRIFT_LAPSE");
    }

    /// A users half fed by the lister takes hand-overs only signed with the stack's key: it
    /// does not start without the secret holding it.
    #[test]
    fn the_lister_s_hand_over_needs_its_key() {
        let e = config(&[("DRIFT_USERS_FROM", "lister")]).unwrap_err();
        assert_eq!(e.var(), "DRIFT_HANDOVER_KEY_SECRET_ARN");
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:key-AbCdEf";
        let c = config(&[
            ("DRIFT_USERS_FROM", "lister"),
            ("DRIFT_HANDOVER_KEY_SECRET_ARN", arn),
        ])
        .unwrap();
        assert_eq!(c.handover_key_secret.as_deref(), Some(arn));
        assert_eq!(config(&[]).unwrap().handover_key_secret, None);
    }

    /// Both halves unless told; a half named is the only one run; the users half needs its
    /// pool, the rules half alone needs none; a word it does not know stops the cold start.
    #[test]
    fn the_halves_are_chosen_by_drift_checks() {
        let c = config(&[]).unwrap();
        assert_eq!(c.checks, Checks::BOTH);
        let c = config(&[("DRIFT_CHECKS", "rules, users")]).unwrap();
        assert_eq!(c.checks, Checks::BOTH);
        let c = config(&[("DRIFT_CHECKS", "rules")]).unwrap();
        assert!(c.checks.runs(Half::Rules) && !c.checks.runs(Half::Users));

        let mut env: HashMap<&str, &str> = [
            ("DATABASE_URL", "postgres://app@localhost/app"),
            ("DB_SSLMODE", "disable"),
            ("DRIFT_CHECKS", "rules"),
            ("SECURITY_GROUP_IDS", "sg-0123456789abcdef0"),
        ]
        .into_iter()
        .collect();
        let c = Config::from_lookup(&env).unwrap();
        assert_eq!((c.checks.users, c.user_pool_id.as_str()), (false, ""));
        env.insert("DRIFT_CHECKS", "users");
        let e = Config::from_lookup(&env).unwrap_err();
        assert_eq!(e.var(), "USER_POOL_ID", "{e}");
        env.insert("DRIFT_CHECKS", "rules,users");
        assert_eq!(Config::from_lookup(&env).unwrap_err().var(), "USER_POOL_ID");

        for bad in ["groups", "rules,", "rules;users", ",", "Users"] {
            let e = config(&[("DRIFT_CHECKS", bad)]).unwrap_err();
            assert_eq!(e.var(), "DRIFT_CHECKS", "{bad}: {e}");
        }
    }

    #[test]
    fn pacing_defaults_to_a_third_of_the_quota_and_full_pages() {
        let c = config(&[]).unwrap();
        assert_eq!((c.list_users_per_second, c.page_size), (10.0, 60));
        let c = config(&[
            ("DRIFT_LIST_USERS_PER_SECOND", "2.5"),
            ("DRIFT_PAGE_SIZE", "7"),
        ])
        .unwrap();
        assert_eq!((c.list_users_per_second, c.page_size), (2.5, 7));
    }

    #[test]
    fn the_managed_groups_are_a_checked_list() {
        assert_eq!(config(&[]).unwrap().managed_groups, None);
        let c = config(&[(
            "SECURITY_GROUP_IDS",
            "sg-0123456789abcdef0, sg-0a1b2c3d,sg-0a1b2c3d",
        )])
        .unwrap();
        let ids: Vec<String> = c
            .managed_groups
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(ids, ["sg-0123456789abcdef0", "sg-0a1b2c3d"]);
        let five = "sg-0a1b2c3d,sg-0aaaaaaa,sg-0bbbbbbb,sg-0ccccccc,sg-0ddddddd";
        assert_eq!(
            config(&[("SECURITY_GROUP_IDS", five)])
                .unwrap()
                .managed_groups
                .map(|g| g.len()),
            Some(5)
        );
        let six = "sg-0a1b2c3d,sg-0aaaaaaa,sg-0bbbbbbb,sg-0ccccccc,sg-0ddddddd,sg-0eeeeeee";
        for bad in ["sg-XYZ", "sg-0a1b2c3d,0.0.0.0/0", " , ", six] {
            let e = config(&[("SECURITY_GROUP_IDS", bad)]).unwrap_err();
            assert_eq!(e.var(), "SECURITY_GROUP_IDS", "{bad}: {e}");
        }
    }

    #[test]
    fn pacing_past_the_quota_or_pages_past_60_are_refused_by_name() {
        for (var, value) in [
            ("DRIFT_LIST_USERS_PER_SECOND", "31"),
            ("DRIFT_LIST_USERS_PER_SECOND", "0"),
            ("DRIFT_LIST_USERS_PER_SECOND", "-1"),
            ("DRIFT_LIST_USERS_PER_SECOND", "NaN"),
            ("DRIFT_LIST_USERS_PER_SECOND", "fast"),
            ("DRIFT_PAGE_SIZE", "61"),
            ("DRIFT_PAGE_SIZE", "0"),
            ("DRIFT_MAX_CHANGE_SHARE", "0"),
            ("DRIFT_MAX_CHANGE_SHARE", "1.5"),
            ("DRIFT_MAX_CHANGE_SHARE", "NaN"),
            ("FUNCTION_SECURITY_GROUP_ID", "pl-0a1b2c3d"),
        ] {
            let e = config(&[(var, value)]).unwrap_err();
            assert_eq!(e.var(), var, "{value}: {e}");
        }
    }
}
