//! The Lambda Runtime API over HTTP on a loopback port: hands queued events out on `/next`,
//! matches each `/response` or `/error` to the invocation waiting for it, and records the init
//! error and when the process first asked for work.

use std::{
    collections::HashMap,
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    time::Instant,
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, Response, StatusCode, body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::{
    net::TcpListener,
    sync::{mpsc, oneshot},
    task::JoinHandle,
};

use super::Outcome;

const PREFIX: &str = "/2018-06-01/runtime";

/// An event waiting to be handed out, and where its answer goes.
struct Pending {
    request_id: String,
    body: Bytes,
    deadline_ms: u128,
    done: oneshot::Sender<Outcome>,
}

/// What the HTTP handlers share.
struct State {
    function_name: String,
    queue: tokio::sync::Mutex<mpsc::Receiver<Pending>>,
    inflight: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    init_error: Mutex<Option<String>>,
    first_next: Mutex<Option<Instant>>,
}

/// One function's Runtime API, served until dropped.
pub(super) struct Server {
    addr: SocketAddr,
    queue: mpsc::Sender<Pending>,
    state: Arc<State>,
    accept: JoinHandle<()>,
}

impl Server {
    /// Listens on a free loopback port for the function named `function_name`.
    pub(super) async fn start(function_name: &str) -> std::io::Result<Server> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (queue, rx) = mpsc::channel(64);
        let state = Arc::new(State {
            function_name: function_name.to_owned(),
            queue: tokio::sync::Mutex::new(rx),
            inflight: Mutex::new(HashMap::new()),
            init_error: Mutex::new(None),
            first_next: Mutex::new(None),
        });
        let accept = tokio::spawn(serve(listener, state.clone()));
        Ok(Server {
            addr,
            queue,
            state,
            accept,
        })
    }

    /// The `host:port` to give the process as `AWS_LAMBDA_RUNTIME_API`.
    pub(super) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queues an event; the receiver gets the function's answer. `None` once the server is
    /// gone.
    pub(super) async fn submit(
        &self,
        request_id: &str,
        body: Bytes,
        deadline_ms: u128,
    ) -> Option<oneshot::Receiver<Outcome>> {
        let (done, answer) = oneshot::channel();
        let pending = Pending {
            request_id: request_id.to_owned(),
            body,
            deadline_ms,
            done,
        };
        self.queue.send(pending).await.ok()?;
        Some(answer)
    }

    /// What the process posted to `/init/error`, if anything.
    pub(super) fn init_error(&self) -> Option<String> {
        lock(&self.state.init_error).clone()
    }

    /// When the process first asked for an event (the end of its init phase).
    pub(super) fn first_next(&self) -> Option<Instant> {
        *lock(&self.state.first_next)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn serve(listener: TcpListener, state: Arc<State>) {
    while let Ok((stream, _)) = listener.accept().await {
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| route(state.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn route(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let rest = path.strip_prefix(PREFIX).unwrap_or("");
    if method == Method::GET && rest == "/invocation/next" {
        return Ok(next(&state).await);
    }
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if method == Method::POST && rest == "/init/error" {
        *lock(&state.init_error) = Some(String::from_utf8_lossy(&body).into_owned());
        return Ok(status(StatusCode::ACCEPTED));
    }
    if method == Method::POST {
        if let Some((id, kind)) = rest
            .strip_prefix("/invocation/")
            .and_then(|r| r.split_once('/'))
        {
            let Some(outcome) = answer(kind, &body) else {
                return Ok(status(StatusCode::NOT_FOUND));
            };
            if let Some(done) = lock(&state.inflight).remove(id) {
                let _ = done.send(outcome);
            }
            return Ok(status(StatusCode::ACCEPTED));
        }
    }
    Ok(status(StatusCode::NOT_FOUND))
}

/// The outcome a `/response` or `/error` body stands for.
fn answer(kind: &str, body: &[u8]) -> Option<Outcome> {
    match kind {
        "response" => Some(Outcome::Response(
            serde_json::from_slice(body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned())),
        )),
        "error" => {
            let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            Some(Outcome::Error {
                error_type: v["errorType"].as_str().unwrap_or_default().to_owned(),
                error_message: v["errorMessage"].as_str().unwrap_or_default().to_owned(),
            })
        }
        _ => None,
    }
}

async fn next(state: &State) -> Response<Full<Bytes>> {
    lock(&state.first_next).get_or_insert_with(Instant::now);
    let Some(p) = state.queue.lock().await.recv().await else {
        return status(StatusCode::GONE);
    };
    lock(&state.inflight).insert(p.request_id.clone(), p.done);
    let arn = format!(
        "arn:aws:lambda:us-east-1:123456789012:function:{}",
        state.function_name
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
