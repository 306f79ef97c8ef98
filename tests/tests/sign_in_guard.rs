//! The sign-in guard (PostAuthentication) through the real binary, against moto and Postgres:
//! an administrator's user gets their row at their first sign-in; a user who has a row costs
//! one exchange with Postgres and changes nothing; a database out of reach lets the sign-in
//! on, counted; one the function cannot use refuses it.

use std::time::Duration;

use harness::{
    Function, Stack, event, fixtures::function_env, function_binary, latency::LatencyFront,
};
use serde_json::{Map, Value, json};

#[path = "common/drift.rs"]
mod drift;
#[path = "common/sign_in.rs"]
mod sign_in;
use drift::World;
use sign_in::{admin_created, first_sign_in, status};

/// The PostAuthentication event Cognito sends for `username` as the pool now holds them.
async fn sign_in_event(w: &World, username: &str) -> Value {
    let user = w
        .cognito
        .admin_get_user()
        .user_pool_id(&w.pool)
        .username(username)
        .send()
        .await
        .unwrap();
    let mut attributes: Map<String, Value> = user
        .user_attributes()
        .iter()
        .filter_map(|a| Some((a.name().to_owned(), json!(a.value()?))))
        .collect();
    attributes.insert(
        "cognito:user_status".into(),
        json!(user.user_status().unwrap().as_str()),
    );
    let mut e = event("sign-in-guard.json");
    e["userPoolId"] = json!(w.pool);
    e["userName"] = json!(username);
    e["request"]["userAttributes"] = Value::Object(attributes);
    e
}

#[tokio::test]
async fn an_admin_created_user_gets_a_row_at_their_first_sign_in() {
    let w = World::shared().await;
    let sub = admin_created(&w, "staff").await;
    first_sign_in(&w, "staff").await;
    assert_eq!(status(&w, "staff").await, "CONFIRMED");
    let guard = Function::spawn(&function_binary("sign-in-guard"), &w.env(&[]))
        .await
        .unwrap();

    let e = sign_in_event(&w, "staff").await;
    let first = guard.invoke(&e).await;
    assert_eq!(first.response(), &e, "Cognito gets its event back");
    let rows = vec![(sub.clone(), "staff".to_owned(), "staff name".to_owned())];
    assert_eq!(w.user_rows().await, rows);
    // The next sign-in finds the row and leaves it; so does post-confirmation's insert later.
    assert_eq!(guard.invoke(&e).await.response(), &e);
    assert_eq!(w.user_rows().await, rows);
    let logs = guard.logs().join("\n");
    assert!(logs.contains("\"outcome\":\"inserted\""), "{logs}");
    assert!(logs.contains("\"outcome\":\"already_present\""), "{logs}");

    // drift-check then finds nothing missing.
    let summary = w
        .start(&[])
        .await
        .invoke(&json!({}))
        .await
        .response()
        .clone();
    assert_eq!(summary["counts"]["missing_user"], 0, "{summary:#}");
}

/// A user whose row cannot be written signs in all the same: a refusal would lock them out
/// over attributes they cannot change without signing in, and drift-check reports them.
#[tokio::test]
async fn a_user_whose_row_cannot_be_written_still_signs_in() {
    let w = World::shared().await;
    let guard = Function::spawn(&function_binary("sign-in-guard"), &w.env(&[]))
        .await
        .unwrap();
    let mut e = event("sign-in-guard.json");
    e["request"]["userAttributes"]["email_verified"] = json!("false");
    let inv = guard.invoke(&e).await;
    assert_eq!(inv.response(), &e);
    assert!(w.user_rows().await.is_empty());
    let logs = guard.logs_of(&[&inv]).await.join("\n");
    assert!(logs.contains("\"outcome\":\"unwritable\""), "{logs}");
}

/// A user who has a row costs one exchange with Postgres, in either pooling mode: the insert
/// that finds the row is the whole of it.
#[tokio::test]
async fn a_sign_in_with_a_row_is_one_exchange_with_postgres() {
    let stack = Stack::shared();
    for pooling in ["session", "transaction"] {
        let w = World::shared().await;
        let front = LatencyFront::start(w.db.stack.pg_port, Duration::ZERO).unwrap();
        let mut env = w.env(&[("DB_POOLING", pooling)]);
        for (k, v) in &mut env {
            if k == "DATABASE_URL" {
                *v = v.replace(
                    &format!(":{}/", stack.pg_port),
                    &format!(":{}/", front.port),
                );
            }
        }
        let guard = Function::spawn(&function_binary("sign-in-guard"), &env)
            .await
            .unwrap();
        let e = event("sign-in-guard.json");
        guard.invoke(&e).await.response();
        let cold = front.exchanges();
        guard.invoke(&e).await.response();
        let warm = front.exchanges() - cold;
        assert_eq!(w.user_rows().await.len(), 1);
        assert_eq!(front.connections(), 1, "{pooling}");
        assert_eq!(
            warm, 1,
            "{pooling}: a warm sign-in with a row is one exchange"
        );
    }
}

/// Postgres out of reach: the sign-in goes on without the row, and each one is a metric the
/// template alarms on.
#[tokio::test]
async fn without_the_database_the_sign_in_goes_on_and_is_counted() {
    let db = Stack::shared().fresh_database().await.unwrap();
    let mut env = function_env(&db, Stack::shared(), &[("DB_CONNECT_TIMEOUT_MS", "300")]);
    for (k, v) in &mut env {
        if k == "DATABASE_URL" {
            *v = v.replace(&format!(":{}/", db.stack.pg_port), ":1/");
        }
    }
    let guard = Function::spawn(&function_binary("sign-in-guard"), &env)
        .await
        .unwrap();
    let e = event("sign-in-guard.json");
    let inv = guard.invoke(&e).await;
    assert_eq!(inv.response(), &e);
    let logs = guard
        .logs_when(
            |logs| logs.iter().any(|l| l.contains("SignInGuardFailedOpen")),
            Duration::from_secs(5),
        )
        .await;
    let metric: Vec<Value> = logs
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["SignInGuardFailedOpen"].is_number())
        .collect();
    assert_eq!(metric.len(), 1, "{logs:#?}");
    assert_eq!(metric[0]["SignInGuardFailedOpen"], 1);
}

/// A database the function cannot use (here a login refused for its password) is a setting
/// to fix, not an outage: the sign-in is refused, naming nothing of the database, and no
/// metric says it was let on.
#[tokio::test]
async fn a_database_it_cannot_use_refuses_the_sign_in() {
    let db = Stack::shared().fresh_database().await.unwrap();
    let mut env = function_env(&db, Stack::shared(), &[]);
    for (k, v) in &mut env {
        if k == "DATABASE_URL" {
            let (_, rest) = v.split_once('@').unwrap();
            *v = format!("postgres://app:wrong-password@{rest}");
        }
    }
    let guard = Function::spawn(&function_binary("sign-in-guard"), &env)
        .await
        .unwrap();
    let inv = guard.invoke(&event("sign-in-guard.json")).await;
    assert_eq!(
        inv.error(),
        (
            "Permanent.SignInGuardMisconfigured",
            "sign-in is unavailable just now; please try again later"
        )
    );
    assert!(
        !guard
            .logs()
            .iter()
            .any(|l| l.contains("SignInGuardFailedOpen"))
    );
}
