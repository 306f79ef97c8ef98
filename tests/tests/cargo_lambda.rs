//! The loop Rust Lambda users know: `cargo lambda watch` builds and serves the function, and
//! `cargo lambda invoke` sends it an event, driven here with cargo-lambda's own binaries (from
//! PATH or the project's virtual environment; skipped, saying why, when neither has it).
//!
//! Every function does its work under the watch, and each test checks the effect: a row, a
//! moved rule, a recorded drift run, a lost sign-up backfilled through drift-check's lister
//! (which invokes drift-check through another watch), the migrations applied, an answer PUT
//! to a local stand-in for CloudFormation's `ResponseURL`, a pool's trigger wired.
//!
//! cargo-lambda 1.9.2's Runtime API hands out `Lambda-Runtime-Deadline-Ms: 600000`, a deadline
//! long past: post-confirmation used to answer `Retryable.OutOfTime` ("gave up after 0ns")
//! before starting, pre-sign-up and sign-in-guard skipped their database work, and the custom
//! resources answered FAILED ("no answer within 0ns"). Each now reads such a deadline as its
//! own budget (`shared::deadline`).
//!
//! The watch serves functions by binary name only: cfn-responder, which invokes its target by
//! ARN, reaches the real schema-migrations binary through a loopback Lambda Invoke API
//! (common/invoke_api.rs) instead of through the watch.
//!
//! The watch builds with `cargo run --bin NAME` in the workspace, into the shared target dir
//! and without incremental caches, so it reuses what the other tests built: every function
//! resolves the same features (feature-union), and a function's own build compiles only it.

// The custom-resource requests' `json!` literals nest deeply.
#![recursion_limit = "256"]

use std::{
    net::{TcpListener, TcpStream},
    os::unix::process::CommandExt,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use harness::{
    Stack, TestDb, aws, event,
    fixtures::{function_env, signup, unique},
    function_binary,
    recorder::ResponseRecorder,
    stack::repo_root,
};
use serde_json::{Value, json};

#[path = "common/drift.rs"]
mod drift;
#[path = "common/invoke_api.rs"]
mod invoke_api;
#[path = "common/sg.rs"]
mod sg;
#[path = "common/user_pool.rs"]
mod user_pool;
use invoke_api::{InvokeApi, Target};

/// A PATH on which `cargo lambda` runs, or why there is none.
fn cargo_lambda_path() -> Result<String, String> {
    let venv = std::env::var_os("DB_SYNC_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv"));
    let path = std::env::var("PATH").unwrap_or_default();
    let path = format!("{}:{path}", venv.join("bin").display());
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    match Command::new(cargo)
        .args(["lambda", "--version"])
        .env("PATH", &path)
        .output()
    {
        Ok(out) if out.status.success() => Ok(path),
        Ok(out) => Err(format!(
            "`cargo lambda --version` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!("cargo did not run: {e}")),
    }
}

/// [`cargo_lambda_path`], or `None` after saying why the test is skipped.
fn cargo_lambda_or_skip() -> Option<String> {
    cargo_lambda_path()
        .inspect_err(|why| {
            println!(
                "skipped: cargo-lambda is not installed ({why}); scripts/python-env installs it"
            )
        })
        .ok()
}

/// What the watch on `port` printed (its build and the functions' log lines), kept for a
/// failure.
fn log(port: u16) -> PathBuf {
    std::env::temp_dir().join(format!("cargo-lambda-watch-{port}.log"))
}

/// `cargo lambda watch` in its own process group, ended with the group when dropped.
struct Watch {
    child: Child,
    port: u16,
    path: String,
}

impl Watch {
    fn start(path: String, env: &[(String, String)]) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| repo_root().join("target"), PathBuf::from);
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let printed = std::fs::File::create(log(port)).unwrap();
        let child = Command::new(cargo)
            .args(["lambda", "watch", "--invoke-address", "127.0.0.1"])
            .args(["--invoke-port", &port.to_string()])
            .current_dir(repo_root())
            .env("PATH", &path)
            // cargo-lambda 1.9.2's --target-dir is broken: the variable works.
            .env("CARGO_TARGET_DIR", target)
            .env("CARGO_INCREMENTAL", "0")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(printed.try_clone().unwrap())
            .stderr(printed)
            .process_group(0)
            .spawn()
            .expect("cargo lambda watch starts");
        let mut watch = Self { child, port, path };
        watch.wait_until_listening();
        watch
    }

    /// The watch opens its port after starting up; an invoke before that is refused.
    fn wait_until_listening(&mut self) {
        let started = std::time::Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "cargo lambda watch ended: {status}; see {}",
                    log(self.port).display()
                );
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(300),
                "cargo lambda watch is not listening; see {}",
                log(self.port).display()
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }

    /// `cargo lambda invoke NAME` with `event`: the answer, or what it printed on failure.
    fn invoke(&self, name: &str, event: &Value) -> Result<Value, String> {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let out = Command::new(cargo)
            .args(["lambda", "invoke", name, "--invoke-address", "127.0.0.1"])
            .args(["--invoke-port", &self.port.to_string()])
            .args([
                "--output-format",
                "json",
                "--data-ascii",
                &event.to_string(),
            ])
            .env("PATH", &self.path)
            .output()
            .expect("cargo lambda invoke runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "{}\n{stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        serde_json::from_str(stdout.trim()).map_err(|e| format!("{e}: {stdout}"))
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        // The watch, the cargo it runs and the function: one group.
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

/// Sends `event` to `name` on another thread (the invoke blocks until the watch has built it).
async fn invoke(watch: Watch, name: &'static str, event: &Value) -> (Watch, Result<Value, String>) {
    let event = event.clone();
    tokio::task::spawn_blocking(move || {
        let answer = watch.invoke(name, &event);
        (watch, answer)
    })
    .await
    .unwrap()
}

async fn rows_of(db: &TestDb, sub: &str) -> i64 {
    db.connect_as_app()
        .await
        .unwrap()
        .query_one(
            "SELECT count(*) FROM users WHERE cognito_user_id = $1",
            &[&sub],
        )
        .await
        .unwrap()
        .get(0)
}

/// The Cognito triggers under one watch, each doing work that needs its budget:
/// post-confirmation writes the row, pre-sign-up then refuses that row's handle (with no time
/// left it would let the sign-up on, as it does when the database is out of reach), and
/// sign-in-guard writes a missing row.
#[tokio::test]
async fn the_cognito_triggers_under_cargo_lambda_watch_do_their_work() {
    let Some(path) = cargo_lambda_or_skip() else {
        return;
    };
    // Built first, as every test builds them: the watch's own build then finds them done.
    function_binary("post-confirmation");
    let db = Stack::shared().fresh_database().await.unwrap();
    let env = function_env(&db, Stack::shared(), &[]);
    let watch = Watch::start(path, &env);
    let sub = uuid::Uuid::new_v4().to_string();
    let handle = unique("watch");
    let confirmed = signup(&sub, &handle);

    let (watch, answer) = invoke(watch, "post-confirmation", &confirmed).await;
    assert_eq!(
        answer.as_ref(),
        Ok(&confirmed),
        "Cognito's event, unchanged"
    );
    assert_eq!(rows_of(&db, &sub).await, 1);

    let mut taken = event("pre-sign-up.json");
    taken["request"]["userAttributes"]["preferred_username"] = json!(handle.to_uppercase());
    let (watch, answer) = invoke(watch, "pre-sign-up", &taken).await;
    let refusal = answer.expect_err("a taken handle is refused");
    assert!(refusal.contains("HandleTaken"), "{refusal}");

    let mut free = taken.clone();
    free["request"]["userAttributes"]["preferred_username"] = json!(unique("watch"));
    let (watch, answer) = invoke(watch, "pre-sign-up", &free).await;
    assert_eq!(answer.as_ref(), Ok(&free), "the event, unchanged");

    // sign-in-guard writes the row a user lacks (with no time left it would let them on
    // without it).
    let guarded = uuid::Uuid::new_v4().to_string();
    let mut sign_in = event("sign-in-guard.json");
    sign_in["userName"] = json!(unique("staff"));
    sign_in["request"]["userAttributes"]["sub"] = json!(guarded);
    let (_watch, answer) = invoke(watch, "sign-in-guard", &sign_in).await;
    assert_eq!(answer.as_ref(), Ok(&sign_in), "the event, unchanged");
    assert_eq!(rows_of(&db, &guarded).await, 1);
}

/// The security group's functions under one watch, on one database and group: sg-ip-update
/// moves andrew's rule for his signed Function URL request (the sample event), then
/// drift-check in report mode finds the rule opened by hand and leaves it.
#[tokio::test]
async fn sg_ip_update_and_drift_check_under_cargo_lambda_watch_do_their_work() {
    let Some(path) = cargo_lambda_or_skip() else {
        return;
    };
    function_binary("sg-ip-update");
    function_binary("drift-check");
    let fx = sg::Fixture::shared().await;
    let by_hand = fx.open("0.0.0.0/0").await;
    let andrews = fx.open("18.204.3.77/32").await;
    fx.add_principal(
        "andrew",
        Some(sg::ANDREW),
        false,
        Some(("18.204.3.77/32", &andrews)),
    )
    .await;
    let cognito = aws_sdk_cognitoidentityprovider::Client::new(&fx.moto.sdk_config().await);
    let pool = aws::create_pool(&cognito).await;
    let mut env = fx.env_as("function_url");
    env.push(("USER_POOL_ID".into(), pool));
    let watch = Watch::start(path, &env);

    let (watch, answer) = invoke(
        watch,
        "sg-ip-update",
        &event("sg-ip-update-function-url.json"),
    )
    .await;
    let answer = answer.unwrap();
    let body: Value = serde_json::from_str(answer["body"].as_str().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {answer}"));
    assert_eq!(answer["statusCode"], 200, "{answer}");
    assert_eq!(body["outcome"], "applied", "{body}");
    let mut ingress = fx.ingress().await;
    ingress.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        ingress,
        [
            (by_hand.clone(), "0.0.0.0/0".into(), 5432, 5432),
            (andrews, "34.201.17.5/32".into(), 5432, 5432),
        ],
        "andrew's rule moved, in place"
    );

    let (_watch, answer) =
        invoke(watch, "drift-check", &event("drift-check-schedule-v2.json")).await;
    let answer = answer.unwrap();
    assert_eq!(answer["status"], "complete", "{answer}");
    assert_eq!(answer["counts"]["unexpected"], 1, "{answer}");
    let runs: i64 = fx
        .db
        .connect_as_app()
        .await
        .unwrap()
        .query_one(
            "SELECT count(*) FROM drift_runs WHERE status = 'complete' AND mode = 'report'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(runs, 1);
    assert!(
        fx.ingress().await.iter().any(|(id, ..)| *id == by_hand),
        "report mode leaves the rule opened by hand"
    );
}

/// The custom resources under one watch, answering a local stand-in for CloudFormation's
/// `ResponseURL`: schema-migrations applies the migrations to an empty database for the
/// migrations' Create; cfn-responder relays an Update to the real schema-migrations binary
/// (through a loopback Lambda Invoke API: the watch serves functions by binary name, and
/// cfn-responder invokes its target by ARN) and PUTs its answer; pool-trigger wires
/// post-confirmation into an existing pool and PUTs its answer.
#[tokio::test]
async fn the_custom_resources_under_cargo_lambda_watch_do_their_work() {
    let Some(path) = cargo_lambda_or_skip() else {
        return;
    };
    for name in ["schema-migrations", "cfn-responder", "pool-trigger"] {
        function_binary(name);
    }
    let stack = Stack::shared();
    let db = stack.empty_database().await.unwrap();
    let cognito = aws_sdk_cognitoidentityprovider::Client::new(&stack.sdk_config().await);
    let pool = user_pool::existing_pool(&cognito, None).await;
    let record_key = user_pool::record_key(stack).await;
    let recorder = ResponseRecorder::start().await.unwrap();
    let api = InvokeApi::start().await.unwrap();
    let migrator = InvokeApi::arn("db-sync-SchemaMigrationsFunction");
    api.serve(
        "db-sync-SchemaMigrationsFunction",
        Target::binary("schema-migrations", &db.url_env(), Duration::from_secs(60)).await,
    );
    let env = function_env(
        &db,
        stack,
        &[
            ("AWS_ENDPOINT_URL_LAMBDA", &api.endpoint()),
            ("TARGET_FUNCTION_ARN", &migrator),
            ("CFN_RESPONSE_URL_ALLOW_LOOPBACK", "true"),
            ("TRIGGER_FUNCTION_ARN", user_pool::OURS),
            ("PRE_SIGN_UP_FUNCTION_ARN", user_pool::OUR_PRE_SIGN_UP),
            ("RECORD_KEY_SECRET_ARN", &record_key),
        ],
    );
    let watch = Watch::start(path, &env);

    let migrations = |kind: &str, key: &str| {
        json!({
            "RequestType": kind,
            "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:db-sync-CfnResponderFunction",
            "ResponseURL": recorder.url(key),
            "StackId": user_pool::STACK_ID,
            "RequestId": format!("{key}-request"),
            "LogicalResourceId": "SchemaMigrations",
            "ResourceType": "Custom::SchemaMigrations",
            "PhysicalResourceId": "schema-migrations",
            "ResourceProperties": {"ServiceToken": "arn", "MigrationsVersion": "3"},
        })
    };
    let (watch, answer) = invoke(watch, "schema-migrations", &migrations("Create", "direct")).await;
    let answer = answer.unwrap();
    assert_eq!(answer["status"], "SUCCESS", "{answer}");
    assert_eq!(
        answer["data"]["Version"],
        shared::migrate::latest_version(),
        "{answer}"
    );
    let versions: i64 = db
        .connect_as_app()
        .await
        .unwrap()
        .query_one("SELECT count(*) FROM refinery_schema_history", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(versions as usize, shared::migrate::embedded().len());

    let (watch, answer) = invoke(watch, "cfn-responder", &migrations("Update", "relayed")).await;
    assert_eq!(
        answer.as_ref().map(|a| &a["status"]),
        Ok(&json!("SUCCESS")),
        "{answer:?}"
    );
    let a = user_pool::answer(&recorder, "relayed").await;
    assert_eq!(a["Status"], "SUCCESS", "{a}");
    assert_eq!(
        a["Data"]["Version"],
        shared::migrate::latest_version(),
        "{a}"
    );
    assert_eq!(
        api.calls().len(),
        1,
        "cfn-responder invoked the migrations once"
    );

    let wire = user_pool::event(
        &recorder,
        "pool",
        "Create",
        None,
        user_pool::properties(&pool, "false"),
    );
    let (_watch, answer) = invoke(watch, "pool-trigger", &wire).await;
    assert_eq!(
        answer.as_ref().map(|a| &a["status"]),
        Ok(&json!("SUCCESS")),
        "{answer:?}"
    );
    let a = user_pool::answer(&recorder, "pool").await;
    assert_eq!(a["Status"], "SUCCESS", "{a}");
    let wired = user_pool::describe(&cognito, &pool).await;
    assert_eq!(
        wired.lambda_config().and_then(|c| c.post_confirmation()),
        Some(user_pool::OURS)
    );
}

/// drift-check's two halves under two watches, as deployed: the lister (the drift-check
/// binary with `DRIFT_RUNS_AS=lister`, nothing of the database) lists the pool and hands the
/// users to drift-check, which it invokes by name through the other watch's Invoke API; the
/// user whose sign-up was lost gets the row.
#[tokio::test]
async fn drift_checks_lister_under_cargo_lambda_watch_hands_the_users_over() {
    let Some(path) = cargo_lambda_or_skip() else {
        return;
    };
    function_binary("drift-check");
    let w = drift::World::shared().await;
    let alice = w.user("alice", true).await;
    w.add_row(&alice, "alice").await;
    let bob = w.user("bob", true).await;
    let check = Watch::start(
        path.clone(),
        &w.env(&[("DRIFT_MODE", "remediate"), ("DRIFT_USERS_FROM", "lister")]),
    );
    let mut env = w.moto.aws_env();
    env.extend(
        [
            ("DRIFT_RUNS_AS", "lister"),
            ("USER_POOL_ID", w.pool.as_str()),
            ("DRIFT_CHECK_FUNCTION", "drift-check"),
            ("DRIFT_HANDOVER_KEY_SECRET_ARN", w.handover_key_arn.as_str()),
            (
                "AWS_ENDPOINT_URL_LAMBDA",
                &format!("http://127.0.0.1:{}", check.port),
            ),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    let lister = Watch::start(path, &env);

    let (_lister, answer) = invoke(
        lister,
        "drift-check",
        &json!({"mode": "remediate", "trigger": "schedule"}),
    )
    .await;
    let summary = answer.unwrap();
    assert_eq!(summary["status"], "complete", "{summary:#}");
    assert_eq!(summary["trigger"], "lister:direct:schedule", "{summary:#}");
    assert_eq!(summary["actions"]["backfilled"], 1, "{summary:#}");
    assert!(
        w.user_rows().await.iter().any(|r| r.0 == bob),
        "bob's row written"
    );
    drop(check);
}
