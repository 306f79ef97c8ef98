//! The loop Rust Lambda users know: `cargo lambda watch` builds and serves the function, and
//! `cargo lambda invoke` sends it an event, driven here with cargo-lambda's own binaries (from
//! PATH or the project's virtual environment; skipped, saying why, when neither has it).
//!
//! cargo-lambda 1.9.2's Runtime API hands out `Lambda-Runtime-Deadline-Ms: 600000`, a deadline
//! long past: post-confirmation used to answer `Retryable.OutOfTime` ("gave up after 0ns")
//! before starting, and pre-sign-up and sign-in-guard skipped their database work. Each now
//! reads such a deadline as its own budget (`shared::deadline`).
//!
//! The watch builds with `cargo run --bin NAME` in the workspace, into the shared target dir
//! and without incremental caches, so it reuses what the other tests built: every function
//! resolves the same features (feature-union), and a function's own build compiles only it.

use std::{
    net::{TcpListener, TcpStream},
    os::unix::process::CommandExt,
    path::PathBuf,
    process::{Child, Command, Stdio},
};

use harness::{
    Stack, TestDb, event,
    fixtures::{function_env, signup, unique},
    function_binary,
    stack::repo_root,
};
use serde_json::{Value, json};

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

/// What the watch printed (its build and the function's log lines), kept for a failure.
fn log() -> PathBuf {
    std::env::temp_dir().join("cargo-lambda-watch.log")
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
        let printed = std::fs::File::create(log()).unwrap();
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
                    log().display()
                );
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(300),
                "cargo lambda watch is not listening; see {}",
                log().display()
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
    let path = match cargo_lambda_path() {
        Ok(path) => path,
        Err(why) => {
            println!(
                "skipped: cargo-lambda is not installed ({why}); scripts/python-env installs it"
            );
            return;
        }
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
