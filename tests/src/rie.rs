//! AWS's Runtime Interface Emulator (`aws-lambda-rie`) as a second driver: the functions'
//! binaries run under AWS's own implementation of the Runtime API, without Docker, beside
//! our [`crate::runtime_api`]. The emulator ships in the SAM CLI package
//! (`samcli/local/rapid/`); `AWS_LAMBDA_RIE` names another copy.
//!
//! The emulator starts the bootstrap itself, serves its Runtime API on one loopback port and
//! takes invocations over HTTP on another (`POST /2015-03-31/functions/function/invocations`).
//! What it answers and what the process prints are checked for forbidden values, as in our
//! harness.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, header::HOST};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, BufReader},
    net::TcpStream,
    process::{Child, Command},
};

use crate::leaks;

/// The emulator for this machine's architecture: `AWS_LAMBDA_RIE`, or the copy in the SAM
/// CLI package of `python3` (`pip install aws-sam-cli`).
pub fn binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("AWS_LAMBDA_RIE") {
        return Ok(path.into());
    }
    let arch = match std::env::consts::ARCH {
        "aarch64" => "arm64",
        other => other,
    };
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import os, samcli; print(os.path.dirname(samcli.__file__))",
        ])
        .output()
        .context("running python3 to find the SAM CLI")?;
    if !out.status.success() {
        bail!(
            "the SAM CLI is not installed for python3 (pip install aws-sam-cli), or set \
             AWS_LAMBDA_RIE: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let dir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let path = Path::new(&dir).join(format!("local/rapid/aws-lambda-rie-{arch}"));
    anyhow::ensure!(path.is_file(), "no emulator at {}", path.display());
    Ok(path)
}

/// One emulator and the function process it runs: one execution environment.
pub struct Rie {
    name: String,
    child: Child,
    invoke_addr: String,
    logs: Arc<Mutex<Vec<String>>>,
    checked_lines: Mutex<usize>,
}

/// The emulator's answer to one invocation, as HTTP gave it.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body, parsed as JSON (a JSON string holding the raw text when it is not JSON).
    pub body: Value,
}

impl Answer {
    /// The function's error type and message, when the body is Lambda's error shape. The
    /// emulator answers an error with status 200, like a response, and no
    /// `X-Amz-Function-Error` header: only the body tells them apart.
    pub fn error(&self) -> Option<(&str, &str)> {
        Some((
            self.body.get("errorType")?.as_str()?,
            self.body.get("errorMessage")?.as_str()?,
        ))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Rie {
    /// Starts the emulator with `bootstrap`, which it runs with exactly `env` (plus PATH) and
    /// the variables it sets itself; waits until it takes invocations.
    pub async fn spawn(bootstrap: &Path, env: &[(String, String)]) -> anyhow::Result<Rie> {
        let name = bootstrap
            .file_name()
            .map_or("function".into(), |n| n.to_string_lossy().into_owned());
        let invoke_addr = format!("127.0.0.1:{}", free_port()?);
        let api_addr = format!("127.0.0.1:{}", free_port()?);
        let mut child = Command::new(binary()?)
            .arg("--runtime-interface-emulator-address")
            .arg(&invoke_addr)
            .arg("--runtime-api-address")
            .arg(&api_addr)
            .arg(bootstrap)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting aws-lambda-rie")?;
        let logs = Arc::new(Mutex::new(Vec::new()));
        if let Some(out) = child.stdout.take() {
            collect(out, logs.clone());
        }
        if let Some(err) = child.stderr.take() {
            collect(err, logs.clone());
        }
        for _ in 0..200 {
            if TcpStream::connect(&invoke_addr).await.is_ok() {
                return Ok(Rie {
                    name,
                    child,
                    invoke_addr,
                    logs,
                    checked_lines: Mutex::new(0),
                });
            }
            if let Some(status) = child.try_wait()? {
                bail!("aws-lambda-rie exited ({status}): {:?}", lock(&logs));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        bail!("aws-lambda-rie did not listen on {invoke_addr}")
    }

    /// Invokes with `event`. Panics when the answer, or any line printed so far, holds a
    /// forbidden value.
    pub async fn invoke(&self, event: &Value) -> anyhow::Result<Answer> {
        let answer = self.post(Bytes::from(event.to_string())).await?;
        let forbidden = leaks::forbidden();
        let mut found: Vec<leaks::Leak> = Vec::new();
        let place = || format!("the answer of {} under aws-lambda-rie", self.name);
        found.extend(leaks::scan(place, &answer.body.to_string(), &forbidden));
        found.extend(self.unchecked_lines(&forbidden));
        leaks::assert_none(&found);
        Ok(answer)
    }

    async fn post(&self, body: Bytes) -> anyhow::Result<Answer> {
        let stream = TcpStream::connect(&self.invoke_addr).await?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let request = Request::builder()
            .method(Method::POST)
            .uri("/2015-03-31/functions/function/invocations")
            .header(HOST, &self.invoke_addr)
            .body(Full::new(body))?;
        let response = sender.send_request(request).await?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let bytes = response.into_body().collect().await?.to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    /// Every line the emulator and the function have printed so far.
    pub fn logs(&self) -> Vec<String> {
        lock(&self.logs).clone()
    }

    /// Every line so far, once `ready` holds for them (or after `limit`): a line can reach us
    /// just after the answer it belongs to.
    pub async fn logs_when(
        &self,
        ready: impl Fn(&[String]) -> bool,
        limit: Duration,
    ) -> Vec<String> {
        let start = std::time::Instant::now();
        loop {
            let logs = self.logs();
            if ready(&logs) || start.elapsed() >= limit {
                return logs;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn unchecked_lines(&self, forbidden: &[String]) -> Vec<leaks::Leak> {
        let logs = self.logs();
        let mut checked = lock(&self.checked_lines);
        let found = logs
            .iter()
            .enumerate()
            .skip(*checked)
            .filter_map(|(i, line)| {
                let place = || format!("log line {} of {} under aws-lambda-rie", i + 1, self.name);
                leaks::scan(place, line, forbidden)
            })
            .collect();
        *checked = logs.len();
        found
    }
}

impl Drop for Rie {
    /// Stops the emulator (and with it the function); unless the test is already failing,
    /// checks what was printed last.
    fn drop(&mut self) {
        // SIGTERM, not SIGKILL: the emulator then kills the function process it started,
        // which would otherwise outlive it.
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            for _ in 0..100 {
                if !matches!(self.child.try_wait(), Ok(None)) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.start_kill();
        if !std::thread::panicking() {
            leaks::assert_none(&self.unchecked_lines(&leaks::forbidden()));
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn collect(stream: impl AsyncRead + Unpin + Send + 'static, logs: Arc<Mutex<Vec<String>>>) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            lock(&logs).push(line);
        }
    });
}
