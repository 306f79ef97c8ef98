//! The lister (`DRIFT_RUNS_AS=lister`): drift-check's users listing, run outside the VPC where
//! Cognito is always reachable (a pool with a domain is not, through a Cognito endpoint). On
//! each schedule tick it opens a listing in drift-check, reads the pool a paced page at a time
//! ([`crate::cognito_pages`]), hands the users over in chunks (synchronous invocations, each
//! well under the 6 MB payload), and ends with `complete`, in which drift-check runs the whole
//! check, both halves; its answer is the lister's. A listing that breaks off ends with
//! `broken_off`: drift-check checks the rules half only, compares nothing of the listing, and
//! the lister fails, so its errors alarm says so. A listing that cannot begin (the hand-over
//! key unreadable, `begin` refused or unanswered) still asks drift-check for the rules half's
//! run, so a lapsed rule is revoked on time, and the lister fails. Every hand-over is signed
//! with the stack's hand-over key ([`crate::listing::seal`]).

pub mod config;
pub mod key;

use std::time::{Duration, Instant};

use aws_sdk_lambda::{error::ProvideErrorMetadata, primitives::Blob};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::{Value, json};
use shared::{
    deadline::Deadline,
    errors::{Classified, diagnostic},
    signing::SigningKey,
};

pub use config::{Lister, ListerConfig};

use crate::{
    cognito_pages::{self, Fetched, Pool},
    listing::{MAX_CHUNK_USERS, Staged, seal, unix_now},
    pacing::{Pacer, backoff},
    request::{self, Scope},
};

/// DriftCheckListerFunction's `Timeout` in template.yaml: the run's budget when a local
/// Runtime API hands out a deadline already past ([`Deadline::of`]).
pub const TIMEOUT: Duration = Duration::from_secs(900);

/// Why the lister failed.
#[derive(Debug, thiserror::Error)]
pub enum ListerError {
    #[error("bad request: {0}")]
    BadRequest(String),
    /// drift-check could not be invoked, or failed a hand-over.
    #[error("the hand-over to drift-check failed: {0}")]
    HandOver(String),
    /// The listing broke off; drift-check checked the rules half and compared nothing of it.
    #[error("the user listing broke off: {0}")]
    BrokenOff(String),
}

impl Classified for ListerError {
    fn is_retryable(&self) -> bool {
        !matches!(self, Self::BadRequest(_))
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "BadRequest",
            Self::HandOver(_) => "HandOver",
            Self::BrokenOff(_) => "ListingBrokenOff",
        }
    }
}

impl From<ListerError> for Diagnostic {
    fn from(e: ListerError) -> Self {
        diagnostic(&e)
    }
}

/// Lists the pool and hands it over; answers drift-check's summary of the run.
pub async fn handle(lister: &Lister, event: LambdaEvent<Value>) -> Result<Value, ListerError> {
    let started = Instant::now();
    let (payload, context) = event.into_parts();
    let request = request::parse(&payload)
        .map_err(|e| ListerError::BadRequest(e.to_string()))
        .and_then(|r| match r.scope {
            Scope::All => Ok(r),
            _ => Err(ListerError::BadRequest(
                "the lister takes schedule and direct requests only".into(),
            )),
        });
    let request = match request {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, outcome = "error", "drift-check lister");
            return Err(e);
        }
    };
    let end = started + Deadline::of(&context, TIMEOUT).left();
    // The last call runs the whole check: the listing stops in time to leave it room.
    let deadline = end.checked_sub(lister.config.final_call).unwrap_or(started);
    let mode = request.mode.map(|m| m.as_str());
    let trigger = shared::errors::truncate(&request.trigger, 64);
    // The rules half's run alone, without a listing.
    let rules_only = json!({"mode": mode, "trigger": format!("lister:{trigger}")});
    let Some(pool) = lister.config.user_pool_id.as_deref() else {
        // No users half: only the rules half's run, started here as the schedule's target.
        return invoke(
            &lister.lambda_final,
            &lister.config.check_function,
            &rules_only,
            Within {
                deadline: end,
                room: lister.config.final_call,
            },
        )
        .await
        .inspect_err(|e| tracing::error!(error = %e, outcome = "error", "drift-check lister"));
    };
    let key = match &lister.handover_key {
        Some(source) => source.get().await.map_err(ListerError::HandOver),
        None => Err(ListerError::HandOver(
            "no hand-over key (DRIFT_HANDOVER_KEY_SECRET_ARN)".into(),
        )),
    };
    let key = match key {
        Ok(key) => key,
        Err(e) => return not_begun(lister, e, &rules_only, end).await,
    };
    let mut run = Handing {
        lister,
        key,
        pool,
        listing: String::new(),
        chunks: 0,
        users: 0,
        buffer: Vec::new(),
        buffered_bytes: 0,
    };
    let begin = json!({"hand_over": {"op": "begin", "pool": pool, "issued_at": unix_now()}});
    let begun = run.call(&begin, deadline).await.and_then(|answer| {
        serde_json::from_value::<Staged>(answer)
            .map_err(|e| ListerError::HandOver(format!("drift-check's answer to begin: {e}")))
    });
    let staged = match begun {
        Ok(staged) => staged,
        Err(e) => return not_begun(lister, e, &rules_only, end).await,
    };
    run.listing = staged.listing;
    run.chunks = staged.chunks;
    run.users = staged.users;
    let resume = staged.resume;
    let end_call = match run.list(resume, deadline).await {
        Ok(None) => {
            json!({"hand_over": {"op": "complete", "listing": run.listing,
            "chunks": run.chunks, "users": run.users, "mode": mode, "trigger": trigger}})
        }
        Ok(Some(next)) => {
            tracing::info!(listing = %run.listing, chunks = run.chunks,
                "out of time: the next run continues the listing");
            json!({"hand_over": {"op": "suspend", "listing": run.listing,
            "next_token": next, "mode": mode, "trigger": trigger}})
        }
        Err(reason) => {
            tracing::warn!(listing = %run.listing, chunks = run.chunks, reason = %reason,
                "the user listing broke off; drift-check checks the rules half only");
            json!({"hand_over": {"op": "broken_off", "listing": run.listing,
                "reason": shared::errors::truncate(&reason, 900), "mode": mode, "trigger": trigger}})
        }
    };
    let broke_off = end_call["hand_over"]["op"] == "broken_off";
    // A throttled last call is tried again only while drift-check's whole run still fits: the
    // lister would otherwise time out before the answer while the run goes on unseen. If it
    // does not, the lister fails (HandOver) and nothing of the listing is compared; the
    // listing is left staging, unsuspended, and the next run's `begin` supersedes it.
    let summary = invoke(
        &lister.lambda_final,
        &lister.config.check_function,
        &seal(key, &end_call),
        Within {
            deadline: end,
            room: lister.config.final_call,
        },
    )
    .await
    .inspect_err(|e| tracing::error!(error = %e, outcome = "error", "drift-check lister"))?;
    tracing::info!(listing = %run.listing, chunks = run.chunks, users = run.users,
        status = %summary["status"], "drift-check lister");
    if broke_off {
        let e = ListerError::BrokenOff(
            end_call["hand_over"]["reason"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
        tracing::error!(error = %e, outcome = "error", "drift-check lister");
        return Err(e);
    }
    Ok(summary)
}

/// A listing that could not begin: nothing of the pool is handed over, but the tick still
/// runs the rules half (`rules_only`), as where there is no pool; then the lister fails with
/// why the listing did not begin, so its errors alarm says so.
async fn not_begun(
    lister: &Lister,
    e: ListerError,
    rules_only: &Value,
    end: Instant,
) -> Result<Value, ListerError> {
    tracing::warn!(error = %e, "the user listing could not begin; drift-check checks the rules half only");
    let within = Within {
        deadline: end,
        room: lister.config.final_call,
    };
    match invoke(
        &lister.lambda_final,
        &lister.config.check_function,
        rules_only,
        within,
    )
    .await
    {
        Ok(summary) => {
            tracing::info!(status = %summary["status"], "drift-check lister: rules half")
        }
        Err(run) => {
            tracing::error!(error = %run, "drift-check lister: the rules half's run failed too")
        }
    }
    tracing::error!(error = %e, outcome = "error", "drift-check lister");
    Err(e)
}

/// One listing being handed over.
struct Handing<'a> {
    lister: &'a Lister,
    /// Signs every hand-over.
    key: &'a SigningKey,
    pool: &'a str,
    listing: String,
    chunks: i32,
    users: i64,
    buffer: Vec<Value>,
    buffered_bytes: usize,
}

impl Handing<'_> {
    /// Hands `payload` (`{"hand_over": ...}`) over, signed.
    async fn call(&self, payload: &Value, deadline: Instant) -> Result<Value, ListerError> {
        invoke(
            &self.lister.lambda,
            &self.lister.config.check_function,
            &seal(self.key, payload),
            Within {
                deadline,
                room: Duration::ZERO,
            },
        )
        .await
    }

    /// Reads every page from `resume` (the first page if `None`) and hands every user over.
    /// `Ok(Some(token))`: out of time, every page before `token` handed over. `Err`: why the
    /// listing broke off.
    async fn list(
        &mut self,
        resume: Option<String>,
        deadline: Instant,
    ) -> Result<Option<String>, String> {
        let config = &self.lister.config;
        let pool = Pool {
            id: self.pool,
            page_size: config.page_size,
        };
        let mut pacer = Pacer::new(config.list_users_per_second);
        let mut token = resume;
        let mut pages = 0u64;
        loop {
            let fetched = cognito_pages::fetch(
                &self.lister.cognito,
                pool,
                &mut pacer,
                token.as_deref(),
                deadline,
            )
            .await
            .map_err(|e| e.to_string())?;
            let page = match fetched {
                Fetched::Page(page) => page,
                Fetched::OutOfTime => {
                    // Every user of the pages read is handed over before the listing waits.
                    if !self.buffer.is_empty() {
                        self.flush(deadline).await?;
                    }
                    return match token {
                        Some(next) => Ok(Some(next)),
                        None => Err(format!("out of time after {pages} pages")),
                    };
                }
                Fetched::TokenRefused(why) => {
                    return Err(format!("Cognito refused its own token: {why}"));
                }
            };
            pages += 1;
            for user in &page.users {
                let value = serde_json::to_value(user).map_err(|e| e.to_string())?;
                let bytes = value.to_string().len();
                if !self.buffer.is_empty()
                    && (self.buffered_bytes + bytes > config.handover_bytes
                        || self.buffer.len() >= MAX_CHUNK_USERS)
                {
                    self.flush(deadline).await?;
                }
                self.buffer.push(value);
                self.buffered_bytes += bytes;
            }
            match page.next {
                Some(next) => token = Some(next),
                None => {
                    if !self.buffer.is_empty() {
                        self.flush(deadline).await?;
                    }
                    return Ok(None);
                }
            }
        }
    }

    /// Hands the buffered users over as the next chunk.
    async fn flush(&mut self, deadline: Instant) -> Result<(), String> {
        let users = std::mem::take(&mut self.buffer);
        let count = users.len() as i64;
        self.buffered_bytes = 0;
        let chunk = json!({"hand_over": {"op": "chunk", "listing": self.listing,
            "seq": self.chunks, "users": users}});
        let staged: Staged = serde_json::from_value(
            self.call(&chunk, deadline)
                .await
                .map_err(|e| e.to_string())?,
        )
        .map_err(|e| format!("drift-check's answer to chunk {}: {e}", self.chunks))?;
        if staged.chunks != self.chunks + 1 {
            return Err(format!(
                "drift-check holds {} chunks after chunk {}",
                staged.chunks, self.chunks
            ));
        }
        self.chunks += 1;
        self.users += count;
        Ok(())
    }
}

/// The time a call has: it is tried again only while, sent after its wait, it still has `room`
/// (the time it may take) before `deadline`.
#[derive(Debug, Clone, Copy)]
struct Within {
    deadline: Instant,
    room: Duration,
}

impl Within {
    /// Whether a call throttled at `now` may be sent again after `wait`.
    fn may_retry(self, now: Instant, wait: Duration) -> bool {
        now + wait + self.room < self.deadline
    }
}

/// Invokes drift-check synchronously; its error answer is an error here. The client makes one
/// attempt ([`shared::aws::single_attempt`]): a call given up on may still be running in
/// drift-check, so it is never sent again. Only a throttled call (drift-check runs one
/// invocation at a time: a CloudTrail run may hold it), which Lambda refused without running
/// it, waits and is tried again while `within` allows.
async fn invoke(
    client: &aws_sdk_lambda::Client,
    function: &str,
    payload: &Value,
    within: Within,
) -> Result<Value, ListerError> {
    let body = Blob::new(payload.to_string().into_bytes());
    let mut throttled = 0;
    loop {
        let result = client
            .invoke()
            .function_name(function)
            .payload(body.clone())
            .send()
            .await;
        let out = match result {
            Ok(out) => out,
            Err(e) if e.code() == Some("TooManyRequestsException") => {
                let wait = backoff(throttled);
                throttled += 1;
                if !within.may_retry(Instant::now(), wait) {
                    return Err(ListerError::HandOver(
                        "drift-check stayed busy (throttled) until too little time was left".into(),
                    ));
                }
                tracing::warn!(
                    wait_ms = wait.as_millis() as u64,
                    "drift-check is busy; waiting"
                );
                tokio::time::sleep(wait).await;
                continue;
            }
            Err(e) => return Err(ListerError::HandOver(shared::aws::error_line(&e))),
        };
        let answer: Value = out
            .payload()
            .and_then(|p| serde_json::from_slice(p.as_ref()).ok())
            .unwrap_or(Value::Null);
        if let Some(kind) = out.function_error() {
            let error_type = answer["errorType"].as_str().unwrap_or(kind);
            let message = answer["errorMessage"].as_str().unwrap_or_default();
            return Err(ListerError::HandOver(format!(
                "{error_type}: {}",
                shared::errors::truncate(message, 300)
            )));
        }
        return Ok(answer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A throttled last call is not sent again once drift-check's whole run no longer fits
    /// before the lister's end: it would start a run whose answer the lister never sees.
    #[test]
    fn a_throttled_last_call_is_retried_only_while_the_whole_run_still_fits() {
        let now = Instant::now();
        let final_call = Duration::from_secs(310);
        let wait = Duration::from_secs(2);
        let last = |left: u64| Within {
            deadline: now + Duration::from_secs(left),
            room: final_call,
        };
        assert!(last(900).may_retry(now, wait));
        assert!(last(313).may_retry(now, wait));
        // Before the end, but with less than the run's time left after the wait.
        assert!(!last(312).may_retry(now, wait));
        assert!(!last(200).may_retry(now, wait));
        // A hand-over needs no room beyond its deadline (the listing's, already short of the
        // last call's time).
        let handover = Within {
            deadline: now + Duration::from_secs(3),
            room: Duration::ZERO,
        };
        assert!(handover.may_retry(now, wait));
        assert!(!handover.may_retry(now, Duration::from_secs(3)));
    }
}
