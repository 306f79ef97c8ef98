//! The handler: one run, from the request to its recorded end. It takes the remediation lock
//! when it may remediate, checks the groups in scope and then the user pool, and records how
//! far it got; the metrics and the summary come from the run's record.

use std::time::Instant;

use lambda_runtime::LambdaEvent;
use serde_json::Value;

use crate::{
    Error, State, exclusive,
    report::{self, Run, RunStatus, Summary},
    request::{self, Lapse, Mode, Scope},
    rules_check, users_check,
};

/// How far a run got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    Complete,
    /// Stopped before the deadline; what was checked is recorded.
    Partial,
}

impl From<Completion> for RunStatus {
    fn from(c: Completion) -> Self {
        match c {
            Completion::Complete => RunStatus::Complete,
            Completion::Partial => RunStatus::Partial,
        }
    }
}

/// Runs one check. Drift is not an error: the function fails only when it could not check.
pub async fn handle(state: &State, event: LambdaEvent<Value>) -> Result<Summary, Error> {
    // The same phase lines as the sign-up triggers' (`shared::cold_start`): a cold start
    // with `cold_start=debug` says where its time went, up to the first answer.
    shared::cold_start::mark("event");
    let result = run(state, event).await;
    shared::cold_start::end("handler");
    result
}

async fn run(state: &State, event: LambdaEvent<Value>) -> Result<Summary, Error> {
    let started = Instant::now();
    let (payload, context) = event.into_parts();
    let request = match request::parse(&payload) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, outcome = "error", "drift-check");
            return Err(e.into());
        }
    };
    let remaining = shared::deadline::time_left(&context);
    let deadline = started + remaining.saturating_sub(state.config.deadline_margin);
    let asked = request.mode.unwrap_or(state.config.mode);
    // Whoever may invoke the function may not raise what the stack was deployed to do.
    let requested = asked.at_most(state.config.mode);
    if requested != asked {
        tracing::warn!(deployed = %state.config.mode, "the invocation asked to remediate; DRIFT_MODE allows a report only");
    }
    let lapse = if requested == Mode::Remediate {
        Lapse::Revoke
    } else {
        state.config.lapse
    };

    // One connection for the whole run: the users check keeps its list in a session table.
    let client = state.db.client().await?;
    // Only until the schema is found current: then no query.
    if let Err(behind) = state.schema.check(&client).await? {
        tracing::error!(error = %behind, outcome = "error", "drift-check");
        return Err(behind.into());
    }
    let paused = report::remediation_paused(&client).await?;
    // A run that may change AWS (remediating, or revoking lapsed rules) holds the lock.
    let changes = requested == Mode::Remediate || lapse == Lapse::Revoke;
    let exclusive = changes && !paused && exclusive::try_take(&client).await?;
    if changes && !exclusive && !paused {
        tracing::warn!("another run is changing the groups; this one reports only");
    }
    let mode = if exclusive { requested } else { Mode::Report };
    let scope = request.scope.to_string();
    let mut run = Run::start(
        &client,
        &request.trigger,
        asked,
        mode,
        &scope,
        &context.request_id,
        &state.config,
    )
    .await?;
    if exclusive {
        run.lapse = lapse;
    }

    let outcome = check(state, &client, &request.scope, &mut run, deadline).await;
    let (status, error) = match &outcome {
        Ok(completion) => (RunStatus::from(*completion), None),
        Err(e) => (RunStatus::Failed, Some(e.to_string())),
    };
    if let Err(e) = run.finish(&client, status, error.as_deref()).await {
        tracing::error!(error = %e, "could not record the end of the run");
    }
    if matches!(outcome, Err(Error::Db(_))) {
        // The connection may be broken or still hold an owner lock (and the remediation
        // lock): do not pool it; closing it frees them.
        drop(deadpool::managed::Object::take(client));
    } else if exclusive && let Err(e) = exclusive::release(&client).await {
        tracing::warn!(error = %e, "could not release the remediation lock; dropping the connection");
        drop(deadpool::managed::Object::take(client));
    }
    report::emit_metrics(&run.counts, &state.config.metrics_namespace);
    let summary = run.summary(status, paused, started.elapsed());
    match outcome {
        Ok(_) => {
            let counts = serde_json::to_string(&summary.counts).unwrap_or_default();
            tracing::info!(run_id = %run.id, %status, counts, "drift-check");
            Ok(summary)
        }
        Err(e) => {
            tracing::error!(run_id = %run.id, %status, error = %e, outcome = "error", "drift-check");
            Err(e)
        }
    }
}

async fn check(
    state: &State,
    client: &deadpool_postgres::ClientWrapper,
    scope: &Scope,
    run: &mut Run,
    deadline: Instant,
) -> Result<Completion, Error> {
    let managed = match &state.config.managed_groups {
        Some(groups) => groups.iter().map(ToString::to_string).collect(),
        None => ingress::store::managed_groups(client).await?,
    };
    let groups = match scope {
        Scope::All | Scope::PrefixList(_) => managed,
        Scope::Group(g) => {
            if !managed.iter().any(|m| m == g.as_str()) {
                tracing::info!(group = %g, "security group is not managed; nothing to check");
                return Ok(Completion::Complete);
            }
            vec![g.to_string()]
        }
    };
    for group in &groups {
        if Instant::now() >= deadline {
            return Ok(Completion::Partial);
        }
        rules_check::check_group(state, client, group, run, deadline).await?;
    }
    if *scope == Scope::All {
        report::expire_audit(client, &run.id).await?;
        return users_check::check_users(state, client, run, deadline).await;
    }
    Ok(Completion::Complete)
}
