//! The append-only audit of every request (`ip_update_audit`): what came of it, how it came
//! and who sent it.

use std::fmt;

use deadpool_postgres::ClientWrapper;
use serde::Serialize;

/// What came of one request (`ip_update_audit.outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditOutcome {
    /// AWS now has the new address.
    Applied,
    /// The address was already applied; AWS was not called.
    Unchanged,
    /// Older than a request the row already took; nothing changed.
    Stale,
    /// Applying failed; the row says `failed` with the cause.
    Failed,
    /// No managed rule for the owner in the group.
    RefusedUnknownOwner,
    /// The address is not one acceptable host.
    RefusedInvalidIp,
    /// The request itself is malformed (its shape, owner or description).
    RefusedInvalidRequest,
    /// The sender may not move this owner's rule: AWS proved another identity, or none.
    RefusedUnauthorized,
    /// Another request for the same owner held the rule past the wait; nothing changed.
    Busy,
    /// Past its lifetime, drift-check revoked the rule.
    Expired,
    /// The same signed request again (a replay within its signature's lifetime); nothing
    /// changed.
    RefusedReplay,
    /// Every managed group is at the rules quota: nothing changed, the row not marked.
    RefusedNoRoom,
}

impl AuditOutcome {
    /// Every outcome, in the order of the SQL CHECK list.
    pub const ALL: [Self; 12] = [
        Self::Applied,
        Self::Unchanged,
        Self::Stale,
        Self::Failed,
        Self::RefusedUnknownOwner,
        Self::RefusedInvalidIp,
        Self::RefusedInvalidRequest,
        Self::RefusedUnauthorized,
        Self::Busy,
        Self::Expired,
        Self::RefusedReplay,
        Self::RefusedNoRoom,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Unchanged => "unchanged",
            Self::Stale => "stale",
            Self::Failed => "failed",
            Self::RefusedUnknownOwner => "refused_unknown_owner",
            Self::RefusedInvalidIp => "refused_invalid_ip",
            Self::RefusedInvalidRequest => "refused_invalid_request",
            Self::RefusedUnauthorized => "refused_unauthorized",
            Self::Busy => "busy",
            Self::Expired => "expired",
            Self::RefusedReplay => "refused_replay",
            Self::RefusedNoRoom => "refused_no_room",
        }
    }
}

impl fmt::Display for AuditOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a request reached sg-ip-update (`ip_update_audit.via`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// The Function URL with AuthType AWS_IAM: AWS checked the signature and names the caller.
    FunctionUrl,
    /// An EventBridge event: the sender is not known to the function.
    Eventbridge,
    /// A bare `{"owner", "ip"}` direct invocation: the sender is not known to the function.
    Direct,
}

impl Via {
    /// Every way in, in the order of the SQL CHECK list.
    pub const ALL: [Self; 3] = [Self::FunctionUrl, Self::Eventbridge, Self::Direct];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::FunctionUrl => "function_url",
            Self::Eventbridge => "eventbridge",
            Self::Direct => "direct",
        }
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The identity AWS authenticated for a Function URL request
/// (`requestContext.authorizer.iam`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Caller {
    /// `userArn`: what a row's principal is matched against.
    pub arn: String,
    /// `accountId`.
    pub account_id: Option<String>,
    /// `callerId`: the IAM unique id (`AIDA…`, or `AROA…:session`).
    pub caller_id: Option<String>,
    /// `requestContext.http.sourceIp`: the address AWS received the signed request from.
    pub source_ip: Option<String>,
}

/// One line of the append-only audit log.
pub struct AuditEntry<'a> {
    pub owner: &'a str,
    pub security_group_id: &'a str,
    pub old_cidr: Option<&'a str>,
    pub new_cidr: Option<&'a str>,
    pub outcome: AuditOutcome,
    pub detail: Option<&'a str>,
    pub request_id: &'a str,
    /// How the request came; `None` for drift-check's own records (a rule that lapsed).
    pub via: Option<Via>,
    /// Who AWS says sent it; `None` when the way in carries no proven identity.
    pub caller: Option<&'a Caller>,
}

/// Appends one line to `ip_update_audit`.
pub async fn audit(
    client: &ClientWrapper,
    e: &AuditEntry<'_>,
) -> Result<(), tokio_postgres::Error> {
    let stmt = client
        .prepare_cached(
            "INSERT INTO ip_update_audit (owner, security_group_id, old_cidr, new_cidr, outcome, \
             detail, request_id, via, caller_arn, caller_account_id, caller_id, source_ip) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
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
                &e.outcome.as_str(),
                &e.detail,
                &e.request_id,
                &e.via.map(Via::as_str),
                &e.caller.map(|c| c.arn.as_str()),
                &e.caller.and_then(|c| c.account_id.as_deref()),
                &e.caller.and_then(|c| c.caller_id.as_deref()),
                &e.caller.and_then(|c| c.source_ip.as_deref()),
            ],
        )
        .await
        .map(drop)
}
