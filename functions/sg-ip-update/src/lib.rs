//! sg-ip-update: moves a developer's ingress rule on the database security group to their new
//! address when their workspace reports an IP change. Only known owners, only the sender the
//! row names (as AWS authenticated it through the Function URL), only one host, and the table
//! records the desired state before AWS is touched.
#![forbid(unsafe_code)]

use std::time::{Duration, SystemTime};

use aws_lambda_events::{
    event::{
        eventbridge::EventBridgeEvent,
        lambda_function_urls::{LambdaFunctionUrlRequest, LambdaFunctionUrlResponse},
    },
    http::{HeaderValue, header::CONTENT_TYPE},
};
use base64::Engine;
use ingress::{
    ec2::{Ec2, Ec2Error},
    group::SecurityGroupId,
    ip::{Cidr, IpError, host_cidr},
    rule::{ManagedRule, RuleStatus},
    store::{self, AuditEntry, AuditOutcome, Caller, Via},
};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::{
    db::{Db, DbConfig, DbError},
    env::{ConfigError, Env, ProcessEnv},
    errors::{Classified, diagnostic, truncate},
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
            envelope: Envelope {
                source: env.non_empty("IP_EVENT_SOURCE").unwrap_or(defaults.source),
                detail_type: env
                    .non_empty("IP_EVENT_DETAIL_TYPE")
                    .unwrap_or(defaults.detail_type),
            },
        })
    }
}

/// The `source` and `detail-type` an EventBridge IP change must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub source: String,
    pub detail_type: String,
}

impl Default for Envelope {
    fn default() -> Self {
        Self {
            source: "dev.workspace".to_owned(),
            detail_type: "Workspace IP Changed".to_owned(),
        }
    }
}

/// What lives for the whole execution environment.
pub struct State {
    pub db: Db,
    pub ec2: Ec2,
    pub security_group_id: SecurityGroupId,
    pub envelope: Envelope,
}

impl State {
    pub async fn init(config: Config) -> Result<Self, DbError> {
        let sdk = shared::aws::sdk_config().await;
        let db = Db::init(&config.db, &sdk).await?;
        Ok(Self {
            db,
            ec2: Ec2::new(&sdk, config.aws_timeout),
            security_group_id: config.security_group_id,
            envelope: config.envelope,
        })
    }
}

/// Who sent a request, as far as the function can know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sender {
    /// AWS checked the SigV4 signature of a Function URL request and names the signer.
    Proven(Caller),
    /// An EventBridge event or a bare direct invocation: nothing proves who sent it.
    Unverified(Via),
}

impl Sender {
    pub fn via(&self) -> Via {
        match self {
            Self::Proven(_) => Via::FunctionUrl,
            Self::Unverified(via) => *via,
        }
    }

    pub fn caller(&self) -> Option<&Caller> {
        match self {
            Self::Proven(caller) => Some(caller),
            Self::Unverified(_) => None,
        }
    }
}

/// A parsed request and who sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub change: IpChange,
    pub sender: Sender,
}

/// The request: whose rule, and the address it should now allow.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IpChange {
    pub owner: String,
    pub ip: String,
    #[serde(default)]
    pub description: Option<String>,
    /// When EventBridge received the event; `None` for a direct invocation or a Function URL
    /// request (stamped on arrival).
    #[serde(skip)]
    pub sent_at: Option<SystemTime>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "the event is neither an EventBridge event nor a bare {{\"owner\", \"ip\"}} object: {0}"
    )]
    BadEvent(String),
    #[error(
        "EventBridge event from source {event_source:?} with detail-type {detail_type:?} refused: only \
         {expected_source:?} / {expected_detail_type:?} events are IP changes"
    )]
    WrongEnvelope {
        event_source: String,
        detail_type: String,
        expected_source: String,
        expected_detail_type: String,
    },
    #[error(
        "the Function URL request carries no caller identity (requestContext.authorizer.iam); \
         is the URL's AuthType AWS_IAM? nothing was changed"
    )]
    NoIdentity,
    #[error("{caller} may not move the rule of owner {owner:?}; nothing was changed")]
    Unauthorized { caller: String, owner: String },
    #[error(
        "owner {owner:?}'s rule moves only on a signed request from its principal (the Function \
         URL, scripts/send-ip-change); this {via} request proves no sender; nothing was changed"
    )]
    Unverified { owner: String, via: Via },
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
            // The row says what should be; a retry (or drift-check) applies it once AWS can.
            Self::Apply(e) => e.retryable,
            Self::Busy(_) => true,
            Self::BadEvent(_)
            | Self::WrongEnvelope { .. }
            | Self::NoIdentity
            | Self::Unauthorized { .. }
            | Self::Unverified { .. }
            | Self::InvalidOwner(_)
            | Self::InvalidDescription(_)
            | Self::UnknownOwner { .. }
            | Self::InvalidIp { .. } => false,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::BadEvent(_) => "BadEvent",
            Self::WrongEnvelope { .. } => "WrongEnvelope",
            Self::NoIdentity => "NoIdentity",
            Self::Unauthorized { .. } => "Unauthorized",
            Self::Unverified { .. } => "Unverified",
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

impl Error {
    /// The HTTP status a Function URL caller gets: a refusal 403, a bad request 400, a
    /// failure that may pass 503, any other failure 500.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::NoIdentity
            | Self::Unauthorized { .. }
            | Self::Unverified { .. }
            | Self::UnknownOwner { .. } => 403,
            Self::BadEvent(_)
            | Self::WrongEnvelope { .. }
            | Self::InvalidOwner(_)
            | Self::InvalidDescription(_)
            | Self::InvalidIp { .. } => 400,
            e if e.is_retryable() => 503,
            _ => 500,
        }
    }

    /// How a refusal before the owner's row was read is audited.
    fn audit_outcome(&self) -> AuditOutcome {
        match self {
            Self::NoIdentity | Self::Unauthorized { .. } | Self::Unverified { .. } => {
                AuditOutcome::RefusedUnauthorized
            }
            _ => AuditOutcome::RefusedInvalidRequest,
        }
    }
}

impl From<Error> for Diagnostic {
    fn from(e: Error) -> Self {
        diagnostic(&e)
    }
}

/// How a payload reached the function, by its shape: a Function URL request has a
/// `requestContext`, an EventBridge event a `detail`, and anything else is a direct invocation.
pub fn way_in(payload: &Value) -> Via {
    if payload.get("requestContext").is_some() {
        Via::FunctionUrl
    } else if payload.get("detail").is_some() {
        Via::Eventbridge
    } else {
        Via::Direct
    }
}

/// A caller-supplied value as it may be stored and shown: cut short, NUL written as `\0`.
fn storable(s: &str, max: usize) -> String {
    truncate(s, max).replace('\0', "\\0")
}

/// The identity AWS put in a Function URL request, if there is one with a user ARN. Its values
/// are made storable; an ARN so cut or escaped never matches a principal (neither `…` nor `\`
/// can be in one).
pub fn caller_of(request: &LambdaFunctionUrlRequest) -> Option<Caller> {
    let iam = request.request_context.authorizer.as_ref()?.iam.as_ref()?;
    let arn = iam.user_arn.as_deref().filter(|a| !a.is_empty())?;
    Some(Caller {
        arn: storable(arn, 300),
        account_id: iam.account_id.as_deref().map(|a| storable(a, 64)),
        caller_id: iam.caller_id.as_deref().map(|c| storable(c, 200)),
    })
}

/// The body of a Function URL request as text (Lambda base64-encodes bodies it takes for
/// binary).
fn body_text(request: &LambdaFunctionUrlRequest) -> Result<String, Error> {
    let body = request.body.as_deref().unwrap_or_default();
    if !request.is_base64_encoded {
        return Ok(body.to_owned());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|e| Error::BadEvent(format!("the body is not valid base64: {e}")))?;
    String::from_utf8(bytes).map_err(|_| Error::BadEvent("the body is not UTF-8 text".into()))
}

/// Reads the request: from a Function URL request (a POST whose JSON body is the change; the
/// sender is the identity AWS authenticated), from an EventBridge event carrying the
/// configured source and detail-type, or from the bare detail object of a direct invocation
/// (neither of which proves a sender); then checks the owner and description.
pub fn parse_event(payload: &Value, envelope: &Envelope) -> Result<Request, Error> {
    let bad = |e: serde_json::Error| Error::BadEvent(truncate(&e.to_string(), 200));
    let (change, sender): (IpChange, Sender) = match way_in(payload) {
        Via::FunctionUrl => {
            let request = LambdaFunctionUrlRequest::deserialize(payload).map_err(bad)?;
            let caller = caller_of(&request).ok_or(Error::NoIdentity)?;
            let method = request.request_context.http.method.as_deref();
            if method != Some("POST") {
                return Err(Error::BadEvent(format!(
                    "only POST changes an address, not {}",
                    truncate(method.unwrap_or("no method"), 16)
                )));
            }
            let change = serde_json::from_str(&body_text(&request)?).map_err(bad)?;
            (change, Sender::Proven(caller))
        }
        Via::Eventbridge => {
            let event = EventBridgeEvent::<Value>::deserialize(payload).map_err(bad)?;
            if event.source != envelope.source || event.detail_type != envelope.detail_type {
                return Err(Error::WrongEnvelope {
                    event_source: truncate(&event.source, 64),
                    detail_type: truncate(&event.detail_type, 64),
                    expected_source: envelope.source.clone(),
                    expected_detail_type: envelope.detail_type.clone(),
                });
            }
            let change = IpChange {
                sent_at: event.time.map(SystemTime::from),
                ..IpChange::deserialize(&event.detail).map_err(bad)?
            };
            (change, Sender::Unverified(Via::Eventbridge))
        }
        Via::Direct => (
            IpChange::deserialize(payload).map_err(bad)?,
            Sender::Unverified(Via::Direct),
        ),
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
    Ok(Request { change, sender })
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
}

/// The Function URL's answer: the summary with 200, or the error with its status and type.
fn http_answer(result: &Result<Summary, Error>) -> LambdaFunctionUrlResponse {
    let (status, body) = match result {
        Ok(summary) => (200, serde_json::to_value(summary)),
        Err(e) => {
            let d = diagnostic(e);
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
/// the error (so EventBridge retries what may pass). A Function URL request always gets an
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
            error_type = %diagnostic(e).error_type,
            retryable = e.is_retryable(),
            via = %via,
            caller = %caller,
            error = %e,
            "sg-ip-update"
        ),
    }
    if via == Via::FunctionUrl {
        return Ok(Answer::Http(http_answer(&result)));
    }
    result.map(Answer::Summary)
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
        via,
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

/// How long a request waits for another one for the same owner to finish.
const LOCK_WAIT: Duration = Duration::from_secs(20);

async fn update(state: &State, request: &Request, request_id: &str) -> Result<Summary, Error> {
    let change = &request.change;
    let client = state.db.client().await?;
    // One request per owner and group at a time, held from reading the row until the result
    // is recorded.
    let group = state.security_group_id.as_str();
    if !store::lock_owner(&client, group, &change.owner, LOCK_WAIT).await? {
        return Err(Error::Busy(change.owner.clone()));
    }
    let result = update_locked(state, &client, request, request_id).await;
    if let Err(e) = store::unlock_owner(&client, group, &change.owner).await {
        tracing::warn!(error = %e, "could not release the advisory lock; dropping the connection");
        drop(deadpool::managed::Object::take(client));
    }
    result
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
        via: sender.via(),
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

    if old == Some(cidr.into()) && rule.status == RuleStatus::Applied && rule.aws_rule_id.is_some()
    {
        entry.outcome = AuditOutcome::Unchanged;
        store::note_request(client, rule.id, change.sent_at).await?;
        store::audit(client, &entry).await?;
        return Ok(Summary::of(&rule, AuditOutcome::Unchanged, cidr_text, old));
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
            store::mark_applied(client, rule.id, cidr.into(), &rule_id).await?;
            entry.outcome = AuditOutcome::Applied;
            store::audit(client, &entry).await?;
            rule.aws_rule_id = Some(rule_id);
            Ok(Summary::of(&rule, AuditOutcome::Applied, cidr_text, old))
        }
        Err(e) => {
            let detail = e.to_string();
            store::mark_failed(client, rule.id, cidr.into(), &detail).await?;
            entry.outcome = AuditOutcome::Failed;
            entry.detail = Some(&detail);
            store::audit(client, &entry).await?;
            Err(Error::Apply(e))
        }
    }
}

#[cfg(test)]
mod tests {
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
