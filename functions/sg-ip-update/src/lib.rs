//! sg-ip-update: moves a developer's ingress rule on the database security group to their new
//! address when their workspace reports an IP change. Only known owners, only the sender the
//! row names (as AWS authenticated it through the Function URL), only one host, and the table
//! records the desired state before AWS is touched.
//!
//! [`request`] reads and refuses requests without I/O; [`error`] classifies failures and says
//! how each is answered; this file holds the settings, the handler and the update itself, on
//! top of the `ingress` crate's store and EC2 calls.
#![forbid(unsafe_code)]

pub mod error;
pub mod request;

pub use error::Error;
pub use request::{
    Envelope, IpChange, Request, Sender, caller_of, parse_event, parse_event_at, way_in,
};
use request::{body_text, storable};

use std::time::{Duration, SystemTime};

use aws_lambda_events::{
    event::lambda_function_urls::{LambdaFunctionUrlRequest, LambdaFunctionUrlResponse},
    http::{HeaderValue, header::CONTENT_TYPE},
};
use ingress::{
    ec2::Ec2,
    group::SecurityGroupId,
    ip::{Cidr, host_cidr},
    rule::{ManagedRule, RuleStatus},
    store::{self, AuditEntry, AuditOutcome, Via},
};
use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::{
    db::{Db, DbConfig, DbError},
    env::{ConfigError, Env, ProcessEnv},
    errors::{Classified, truncate},
    schema::SchemaGuard,
};

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

/// What one request did: the function's answer, and its log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub outcome: AuditOutcome,
    pub owner: String,
    pub security_group_id: String,
    pub security_group_rule_id: Option<String>,
    /// The address now wanted (for `stale`, the one the old request asked for, as sent).
    pub cidr: String,
    pub previous_cidr: Option<Cidr>,
}

impl Summary {
    fn of(rule: &ManagedRule, outcome: AuditOutcome, cidr: String, previous: Option<Cidr>) -> Self {
        Self {
            outcome,
            owner: rule.owner.clone(),
            security_group_id: rule.security_group_id.clone(),
            security_group_rule_id: rule.aws_rule_id.clone(),
            cidr,
            previous_cidr: previous,
        }
    }
}

/// The function's answer: the summary for an EventBridge event or a direct invocation, and an
/// HTTP response for a Function URL request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Answer {
    Summary(Summary),
    Http(LambdaFunctionUrlResponse),
    Refused(Refusal),
}

/// A permanent refusal of an EventBridge event, answered as a success: EventBridge invokes
/// asynchronously and Lambda retries any function error (twice by default), so an error here
/// would turn each refused event into three invocations and three audit rows, and a flood of
/// them into three times the load. Only a failure a retry may fix is returned as an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// Always `refused`.
    pub outcome: &'static str,
    /// `Permanent.<Kind>`, as the error would have been typed.
    pub error: String,
    pub message: String,
}

/// The Function URL's answer: the summary with 200, or the error with its status and type.
fn http_answer(result: &Result<Summary, Error>) -> LambdaFunctionUrlResponse {
    let (status, body) = match result {
        Ok(summary) => (200, serde_json::to_value(summary)),
        Err(e) => {
            let d = e.diagnostic();
            let body = serde_json::json!({"error": d.error_type, "message": d.error_message});
            (e.http_status(), Ok(body))
        }
    };
    let mut response = LambdaFunctionUrlResponse::default();
    response.status_code = status.into();
    response
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response.body = Some(body.map_or_else(|_| "{}".to_owned(), |b| b.to_string()));
    response
}

/// Handles one IP change. An EventBridge event or a direct invocation gets the summary, or
/// the error (so Lambda retries what may pass); an EventBridge event that is refused for good
/// gets a [`Refusal`], not an error, so it is not retried. A Function URL request always gets an
/// HTTP response, the refusal or failure included: an error returned to the runtime would
/// reach the caller as a bare 502 without the reason.
pub async fn handle(state: &State, event: LambdaEvent<Value>) -> Result<Answer, Error> {
    let (payload, context) = event.into_parts();
    let via = way_in(&payload);
    let parsed = parse_event(&payload, &state.envelope);
    let caller = parsed
        .as_ref()
        .ok()
        .and_then(|r| r.sender.caller())
        .map_or_else(String::new, |c| c.arn.clone());
    let result = match parsed {
        Ok(request) => update(state, &request, &context.request_id).await,
        Err(e) => {
            audit_refused_request(state, &payload, via, &e, &context.request_id).await;
            Err(e)
        }
    };
    match &result {
        Ok(s) => tracing::info!(
            owner = %s.owner,
            outcome = %s.outcome,
            cidr = %s.cidr,
            via = %via,
            caller = %caller,
            "sg-ip-update"
        ),
        Err(e) => tracing::error!(
            outcome = "error",
            error_type = %e.diagnostic().error_type,
            retryable = e.is_retryable(),
            via = %via,
            caller = %caller,
            // When the database is what failed, this line is the request's only record.
            audited = !matches!(e, Error::Db(_) | Error::SchemaBehind(_)),
            error = %e,
            "sg-ip-update"
        ),
    }
    match (via, result) {
        (Via::FunctionUrl, result) => Ok(Answer::Http(http_answer(&result))),
        (Via::Eventbridge, Err(e)) if !e.is_retryable() => {
            let d = e.diagnostic();
            Ok(Answer::Refused(Refusal {
                outcome: "refused",
                error: d.error_type,
                message: d.error_message,
            }))
        }
        (_, result) => result.map(Answer::Summary),
    }
}

/// A value from the request as it may be stored and shown: at most `max` characters, NUL
/// (which Postgres text cannot hold) written as `\0`, a non-string shown as its JSON, and
/// null or absent as nothing.
fn quoted_raw(v: Option<&Value>, max: usize) -> Option<String> {
    let text = match v? {
        Value::Null => return None,
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    Some(storable(&text, max))
}

/// Records a request refused before its owner was looked up, with whatever owner, address and
/// caller could be read from it. Best effort: the refusal is the answer whether or not the
/// audit row could be written.
async fn audit_refused_request(
    state: &State,
    payload: &Value,
    via: Via,
    e: &Error,
    request_id: &str,
) {
    let url_request = match via {
        Via::FunctionUrl => LambdaFunctionUrlRequest::deserialize(payload).ok(),
        _ => None,
    };
    let caller = url_request.as_ref().and_then(caller_of);
    let fields = match (via, &url_request) {
        (Via::FunctionUrl, Some(r)) => body_text(r)
            .ok()
            .and_then(|b| serde_json::from_str(&b).ok())
            .unwrap_or(Value::Null),
        (Via::Eventbridge, _) => payload.get("detail").cloned().unwrap_or(Value::Null),
        _ => payload.clone(),
    };
    let owner = quoted_raw(fields.get("owner"), 64).unwrap_or_default();
    let ip = quoted_raw(fields.get("ip"), 100);
    let detail = storable(&e.to_string(), 500);
    let entry = AuditEntry {
        owner: &owner,
        security_group_id: state.security_group_id.as_str(),
        old_cidr: None,
        new_cidr: ip.as_deref(),
        outcome: e.audit_outcome(),
        detail: Some(&detail),
        request_id,
        via: Some(via),
        caller: caller.as_ref(),
    };
    let written = match state.db.client().await {
        Ok(client) => store::audit(&client, &entry).await.map_err(DbError::from),
        Err(e) => Err(e),
    };
    if let Err(e) = written {
        tracing::warn!(error = %e, "could not audit the refused request");
    }
}

/// Whether `sender` may move `rule`: a proven caller only when the row's principal names it,
/// an unproven sender only when the row allows that. `Err` carries the refusal and the audit
/// detail (which names the row's principal; the caller's answer does not).
fn authorize(rule: &ManagedRule, sender: &Sender) -> Result<(), (Error, String)> {
    match sender {
        Sender::Proven(caller) => {
            if rule
                .principal
                .as_ref()
                .is_some_and(|p| p.matches(&caller.arn))
            {
                return Ok(());
            }
            let named = rule
                .principal
                .as_ref()
                .map_or_else(|| "no principal".to_owned(), |p| format!("principal {p}"));
            let detail = format!(
                "{} named owner {:?}, whose rule names {named}",
                caller.arn, rule.owner
            );
            let e = Error::Unauthorized {
                caller: caller.arn.clone(),
                owner: rule.owner.clone(),
            };
            Err((e, detail))
        }
        Sender::Unverified(_) if rule.allow_unverified => Ok(()),
        Sender::Unverified(via) => {
            let e = Error::Unverified {
                owner: rule.owner.clone(),
                via: *via,
            };
            let detail =
                format!("a {via} request proves no sender and the row does not allow_unverified");
            Err((e, detail))
        }
    }
}

async fn update(state: &State, request: &Request, request_id: &str) -> Result<Summary, Error> {
    let change = &request.change;
    let client = state.db.client().await?;
    // Only until the schema is found current: then no query.
    state.schema.check(&client).await??;
    // One request per owner and group at a time, held from reading the row until the result
    // is recorded.
    let group = state.security_group_id.as_str();
    if !store::lock_owner(&client, group, &change.owner, state.lock_wait).await? {
        let shown = storable(&change.ip, 100);
        let entry = AuditEntry {
            owner: &change.owner,
            security_group_id: group,
            old_cidr: None,
            new_cidr: Some(&shown),
            outcome: AuditOutcome::Busy,
            detail: Some("another request for this owner held the rule past the wait"),
            request_id,
            via: Some(request.sender.via()),
            caller: request.sender.caller(),
        };
        store::audit(&client, &entry).await?;
        return Err(Error::Busy(change.owner.clone()));
    }
    let result = update_locked(state, &client, request, request_id).await;
    if let Err(e) = store::unlock_owner(&client, group, &change.owner).await {
        tracing::warn!(error = %e, "could not release the advisory lock; dropping the connection");
        drop(deadpool::managed::Object::take(client));
    }
    result
}

/// Runs `work` in one transaction: committed when it succeeds, rolled back when it fails.
async fn in_transaction(
    client: &deadpool_postgres::ClientWrapper,
    work: impl AsyncFnOnce() -> Result<(), tokio_postgres::Error>,
) -> Result<(), tokio_postgres::Error> {
    client.batch_execute("BEGIN").await?;
    match work().await {
        Ok(()) => client.batch_execute("COMMIT").await,
        Err(e) => {
            // A broken connection rolls back by itself; the error that matters is `e`.
            let _ = client.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}

/// Whether a request sent at `sent` is older than the newest one the row has taken.
/// EventBridge stamps events to the whole second while a direct request is stamped on
/// arrival to the microsecond, so both are compared to the second: a request in the same
/// second as the newest is taken (the later arrival wins), and only one from an earlier
/// second is stale. A newer request is never dropped.
pub fn is_stale(sent: Option<SystemTime>, newest: Option<SystemTime>) -> bool {
    let second = |t: SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    };
    matches!((sent, newest), (Some(s), Some(n)) if second(s) < second(n))
}

async fn update_locked(
    state: &State,
    client: &deadpool_postgres::ClientWrapper,
    request: &Request,
    request_id: &str,
) -> Result<Summary, Error> {
    let (change, sender) = (&request.change, &request.sender);
    let group = state.security_group_id.as_str();
    let mut entry = AuditEntry {
        owner: &change.owner,
        security_group_id: group,
        old_cidr: None,
        new_cidr: Some(&change.ip),
        outcome: AuditOutcome::RefusedUnknownOwner,
        detail: None,
        request_id,
        via: Some(sender.via()),
        caller: sender.caller(),
    };
    let Some(mut rule) = store::find_rule(client, group, &change.owner).await? else {
        store::audit(client, &entry).await?;
        return Err(Error::UnknownOwner {
            owner: change.owner.clone(),
            security_group_id: group.to_owned(),
        });
    };
    let old = rule.cidr;
    let old_text = old.map(|c| c.to_string());
    entry.old_cidr = old_text.as_deref();
    if let Err((e, detail)) = authorize(&rule, sender) {
        let shown = storable(&change.ip, 100);
        entry.new_cidr = Some(&shown);
        entry.outcome = AuditOutcome::RefusedUnauthorized;
        entry.detail = Some(&detail);
        store::audit(client, &entry).await?;
        return Err(e);
    }
    if is_stale(change.sent_at, rule.last_request_at) {
        // A late retry of an older event: the developer has moved on since.
        let shown = truncate(&change.ip, 100);
        entry.new_cidr = Some(&shown);
        entry.outcome = AuditOutcome::Stale;
        entry.detail = Some("a newer request was already taken");
        store::audit(client, &entry).await?;
        return Ok(Summary::of(&rule, AuditOutcome::Stale, shown.clone(), old));
    }

    let cidr = match host_cidr(&change.ip, rule.allow_private) {
        Ok(c) => c,
        Err(source) => {
            let detail = source.to_string();
            let shown = truncate(&change.ip, 100);
            entry.new_cidr = Some(&shown);
            entry.outcome = AuditOutcome::RefusedInvalidIp;
            entry.detail = Some(&detail);
            store::audit(client, &entry).await?;
            return Err(Error::InvalidIp { ip: shown, source });
        }
    };
    let cidr_text = cidr.to_string();
    entry.new_cidr = Some(&cidr_text);
    if let Some(d) = &change.description {
        rule.description = d.clone();
    }

    if old == Some(cidr.into()) && rule.status == RuleStatus::Applied {
        // The row says applied, but a rule deleted or edited by hand since would leave the
        // developer locked out until a remediate run: look before answering "unchanged".
        if let Some(id) = rule.aws_rule_id.as_deref() {
            let rules = state.ec2.ingress_rules(group).await.map_err(Error::Apply)?;
            if rules
                .iter()
                .any(|r| r.id == id && r.matches(&rule, cidr.into()))
            {
                entry.outcome = AuditOutcome::Unchanged;
                in_transaction(client, async || {
                    store::note_request(client, rule.id, change.sent_at).await?;
                    store::audit(client, &entry).await
                })
                .await?;
                return Ok(Summary::of(&rule, AuditOutcome::Unchanged, cidr_text, old));
            }
            tracing::warn!(owner = %rule.owner, rule_id = id,
                "the applied rule is gone from AWS or no longer matches its row; applying it again");
        }
    }

    store::mark_pending(client, rule.id, cidr, change.sent_at).await?;
    if let Some(id) = rule.aws_rule_id.clone() {
        if store::rule_is_shared(client, rule.id, group, &id).await? {
            // Someone else behind the same address keeps that rule; this owner gets its own.
            rule.aws_rule_id = None;
        }
    }
    match state.ec2.apply(&rule, cidr).await {
        Ok(rule_id) => {
            // The change and its audit row commit together, or neither does (then the row
            // stays pending, and drift-check converges it).
            entry.outcome = AuditOutcome::Applied;
            in_transaction(client, async || {
                store::mark_applied(client, rule.id, cidr.into(), &rule_id, true).await?;
                store::audit(client, &entry).await
            })
            .await?;
            rule.aws_rule_id = Some(rule_id);
            Ok(Summary::of(&rule, AuditOutcome::Applied, cidr_text, old))
        }
        Err(e) => {
            let detail = e.to_string();
            entry.outcome = AuditOutcome::Failed;
            entry.detail = Some(&detail);
            in_transaction(client, async || {
                store::mark_failed(client, rule.id, cidr.into(), &detail).await?;
                store::audit(client, &entry).await
            })
            .await?;
            Err(Error::Apply(e))
        }
    }
}

#[cfg(test)]
mod tests {
    use ingress::store::Caller;
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_the_eventbridge_envelope_and_the_bare_detail() {
        let envelope = json!({
            "version": "0", "id": "1", "detail-type": "Workspace IP Changed", "source": "dev.workspace",
            "account": "123456789012", "time": "2026-11-23T10:00:00Z", "region": "us-east-1", "resources": [],
            "detail": {"owner": "andrew", "ip": "34.201.17.5"}
        });
        let bare = json!({"owner": "andrew", "ip": "34.201.17.5", "description": "andrew laptop"});
        let ours = Envelope::default();
        let from_bus = parse_event(&envelope, &ours).unwrap();
        assert_eq!(from_bus.change.ip, "34.201.17.5");
        assert_eq!(from_bus.sender, Sender::Unverified(Via::Eventbridge));
        let direct = parse_event(&bare, &ours).unwrap();
        assert_eq!(direct.change.description.as_deref(), Some("andrew laptop"));
        assert_eq!(direct.sender, Sender::Unverified(Via::Direct));
    }

    fn url_event() -> Value {
        serde_json::from_str(include_str!(
            "../../../events/sg-ip-update-function-url.json"
        ))
        .unwrap()
    }

    #[test]
    fn a_function_url_request_is_sent_by_the_identity_aws_authenticated() {
        let request = parse_event(&url_event(), &Envelope::default()).unwrap();
        assert_eq!(request.change.owner, "andrew");
        assert_eq!(request.change.ip, "34.201.17.5");
        assert_eq!(
            request.sender,
            Sender::Proven(Caller {
                arn: "arn:aws:iam::123456789012:user/andrew".into(),
                account_id: Some("123456789012".into()),
                caller_id: Some("AIDACKCEVSQ6C2EXAMPLE".into()),
                source_ip: Some("34.201.17.5".into()),
            })
        );
        let mut encoded = url_event();
        encoded["body"] = json!("eyJvd25lciI6ImFuZHJldyIsImlwIjoiNTIuMTQuOTkuOCJ9");
        encoded["isBase64Encoded"] = json!(true);
        let request = parse_event(&encoded, &Envelope::default()).unwrap();
        assert_eq!(request.change.ip, "52.14.99.8");
    }

    #[test]
    fn a_function_url_request_without_an_identity_is_refused_before_its_body_is_read() {
        for strip in ["authorizer", "iam", "userArn"] {
            let mut e = url_event();
            match strip {
                "authorizer" => e["requestContext"]["authorizer"] = Value::Null,
                "iam" => e["requestContext"]["authorizer"]["iam"] = Value::Null,
                _ => e["requestContext"]["authorizer"]["iam"]["userArn"] = json!(""),
            }
            e["body"] = json!("not json");
            let err = parse_event(&e, &Envelope::default()).unwrap_err();
            assert!(matches!(err, Error::NoIdentity), "{strip}: {err}");
            assert_eq!(err.http_status(), 403);
        }
        let mut get = url_event();
        get["requestContext"]["http"]["method"] = json!("GET");
        let err = parse_event(&get, &Envelope::default()).unwrap_err();
        assert!(matches!(err, Error::BadEvent(_)), "{err}");
        assert_eq!(err.http_status(), 400);
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
            assert!(parse_event(&bad, &Envelope::default()).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_the_configured_envelope_is_an_ip_change() {
        let envelope = |source: &str, detail_type: &str| {
            json!({"version": "0", "id": "1", "detail-type": detail_type, "source": source,
                   "time": "2026-11-23T10:00:00Z", "detail": {"owner": "andrew", "ip": "34.201.17.5"}})
        };
        let ours = Envelope::default();
        assert!(parse_event(&envelope("dev.workspace", "Workspace IP Changed"), &ours).is_ok());
        for (source, detail_type) in [
            ("evil.example", "Workspace IP Changed"),
            ("aws.ec2", "Workspace IP Changed"),
            ("dev.workspace", "Something Else"),
            ("dev.workspace", "workspace ip changed"),
        ] {
            let err = parse_event(&envelope(source, detail_type), &ours).unwrap_err();
            assert!(
                matches!(err, Error::WrongEnvelope { .. }),
                "{source} / {detail_type}: {err}"
            );
            assert!(!err.is_retryable());
        }
        let custom = Envelope {
            source: "corp.vpn".into(),
            detail_type: "Address Changed".into(),
        };
        assert!(parse_event(&envelope("corp.vpn", "Address Changed"), &custom).is_ok());
        assert!(parse_event(&envelope("dev.workspace", "Workspace IP Changed"), &custom).is_err());
    }

    #[test]
    fn an_event_from_the_future_is_refused_past_a_small_skew() {
        let at = |t: &str| {
            json!({"version": "0", "id": "1", "detail-type": "Workspace IP Changed",
                   "source": "dev.workspace", "time": t,
                   "detail": {"owner": "andrew", "ip": "34.201.17.5"}})
        };
        // 2026-11-23T10:00:00Z
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_795_428_000);
        let ours = Envelope::default();
        assert!(parse_event_at(&at("2026-11-23T10:04:59Z"), &ours, now).is_ok());
        assert!(parse_event_at(&at("2026-11-22T10:00:00Z"), &ours, now).is_ok());
        let err = parse_event_at(&at("2099-01-01T00:00:00Z"), &ours, now).unwrap_err();
        assert!(
            matches!(err, Error::BadEvent(ref m) if m.contains("ahead")),
            "{err}"
        );
        assert!(!err.is_retryable());
    }

    #[test]
    fn a_request_from_the_same_second_is_never_stale() {
        let at = |ms: u64| Some(std::time::UNIX_EPOCH + Duration::from_millis(ms));
        // A direct request at 58.317 s, then an EventBridge event stamped 58 s: the event is
        // the newer one and must be taken.
        assert!(!is_stale(at(58_000), at(58_317)));
        assert!(is_stale(at(57_999), at(58_317)));
        assert!(!is_stale(at(59_000), at(58_317)));
        assert!(!is_stale(None, at(58_317)));
        assert!(!is_stale(at(58_000), None));
    }

    #[test]
    fn raw_values_are_cut_and_made_storable() {
        assert_eq!(
            quoted_raw(Some(&json!("a\0b")), 10).as_deref(),
            Some("a\\0b")
        );
        assert_eq!(quoted_raw(Some(&json!(5)), 10).as_deref(), Some("5"));
        assert_eq!(
            quoted_raw(Some(&json!(["x"])), 10).as_deref(),
            Some("[\"x\"]")
        );
        assert_eq!(
            quoted_raw(Some(&json!("x".repeat(300))), 100).map(|s| s.chars().count()),
            Some(101)
        );
        assert_eq!(quoted_raw(None, 10), None);
        assert_eq!(quoted_raw(Some(&Value::Null), 10), None);
    }

    /// Found by the fuzz runner in CI: a Function URL request with an EventBridge `detail`
    /// beside its body was read as the body's change, and its detail as something else.
    #[test]
    fn a_payload_that_is_both_a_function_url_request_and_an_event_is_refused() {
        let mut hybrid: Value = serde_json::from_str(include_str!(
            "../../../events/sg-ip-update-function-url.json"
        ))
        .unwrap();
        hybrid["detail"] = json!({"owner": "mallory", "ip": "52.14.99.8"});
        let err = parse_event(&hybrid, &Envelope::default()).unwrap_err();
        assert!(matches!(err, Error::BadEvent(_)), "{err}");
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
