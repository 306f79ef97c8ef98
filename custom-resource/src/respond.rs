//! The driver every custom-resource function runs its handler through: it parses the request,
//! runs the handler with a deadline and a panic guard, and PUTs exactly one answer.

use std::{
    any::Any,
    panic::AssertUnwindSafe,
    time::{Duration, Instant, SystemTime},
};

use futures_util::FutureExt;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::{
    request::{ReplyTo, Request, Unanswerable, UrlPolicy},
    response::{Response, Status},
    sender::{PutError, Sender},
};

/// What a handler made: the resource's physical id and the data `Fn::GetAtt` can read.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub physical_resource_id: String,
    pub data: Map<String, Value>,
}

impl Outcome {
    pub fn new(physical_resource_id: impl Into<String>) -> Self {
        Self {
            physical_resource_id: physical_resource_id.into(),
            data: Map::new(),
        }
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.data.insert(key.to_owned(), value.into());
        self
    }
}

/// What was answered: also the function's own response, for its log and the tests.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Answered {
    pub status: Status,
    pub reason: String,
    pub physical_resource_id: String,
}

/// The request could not be answered at all: CloudFormation will wait for its own timeout.
/// Returned to the runtime so that it is logged and counted as an error.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error(transparent)]
    Unanswerable(#[from] Unanswerable),
    #[error("could not answer CloudFormation ({status} was to be sent): {source}")]
    Put {
        status: Status,
        #[source]
        source: PutError,
    },
}

impl From<ProtocolError> for Diagnostic {
    fn from(e: ProtocolError) -> Self {
        let kind = match e {
            ProtocolError::Unanswerable(_) => "Permanent.Unanswerable",
            ProtocolError::Put { .. } => "Retryable.AnswerNotDelivered",
        };
        Diagnostic {
            error_type: kind.to_owned(),
            error_message: e.to_string(),
        }
    }
}

/// How answers are sent, and how much time before the invocation's deadline is kept for
/// sending one when the handler is still running.
#[derive(Clone)]
pub struct Responder {
    pub sender: Sender,
    pub margin: Duration,
    /// Where answers may go: CloudFormation's pre-signed S3 URLs only, in a deploy.
    pub urls: UrlPolicy,
}

impl Responder {
    /// Keeps 5 s of the invocation for the answer, which goes only where `urls` admits.
    pub fn new(urls: UrlPolicy) -> Result<Self, PutError> {
        Ok(Self {
            sender: Sender::new()?,
            margin: Duration::from_secs(5),
            urls,
        })
    }

    /// [`respond`] with the invocation's payload and deadline.
    pub async fn handle<F, E>(
        &self,
        event: LambdaEvent<Value>,
        handler: F,
    ) -> Result<Answered, ProtocolError>
    where
        F: AsyncFnOnce(&Request) -> Result<Outcome, E>,
        E: std::error::Error,
    {
        let (payload, context) = event.into_parts();
        respond(self, &payload, context.deadline(), handler).await
    }
}

/// Answers one request. Whatever happens in `handler` (an error, no end before the deadline
/// minus the responder's margin, a panic), CloudFormation gets SUCCESS or FAILED with the
/// cause. Only a request without a URL and ids to answer with is left unanswered.
pub async fn respond<F, E>(
    responder: &Responder,
    payload: &Value,
    deadline: SystemTime,
    handler: F,
) -> Result<Answered, ProtocolError>
where
    F: AsyncFnOnce(&Request) -> Result<Outcome, E>,
    E: std::error::Error,
{
    let reply = ReplyTo::from_event(payload, responder.urls).inspect_err(|e| {
        tracing::error!(error = %e, "custom-resource request cannot be answered");
    })?;
    let left = deadline
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    let until = Instant::now() + left;
    let budget = left.saturating_sub(responder.margin);

    let (status, reason, physical, data) = match Request::from_event(payload) {
        Err(e) => (
            Status::Failed,
            format!("malformed custom-resource request: {e}"),
            reply.fallback_physical_id(),
            Map::new(),
        ),
        Ok(request) => {
            tracing::info!(
                request_type = %request.request_type,
                logical_resource_id = %request.logical_resource_id,
                physical_resource_id = request.physical_resource_id.as_deref().unwrap_or("-"),
                "custom-resource request"
            );
            let run = AssertUnwindSafe(handler(&request)).catch_unwind();
            match tokio::time::timeout(budget, run).await {
                Ok(Ok(Ok(outcome))) => (
                    Status::Success,
                    format!("{} done", request.request_type),
                    outcome.physical_resource_id,
                    outcome.data,
                ),
                Ok(Ok(Err(e))) => (
                    Status::Failed,
                    error_chain(&e),
                    reply.fallback_physical_id(),
                    Map::new(),
                ),
                Ok(Err(panic)) => (
                    Status::Failed,
                    format!("the handler panicked: {}", panic_message(&*panic)),
                    reply.fallback_physical_id(),
                    Map::new(),
                ),
                Err(_) => (
                    Status::Failed,
                    format!(
                        "{} did not finish within {:.1} s; stopped {:.0} s before the function's \
                         timeout to answer in time",
                        request.request_type,
                        budget.as_secs_f64(),
                        responder.margin.as_secs_f64()
                    ),
                    reply.fallback_physical_id(),
                    Map::new(),
                ),
            }
        }
    };
    let response = Response::new(&reply, status, reason, physical, data);
    match status {
        Status::Success => {
            tracing::info!(status = %status, physical_resource_id = %response.physical_resource_id, "answering")
        }
        Status::Failed => {
            tracing::error!(status = %status, reason = %response.reason, physical_resource_id = %response.physical_resource_id, "answering")
        }
    }
    responder
        .sender
        .put(&reply.response_url, response.body(), until)
        .await
        .map_err(|source| ProtocolError::Put { status, source })?;
    Ok(Answered {
        status,
        reason: response.reason,
        physical_resource_id: response.physical_resource_id,
    })
}

/// An error and its causes on one line: a Postgres error says what went wrong only in its
/// source, and the reason is all an operator sees in the stack's events.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}
