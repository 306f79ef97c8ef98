//! What one invocation asks for, from any of the payloads that start a run: EventBridge
//! Scheduler's `Input` (delivered as-is), a classic schedule rule's `Scheduled Event`
//! envelope, a direct invocation, or a CloudTrail security-group change.

use ingress::group::SecurityGroupId;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::report::display_as_str;

/// Report only, or also push AWS (and the users table) towards the desired state
/// (`drift_runs.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Report,
    Remediate,
}

impl Mode {
    /// Every mode, in the order of the SQL CHECK list.
    pub const ALL: [Mode; 2] = [Mode::Report, Mode::Remediate];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Report => "report",
            Self::Remediate => "remediate",
        }
    }
}

display_as_str!(Mode);

impl Mode {
    /// This mode, capped by `deployed`: an invocation may ask for less than the deployed
    /// mode (a report of a remediating stack), never more.
    pub fn at_most(self, deployed: Mode) -> Mode {
        match (self, deployed) {
            (Mode::Remediate, Mode::Remediate) => Mode::Remediate,
            _ => Mode::Report,
        }
    }
}

/// What a run does with a developer's rule past its lifetime (`DRIFT_LAPSE`), in either mode.
/// A remediating run always revokes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Lapse {
    /// Revoke it and mark the row `expired`, with an audit record: access ends when it lapses,
    /// also in report mode. The default.
    Revoke,
    /// Report it only (unless the run remediates).
    Report,
}

impl Lapse {
    pub const ALL: [Lapse; 2] = [Lapse::Revoke, Lapse::Report];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Revoke => "revoke",
            Self::Report => "report",
        }
    }
}

display_as_str!(Lapse);

/// What to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every managed security group and the user pool.
    All,
    /// One security group, because CloudTrail reported a change to it.
    Group(SecurityGroupId),
    /// Every managed security group, rules only, because CloudTrail reported a change to a
    /// prefix list (named, when the event names one well-formed), which any of them may
    /// reference.
    PrefixList(Option<String>),
}

impl std::fmt::Display for Scope {
    /// As `drift_runs.scope` records it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::All => f.write_str("all"),
            Self::Group(g) => write!(f, "{g}"),
            Self::PrefixList(Some(id)) => write!(f, "prefix-list:{id}"),
            Self::PrefixList(None) => f.write_str("prefix-list"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `None`: the mode configured for the function.
    pub mode: Option<Mode>,
    pub scope: Scope,
    /// Where the run came from, for the runs table: `schedule`, `direct`, `cloudtrail:<event>`.
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

/// Prefix-list calls: a list a managed group references may have been widened. Creating a
/// list is not among them: no group references a list before an
/// `AuthorizeSecurityGroupIngress`, which is.
const PREFIX_LIST_CALLS: [&str; 2] = ["ModifyManagedPrefixList", "RestoreManagedPrefixListVersion"];

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
    if PREFIX_LIST_CALLS.contains(&name) {
        return Ok(Request {
            mode: None,
            scope: Scope::PrefixList(find_prefix_list(&detail["requestParameters"])),
            trigger: format!("cloudtrail:{name}"),
        });
    }
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
/// request object for others: take the first well-formed one anywhere in the parameters.
fn find_group(v: &Value) -> Option<SecurityGroupId> {
    match v {
        Value::Object(o) => o
            .iter()
            .find_map(|(k, v)| {
                k.eq_ignore_ascii_case("groupId")
                    .then(|| v.as_str().and_then(|s| s.parse().ok()))
                    .flatten()
            })
            .or_else(|| o.values().find_map(find_group)),
        Value::Array(a) => a.iter().find_map(find_group),
        _ => None,
    }
}

/// The prefix list's id, spelled `prefixListId` or `PrefixListId` anywhere in the parameters;
/// only a well-formed one (`pl-` and hex digits), so the runs table records nothing else.
fn find_prefix_list(v: &Value) -> Option<String> {
    let well_formed = |s: &str| {
        s.strip_prefix("pl-").is_some_and(|hex| {
            (8..=17).contains(&hex.len()) && hex.bytes().all(|b| b.is_ascii_hexdigit())
        })
    };
    match v {
        Value::Object(o) => o
            .iter()
            .find_map(|(k, v)| {
                k.eq_ignore_ascii_case("prefixListId")
                    .then(|| v.as_str().filter(|s| well_formed(s)).map(str::to_owned))
                    .flatten()
            })
            .or_else(|| o.values().find_map(find_prefix_list)),
        Value::Array(a) => a.iter().find_map(find_prefix_list),
        _ => None,
    }
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

    /// The sample events `sam local invoke -e` sends: what EventBridge Scheduler (the
    /// template's `ScheduleV2`) delivers, its `Input` as-is, and a classic rule's envelope.
    #[test]
    fn both_schedule_samples_start_a_full_run() {
        let parse_file = |text: &str| parse(&serde_json::from_str(text).unwrap());
        let v2 = parse_file(include_str!("../../../events/drift-check-schedule-v2.json")).unwrap();
        assert_eq!(
            (v2.mode, v2.scope, v2.trigger.as_str()),
            (Some(Mode::Report), Scope::All, "direct:schedule")
        );
        let classic =
            parse_file(include_str!("../../../events/drift-check-schedule.json")).unwrap();
        assert_eq!(
            (classic.mode, classic.scope, classic.trigger.as_str()),
            (None, Scope::All, "schedule")
        );
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
        let group = |s: &str| Scope::Group(s.parse().unwrap());
        assert_eq!(r.scope, group("sg-0123456789abcdef0"));
        let nested = json!({"ModifySecurityGroupRulesRequest": {"GroupId": "sg-0a1b2c3d", "SecurityGroupRule": {}}});
        assert_eq!(
            parse(&ev("ModifySecurityGroupRules", nested))
                .unwrap()
                .scope,
            group("sg-0a1b2c3d")
        );
        assert_eq!(
            parse(&ev("RevokeSecurityGroupIngress", json!({}))),
            Err(RequestError::NoGroup)
        );
        assert!(parse(&ev("RunInstances", json!({"groupId": "sg-0a1b2c3d"}))).is_err());
    }

    /// A prefix list changed: every managed group is checked, rules only. The sample event
    /// names its list; one that names none, or a malformed one, still starts the check.
    #[test]
    fn a_prefix_list_change_checks_every_managed_group() {
        let sample: Value = serde_json::from_str(include_str!(
            "../../../events/drift-check-cloudtrail-prefix-list.json"
        ))
        .unwrap();
        let r = parse(&sample).unwrap();
        assert_eq!(
            (r.mode, r.scope.to_string(), r.trigger.as_str()),
            (
                None,
                "prefix-list:pl-0123456789abcdef0".to_owned(),
                "cloudtrail:ModifyManagedPrefixList"
            )
        );
        let mut odd = sample.clone();
        odd["detail"]["eventName"] = json!("RestoreManagedPrefixListVersion");
        odd["detail"]["requestParameters"] = json!({"prefixListId": "pl-'; DROP TABLE users"});
        assert_eq!(parse(&odd).unwrap().scope, Scope::PrefixList(None));
        odd["detail"]["eventName"] = json!("CreateManagedPrefixList");
        assert!(parse(&odd).is_err());
    }

    #[test]
    fn an_invocation_may_ask_for_less_than_the_deployed_mode_never_more() {
        use Mode::*;
        assert_eq!(Remediate.at_most(Report), Report);
        assert_eq!(Report.at_most(Remediate), Report);
        assert_eq!(Remediate.at_most(Remediate), Remediate);
        assert_eq!(Report.at_most(Report), Report);
    }
}
