//! What one invocation asks for, from any of the payloads that start a run: EventBridge
//! Scheduler's `Input` (delivered as-is), a classic schedule rule's `Scheduled Event`
//! envelope, a direct invocation, or a CloudTrail security-group change.

use serde_json::Value;

/// Report only, or also push AWS (and the users table) towards the desired state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Report,
    Remediate,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "report" => Some(Self::Report),
            "remediate" => Some(Self::Remediate),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Report => "report",
            Self::Remediate => "remediate",
        }
    }
}

/// What to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every managed security group and the user pool.
    All,
    /// One security group, because CloudTrail reported a change to it.
    Group(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `None`: the mode configured for the function.
    pub mode: Option<Mode>,
    pub scope: Scope,
    /// Where the run came from, for the runs table: schedule, direct, cloudtrail:<event>.
    pub trigger: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("mode must be \"report\" or \"remediate\"")]
    BadMode,
    #[error("unsupported event: {0}")]
    Unsupported(String),
    #[error("the CloudTrail event names no security group")]
    NoGroup,
}

const SG_CALLS: [&str; 3] = [
    "AuthorizeSecurityGroupIngress",
    "ModifySecurityGroupRules",
    "RevokeSecurityGroupIngress",
];

/// Reads a request; `null`, `{}` and an empty body mean the defaults.
pub fn parse(payload: &Value) -> Result<Request, RequestError> {
    let direct = |trigger: &str, fields: &Value| -> Result<Request, RequestError> {
        Ok(Request {
            mode: mode_of(fields)?,
            scope: Scope::All,
            trigger: trigger.to_owned(),
        })
    };
    match payload {
        Value::Null => direct("direct", &Value::Null),
        Value::String(s) if s.trim().is_empty() => direct("direct", &Value::Null),
        Value::Object(o) => match o.get("detail-type").and_then(Value::as_str) {
            None if o.contains_key("detail") => Err(RequestError::Unsupported(
                "an envelope without detail-type".into(),
            )),
            None => {
                let known = ["mode", "trigger"];
                if let Some(k) = o.keys().find(|k| !known.contains(&k.as_str())) {
                    return Err(RequestError::Unsupported(format!(
                        "unknown field {:?}",
                        truncate(k)
                    )));
                }
                let trigger = o.get("trigger").and_then(Value::as_str).unwrap_or("direct");
                direct(&format!("direct:{}", truncate(trigger)), payload)
            }
            Some("Scheduled Event") => direct("schedule", &payload["detail"]),
            Some("AWS API Call via CloudTrail") => cloudtrail(&payload["detail"]),
            Some(other) => Err(RequestError::Unsupported(format!(
                "detail-type {:?}",
                truncate(other)
            ))),
        },
        _ => Err(RequestError::Unsupported(
            "the payload is not a JSON object".into(),
        )),
    }
}

fn mode_of(fields: &Value) -> Result<Option<Mode>, RequestError> {
    match fields.get("mode") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Mode::parse(s).map(Some).ok_or(RequestError::BadMode),
        Some(_) => Err(RequestError::BadMode),
    }
}

fn cloudtrail(detail: &Value) -> Result<Request, RequestError> {
    let name = detail
        .get("eventName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !SG_CALLS.contains(&name) {
        return Err(RequestError::Unsupported(format!(
            "CloudTrail eventName {:?}",
            truncate(name)
        )));
    }
    let group = find_group(&detail["requestParameters"]).ok_or(RequestError::NoGroup)?;
    Ok(Request {
        mode: None,
        scope: Scope::Group(group),
        trigger: format!("cloudtrail:{name}"),
    })
}

/// CloudTrail spells the group id `groupId` for some calls and nests it as `GroupId` inside a
/// request object for others: take the first one anywhere in the parameters.
fn find_group(v: &Value) -> Option<String> {
    match v {
        Value::Object(o) => o
            .iter()
            .find_map(|(k, v)| {
                (k.eq_ignore_ascii_case("groupId"))
                    .then(|| v.as_str().filter(|s| is_group_id(s)).map(str::to_owned))
                    .flatten()
            })
            .or_else(|| o.values().find_map(find_group)),
        Value::Array(a) => a.iter().find_map(find_group),
        _ => None,
    }
}

fn is_group_id(s: &str) -> bool {
    s.strip_prefix("sg-")
        .is_some_and(|h| (8..=17).contains(&h.len()) && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn truncate(s: &str) -> String {
    shared::errors::truncate(s, 64)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn empty_payloads_mean_defaults() {
        for p in [json!(null), json!({}), json!("")] {
            let r = parse(&p).unwrap();
            assert_eq!((r.mode, r.scope), (None, Scope::All), "{p}");
        }
    }

    #[test]
    fn scheduler_input_classic_rule_and_direct_calls() {
        assert_eq!(
            parse(&json!({"mode": "remediate"})).unwrap().mode,
            Some(Mode::Remediate)
        );
        let classic = json!({"version": "0", "id": "x", "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "1", "time": "2026-11-23T00:00:00Z", "region": "us-east-1", "resources": [], "detail": {}});
        let r = parse(&classic).unwrap();
        assert_eq!((r.mode, r.trigger.as_str()), (None, "schedule"));
        assert_eq!(
            parse(&json!({"mode": "sideways"})),
            Err(RequestError::BadMode)
        );
        assert!(parse(&json!({"mode": "report", "surprise": 1})).is_err());
        assert!(parse(&json!([1, 2])).is_err());
    }

    #[test]
    fn cloudtrail_changes_name_their_group() {
        let ev = |name: &str, params: Value| {
            json!({"detail-type": "AWS API Call via CloudTrail", "source": "aws.ec2",
                   "detail": {"eventName": name, "requestParameters": params}})
        };
        let r = parse(&ev(
            "AuthorizeSecurityGroupIngress",
            json!({"groupId": "sg-0123456789abcdef0"}),
        ))
        .unwrap();
        assert_eq!(r.scope, Scope::Group("sg-0123456789abcdef0".into()));
        let nested = json!({"ModifySecurityGroupRulesRequest": {"GroupId": "sg-0a1b2c3d", "SecurityGroupRule": {}}});
        assert_eq!(
            parse(&ev("ModifySecurityGroupRules", nested))
                .unwrap()
                .scope,
            Scope::Group("sg-0a1b2c3d".into())
        );
        assert_eq!(
            parse(&ev("RevokeSecurityGroupIngress", json!({}))),
            Err(RequestError::NoGroup)
        );
        assert!(parse(&ev("RunInstances", json!({"groupId": "sg-0a1b2c3d"}))).is_err());
    }
}
