//! The harness's secret check must fire: a forbidden value in a response, in a log line read
//! at an invocation, at `stop()` or at drop, or in the password of a `DATABASE_URL`, fails the
//! test, and the report names the place without printing the value. Each test forbids a
//! random value of its own, so the shared list cannot fail another test.

use std::{
    any::Any,
    panic::AssertUnwindSafe,
    path::Path,
    time::{Duration, Instant},
};

use futures_util::FutureExt;
use harness::{
    Function, Stack, TestDb,
    fixtures::{function_env, signup, unique},
    forbid, function_binary,
};

/// The text of a panic's payload.
fn message(payload: Box<dyn Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

/// What `future` panics with, or `None` when it completes.
async fn panic_of<T>(future: impl Future<Output = T>) -> Option<String> {
    AssertUnwindSafe(future)
        .catch_unwind()
        .await
        .err()
        .map(message)
}

/// Asserts that `report` describes `secret` without giving it away.
fn assert_names_without_revealing(report: &str, secret: &str) {
    assert!(!report.contains(secret), "the report prints the secret");
    let hint = format!("{} chars, starting {:?}", secret.len(), &secret[..2]);
    assert!(report.contains(&hint), "{report}");
}

/// post-confirmation on a fresh database, and a random value forbidden for this test alone.
/// post-confirmation returns its event and logs the sub on its outcome line.
async fn post_confirmation_and_a_secret() -> (TestDb, Function, String) {
    let db = Stack::shared().fresh_database().await.unwrap();
    let f = Function::spawn(
        &function_binary("post-confirmation"),
        &function_env(&db, &db.stack, &[]),
    )
    .await
    .unwrap();
    let secret = unique("probe");
    forbid(&secret);
    (db, f, secret)
}

#[tokio::test]
async fn a_forbidden_value_in_a_response_fails_the_invocation() {
    let (_db, f, secret) = post_confirmation_and_a_secret().await;
    let at_invoke = panic_of(f.invoke(&signup(&secret, "prober")))
        .await
        .expect("the harness let a forbidden value through in a response");
    assert!(
        at_invoke.contains("the response of invocation") && at_invoke.contains("post-confirmation"),
        "{at_invoke}"
    );
    assert_names_without_revealing(&at_invoke, &secret);

    // The outcome line is reported with the response if it was read by then, else at stop.
    let at_stop = panic_of(f.stop()).await;
    let both = format!("{at_invoke}\n{}", at_stop.unwrap_or_default());
    assert!(both.contains("log line"), "{both}");
    assert_names_without_revealing(&both, &secret);
}

#[tokio::test]
async fn a_forbidden_value_in_a_log_line_alone_fails_the_test() {
    let (_db, f, secret) = post_confirmation_and_a_secret().await;
    // No email: the error names only the attribute, but the outcome line logs the sub.
    let mut event = signup(&secret, "prober");
    event["request"]["userAttributes"]
        .as_object_mut()
        .unwrap()
        .remove("email");
    let report = panic_of(async {
        let inv = f.invoke(&event).await;
        assert_eq!(inv.error().0, "Permanent.MissingAttribute");
        assert!(!inv.error().1.contains(&secret));
        f.stop().await;
    })
    .await
    .expect("the harness let a forbidden value through in a log line");
    assert!(
        report.contains("log line") && report.contains("of post-confirmation"),
        "{report}"
    );
    assert!(!report.contains("error message"), "{report}");
    assert_names_without_revealing(&report, &secret);
}

#[tokio::test]
async fn the_password_of_database_url_is_forbidden_without_being_registered() {
    let db = Stack::shared().fresh_database().await.unwrap();
    let role = format!("r_{}", uuid::Uuid::new_v4().simple());
    let password = unique("url-password");
    db.create_role(&role, &password).await.unwrap();
    let url = format!(
        "postgres://{role}:{password}@127.0.0.1:{}/{}",
        db.stack.pg_port, db.name
    );
    let mut env = function_env(&db, &db.stack, &[]);
    env.retain(|(k, _)| k != "DATABASE_URL");
    env.push(("DATABASE_URL".into(), url));
    let f = Function::spawn(&function_binary("post-confirmation"), &env)
        .await
        .unwrap();
    let report = panic_of(async {
        f.invoke(&signup(&password, "prober")).await;
        f.stop().await;
    })
    .await
    .expect("the password of DATABASE_URL was not checked");
    assert!(report.contains("the response of invocation"), "{report}");
    assert_names_without_revealing(&report, &password);
}

/// A stand-in function that prints `secret` as it starts, then waits to be stopped.
async fn printer(secret: &str) -> Function {
    let env = [("PROBE".to_owned(), secret.to_owned())];
    let f = Function::spawn_program(
        "printer",
        Path::new("/bin/sh"),
        &["-c", "echo \"init: $PROBE\"; exec sleep 30"],
        &env,
    )
    .await
    .unwrap();
    let start = Instant::now();
    while f.logs().is_empty() && start.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(f.logs().len(), 1, "the printer printed");
    f
}

#[tokio::test]
async fn a_line_printed_at_init_fails_the_test_at_stop() {
    let secret = unique("probe");
    forbid(&secret);
    let f = printer(&secret).await;
    let report = panic_of(f.stop())
        .await
        .expect("stop() let a forbidden value through");
    assert!(report.contains("log line 1 of printer"), "{report}");
    assert!(report.contains("init: <forbidden>"), "{report}");
    assert_names_without_revealing(&report, &secret);
}

#[tokio::test]
async fn a_line_printed_at_init_fails_the_test_when_the_function_is_dropped() {
    let secret = unique("probe");
    forbid(&secret);
    let f = printer(&secret).await;
    let report = std::panic::catch_unwind(AssertUnwindSafe(|| drop(f)))
        .err()
        .map(message)
        .expect("dropping the function let a forbidden value through");
    assert!(report.contains("log line 1 of printer"), "{report}");
    assert_names_without_revealing(&report, &secret);
}
