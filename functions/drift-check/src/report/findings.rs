//! The vocabulary of findings: the kinds of difference drift-check knows, and what a run did
//! about each (`drift_findings.kind` and `.action`).

use serde::Serialize;
use serde_json::Value;

use crate::report::display_as_str;

/// The kinds of difference drift-check knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A desired rule is not in AWS.
    Missing,
    /// The rule is in AWS with another source, protocol or ports.
    Changed,
    /// A rule in a managed group that no row describes, whatever its source (a CIDR, a prefix
    /// list, another group).
    Unexpected,
    /// A rule no row describes that `drift_allowed_rules` names: expected, kept, not drift.
    Allowed,
    /// Confirmed in Cognito, no row: a lost sign-up.
    MissingUser,
    /// A row whose sub is gone from the pool. Only ever reported.
    OrphanUser,
    /// Confirmed in Cognito, no row, and no row can be written (a handle the table refuses, an
    /// email that is not verified, a taken handle, any other per-user failure): reported with
    /// the reason, and the pass goes on past it.
    UnwritableUser,
    /// A developer's rule past its lifetime: revoked in remediate mode, the row kept `expired`.
    Expired,
    /// A user's email, name or handle in Cognito differs from the row: the row follows in
    /// remediate mode, unless the new email is unverified or the handle invalid or taken.
    ProfileChanged,
    /// A managed group's inbound rules (either address family) at 80 % or more of the quota
    /// (`RULES_PER_SECURITY_GROUP`): only reported; the capacity alarm watches the groups'
    /// use as a whole.
    GroupCapacity,
    /// A row whose rule is placed in a group no longer managed (removed from
    /// `AdditionalDatabaseSecurityGroupIds` before it was drained): no run visits that group,
    /// so the rule neither lapses nor is revoked there. Only reported; the developer's next
    /// update places it again in a managed group.
    PlacedOutside,
}

impl Kind {
    /// Every kind, in the order of the SQL CHECK list.
    pub const ALL: [Kind; 11] = [
        Kind::Missing,
        Kind::Changed,
        Kind::Unexpected,
        Kind::Allowed,
        Kind::MissingUser,
        Kind::OrphanUser,
        Kind::UnwritableUser,
        Kind::Expired,
        Kind::ProfileChanged,
        Kind::GroupCapacity,
        Kind::PlacedOutside,
    ];

    /// Whether this kind is a difference to alarm on: `allowed` is expected, and `expired` is
    /// access lapsing as designed, and `profile_changed` users editing their profiles (both
    /// counted, and shown on the dashboard, by kind), and `group_capacity` a group's use (its
    /// own metric and alarm).
    pub fn is_drift(self) -> bool {
        !matches!(
            self,
            Kind::Allowed | Kind::Expired | Kind::ProfileChanged | Kind::GroupCapacity
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Changed => "changed",
            Self::Unexpected => "unexpected",
            Self::Allowed => "allowed",
            Self::MissingUser => "missing_user",
            Self::OrphanUser => "orphan_user",
            Self::UnwritableUser => "unwritable_user",
            Self::Expired => "expired",
            Self::ProfileChanged => "profile_changed",
            Self::GroupCapacity => "group_capacity",
            Self::PlacedOutside => "placed_outside",
        }
    }
}

display_as_str!(Kind);

/// Why a fix was not attempted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// sg-ip-update held the owner's lock past the wait.
    Busy,
    /// The row moved since it was compared; the next run compares again.
    RowChanged,
    /// The row has no desired source yet.
    NoDesiredSource,
    /// A row wants the rule now (a fix earlier in the run, or sg-ip-update meanwhile).
    WantedNow,
    /// Only an allowlist entry written before entries pinned protocol and ports names the
    /// rule: it is drift, but the operator meant to keep it, so it is left for them to pin.
    UnpinnedAllowlistEntry,
    /// The kill switch was set while this run was remediating: no change after it.
    Paused,
    /// The run would have changed more of the group's developer rules than
    /// `DRIFT_MAX_CHANGE_SHARE` allows (a restored old snapshot, a mistaken mass DELETE): none
    /// of them changed, until an operator's release (`drift_releases`).
    HeldBack,
}

/// What was done about one finding (`drift_findings.action`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Report mode: nothing to do.
    None,
    /// Remediate mode, but the deadline came first.
    OutOfTime,
    /// The lost sign-up was inserted by someone else since the page was read.
    InsertedMeanwhile,
    Created,
    Modified,
    Revoked,
    Adopted,
    Backfilled,
    /// Orphans: user data is never deleted automatically.
    Reported,
    /// An allowlisted rule, left as it is.
    Kept,
    Skipped(Skip),
    /// The stored source failed validation and was not applied.
    Refused(String),
    /// The fix was attempted and failed, with the cause.
    Failed(String),
}

/// Actions as counted in the summary and `drift_runs`: without their detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionClass {
    None,
    Created,
    Modified,
    Revoked,
    Adopted,
    Backfilled,
    Reported,
    Kept,
    Skipped,
    Refused,
    Failed,
}

impl Action {
    pub fn class(&self) -> ActionClass {
        match self {
            Self::None | Self::OutOfTime | Self::InsertedMeanwhile => ActionClass::None,
            Self::Created => ActionClass::Created,
            Self::Modified => ActionClass::Modified,
            Self::Revoked => ActionClass::Revoked,
            Self::Adopted => ActionClass::Adopted,
            Self::Backfilled => ActionClass::Backfilled,
            Self::Reported => ActionClass::Reported,
            Self::Kept => ActionClass::Kept,
            Self::Skipped(_) => ActionClass::Skipped,
            Self::Refused(_) => ActionClass::Refused,
            Self::Failed(_) => ActionClass::Failed,
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("none"),
            Self::OutOfTime => f.write_str("none: out of time"),
            Self::InsertedMeanwhile => f.write_str("none: inserted meanwhile"),
            Self::Created => f.write_str("created"),
            Self::Modified => f.write_str("modified"),
            Self::Revoked => f.write_str("revoked"),
            Self::Adopted => f.write_str("adopted"),
            Self::Backfilled => f.write_str("backfilled"),
            Self::Reported => f.write_str("reported"),
            Self::Kept => f.write_str("kept"),
            Self::Skipped(why) => f.write_str(match why {
                Skip::Busy => "skipped: busy with another request",
                Skip::RowChanged => "skipped: the row changed meanwhile",
                Skip::NoDesiredSource => "skipped: no desired source",
                Skip::WantedNow => "skipped: a row wants it now",
                Skip::UnpinnedAllowlistEntry => {
                    "skipped: only an allowlist entry that pins no protocol and ports names it"
                }
                Skip::Paused => "skipped: the kill switch was set during the run",
                Skip::HeldBack => {
                    "skipped: the run would have changed too many of the group's rules"
                }
            }),
            Self::Refused(why) => write!(f, "refused: {why}"),
            Self::Failed(why) => write!(f, "failed: {why}"),
        }
    }
}

impl Serialize for Action {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One difference, and what was done about it.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub kind: Kind,
    pub resource: String,
    pub desired: Option<Value>,
    pub actual: Option<Value>,
    pub action: Action,
}
