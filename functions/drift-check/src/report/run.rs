//! The bookkeeping of one run: its row in `drift_runs`, each finding counted (and, under the
//! cap, stored and logged), the kill switch read before each change, and the summary the
//! function returns.

use std::{collections::BTreeMap, time::Duration};

use deadpool_postgres::ClientWrapper;
use serde::Serialize;
use serde_json::Value;

use crate::{
    Config,
    report::{Action, ActionClass, Finding, Kind, display_as_str},
    request::{Lapse, Mode},
};

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

/// The bookkeeping of one run.
pub struct Run {
    pub id: String,
    pub requested: Mode,
    pub mode: Mode,
    /// What the run does with a rule past its lifetime.
    pub lapse: Lapse,
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
    /// Groups whose operator's release (`drift_releases`) this run spent.
    pub released: Vec<String>,
    /// Each managed group's inbound rules as AWS reported them, for the capacity metrics.
    pub capacity: Vec<ingress::capacity::GroupUse>,
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
    let stmt = client
        .prepare_cached("SELECT remediation_paused FROM drift_settings")
        .await?;
    let row = client.query_opt(&stmt, &[]).await?;
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
    let stmt = client
        .prepare_cached(
            "DELETE FROM ip_update_audit WHERE id IN (SELECT id FROM ip_update_audit \
             WHERE at < now() - make_interval(days => (SELECT audit_retention_days FROM drift_settings)) \
             ORDER BY id LIMIT $1)",
        )
        .await?;
    let expired = client.execute(&stmt, &[&AUDIT_EXPIRY_BATCH]).await?;
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
        let stmt = client
            .prepare_cached(
                "INSERT INTO drift_runs (trigger, mode, scope, request_id) VALUES ($1, $2, $3, $4) RETURNING id::text",
            )
            .await?;
        let row = client
            .query_one(&stmt, &[&trigger, &mode.as_str(), &scope, &request_id])
            .await?;
        Ok(Run {
            id: row.get(0),
            requested,
            mode,
            lapse: if mode == Mode::Remediate {
                Lapse::Revoke
            } else {
                Lapse::Report
            },
            trigger: trigger.to_owned(),
            scope: scope.to_owned(),
            counts: Kind::ALL.iter().map(|k| (*k, 0)).collect(),
            actions: BTreeMap::new(),
            first: Vec::new(),
            pass: None,
            paused_during_run: false,
            held_back: Vec::new(),
            released: Vec::new(),
            capacity: Vec::new(),
            max_per_kind: config.max_findings_per_kind,
        })
    }

    /// Whether changes may be made in this run.
    pub fn remediating(&self) -> bool {
        self.mode == Mode::Remediate
    }

    /// Whether rules past their lifetime are revoked in this run.
    pub fn revokes_lapsed(&self) -> bool {
        self.lapse == Lapse::Revoke
    }

    /// Whether the next change may be made: the run remediates and the kill switch is still
    /// off. Read before every change, so setting the switch stops a run already under way
    /// at its next change; once found set, no later change is made in this run.
    pub async fn may_change(
        &mut self,
        client: &ClientWrapper,
    ) -> Result<bool, tokio_postgres::Error> {
        let remediating = self.remediating();
        self.switch_allows(client, remediating).await
    }

    /// [`Run::may_change`] for revoking a lapsed rule: the run revokes them, and the kill
    /// switch is still off.
    pub async fn may_revoke_lapsed(
        &mut self,
        client: &ClientWrapper,
    ) -> Result<bool, tokio_postgres::Error> {
        let revokes = self.revokes_lapsed();
        self.switch_allows(client, revokes).await
    }

    async fn switch_allows(
        &mut self,
        client: &ClientWrapper,
        permitted: bool,
    ) -> Result<bool, tokio_postgres::Error> {
        if !permitted || self.paused_during_run {
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
        let stmt = client
            .prepare_cached(
                "UPDATE drift_runs SET finished_at = now(), status = $2, counts = $3::text::jsonb, error = $4 \
                 WHERE id = $1::text::uuid",
            )
            .await?;
        client
            .execute(&stmt, &[&self.id, &status.as_str(), &counts, &error])
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
            lapse: self.lapse,
            remediation_paused: paused || self.paused_during_run,
            held_back: self.held_back.clone(),
            released: self.released.clone(),
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
    /// What the invocation asked for (or the deployed mode); `mode` is what the run did: the
    /// deployed mode caps it, and a paused or busy run only reports.
    pub requested_mode: Mode,
    pub mode: Mode,
    /// What the run did with rules past their lifetime.
    pub lapse: Lapse,
    pub remediation_paused: bool,
    /// Groups left unchanged because the run would have changed too many of their rules.
    pub held_back: Vec<String>,
    /// Groups an operator's release let through (each release spent once).
    pub released: Vec<String>,
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
