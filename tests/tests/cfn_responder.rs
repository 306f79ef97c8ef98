//! cfn-responder, the migrations' `ServiceToken` outside the VPC, as deployed: its binary
//! through the Runtime API harness, invoking the in-VPC function through a loopback Lambda
//! Invoke API (common/invoke_api.rs) and answering at a local stand-in for CloudFormation's
//! `ResponseURL`. The target is the REAL schema-migrations binary on the local Postgres, or a
//! planted fault: a function error, a function that cannot start, one that cannot be reached,
//! one that never answers.

#![recursion_limit = "256"]

use std::time::Duration;

use harness::{Function, Stack, function_binary, recorder::ResponseRecorder};
use serde_json::{Value, json};

#[path = "common/invoke_api.rs"]
mod invoke_api;
use invoke_api::{InvokeApi, Target};

const STACK_ID: &str = "arn:aws:cloudformation:us-east-1:123456789012:stack/db-sync/5b5f0e70-0000-11ef-9c4d-0a1b2c3d4e5f";
/// The name the responder invokes the migrations by (its `TARGET_FUNCTION_ARN`).
const MIGRATOR: &str = "db-sync-SchemaMigrationsFunction";

/// The migrations' custom-resource request, as CloudFormation sends it to the responder.
fn request(recorder: &ResponseRecorder, key: &str, kind: &str, physical: Option<&str>) -> Value {
    let mut e = json!({
        "RequestType": kind,
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:db-sync-CfnResponderFunction",
        "ResponseURL": recorder.url(key),
        "StackId": STACK_ID,
        "RequestId": format!("{key}-request"),
        "LogicalResourceId": "SchemaMigrations",
        "ResourceType": "Custom::SchemaMigrations",
        "ResourceProperties": {"ServiceToken": "arn", "MigrationsVersion": "3"},
    });
    if let Some(p) = physical {
        e["PhysicalResourceId"] = json!(p);
    }
    e
}

/// The responder's binary, invoking [`MIGRATOR`] through `api`.
async fn responder(api: &InvokeApi) -> Function {
    let mut env = api.env();
    env.push(("TARGET_FUNCTION_ARN".into(), InvokeApi::arn(MIGRATOR)));
    env.push(("CFN_RESPONSE_URL_ALLOW_LOOPBACK".into(), "true".into()));
    Function::spawn(&function_binary("cfn-responder"), &env)
        .await
        .unwrap()
}

/// The one answer PUT at `key`, with the ids CloudFormation matches it by.
async fn answer(recorder: &ResponseRecorder, key: &str) -> Value {
    let put = recorder
        .wait_for(key, Duration::from_secs(30))
        .await
        .unwrap_or_else(|| panic!("no answer was PUT for {key}"));
    assert_eq!(put.method, "PUT");
    assert_eq!(put.content_type.as_deref(), Some(""));
    let body = put.json();
    assert_eq!(body["StackId"], STACK_ID, "{body}");
    assert_eq!(body["RequestId"], format!("{key}-request"), "{body}");
    assert_eq!(body["LogicalResourceId"], "SchemaMigrations", "{body}");
    assert_eq!(
        recorder.requests(key).len(),
        1,
        "exactly one answer for {key}"
    );
    eprintln!("answer {key}: {body}");
    body
}

/// [`answer`], checked: its `Status` is `status` and its `Reason` contains each of `reason`.
async fn answered(recorder: &ResponseRecorder, key: &str, status: &str, reason: &[&str]) -> Value {
    let a = answer(recorder, key).await;
    assert_eq!(a["Status"], status, "{a}");
    let text = a["Reason"].as_str().unwrap_or_default();
    for part in reason {
        assert!(text.contains(part), "{part:?} not in the reason: {a}");
    }
    a
}

/// Lambda's own refusal of an Invoke: `status` with the error `code` and `message`.
fn lambda_error(status: u16, code: &str, message: &str) -> Target {
    Target::ServiceError {
        status,
        code: code.into(),
        message: message.into(),
    }
}

#[tokio::test]
async fn create_is_answered_with_the_migrations_own_result_against_postgres() {
    let stack = Stack::shared();
    let db = stack.empty_database().await.unwrap();
    let recorder = ResponseRecorder::start().await.unwrap();
    let api = InvokeApi::start().await.unwrap();
    let migrator =
        Target::binary("schema-migrations", &db.url_env(), Duration::from_secs(60)).await;
    api.serve(MIGRATOR, migrator.clone());
    let f = responder(&api).await;

    let inv = f
        .invoke(&request(&recorder, "create", "Create", None))
        .await;
    assert_eq!(inv.response()["status"], "SUCCESS", "{:?}", inv.outcome);
    let a = answered(&recorder, "create", "SUCCESS", &[]).await;
    assert_eq!(a["PhysicalResourceId"], "schema-migrations", "{a}");
    assert_eq!(
        a["Data"]["Version"],
        shared::migrate::latest_version(),
        "{a}"
    );
    let applied = a["Data"]["Applied"].as_str().unwrap();
    assert_eq!(
        applied.split(',').count(),
        shared::migrate::embedded().len(),
        "{a}"
    );
    // The migrations ran, in the database, by the migrator's hand.
    let versions: i64 = db
        .connect_as_app()
        .await
        .unwrap()
        .query_one("SELECT count(*) FROM refinery_schema_history", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(versions as usize, shared::migrate::embedded().len());

    // One synchronous invoke of the target, with the request as CloudFormation sent it.
    let calls = api.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].function_name, InvokeApi::arn(MIGRATOR));
    assert_eq!(
        calls[0]
            .invocation_type
            .as_deref()
            .unwrap_or("RequestResponse"),
        "RequestResponse"
    );
    assert_eq!(calls[0].body["RequestType"], "Create");
    assert_eq!(calls[0].body["RequestId"], "create-request");
    // The migrator answered the responder and PUT nothing of its own: the one answer above is
    // the responder's (`answer` checks there is exactly one).
    let logs = migrator.function().unwrap().logs().join("\n");
    assert!(!logs.contains("answering"), "{logs}");
}

#[tokio::test]
async fn a_failing_migration_is_answered_failed_with_the_migrators_reason() {
    let stack = Stack::shared();
    let db = stack.fresh_database().await.unwrap();
    // A history that diverges from this build's: the migrator refuses it.
    let newest = shared::migrate::latest_version();
    db.admin()
        .await
        .unwrap()
        .batch_execute(&format!(
            "UPDATE refinery_schema_history SET name = 'someone_elses' WHERE version = {newest}"
        ))
        .await
        .unwrap();
    let recorder = ResponseRecorder::start().await.unwrap();
    let api = InvokeApi::start().await.unwrap();
    api.serve(
        MIGRATOR,
        Target::binary("schema-migrations", &db.url_env(), Duration::from_secs(60)).await,
    );
    let f = responder(&api).await;

    f.invoke(&request(
        &recorder,
        "diverged",
        "Update",
        Some("schema-migrations"),
    ))
    .await;
    let a = answered(&recorder, "diverged", "FAILED", &[]).await;
    assert!(
        a["Reason"]
            .as_str()
            .unwrap()
            .contains("the histories diverge"),
        "the migrator's own reason: {a}"
    );
    assert_eq!(a["PhysicalResourceId"], "schema-migrations", "{a}");
}

#[tokio::test]
async fn a_migrator_that_errors_or_cannot_start_fails_create_and_update_with_the_cause() {
    let recorder = ResponseRecorder::start().await.unwrap();
    let api = InvokeApi::start().await.unwrap();
    let f = responder(&api).await;

    // Lambda reports the function's error (a crash, a timeout, an error it returned).
    api.serve(
        MIGRATOR,
        Target::FunctionError {
            error_type: "Sandbox.Timedout".into(),
            message: "Task timed out after 300.00 seconds".into(),
        },
    );
    f.invoke(&request(&recorder, "timed-out", "Create", None))
        .await;
    let a = answered(&recorder, "timed-out", "FAILED", &[]).await;
    let reason = a["Reason"].as_str().unwrap();
    assert!(reason.contains("Sandbox.Timedout"), "{reason}");
    assert!(
        reason.contains("Task timed out after 300.00 seconds"),
        "{reason}"
    );
    assert!(reason.contains(MIGRATOR), "names the function: {reason}");
    assert_eq!(
        a["PhysicalResourceId"], "SchemaMigrations-not-created-timed-out-request",
        "{a}"
    );

    // The real migrator with no database settings: its init fails, Lambda reports it.
    api.serve(
        MIGRATOR,
        Target::binary("schema-migrations", &[], Duration::from_secs(30)).await,
    );
    f.invoke(&request(
        &recorder,
        "no-init",
        "Update",
        Some("schema-migrations"),
    ))
    .await;
    let a = answered(&recorder, "no-init", "FAILED", &[]).await;
    assert_eq!(a["PhysicalResourceId"], "schema-migrations", "{a}");
    assert!(
        a["Reason"].as_str().unwrap().contains("Runtime.ExitError"),
        "{a}"
    );
}

#[tokio::test]
async fn create_with_the_migrator_unreachable_is_answered_failed() {
    let recorder = ResponseRecorder::start().await.unwrap();
    let api = InvokeApi::start().await.unwrap();
    api.serve(MIGRATOR, Target::Unreachable);
    let f = responder(&api).await;

    let inv = f
        .invoke(&request(&recorder, "create", "Create", None))
        .await;
    assert_eq!(inv.response()["status"], "FAILED", "{:?}", inv.outcome);
    let a = answered(&recorder, "create", "FAILED", &[]).await;
    let reason = a["Reason"].as_str().unwrap();
    assert!(reason.contains("could not invoke"), "{reason}");
    assert!(reason.contains(MIGRATOR), "{reason}");
    assert!(!api.calls().is_empty(), "the responder did try");

    // A function Lambda does not know (deleted, or a wrong ARN): its error code is the reason.
    let other = InvokeApi::start().await.unwrap();
    let g = responder(&other).await;
    g.invoke(&request(&recorder, "not-found", "Create", None))
        .await;
    answered(
        &recorder,
        "not-found",
        "FAILED",
        &["ResourceNotFoundException"],
    )
    .await;
}

#[tokio::test]
async fn delete_is_answered_success_within_the_deadline_whatever_the_migrator_does() {
    let recorder = ResponseRecorder::start().await.unwrap();
    let api = InvokeApi::start().await.unwrap();
    let f = responder(&api).await;

    // Unreachable: answered SUCCESS, saying so, with the physical id CloudFormation sent.
    api.serve(MIGRATOR, Target::Unreachable);
    let inv = f
        .invoke_within(
            &request(
                &recorder,
                "unreachable",
                "Delete",
                Some("schema-migrations"),
            ),
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(inv.response()["status"], "SUCCESS", "{:?}", inv.outcome);
    let a = answered(&recorder, "unreachable", "SUCCESS", &[]).await;
    assert_eq!(a["PhysicalResourceId"], "schema-migrations", "{a}");
    let reason = a["Reason"].as_str().unwrap();
    assert!(reason.contains("Delete answered SUCCESS"), "{reason}");
    assert!(reason.contains("could not invoke"), "{reason}");

    // Cannot start (the real binary, no database settings).
    api.serve(
        MIGRATOR,
        Target::binary("schema-migrations", &[], Duration::from_secs(30)).await,
    );
    f.invoke(&request(
        &recorder,
        "no-init",
        "Delete",
        Some("schema-migrations"),
    ))
    .await;
    answered(&recorder, "no-init", "SUCCESS", &["Runtime.ExitError"]).await;

    // Never answers: the responder stops waiting before its own deadline (a 12 s function
    // timeout, 5 s kept for the answer) and still answers, as the harness's invocation ends.
    api.serve(MIGRATOR, Target::Silent);
    let inv = f
        .invoke_within(
            &request(&recorder, "silent", "Delete", Some("schema-migrations")),
            Duration::from_secs(12),
        )
        .await;
    assert_eq!(inv.response()["status"], "SUCCESS", "{:?}", inv.outcome);
    answered(&recorder, "silent", "SUCCESS", &["did not answer within"]).await;

    // The rollback of a Create that failed: its Delete finds nothing, and is answered by the
    // real migrator's own SUCCESS.
    let stack = Stack::shared();
    let db = stack.fresh_database().await.unwrap();
    api.serve(
        MIGRATOR,
        Target::binary("schema-migrations", &db.url_env(), Duration::from_secs(30)).await,
    );
    let physical = "SchemaMigrations-not-created-r-1";
    f.invoke(&request(&recorder, "rollback", "Delete", Some(physical)))
        .await;
    let a = answered(&recorder, "rollback", "SUCCESS", &[]).await;
    assert_eq!(a["Reason"], "Delete done", "{a}");
}

#[tokio::test]
async fn a_migrator_not_ready_yet_is_asked_again_until_it_answers() {
    let stack = Stack::shared();
    let db = stack.empty_database().await.unwrap();
    let recorder = ResponseRecorder::start().await.unwrap();
    let api = InvokeApi::start().await.unwrap();
    let not_ready = |status, code| {
        lambda_error(
            status,
            code,
            "The function is currently in the following state: Pending",
        )
    };
    // Pending after an update, twice, then up.
    api.serve(
        MIGRATOR,
        Target::sequence(vec![
            not_ready(409, "ResourceConflictException"),
            not_ready(409, "ResourceConflictException"),
            Target::binary("schema-migrations", &db.url_env(), Duration::from_secs(60)).await,
        ]),
    );
    let f = responder(&api).await;

    f.invoke(&request(&recorder, "pending", "Create", None))
        .await;
    let a = answered(&recorder, "pending", "SUCCESS", &[]).await;
    assert_eq!(
        a["Data"]["Version"],
        shared::migrate::latest_version(),
        "{a}"
    );
    assert_eq!(api.calls().len(), 3, "{:?}", api.calls());

    // Never ready: the responder stops asking before its deadline, naming the cause.
    api.serve(MIGRATOR, not_ready(409, "ResourceConflictException"));
    f.invoke_within(
        &request(&recorder, "never", "Update", Some("schema-migrations")),
        Duration::from_secs(12),
    )
    .await;
    answered(&recorder, "never", "FAILED", &["ResourceConflictException"]).await;
}

/// The migrations must never run twice for one request: the SDK's own retries would re-send a
/// call whose first attempt failed with a 500 or timed out, perhaps while it still runs. Only a
/// throttle (Lambda ran nothing) is asked again.
#[tokio::test]
async fn a_migrator_call_is_sent_once_unless_lambda_throttled_it() {
    let stack = Stack::shared();
    let db = stack.empty_database().await.unwrap();
    let recorder = ResponseRecorder::start().await.unwrap();
    let api = InvokeApi::start().await.unwrap();
    let service_error = |status, code| lambda_error(status, code, "Rate Exceeded.");
    api.serve(
        MIGRATOR,
        Target::sequence(vec![
            service_error(429, "TooManyRequestsException"),
            Target::binary("schema-migrations", &db.url_env(), Duration::from_secs(60)).await,
        ]),
    );
    let f = responder(&api).await;
    f.invoke(&request(&recorder, "throttled", "Create", None))
        .await;
    answered(&recorder, "throttled", "SUCCESS", &[]).await;
    assert_eq!(api.calls().len(), 2, "{:?}", api.calls());

    // A 500 proves nothing about whether the migrator ran: answered FAILED after one call.
    api.serve(MIGRATOR, service_error(500, "ServiceException"));
    let before = api.calls().len();
    f.invoke(&request(
        &recorder,
        "five-hundred",
        "Update",
        Some("schema-migrations"),
    ))
    .await;
    answered(&recorder, "five-hundred", "FAILED", &["ServiceException"]).await;
    assert_eq!(api.calls().len() - before, 1, "{:?}", api.calls());
}

#[tokio::test]
async fn a_request_that_cannot_be_answered_or_is_malformed_never_reaches_the_migrator() {
    let recorder = ResponseRecorder::start().await.unwrap();
    let api = InvokeApi::start().await.unwrap();
    api.serve(MIGRATOR, Target::Unreachable);
    let f = responder(&api).await;

    // No URL CloudFormation would read: nothing to PUT to, and nothing is invoked.
    let mut e = request(&recorder, "no-url", "Create", None);
    e["ResponseURL"] = json!("http://169.254.169.254/latest/meta-data");
    let inv = f.invoke(&e).await;
    let (kind, message) = inv.error();
    assert_eq!(kind, "Permanent.Unanswerable", "{message}");
    assert!(message.contains("ResponseURL"), "{message}");

    // An unknown request type: answered FAILED by the responder itself.
    let mut e = request(&recorder, "unknown", "Create", None);
    e["RequestType"] = json!("Destroy");
    f.invoke(&e).await;
    let a = answered(&recorder, "unknown", "FAILED", &[]).await;
    assert!(a["Reason"].as_str().unwrap().contains("Destroy"), "{a}");
    assert!(api.calls().is_empty(), "{:?}", api.calls());
}
