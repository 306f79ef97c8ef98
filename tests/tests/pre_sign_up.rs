//! The PreSignUp trigger through the real binary: a sign-up that could never become a row is
//! refused before the account exists, with the insert's own rules and a message the app can
//! show; one that can goes on with the event unchanged; and two sign-ups racing for one handle
//! end with the second's confirmation refused (drift-check then reports it, see
//! `drift_check_users::a_user_whose_row_cannot_be_written_holds_back_no_one`).

use harness::{
    Function, Stack, TestDb, event,
    fixtures::{function_env, signup, unique},
    function_binary,
};
use serde_json::{Value, json};

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
    ] {
        let inv = f.invoke(&e).await;
        assert_eq!(inv.error(), (error, message.as_str()), "{e}");
        // The answer names no other user.
        assert!(!message.contains("sub-andrew"));
    }
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
    let inv = f.invoke(&sign_up("cyrus", None)).await;
    assert_eq!(inv.error().0, "Permanent.MissingAttribute");
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
