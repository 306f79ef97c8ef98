//! Reading a request: from a Function URL request (the sender is the identity AWS
//! authenticated), an EventBridge event with the configured source and detail-type, or the
//! bare detail of a direct invocation (neither proves a sender); then the owner and the
//! description are checked. Pure: every refusal of the input is decided here, before any I/O.

use std::time::{Duration, SystemTime};

use aws_lambda_events::event::{
    eventbridge::EventBridgeEvent, lambda_function_urls::LambdaFunctionUrlRequest,
};
use base64::Engine;
use ingress::store::{Caller, Via};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::errors::truncate;

use crate::{Error, replay::SignedRequest};

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
    /// What names a Function URL request, which is taken only once; `None` for the bus and
    /// direct invocations.
    pub signed: Option<SignedRequest>,
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

/// The body of a Function URL request: `ip` may be left out, for the address AWS received the
/// signed request from.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UrlBody {
    owner: String,
    #[serde(default)]
    ip: Option<String>,
    #[serde(default)]
    description: Option<String>,
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
pub(crate) fn storable(s: &str, max: usize) -> String {
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
        source_ip: request
            .request_context
            .http
            .source_ip
            .as_deref()
            .filter(|ip| !ip.is_empty())
            .map(|ip| storable(ip, 100)),
    })
}

/// The body of a Function URL request as text (Lambda base64-encodes bodies it takes for
/// binary).
pub(crate) fn body_text(request: &LambdaFunctionUrlRequest) -> Result<String, Error> {
    let body = request.body.as_deref().unwrap_or_default();
    if !request.is_base64_encoded {
        return Ok(body.to_owned());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|e| Error::BadEvent(format!("the body is not valid base64: {e}")))?;
    String::from_utf8(bytes).map_err(|_| Error::BadEvent("the body is not UTF-8 text".into()))
}

/// How far ahead of this function's clock an event's `time` may be. PutEvents lets the sender
/// set `time`: one far in the future would mark the row "newer than everything" and make every
/// later request stale.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);

/// [`parse_event_at`] with this machine's clock.
pub fn parse_event(payload: &Value, envelope: &Envelope) -> Result<Request, Error> {
    parse_event_at(payload, envelope, SystemTime::now())
}

/// Reads the request: from a Function URL request (a POST whose JSON body is the change; the
/// sender is the identity AWS authenticated), from an EventBridge event carrying the
/// configured source and detail-type, or from the bare detail object of a direct invocation
/// (neither of which proves a sender); then checks the owner and description.
pub fn parse_event_at(
    payload: &Value,
    envelope: &Envelope,
    now: SystemTime,
) -> Result<Request, Error> {
    let bad = |e: serde_json::Error| Error::BadEvent(truncate(&e.to_string(), 200));
    // A Function URL request never has a `detail`, an EventBridge event never a
    // `requestContext`: a payload with both could be read two ways, so it is read neither.
    if payload.get("requestContext").is_some() && payload.get("detail").is_some() {
        return Err(Error::BadEvent(
            "it has both a requestContext (Function URL) and a detail (EventBridge)".into(),
        ));
    }
    let (change, sender, signed): (IpChange, Sender, _) = match way_in(payload) {
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
            let body: UrlBody = serde_json::from_str(&body_text(&request)?).map_err(bad)?;
            // Without `ip`, the address AWS saw the request come from: no echo service asked.
            let ip = match body.ip.or_else(|| caller.source_ip.clone()) {
                Some(ip) => ip,
                None => {
                    return Err(Error::BadEvent(
                        "no ip in the body and no source address in the request".into(),
                    ));
                }
            };
            let change = IpChange {
                owner: body.owner,
                ip,
                description: body.description,
                sent_at: None,
            };
            let signed = SignedRequest::of(&request, now);
            (change, Sender::Proven(caller), Some(signed))
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
            let sent_at = event.time.map(SystemTime::from);
            if let Some(ahead) = sent_at.and_then(|t| t.duration_since(now).ok()) {
                if ahead > MAX_CLOCK_SKEW {
                    return Err(Error::BadEvent(format!(
                        "its time is {} s ahead of this function's clock (at most {} s are \
                         allowed): a future time would make every later request look stale",
                        ahead.as_secs(),
                        MAX_CLOCK_SKEW.as_secs()
                    )));
                }
            }
            let change = IpChange {
                sent_at,
                ..IpChange::deserialize(&event.detail).map_err(bad)?
            };
            (change, Sender::Unverified(Via::Eventbridge), None)
        }
        Via::Direct => (
            IpChange::deserialize(payload).map_err(bad)?,
            Sender::Unverified(Via::Direct),
            None,
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
    Ok(Request {
        change,
        sender,
        signed,
    })
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

#[cfg(test)]
mod tests {
    use serde_json::json;
    use shared::errors::Classified;

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
}
