//! One request handed on: the target invoked synchronously with the request as CloudFormation
//! sent it, its answer read, and what to answer when there is none.

use std::time::{Duration, Instant};

use aws_sdk_lambda::{
    error::{ProvideErrorMetadata, SdkError},
    operation::invoke::InvokeError,
    primitives::Blob,
    types::InvocationType,
};
use custom_resource::{Answered, ProtocolError, Request, RequestType, Status};
use lambda_runtime::LambdaEvent;
use serde_json::{Map, Value};
use shared::deadline::{Deadline, LOCAL_CUSTOM_RESOURCE_BUDGET};

use crate::{State, TargetFunction};

/// Lambda's answers that the target is not ready yet, asked again while time remains: a VPC
/// function idle for weeks is inactive, and its first invocation fails while Lambda gives it
/// its network interface back (`ResourceNotReadyException`); a function being created or
/// updated is pending (`ResourceConflictException`).
pub const NOT_READY: [&str; 2] = ["ResourceNotReadyException", "ResourceConflictException"];

/// Lambda's refusal of a call it did not run (the migrator's reserved concurrency is 1, so a
/// call beside a run in progress is throttled): safe to send again.
pub const THROTTLED: &str = "TooManyRequestsException";

/// Why the target gave no answer to pass on.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("could not invoke {target}: {detail}")]
    Invoke {
        target: TargetFunction,
        detail: String,
        #[source]
        source: Box<SdkError<InvokeError>>,
    },
    /// Lambda's own report: the function failed to start, crashed, timed out or returned an
    /// error (`X-Amz-Function-Error`).
    #[error("{target} failed ({error_type}): {message}")]
    Function {
        target: TargetFunction,
        error_type: String,
        message: String,
    },
    #[error("{target} did not answer within {:.1} s", .budget.as_secs_f64())]
    NoAnswer {
        target: TargetFunction,
        budget: Duration,
    },
    #[error("{target} answered something other than a custom-resource answer: {reason}")]
    BadAnswer {
        target: TargetFunction,
        reason: String,
    },
}

/// Handles one custom-resource request: hands it to the target and answers CloudFormation
/// with the result. Only a request without a URL and ids to answer with is left unanswered.
pub async fn handle(state: &State, event: LambdaEvent<Value>) -> Result<Answered, ProtocolError> {
    let (payload, context) = event.into_parts();
    // Read first; a local Runtime API's deadline already past counts as a local budget.
    let deadline = Deadline::of(&context, LOCAL_CUSTOM_RESOURCE_BUDGET).wall();
    custom_resource::relay(
        &state.responder,
        &payload,
        deadline,
        async |request, budget| match tokio::time::timeout(
            budget,
            invoke_when_ready(state, &payload, budget),
        )
        .await
        {
            Ok(Ok(answered)) => answered,
            Ok(Err(e)) => on_failure(request, &e),
            Err(_) => on_failure(
                request,
                &RelayError::NoAnswer {
                    target: state.target.clone(),
                    budget,
                },
            ),
        },
    )
    .await
}

/// [`invoke`], again after a pause while the target is not ready ([`NOT_READY`]) or throttled
/// ([`THROTTLED`]), and another attempt fits in `budget`.
async fn invoke_when_ready(
    state: &State,
    payload: &Value,
    budget: Duration,
) -> Result<Answered, RelayError> {
    let until = Instant::now() + budget;
    let mut pause = Duration::from_secs(1);
    loop {
        match invoke(state, payload).await {
            Err(RelayError::Invoke { source, detail, .. })
                if source
                    .code()
                    .is_some_and(|c| NOT_READY.contains(&c) || c == THROTTLED)
                    && Instant::now() + pause < until =>
            {
                tracing::warn!(error = %detail, "the target is not ready; asking again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(10));
            }
            other => return other,
        }
    }
}

/// Invokes the target with `payload` and reads its answer.
async fn invoke(state: &State, payload: &Value) -> Result<Answered, RelayError> {
    let target = &state.target;
    let output = state
        .lambda
        .invoke()
        .function_name(target.arn())
        .invocation_type(InvocationType::RequestResponse)
        .payload(Blob::new(payload.to_string()))
        .send()
        .await
        .map_err(|e| RelayError::Invoke {
            target: target.clone(),
            detail: shared::aws::error_line(&e),
            source: Box::new(e),
        })?;
    let body = output.payload().map(Blob::as_ref).unwrap_or_default();
    if let Some(kind) = output.function_error() {
        let report: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let text = |field: &str| report.get(field).and_then(Value::as_str).map(str::to_owned);
        return Err(RelayError::Function {
            target: target.clone(),
            error_type: text("errorType").unwrap_or_else(|| kind.to_owned()),
            message: text("errorMessage")
                .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(500).collect()),
        });
    }
    let answered: Answered = serde_json::from_slice(body).map_err(|e| RelayError::BadAnswer {
        target: target.clone(),
        reason: e.to_string(),
    })?;
    if answered.physical_resource_id.is_empty() {
        return Err(RelayError::BadAnswer {
            target: target.clone(),
            reason: "no physical id".to_owned(),
        });
    }
    tracing::info!(status = %answered.status, "the target answered");
    Ok(answered)
}

/// The answer when the target gave none: FAILED with the cause on Create and Update;
/// SUCCESS on Delete, saying what happened, so that a target which cannot start never holds
/// the stack's delete.
pub fn on_failure(request: &Request, failure: &RelayError) -> Answered {
    let cause = custom_resource::error_chain(failure);
    tracing::error!(error = %cause, request_type = %request.request_type, "the target gave no answer");
    let (status, reason) = match request.request_type {
        RequestType::Delete => (
            Status::Success,
            format!(
                "Delete answered SUCCESS without the target's own answer, so that the stack's \
                 delete goes on (nothing was removed): {cause}"
            ),
        ),
        RequestType::Create | RequestType::Update => (Status::Failed, cause),
    };
    Answered {
        status,
        reason,
        physical_resource_id: request.fallback_physical_id(),
        data: Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn request(kind: &str, physical: Option<&str>) -> Request {
        let mut e = json!({
            "RequestType": kind,
            "ResponseURL": "https://bucket.s3.amazonaws.com/k",
            "StackId": "stack",
            "RequestId": "r-1",
            "ResourceType": "Custom::SchemaMigrations",
            "LogicalResourceId": "SchemaMigrations",
        });
        if let Some(p) = physical {
            e["PhysicalResourceId"] = json!(p);
        }
        Request::from_event(&e).unwrap()
    }

    fn no_answer() -> RelayError {
        RelayError::NoAnswer {
            target: TargetFunction::parse("arn:aws:lambda:us-east-1:123456789012:function:m")
                .unwrap(),
            budget: Duration::from_secs(3),
        }
    }

    #[test]
    fn a_delete_without_the_targets_answer_succeeds_saying_why() {
        let a = on_failure(&request("Delete", Some("schema-migrations")), &no_answer());
        assert_eq!(a.status, Status::Success);
        assert_eq!(a.physical_resource_id, "schema-migrations");
        assert!(
            a.reason.contains("did not answer within 3.0 s"),
            "{}",
            a.reason
        );
        assert!(a.reason.contains("Delete answered SUCCESS"), "{}", a.reason);
    }

    #[test]
    fn a_create_or_update_without_it_fails_with_the_cause() {
        let a = on_failure(&request("Create", None), &no_answer());
        assert_eq!(a.status, Status::Failed);
        assert_eq!(a.physical_resource_id, "SchemaMigrations-not-created-r-1");
        assert!(a.reason.contains("did not answer within"), "{}", a.reason);
        let a = on_failure(&request("Update", Some("kept")), &no_answer());
        assert_eq!(
            (a.status, a.physical_resource_id.as_str()),
            (Status::Failed, "kept")
        );
    }
}
