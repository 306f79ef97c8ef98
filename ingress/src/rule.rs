//! A managed ingress rule: one row of `managed_ingress_rules`, the desired state of one
//! developer's access to one security group, and the status of applying it to AWS.

use std::{fmt, str::FromStr};

use serde::Serialize;

use crate::{ip::Cidr, principal::PrincipalPattern};

/// Where a row stands with AWS (`managed_ingress_rules.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleStatus {
    /// The desired source is recorded; AWS may not have it yet.
    Pending,
    /// AWS has the rule as the row wants it.
    Applied,
    /// The last attempt to apply it failed (`last_error` says why).
    Failed,
    /// Past its lifetime: drift-check revoked it; the developer's next request opens it again.
    Expired,
}

impl RuleStatus {
    /// Every status, in the order of the SQL CHECK list.
    pub const ALL: [Self; 4] = [Self::Pending, Self::Applied, Self::Failed, Self::Expired];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Applied => "applied",
            Self::Failed => "failed",
            Self::Expired => "expired",
        }
    }
}

impl fmt::Display for RuleStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RuleStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("unknown rule status {s:?}"))
    }
}

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
    /// The desired source (one host, by the column's CHECK), if one was ever set.
    pub cidr: Option<Cidr>,
    pub allow_private: bool,
    /// Who may move the rule with a request AWS authenticated; `None`: nobody.
    pub principal: Option<PrincipalPattern>,
    /// Whether a request with no proven sender (an EventBridge event, a bare direct
    /// invocation) may move the rule.
    pub allow_unverified: bool,
    pub aws_rule_id: Option<String>,
    /// The managed group that holds (or was last chosen to hold) the rule in AWS; `None`:
    /// `security_group_id` (rows from before rules were spread over groups, or never placed).
    pub placed_group_id: Option<String>,
    pub status: RuleStatus,
    /// When the newest request this row has taken was sent.
    pub last_request_at: Option<std::time::SystemTime>,
    /// When the access lapses unless a request renews it; `None`: never applied yet.
    pub expires_at: Option<std::time::SystemTime>,
}

impl ManagedRule {
    /// Whether the rule's lifetime has run out at `now` (an expired row's already has).
    pub fn has_lapsed(&self, now: std::time::SystemTime) -> bool {
        self.status != RuleStatus::Expired && self.expires_at.is_some_and(|e| e <= now)
    }
}

impl ManagedRule {
    /// The group whose rule `aws_rule_id` names: where the rule lives in AWS.
    pub fn group(&self) -> &str {
        self.placed_group_id
            .as_deref()
            .unwrap_or(&self.security_group_id)
    }

    /// The rule's description in AWS: the row's own, or one naming the owner.
    pub fn aws_description(&self) -> String {
        if self.description.is_empty() {
            format!("{} (managed by sg-ip-update)", self.owner)
        } else {
            self.description.clone()
        }
    }

    /// Reads a row selected with [`crate::store`]'s column list.
    pub(crate) fn from_row(row: &tokio_postgres::Row) -> Result<Self, tokio_postgres::Error> {
        let status: String = row.try_get("status")?;
        Ok(Self {
            id: row.try_get("id")?,
            security_group_id: row.try_get("security_group_id")?,
            owner: row.try_get("owner")?,
            description: row.try_get("description")?,
            ip_protocol: row.try_get("ip_protocol")?,
            from_port: row.try_get("from_port")?,
            to_port: row.try_get("to_port")?,
            cidr: row
                .try_get::<_, Option<String>>("cidr")?
                .and_then(|c| Cidr::parse(&c)),
            allow_private: row.try_get("allow_private")?,
            // The column's CHECK admits exactly what the parser admits; anything else would
            // name nobody.
            principal: row
                .try_get::<_, Option<String>>("principal")?
                .and_then(|p| p.parse().ok()),
            allow_unverified: row.try_get("allow_unverified")?,
            aws_rule_id: row.try_get("aws_rule_id")?,
            placed_group_id: row.try_get("placed_group_id")?,
            // The column's CHECK admits exactly RuleStatus::ALL (tests/tests/schema.rs).
            status: status.parse().unwrap_or(RuleStatus::Failed),
            last_request_at: row.try_get("last_request_at")?,
            expires_at: row.try_get("expires_at")?,
        })
    }
}
