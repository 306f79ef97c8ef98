//! The managed rules' store: reading rows, recording each step of applying one (pending,
//! applied, failed), the per-owner lock sg-ip-update and drift-check share, and the
//! append-only audit of every request.

use std::time::Duration;

use deadpool_postgres::ClientWrapper;

use crate::{
    ip::{Cidr, HostCidr},
    rule::{ManagedRule, RuleStatus},
};

mod audit;
pub use audit::{AuditEntry, AuditOutcome, Caller, Via, audit};

const RULE_COLUMNS: &str = "id, security_group_id, owner, description, ip_protocol, from_port, \
    to_port, cidr::text AS cidr, allow_private, principal, allow_unverified, aws_rule_id, \
    placed_group_id, status, last_request_at, expires_at";

/// The group that holds a row's rule in AWS ([`ManagedRule::group`]).
pub const PLACED_IN: &str = "coalesce(placed_group_id, security_group_id)";

/// A rule's new end of life: now plus its lifetime, the row's own or the default.
const RENEWED: &str = "now() + coalesce(lifetime, \
    (SELECT rule_lifetime FROM drift_settings), interval '12 hours')";

/// When a rule lapses: its `expires_at`; for a row without one (open before lifetimes, set
/// by hand, or never applied), one lifetime after its last request, or after its last change
/// when it never took one (never later than a lifetime from now: a request's time may be a
/// little ahead). drift-check revokes a rule past it.
pub const LAPSES_AT: &str = "coalesce(expires_at, \
    least(coalesce(last_request_at, updated_at), now()) + \
    coalesce(lifetime, (SELECT rule_lifetime FROM drift_settings), interval '12 hours'))";

/// The owner's rule in a group, if the owner has one.
pub async fn find_rule(
    client: &ClientWrapper,
    security_group_id: &str,
    owner: &str,
) -> Result<Option<ManagedRule>, tokio_postgres::Error> {
    let sql = format!(
        "SELECT {RULE_COLUMNS} FROM managed_ingress_rules WHERE security_group_id = $1 AND owner = $2"
    );
    let stmt = client.prepare_cached(&sql).await?;
    client
        .query_opt(&stmt, &[&security_group_id, &owner])
        .await?
        .as_ref()
        .map(ManagedRule::from_row)
        .transpose()
}

/// The managed rules whose rule `group` holds (or is to hold), for drift-check.
pub async fn rules_in_group(
    client: &ClientWrapper,
    group: &str,
) -> Result<Vec<ManagedRule>, tokio_postgres::Error> {
    let sql = format!(
        "SELECT {RULE_COLUMNS} FROM managed_ingress_rules WHERE {PLACED_IN} = $1 ORDER BY id"
    );
    let stmt = client.prepare_cached(&sql).await?;
    let rows = client.query(&stmt, &[&group]).await?;
    rows.iter().map(ManagedRule::from_row).collect()
}

/// The rows whose rule is placed in none of `managed` (a group removed from the managed ones
/// before it was drained), for drift-check to report.
pub async fn rules_placed_outside(
    client: &ClientWrapper,
    managed: &[String],
) -> Result<Vec<ManagedRule>, tokio_postgres::Error> {
    let sql = format!(
        "SELECT {RULE_COLUMNS} FROM managed_ingress_rules \
         WHERE {PLACED_IN} <> ALL($1::text[]) ORDER BY id"
    );
    let stmt = client.prepare_cached(&sql).await?;
    let rows = client.query(&stmt, &[&managed]).await?;
    rows.iter().map(ManagedRule::from_row).collect()
}

/// The groups that have managed rules.
pub async fn managed_groups(client: &ClientWrapper) -> Result<Vec<String>, tokio_postgres::Error> {
    let stmt = client
        .prepare_cached(
            "SELECT security_group_id FROM managed_ingress_rules \
             UNION SELECT placed_group_id FROM managed_ingress_rules \
             WHERE placed_group_id IS NOT NULL ORDER BY 1",
        )
        .await?;
    Ok(client
        .query(&stmt, &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// Serialises every change to one owner's rule in one group, across execution environments
/// and across sg-ip-update and drift-check. A session lock, not a transaction lock, so state
/// written while holding it is committed before AWS is called. Polls with
/// `pg_try_advisory_lock` rather than waiting inside one statement, which the statement
/// timeout would cut while the holder is busy with EC2; returns false when `wait` ran out.
pub async fn lock_owner(
    client: &ClientWrapper,
    group: &str,
    owner: &str,
    wait: Duration,
) -> Result<bool, tokio_postgres::Error> {
    let key = lock_key(group, owner);
    let stmt = client.prepare_cached(TRY_LOCK).await?;
    let deadline = std::time::Instant::now() + wait;
    loop {
        if client.query_one(&stmt, &[&key]).await?.get::<_, bool>(0) {
            return Ok(true);
        }
        if std::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

const TRY_LOCK: &str = "SELECT pg_try_advisory_lock(hashtextextended($1, 0))";

/// Prepares [`try_lock_owner`]'s statement on this connection (once: it is cached), so that a
/// later flight that starts with the lock sends it first. A statement still to be prepared
/// waits a round trip for its Parse, and the flight's next statement (the row's read) would
/// then run before the lock is taken, reading the row as it was before another request's
/// change.
pub async fn prepare_owner_lock(client: &ClientWrapper) -> Result<(), tokio_postgres::Error> {
    client.prepare_cached(TRY_LOCK).await.map(drop)
}

/// One try at [`lock_owner`]'s lock, without waiting: whether this session now holds it.
pub async fn try_lock_owner(
    client: &ClientWrapper,
    group: &str,
    owner: &str,
) -> Result<bool, tokio_postgres::Error> {
    let stmt = client.prepare_cached(TRY_LOCK).await?;
    Ok(client
        .query_one(&stmt, &[&lock_key(group, owner)])
        .await?
        .get(0))
}

/// Whether another row of the group points at this AWS rule: developers behind one address
/// share the rule AWS allows for it, and moving one of them must not move the others.
pub async fn rule_is_shared(
    client: &ClientWrapper,
    row_id: i64,
    group: &str,
    aws_rule_id: &str,
) -> Result<bool, tokio_postgres::Error> {
    let sql = format!(
        "SELECT EXISTS (SELECT 1 FROM managed_ingress_rules \
         WHERE {PLACED_IN} = $1 AND aws_rule_id = $2 AND id <> $3)"
    );
    let stmt = client.prepare_cached(&sql).await?;
    Ok(client
        .query_one(&stmt, &[&group, &aws_rule_id, &row_id])
        .await?
        .get(0))
}

/// Releases [`lock_owner`]. When this fails the connection may still hold the lock: the caller
/// must not return it to the pool.
pub async fn unlock_owner(
    client: &ClientWrapper,
    group: &str,
    owner: &str,
) -> Result<(), tokio_postgres::Error> {
    // Prepared once per connection: a bare string would cost a round trip to prepare it on
    // every release.
    let stmt = client
        .prepare_cached("SELECT pg_advisory_unlock(hashtextextended($1, 0))")
        .await?;
    client
        .execute(&stmt, &[&lock_key(group, owner)])
        .await
        .map(drop)
}

fn lock_key(group: &str, owner: &str) -> String {
    format!("managed-ingress/{group}/{owner}")
}

/// Records the new desired source, and the group that is to hold it, before AWS is touched,
/// so the table always says what should be, even when the call that follows fails or the
/// function dies (and drift-check, reading that group, never takes the new rule for a stray).
pub async fn mark_pending(
    client: &ClientWrapper,
    id: i64,
    cidr: HostCidr,
    sent_at: Option<std::time::SystemTime>,
    placed_in: &str,
) -> Result<(), tokio_postgres::Error> {
    let cidr = cidr.to_string();
    let stmt = client
        .prepare_cached(
            "UPDATE managed_ingress_rules SET cidr = $2::text::cidr, status = $4, \
             last_error = NULL, updated_at = now(), placed_group_id = $5, \
             last_request_at = GREATEST(last_request_at, COALESCE($3, now())) WHERE id = $1",
        )
        .await?;
    let status = RuleStatus::Pending.as_str();
    client
        .execute(&stmt, &[&id, &cidr, &sent_at, &status, &placed_in])
        .await
        .map(drop)
}

/// Records the group that is to hold a row's rule, before drift-check creates it there (see
/// [`mark_pending`]).
pub async fn mark_placed(
    client: &ClientWrapper,
    id: i64,
    placed_in: &str,
) -> Result<(), tokio_postgres::Error> {
    let stmt = client
        .prepare_cached("UPDATE managed_ingress_rules SET placed_group_id = $2 WHERE id = $1")
        .await?;
    client.execute(&stmt, &[&id, &placed_in]).await.map(drop)
}

/// Notes that a request sent at `sent_at` was taken without a change (the same address): it
/// confirms the rule, which renews its lifetime.
pub async fn note_request(
    client: &ClientWrapper,
    id: i64,
    sent_at: Option<std::time::SystemTime>,
) -> Result<(), tokio_postgres::Error> {
    let sql = format!(
        "UPDATE managed_ingress_rules \
         SET last_request_at = GREATEST(last_request_at, COALESCE($2, now())), \
         expires_at = {RENEWED} WHERE id = $1"
    );
    let stmt = client.prepare_cached(&sql).await?;
    client.execute(&stmt, &[&id, &sent_at]).await.map(drop)
}

/// Records that AWS now has the rule as the row wants it. Only when the desired source is
/// still `cidr`: a newer request may have moved it meanwhile. `renew`: a developer's request
/// applied it, which renews its lifetime; a repair (drift-check) keeps the lifetime it had,
/// and a row without one lapses one lifetime after its last request ([`LAPSES_AT`]): a repair
/// never lengthens access.
pub async fn mark_applied(
    client: &ClientWrapper,
    id: i64,
    cidr: Cidr,
    aws_rule_id: &str,
    renew: bool,
) -> Result<bool, tokio_postgres::Error> {
    let sql = format!(
        "UPDATE managed_ingress_rules SET status = $4, aws_rule_id = $3, \
         last_error = NULL, updated_at = now(), \
         expires_at = CASE WHEN $5 THEN {RENEWED} ELSE {LAPSES_AT} END \
         WHERE id = $1 AND cidr = $2::text::cidr"
    );
    let stmt = client.prepare_cached(&sql).await?;
    let (cidr, status) = (cidr.to_string(), RuleStatus::Applied.as_str());
    Ok(client
        .execute(&stmt, &[&id, &cidr, &aws_rule_id, &status, &renew])
        .await?
        == 1)
}

/// Records that the rule lapsed and AWS no longer has it: the row keeps its last address,
/// loses its AWS rule id, and says `expired`. Only while it is still past its lifetime
/// ([`LAPSES_AT`]): a request that renewed it meanwhile wins.
pub async fn mark_expired(client: &ClientWrapper, id: i64) -> Result<bool, tokio_postgres::Error> {
    let sql = format!(
        "UPDATE managed_ingress_rules SET status = $2, aws_rule_id = NULL, \
         last_error = NULL, updated_at = now() WHERE id = $1 AND {LAPSES_AT} <= now()"
    );
    let stmt = client.prepare_cached(&sql).await?;
    let status = RuleStatus::Expired.as_str();
    Ok(client.execute(&stmt, &[&id, &status]).await? == 1)
}

/// Records that applying failed, with the cause, for drift-check and people to see.
pub async fn mark_failed(
    client: &ClientWrapper,
    id: i64,
    cidr: Cidr,
    error: &str,
) -> Result<(), tokio_postgres::Error> {
    let stmt = client
        .prepare_cached(
            "UPDATE managed_ingress_rules SET status = $4, last_error = $3, updated_at = now() \
             WHERE id = $1 AND cidr = $2::text::cidr",
        )
        .await?;
    let (cidr, status) = (cidr.to_string(), RuleStatus::Failed.as_str());
    client
        .execute(&stmt, &[&id, &cidr, &error, &status])
        .await
        .map(drop)
}
