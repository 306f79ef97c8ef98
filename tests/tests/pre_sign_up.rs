//! The PreSignUp trigger through the real binary: a sign-up that could never become a row is
//! refused before the account exists, with the insert's own rules and a message the app can
//! show; one that can goes on with the event unchanged; and two sign-ups racing for one handle
//! end with the second's confirmation refused (drift-check then reports it, see
//! `drift_check_users::a_user_whose_row_cannot_be_written_holds_back_no_one`). The handle
//! check lets a sign-up on only when the database cannot be reached in time, and says so in a
//! metric; a database or secret it cannot use (a wrong password, a missing grant, a denied
//! secret or key) refuses every sign-up, loudly.

use std::time::Duration;

use harness::{
    Function, Stack, TestDb, event,
    fixtures::{function_env, secret_env, signup, unique},
    function_binary,
};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

fn sign_up(handle: &str, email: Option<&str>) -> Value {
    let mut e = event("pre-sign-up.json");
    let attrs = &mut e["request"]["userAttributes"];
    attrs["preferred_username"] = json!(handle);
    match email {
        Some(email) => attrs["email"] = json!(email),
        None => {
            attrs.as_object_mut().unwrap().remove("email");
        }
    }
    e
}

async fn start(db: &TestDb, extra: &[(&str, &str)]) -> Function {
    let env = function_env(db, Stack::shared(), extra);
    Function::spawn(&function_binary("pre-sign-up"), &env)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_sign_up_that_could_never_become_a_row_is_refused_before_the_account_exists() {
    let db = Stack::shared().fresh_database().await.unwrap();
    db.connect_as_app()
        .await
        .unwrap()
        .execute(
            "INSERT INTO users (cognito_user_id, email, display_name, handle) \
             VALUES ('sub-andrew', 'a@example.com', 'Andrew', 'Andrew')",
            &[],
        )
        .await
        .unwrap();
    let f = start(&db, &[]).await;

    // The sample goes on, unchanged: nothing auto-confirmed.
    let sample = event("pre-sign-up.json");
    assert_eq!(f.invoke(&sample).await.response(), &sample);

    for (e, error, message) in [
        (
            sign_up("andrew", Some("b@example.com")),
            "Permanent.HandleTaken",
            "that username is already taken".to_owned(),
        ),
        (
            sign_up(&"a".repeat(65), Some("b@example.com")),
            "Permanent.InvalidAttribute",
            "the attribute preferred_username cannot be used: it is longer than 64 characters"
                .to_owned(),
        ),
        (
            sign_up("ａｎｄｒｅｗ", Some("b@example.com")),
            "Permanent.InvalidAttribute",
            "the attribute preferred_username cannot be used: it is not in Unicode normal form \
             NFKC (full-width or compatibility characters)"
                .to_owned(),
        ),
        (
            sign_up("bea", None),
            "Permanent.MissingAttribute",
            "the attribute email is required".to_owned(),
        ),
        // Drawn as nothing, though no hand-kept list named them: Unicode's properties do.
        (
            sign_up("\u{2800}andrew", Some("b@example.com")),
            "Permanent.InvalidAttribute",
            "the attribute preferred_username cannot be used: it contains an invisible or \
             direction-changing character"
                .to_owned(),
        ),
        (
            sign_up("and\u{1D173}rew", Some("b@example.com")),
            "Permanent.InvalidAttribute",
            "the attribute preferred_username cannot be used: it contains an invisible or \
             direction-changing character"
                .to_owned(),
        ),
        (
            sign_up("andrew ", Some("b@example.com")),
            "Permanent.InvalidAttribute",
            "the attribute preferred_username cannot be used: it starts or ends with a space, \
             or has two in a row"
                .to_owned(),
        ),
    ] {
        let inv = f.invoke(&e).await;
        assert_eq!(inv.error(), (error, message.as_str()), "{e}");
        // The answer names no other user.
        assert!(!message.contains("sub-andrew"));
    }
    // One space between words is a handle like any other.
    let e = sign_up("andrew brown", Some("b@example.com"));
    assert_eq!(f.invoke(&e).await.response(), &e);
}

/// A database that cannot be asked lets the sign-up on (the checks that need none still
/// apply): an outage must not stop every sign-up; post-confirmation and drift-check catch a
/// conflict.
#[tokio::test]
async fn without_the_database_the_sign_up_goes_on_and_the_other_rules_still_apply() {
    let db = Stack::shared().fresh_database().await.unwrap();
    let mut env = function_env(&db, Stack::shared(), &[("DB_CONNECT_TIMEOUT_MS", "300")]);
    for (k, v) in &mut env {
        if k == "DATABASE_URL" {
            *v = v.replace(&format!(":{}/", db.stack.pg_port), ":1/");
        }
    }
    let f = Function::spawn(&function_binary("pre-sign-up"), &env)
        .await
        .unwrap();
    let e = sign_up("cyrus", Some("c@example.com"));
    let inv = f.invoke(&e).await;
    assert_eq!(inv.response(), &e);
    let logs = f.logs_of(&[&inv]).await.join("\n");
    assert!(logs.contains("could not check the handle"), "{logs}");
    // Not silently: each sign-up let on is a metric the template alarms on.
    assert_eq!(metrics(&f, "HandleCheckFailedOpen").await, [1]);
    let inv = f.invoke(&sign_up("cyrus", None)).await;
    assert_eq!(inv.error().0, "Permanent.MissingAttribute");
}

/// The values of the EMF metric `name` the function printed (one per line), once one is there.
async fn metrics(f: &Function, name: &str) -> Vec<u64> {
    let parse = |l: &String| serde_json::from_str::<Value>(l).ok();
    let is_it =
        |v: &Value| v["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"].as_str() == Some(name);
    f.logs_when(
        |logs| logs.iter().filter_map(parse).any(|v| is_it(&v)),
        Duration::from_secs(5),
    )
    .await
    .iter()
    .filter_map(parse)
    .filter(is_it)
    .map(|v| v[name].as_u64().unwrap_or_else(|| panic!("{v}")))
    .collect()
}

/// What a sign-up refused because the check cannot run must look like: an error Cognito shows
/// as a refused sign-up, naming nothing of the database; an ERROR line with the cause; a
/// metric the template alarms on; and no metric saying it was let on.
async fn assert_refused_loudly(f: &Function, cause: &str) {
    let e = sign_up("dora", Some("d@example.com"));
    let inv = f.invoke(&e).await;
    assert_eq!(
        inv.error(),
        (
            "Permanent.HandleCheckMisconfigured",
            "sign-ups cannot be checked just now; please try again later"
        ),
        "{cause}"
    );
    let line = f.error_line(&inv).await;
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["level"], "ERROR", "{line}");
    assert!(line.contains(cause), "{cause}: {line}");
    assert_eq!(metrics(f, "HandleCheckMisconfigured").await, [1], "{cause}");
    assert!(
        !f.logs().iter().any(|l| l.contains("HandleCheckFailedOpen")),
        "{cause}: counted as an outage"
    );
}

/// A wrong password is a setting to fix, not an outage: letting every sign-up on until someone
/// notices would switch the check off without a word.
#[tokio::test]
async fn a_wrong_password_refuses_the_sign_up_loudly() {
    let db = Stack::shared().fresh_database().await.unwrap();
    let mut env = function_env(&db, Stack::shared(), &[]);
    for (k, v) in &mut env {
        if k == "DATABASE_URL" {
            *v = v.replace(&db.stack.app_password, "not-the-password");
        }
    }
    let f = Function::spawn(&function_binary("pre-sign-up"), &env)
        .await
        .unwrap();
    assert_refused_loudly(&f, "SQLSTATE 28P01").await;
}

/// A login without the grant the check needs (the migrations' job role not given to it).
#[tokio::test]
async fn a_login_without_the_grant_refuses_the_sign_up_loudly() {
    let db = Stack::shared().fresh_database().await.unwrap();
    let role = unique("no_grant").replace('-', "_");
    db.admin()
        .await
        .unwrap()
        .batch_execute(&format!("CREATE ROLE {role} LOGIN PASSWORD 'pw'"))
        .await
        .unwrap();
    let mut env = function_env(&db, Stack::shared(), &[]);
    for (k, v) in &mut env {
        if k == "DATABASE_URL" {
            let rest = v.split_once('@').unwrap().1.to_owned();
            *v = format!("postgres://{role}:pw@{rest}");
        }
    }
    let f = Function::spawn(&function_binary("pre-sign-up"), &env)
        .await
        .unwrap();
    assert_refused_loudly(&f, "SQLSTATE 42501").await;
}

/// A stand-in for Secrets Manager that answers every request with the AWS JSON error `kind`
/// (HTTP 400), as it does for a denied call or a key it may not use; its endpoint URL.
async fn secrets_manager_refusing(kind: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                // The whole request first (headers, then Content-Length bytes of body).
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    let Ok(n) = stream.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).to_lowercase();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length: usize = text
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|n| n.trim().parse().ok())
                            .unwrap_or(0);
                        if request.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                let body = json!({"__type": kind, "Message": "refused by the test"}).to_string();
                let answer = format!(
                    "HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.1\r\n\
                     x-amzn-RequestId: test\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    format!("http://127.0.0.1:{port}")
}

/// A secret the role may not read, one whose KMS key it may not use, and one that does not
/// exist: each refuses every sign-up until someone fixes it, rather than switching the check
/// off.
#[tokio::test]
async fn a_secret_or_key_the_function_may_not_use_refuses_the_sign_up_loudly() {
    let db = Stack::shared().fresh_database().await.unwrap();
    let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-sync-AbCdEf";
    for kind in ["AccessDeniedException", "DecryptionFailure"] {
        let endpoint = secrets_manager_refusing(kind).await;
        let mut env = secret_env(&db, Stack::shared(), arn, &[]);
        for (k, v) in &mut env {
            if k == "AWS_ENDPOINT_URL" {
                *v = endpoint.clone();
            }
        }
        let f = Function::spawn(&function_binary("pre-sign-up"), &env)
            .await
            .unwrap();
        assert_refused_loudly(&f, kind).await;
    }
    // moto's own answer for a secret that is not there.
    let f = Function::spawn(
        &function_binary("pre-sign-up"),
        &secret_env(&db, Stack::shared(), arn, &[]),
    )
    .await
    .unwrap();
    assert_refused_loudly(&f, "ResourceNotFoundException").await;
}

/// Secrets Manager out of reach is an outage like the database's: the sign-up goes on, and
/// the metric counts it.
#[tokio::test]
async fn secrets_manager_out_of_reach_lets_the_sign_up_on_and_counts_it() {
    let db = Stack::shared().fresh_database().await.unwrap();
    let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-sync-AbCdEf";
    let mut env = secret_env(
        &db,
        Stack::shared(),
        arn,
        &[("METRICS_NAMESPACE", "PreSignUp/db-sync-staging")],
    );
    for (k, v) in &mut env {
        if k == "AWS_ENDPOINT_URL" {
            *v = "http://127.0.0.1:1".to_owned();
        }
    }
    let f = Function::spawn(&function_binary("pre-sign-up"), &env)
        .await
        .unwrap();
    let e = sign_up("erin", Some("e@example.com"));
    assert_eq!(f.invoke(&e).await.response(), &e);
    assert_eq!(metrics(&f, "HandleCheckFailedOpen").await, [1]);
    let line = f
        .logs()
        .into_iter()
        .find(|l| l.contains("\"HandleCheckFailedOpen\""))
        .unwrap();
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        v["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "PreSignUp/db-sync-staging"
    );
    // Lambda's level filter keeps it at every level up to WARN.
    assert_eq!(v["level"], "WARN");
}

/// Two people pick the same free handle at once: both pass PreSignUp; the first to confirm
/// gets the row, the second's confirmation is refused with "that username is already taken".
#[tokio::test]
async fn two_sign_ups_racing_for_one_handle_end_with_the_second_confirmation_refused() {
    let db = Stack::shared().fresh_database().await.unwrap();
    let pre = start(&db, &[]).await;
    let handle = unique("zoe").replace('-', "_")[..20].to_owned();
    let upper = handle.to_uppercase();
    for h in [&handle, &upper] {
        let e = sign_up(h, Some("z@example.com"));
        assert_eq!(pre.invoke(&e).await.response(), &e, "both pass: no row yet");
    }
    let post = Function::spawn(
        &function_binary("post-confirmation"),
        &function_env(&db, Stack::shared(), &[]),
    )
    .await
    .unwrap();
    post.invoke(&signup("sub-first", &handle)).await.response();
    let second = post.invoke(&signup("sub-second", &upper)).await;
    assert_eq!(
        second.error(),
        ("Permanent.HandleTaken", "that username is already taken")
    );
    // And a third sign-up with that handle is now refused before the account exists.
    let inv = pre.invoke(&sign_up(&handle, Some("y@example.com"))).await;
    assert_eq!(inv.error().0, "Permanent.HandleTaken");
}
