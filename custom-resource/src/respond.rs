//! The driver every custom-resource function runs its handler through: it parses the request,
//! runs the handler with a deadline and a panic guard, and PUTs exactly one answer
//! ([`respond`]). Two halves of the same, for a custom resource whose work runs in a function
//! that cannot reach CloudFormation (inside a VPC without NAT): [`decide`], in that function,
//! settles the answer and returns it without sending it; [`relay`], in the function that is
//! the resource's `ServiceToken`, gets an answer by handing the request on, and sends it.

use std::{
    any::Any,
    panic::AssertUnwindSafe,
    time::{Duration, Instant, SystemTime},
};

use futures_util::FutureExt;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use shared::deadline::{Deadline, LOCAL_CUSTOM_RESOURCE_BUDGET};

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

/// What was answered (or, from [`decide`], what is to be answered): also the function's own
/// response, for its log, the tests, and the function that relays it ([`relay`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Answered {
    pub status: Status,
    pub reason: String,
    pub physical_resource_id: String,
    /// What `Fn::GetAtt` reads on SUCCESS.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub data: Map<String, Value>,
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
        // Read first; a local Runtime API's deadline already past counts as a local budget.
        let deadline = Deadline::of(&context, LOCAL_CUSTOM_RESOURCE_BUDGET).wall();
        respond(self, &payload, deadline, handler).await
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
    let reply = answerable(payload, responder.urls)?;
    let (until, budget) = budget(deadline, responder.margin);
    let answered = settle(payload, &reply, budget, responder.margin, handler).await;
    send(responder, &reply, answered, until).await
}

/// [`respond`] without the PUT: settles the answer to `payload` (the same guards: a malformed
/// request, a handler error, no end `margin` before `deadline`, a panic) and returns it, for
/// the function that invoked this one to send ([`relay`]). Only the ids are needed of the
/// request; its `ResponseURL` is neither checked nor used, and nothing is sent anywhere.
pub async fn decide<F, E>(
    payload: &Value,
    deadline: SystemTime,
    margin: Duration,
    handler: F,
) -> Result<Answered, Unanswerable>
where
    F: AsyncFnOnce(&Request) -> Result<Outcome, E>,
    E: std::error::Error,
{
    let reply = ReplyTo::ids_from_event(payload).inspect_err(|e| {
        tracing::error!(error = %e, "custom-resource request cannot be answered");
    })?;
    let (_, budget) = budget(deadline, margin);
    let answered = settle(payload, &reply, budget, margin, handler).await;
    log_answer(&answered, "decided");
    Ok(answered)
}

/// Answers one request with what `handler` makes of it: the whole answer (status, reason,
/// physical id, data), typically another function's ([`decide`]). The handler is given the
/// time it has, the invocation's deadline minus the responder's margin, and must settle
/// within it; a malformed request is answered FAILED without calling it, and a panic in it
/// FAILED with the panic's message.
pub async fn relay<F>(
    responder: &Responder,
    payload: &Value,
    deadline: SystemTime,
    handler: F,
) -> Result<Answered, ProtocolError>
where
    F: AsyncFnOnce(&Request, Duration) -> Answered,
{
    let reply = answerable(payload, responder.urls)?;
    let (until, budget) = budget(deadline, responder.margin);
    let answered = match Request::from_event(payload) {
        Err(e) => malformed(&reply, &e),
        Ok(request) => {
            log_request(&request);
            match AssertUnwindSafe(handler(&request, budget))
                .catch_unwind()
                .await
            {
                Ok(answered) => answered,
                Err(panic) => failed(
                    &reply,
                    format!("the handler panicked: {}", panic_message(&*panic)),
                ),
            }
        }
    };
    send(responder, &reply, answered, until).await
}

fn answerable(payload: &Value, urls: UrlPolicy) -> Result<ReplyTo, Unanswerable> {
    ReplyTo::from_event(payload, urls).inspect_err(|e| {
        tracing::error!(error = %e, "custom-resource request cannot be answered");
    })
}

/// When the invocation ends, and how long the handler may run: up to `margin` before it.
fn budget(deadline: SystemTime, margin: Duration) -> (Instant, Duration) {
    let left = deadline
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    (Instant::now() + left, left.saturating_sub(margin))
}

fn log_request(request: &Request) {
    tracing::info!(
        request_type = %request.request_type,
        logical_resource_id = %request.logical_resource_id,
        physical_resource_id = request.physical_resource_id.as_deref().unwrap_or("-"),
        "custom-resource request"
    );
}

fn failed(reply: &ReplyTo, reason: String) -> Answered {
    Answered {
        status: Status::Failed,
        reason,
        physical_resource_id: reply.fallback_physical_id(),
        data: Map::new(),
    }
}

fn malformed(reply: &ReplyTo, e: &str) -> Answered {
    failed(reply, format!("malformed custom-resource request: {e}"))
}

/// Runs `handler` on the request within `budget` and says what the answer is.
async fn settle<F, E>(
    payload: &Value,
    reply: &ReplyTo,
    budget: Duration,
    margin: Duration,
    handler: F,
) -> Answered
where
    F: AsyncFnOnce(&Request) -> Result<Outcome, E>,
    E: std::error::Error,
{
    let request = match Request::from_event(payload) {
        Err(e) => return malformed(reply, &e),
        Ok(request) => request,
    };
    log_request(&request);
    let run = AssertUnwindSafe(handler(&request)).catch_unwind();
    match tokio::time::timeout(budget, run).await {
        Ok(Ok(Ok(outcome))) => Answered {
            status: Status::Success,
            reason: format!("{} done", request.request_type),
            physical_resource_id: outcome.physical_resource_id,
            data: outcome.data,
        },
        Ok(Ok(Err(e))) => failed(reply, error_chain(&e)),
        Ok(Err(panic)) => failed(
            reply,
            format!("the handler panicked: {}", panic_message(&*panic)),
        ),
        Err(_) => failed(
            reply,
            format!(
                "{} did not finish within {:.1} s; stopped {:.0} s before the function's \
                 timeout to answer in time",
                request.request_type,
                budget.as_secs_f64(),
                margin.as_secs_f64()
            ),
        ),
    }
}

fn log_answer(answered: &Answered, what: &str) {
    match answered.status {
        Status::Success => {
            tracing::info!(status = %answered.status, physical_resource_id = %answered.physical_resource_id, "{what}")
        }
        Status::Failed => {
            tracing::error!(status = %answered.status, reason = %answered.reason, physical_resource_id = %answered.physical_resource_id, "{what}")
        }
    }
}

/// PUTs `answered` to the request's URL, trying until `until`.
async fn send(
    responder: &Responder,
    reply: &ReplyTo,
    answered: Answered,
    until: Instant,
) -> Result<Answered, ProtocolError> {
    let Answered {
        status,
        reason,
        physical_resource_id,
        data,
    } = answered;
    let response = Response::new(reply, status, reason, physical_resource_id, data);
    let answered = Answered {
        status: response.status,
        reason: response.reason.clone(),
        physical_resource_id: response.physical_resource_id.clone(),
        data: Map::new(),
    };
    log_answer(&answered, "answering");
    responder
        .sender
        .put(&reply.response_url, response.body(), until)
        .await
        .map_err(|source| ProtocolError::Put { status, source })?;
    Ok(answered)
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn request(kind: &str) -> Value {
        json!({
            "RequestType": kind,
            // Not a URL an answer could go to: decide never sends one.
            "ResponseURL": "http://10.0.0.5/not-checked",
            "StackId": "stack",
            "RequestId": "r-1",
            "ResourceType": "Custom::Thing",
            "LogicalResourceId": "Thing",
            "PhysicalResourceId": "thing-1",
        })
    }

    fn soon() -> SystemTime {
        SystemTime::now() + Duration::from_secs(30)
    }

    #[tokio::test]
    async fn decide_sends_nothing_and_keeps_the_data() {
        let a = decide(
            &request("Update"),
            soon(),
            Duration::from_secs(5),
            async |_| Ok::<_, std::io::Error>(Outcome::new("thing-1").with("Version", 3)),
        )
        .await
        .unwrap();
        assert_eq!(a.status, Status::Success);
        assert_eq!(a.reason, "Update done");
        assert_eq!(a.data["Version"], 3);
        // The answer travels as the function's response, and reads back the same.
        let back: Answered = serde_json::from_value(serde_json::to_value(&a).unwrap()).unwrap();
        assert_eq!(back, a);
    }

    #[tokio::test]
    async fn decide_answers_failed_for_an_error_a_panic_or_a_malformed_request() {
        let a = decide(
            &request("Update"),
            soon(),
            Duration::from_secs(5),
            async |_| Err::<Outcome, _>(std::io::Error::other("no")),
        )
        .await
        .unwrap();
        assert_eq!((a.status, a.reason.as_str()), (Status::Failed, "no"));
        assert_eq!(a.physical_resource_id, "thing-1");
        let a = decide(
            &request("Update"),
            soon(),
            Duration::from_secs(5),
            async |_| -> Result<Outcome, std::io::Error> { panic!("boom") },
        )
        .await
        .unwrap();
        assert_eq!(a.reason, "the handler panicked: boom");
        let a = decide(
            &request("Destroy"),
            soon(),
            Duration::from_secs(5),
            async |_| Ok::<_, std::io::Error>(Outcome::new("x")),
        )
        .await
        .unwrap();
        assert_eq!(a.status, Status::Failed);
        assert!(a.reason.starts_with("malformed"), "{}", a.reason);
        let mut no_ids = request("Create");
        no_ids.as_object_mut().unwrap().remove("RequestId");
        let e = decide(&no_ids, soon(), Duration::from_secs(5), async |_| {
            Ok::<_, std::io::Error>(Outcome::new("x"))
        })
        .await
        .unwrap_err();
        assert!(e.0.contains("RequestId"), "{e}");
    }
}
