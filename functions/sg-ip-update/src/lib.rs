//! sg-ip-update: moves a developer's ingress rule on the database security group to their new
//! address when their workspace reports an IP change. Only known owners, only one host, and
//! the table records the desired state before AWS is touched.
#![forbid(unsafe_code)]

pub mod ip;
pub mod rules;

use std::time::Duration;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shared::{
    config::{ConfigError, DbConfig, Env, ProcessEnv},
    db::{Db, DbError},
    errors::{Classified, diagnostic, truncate},
};

use crate::{
    ip::{IpError, host_cidr},
    rules::{AuditEntry, Ec2, Ec2Error, ManagedRule},
};

/// The function's settings, read once at cold start.
#[derive(Debug, Clone)]
pub struct Config {
    pub db: DbConfig,
    /// The one security group this function may change (its IAM policy names only it).
    pub security_group_id: String,
    pub aws_timeout: Duration,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&ProcessEnv)
    }

    pub fn from_lookup(env: &impl Env) -> Result<Self, ConfigError> {
        let security_group_id = env
            .non_empty("SECURITY_GROUP_ID")
            .ok_or_else(|| ConfigError::Missing("SECURITY_GROUP_ID must be set (sg-...)".into()))?;
        if !is_security_group_id(&security_group_id) {
            return Err(ConfigError::invalid(
                "SECURITY_GROUP_ID",
                "expected sg- and 8 or 17 hex digits",
            ));
        }
        Ok(Self {
            db: DbConfig::from_lookup(env)?,
            security_group_id,
            aws_timeout: env.millis_or("AWS_CALL_TIMEOUT_MS", 5000, 500..=60_000)?,
        })
    }
}

fn is_security_group_id(s: &str) -> bool {
    s.strip_prefix("sg-").is_some_and(|hex| {
        (8..=17).contains(&hex.len())
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// What lives for the whole execution environment.
pub struct State {
    pub db: Db,
    pub ec2: Ec2,
    pub security_group_id: String,
}

impl State {
    pub async fn init(config: Config) -> Result<Self, DbError> {
        let (db, sdk) = Db::init(&config.db).await?;
        Ok(Self {
            db,
            ec2: Ec2::new(&sdk, config.aws_timeout),
            security_group_id: config.security_group_id,
        })
    }
}

/// The request: whose rule, and the address it should now allow.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IpChange {
    pub owner: String,
    pub ip: String,
    #[serde(default)]
    pub description: Option<String>,
    /// When EventBridge received the event; `None` for a direct invocation.
    #[serde(skip)]
    pub sent_at: Option<std::time::SystemTime>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "the event is neither an EventBridge event nor a bare {{\"owner\", \"ip\"}} object: {0}"
    )]
    BadEvent(String),
    #[error("owner {0:?} is not a valid owner name (1-64 of A-Z a-z 0-9 . _ @ + -)")]
    InvalidOwner(String),
    #[error("the description is invalid: {0}")]
    InvalidDescription(&'static str),
    #[error("owner {owner:?} has no managed rule in {security_group_id}; nothing was changed")]
    UnknownOwner {
        owner: String,
        security_group_id: String,
    },
    #[error("refused IP {ip:?}: {source}; nothing was changed")]
    InvalidIp { ip: String, source: IpError },
    #[error("another request for owner {0:?} held the rule for too long; try again")]
    Busy(String),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("{0}; the rule is marked failed and drift-check will converge it")]
    Apply(Ec2Error),
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Db(DbError::Query(e))
    }
}

impl Classified for Error {
    fn is_retryable(&self) -> bool {
        match self {
            Self::Db(e) => e.is_retryable(),
            // The row says what should be; a retry (or drift-check) applies it.
            Self::Apply(_) | Self::Busy(_) => true,
            _ => false,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::BadEvent(_) => "BadEvent",
            Self::InvalidOwner(_) => "InvalidOwner",
            Self::InvalidDescription(_) => "InvalidDescription",
            Self::UnknownOwner { .. } => "UnknownOwner",
            Self::InvalidIp { .. } => "InvalidIp",
            Self::Busy(_) => "Busy",
            Self::Db(_) => "Database",
            Self::Apply(_) => "AwsApply",
        }
    }
}

impl From<Error> for Diagnostic {
    fn from(e: Error) -> Self {
        diagnostic(&e)
    }
}

/// Reads the request from an EventBridge event, or from the bare detail object of a direct
/// invocation, and checks the owner and description.
pub fn parse_event(payload: &Value) -> Result<IpChange, Error> {
    let change: IpChange = if payload.get("detail").is_some() {
        let event = EventBridgeEvent::<IpChange>::deserialize(payload)
            .map_err(|e| Error::BadEvent(truncate(&e.to_string(), 200)))?;
        IpChange {
            sent_at: event.time.map(std::time::SystemTime::from),
            ..event.detail
        }
    } else {
        IpChange::deserialize(payload)
            .map_err(|e| Error::BadEvent(truncate(&e.to_string(), 200)))?
    };
    let owner_ok = (1..=64).contains(&change.owner.len())
        && change
            .owner
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@+-".contains(&b));
    if !owner_ok {
        return Err(Error::InvalidOwner(truncate(&change.owner, 64)));
    }
    if let Some(d) = &change.description {
        check_description(d)?;
    }
    Ok(change)
}

/// AWS's rule for security group rule descriptions.
fn check_description(d: &str) -> Result<(), Error> {
    if d.len() > 255 {
        return Err(Error::InvalidDescription("longer than 255 characters"));
    }
    if !d
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || " ._-:/()#,@[]+=&;{}!$*".contains(c))
    {
        return Err(Error::InvalidDescription(
            "only letters, digits, spaces and ._-:/()#,@[]+=&;{}!$* are allowed",
        ));
    }
    Ok(())
}

/// Handles one IP change; returns what was done.
pub async fn handle(state: &State, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let (payload, context) = event.into_parts();
    let result = match parse_event(&payload) {
        Ok(change) => update(state, &change, &context.request_id).await,
        Err(e) => Err(e),
    };
    match &result {
        Ok(v) => {
            let field = |k: &str| v[k].as_str().unwrap_or("-").to_owned();
            tracing::info!(
                owner = field("owner"),
                outcome = field("outcome"),
                cidr = field("cidr"),
                "sg-ip-update"
            )
        }
        Err(e) => {
            tracing::error!(outcome = "error", retryable = e.is_retryable(), error = %e, "sg-ip-update")
        }
    }
    result
}

/// How long a request waits for another one for the same owner to finish.
const LOCK_WAIT: Duration = Duration::from_secs(20);

async fn update(state: &State, change: &IpChange, request_id: &str) -> Result<Value, Error> {
    let client = state.db.client().await?;
    // One request per owner and group at a time, held from reading the row until the result
    // is recorded.
    let group = state.security_group_id.as_str();
    if !rules::lock_owner(&client, group, &change.owner, LOCK_WAIT).await? {
        return Err(Error::Busy(change.owner.clone()));
    }
    let result = update_locked(state, &client, change, request_id).await;
    if let Err(e) = rules::unlock_owner(&client, group, &change.owner).await {
        tracing::warn!(error = %e, "could not release the advisory lock; dropping the connection");
        drop(deadpool::managed::Object::take(client));
    }
    result
}

async fn update_locked(
    state: &State,
    client: &deadpool_postgres::ClientWrapper,
    change: &IpChange,
    request_id: &str,
) -> Result<Value, Error> {
    let group = state.security_group_id.as_str();
    let mut entry = AuditEntry {
        owner: &change.owner,
        security_group_id: group,
        old_cidr: None,
        new_cidr: Some(&change.ip),
        outcome: "refused_unknown_owner",
        detail: None,
        request_id,
    };
    let Some(mut rule) = rules::find_rule(client, group, &change.owner).await? else {
        rules::audit(client, &entry).await?;
        return Err(Error::UnknownOwner {
            owner: change.owner.clone(),
            security_group_id: group.to_owned(),
        });
    };
    let old = rule.cidr.clone();
    entry.old_cidr = old.as_deref();
    if let (Some(sent), Some(newest)) = (change.sent_at, rule.last_request_at) {
        if sent < newest {
            // A late retry of an older event: the developer has moved on since.
            entry.outcome = "stale";
            entry.detail = Some("a newer request was already taken");
            rules::audit(client, &entry).await?;
            let shown = truncate(&change.ip, 100);
            return Ok(summary(&rule, &shown, old.as_deref(), "stale"));
        }
    }

    let cidr = match host_cidr(&change.ip, rule.allow_private) {
        Ok(c) => c.to_string(),
        Err(source) => {
            let detail = source.to_string();
            let shown = truncate(&change.ip, 100);
            entry.new_cidr = Some(&shown);
            entry.outcome = "refused_invalid_ip";
            entry.detail = Some(&detail);
            rules::audit(client, &entry).await?;
            return Err(Error::InvalidIp {
                ip: truncate(&change.ip, 100),
                source,
            });
        }
    };
    entry.new_cidr = Some(&cidr);
    if let Some(d) = &change.description {
        rule.description = d.clone();
    }

    if old.as_deref() == Some(cidr.as_str())
        && rule.status == "applied"
        && rule.aws_rule_id.is_some()
    {
        entry.outcome = "unchanged";
        rules::note_request(client, rule.id, change.sent_at).await?;
        rules::audit(client, &entry).await?;
        return Ok(summary(&rule, &cidr, old.as_deref(), "unchanged"));
    }

    rules::mark_pending(client, rule.id, &cidr, change.sent_at).await?;
    if let Some(id) = rule.aws_rule_id.clone() {
        if rules::rule_is_shared(client, rule.id, group, &id).await? {
            // Someone else behind the same address keeps that rule; this owner gets its own.
            rule.aws_rule_id = None;
        }
    }
    match state.ec2.apply(&rule, &cidr).await {
        Ok(rule_id) => {
            rules::mark_applied(client, rule.id, &cidr, &rule_id).await?;
            entry.outcome = "applied";
            rules::audit(client, &entry).await?;
            rule.aws_rule_id = Some(rule_id);
            Ok(summary(&rule, &cidr, old.as_deref(), "applied"))
        }
        Err(e) => {
            let detail = e.to_string();
            rules::mark_failed(client, rule.id, &cidr, &detail).await?;
            entry.outcome = "failed";
            entry.detail = Some(&detail);
            rules::audit(client, &entry).await?;
            Err(Error::Apply(e))
        }
    }
}

fn summary(rule: &ManagedRule, cidr: &str, previous: Option<&str>, outcome: &str) -> Value {
    json!({
        "outcome": outcome,
        "owner": rule.owner,
        "security_group_id": rule.security_group_id,
        "security_group_rule_id": rule.aws_rule_id,
        "cidr": cidr,
        "previous_cidr": previous,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_eventbridge_envelope_and_the_bare_detail() {
        let envelope = json!({
            "version": "0", "id": "1", "detail-type": "Workspace IP Changed", "source": "dev.workspace",
            "account": "123456789012", "time": "2026-11-23T10:00:00Z", "region": "us-east-1", "resources": [],
            "detail": {"owner": "andrew", "ip": "34.201.17.5"}
        });
        let bare = json!({"owner": "andrew", "ip": "34.201.17.5", "description": "andrew laptop"});
        assert_eq!(parse_event(&envelope).unwrap().ip, "34.201.17.5");
        assert_eq!(
            parse_event(&bare).unwrap().description.as_deref(),
            Some("andrew laptop")
        );
    }

    #[test]
    fn refuses_bad_owners_descriptions_and_shapes() {
        for bad in [
            json!({"owner": "", "ip": "34.201.17.5"}),
            json!({"owner": "a b", "ip": "34.201.17.5"}),
            json!({"owner": "x".repeat(65), "ip": "34.201.17.5"}),
            json!({"owner": "andrew'; DROP TABLE users;--", "ip": "34.201.17.5"}),
            json!({"owner": "andrew", "ip": "34.201.17.5", "description": "<script>"}),
            json!({"owner": "andrew", "ip": 5}),
            json!({"owner": "andrew"}),
            json!({"owner": "andrew", "ip": "34.201.17.5", "extra": 1}),
            json!({"detail": "not an object"}),
            json!([]),
        ] {
            assert!(parse_event(&bad).is_err(), "{bad}");
        }
    }

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
