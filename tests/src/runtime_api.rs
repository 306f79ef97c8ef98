//! A local Lambda Runtime API: starts a function's binary as Lambda does (one process is one
//! execution environment), hands it events through `/next`, and collects its responses,
//! errors, init errors and log lines.

use std::{
    collections::HashMap,
    convert::Infallible,
    path::Path,
    process::Stdio,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, Response, StatusCode, body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    net::TcpListener,
    process::Command,
    sync::{mpsc, oneshot, watch},
};

/// How one invocation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The function answered; the body parsed as JSON.
    Response(Value),
    /// The function reported an error through `/error`.
    Error {
        error_type: String,
        error_message: String,
    },
    /// The process exited before answering (crash, or a failed init).
    Exited(String),
    /// No answer by the deadline plus a grace period.
    TimedOut,
}

/// One finished invocation.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    pub outcome: Outcome,
    /// From handing the event out (or queuing it, if the function was busy) to the answer.
    pub elapsed: Duration,
}

impl Invocation {
    /// The response body; panics with the whole outcome when the invocation did not succeed.
    pub fn response(&self) -> &Value {
        match &self.outcome {
            Outcome::Response(v) => v,
            other => panic!("invocation {} did not succeed: {other:?}", self.request_id),
        }
    }

    /// The error type and message; panics when the invocation did not report an error.
    pub fn error(&self) -> (&str, &str) {
        match &self.outcome {
            Outcome::Error {
                error_type,
                error_message,
            } => (error_type, error_message),
            other => panic!("invocation {} did not fail: {other:?}", self.request_id),
        }
    }
}

struct Pending {
    request_id: String,
    body: Bytes,
    deadline_ms: u128,
    done: oneshot::Sender<Outcome>,
}

struct Api {
    function_name: String,
    queue: tokio::sync::Mutex<mpsc::Receiver<Pending>>,
    inflight: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    init_error: Mutex<Option<String>>,
    first_next: Mutex<Option<Instant>>,
}

/// Values no function may ever print or return; checked after every invocation of every
/// function the harness runs. The password in a function's `DATABASE_URL` is added by itself.
static FORBIDDEN: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Adds a secret value (a password in a Secrets Manager secret, say) to the forbidden list.
pub fn forbid(secret: &str) {
    if secret.len() >= 6 {
        FORBIDDEN.lock().unwrap().push(secret.to_owned());
    }
}

/// A running function binary: one execution environment.
pub struct Function {
    api: Arc<Api>,
    queue: mpsc::Sender<Pending>,
    logs: Arc<Mutex<Vec<String>>>,
    exited: watch::Receiver<Option<String>>,
    kill: Option<oneshot::Sender<()>>,
    spawned_at: Instant,
    pid: Option<u32>,
}

impl Function {
    /// Starts `binary` with exactly `env` (plus PATH and the variables Lambda itself sets),
    /// pointed at a fresh Runtime API on a loopback port.
    pub async fn spawn(binary: &Path, env: &[(String, String)]) -> std::io::Result<Function> {
        let name = binary
            .file_name()
            .map_or("function".into(), |n| n.to_string_lossy().into_owned());
        Self::spawn_program(&name, binary, &[], env).await
    }

    /// Like [`Function::spawn`], for any program that speaks the Runtime API (a Python
    /// handler under `awslambdaric`, say), with arguments and a function name of its own.
    pub async fn spawn_program(
        function_name: &str,
        program: &Path,
        args: &[&str],
        env: &[(String, String)],
    ) -> std::io::Result<Function> {
        for (k, v) in env {
            if k == "DATABASE_URL" {
                if let Some(pw) = v
                    .parse::<tokio_postgres::Config>()
                    .ok()
                    .and_then(|c| c.get_password().map(<[u8]>::to_vec))
                {
                    forbid(&String::from_utf8_lossy(&pw));
                }
            }
        }
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (queue, rx) = mpsc::channel(64);
        let function_name = function_name.to_owned();
        let api = Arc::new(Api {
            function_name: function_name.clone(),
            queue: tokio::sync::Mutex::new(rx),
            inflight: Mutex::new(HashMap::new()),
            init_error: Mutex::new(None),
            first_next: Mutex::new(None),
        });
        tokio::spawn(serve(listener, api.clone()));

        let mut cmd = Command::new(program);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", &function_name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{function_name}"),
            )
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let spawned_at = Instant::now();
        let mut child = cmd.spawn()?;
        let pid = child.id();

        let logs = Arc::new(Mutex::new(Vec::new()));
        let echo = std::env::var_os("HARNESS_ECHO_LOGS").is_some();
        if let Some(out) = child.stdout.take() {
            tokio::spawn(collect_lines(out, logs.clone(), echo));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(collect_lines(err, logs.clone(), echo));
        }

        let (exited_tx, exited) = watch::channel(None);
        let (kill, kill_rx) = oneshot::channel::<()>();
        let watched_logs = logs.clone();
        let watched_api = api.clone();
        tokio::spawn(async move {
            let status = tokio::select! {
                status = child.wait() => status,
                _ = kill_rx => { let _ = child.kill().await; child.wait().await }
            };
            // Give the log readers a moment to drain what the process wrote last.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let tail: Vec<String> = watched_logs
                .lock()
                .unwrap()
                .iter()
                .rev()
                .take(5)
                .rev()
                .cloned()
                .collect();
            let init = watched_api.init_error.lock().unwrap().clone();
            let _ = exited_tx.send(Some(format!(
                "process exited ({}); init error: {}; last output: {}",
                status.map_or_else(|e| e.to_string(), |s| s.to_string()),
                init.as_deref().unwrap_or("none"),
                tail.join(" | ")
            )));
        });

        Ok(Function {
            api,
            queue,
            logs,
            exited,
            kill: Some(kill),
            spawned_at,
            pid,
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

    /// Invokes with a body that need not be JSON.
    pub async fn invoke_raw(&self, body: Bytes, timeout: Duration) -> Invocation {
        let request_id = uuid::Uuid::new_v4().to_string();
        let start = Instant::now();
        if let Some(exit) = self.exited.borrow().clone() {
            return Invocation {
                request_id,
                outcome: Outcome::Exited(exit),
                elapsed: start.elapsed(),
            };
        }
        let deadline_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            + timeout;
        let (done, answer) = oneshot::channel();
        let pending = Pending {
            request_id: request_id.clone(),
            body,
            deadline_ms: deadline_ms.as_millis(),
            done,
        };
        if self.queue.send(pending).await.is_err() {
            return Invocation {
                request_id,
                outcome: Outcome::TimedOut,
                elapsed: start.elapsed(),
            };
        }
        let mut exited = self.exited.clone();
        let outcome = tokio::select! {
            answer = answer => answer.unwrap_or(Outcome::TimedOut),
            exit = exited.wait_for(Option::is_some) => Outcome::Exited(
                exit.map(|e| e.clone().unwrap_or_default()).unwrap_or_default()
            ),
            _ = tokio::time::sleep(timeout + Duration::from_secs(2)) => Outcome::TimedOut,
        };
        Invocation {
            request_id,
            outcome,
            elapsed: start.elapsed(),
        }
    }

    /// Every line the process has written to stdout and stderr so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// Time from spawning the process to its first `/next` call (the init phase), once it
    /// has made one.
    pub fn init_duration(&self) -> Option<Duration> {
        self.api
            .first_next
            .lock()
            .unwrap()
            .map(|t| t - self.spawned_at)
    }

    /// Waits until the process asks for its first event (init done) or exits.
    pub async fn wait_initialised(&self, limit: Duration) -> Option<Duration> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(d) = self.init_duration() {
                return Some(d);
            }
            if self.exited.borrow().is_some() {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        None
    }

    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Whether the process has exited, and how.
    pub fn exit_status(&self) -> Option<String> {
        self.exited.borrow().clone()
    }

    /// Stops the process and waits for it to go.
    pub async fn stop(mut self) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
        let _ = self.exited.wait_for(Option::is_some).await;
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
    }
}

async fn collect_lines<R: tokio::io::AsyncRead + Unpin>(
    r: R,
    logs: Arc<Mutex<Vec<String>>>,
    echo: bool,
) {
    let mut lines = BufReader::new(r).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if echo {
            eprintln!("{line}");
        }
        logs.lock().unwrap().push(line);
    }
}

async fn serve(listener: TcpListener, api: Arc<Api>) {
    while let Ok((stream, _)) = listener.accept().await {
        let api = api.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| route(api.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

const PREFIX: &str = "/2018-06-01/runtime";

async fn route(api: Arc<Api>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let rest = path.strip_prefix(PREFIX).unwrap_or("");
    if method == Method::GET && rest == "/invocation/next" {
        return Ok(next(&api).await);
    }
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if method == Method::POST && rest == "/init/error" {
        *api.init_error.lock().unwrap() = Some(String::from_utf8_lossy(&body).into_owned());
        return Ok(status(StatusCode::ACCEPTED));
    }
    if method == Method::POST {
        if let Some((id, kind)) = rest
            .strip_prefix("/invocation/")
            .and_then(|r| r.split_once('/'))
        {
            let outcome = match kind {
                "response" => {
                    Outcome::Response(serde_json::from_slice(&body).unwrap_or_else(|_| {
                        Value::String(String::from_utf8_lossy(&body).into_owned())
                    }))
                }
                "error" => {
                    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    Outcome::Error {
                        error_type: v["errorType"].as_str().unwrap_or_default().to_owned(),
                        error_message: v["errorMessage"].as_str().unwrap_or_default().to_owned(),
                    }
                }
                _ => return Ok(status(StatusCode::NOT_FOUND)),
            };
            if let Some(done) = api.inflight.lock().unwrap().remove(id) {
                let _ = done.send(outcome);
            }
            return Ok(status(StatusCode::ACCEPTED));
        }
    }
    Ok(status(StatusCode::NOT_FOUND))
}

async fn next(api: &Api) -> Response<Full<Bytes>> {
    api.first_next
        .lock()
        .unwrap()
        .get_or_insert_with(Instant::now);
    let Some(p) = api.queue.lock().await.recv().await else {
        return status(StatusCode::GONE);
    };
    api.inflight
        .lock()
        .unwrap()
        .insert(p.request_id.clone(), p.done);
    let arn = format!(
        "arn:aws:lambda:us-east-1:123456789012:function:{}",
        api.function_name
    );
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .header("lambda-runtime-aws-request-id", &p.request_id)
        .header("lambda-runtime-deadline-ms", p.deadline_ms.to_string())
        .header("lambda-runtime-invoked-function-arn", arn)
        .header(
            "lambda-runtime-trace-id",
            "Root=1-00000000-000000000000000000000000;Sampled=0",
        )
        .body(Full::new(p.body))
        .unwrap_or_else(|_| status(StatusCode::INTERNAL_SERVER_ERROR))
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = code;
    r
}
