//! The handler and its answer: a summary for EventBridge and direct invocations, an HTTP
//! response for the Function URL, a [`Refusal`] (not an error) for an event no retry can fix;
//! and the audit row of a request refused before its owner was looked up.

use aws_lambda_events::{
    event::lambda_function_urls::{LambdaFunctionUrlRequest, LambdaFunctionUrlResponse},
    http::{HeaderValue, header::CONTENT_TYPE},
};
use ingress::{
    ip::Cidr,
    rule::ManagedRule,
    store::{self, AuditEntry, AuditOutcome, Via},
};
use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::{db::DbError, errors::Classified};

use crate::{
    Error, Source, State, caller_of, check_source, parse_event,
    request::{body_text, storable},
    update::update,
    way_in,
};

/// What one request did: the function's answer, and its log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub outcome: AuditOutcome,
    pub owner: String,
    pub security_group_id: String,
    pub security_group_rule_id: Option<String>,
    /// The address now wanted (for `stale`, the one the old request asked for, as sent).
    pub cidr: String,
    pub previous_cidr: Option<Cidr>,
}

impl Summary {
    pub(crate) fn of(
        rule: &ManagedRule,
        outcome: AuditOutcome,
        cidr: String,
        previous: Option<Cidr>,
    ) -> Self {
        Self {
            outcome,
            owner: rule.owner.clone(),
            security_group_id: rule.security_group_id.clone(),
            security_group_rule_id: rule.aws_rule_id.clone(),
            cidr,
            previous_cidr: previous,
        }
    }
}

/// The function's answer: the summary for an EventBridge event or a direct invocation, and an
/// HTTP response for a Function URL request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Answer {
    Summary(Summary),
    Http(LambdaFunctionUrlResponse),
    Refused(Refusal),
}

/// A permanent refusal of an EventBridge event, answered as a success: EventBridge invokes
/// asynchronously and Lambda retries any function error (twice by default), so an error here
/// would turn each refused event into three invocations and three audit rows, and a flood of
/// them into three times the load. Only a failure a retry may fix is returned as an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// Always `refused`.
    pub outcome: &'static str,
    /// `Permanent.<Kind>`, as the error would have been typed.
    pub error: String,
    pub message: String,
}

/// The Function URL's answer: the summary with 200, or the error with its status and type.
fn http_answer(result: &Result<Summary, Error>) -> LambdaFunctionUrlResponse {
    let (status, body) = match result {
        Ok(summary) => (200, serde_json::to_value(summary)),
        Err(e) => {
            let d = e.diagnostic();
            let body = serde_json::json!({"error": d.error_type, "message": e.url_message()});
            (e.http_status(), Ok(body))
        }
    };
    let mut response = LambdaFunctionUrlResponse::default();
    response.status_code = status.into();
    response
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response.body = Some(body.map_or_else(|_| "{}".to_owned(), |b| b.to_string()));
    response
}

/// Handles one IP change. The function takes only its own kind of request
/// (`SG_IP_UPDATE_SOURCE`); another kind is refused before anything of it is believed. On the
/// bus function, an EventBridge event or a direct invocation gets the summary, or the error
/// (so Lambda retries what may pass); an EventBridge event refused for good, and a payload of
/// the other kind, get a [`Refusal`], not an error, so they are not retried. The Function URL's
/// function always answers with an HTTP response, the refusal or failure included: an error
/// returned to the runtime would reach the caller as a bare 502 without the reason.
pub async fn handle(state: &State, event: LambdaEvent<Value>) -> Result<Answer, Error> {
    // The same phase lines as the sign-up triggers' (`shared::cold_start`): a cold start
    // with `cold_start=debug` says where its time went, up to the first answer.
    shared::cold_start::mark("event");
    let result = run(state, event).await;
    shared::cold_start::end("handler");
    result
}

async fn run(state: &State, event: LambdaEvent<Value>) -> Result<Answer, Error> {
    let (payload, context) = event.into_parts();
    let via = way_in(&payload);
    let parsed =
        check_source(&payload, state.source).and_then(|()| parse_event(&payload, &state.envelope));
    let caller = parsed
        .as_ref()
        .ok()
        .and_then(|r| r.sender.caller())
        .map_or_else(String::new, |c| c.arn.clone());
    let result = match parsed {
        Ok(request) => update(state, &request, &context.request_id).await,
        Err(e) => {
            audit_refused_request(state, &payload, via, &e, &context.request_id).await;
            Err(e)
        }
    };
    match &result {
        Ok(s) => tracing::info!(
            owner = %s.owner,
            outcome = %s.outcome,
            cidr = %s.cidr,
            via = %via,
            caller = %caller,
            "sg-ip-update"
        ),
        Err(e) => tracing::error!(
            outcome = "error",
            error_type = %e.diagnostic().error_type,
            retryable = e.is_retryable(),
            via = %via,
            caller = %caller,
            // When the database is what failed, this line is the request's only record.
            audited = !matches!(e, Error::Db(_) | Error::SchemaBehind(_)),
            error = %e,
            "sg-ip-update"
        ),
    }
    match (state.source, via, result) {
        (Source::FunctionUrl, _, result) => Ok(Answer::Http(http_answer(&result))),
        (Source::Eventbridge, _, Err(e @ Error::WrongSource { .. }))
        | (Source::Eventbridge, Via::Eventbridge, Err(e))
            if !e.is_retryable() =>
        {
            let d = e.diagnostic();
            Ok(Answer::Refused(Refusal {
                outcome: "refused",
                error: d.error_type,
                message: d.error_message,
            }))
        }
        (Source::Eventbridge, _, result) => result.map(Answer::Summary),
    }
}

/// A value from the request as it may be stored and shown: at most `max` characters, NUL
/// (which Postgres text cannot hold) written as `\0`, a non-string shown as its JSON, and
/// null or absent as nothing.
fn quoted_raw(v: Option<&Value>, max: usize) -> Option<String> {
    let text = match v? {
        Value::Null => return None,
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    Some(storable(&text, max))
}

/// Records a request refused before its owner was looked up, with whatever owner, address and
/// caller could be read from it. Best effort: the refusal is the answer whether or not the
/// audit row could be written.
async fn audit_refused_request(
    state: &State,
    payload: &Value,
    via: Via,
    e: &Error,
    request_id: &str,
) {
    let url_request = match via {
        Via::FunctionUrl => LambdaFunctionUrlRequest::deserialize(payload).ok(),
        _ => None,
    };
    // An identity in a payload of the other kind was written by its invoker, not checked by
    // AWS: it is kept in the detail, never as the caller.
    let caller = match e {
        Error::WrongSource { .. } => None,
        _ => url_request.as_ref().and_then(caller_of),
    };
    let fields = match (via, &url_request) {
        (Via::FunctionUrl, Some(r)) => body_text(r)
            .ok()
            .and_then(|b| serde_json::from_str(&b).ok())
            .unwrap_or(Value::Null),
        (Via::Eventbridge, _) => payload.get("detail").cloned().unwrap_or(Value::Null),
        _ => payload.clone(),
    };
    let owner = quoted_raw(fields.get("owner"), 64).unwrap_or_default();
    let ip = quoted_raw(fields.get("ip"), 100);
    let detail = storable(&e.to_string(), 500);
    let entry = AuditEntry {
        owner: &owner,
        security_group_id: state.security_group_id.as_str(),
        old_cidr: None,
        new_cidr: ip.as_deref(),
        outcome: e.audit_outcome(),
        detail: Some(&detail),
        request_id,
        via: Some(via),
        caller: caller.as_ref(),
    };
    let written = match state.db.client().await {
        Ok(client) => store::audit(&client, &entry).await.map_err(DbError::from),
        Err(e) => Err(e),
    };
    if let Err(e) = written {
        tracing::warn!(error = %e, "could not audit the refused request");
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn raw_values_are_cut_and_made_storable() {
        assert_eq!(
            quoted_raw(Some(&json!("a\0b")), 10).as_deref(),
            Some("a\\0b")
        );
        assert_eq!(quoted_raw(Some(&json!(5)), 10).as_deref(), Some("5"));
        assert_eq!(
            quoted_raw(Some(&json!(["x"])), 10).as_deref(),
            Some("[\"x\"]")
        );
        assert_eq!(
            quoted_raw(Some(&json!("x".repeat(300))), 100).map(|s| s.chars().count()),
            Some(101)
        );
        assert_eq!(quoted_raw(None, 10), None);
        assert_eq!(quoted_raw(Some(&Value::Null), 10), None);
    }
}
