//! Security groups: the managed rows of a group against its real ingress rules, and the
//! remediation, done with the same EC2 calls as sg-ip-update under its per-owner lock.
//!
//! [`compare`] decides what differs, without I/O; `remediate` holds the steps that fix it,
//! each on the row as it was compared; this file reads the group, records each finding, and
//! decides whether a change may be made now.

pub mod compare;
mod remediate;

pub use compare::{AllowedRule, RuleDrift, compare_group};

use std::time::{Instant, SystemTime};

use deadpool_postgres::ClientWrapper;
use ingress::{ec2::AwsRule, ip::Cidr, rule::ManagedRule, store};
use serde_json::{Value, json};

use crate::{
    Error, State,
    report::{Action, Finding, Kind, Run, Skip},
    rules_check::remediate::{adopt, expire, fix_rule, revoke_unexpected},
};

const ALLOWED_IN_GROUP: &str = "\
    SELECT cidr::text, aws_rule_id, reason, added_by, ip_protocol, from_port, to_port \
    FROM drift_allowed_rules WHERE security_group_id = $1 ORDER BY id";

/// The allowlist entries of one group.
pub async fn allowed_in_group(
    client: &ClientWrapper,
    group: &str,
) -> Result<Vec<AllowedRule>, tokio_postgres::Error> {
    let stmt = client.prepare_cached(ALLOWED_IN_GROUP).await?;
    client
        .query(&stmt, &[&group])
        .await?
        .iter()
        .map(|r| {
            Ok(AllowedRule {
                cidr: r
                    .try_get::<_, Option<String>>(0)?
                    .and_then(|c| Cidr::parse(&c)),
                aws_rule_id: r.try_get(1)?,
                reason: r.try_get(2)?,
                added_by: r.try_get(3)?,
                ip_protocol: r.try_get(4)?,
                from_port: r.try_get(5)?,
                to_port: r.try_get(6)?,
            })
        })
        .collect()
}

fn desired_json(rule: &ManagedRule) -> Value {
    json!({"owner": rule.owner, "protocol": rule.ip_protocol, "from_port": rule.from_port,
           "to_port": rule.to_port, "cidr": rule.cidr, "rule_id": rule.aws_rule_id})
}

fn actual_json(a: &AwsRule) -> Value {
    json!({"rule_id": a.id, "protocol": a.ip_protocol, "from_port": a.from_port, "to_port": a.to_port,
           "cidr": a.cidr, "description": a.description})
}

/// Checks one group and, when remediating, fixes what differs.
pub async fn check_group(
    state: &State,
    client: &ClientWrapper,
    group: &str,
    run: &mut Run,
    deadline: Instant,
) -> Result<(), Error> {
    // AWS first, rows second: a rule sg-ip-update creates is committed as the row's desired
    // source before it reaches AWS, so a rule seen here is never mistaken for unexpected.
    let actual = state.ec2.ingress_rules(group).await?;
    let desired = store::rules_in_group(client, group).await?;
    let allowed = allowed_in_group(client, group).await?;
    let drift = compare_group(&desired, &actual, &allowed, SystemTime::now());
    let held = run.remediating() && too_many_changes(&drift, &desired, &actual, state);
    if held {
        tracing::error!(run_id = %run.id, group, planned = changes(&drift), share = state.config.max_change_share,
            "remediation held back: the run would change more of the group's rules than DRIFT_MAX_CHANGE_SHARE allows; nothing in the group is changed");
        run.held_back.push(group.to_owned());
    }
    for drift in drift {
        let finding = match drift {
            RuleDrift::Adopt(rule, aws) => {
                if gate(run, client, held, deadline).await?.is_none() {
                    let action = adopt(client, &rule, &aws.id).await?;
                    tracing::info!(group, owner = %rule.owner, rule_id = %aws.id, %action, "row takes the matching AWS rule");
                }
                continue;
            }
            RuleDrift::Missing(rule) => {
                let action = match gate(run, client, held, deadline).await? {
                    Some(action) => action,
                    None => fix_rule(state, client, &rule, Action::Created).await?,
                };
                Finding {
                    kind: Kind::Missing,
                    resource: format!("{group}/owner:{}", rule.owner),
                    desired: Some(desired_json(&rule)),
                    actual: None,
                    action,
                }
            }
            RuleDrift::Changed(rule, aws) => {
                let action = match gate(run, client, held, deadline).await? {
                    Some(action) => action,
                    None => fix_rule(state, client, &rule, Action::Modified).await?,
                };
                Finding {
                    kind: Kind::Changed,
                    resource: format!("{group}/{}", aws.id),
                    desired: Some(desired_json(&rule)),
                    actual: Some(actual_json(&aws)),
                    action,
                }
            }
            RuleDrift::Allowed(aws, entry) => Finding {
                kind: Kind::Allowed,
                resource: format!("{group}/{}", aws.id),
                desired: Some(json!({"allowed_by": entry.added_by, "reason": entry.reason})),
                actual: Some(actual_json(&aws)),
                action: Action::Kept,
            },
            RuleDrift::NamedByUnpinnedEntry(aws, entry) => Finding {
                kind: Kind::Unexpected,
                resource: format!("{group}/{}", aws.id),
                desired: Some(json!({"allowed_by": entry.added_by, "reason": entry.reason,
                    "entry": "pins no protocol and ports: pin it to keep this rule"})),
                actual: Some(actual_json(&aws)),
                action: Action::Skipped(Skip::UnpinnedAllowlistEntry),
            },
            RuleDrift::Expired(rule, aws) => {
                // A lapse is the row's own deadline, not a mass change: never held back.
                let action = match gate(run, client, false, deadline).await? {
                    Some(action) => action,
                    None => expire(state, client, &rule, aws.is_some(), &run.id).await?,
                };
                Finding {
                    kind: Kind::Expired,
                    resource: format!("{group}/owner:{}", rule.owner),
                    desired: Some(desired_json(&rule)),
                    actual: aws.as_ref().map(actual_json),
                    action,
                }
            }
            RuleDrift::Unexpected(aws) => {
                let action = match gate(run, client, held, deadline).await? {
                    Some(action) => action,
                    None => revoke_unexpected(state, client, group, &aws).await?,
                };
                Finding {
                    kind: Kind::Unexpected,
                    resource: format!("{group}/{}", aws.id),
                    desired: None,
                    actual: Some(actual_json(&aws)),
                    action,
                }
            }
        };
        run.record(client, finding).await?;
    }
    Ok(())
}

/// The changes in AWS remediation would make for `drift`.
fn changes(drift: &[RuleDrift]) -> usize {
    drift
        .iter()
        .filter(|d| {
            matches!(
                d,
                RuleDrift::Missing(_) | RuleDrift::Changed(..) | RuleDrift::Unexpected(_)
            )
        })
        .count()
}

/// Changes a run may always make in a group, whatever its size: in a small group ordinary drift
/// (a 0.0.0.0/0 opened beside one developer's rule, a rule moved and one deleted) is most of it.
pub const ALWAYS_ALLOWED_CHANGES: usize = 3;

/// Whether remediating `drift` would change more of the group's rules than the configured
/// share (and more than [`ALWAYS_ALLOWED_CHANGES`]): a restored old snapshot or a mistaken
/// mass DELETE must not let one run move or revoke every rule.
fn too_many_changes(
    drift: &[RuleDrift],
    desired: &[ManagedRule],
    actual: &[AwsRule],
    state: &State,
) -> bool {
    let rules = actual
        .iter()
        .filter(|a| a.cidr.is_some())
        .count()
        .max(desired.iter().filter(|d| d.cidr.is_some()).count());
    let allowed = ((rules as f64) * state.config.max_change_share).ceil() as usize;
    changes(drift) > allowed.max(ALWAYS_ALLOWED_CHANGES)
}

/// Whether to make a change now: `None` when it may be made, else what to record instead
/// (report mode, the group held back, the deadline, the kill switch read just now).
async fn gate(
    run: &mut Run,
    client: &ClientWrapper,
    held: bool,
    deadline: Instant,
) -> Result<Option<Action>, Error> {
    if !run.remediating() {
        return Ok(Some(Action::None));
    }
    if held {
        return Ok(Some(Action::Skipped(Skip::HeldBack)));
    }
    if Instant::now() >= deadline {
        return Ok(Some(Action::OutOfTime));
    }
    if !run.may_change(client).await? {
        return Ok(Some(Action::Skipped(Skip::Paused)));
    }
    Ok(None)
}
