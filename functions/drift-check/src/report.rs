//! A run's record: the runs and findings tables, one log line per finding, the summary the
//! function returns, and CloudWatch Embedded Metric Format counts an alarm can watch.

use std::{
    collections::BTreeMap,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use deadpool_postgres::ClientWrapper;
use serde::Serialize;
use serde_json::{Value, json};

use crate::{Config, request::Mode};

/// Writes a vocabulary enum as its SQL/JSON spelling.
macro_rules! display_as_str {
    ($t:ty) => {
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use display_as_str;

/// The kinds of difference drift-check knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A desired rule is not in AWS.
    Missing,
    /// The rule is in AWS with another source, protocol or ports.
    Changed,
    /// A CIDR rule in a managed group that no row describes.
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
}

impl Kind {
    /// Every kind, in the order of the SQL CHECK list.
    pub const ALL: [Kind; 9] = [
        Kind::Missing,
        Kind::Changed,
        Kind::Unexpected,
        Kind::Allowed,
        Kind::MissingUser,
        Kind::OrphanUser,
        Kind::UnwritableUser,
        Kind::Expired,
        Kind::ProfileChanged,
    ];

    /// Whether this kind is a difference to alarm on: `allowed` is expected, and `expired` is
    /// access lapsing as designed, and `profile_changed` users editing their profiles (both
    /// counted, and shown on the dashboard, by kind).
    pub fn is_drift(self) -> bool {
        !matches!(self, Kind::Allowed | Kind::Expired | Kind::ProfileChanged)
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
        }
    }
}

display_as_str!(Kind);

/// How a run ended (`drift_runs.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Started and not yet finished (or the function died mid-run).
    Running,
    /// Everything in scope was checked.
    Complete,
    /// Stopped before the deadline; what was checked is recorded.
    Partial,
    /// Could not check (AWS or the database failed); the error is recorded.
    Failed,
}

impl RunStatus {
    /// Every status, in the order of the SQL CHECK list.
    pub const ALL: [RunStatus; 4] = [
        RunStatus::Running,
        RunStatus::Complete,
        RunStatus::Partial,
        RunStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Complete => "complete",
            Self::Partial => "partial",
            Self::Failed => "failed",
        }
    }
}

display_as_str!(RunStatus);

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
    /// The run would have changed more of the group's rules than `DRIFT_MAX_CHANGE_SHARE`
    /// allows (a restored old snapshot, a mistaken mass DELETE): nothing in the group changed.
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

/// The bookkeeping of one run.
pub struct Run {
    pub id: String,
    pub requested: Mode,
    pub mode: Mode,
    pub trigger: String,
    pub scope: String,
    pub counts: BTreeMap<Kind, u64>,
    pub actions: BTreeMap<ActionClass, u64>,
    pub first: Vec<Finding>,
    /// The run's share of a pass over the user pool, when it read any of one.
    pub pass: Option<PassProgress>,
    /// The kill switch was found set during the run: it made no change after that.
    pub paused_during_run: bool,
    /// Groups left unchanged because the run would have changed too many of their rules.
    pub held_back: Vec<String>,
    max_per_kind: u64,
}

/// A run's share of a pass over the user pool, and where the pass stands after it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PassProgress {
    pub id: i64,
    /// Pages and users this run read.
    pub pages_read: i64,
    pub users_seen: i64,
    /// The pass's totals so far.
    pub pass_pages_read: i64,
    pub pass_users_seen: i64,
    /// Runs that held the pass, this one included.
    pub pass_runs: i32,
    /// Every page read and orphans reported.
    pub finished: bool,
    /// Cognito refused the stored token of this pass (expired): this run closed that one as
    /// `restarted` and began this pass from the first page.
    pub restarted_from: Option<i64>,
}

const SUMMARY_FINDINGS: usize = 20;

/// Whether an operator has paused remediation (`drift_settings.remediation_paused`). Without
/// the settings row the switch fails closed: paused.
pub async fn remediation_paused(client: &ClientWrapper) -> Result<bool, tokio_postgres::Error> {
    let row = client
        .query_opt("SELECT remediation_paused FROM drift_settings", &[])
        .await?;
    Ok(row.is_none_or(|r| r.get(0)))
}

/// Rows of sg-ip-update's audit deleted per run at most: a backlog is worked off over runs.
const AUDIT_EXPIRY_BATCH: i64 = 10_000;

/// Deletes audit rows older than `drift_settings.audit_retention_days` (the table's own
/// trigger refuses any younger one), so that the audit stays bounded however many requests
/// are refused. Housekeeping, not remediation: done in report mode too.
pub async fn expire_audit(
    client: &ClientWrapper,
    run_id: &str,
) -> Result<u64, tokio_postgres::Error> {
    let expired = client
        .execute(
            "DELETE FROM ip_update_audit WHERE id IN (SELECT id FROM ip_update_audit \
             WHERE at < now() - make_interval(days => (SELECT audit_retention_days FROM drift_settings)) \
             ORDER BY id LIMIT $1)",
            &[&AUDIT_EXPIRY_BATCH],
        )
        .await?;
    if expired > 0 {
        tracing::info!(run_id, expired, "audit rows past their retention deleted");
    }
    Ok(expired)
}

impl Run {
    pub async fn start(
        client: &ClientWrapper,
        trigger: &str,
        requested: Mode,
        mode: Mode,
        scope: &str,
        request_id: &str,
        config: &Config,
    ) -> Result<Run, tokio_postgres::Error> {
        let row = client
            .query_one(
                "INSERT INTO drift_runs (trigger, mode, scope, request_id) VALUES ($1, $2, $3, $4) RETURNING id::text",
                &[&trigger, &mode.as_str(), &scope, &request_id],
            )
            .await?;
        Ok(Run {
            id: row.get(0),
            requested,
            mode,
            trigger: trigger.to_owned(),
            scope: scope.to_owned(),
            counts: Kind::ALL.iter().map(|k| (*k, 0)).collect(),
            actions: BTreeMap::new(),
            first: Vec::new(),
            pass: None,
            paused_during_run: false,
            held_back: Vec::new(),
            max_per_kind: config.max_findings_per_kind,
        })
    }

    /// Whether changes may be made in this run.
    pub fn remediating(&self) -> bool {
        self.mode == Mode::Remediate
    }

    /// Whether the next change may be made: the run remediates and the kill switch is still
    /// off. Read before every change, so setting the switch stops a run already under way
    /// at its next change; once found set, no later change is made in this run.
    pub async fn may_change(
        &mut self,
        client: &ClientWrapper,
    ) -> Result<bool, tokio_postgres::Error> {
        if !self.remediating() || self.paused_during_run {
            return Ok(false);
        }
        if remediation_paused(client).await? {
            self.paused_during_run = true;
            tracing::warn!(run_id = %self.id, "the kill switch was set during the run; no further change");
            return Ok(false);
        }
        Ok(true)
    }

    /// How many more findings of this kind would still be stored and logged.
    pub fn room(&self, kind: Kind) -> u64 {
        self.max_per_kind
            .saturating_sub(self.counts.get(&kind).copied().unwrap_or(0))
    }

    /// Counts findings past the cap that were never materialised one by one.
    pub fn count_unstored(&mut self, kind: Kind, action: &Action, n: u64) {
        if n == 0 {
            return;
        }
        *self.counts.entry(kind).or_default() += n;
        *self.actions.entry(action.class()).or_default() += n;
    }

    /// Counts a finding; stores and logs it while its kind is under the cap.
    pub async fn record(
        &mut self,
        client: &ClientWrapper,
        finding: Finding,
    ) -> Result<(), tokio_postgres::Error> {
        let count = self.counts.entry(finding.kind).or_default();
        *count += 1;
        *self.actions.entry(finding.action.class()).or_default() += 1;
        if *count > self.max_per_kind {
            return Ok(());
        }
        let desired = finding.desired.as_ref().map(Value::to_string);
        let actual = finding.actual.as_ref().map(Value::to_string);
        let action = finding.action.to_string();
        tracing::warn!(
            run_id = %self.id,
            kind = finding.kind.as_str(),
            resource = %finding.resource,
            desired = desired.as_deref().unwrap_or("null"),
            actual = actual.as_deref().unwrap_or("null"),
            action = %action,
            "drift finding"
        );
        let stmt = client
            .prepare_cached(
                "INSERT INTO drift_findings (run_id, kind, resource, desired, actual, action) \
                 VALUES ($1::text::uuid, $2, $3, $4::text::jsonb, $5::text::jsonb, $6)",
            )
            .await?;
        client
            .execute(
                &stmt,
                &[
                    &self.id,
                    &finding.kind.as_str(),
                    &finding.resource,
                    &desired,
                    &actual,
                    &action,
                ],
            )
            .await?;
        if self.first.len() < SUMMARY_FINDINGS {
            self.first.push(finding);
        }
        Ok(())
    }

    pub async fn finish(
        &self,
        client: &ClientWrapper,
        status: RunStatus,
        error: Option<&str>,
    ) -> Result<(), tokio_postgres::Error> {
        // A map of unit-variant keys to numbers cannot fail to serialize.
        let counts = serde_json::to_string(&self.counts).unwrap_or_else(|_| "{}".to_owned());
        client
            .execute(
                "UPDATE drift_runs SET finished_at = now(), status = $2, counts = $3::text::jsonb, error = $4 \
                 WHERE id = $1::text::uuid",
                &[&self.id, &status.as_str(), &counts, &error],
            )
            .await
            .map(drop)
    }

    pub fn summary(&self, status: RunStatus, paused: bool, elapsed: Duration) -> Summary {
        Summary {
            run_id: self.id.clone(),
            status,
            trigger: self.trigger.clone(),
            scope: self.scope.clone(),
            requested_mode: self.requested,
            mode: self.mode,
            remediation_paused: paused || self.paused_during_run,
            held_back: self.held_back.clone(),
            duration_ms: elapsed.as_millis() as u64,
            counts: self.counts.clone(),
            actions: self.actions.clone(),
            findings: self.first.clone(),
            pass: self.pass.clone(),
        }
    }
}

/// What a run found and did: the function's answer.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub run_id: String,
    pub status: RunStatus,
    pub trigger: String,
    pub scope: String,
    pub requested_mode: Mode,
    pub mode: Mode,
    pub remediation_paused: bool,
    /// Groups left unchanged because the run would have changed too many of their rules.
    pub held_back: Vec<String>,
    pub duration_ms: u64,
    /// Every kind, found or not.
    pub counts: BTreeMap<Kind, u64>,
    pub actions: BTreeMap<ActionClass, u64>,
    /// The first findings, in the order found.
    pub findings: Vec<Finding>,
    /// The run's share of the pass over the user pool; `null` when it read none (a CloudTrail
    /// run, or another run held the pass).
    pub pass: Option<PassProgress>,
}

/// CloudWatch Embedded Metric Format: one line per kind (dimension `Kind`) and one total of
/// the drift kinds (the alarm's metric: allowlisted rules are not drift), printed straight to
/// stdout, where Lambda's log agent turns them into metrics. `println!` bypasses the tracing
/// filter, so `AWS_LAMBDA_LOG_LEVEL` never silences them in the process.
pub fn emit_metrics(counts: &BTreeMap<Kind, u64>, namespace: &str) {
    for line in metric_lines(counts, namespace, SystemTime::now()) {
        println!("{line}");
    }
}

/// The level metric lines carry. Lambda's log-level filter gives a JSON line without a valid
/// `level` and `timestamp` the level INFO, and drops it when the function's application log
/// level is WARN (which the README suggests for a quiet log): the drift alarm would then see
/// nothing. WARN lets them through at every level up to WARN.
pub const METRIC_LEVEL: &str = "WARN";

/// The EMF documents [`emit_metrics`] prints, stamped `at`.
pub fn metric_lines(counts: &BTreeMap<Kind, u64>, namespace: &str, at: SystemTime) -> Vec<Value> {
    let since_epoch = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let millis = since_epoch.as_millis() as u64;
    let timestamp = rfc3339_millis(millis);
    let line = |dimensions: Value, fields: Value| {
        let mut doc = json!({
            "level": METRIC_LEVEL,
            "timestamp": timestamp,
            "_aws": {"Timestamp": millis, "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": dimensions,
                "Metrics": [{"Name": "Findings", "Unit": "Count"}],
            }]},
        });
        if let (Value::Object(doc), Value::Object(fields)) = (&mut doc, fields) {
            doc.extend(fields);
        }
        doc
    };
    let mut lines: Vec<Value> = counts
        .iter()
        .map(|(kind, n)| line(json!([["Kind"]]), json!({"Kind": kind, "Findings": n})))
        .collect();
    let total: u64 = counts
        .iter()
        .filter(|(kind, _)| kind.is_drift())
        .map(|(_, n)| n)
        .sum();
    lines.push(line(json!([[]]), json!({"Findings": total})));
    lines
}

/// `millis` since the epoch as an RFC 3339 UTC time (`2026-11-24T13:58:05.123Z`), the form
/// Lambda's log-level filter accepts.
fn rfc3339_millis(millis: u64) -> String {
    let secs = millis / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm), for days >= 0.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        millis % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_of_known_instants() {
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_millis(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(
            rfc3339_millis(1_709_251_199_999),
            "2024-02-29T23:59:59.999Z"
        );
        assert_eq!(
            rfc3339_millis(1_795_528_685_123),
            "2026-11-24T13:58:05.123Z"
        );
    }

    #[test]
    fn metric_lines_carry_the_namespace_a_level_and_a_timestamp() {
        let counts = BTreeMap::from([(Kind::Unexpected, 2), (Kind::Allowed, 1)]);
        let at = UNIX_EPOCH + Duration::from_millis(1_795_528_685_123);
        let lines = metric_lines(&counts, "DriftCheck/prod", at);
        assert_eq!(lines.len(), 3);
        for l in &lines {
            assert_eq!(
                l["_aws"]["CloudWatchMetrics"][0]["Namespace"],
                "DriftCheck/prod"
            );
            assert_eq!(l["level"], "WARN");
            assert_eq!(l["timestamp"], "2026-11-24T13:58:05.123Z");
            assert_eq!(l["_aws"]["Timestamp"], 1_795_528_685_123_u64);
        }
        let total = lines.last().unwrap();
        assert_eq!(total["Findings"], 2, "allowlisted rules are not drift");
        assert!(total.get("Kind").is_none());
    }
}
