//! Security groups: the managed rows of a group against its real ingress rules, and the
//! remediation, done with sg-ip-update's own EC2 calls under its per-owner lock.

use std::{collections::HashSet, time::Instant};

use deadpool_postgres::ClientWrapper;
use serde_json::{Value, json};
use sg_ip_update::rules::{self, AwsRule, ManagedRule};

use crate::{
    Error, State,
    report::{Finding, Kind, Run},
};

/// One difference in a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleDrift {
    Missing(ManagedRule),
    Changed(ManagedRule, AwsRule),
    Unexpected(AwsRule),
}

/// Compares a group's rows with its AWS rules. A row claims the AWS rule with its id, or
/// failing that one that lets in exactly what the row wants; CIDR rules nobody claims are
/// unexpected. Rules whose source is another group or a prefix list are not ours to judge.
pub fn compare_group(desired: &[ManagedRule], actual: &[AwsRule]) -> Vec<RuleDrift> {
    let mut claimed = HashSet::new();
    let mut drift = Vec::new();
    for rule in desired {
        let Some(cidr) = rule.cidr.as_deref() else {
            continue;
        };
        let by_id = rule
            .aws_rule_id
            .as_deref()
            .and_then(|id| actual.iter().find(|a| a.id == id));
        match by_id {
            Some(a) => {
                claimed.insert(a.id.clone());
                if !a.matches(rule, cidr) {
                    drift.push(RuleDrift::Changed(rule.clone(), a.clone()));
                }
            }
            None => match actual
                .iter()
                .find(|a| !claimed.contains(&a.id) && a.matches(rule, cidr))
            {
                Some(a) => {
                    claimed.insert(a.id.clone());
                }
                None => drift.push(RuleDrift::Missing(rule.clone())),
            },
        }
    }
    for a in actual {
        if a.cidr.is_some() && !claimed.contains(&a.id) {
            drift.push(RuleDrift::Unexpected(a.clone()));
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
    let desired = rules::rules_in_group(client, group).await?;
    for drift in compare_group(&desired, &actual) {
        let remediate = run.remediating() && Instant::now() < deadline;
        let finding = match drift {
            RuleDrift::Missing(rule) => {
                let action = if remediate {
                    fix_rule(state, client, &rule, "created").await?
                } else {
                    none(run)
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
                let action = if remediate {
                    fix_rule(state, client, &rule, "modified").await?
                } else {
                    none(run)
                };
                Finding {
                    kind: Kind::Changed,
                    resource: format!("{group}/{}", aws.id),
                    desired: Some(desired_json(&rule)),
                    actual: Some(actual_json(&aws)),
                    action,
                }
            }
            RuleDrift::Unexpected(aws) => {
                let action = if remediate {
                    match state.ec2.revoke(group, &aws.id).await {
                        Ok(()) => "revoked".to_owned(),
                        Err(e) => format!("failed: {e}"),
                    }
                } else {
                    none(run)
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

fn none(run: &Run) -> String {
    if run.remediating() {
        "none: out of time".to_owned()
    } else {
        "none".to_owned()
    }
}

/// Applies a row to AWS under the owner's lock, unless the row changed since it was compared
/// (sg-ip-update got there first; the next run compares again).
async fn fix_rule(
    state: &State,
    client: &ClientWrapper,
    seen: &ManagedRule,
    done: &str,
) -> Result<String, Error> {
    rules::lock_owner(client, &seen.security_group_id, &seen.owner).await?;
    let action = async {
        let current = rules::find_rule(client, &seen.security_group_id, &seen.owner).await?;
        let Some(rule) = current.filter(|c| c == seen) else {
            return Ok::<_, Error>("skipped: the row changed meanwhile".to_owned());
        };
        let Some(cidr) = rule.cidr.as_deref() else {
            return Ok("skipped: no desired source".to_owned());
        };
        match state.ec2.apply(&rule, cidr).await {
            Ok(id) => {
                rules::mark_applied(client, rule.id, cidr, &id).await?;
                Ok(done.to_owned())
            }
            Err(e) => {
                rules::mark_failed(client, rule.id, cidr, &e.to_string()).await?;
                Ok(format!("failed: {e}"))
            }
        }
    }
    .await;
    rules::unlock_owner(client, &seen.security_group_id, &seen.owner).await?;
    action
}

#[cfg(test)]
mod tests {
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
            cidr: cidr.map(str::to_owned),
            allow_private: false,
            aws_rule_id: id.map(str::to_owned),
            status: "applied".into(),
        }
    }

    fn aws(id: &str, cidr: Option<&str>, port: i32) -> AwsRule {
        AwsRule {
            id: id.into(),
            ip_protocol: "tcp".into(),
            from_port: port,
            to_port: port,
            cidr: cidr.map(str::to_owned),
            description: None,
        }
    }

    #[test]
    fn in_step_means_no_drift() {
        let d = [
            row("a", Some("34.201.17.5/32"), Some("sgr-1")),
            row("b", Some("52.14.99.8/32"), None),
        ];
        let a = [
            aws("sgr-1", Some("34.201.17.5/32"), 5432),
            aws("sgr-2", Some("52.14.99.8/32"), 5432),
        ];
        assert!(compare_group(&d, &a).is_empty());
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
        let drift = compare_group(&d, &a);
        assert_eq!(drift.len(), 3, "{drift:?}");
        assert!(matches!(&drift[0], RuleDrift::Missing(r) if r.owner == "gone"));
        assert!(
            matches!(&drift[1], RuleDrift::Changed(r, a) if r.owner == "moved" && a.id == "sgr-2")
        );
        assert!(matches!(&drift[2], RuleDrift::Unexpected(a) if a.id == "sgr-open"));
    }

    #[test]
    fn other_ports_are_a_change() {
        let d = [row("a", Some("34.201.17.5/32"), Some("sgr-1"))];
        let a = [aws("sgr-1", Some("34.201.17.5/32"), 22)];
        assert!(matches!(
            compare_group(&d, &a)[..],
            [RuleDrift::Changed(..)]
        ));
    }
}
