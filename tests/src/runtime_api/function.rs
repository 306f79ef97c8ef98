//! A function as Lambda runs it: one process (one execution environment) behind a Runtime API
//! of its own. Every invocation's answer, the init error and every line the process prints are
//! checked against the forbidden values; a leak fails the test.

use std::{
    net::SocketAddr,
    path::Path,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use serde_json::Value;

use super::{Invocation, Outcome, process::Process, server::Server};
use crate::leaks::{self, Leak};

/// A running function binary: one execution environment.
pub struct Function {
    name: String,
    server: Server,
    process: Process,
    checked: Mutex<Checked>,
}

/// How far the leak check has read.
#[derive(Default)]
struct Checked {
    lines: usize,
    init_error: bool,
}

impl Function {
    /// Starts `binary` with exactly `env` (plus PATH and the variables Lambda itself sets),
    /// pointed at a fresh Runtime API on a loopback port.
    pub async fn spawn(binary: &Path, env: &[(String, String)]) -> std::io::Result<Function> {
        let name = binary
            .file_name()
            .map_or("function".into(), |n| n.to_string_lossy().into_owned());
        Self::spawn_program(&name, binary, &[], &crate::stack::as_job_login(&name, env)).await
    }

    /// Like [`Function::spawn`], for any program that speaks the Runtime API (a Python
    /// handler under `awslambdaric`, say), with arguments and a function name of its own.
    pub async fn spawn_program(
        function_name: &str,
        program: &Path,
        args: &[&str],
        env: &[(String, String)],
    ) -> std::io::Result<Function> {
        forbid_database_password(env);
        let server = Server::start(function_name).await?;
        let mut vars = lambda_env(function_name, server.addr());
        vars.extend_from_slice(env);
        let process = Process::spawn(program, args, vars).await?;
        Ok(Function {
            name: function_name.to_owned(),
            server,
            process,
            checked: Mutex::new(Checked::default()),
        })
    }

    /// Invokes with a 30 s deadline.
    pub async fn invoke(&self, event: &Value) -> Invocation {
        self.invoke_within(event, Duration::from_secs(30)).await
    }

    /// Invokes with the given function timeout (sent as the deadline header).
    pub async fn invoke_within(&self, event: &Value, timeout: Duration) -> Invocation {
        self.invoke_raw(Bytes::from(event.to_string()), timeout)
            .await
    }

    /// Invokes with a body that need not be JSON. Panics when the answer, or any line the
    /// process has printed so far, holds a forbidden value.
    pub async fn invoke_raw(&self, body: Bytes, timeout: Duration) -> Invocation {
        let invocation = self.run(body, timeout).await;
        self.assert_no_leak(Some(&invocation));
        invocation
    }

    async fn run(&self, body: Bytes, timeout: Duration) -> Invocation {
        let request_id = uuid::Uuid::new_v4().to_string();
        let start = Instant::now();
        let finished = |outcome| Invocation {
            request_id: request_id.clone(),
            outcome,
            elapsed: start.elapsed(),
        };
        if let Some(exit) = self.exit_status() {
            return finished(Outcome::Exited(exit));
        }
        let deadline = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            + timeout;
        let Some(answer) = self
            .server
            .submit(&request_id, body, deadline.as_millis())
            .await
        else {
            return finished(Outcome::TimedOut);
        };
        let outcome = tokio::select! {
            answer = answer => answer.unwrap_or(Outcome::TimedOut),
            status = self.process.wait() => Outcome::Exited(self.exit_report(&status)),
            _ = tokio::time::sleep(timeout + Duration::from_secs(2)) => Outcome::TimedOut,
        };
        finished(outcome)
    }

    /// Every line the process has written to stdout and stderr so far.
    pub fn logs(&self) -> Vec<String> {
        self.process.logs().clone()
    }

    /// Every line written so far, once `ready` holds for them (or after `limit`). A line the
    /// function printed just before it answered can reach the harness just after the answer:
    /// a test that looks for it waits for it here instead of reading [`Function::logs`] at once.
    pub async fn logs_when(
        &self,
        ready: impl Fn(&[String]) -> bool,
        limit: Duration,
    ) -> Vec<String> {
        let start = Instant::now();
        loop {
            let logs = self.logs();
            if ready(&logs) || start.elapsed() >= limit {
                return logs;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// [`Function::logs_when`] every invocation in `invocations` has a line carrying its
    /// request id (the runtime puts it on every line of an invocation).
    pub async fn logs_of(&self, invocations: &[&Invocation]) -> Vec<String> {
        let ids: Vec<&str> = invocations.iter().map(|i| i.request_id.as_str()).collect();
        self.logs_when(
            |logs| ids.iter().all(|id| logs.iter().any(|l| l.contains(id))),
            Duration::from_secs(5),
        )
        .await
    }

    /// The log line in which the function reported `invocation`'s error (`"outcome":"error"`):
    /// where the detail lives that the answer, which may reach a client, leaves out.
    pub async fn error_line(&self, invocation: &Invocation) -> String {
        let is_it =
            |l: &String| l.contains(&invocation.request_id) && l.contains("\"outcome\":\"error\"");
        self.logs_when(|logs| logs.iter().any(is_it), Duration::from_secs(5))
            .await
            .into_iter()
            .find(is_it)
            .unwrap_or_else(|| panic!("no error line for {}", invocation.request_id))
    }

    /// Time from spawning the process to its first `/next` call (the init phase), once it
    /// has made one.
    pub fn init_duration(&self) -> Option<Duration> {
        self.server
            .first_next()
            .map(|t| t - self.process.spawned_at())
    }

    /// Waits until the process asks for its first event (init done) or exits.
    pub async fn wait_initialised(&self, limit: Duration) -> Option<Duration> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(d) = self.init_duration() {
                return Some(d);
            }
            if self.process.exit().is_some() {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        None
    }

    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// Whether the process has exited, and how.
    pub fn exit_status(&self) -> Option<String> {
        self.process.exit().map(|status| self.exit_report(&status))
    }

    fn exit_report(&self, status: &str) -> String {
        let tail = {
            let logs = self.process.logs();
            let from = logs.len().saturating_sub(5);
            logs[from..].join(" | ")
        };
        format!(
            "process exited ({status}); init error: {}; last output: {tail}",
            self.server.init_error().as_deref().unwrap_or("none"),
        )
    }

    /// Stops the process and waits for it to go. Panics when a line it printed holds a
    /// forbidden value.
    pub async fn stop(mut self) {
        self.process.kill();
        self.process.wait().await;
        self.assert_no_leak(None);
    }

    /// Panics naming every leak in `invocation` and in what the process printed (and posted as
    /// its init error) since the last check.
    fn assert_no_leak(&self, invocation: Option<&Invocation>) {
        let forbidden = leaks::forbidden();
        let mut found: Vec<Leak> = Vec::new();
        for (place, text) in invocation.map_or_else(Vec::new, |i| i.texts(&self.name)) {
            found.extend(leaks::scan(|| place, &text, &forbidden));
        }
        {
            let mut checked = self.checked.lock().unwrap_or_else(PoisonError::into_inner);
            if !checked.init_error {
                if let Some(error) = self.server.init_error() {
                    checked.init_error = true;
                    let place = || format!("the init error of {}", self.name);
                    found.extend(leaks::scan(place, &error, &forbidden));
                }
            }
            let logs = self.process.logs();
            for (i, line) in logs.iter().enumerate().skip(checked.lines) {
                let place = || {
                    let pid = self.pid().map_or("?".to_owned(), |p| p.to_string());
                    format!("log line {} of {} (pid {pid})", i + 1, self.name)
                };
                found.extend(leaks::scan(place, line, &forbidden));
            }
            checked.lines = logs.len();
        }
        leaks::assert_none(&found);
    }
}

impl Drop for Function {
    /// Stops the process; unless the test is already failing, reads what it printed last and
    /// checks it for leaks.
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.process.kill();
            return;
        }
        self.process.kill_and_wait_blocking();
        self.assert_no_leak(None);
    }
}

/// The variables Lambda sets in every execution environment.
fn lambda_env(function_name: &str, api: SocketAddr) -> Vec<(String, String)> {
    [
        ("AWS_LAMBDA_RUNTIME_API", api.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME", function_name.to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_owned()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{function_name}"),
        ),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "local".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The password of a `DATABASE_URL` in `env` is forbidden like any registered secret.
fn forbid_database_password(env: &[(String, String)]) {
    let password = env
        .iter()
        .filter(|(k, _)| k == "DATABASE_URL")
        .filter_map(|(_, v)| v.parse::<tokio_postgres::Config>().ok())
        .filter_map(|c| c.get_password().map(<[u8]>::to_vec));
    for pw in password {
        leaks::forbid(&String::from_utf8_lossy(&pw));
    }
}
