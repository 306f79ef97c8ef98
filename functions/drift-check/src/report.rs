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
    /// Confirmed in Cognito, no row: a lost sign-up.
    MissingUser,
    /// A row whose sub is gone from the pool. Only ever reported.
    OrphanUser,
}

pub const KINDS: [Kind; 5] = [
    Kind::Missing,
    Kind::Changed,
    Kind::Unexpected,
    Kind::MissingUser,
    Kind::OrphanUser,
];

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Changed => "changed",
            Self::Unexpected => "unexpected",
            Self::MissingUser => "missing_user",
            Self::OrphanUser => "orphan_user",
        }
    }
}

/// One difference, and what was done about it.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub kind: Kind,
    pub resource: String,
    pub desired: Option<Value>,
    pub actual: Option<Value>,
    pub action: String,
}

/// The bookkeeping of one run.
pub struct Run {
    pub id: String,
    pub requested: Mode,
    pub mode: Mode,
    pub trigger: String,
    pub scope: String,
    pub counts: BTreeMap<Kind, u64>,
    pub actions: BTreeMap<String, u64>,
    pub first: Vec<Finding>,
    max_per_kind: u64,
}

const SUMMARY_FINDINGS: usize = 20;

/// Whether an operator has paused remediation (`drift_settings.remediation_paused`).
pub async fn remediation_paused(client: &ClientWrapper) -> Result<bool, tokio_postgres::Error> {
    let row = client
        .query_opt("SELECT remediation_paused FROM drift_settings", &[])
        .await?;
    Ok(row.is_some_and(|r| r.get(0)))
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
            counts: KINDS.iter().map(|k| (*k, 0)).collect(),
            actions: BTreeMap::new(),
            first: Vec::new(),
            max_per_kind: config.max_findings_per_kind,
        })
    }

    /// Whether changes may be made in this run.
    pub fn remediating(&self) -> bool {
        self.mode == Mode::Remediate
    }

    /// How many more findings of this kind would still be stored and logged.
    pub fn room(&self, kind: Kind) -> u64 {
        self.max_per_kind
            .saturating_sub(self.counts.get(&kind).copied().unwrap_or(0))
    }

    /// Counts findings past the cap that were never materialised one by one.
    pub fn count_unstored(&mut self, kind: Kind, action: &str, n: u64) {
        if n == 0 {
            return;
        }
        *self.counts.entry(kind).or_default() += n;
        *self
            .actions
            .entry(action_class(action).to_owned())
            .or_default() += n;
    }

    /// Counts a finding; stores and logs it while its kind is under the cap.
    pub async fn record(
        &mut self,
        client: &ClientWrapper,
        finding: Finding,
    ) -> Result<(), tokio_postgres::Error> {
        let count = self.counts.entry(finding.kind).or_default();
        *count += 1;
        *self
            .actions
            .entry(action_class(&finding.action).to_owned())
            .or_default() += 1;
        if *count > self.max_per_kind {
            return Ok(());
        }
        let desired = finding.desired.as_ref().map(Value::to_string);
        let actual = finding.actual.as_ref().map(Value::to_string);
        tracing::warn!(
            run_id = %self.id,
            kind = finding.kind.as_str(),
            resource = %finding.resource,
            desired = desired.as_deref().unwrap_or("null"),
            actual = actual.as_deref().unwrap_or("null"),
            action = %finding.action,
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
                    &finding.action,
                ],
            )
            .await?;
        if self.first.len() < SUMMARY_FINDINGS {
            self.first.push(finding);
        }
        Ok(())
    }

    fn counts_json(&self) -> Value {
        Value::Object(
            self.counts
                .iter()
                .map(|(k, n)| (k.as_str().to_owned(), json!(n)))
                .collect(),
        )
    }

    pub async fn finish(
        &self,
        client: &ClientWrapper,
        status: &str,
        error: Option<&str>,
    ) -> Result<(), tokio_postgres::Error> {
        client
            .execute(
                "UPDATE drift_runs SET finished_at = now(), status = $2, counts = $3::text::jsonb, error = $4 \
                 WHERE id = $1::text::uuid",
                &[&self.id, &status, &self.counts_json().to_string(), &error],
            )
            .await
            .map(drop)
    }

    pub fn summary(&self, status: &str, paused: bool, elapsed: Duration) -> Value {
        json!({
            "run_id": self.id,
            "status": status,
            "trigger": self.trigger,
            "scope": self.scope,
            "requested_mode": self.requested.as_str(),
            "mode": self.mode.as_str(),
            "remediation_paused": paused,
            "duration_ms": elapsed.as_millis() as u64,
            "counts": self.counts_json(),
            "actions": self.actions,
            "findings": self.first,
        })
    }
}

/// The action without its detail (`failed: <cause>` counts as `failed`).
fn action_class(action: &str) -> &str {
    action.split(':').next().unwrap_or(action)
}

/// CloudWatch Embedded Metric Format: one line per kind (dimension `Kind`) and one total,
/// printed straight to stdout, where Lambda's log agent turns them into metrics.
pub fn emit_metrics(counts: &BTreeMap<Kind, u64>) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    let directive = |dimensions: Value| {
        json!({"Timestamp": now, "CloudWatchMetrics": [{
            "Namespace": "DriftCheck",
            "Dimensions": dimensions,
            "Metrics": [{"Name": "Findings", "Unit": "Count"}],
        }]})
    };
    for (kind, n) in counts {
        println!(
            "{}",
            json!({"_aws": directive(json!([["Kind"]])), "Kind": kind.as_str(), "Findings": n})
        );
    }
    let total: u64 = counts.values().sum();
    println!(
        "{}",
        json!({"_aws": directive(json!([[]])), "Findings": total})
    );
}
