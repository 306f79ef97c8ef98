//! post-confirmation end to end: the real binary through the Lambda Runtime API, against the
//! real Postgres of the local stack. The cases a fan-in proxy must not change run twice: straight
//! to Postgres (the test named after the case) and through the stack's PgBouncer in transaction
//! pooling, the local stand-in for RDS Proxy (`through_pgbouncer::` and the same name).

use std::time::Duration;

use futures_util::future::join_all;
use harness::{
    Function, Outcome, Route, Stack, TestDb, event,
    fixtures::{function_env_via, signup_with_email, unique},
    front::Front,
    function_binary,
};
use serde_json::{Value, json};

/// Runs each named case (an `async fn(Route)` in `cases`) as a test straight to Postgres, and
/// in `through_pgbouncer` as a test of the same name through PgBouncer.
macro_rules! direct_and_through_pgbouncer {
    ($($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                cases::$case(Route::Direct).await
            }
        )*
        mod through_pgbouncer {
            use super::*;
            $(
                #[tokio::test]
                async fn $case() {
                    cases::$case(Route::Pooler).await
                }
            )*
        }
    };
}

direct_and_through_pgbouncer!(
    inserts_the_user_and_returns_the_event_unchanged,
    the_same_event_three_times_leaves_one_row,
    twenty_concurrent_deliveries_leave_one_row_and_all_succeed,
    forgot_password_creates_a_missing_row_and_never_overwrites,
    a_taken_handle_is_a_clear_error_and_the_first_user_is_untouched,
    a_restart_between_warm_invocations_is_invisible,
    a_lock_wait_ends_as_a_retryable_error_before_cognitos_deadline,
);

async fn start(db: &TestDb) -> Function {
    start_via(db, Route::Direct).await
}

async fn start_via(db: &TestDb, route: Route) -> Function {
    // PgBouncer answers a login only once the pool (new for each test database) has a server
    // connection, and one single-threaded PgBouncer serves the whole parallel suite here: a
    // login can take longer than the default 1.5 s. These cases are about what the function
    // does with its connection, not how fast a local pooler logs in 20 clients at once.
    // Each route as the template wires it: straight to Postgres the session is the
    // function's own; through the pooler, the default keeps nothing in it.
    let extra: &[(&str, &str)] = match route {
        Route::Direct => &[("DB_POOLING", "session")],
        Route::Pooler => &[("DB_CONNECT_TIMEOUT_MS", "4000")],
    };
    let env = function_env_via(db, &db.stack, route, extra);
    Function::spawn(&function_binary("post-confirmation"), &env)
        .await
        .expect("spawn post-confirmation")
}

/// An answer fit for the person signing up (Cognito hands it to the app): nothing of the
/// database (host, port, name, SQL) in it.
fn assert_client_safe(message: &str, db: &TestDb) {
    for leak in [
        "127.0.0.1".to_owned(),
        db.stack.pg_port.to_string(),
        db.stack.pgbouncer_port.to_string(),
        db.name.clone(),
        "SQLSTATE".to_owned(),
        "Postgres".to_owned(),
    ] {
        assert!(
            !message.contains(&leak),
            "{leak:?} in the answer {message:?}"
        );
    }
    assert!(message.len() < 100, "{message}");
}

/// A user confirmed without proving the address (AdminConfirmSignUp, then a password reset's
/// heal) gets no row from the trigger, just as drift-check's backfill writes none for them:
/// one rule for both (`shared::users::NewUser::from_confirmed_attributes`), refused with the
/// reason drift-check records for the `unwritable_user`. A verified address is still written.
#[tokio::test]
async fn an_unverified_email_is_refused_as_drift_checks_backfill_refuses_it() {
    let db = Stack::shared().fresh_database().await.unwrap();
    let f = start(&db).await;
    for (source, verified) in [
        ("PostConfirmation_ConfirmSignUp", None),
        ("PostConfirmation_ConfirmForgotPassword", Some("false")),
        ("PostConfirmation_ConfirmSignUp", Some("True")),
    ] {
        let mut e = signup_with_email(&unique("sub"), &unique("h"), "someone.else@example.com");
        e["triggerSource"] = json!(source);
        let attrs = e["request"]["userAttributes"].as_object_mut().unwrap();
        match verified {
            None => attrs.remove("email_verified"),
            Some(v) => attrs.insert("email_verified".into(), json!(v)),
        };
        // What drift-check's backfill reads for the same user.
        let attributes: std::collections::HashMap<String, String> =
            serde_json::from_value(e["request"]["userAttributes"].clone()).unwrap();
        let inv = f.invoke(&e).await;
        assert_eq!(
            inv.error(),
            (
                "Permanent.InvalidAttribute",
                "the attribute email cannot be used: it is not verified (`email_verified` is \
                 not \"true\")"
            ),
            "{source} {verified:?}"
        );
        let backfill = shared::users::NewUser::from_confirmed_attributes(
            Some("u"),
            &attributes,
            &shared::users::AttributeMapping::default(),
        )
        .unwrap_err()
        .to_string();
        let line: Value = serde_json::from_str(&f.error_line(&inv).await).unwrap();
        assert_eq!(line["error"].as_str(), Some(backfill.as_str()), "{line}");
    }
    assert!(rows(&db).await.is_empty(), "no unverified address stored");
    let e = signup_with_email(&unique("sub"), &unique("h"), "verified@example.com");
    assert_eq!(f.invoke(&e).await.response(), &e);
    assert_eq!(rows(&db).await.len(), 1);
}

async fn rows(db: &TestDb) -> Vec<(String, String, String, String)> {
    db.connect_as_app()
        .await
        .unwrap()
        .query(
            "SELECT cognito_user_id, handle, display_name, email FROM users ORDER BY created_at",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect()
}

#[tokio::test]
async fn logs_one_json_line_per_invocation_without_personal_data() {
    let db = Stack::shared().fresh_database().await.unwrap();
    let f = start(&db).await;
    let e = event("post-confirmation.json");
    let first = f.invoke(&e).await;
    let second = f.invoke(&e).await;
    let logs = f.logs_of(&[&first, &second]).await;
    for (inv, outcome) in [(&first, "inserted"), (&second, "already_present")] {
        let lines: Vec<Value> = logs
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| {
                v["span"]["requestId"] == json!(inv.request_id)
                    && v["message"] == "post-confirmation"
            })
            .collect();
        assert_eq!(lines.len(), 1, "one outcome line per invocation: {logs:#?}");
        assert_eq!(lines[0]["outcome"], outcome);
        assert_eq!(lines[0]["trigger_source"], "PostConfirmation_ConfirmSignUp");
        assert_eq!(lines[0]["sub"], "8f3c2b1a-6d4e-4c1b-9a7f-2e5d8c9b0a11");
    }
    for line in &logs {
        assert!(
            serde_json::from_str::<Value>(line).is_ok(),
            "not a JSON line: {line}"
        );
        assert!(
            !line.contains("andrew@example.com"),
            "email in logs: {line}"
        );
    }
}

#[tokio::test]
async fn bad_events_are_clear_errors_and_write_nothing() {
    let db = Stack::shared().fresh_database().await.unwrap();
    let f = start(&db).await;
    let base = event("post-confirmation.json");

    let mut no_sub = base.clone();
    no_sub["request"]["userAttributes"]
        .as_object_mut()
        .unwrap()
        .remove("sub");
    let mut no_email = base.clone();
    no_email["request"]["userAttributes"]
        .as_object_mut()
        .unwrap()
        .remove("email");
    let mut other_trigger = base.clone();
    other_trigger["triggerSource"] = json!("PreSignUp_SignUp");
    let mut no_attributes = base.clone();
    no_attributes["request"] = json!({});
    let mut wrong_type = base.clone();
    wrong_type["request"]["userAttributes"]["email"] = json!(42);

    let cases = [
        (no_sub, "Permanent.MissingAttribute", "`sub`"),
        (no_email, "Permanent.MissingAttribute", "`email`"),
        (
            other_trigger,
            "Permanent.UnknownTriggerSource",
            "PreSignUp_SignUp",
        ),
        (no_attributes, "Permanent.MissingAttribute", "`sub`"),
        (
            wrong_type,
            "Permanent.BadEvent",
            "not a Cognito PostConfirmation event",
        ),
        (
            json!("just a string"),
            "Permanent.UnknownTriggerSource",
            "unsupported trigger source",
        ),
    ];
    for (e, error_type, mentions) in cases {
        let inv = f.invoke(&e).await;
        let (t, m) = inv.error();
        assert_eq!(t, error_type, "{m}");
        // The answer reaches the app through Cognito: a short message; the log has the cause.
        assert!(m.len() < 100, "{m}");
        let line = f.error_line(&inv).await;
        assert!(
            line.contains(mentions),
            "{line:?} should mention {mentions:?}"
        );
    }
    assert!(rows(&db).await.is_empty());
}

#[tokio::test]
async fn hostile_strings_are_stored_verbatim_or_refused_clearly() {
    let db = Stack::shared().fresh_database().await.unwrap();
    let f = start(&db).await;
    let long = "x".repeat(10_000);
    let stored = [
        "O'Brien \"the\" `quoted`",
        "'); DROP TABLE users;--",
        "Robert'); DELETE FROM users WHERE ('1'='1",
        "🦀🔥 emoji 👩‍👩‍👧‍👦",
        "مرحبا بالعالم",
        "\u{202E}evil RTL override",
        long.as_str(),
        "tab\tnewline\nbackslash\\",
    ];
    for (i, name) in stored.iter().enumerate() {
        let mut e = signup_with_email(&unique("sub"), &format!("h{i}"), "h@example.com");
        e["request"]["userAttributes"]["name"] = json!(name);
        assert_eq!(f.invoke(&e).await.response(), &e, "{name:.40}");
    }
    let names: Vec<String> = rows(&db).await.into_iter().map(|r| r.2).collect();
    assert_eq!(
        names,
        stored.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()
    );

    let mut nul = signup_with_email(&unique("sub"), "nul", "n@example.com");
    nul["request"]["userAttributes"]["name"] = json!("a\u{0}b");
    let inv = f.invoke(&nul).await;
    assert_eq!(inv.error().0, "Permanent.InvalidAttribute");
    assert_eq!(
        inv.error().1,
        "the attribute name cannot be used: it contains a NUL character"
    );
    assert_eq!(
        rows(&db).await.len(),
        stored.len(),
        "the table survived and took nothing more"
    );
    // An exit is reported a moment after it happens: give it that moment.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(f.exit_status().is_none(), "the process lives on");
}

#[tokio::test]
async fn postgres_down_is_a_clear_error_within_five_seconds_then_recovers() {
    let stack = Stack::private("pg").unwrap();
    let db = stack.fresh_database().await.unwrap();
    stack.pg_stop();

    // Cold start with the database down: init must not fail, the invocation must.
    let f = start(&db).await;
    let e = event("post-confirmation.json");
    let inv = f.invoke_within(&e, Duration::from_secs(5)).await;
    assert!(
        inv.elapsed < Duration::from_secs(5),
        "answered after {:?}",
        inv.elapsed
    );
    let (t, m) = inv.error();
    assert_eq!(t, "Retryable.DatabaseUnavailable", "{m}");
    assert_client_safe(m, &db);
    let line = f.error_line(&inv).await;
    assert!(line.contains("could not connect to Postgres"), "{line}");

    stack.pg_start();
    assert_eq!(
        f.invoke(&e).await.response(),
        &e,
        "same process recovers once Postgres is back"
    );
    assert_eq!(rows(&db).await.len(), 1);
}

async fn start_behind(
    db: &TestDb,
    port: u16,
    connect_timeout_ms: &str,
    vars: &[(&str, &str)],
) -> Function {
    let port = port.to_string();
    let mut extra = vec![
        ("DB_PORT", port.as_str()),
        ("DB_CONNECT_TIMEOUT_MS", connect_timeout_ms),
    ];
    extra.extend_from_slice(vars);
    let env = function_env_via(db, &db.stack, Route::Direct, &extra);
    let f = Function::spawn(&function_binary("post-confirmation"), &env)
        .await
        .expect("spawn post-confirmation");
    f.wait_initialised(Duration::from_secs(20))
        .await
        .expect("initialised");
    f
}

/// A front for `db`'s Postgres (a swamped proxy, for these tests) that stalls every login.
async fn stalling_front(db: &TestDb) -> Front {
    let front = Front::start(db.stack.pg_port).await;
    front.stall_below(usize::MAX);
    front
}

#[tokio::test]
async fn a_login_that_stalls_is_tried_again_while_the_budget_lasts() {
    let db = Stack::shared().fresh_database().await.unwrap();
    // Every login made during init stalls; then only the invocation's first one.
    let front = stalling_front(&db).await;
    // The default timeout: the login that goes through (TLS, SCRAM, a new backend) must
    // finish inside it even on a busy machine, and two such attempts fit in the budget.
    let f = start_behind(&db, front.port, "1500", &[]).await;
    let during_init = front.accepted();
    front.stall_below(during_init + 1);
    // The event comes well after the init, as to an environment Lambda initialised ahead of
    // its events: Cognito's five seconds began with the event, so the function's whole
    // budget is there (the next test takes the event queued behind the slow init).
    tokio::time::sleep(shared::cold_start::QUEUED_EVENT_GAP + Duration::from_millis(500)).await;

    let e = event("post-confirmation.json");
    let inv = f.invoke(&e).await;
    assert_eq!(inv.response(), &e, "the second login went through");
    assert_eq!(rows(&db).await.len(), 1);
    assert_eq!(
        front.accepted() - during_init,
        2,
        "one stalled login, one that worked"
    );
    let logs = f.logs_of(&[&inv]).await.join("\n");
    assert!(logs.contains("database unavailable; retrying"), "{logs}");
}

/// An on-demand cold start: the event waited out the init (its stalled login, 1.5 s) inside
/// Cognito's five seconds, which Lambda's deadline does not count. What is left (5 - init -
/// 0.5 s kept back) has no room for a second 1.5 s login and the answer, so the invocation
/// answers retryable after the one stalled login rather than past Cognito's wait.
#[tokio::test]
async fn an_event_queued_behind_a_slow_init_has_only_what_is_left_of_cognitos_wait() {
    let db = Stack::shared().fresh_database().await.unwrap();
    let front = stalling_front(&db).await;
    let f = start_behind(&db, front.port, "1500", &[]).await;
    let during_init = front.accepted();
    front.stall_below(during_init + 1);
    let inv = f.invoke(&event("post-confirmation.json")).await;
    let (t, m) = inv.error();
    assert_eq!(t, "Retryable.DatabaseUnavailable", "{m}");
    assert_eq!(
        front.accepted() - during_init,
        1,
        "no second login once Cognito's wait has no room for it"
    );
    assert!(rows(&db).await.is_empty());
}

#[tokio::test]
async fn a_login_that_always_stalls_is_named_in_the_log_within_the_budget() {
    let db = Stack::shared().fresh_database().await.unwrap();
    let front = stalling_front(&db).await;
    let f = start_behind(&db, front.port, "400", &[("RESPONSE_BUDGET_MS", "2000")]).await;
    let during_init = front.accepted();
    let inv = f.invoke(&event("post-confirmation.json")).await;
    let (t, m) = inv.error();
    assert_eq!(t, "Retryable.DatabaseUnavailable", "{m}");
    let line = f.error_line(&inv).await;
    assert!(
        line.contains("timed out after 400ms"),
        "the cause, not a bare out-of-time: {line}"
    );
    // 400 ms each, and another only while one more as long and the answer fit in 2 s (about
    // three on an idle machine).
    let tries = front.accepted() - during_init;
    assert!(tries >= 2, "the invocation tried {tries} login(s)");
    assert!(rows(&db).await.is_empty());
}

/// The cases run both ways.
mod cases {
    use super::*;

    pub(super) async fn inserts_the_user_and_returns_the_event_unchanged(route: Route) {
        let db = Stack::shared().fresh_database().await.unwrap();
        let f = start_via(&db, route).await;
        let e = event("post-confirmation.json");
        let inv = f.invoke(&e).await;
        assert_eq!(inv.response(), &e, "Cognito needs its event back unchanged");
        assert_eq!(
            rows(&db).await,
            vec![(
                "8f3c2b1a-6d4e-4c1b-9a7f-2e5d8c9b0a11".to_owned(),
                "andrewbrown".to_owned(),
                "Andrew Brown".to_owned(),
                "andrew@example.com".to_owned()
            )]
        );
    }

    pub(super) async fn the_same_event_three_times_leaves_one_row(route: Route) {
        let db = Stack::shared().fresh_database().await.unwrap();
        let f = start_via(&db, route).await;
        let e = event("post-confirmation.json");
        for _ in 0..3 {
            assert_eq!(f.invoke(&e).await.response(), &e);
        }
        assert_eq!(rows(&db).await.len(), 1);
    }

    pub(super) async fn twenty_concurrent_deliveries_leave_one_row_and_all_succeed(route: Route) {
        let db = Stack::shared().fresh_database().await.unwrap();
        let mut envs = Vec::new();
        for _ in 0..20 {
            envs.push(start_via(&db, route).await);
        }
        for f in &envs {
            f.wait_initialised(Duration::from_secs(20))
                .await
                .expect("initialised");
        }
        let e = signup_with_email(&unique("sub"), "racer", "racer@example.com");
        let results = join_all(envs.iter().map(|f| f.invoke(&e))).await;
        let ok = results
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Response(_)))
            .count();
        assert_eq!(
            ok,
            20,
            "{:#?}",
            results.iter().map(|r| &r.outcome).collect::<Vec<_>>()
        );
        assert_eq!(rows(&db).await.len(), 1);
    }

    pub(super) async fn forgot_password_creates_a_missing_row_and_never_overwrites(route: Route) {
        let db = Stack::shared().fresh_database().await.unwrap();
        let f = start_via(&db, route).await;

        let mut reset = event("post-confirmation-forgot-password.json");
        assert_eq!(f.invoke(&reset).await.response(), &reset);
        assert_eq!(
            rows(&db).await.len(),
            1,
            "a lost row is healed by the reset"
        );

        reset["request"]["userAttributes"]["name"] = json!("Someone Else");
        reset["request"]["userAttributes"]["email"] = json!("changed@example.com");
        assert_eq!(f.invoke(&reset).await.response(), &reset);
        let r = rows(&db).await;
        assert_eq!(r.len(), 1);
        assert_eq!(
            (r[0].2.as_str(), r[0].3.as_str()),
            ("Andrew Brown", "andrew@example.com")
        );
    }

    pub(super) async fn a_taken_handle_is_a_clear_error_and_the_first_user_is_untouched(
        route: Route,
    ) {
        let db = Stack::shared().fresh_database().await.unwrap();
        let f = start_via(&db, route).await;
        let first_sub = unique("first");
        let first = signup_with_email(&first_sub, "Andrew", "a@example.com");
        f.invoke(&first).await.response();

        // Handles are unique without regard to case.
        let second_sub = unique("second");
        let inv = f
            .invoke(&signup_with_email(&second_sub, "andrew", "b@example.com"))
            .await;
        let (t, m) = inv.error();
        assert_eq!(t, "Permanent.HandleTaken");
        // Cognito shows the message to the person signing up: not whose handle it is.
        assert_eq!(m, "that username is already taken");
        let line = f.error_line(&inv).await;
        assert!(
            line.contains(&second_sub) && line.contains(&first_sub),
            "both subs logged: {line}"
        );

        let r = rows(&db).await;
        assert_eq!(
            r,
            vec![(
                first_sub,
                "Andrew".to_owned(),
                "Andrew Brown".to_owned(),
                "a@example.com".to_owned()
            )]
        );
    }

    /// Through PgBouncer, a Postgres restart ends only PgBouncer's server connections (the
    /// function's connection to PgBouncer lives on), so a restart of PgBouncer itself follows:
    /// that one cuts the function's own connection.
    pub(super) async fn a_restart_between_warm_invocations_is_invisible(route: Route) {
        let stack = Stack::private(match route {
            Route::Direct => "pg",
            Route::Pooler => "pg,pgbouncer",
        })
        .unwrap();
        let db = stack.fresh_database().await.unwrap();
        let f = start_via(&db, route).await;
        f.invoke(&signup_with_email(&unique("a"), "before", "a@example.com"))
            .await
            .response();

        stack.pg_restart();
        let e = signup_with_email(&unique("b"), "after", "b@example.com");
        let after = f.invoke(&e).await;
        assert_eq!(after.response(), &e);
        assert_eq!(rows(&db).await.len(), 2);
        if route == Route::Pooler {
            stack.pgbouncer_restart();
            let e = signup_with_email(&unique("c"), "later", "c@example.com");
            let later = f.invoke(&e).await;
            assert_eq!(later.response(), &e);
            assert_eq!(rows(&db).await.len(), 3);
        }
        let noticed = |l: &String| {
            l.contains("database connection lost; retrying")
                || l.contains("postgres connection ended")
        };
        let logs = f
            .logs_when(|logs| logs.iter().any(noticed), Duration::from_secs(5))
            .await;
        assert!(
            logs.iter().any(noticed),
            "the dead connection was noticed and replaced: {logs:#?}"
        );
    }

    pub(super) async fn a_lock_wait_ends_as_a_retryable_error_before_cognitos_deadline(
        route: Route,
    ) {
        let db = Stack::shared().fresh_database().await.unwrap();
        // The default statement timeout (2 s), as deployed.
        let f = start_via(&db, route).await;
        let e = event("post-confirmation.json");

        // Another session holds the table lock, as a long migration or a stuck job would.
        let mut blocker = db.admin().await.unwrap();
        let tx = blocker.transaction().await.unwrap();
        tx.batch_execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
            .await
            .unwrap();
        let inv = f.invoke_within(&e, Duration::from_secs(5)).await;
        tx.rollback().await.unwrap();

        assert!(
            inv.elapsed < Duration::from_secs(5),
            "answered after {:?}",
            inv.elapsed
        );
        let (t, m) = inv.error();
        assert_eq!(t, "Retryable.DatabaseQuery", "{m}");
        assert!(
            !m.contains("statement timeout") && !m.contains("SQLSTATE"),
            "{m}"
        );
        let line = f.error_line(&inv).await;
        assert!(line.contains("statement timeout"), "{line}");
        assert_eq!(
            f.invoke(&e).await.response(),
            &e,
            "the retry succeeds once the lock is gone"
        );
    }
}
