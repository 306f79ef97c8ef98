//! The handler: one run, from the request to its recorded end. It takes the remediation lock
//! when it may remediate, checks the groups in scope and then the user pool, and records how
//! far it got; the metrics and the summary come from the run's record.

use std::time::{Duration, Instant};

use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde_json::Value;
use shared::deadline::Deadline;

use crate::{
    Error, State,
    config::Half,
    exclusive,
    listing::{self, HandOver, HandOverError, Staged, UsersFrom, store},
    report::{self, Run, RunStatus, Summary},
    request::{self, Lapse, Mode, Scope},
    rules_check,
    users_check::{self, Source},
};

/// DriftCheckFunction's `Timeout` in template.yaml: the run's budget when a local Runtime API
/// hands out a deadline already past ([`Deadline::of`]).
pub const TIMEOUT: Duration = Duration::from_secs(300);

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

/// What the function answers: a run's summary, or the receipt of a staged hand-over.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Answer {
    Run(Box<Summary>),
    Staged(Staged),
}

impl Answer {
    /// The run's summary; `None` for a staged hand-over.
    pub fn summary(&self) -> Option<&Summary> {
        match self {
            Self::Run(s) => Some(s),
            Self::Staged(_) => None,
        }
    }
}

/// Where this run's users half gets its listing.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Users {
    /// As configured (`DRIFT_USERS_FROM`).
    Configured,
    /// The complete listing the lister handed over.
    Listing(String),
    /// The lister's listing broke off: nothing of it is compared.
    BrokenOff(String),
    /// The lister ran out of time; its next run continues the listing.
    Suspended,
}

/// Runs one check, or stages a hand-over from the lister. Drift is not an error: the function
/// fails only when it could not check.
pub async fn handle(state: &State, event: LambdaEvent<Value>) -> Result<Answer, Error> {
    // The same phase lines as the sign-up triggers' (`shared::cold_start`): a cold start
    // with `cold_start=debug` says where its time went, up to the first answer.
    shared::cold_start::mark("event");
    let result = run(state, event).await;
    shared::cold_start::end("handler");
    result
}

async fn run(state: &State, event: LambdaEvent<Value>) -> Result<Answer, Error> {
    let started = Instant::now();
    let (payload, context) = event.into_parts();
    let parsed = match listing::envelope(&payload) {
        None => request::parse(&payload)
            .map(|r| (r, Users::Configured))
            .map_err(Error::from),
        Some(sealed) => match (sealed, &state.handover_key) {
            (Ok(sealed), Some(key))
                if state.config.users_from == UsersFrom::Lister && state.config.checks.users =>
            {
                // Opened (signature, freshness, limits) before anything reaches the database.
                let opened = match key.get().await {
                    Ok(key) => sealed.open(key, listing::unix_now()),
                    Err(e) => Err(e),
                };
                match opened.map_err(Error::from) {
                    Ok(h) => match hand_over_request(state, h).await {
                        Ok(Ok(staged)) => return Ok(Answer::Staged(staged)),
                        Ok(Err(run)) => Ok(run),
                        Err(e) => Err(e),
                    },
                    Err(e) => Err(e),
                }
            }
            (Ok(_), _) => Err(HandOverError::NotExpected.into()),
            (Err(e), _) => Err(e.into()),
        },
    };
    let (request, users) = match parsed {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, outcome = "error", "drift-check");
            return Err(e);
        }
    };
    let remaining = Deadline::of(&context, TIMEOUT).left();
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

    let outcome = check(state, &client, &request.scope, &users, &mut run, deadline).await;
    let (status, error) = match (&outcome, &users) {
        (Ok(_), Users::BrokenOff(reason)) => (
            RunStatus::Partial,
            Some(format!("the user listing broke off: {reason}")),
        ),
        (Ok(completion), _) => (RunStatus::from(*completion), None),
        (Err(e), _) => (RunStatus::Failed, Some(e.to_string())),
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
    // After the findings' lines, whose total the drift alarm and its readers take first.
    let every_group = (state.config.managed_groups.as_ref())
        .is_some_and(|groups| groups.len() == run.capacity.len());
    report::emit_capacity(
        &run.capacity,
        state.config.rules_per_group,
        &state.config.metrics_namespace,
        every_group,
    );
    let summary = run.summary(status, paused, started.elapsed());
    match outcome {
        Ok(_) => {
            let counts = serde_json::to_string(&summary.counts).unwrap_or_default();
            tracing::info!(run_id = %run.id, %status, counts, "drift-check");
            Ok(Answer::Run(Box::new(summary)))
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
    users: &Users,
    run: &mut Run,
    deadline: Instant,
) -> Result<Completion, Error> {
    let checks = state.config.checks;
    if checks.runs(Half::Rules) {
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
        // Rows placed in a group removed from the configured ones: no pass above visits it.
        if *scope == Scope::All && state.config.managed_groups.is_some() {
            rules_check::report_placed_outside(client, &groups, run).await?;
        }
    } else if *scope != Scope::All {
        // Deployed without the rules half (no managed group): a security-group event has
        // nothing here to check.
        tracing::info!(%scope, "the rules half is off (DRIFT_CHECKS); nothing to check");
        return Ok(Completion::Complete);
    }
    if *scope == Scope::All {
        report::expire_audit(client, &run.id).await?;
        if checks.runs(Half::Users) {
            let source = match (users, state.config.users_from) {
                (Users::Listing(id), _) => Source::Listing(id),
                (Users::Configured, UsersFrom::Cognito) => Source::Cognito,
                (Users::BrokenOff(_) | Users::Suspended, _) => return Ok(Completion::Partial),
                (Users::Configured, UsersFrom::Lister) => {
                    tracing::info!(
                        "the users half runs on the lister's hand-over (DRIFT_USERS_FROM=lister)"
                    );
                    return Ok(Completion::Complete);
                }
            };
            return users_check::check_users(state, client, run, deadline, source).await;
        }
    }
    Ok(Completion::Complete)
}

/// Stages `begin` and `chunk`, or closes the listing on `complete` and `broken_off` and
/// returns the run they start: `Ok(Ok(receipt))` or `Ok(Err((request, users)))`.
async fn hand_over_request(
    state: &State,
    h: HandOver,
) -> Result<Result<Staged, (request::Request, Users)>, Error> {
    let pool = state.config.user_pool_id.as_str();
    let client = state.db.client().await?;
    if let Err(behind) = state.schema.check(&client).await? {
        return Err(behind.into());
    }
    let refused = |e: store::StageError| match e {
        store::StageError::Refused(e) => Error::HandOver(e),
        store::StageError::Db(e) => Error::from(e),
    };
    let run = |mode, trigger: Option<String>, users| {
        let trigger = format!("lister:{}", trigger.as_deref().unwrap_or("direct"));
        Ok(Err((
            request::Request {
                mode,
                scope: Scope::All,
                trigger,
            },
            users,
        )))
    };
    match h {
        HandOver::Begin { pool: asked, .. } if asked != pool => {
            Err(HandOverError::ForeignPool(shared::errors::truncate(&asked, 64)).into())
        }
        HandOver::Begin { .. } => {
            let staged = store::begin(&client, pool).await?;
            tracing::info!(listing = %staged.listing, chunks = staged.chunks,
                resumed = staged.resume.is_some(), "user listing opened");
            Ok(Ok(staged))
        }
        HandOver::Suspend {
            listing,
            next_token,
            mode,
            trigger,
        } => {
            store::suspend(&client, pool, &listing, &next_token)
                .await
                .map_err(refused)?;
            run(mode, trigger, Users::Suspended)
        }
        HandOver::Chunk {
            listing,
            seq,
            users,
        } => store::stage(&client, pool, &listing, seq, &users)
            .await
            .map(Ok)
            .map_err(refused),
        HandOver::Complete {
            listing,
            chunks,
            users,
            mode,
            trigger,
        } => {
            store::complete(&client, pool, &listing, chunks, users)
                .await
                .map_err(refused)?;
            run(mode, trigger, Users::Listing(listing))
        }
        HandOver::BrokenOff {
            listing,
            reason,
            mode,
            trigger,
        } => {
            store::break_off(&client, pool, &listing, &reason).await?;
            run(mode, trigger, Users::BrokenOff(reason))
        }
    }
}
