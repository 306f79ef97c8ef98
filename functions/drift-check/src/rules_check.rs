//! Security groups: the managed rows of a group against its real ingress rules, and the
//! remediation, done with the same EC2 calls as sg-ip-update under its per-owner lock.

use std::{
    collections::HashSet,
    time::{Duration, Instant, SystemTime},
};

use deadpool_postgres::ClientWrapper;
use ingress::{
    ec2::AwsRule,
    ip::{Cidr, HostCidr},
    rule::{ManagedRule, RuleStatus},
    store::{self, AuditEntry, AuditOutcome},
};
use serde_json::{Value, json};

use crate::{
    Error, State,
    report::{Action, Finding, Kind, Run, Skip},
};

/// One difference in a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleDrift {
    Missing(ManagedRule),
    Changed(ManagedRule, AwsRule),
    Unexpected(AwsRule),
    /// AWS has exactly what the row wants, under another rule id (a rule shared by developers
    /// behind one address, or one created when the answer was lost): the row takes that id.
    Adopt(ManagedRule, AwsRule),
    /// A rule no row describes that an allowlist entry names: kept.
    Allowed(AwsRule, AllowedRule),
    /// A rule no row describes that only an entry from before entries were pinned names (by
    /// CIDR or id alone): reported as drift, never revoked, until the entry is pinned.
    NamedByUnpinnedEntry(AwsRule, AllowedRule),
    /// A row past its lifetime, with its own AWS rule if AWS still has it: to be revoked.
    Expired(ManagedRule, Option<AwsRule>),
}

/// An entry of `drift_allowed_rules`: a foreign rule an operator declared expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedRule {
    pub cidr: Option<Cidr>,
    pub aws_rule_id: Option<String>,
    pub ip_protocol: Option<String>,
    pub from_port: Option<i32>,
    pub to_port: Option<i32>,
    pub reason: String,
    pub added_by: String,
}

impl AllowedRule {
    /// Whether the entry pins what it allows: source, protocol and ports.
    pub fn is_pinned(&self) -> bool {
        self.cidr.is_some()
            && self.ip_protocol.is_some()
            && self.from_port.is_some()
            && self.to_port.is_some()
    }

    /// Exact matching only, on everything the entry pins: an entry never covers a wider
    /// source, another protocol or other ports, so a rule widened by hand (0.0.0.0/0, every
    /// port) is drift, and 0.0.0.0/0 stays only when an entry names it. An unpinned entry
    /// covers nothing.
    pub fn covers(&self, aws: &AwsRule) -> bool {
        self.is_pinned()
            && self.cidr == aws.cidr
            && self.ip_protocol.as_deref() == Some(aws.ip_protocol.as_str())
            && self.from_port == Some(aws.from_port)
            && self.to_port == Some(aws.to_port)
            && self.aws_rule_id.as_deref().is_none_or(|id| id == aws.id)
    }

    /// An unpinned entry's old meaning (its CIDR, its id, or both): the rule it was written
    /// for, now reported until the entry is pinned.
    fn names(&self, aws: &AwsRule) -> bool {
        !self.is_pinned()
            && (self.cidr.is_some() || self.aws_rule_id.is_some())
            && self.cidr.is_none_or(|c| aws.cidr == Some(c))
            && self.aws_rule_id.as_deref().is_none_or(|id| id == aws.id)
    }
}

const ALLOWED_IN_GROUP: &str = "\
    SELECT cidr::text, aws_rule_id, reason, added_by, ip_protocol, from_port, to_port \
    FROM drift_allowed_rules WHERE security_group_id = $1 ORDER BY id";

/// The allowlist entries of one group.
pub async fn allowed_in_group(
    client: &ClientWrapper,
    group: &str,
) -> Result<Vec<AllowedRule>, tokio_postgres::Error> {
    client
        .query(ALLOWED_IN_GROUP, &[&group])
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

/// Compares a group's rows with its AWS rules at `now`. A row is satisfied by any rule that lets
/// in exactly what it wants (its own first; developers behind one address share one), else its
/// own rule is `Changed`, else it is `Missing`. A row past its lifetime wants its rule gone
/// (`Expired`), and an expired row wants nothing. CIDR rules no row claims are unexpected,
/// unless an allowlist entry names them. Rules whose source is another group or a prefix list
/// are not ours to judge.
pub fn compare_group(
    desired: &[ManagedRule],
    actual: &[AwsRule],
    allowed: &[AllowedRule],
    now: SystemTime,
) -> Vec<RuleDrift> {
    let mut claimed = HashSet::new();
    let mut drift = Vec::new();
    for rule in desired {
        let Some(cidr) = rule.cidr else {
            continue;
        };
        if rule.status == RuleStatus::Expired {
            continue;
        }
        let own = rule
            .aws_rule_id
            .as_deref()
            .and_then(|id| actual.iter().find(|a| a.id == id));
        if rule.has_lapsed(now) {
            if let Some(a) = own {
                claimed.insert(a.id.clone());
            }
            drift.push(RuleDrift::Expired(rule.clone(), own.cloned()));
            continue;
        }
        // Another rule is taken only when this stack made it (a shared address, a lost
        // answer): a rule made by hand or allowlisted is never adopted.
        let exact = own
            .filter(|a| a.matches(rule, cidr))
            .or_else(|| actual.iter().find(|a| a.is_ours() && a.matches(rule, cidr)));
        match (exact, own) {
            (Some(a), _) => {
                claimed.insert(a.id.clone());
                if own.is_some_and(|o| o.id == a.id) {
                    continue;
                }
                drift.push(RuleDrift::Adopt(rule.clone(), a.clone()));
            }
            (None, Some(a)) => {
                claimed.insert(a.id.clone());
                drift.push(RuleDrift::Changed(rule.clone(), a.clone()));
            }
            (None, None) => drift.push(RuleDrift::Missing(rule.clone())),
        }
    }
    for a in actual {
        if a.cidr.is_some() && !claimed.contains(&a.id) {
            let covering = allowed.iter().find(|e| e.covers(a));
            let naming = || allowed.iter().find(|e| e.names(a));
            drift.push(match (covering, naming()) {
                (Some(entry), _) => RuleDrift::Allowed(a.clone(), entry.clone()),
                (None, Some(entry)) => RuleDrift::NamedByUnpinnedEntry(a.clone(), entry.clone()),
                (None, None) => RuleDrift::Unexpected(a.clone()),
            });
        }
    }
    drift
}

fn desired_json(rule: &ManagedRule) -> Value {
    json!({"owner": rule.owner, "protocol": rule.ip_protocol, "from_port": rule.from_port,
           "to_port": rule.to_port, "cidr": rule.cidr, "rule_id": rule.aws_rule_id})
}

fn actual_json(a: &AwsRule) -> Value {
    json!({"rule_id": a.id, "protocol": a.ip_protocol, "from_port": a.from_port, "to_port": a.to_port,
           "cidr": a.cidr, "description": a.description})
}

/// How long a fix waits for sg-ip-update to finish with the same owner.
const LOCK_WAIT: Duration = Duration::from_secs(10);

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

/// Revokes a rule no row wanted when the group was compared, unless one does now (a fix
/// earlier in this run, or sg-ip-update meanwhile).
async fn revoke_unexpected(
    state: &State,
    client: &ClientWrapper,
    group: &str,
    aws: &AwsRule,
) -> Result<Action, Error> {
    let rows = store::rules_in_group(client, group).await?;
    let wanted = rows.iter().any(|r| {
        r.aws_rule_id.as_deref() == Some(aws.id.as_str())
            || r.cidr.is_some_and(|c| aws.matches(r, c))
    });
    if wanted {
        return Ok(Action::Skipped(Skip::WantedNow));
    }
    Ok(match state.ec2.revoke(group, &aws.id).await {
        Ok(()) => Action::Revoked,
        Err(e) => Action::Failed(e.to_string()),
    })
}

/// Revokes a lapsed rule (unless another developer behind the same address shares it: then
/// only this row lets go of it) and marks the row expired, with an audit record, in one
/// transaction. The developer's next request opens it again.
async fn expire(
    state: &State,
    client: &ClientWrapper,
    seen: &ManagedRule,
    in_aws: bool,
    run_id: &str,
) -> Result<Action, Error> {
    with_row(client, seen, async |rule| {
        let group = rule.security_group_id.as_str();
        if let Some(id) = rule.aws_rule_id.as_deref().filter(|_| in_aws)
            && !store::rule_is_shared(client, rule.id, group, id).await?
            && let Err(e) = state.ec2.revoke(group, id).await
        {
            return Ok(Action::Failed(e.to_string()));
        }
        let cidr = rule.cidr.map(|c| c.to_string());
        let detail = format!("past its lifetime; revoked by drift-check run {run_id}");
        let entry = AuditEntry {
            owner: &rule.owner,
            security_group_id: group,
            old_cidr: cidr.as_deref(),
            new_cidr: None,
            outcome: AuditOutcome::Expired,
            detail: Some(&detail),
            request_id: run_id,
            via: None,
            caller: None,
        };
        client.batch_execute("BEGIN").await?;
        let marked = async {
            let marked = store::mark_expired(client, rule.id).await?;
            if marked {
                store::audit(client, &entry).await?;
            }
            Ok::<_, tokio_postgres::Error>(marked)
        }
        .await;
        match marked {
            Ok(marked) => {
                client.batch_execute("COMMIT").await?;
                Ok(if marked {
                    Action::Revoked
                } else {
                    Action::Skipped(Skip::RowChanged)
                })
            }
            Err(e) => {
                let _ = client.batch_execute("ROLLBACK").await;
                Err(e.into())
            }
        }
    })
    .await
}

/// Runs `step` on the row under the owner's lock, if the row is still as it was compared.
async fn with_row<F>(client: &ClientWrapper, seen: &ManagedRule, step: F) -> Result<Action, Error>
where
    F: AsyncFnOnce(ManagedRule) -> Result<Action, Error>,
{
    if !store::lock_owner(client, &seen.security_group_id, &seen.owner, LOCK_WAIT).await? {
        return Ok(Action::Skipped(Skip::Busy));
    }
    let action = async {
        match store::find_rule(client, &seen.security_group_id, &seen.owner).await? {
            Some(rule) if rule == *seen => step(rule).await,
            _ => Ok(Action::Skipped(Skip::RowChanged)),
        }
    }
    .await;
    store::unlock_owner(client, &seen.security_group_id, &seen.owner).await?;
    action
}

async fn adopt(client: &ClientWrapper, seen: &ManagedRule, aws_id: &str) -> Result<Action, Error> {
    with_row(client, seen, async |rule| {
        let Some(cidr) = rule.cidr else {
            return Ok(Action::Skipped(Skip::NoDesiredSource));
        };
        store::mark_applied(client, rule.id, cidr, aws_id, false).await?;
        Ok(Action::Adopted)
    })
    .await
}

/// Applies a row to AWS, unless the row changed since it was compared (sg-ip-update got there
/// first; the next run compares again). The stored source is validated again first: the table
/// only knows it is one host.
async fn fix_rule(
    state: &State,
    client: &ClientWrapper,
    seen: &ManagedRule,
    done: Action,
) -> Result<Action, Error> {
    with_row(client, seen, async |mut rule| {
        let Some(stored) = rule.cidr else {
            return Ok(Action::Skipped(Skip::NoDesiredSource));
        };
        let host = match HostCidr::recheck(stored, rule.allow_private) {
            Ok(h) => h,
            Err(e) => return Ok(Action::Refused(e.to_string())),
        };
        if let Some(id) = rule.aws_rule_id.clone() {
            if store::rule_is_shared(client, rule.id, &rule.security_group_id, &id).await? {
                rule.aws_rule_id = None;
            }
        }
        match state.ec2.apply(&rule, host).await {
            Ok(id) => {
                store::mark_applied(client, rule.id, stored, &id, false).await?;
                Ok(done)
            }
            Err(e) => {
                store::mark_failed(client, rule.id, stored, &e.to_string()).await?;
                Ok(Action::Failed(e.to_string()))
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use ingress::rule::RuleStatus;

    use super::*;

    fn row(owner: &str, cidr: Option<&str>, id: Option<&str>) -> ManagedRule {
        ManagedRule {
            id: 1,
            security_group_id: "sg-0a1b2c3d".into(),
            owner: owner.into(),
            description: String::new(),
            ip_protocol: "tcp".into(),
            from_port: 5432,
            to_port: 5432,
            cidr: cidr.and_then(Cidr::parse),
            allow_private: false,
            principal: None,
            allow_unverified: false,
            aws_rule_id: id.map(str::to_owned),
            status: RuleStatus::Applied,
            last_request_at: None,
            expires_at: None,
        }
    }

    #[test]
    fn a_rule_past_its_lifetime_is_to_be_revoked_and_an_expired_row_wants_nothing() {
        let now = SystemTime::now();
        let hour = Duration::from_secs(3600);
        let mut lapsed = row("andrew", Some("34.201.17.5/32"), Some("sgr-a"));
        lapsed.expires_at = Some(now - hour);
        let mut fresh = row("bea", Some("52.14.99.8/32"), Some("sgr-b"));
        fresh.expires_at = Some(now + hour);
        let a = [
            aws("sgr-a", Some("34.201.17.5/32"), 5432),
            aws("sgr-b", Some("52.14.99.8/32"), 5432),
        ];
        let drift = compare_group(&[lapsed.clone(), fresh.clone()], &a, &[], now);
        assert_eq!(
            drift,
            [RuleDrift::Expired(lapsed.clone(), Some(a[0].clone()))]
        );

        // Already revoked by hand: still expired, nothing in AWS to revoke.
        let drift = compare_group(std::slice::from_ref(&lapsed), &a[1..], &[], now);
        assert_eq!(drift[0], RuleDrift::Expired(lapsed.clone(), None));

        // Once expired, the row wants no rule: one still there is unexpected, none is missing.
        let mut expired = lapsed;
        expired.status = RuleStatus::Expired;
        expired.aws_rule_id = None;
        assert!(compare_group(std::slice::from_ref(&expired), &[], &[], now).is_empty());
        let drift = compare_group(std::slice::from_ref(&expired), &a[..1], &[], now);
        assert_eq!(drift, [RuleDrift::Unexpected(a[0].clone())]);
    }

    fn aws(id: &str, cidr: Option<&str>, port: i32) -> AwsRule {
        AwsRule {
            id: id.into(),
            ip_protocol: "tcp".into(),
            from_port: port,
            to_port: port,
            cidr: cidr.and_then(Cidr::parse),
            description: None,
            // Made by this stack, unless a test says otherwise.
            tagged_owner: Some("someone".into()),
        }
    }

    #[test]
    fn a_matching_rule_this_stack_did_not_make_is_never_adopted() {
        // The row wants exactly what a hand-made rule (no tag) lets in.
        let d = [row("a", Some("52.0.0.9/32"), None)];
        let by_hand = AwsRule {
            tagged_owner: None,
            ..aws("sgr-bastion", Some("52.0.0.9/32"), 5432)
        };
        let drift = compare_group(&d, std::slice::from_ref(&by_hand), &[], SystemTime::now());
        assert!(
            matches!(&drift[..], [RuleDrift::Missing(r), RuleDrift::Unexpected(a)]
                if r.owner == "a" && a.id == "sgr-bastion"),
            "{drift:?}"
        );
        // Made by this stack (for a developer behind the same address): shared.
        let ours = aws("sgr-shared", Some("52.0.0.9/32"), 5432);
        let drift = compare_group(&d, &[ours], &[], SystemTime::now());
        assert!(matches!(&drift[..], [RuleDrift::Adopt(..)]), "{drift:?}");
    }

    #[test]
    fn in_step_means_no_drift() {
        let d = [
            row("a", Some("34.201.17.5/32"), Some("sgr-1")),
            row("b", Some("52.14.99.8/32"), Some("sgr-2")),
        ];
        let a = [
            aws("sgr-1", Some("34.201.17.5/32"), 5432),
            aws("sgr-2", Some("52.14.99.8/32"), 5432),
        ];
        assert!(compare_group(&d, &a, &[], SystemTime::now()).is_empty());
    }

    #[test]
    fn developers_behind_one_address_share_its_rule() {
        let d = [
            row("a", Some("34.201.17.5/32"), Some("sgr-1")),
            row("b", Some("34.201.17.5/32"), None),
        ];
        let a = [aws("sgr-1", Some("34.201.17.5/32"), 5432)];
        let drift = compare_group(&d, &a, &[], SystemTime::now());
        assert!(
            matches!(&drift[..], [RuleDrift::Adopt(r, a)] if r.owner == "b" && a.id == "sgr-1"),
            "{drift:?}"
        );
    }

    #[test]
    fn a_leftover_rule_is_unexpected_and_the_right_one_adopted() {
        // An IPv6 to IPv4 move that created the new rule but could not revoke the old one.
        let d = [row("a", Some("34.201.17.5/32"), Some("sgr-old"))];
        let a = [
            aws("sgr-old", Some("2600:1f18::7/128"), 5432),
            aws("sgr-new", Some("34.201.17.5/32"), 5432),
        ];
        let drift = compare_group(&d, &a, &[], SystemTime::now());
        assert!(
            matches!(&drift[0], RuleDrift::Adopt(_, a) if a.id == "sgr-new"),
            "{drift:?}"
        );
        assert!(
            matches!(&drift[1], RuleDrift::Unexpected(a) if a.id == "sgr-old"),
            "{drift:?}"
        );
        assert_eq!(drift.len(), 2);
    }

    #[test]
    fn each_kind_is_found() {
        let d = [
            row("gone", Some("34.201.17.5/32"), Some("sgr-deleted")),
            row("moved", Some("52.14.99.8/32"), Some("sgr-2")),
            row("never", None, None),
        ];
        let a = [
            aws("sgr-2", Some("52.14.99.9/32"), 5432),
            aws("sgr-open", Some("0.0.0.0/0"), 5432),
            aws("sgr-app", None, 5432),
        ];
        let drift = compare_group(&d, &a, &[], SystemTime::now());
        assert_eq!(drift.len(), 3, "{drift:?}");
        assert!(matches!(&drift[0], RuleDrift::Missing(r) if r.owner == "gone"));
        assert!(
            matches!(&drift[1], RuleDrift::Changed(r, a) if r.owner == "moved" && a.id == "sgr-2")
        );
        assert!(matches!(&drift[2], RuleDrift::Unexpected(a) if a.id == "sgr-open"));
    }

    #[test]
    fn an_allowlisted_rule_is_kept_and_only_the_one_it_names() {
        let d = [row("a", Some("34.201.17.5/32"), Some("sgr-1"))];
        let a = [
            aws("sgr-1", Some("34.201.17.5/32"), 5432),
            aws("sgr-vpn", Some("10.20.0.0/16"), 5432),
            aws("sgr-open", Some("0.0.0.0/0"), 5432),
            aws("sgr-bastion", Some("52.0.0.9/32"), 5432),
        ];
        let entry = |cidr: &str, id: Option<&str>| AllowedRule {
            cidr: Cidr::parse(cidr),
            aws_rule_id: id.map(str::to_owned),
            ip_protocol: Some("tcp".into()),
            from_port: Some(5432),
            to_port: Some(5432),
            reason: "vpn".into(),
            added_by: "ops".into(),
        };
        let allowed = [
            entry("10.20.0.0/16", None),
            entry("52.0.0.9/32", Some("sgr-bastion")),
            // The id given too: both must match, and this id has another source.
            entry("0.0.0.0/0", Some("sgr-vpn")),
        ];
        let drift = compare_group(&d, &a, &allowed, SystemTime::now());
        assert_eq!(drift.len(), 3, "{drift:?}");
        assert!(matches!(&drift[0], RuleDrift::Allowed(a, _) if a.id == "sgr-vpn"));
        assert!(matches!(&drift[1], RuleDrift::Unexpected(a) if a.id == "sgr-open"));
        assert!(matches!(&drift[2], RuleDrift::Allowed(a, _) if a.id == "sgr-bastion"));
        // A wider entry never covers a narrower or another rule: only an exact one does.
        assert!(!entry("0.0.0.0/0", None).covers(&a[1]));
        assert!(!entry("10.0.0.0/8", None).covers(&a[1]));

        // The bastion's rule widened by hand, to the world or to every port, is drift.
        let widened = [
            aws("sgr-bastion", Some("0.0.0.0/0"), 5432),
            AwsRule {
                ip_protocol: "-1".into(),
                from_port: -1,
                to_port: -1,
                ..aws("sgr-bastion", Some("52.0.0.9/32"), 5432)
            },
            aws("sgr-bastion", Some("52.0.0.9/32"), 22),
        ];
        for w in &widened {
            let drift = compare_group(&[], std::slice::from_ref(w), &allowed, SystemTime::now());
            assert!(
                matches!(&drift[..], [RuleDrift::Unexpected(_)]),
                "{w:?}: {drift:?}"
            );
        }
        // An entry from before pinning (its id alone) keeps nothing, and is named as the reason.
        let unpinned = AllowedRule {
            cidr: None,
            ip_protocol: None,
            from_port: None,
            to_port: None,
            ..entry("52.0.0.9/32", Some("sgr-bastion"))
        };
        let drift = compare_group(&[], &widened[..1], &[unpinned], SystemTime::now());
        assert!(
            matches!(&drift[..], [RuleDrift::NamedByUnpinnedEntry(..)]),
            "{drift:?}"
        );
    }

    #[test]
    fn other_ports_are_a_change() {
        let d = [row("a", Some("34.201.17.5/32"), Some("sgr-1"))];
        let a = [aws("sgr-1", Some("34.201.17.5/32"), 22)];
        assert!(matches!(
            compare_group(&d, &a, &[], SystemTime::now())[..],
            [RuleDrift::Changed(..)]
        ));
    }
}
