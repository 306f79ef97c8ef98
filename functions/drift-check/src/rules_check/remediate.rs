//! The remediation steps. Each takes the owner's lock that sg-ip-update takes and acts only if
//! the row is still as it was compared; a row that moved meanwhile is left to the next run.

use std::time::Duration;

use deadpool_postgres::ClientWrapper;
use ingress::{
    capacity::{self, Family, Groups, PlaceFailed, Placed},
    ec2::AwsRule,
    ip::HostCidr,
    rule::ManagedRule,
    store::{self, AuditEntry, AuditOutcome},
};

use crate::{
    Error, State,
    report::{Action, Skip},
};

/// How long a fix waits for sg-ip-update to finish with the same owner.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// Revokes a rule no row wanted when the group was compared, unless one does now (a fix
/// earlier in this run, or sg-ip-update meanwhile).
pub(crate) async fn revoke_unexpected(
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
pub(crate) async fn expire(
    state: &State,
    client: &ClientWrapper,
    seen: &ManagedRule,
    in_aws: bool,
    run_id: &str,
) -> Result<Action, Error> {
    with_row(client, seen, async |rule| {
        let group = rule.security_group_id.as_str();
        // The lapsed rule's slot frees in the group that holds it.
        if let Some(id) = rule.aws_rule_id.as_deref().filter(|_| in_aws)
            && !store::rule_is_shared(client, rule.id, rule.group(), id).await?
            && let Err(e) = state.ec2.revoke(rule.group(), id).await
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

pub(crate) async fn adopt(
    client: &ClientWrapper,
    seen: &ManagedRule,
    aws_id: &str,
) -> Result<Action, Error> {
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
pub(crate) async fn fix_rule(
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
            if store::rule_is_shared(client, rule.id, rule.group(), &id).await? {
                rule.aws_rule_id = None;
            }
        }
        // A live rule stays in its group; one to be created goes where there is room, and
        // with none the row is left as it is: refused now, tried again by a later run.
        let groups = placement_groups(state, &rule);
        let target = match capacity::kept_in(&rule, host, &groups) {
            Some(g) => g.to_owned(),
            None => {
                let family = Family::of_ipv6(host.is_ipv6());
                match groups
                    .with_room(&state.ec2, family, Some(rule.group()), &[])
                    .await
                {
                    Ok(Ok(g)) => g,
                    Ok(Err(no_room)) => return Ok(Action::Refused(no_room.to_string())),
                    Err(e) => {
                        store::mark_failed(client, rule.id, stored, &e.to_string()).await?;
                        return Ok(Action::Failed(e.to_string()));
                    }
                }
            }
        };
        if rule.placed_group_id.as_deref() != Some(target.as_str()) {
            store::mark_placed(client, rule.id, &target).await?;
        }
        let row_id = rule.id;
        let placed =
            capacity::apply_with_room(&state.ec2, &groups, &rule, host, target, async |g| {
                store::mark_placed(client, row_id, g).await
            })
            .await;
        match placed {
            Ok(Placed::Applied { rule_id, .. }) => {
                store::mark_applied(client, rule.id, stored, &rule_id, false).await?;
                Ok(done)
            }
            Ok(Placed::NoRoom(no_room)) => Ok(Action::Refused(no_room.to_string())),
            Err(PlaceFailed::Db(e)) => Err(e.into()),
            Err(PlaceFailed::Aws(e)) => {
                store::mark_failed(client, rule.id, stored, &e.to_string()).await?;
                Ok(Action::Failed(e.to_string()))
            }
        }
    })
    .await
}

/// The groups a rule may be placed in: the managed groups (`SECURITY_GROUP_IDS`, the first
/// first), or where none are configured (local runs) the rule's own group only.
fn placement_groups(state: &State, rule: &ManagedRule) -> Groups {
    let ids = match &state.config.managed_groups {
        Some(groups) => groups.iter().map(ToString::to_string).collect(),
        None => vec![rule.group().to_owned()],
    };
    Groups {
        ids,
        rules_per_group: state.config.rules_per_group,
    }
}
