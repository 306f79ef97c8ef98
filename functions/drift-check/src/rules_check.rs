//! Security groups: the managed rows of a group against its real ingress rules, and the
//! remediation, done with the same EC2 calls as sg-ip-update under its per-owner lock.
//!
//! [`compare`] decides what differs, without I/O; `remediate` holds the steps that fix it,
//! each on the row as it was compared; [`release`] an operator's release of a held-back group;
//! this file reads the group, records each finding, and decides whether a change may be made
//! now.

pub mod allowlist;
pub mod compare;
pub mod release;
mod remediate;

pub use compare::{AllowedRule, OpenEnded, RuleDrift, compare_group};

use std::time::{Instant, SystemTime};

use deadpool_postgres::ClientWrapper;
use ingress::{
    capacity::GroupUse,
    ec2::{AwsRule, ReferencedSource},
    ip::Cidr,
    rule::ManagedRule,
    store,
};
use serde_json::{Value, json};

use crate::{
    Error, State,
    report::{Action, Finding, Kind, Run, Skip},
    rules_check::remediate::{adopt, expire, fix_rule, revoke_unexpected},
};

const ALLOWED_IN_GROUP: &str = "\
    SELECT cidr::text, aws_rule_id, reason, added_by, ip_protocol, from_port, to_port, source_ref \
    FROM drift_allowed_rules WHERE security_group_id = $1 ORDER BY id";

/// When each row of a group without an `expires_at` of its own lapses.
pub async fn open_ended(
    client: &ClientWrapper,
    group: &str,
) -> Result<OpenEnded, tokio_postgres::Error> {
    let sql = format!(
        "SELECT id, {} FROM managed_ingress_rules \
         WHERE {} = $1 AND expires_at IS NULL",
        store::LAPSES_AT,
        store::PLACED_IN
    );
    let stmt = client.prepare_cached(&sql).await?;
    client
        .query(&stmt, &[&group])
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

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
                source_ref: r.try_get(7)?,
            })
        })
        .collect()
}

/// An entry keeping `aws` when its source is the functions' own group `own`: that rule is how
/// the stack reaches the database (docs/deploying.md), on whatever ports the operator opened.
fn the_functions_own(aws: &AwsRule, own: &str) -> Option<AllowedRule> {
    matches!(&aws.referenced, Some(ReferencedSource::Group(g)) if g == own).then(|| AllowedRule {
        cidr: None,
        source_ref: Some(own.to_owned()),
        aws_rule_id: Some(aws.id.clone()),
        ip_protocol: Some(aws.ip_protocol.clone()),
        from_port: Some(aws.from_port),
        to_port: Some(aws.to_port),
        reason: "the functions' own security group: how the stack reaches the database".into(),
        added_by: "FUNCTION_SECURITY_GROUP_ID".into(),
    })
}

fn desired_json(rule: &ManagedRule) -> Value {
    json!({"owner": rule.owner, "protocol": rule.ip_protocol, "from_port": rule.from_port,
           "to_port": rule.to_port, "cidr": rule.cidr, "rule_id": rule.aws_rule_id})
}

fn actual_json(a: &AwsRule) -> Value {
    json!({"rule_id": a.id, "protocol": a.ip_protocol, "from_port": a.from_port, "to_port": a.to_port,
           "cidr": a.cidr, "source": a.source(), "description": a.description})
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
    record_use(state, client, group, &actual, run).await?;
    let desired = store::rules_in_group(client, group).await?;
    let mut allowed = allowed_in_group(client, group).await?;
    if let Some(own) = &state.config.function_group {
        allowed.extend(
            actual
                .iter()
                .filter_map(|a| the_functions_own(a, own.as_str())),
        );
    }
    let open_ended = open_ended(client, group).await?;
    let drift = compare_group(&desired, &actual, &allowed, SystemTime::now(), &open_ended);
    let held = run.remediating()
        && held_back(state, client, group, run, &drift, &desired, &actual).await?;
    let may = run.remediating();
    for drift in drift {
        let finding = match drift {
            RuleDrift::Adopt(rule, aws) => {
                if gate(run, client, may, held, deadline).await?.is_none() {
                    let action = adopt(client, &rule, &aws.id).await?;
                    tracing::info!(group, owner = %rule.owner, rule_id = %aws.id, %action, "row takes the matching AWS rule");
                }
                continue;
            }
            RuleDrift::Missing(rule) => {
                let action = match gate(run, client, may, held, deadline).await? {
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
                let action = match gate(run, client, may, held, deadline).await? {
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
                // A lapse is the row's own deadline, not a mass change: never held back; and
                // revoked in report mode too, unless DRIFT_LAPSE=report.
                let lapse = run.revokes_lapsed();
                let action = match gate(run, client, lapse, false, deadline).await? {
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
                // Revoking a rule open to more than one host locks out no developer.
                let held = held && aws.lets_in_one_host();
                let action = match gate(run, client, may, held, deadline).await? {
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

/// Reports each row whose rule is placed outside the `managed` groups: no run visits that
/// group, so its rule neither lapses nor is revoked, and the function has no grant to change
/// it. The developer's next update places it again; until then the operator sees it here.
pub async fn report_placed_outside(
    client: &ClientWrapper,
    managed: &[String],
    run: &mut Run,
) -> Result<(), Error> {
    for rule in store::rules_placed_outside(client, managed).await? {
        let finding = Finding {
            kind: Kind::PlacedOutside,
            resource: format!("{}/owner:{}", rule.group(), rule.owner),
            desired: Some(json!({"managed_groups": managed,
                "drain": "docs/operating.md: draining a group before removing it"})),
            actual: Some(desired_json(&rule)),
            action: Action::Reported,
        };
        run.record(client, finding).await?;
    }
    Ok(())
}

/// The share of the quota at which a group's use is reported (and the capacity alarm fires).
pub const CAPACITY_WARNING_PERCENT: f64 = 80.0;

/// Counts the group's inbound rules as AWS reported them (every rule, ours or not) for the
/// capacity metrics, and reports a group at [`CAPACITY_WARNING_PERCENT`] of the quota or more.
async fn record_use(
    state: &State,
    client: &ClientWrapper,
    group: &str,
    actual: &[AwsRule],
    run: &mut Run,
) -> Result<(), Error> {
    let used = GroupUse::of(group, actual);
    let quota = state.config.rules_per_group;
    let percent = used.percent(quota);
    run.capacity.push(used.clone());
    if percent < CAPACITY_WARNING_PERCENT {
        return Ok(());
    }
    let finding = Finding {
        kind: Kind::GroupCapacity,
        resource: group.to_owned(),
        desired: Some(
            json!({"quota": quota, "warn_at_percent": CAPACITY_WARNING_PERCENT,
            "raise": "Service Quotas L-0EA8095F (Inbound or outbound rules per security group), \
                      or add a group to AdditionalDatabaseSecurityGroupIds"}),
        ),
        actual: Some(
            json!({"ipv4_rules": used.ipv4_rules, "ipv6_rules": used.ipv6_rules,
            "quota": quota, "percent": percent}),
        ),
        action: Action::Reported,
    };
    run.record(client, finding).await?;
    Ok(())
}

/// The changes remediation would make to developers' own rules: a row's rule created or
/// moved, or a one-host rule no row wants revoked. Revoking a rule open to more than one host
/// (0.0.0.0/0, an unlisted range, a prefix list, another group) locks out no developer, so it
/// is neither counted nor ever held back.
fn developer_changes(drift: &[RuleDrift]) -> usize {
    drift
        .iter()
        .filter(|d| match d {
            RuleDrift::Missing(_) | RuleDrift::Changed(..) => true,
            RuleDrift::Unexpected(aws) => aws.lets_in_one_host(),
            _ => false,
        })
        .count()
}

/// Changes to developers' rules a run may always make in a group, whatever its size: in a
/// small group ordinary drift (a rule moved, one deleted, one left behind) is most of it.
pub const ALWAYS_ALLOWED_CHANGES: usize = 3;

/// Whether remediating `drift` would change more of the group's developer rules than the
/// configured share (and more than [`ALWAYS_ALLOWED_CHANGES`]): a restored old snapshot or a
/// mistaken mass DELETE must not let one run move or revoke every developer's rule.
fn too_many_changes(
    drift: &[RuleDrift],
    desired: &[ManagedRule],
    actual: &[AwsRule],
    state: &State,
) -> bool {
    let rules = actual
        .iter()
        .filter(|a| a.lets_in_one_host())
        .count()
        .max(desired.iter().filter(|d| d.cidr.is_some()).count());
    let allowed = ((rules as f64) * state.config.max_change_share).ceil() as usize;
    developer_changes(drift) > allowed.max(ALWAYS_ALLOWED_CHANGES)
}

/// Whether the group's developer rules are held back in this remediating run. An operator's
/// release is spent by the first remediating run that checks the group, whether it needed it
/// or not; a group it releases is changed in full and named in the run's summary.
async fn held_back(
    state: &State,
    client: &ClientWrapper,
    group: &str,
    run: &mut Run,
    drift: &[RuleDrift],
    desired: &[ManagedRule],
    actual: &[AwsRule],
) -> Result<bool, Error> {
    let too_many = too_many_changes(drift, desired, actual, state);
    let planned = developer_changes(drift);
    let let_through = if too_many { planned } else { 0 };
    if let Some(r) = release::spend(client, group, &run.id, let_through).await? {
        tracing::warn!(run_id = %run.id, group, release = r.id, added_by = %r.added_by, reason = %r.reason,
            changes = let_through, "an operator's release of the group is spent by this run");
        run.released.push(group.to_owned());
        return Ok(false);
    }
    if too_many {
        tracing::error!(run_id = %run.id, group, planned, share = state.config.max_change_share,
            "remediation held back: the run would change more of the group's developer rules than DRIFT_MAX_CHANGE_SHARE allows; none of them is changed (rules open to more than one host are still revoked)");
        run.held_back.push(group.to_owned());
    }
    Ok(too_many)
}

/// Whether to make a change now: `None` when it may be made, else what to record instead
/// (the run may not make this kind of change, the group held back, the deadline, the kill
/// switch read just now).
async fn gate(
    run: &mut Run,
    client: &ClientWrapper,
    may: bool,
    held: bool,
    deadline: Instant,
) -> Result<Option<Action>, Error> {
    if !may {
        return Ok(Some(Action::None));
    }
    if held {
        return Ok(Some(Action::Skipped(Skip::HeldBack)));
    }
    if Instant::now() >= deadline {
        return Ok(Some(Action::OutOfTime));
    }
    let switch_off = if run.remediating() {
        run.may_change(client).await?
    } else {
        run.may_revoke_lapsed(client).await?
    };
    if !switch_off {
        return Ok(Some(Action::Skipped(Skip::Paused)));
    }
    Ok(None)
}
