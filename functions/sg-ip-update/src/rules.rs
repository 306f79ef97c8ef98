//! Managed ingress rules: the rows that say what should be open, and the EC2 calls that make
//! AWS match a row. drift-check converges with these same calls.

use std::time::Duration;

use aws_sdk_ec2::{
    Client,
    error::{ProvideErrorMetadata, SdkError},
    types::{
        Filter, IpPermission, IpRange, Ipv6Range, SecurityGroupRuleRequest, SecurityGroupRuleUpdate,
    },
};
use deadpool_postgres::ClientWrapper;

use crate::ip::canonical_cidr;

/// A row of `managed_ingress_rules`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedRule {
    pub id: i64,
    pub security_group_id: String,
    pub owner: String,
    pub description: String,
    pub ip_protocol: String,
    pub from_port: i32,
    pub to_port: i32,
    /// The desired source, canonical (`a.b.c.d/32`), if one was ever set.
    pub cidr: Option<String>,
    pub allow_private: bool,
    pub aws_rule_id: Option<String>,
    pub status: String,
    /// When the newest request this row has taken was sent.
    pub last_request_at: Option<std::time::SystemTime>,
}

impl ManagedRule {
    /// The rule's description in AWS: the row's own, or one naming the owner.
    pub fn aws_description(&self) -> String {
        if self.description.is_empty() {
            format!("{} (managed by sg-ip-update)", self.owner)
        } else {
            self.description.clone()
        }
    }

    fn from_row(row: &tokio_postgres::Row) -> Self {
        Self {
            id: row.get("id"),
            security_group_id: row.get("security_group_id"),
            owner: row.get("owner"),
            description: row.get("description"),
            ip_protocol: row.get("ip_protocol"),
            from_port: row.get("from_port"),
            to_port: row.get("to_port"),
            cidr: row
                .get::<_, Option<String>>("cidr")
                .and_then(|c| canonical_cidr(&c)),
            allow_private: row.get("allow_private"),
            aws_rule_id: row.get("aws_rule_id"),
            status: row.get("status"),
            last_request_at: row.get("last_request_at"),
        }
    }
}

const RULE_COLUMNS: &str = "id, security_group_id, owner, description, ip_protocol, from_port, \
    to_port, cidr::text AS cidr, allow_private, aws_rule_id, status, last_request_at";

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
    Ok(client
        .query_opt(&stmt, &[&security_group_id, &owner])
        .await?
        .as_ref()
        .map(ManagedRule::from_row))
}

/// The managed rules of one group, for drift-check.
pub async fn rules_in_group(
    client: &ClientWrapper,
    group: &str,
) -> Result<Vec<ManagedRule>, tokio_postgres::Error> {
    let sql = format!(
        "SELECT {RULE_COLUMNS} FROM managed_ingress_rules WHERE security_group_id = $1 ORDER BY id"
    );
    let rows = client.query(&sql, &[&group]).await?;
    Ok(rows.iter().map(ManagedRule::from_row).collect())
}

/// The groups that have managed rules.
pub async fn managed_groups(client: &ClientWrapper) -> Result<Vec<String>, tokio_postgres::Error> {
    let sql = "SELECT DISTINCT security_group_id FROM managed_ingress_rules ORDER BY 1";
    Ok(client
        .query(sql, &[])
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
    wait: std::time::Duration,
) -> Result<bool, tokio_postgres::Error> {
    let key = lock_key(group, owner);
    let stmt = client
        .prepare_cached("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
        .await?;
    let deadline = std::time::Instant::now() + wait;
    loop {
        if client.query_one(&stmt, &[&key]).await?.get::<_, bool>(0) {
            return Ok(true);
        }
        if std::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

/// Whether another row of the group points at this AWS rule: developers behind one address
/// share the rule AWS allows for it, and moving one of them must not move the others.
pub async fn rule_is_shared(
    client: &ClientWrapper,
    row_id: i64,
    group: &str,
    aws_rule_id: &str,
) -> Result<bool, tokio_postgres::Error> {
    let stmt = client
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM managed_ingress_rules \
             WHERE security_group_id = $1 AND aws_rule_id = $2 AND id <> $3)",
        )
        .await?;
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
    client
        .execute(
            "SELECT pg_advisory_unlock(hashtextextended($1, 0))",
            &[&lock_key(group, owner)],
        )
        .await
        .map(drop)
}

fn lock_key(group: &str, owner: &str) -> String {
    format!("managed-ingress/{group}/{owner}")
}

/// Records the new desired source before AWS is touched, so the table always says what
/// should be, even when the call that follows fails or the function dies.
pub async fn mark_pending(
    client: &ClientWrapper,
    id: i64,
    cidr: &str,
    sent_at: Option<std::time::SystemTime>,
) -> Result<(), tokio_postgres::Error> {
    let stmt = client
        .prepare_cached(
            "UPDATE managed_ingress_rules SET cidr = $2::text::cidr, status = 'pending', \
             last_error = NULL, updated_at = now(), \
             last_request_at = GREATEST(last_request_at, COALESCE($3, now())) WHERE id = $1",
        )
        .await?;
    client
        .execute(&stmt, &[&id, &cidr, &sent_at])
        .await
        .map(drop)
}

/// Notes that a request sent at `sent_at` was taken without a change (the same address).
pub async fn note_request(
    client: &ClientWrapper,
    id: i64,
    sent_at: Option<std::time::SystemTime>,
) -> Result<(), tokio_postgres::Error> {
    let stmt = client
        .prepare_cached(
            "UPDATE managed_ingress_rules \
             SET last_request_at = GREATEST(last_request_at, COALESCE($2, now())) WHERE id = $1",
        )
        .await?;
    client.execute(&stmt, &[&id, &sent_at]).await.map(drop)
}

/// Records that AWS now has the rule as the row wants it. Only when the desired source is
/// still `cidr`: a newer request may have moved it meanwhile.
pub async fn mark_applied(
    client: &ClientWrapper,
    id: i64,
    cidr: &str,
    aws_rule_id: &str,
) -> Result<bool, tokio_postgres::Error> {
    let stmt = client
        .prepare_cached(
            "UPDATE managed_ingress_rules SET status = 'applied', aws_rule_id = $3, \
             last_error = NULL, updated_at = now() WHERE id = $1 AND cidr = $2::text::cidr",
        )
        .await?;
    Ok(client.execute(&stmt, &[&id, &cidr, &aws_rule_id]).await? == 1)
}

/// Records that applying failed, with the cause, for drift-check and people to see.
pub async fn mark_failed(
    client: &ClientWrapper,
    id: i64,
    cidr: &str,
    error: &str,
) -> Result<(), tokio_postgres::Error> {
    let stmt = client
        .prepare_cached(
            "UPDATE managed_ingress_rules SET status = 'failed', last_error = $3, updated_at = now() \
             WHERE id = $1 AND cidr = $2::text::cidr",
        )
        .await?;
    client.execute(&stmt, &[&id, &cidr, &error]).await.map(drop)
}

/// One line of the append-only audit log.
pub struct AuditEntry<'a> {
    pub owner: &'a str,
    pub security_group_id: &'a str,
    pub old_cidr: Option<&'a str>,
    pub new_cidr: Option<&'a str>,
    pub outcome: &'static str,
    pub detail: Option<&'a str>,
    pub request_id: &'a str,
}

pub async fn audit(
    client: &ClientWrapper,
    e: &AuditEntry<'_>,
) -> Result<(), tokio_postgres::Error> {
    let stmt = client
        .prepare_cached(
            "INSERT INTO ip_update_audit (owner, security_group_id, old_cidr, new_cidr, outcome, detail, request_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .await?;
    client
        .execute(
            &stmt,
            &[
                &e.owner,
                &e.security_group_id,
                &e.old_cidr,
                &e.new_cidr,
                &e.outcome,
                &e.detail,
                &e.request_id,
            ],
        )
        .await
        .map(drop)
}

/// An EC2 call that failed, with the AWS error code and whether a retry can help.
#[derive(Debug, thiserror::Error)]
#[error("EC2 {operation} failed: {message}")]
pub struct Ec2Error {
    pub operation: &'static str,
    pub code: Option<String>,
    pub message: String,
    pub retryable: bool,
}

fn ec2_error<E, R>(operation: &'static str, e: SdkError<E, R>) -> Ec2Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let code = e.code().map(str::to_owned);
    let retryable = match &e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(_) => matches!(
            code.as_deref(),
            Some(
                "RequestLimitExceeded"
                    | "Throttling"
                    | "ThrottlingException"
                    | "InternalError"
                    | "InternalFailure"
                    | "ServiceUnavailable"
                    | "Unavailable"
            )
        ),
        _ => false,
    };
    Ec2Error {
        operation,
        code,
        message: shared::aws::error_line(&e),
        retryable,
    }
}

/// An ingress rule as AWS reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsRule {
    pub id: String,
    pub ip_protocol: String,
    pub from_port: i32,
    pub to_port: i32,
    /// Canonical CIDR source; `None` for a rule whose source is a group or prefix list.
    pub cidr: Option<String>,
    pub description: Option<String>,
}

impl AwsRule {
    /// Whether this rule lets in exactly what `rule` wants with source `cidr`.
    pub fn matches(&self, rule: &ManagedRule, cidr: &str) -> bool {
        self.ip_protocol == rule.ip_protocol
            && self.from_port == rule.from_port
            && self.to_port == rule.to_port
            && self.cidr.as_deref() == Some(cidr)
    }
}

/// The EC2 calls on security groups.
#[derive(Clone)]
pub struct Ec2 {
    client: Client,
}

impl Ec2 {
    /// An EC2 client whose calls end within `timeout`.
    pub fn new(sdk: &aws_config::SdkConfig, timeout: Duration) -> Self {
        let config = aws_sdk_ec2::config::Builder::from(sdk)
            .timeout_config(shared::aws::operation_timeouts(timeout))
            .build();
        Self {
            client: Client::from_conf(config),
        }
    }

    /// Every ingress rule of a group (all pages).
    pub async fn ingress_rules(&self, security_group_id: &str) -> Result<Vec<AwsRule>, Ec2Error> {
        let mut pages = self
            .client
            .describe_security_group_rules()
            .filters(
                Filter::builder()
                    .name("group-id")
                    .values(security_group_id)
                    .build(),
            )
            .max_results(1000)
            .into_paginator()
            .send();
        let mut rules = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| ec2_error("DescribeSecurityGroupRules", e))?;
            for r in page.security_group_rules() {
                if r.is_egress() == Some(true) || r.group_id() != Some(security_group_id) {
                    continue;
                }
                let cidr = r.cidr_ipv4().or(r.cidr_ipv6()).and_then(canonical_cidr);
                rules.push(AwsRule {
                    id: r.security_group_rule_id().unwrap_or_default().to_owned(),
                    ip_protocol: r.ip_protocol().unwrap_or_default().to_owned(),
                    from_port: r.from_port().unwrap_or(-1),
                    to_port: r.to_port().unwrap_or(-1),
                    cidr,
                    description: r.description().map(str::to_owned),
                });
            }
        }
        Ok(rules)
    }

    /// Makes AWS allow exactly `cidr` for `rule`; returns the AWS rule id now holding it.
    /// Modifies the known rule in place; creates it when there is none or it was deleted
    /// behind our back; replaces it when the address family changes.
    pub async fn apply(&self, rule: &ManagedRule, cidr: &str) -> Result<String, Ec2Error> {
        let Some(id) = rule.aws_rule_id.as_deref() else {
            return self.authorize(rule, cidr).await;
        };
        let existing = self.ingress_rules(&rule.security_group_id).await?;
        let Some(current) = existing.iter().find(|r| r.id == id) else {
            tracing::warn!(rule_id = id, group = %rule.security_group_id, "managed rule is gone from AWS; creating it again");
            return self.authorize(rule, cidr).await;
        };
        let same_family = current
            .cidr
            .as_deref()
            .is_some_and(|c| c.contains(':') == cidr.contains(':'));
        if same_family {
            self.modify(rule, id, cidr).await?;
            return Ok(id.to_owned());
        }
        // A rule's source cannot change between IPv4 and IPv6: add the new one, then drop the
        // old, so access is never missing in between.
        let new_id = self.authorize(rule, cidr).await?;
        self.revoke(&rule.security_group_id, id).await?;
        Ok(new_id)
    }

    async fn modify(&self, rule: &ManagedRule, id: &str, cidr: &str) -> Result<(), Ec2Error> {
        let mut request = SecurityGroupRuleRequest::builder()
            .ip_protocol(&rule.ip_protocol)
            .from_port(rule.from_port)
            .to_port(rule.to_port)
            .description(rule.aws_description());
        request = if cidr.contains(':') {
            request.cidr_ipv6(cidr)
        } else {
            request.cidr_ipv4(cidr)
        };
        self.client
            .modify_security_group_rules()
            .group_id(&rule.security_group_id)
            .security_group_rules(
                SecurityGroupRuleUpdate::builder()
                    .security_group_rule_id(id)
                    .security_group_rule(request.build())
                    .build(),
            )
            .send()
            .await
            .map_err(|e| ec2_error("ModifySecurityGroupRules", e))?;
        Ok(())
    }

    async fn authorize(&self, rule: &ManagedRule, cidr: &str) -> Result<String, Ec2Error> {
        let mut permission = IpPermission::builder()
            .ip_protocol(&rule.ip_protocol)
            .from_port(rule.from_port)
            .to_port(rule.to_port);
        permission = if cidr.contains(':') {
            permission.ipv6_ranges(
                Ipv6Range::builder()
                    .cidr_ipv6(cidr)
                    .description(rule.aws_description())
                    .build(),
            )
        } else {
            permission.ip_ranges(
                IpRange::builder()
                    .cidr_ip(cidr)
                    .description(rule.aws_description())
                    .build(),
            )
        };
        let result = self
            .client
            .authorize_security_group_ingress()
            .group_id(&rule.security_group_id)
            .ip_permissions(permission.build())
            .send()
            .await;
        match result {
            Ok(out) => out
                .security_group_rules()
                .first()
                .and_then(|r| r.security_group_rule_id())
                .map(str::to_owned)
                .ok_or(Ec2Error {
                    operation: "AuthorizeSecurityGroupIngress",
                    code: None,
                    message: "the response named no security group rule".to_owned(),
                    retryable: true,
                }),
            Err(e) if e.code() == Some("InvalidPermission.Duplicate") => {
                // Already there (an earlier attempt whose answer was lost, or a hand-made rule
                // with the same source): adopt it.
                let existing = self.ingress_rules(&rule.security_group_id).await?;
                existing
                    .into_iter()
                    .find(|r| r.matches(rule, cidr))
                    .map(|r| r.id)
                    .ok_or_else(|| ec2_error("AuthorizeSecurityGroupIngress", e))
            }
            Err(e) => Err(ec2_error("AuthorizeSecurityGroupIngress", e)),
        }
    }

    /// Removes one ingress rule; a rule already gone counts as removed.
    pub async fn revoke(&self, security_group_id: &str, rule_id: &str) -> Result<(), Ec2Error> {
        match self
            .client
            .revoke_security_group_ingress()
            .group_id(security_group_id)
            .security_group_rule_ids(rule_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code().is_some_and(|c| c.ends_with(".NotFound")) => Ok(()),
            Err(e) => Err(ec2_error("RevokeSecurityGroupIngress", e)),
        }
    }
}
