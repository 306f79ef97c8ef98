//! The update itself: look up the owner's row and check the sender, then, under the owner's
//! lock, check them again on the row as it is now, take a signed request once, check the
//! address, record the desired state, apply it in AWS and record the result with its audit
//! row in one transaction. A sender the row does not accept never takes the lock.

use ingress::{
    capacity::{self, Family, Placed},
    ip::host_cidr,
    rule::{ManagedRule, RuleStatus},
    store::{self, AuditEntry, AuditOutcome},
};
use shared::errors::truncate;

use crate::{Error, Request, Sender, State, Summary, replay, request::storable, stale::is_stale};

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

/// Does what `request` asks. The row and the sender's right to it are read first, without
/// the lock: a refused sender is answered at once and never holds or waits for it. Then the
/// lock, the row as it is now and (for a signed request) the record that takes it once go in
/// one flight; a request that waits past the lock's wait is refused as busy, and audited.
pub(crate) async fn update(
    state: &State,
    request: &Request,
    request_id: &str,
) -> Result<Summary, Error> {
    let change = &request.change;
    let client = state.db.client().await?;
    // Only until the schema is found current: then no query.
    state.schema.check(&client).await??;
    let group = state.security_group_id.as_str();
    // The lock's statement is prepared in the same flight as the first read, so that the
    // flight below sends the lock before the row's read (see `store::prepare_owner_lock`).
    let (rule, prepared) = tokio::join!(
        store::find_rule(&client, group, &change.owner),
        store::prepare_owner_lock(&client)
    );
    prepared?;
    admit(&client, request, request_id, group, rule?).await?;

    // One request per owner and group at a time, held from reading the row until the result
    // is recorded.
    let take_once = async {
        match &request.signed {
            Some(signed) => replay::take_once(&client, group, &change.owner, signed)
                .await
                .map(Some),
            None => Ok(None),
        }
    };
    let (locked, rule, taken) = tokio::join!(
        store::try_lock_owner(&client, group, &change.owner),
        store::find_rule(&client, group, &change.owner),
        take_once
    );
    let (rule, held) = match (locked?, &taken) {
        (true, _) => (rule, true),
        // A replay is refused without waiting for the lock: it changes nothing.
        (false, Ok(Some(false))) => (rule, false),
        (false, _) => {
            if !store::lock_owner(&client, group, &change.owner, state.lock_wait).await? {
                return Err(busy(&client, request, request_id, group).await);
            }
            (store::find_rule(&client, group, &change.owner).await, true)
        }
    };
    let result = locked_part(state, &client, request, request_id, rule, taken).await;
    if held {
        if let Err(e) = store::unlock_owner(&client, group, &change.owner).await {
            tracing::warn!(error = %e, "could not release the advisory lock; dropping the connection");
            drop(deadpool::managed::Object::take(client));
        }
    }
    result
}

/// The rest of [`update`], once the lock is held (a replay, refused here, needs none): the
/// row and the signed request's record as the one flight read them.
async fn locked_part(
    state: &State,
    client: &deadpool_postgres::ClientWrapper,
    request: &Request,
    request_id: &str,
    rule: Result<Option<ManagedRule>, tokio_postgres::Error>,
    taken: Result<Option<bool>, tokio_postgres::Error>,
) -> Result<Summary, Error> {
    let (rule, taken) = (rule?, taken?);
    let group = state.security_group_id.as_str();
    // The row may have changed since it was first read: its principal, or the row itself.
    let rule = admit(client, request, request_id, group, rule).await?;
    if taken == Some(false) {
        let change = &request.change;
        let shown = storable(&change.ip, 100);
        let old = rule.cidr.map(|c| c.to_string());
        let entry = AuditEntry {
            owner: &change.owner,
            security_group_id: group,
            old_cidr: old.as_deref(),
            new_cidr: Some(&shown),
            outcome: AuditOutcome::RefusedReplay,
            detail: Some("the same signed request was already taken"),
            request_id,
            via: Some(request.sender.via()),
            caller: request.sender.caller(),
        };
        store::audit(client, &entry).await?;
        return Err(Error::Replayed(change.owner.clone()));
    }
    update_locked(state, client, request, request_id, rule).await
}

/// The owner's row, when the request's sender may move it; otherwise the refusal, audited:
/// an owner without a row, a sender the row does not accept.
async fn admit(
    client: &deadpool_postgres::ClientWrapper,
    request: &Request,
    request_id: &str,
    group: &str,
    rule: Option<ManagedRule>,
) -> Result<ManagedRule, Error> {
    let (change, sender) = (&request.change, &request.sender);
    let shown = storable(&change.ip, 100);
    let old = rule.as_ref().and_then(|r| r.cidr).map(|c| c.to_string());
    let mut entry = AuditEntry {
        owner: &change.owner,
        security_group_id: group,
        old_cidr: old.as_deref(),
        new_cidr: Some(&change.ip),
        outcome: AuditOutcome::RefusedUnknownOwner,
        detail: None,
        request_id,
        via: Some(sender.via()),
        caller: sender.caller(),
    };
    let Some(rule) = rule else {
        store::audit(client, &entry).await?;
        return Err(Error::UnknownOwner {
            owner: change.owner.clone(),
            security_group_id: group.to_owned(),
        });
    };
    if let Err((e, detail)) = authorize(&rule, sender) {
        entry.new_cidr = Some(&shown);
        entry.outcome = AuditOutcome::RefusedUnauthorized;
        entry.detail = Some(&detail);
        store::audit(client, &entry).await?;
        return Err(e);
    }
    Ok(rule)
}

/// Audits a request that waited past the lock's wait, and the error it is answered with.
async fn busy(
    client: &deadpool_postgres::ClientWrapper,
    request: &Request,
    request_id: &str,
    group: &str,
) -> Error {
    let change = &request.change;
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
    match store::audit(client, &entry).await {
        Ok(()) => Error::Busy(change.owner.clone()),
        Err(e) => e.into(),
    }
}

/// Runs `work` in one transaction: committed when it succeeds, rolled back when it fails.
async fn in_transaction(
    client: &deadpool_postgres::ClientWrapper,
    work: impl AsyncFnOnce() -> Result<(), tokio_postgres::Error>,
) -> Result<(), tokio_postgres::Error> {
    // `BEGIN` goes out with the work's statements (each caller joins its own): `join!` polls
    // both at once, and tokio-postgres sends each request when first polled, in that order.
    // A failed `BEGIN` fails the statements behind it too, so its error is the one returned.
    let (begun, done) = tokio::join!(client.batch_execute("BEGIN"), work());
    begun?;
    match done {
        Ok(()) => client.batch_execute("COMMIT").await,
        Err(e) => {
            // A broken connection rolls back by itself; the error that matters is `e`.
            let _ = client.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}

async fn update_locked(
    state: &State,
    client: &deadpool_postgres::ClientWrapper,
    request: &Request,
    request_id: &str,
    mut rule: ManagedRule,
) -> Result<Summary, Error> {
    let (change, sender) = (&request.change, &request.sender);
    let group = state.security_group_id.as_str();
    let old = rule.cidr;
    let old_text = old.map(|c| c.to_string());
    let mut entry = AuditEntry {
        owner: &change.owner,
        security_group_id: group,
        old_cidr: old_text.as_deref(),
        new_cidr: Some(&change.ip),
        outcome: AuditOutcome::Applied,
        detail: None,
        request_id,
        via: Some(sender.via()),
        caller: sender.caller(),
    };
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

    // A rule in a group no longer managed is placed again below, even at the same address.
    let managed = state.groups.manages(rule.group());
    if old == Some(cidr.into()) && rule.status == RuleStatus::Applied && managed {
        // The row says applied, but a rule deleted or edited by hand since would leave the
        // developer locked out until a remediate run: look before answering "unchanged".
        if let Some(id) = rule.aws_rule_id.as_deref() {
            let rules = state
                .ec2
                .ingress_rules(rule.group())
                .await
                .map_err(Error::Apply)?;
            if rules
                .iter()
                .any(|r| r.id == id && r.matches(&rule, cidr.into()))
            {
                entry.outcome = AuditOutcome::Unchanged;
                in_transaction(client, async || {
                    tokio::try_join!(
                        store::note_request(client, rule.id, change.sent_at),
                        store::audit(client, &entry)
                    )
                    .map(drop)
                })
                .await?;
                return Ok(Summary::of(&rule, AuditOutcome::Unchanged, cidr_text, old));
            }
            tracing::warn!(owner = %rule.owner, rule_id = id,
                "the applied rule is gone from AWS or no longer matches its row; applying it again");
        }
    }

    // Where the rule goes: a live rule stays in its group (moved in place, without looking for
    // room); a rule to be created goes to a managed group with room. With none, the request is
    // refused before anything is recorded: the row promises nothing no one can keep.
    let target = match capacity::kept_in(&rule, cidr, &state.groups) {
        Some(g) => g.to_owned(),
        None => {
            let family = Family::of_ipv6(cidr.is_ipv6());
            let found = state
                .groups
                .with_room(&state.ec2, family, Some(rule.group()), &[])
                .await;
            match found {
                Ok(Ok(g)) => g,
                // The groups could not be read: try the rule's own group if it is still
                // managed (else the first), whose failure is recorded and answered as any
                // failure to apply is.
                Err(e) => {
                    tracing::warn!(error = %e, "could not count the managed groups' rules");
                    if managed {
                        rule.group().to_owned()
                    } else {
                        state.groups.ids[0].clone()
                    }
                }
                Ok(Err(no_room)) => {
                    let detail = no_room.to_string();
                    entry.outcome = AuditOutcome::RefusedNoRoom;
                    entry.detail = Some(&detail);
                    store::audit(client, &entry).await?;
                    return Err(Error::NoRoom(no_room));
                }
            }
        }
    };

    // Both in one round trip: the check reads only the other rows of the group.
    let shared = async {
        match rule.aws_rule_id.as_deref() {
            Some(id) => store::rule_is_shared(client, rule.id, rule.group(), id).await,
            None => Ok(false),
        }
    };
    let (row_id, sent_at) = (rule.id, change.sent_at);
    let ((), shared) = tokio::try_join!(
        store::mark_pending(client, row_id, cidr, sent_at, &target),
        shared
    )?;
    if shared {
        // Someone else behind the same address keeps that rule; this owner gets its own.
        rule.aws_rule_id = None;
    }
    // The rule's group was removed from the managed ones: the rule is created in a managed
    // group, and the old one revoked after, if the function may still (its IAM grant went
    // with the group, so in AWS it usually may not: drift-check reports the row until then).
    let left_behind = if managed {
        None
    } else {
        rule.aws_rule_id
            .take()
            .map(|id| (rule.group().to_owned(), id))
    };
    let placed =
        capacity::apply_with_room(&state.ec2, &state.groups, &rule, cidr, target, async |g| {
            store::mark_pending(client, row_id, cidr, sent_at, g).await
        })
        .await;
    let failure = match placed {
        Ok(Placed::Applied { rule_id, group }) => {
            // The change and its audit row commit together, or neither does (then the row
            // stays pending, and drift-check converges it).
            entry.outcome = AuditOutcome::Applied;
            in_transaction(client, async || {
                tokio::try_join!(
                    store::mark_applied(client, rule.id, cidr.into(), &rule_id, true),
                    store::audit(client, &entry)
                )
                .map(drop)
            })
            .await?;
            rule.aws_rule_id = Some(rule_id);
            rule.placed_group_id = Some(group);
            if let Some((old_group, old_id)) = left_behind {
                if let Err(e) = state.ec2.revoke(&old_group, &old_id).await {
                    tracing::warn!(group = %old_group, rule_id = %old_id, error = %e,
                        "could not revoke the rule left in a group no longer managed; \
                         the operator removes it (docs/operating.md)");
                }
            }
            return Ok(Summary::of(&rule, AuditOutcome::Applied, cidr_text, old));
        }
        Err(capacity::PlaceFailed::Db(e)) => return Err(e.into()),
        // Another request took the last slot between the count and the call: the row says
        // failed with the reason, and drift-check creates the rule once a slot frees.
        Ok(Placed::NoRoom(no_room)) => (AuditOutcome::RefusedNoRoom, Error::NoRoom(no_room)),
        Err(capacity::PlaceFailed::Aws(e)) => (AuditOutcome::Failed, Error::Apply(e)),
    };
    let (outcome, error) = failure;
    let detail = match &error {
        Error::Apply(e) => e.to_string(),
        other => other.to_string(),
    };
    entry.outcome = outcome;
    entry.detail = Some(&detail);
    in_transaction(client, async || {
        tokio::try_join!(
            store::mark_failed(client, rule.id, cidr.into(), &detail),
            store::audit(client, &entry)
        )
        .map(drop)
    })
    .await?;
    Err(error)
}
