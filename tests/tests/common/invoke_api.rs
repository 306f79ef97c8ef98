//! A local stand-in for Lambda's Invoke API, for a function that invokes another one (the
//! custom resources' cfn-responder, which invokes the in-VPC migrations): an HTTP server on a
//! loopback port answering `POST /2015-03-31/functions/{FunctionName}/invocations` as Lambda
//! does. Each function name is served by a [`Target`]: the REAL binary run through the
//! harness's Runtime API, or a planted fault (a function error, a service error, a connection
//! closed unanswered, no answer at all, an answer delayed). Every call is recorded.
//!
//! A function process reaches it through the SDK's `AWS_ENDPOINT_URL` ([`InvokeApi::env`]) or
//! `AWS_ENDPOINT_URL_LAMBDA` ([`InvokeApi::endpoint`]). Used by cfn_responder.rs,
//! custom_resources.rs, job_logins.rs and drift_check_lister.rs.

// Each test file uses part of this.
#![allow(dead_code)]

use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use bytes::Bytes;
use harness::{Function, Outcome};
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode, body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::{net::TcpListener, task::JoinHandle};

/// The account and region of the ARNs [`InvokeApi::arn`] makes.
pub const ARN_PREFIX: &str = "arn:aws:lambda:us-east-1:123456789012:function:";

/// What answers the invocations of one function name.
#[derive(Clone)]
pub enum Target {
    /// The function's binary, invoked through the harness with this function timeout; its
    /// answer, error, crash or timeout reported as Lambda reports them.
    Function {
        function: Arc<Function>,
        timeout: Duration,
    },
    /// Lambda's report of a function error (`X-Amz-Function-Error: Unhandled`).
    FunctionError { error_type: String, message: String },
    /// A service error, as Lambda answers one itself (`ResourceNotFoundException` 404,
    /// `AccessDeniedException` 403, `TooManyRequestsException` 429, ...).
    ServiceError {
        status: u16,
        code: String,
        message: String,
    },
    /// The connection is closed without an answer: the function cannot be reached.
    Unreachable,
    /// The request is held and never answered: the caller must give up on its own.
    Silent,
    /// `then`'s answer, given only after `delay`: a function that runs long.
    Delayed { delay: Duration, then: Box<Target> },
    /// Each call takes the next of these targets; the last one stays (a function that is not
    /// ready at first, say, then answers).
    Sequence(Arc<Mutex<VecDeque<Target>>>),
}

impl Target {
    /// The function's binary with `env`, invoked with a `timeout` function timeout.
    pub async fn binary(name: &str, env: &[(String, String)], timeout: Duration) -> Self {
        let function = Function::spawn(&harness::function_binary(name), env)
            .await
            .unwrap();
        Self::Function {
            function: Arc::new(function),
            timeout,
        }
    }

    /// [`Target::Sequence`] of `targets`.
    pub fn sequence(targets: Vec<Target>) -> Self {
        Self::Sequence(Arc::new(Mutex::new(targets.into())))
    }

    /// The running function behind this target, if it is one.
    pub fn function(&self) -> Option<&Arc<Function>> {
        match self {
            Self::Function { function, .. } => Some(function),
            _ => None,
        }
    }
}

/// One request the API received.
#[derive(Debug, Clone)]
pub struct InvokeCall {
    /// The `FunctionName` of the path, decoded (a name, an ARN, or an ARN with a qualifier).
    pub function_name: String,
    /// The `X-Amz-Invocation-Type` header (absent means `RequestResponse`).
    pub invocation_type: Option<String>,
    /// The payload, as JSON (`Null` when it is not JSON).
    pub body: Value,
    /// The HTTP status answered; 0 while unanswered, or when the connection was closed.
    pub status: u16,
}

/// Which calls answer a planted `ServiceException` (500) whatever their target: the function
/// name and the payload.
type FailWhen = Arc<dyn Fn(&str, &Value) -> bool + Send + Sync>;

#[derive(Clone, Default)]
struct Shared {
    targets: Arc<Mutex<HashMap<String, Target>>>,
    calls: Arc<Mutex<Vec<InvokeCall>>>,
    fail_when: Arc<Mutex<Option<FailWhen>>>,
}

/// The server; stops when dropped.
pub struct InvokeApi {
    addr: SocketAddr,
    shared: Shared,
    accept: JoinHandle<()>,
}

impl InvokeApi {
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Shared::default();
        let accept = tokio::spawn(serve(listener, shared.clone()));
        Ok(Self {
            addr,
            shared,
            accept,
        })
    }

    /// Serves `name` with a running function, invoked with a 30 s function timeout.
    pub fn route(&self, name: &str, function: Arc<Function>) {
        self.serve(
            name,
            Target::Function {
                function,
                timeout: Duration::from_secs(30),
            },
        );
    }

    /// From now on, a call for which `planted(function name, payload)` holds answers a
    /// `ServiceException` (500) instead of reaching its target (the SDK retries it).
    pub fn fail_when(&self, planted: impl Fn(&str, &Value) -> bool + Send + Sync + 'static) {
        *self
            .shared
            .fail_when
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(planted));
    }

    /// The ARN the tests give a function of this API.
    pub fn arn(name: &str) -> String {
        format!("{ARN_PREFIX}{name}")
    }

    /// Serves `name` (and its ARN, with or without a qualifier) with `target`, in place of
    /// whatever served it before. An unknown name answers `ResourceNotFoundException`.
    pub fn serve(&self, name: &str, target: Target) {
        self.shared
            .targets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_owned(), target);
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The variables a function process needs to invoke through this API.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint().as_str()),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<InvokeCall> {
        self.shared
            .calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for InvokeApi {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// The function name a `FunctionName` path segment means: `name`, `ARN`, `ARN:qualifier`.
fn function_of(requested: &str) -> String {
    let name = requested.strip_prefix(ARN_PREFIX).unwrap_or(requested);
    name.split(':').next().unwrap_or(name).to_owned()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What Lambda answers: a status, `X-Amz-Function-Error` if any, the body; `None` to close the
/// connection unanswered.
type Answer = Option<(StatusCode, Option<&'static str>, Value, Option<String>)>;

async fn answer(target: Option<Target>, name: &str, payload: &Value) -> Answer {
    let target = match target {
        Some(Target::Sequence(queue)) => {
            let mut queue = queue.lock().unwrap_or_else(PoisonError::into_inner);
            if queue.len() > 1 {
                queue.pop_front()
            } else {
                queue.front().cloned()
            }
        }
        other => other,
    };
    let function_error = |error_type: &str, message: &str| {
        Some((
            StatusCode::OK,
            Some("Unhandled"),
            json!({"errorType": error_type, "errorMessage": message}),
            None,
        ))
    };
    match target {
        None => Some((
            StatusCode::NOT_FOUND,
            None,
            json!({"Type": "User", "message": format!("Function not found: {}", InvokeApi::arn(name))}),
            Some("ResourceNotFoundException".to_owned()),
        )),
        Some(Target::Function { function, timeout }) => {
            match function.invoke_within(payload, timeout).await.outcome {
                Outcome::Response(v) => Some((StatusCode::OK, None, v, None)),
                Outcome::Error {
                    error_type,
                    error_message,
                } => function_error(&error_type, &error_message),
                Outcome::Exited(detail) => function_error("Runtime.ExitError", &detail),
                Outcome::TimedOut => function_error(
                    "Sandbox.Timedout",
                    &format!("Task timed out after {:.2} seconds", timeout.as_secs_f64()),
                ),
            }
        }
        Some(Target::FunctionError {
            error_type,
            message,
        }) => function_error(&error_type, &message),
        Some(Target::ServiceError {
            status,
            code,
            message,
        }) => Some((
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            None,
            json!({"Type": "User", "message": message}),
            Some(code),
        )),
        Some(Target::Unreachable) => None,
        Some(Target::Silent) => std::future::pending().await,
        Some(Target::Delayed { delay, then }) => {
            tokio::time::sleep(delay).await;
            Box::pin(answer(Some(*then), name, payload)).await
        }
        Some(Target::Sequence(_)) => panic!("a sequence inside a sequence"),
    }
}

async fn serve(listener: TcpListener, shared: Shared) {
    while let Ok((stream, _)) = listener.accept().await {
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let shared = shared.clone();
                async move {
                    let path = request.uri().path().to_owned();
                    let requested = path
                        .strip_prefix("/2015-03-31/functions/")
                        .and_then(|p| p.strip_suffix("/invocations"))
                        .map(percent_decode);
                    let invocation_type = request
                        .headers()
                        .get("x-amz-invocation-type")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    let body = request
                        .into_body()
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    let payload = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let Some(requested) = requested else {
                        let mut r = Response::new(Full::new(Bytes::from("not an Invoke path")));
                        *r.status_mut() = StatusCode::BAD_REQUEST;
                        return Ok::<_, std::io::Error>(r);
                    };
                    let index = {
                        let mut calls = shared.calls.lock().unwrap_or_else(PoisonError::into_inner);
                        calls.push(InvokeCall {
                            function_name: requested.clone(),
                            invocation_type,
                            body: payload.clone(),
                            status: 0,
                        });
                        calls.len() - 1
                    };
                    let name = function_of(&requested);
                    let planted = shared
                        .fail_when
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .clone()
                        .is_some_and(|fail| fail(&name, &payload));
                    let target = if planted {
                        Some(Target::ServiceError {
                            status: 500,
                            code: "ServiceException".to_owned(),
                            message: "planted by the test".to_owned(),
                        })
                    } else {
                        shared
                            .targets
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .get(&name)
                            .cloned()
                    };
                    let answered = answer(target, &name, &payload).await;
                    if let Some((status, ..)) = &answered {
                        shared.calls.lock().unwrap_or_else(PoisonError::into_inner)[index].status =
                            status.as_u16();
                    }
                    let Some((status, function_error, body, error_code)) = answered else {
                        // Closing the connection unanswered: hyper drops it on this error.
                        return Err(std::io::Error::other("unreachable"));
                    };
                    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
                    *r.status_mut() = status;
                    let headers = r.headers_mut();
                    headers.insert("content-type", "application/json".parse().unwrap());
                    headers.insert("x-amzn-requestid", "local-invoke".parse().unwrap());
                    if let Some(kind) = function_error {
                        headers.insert("x-amz-function-error", kind.parse().unwrap());
                    }
                    if let Some(code) = error_code {
                        headers.insert("x-amzn-errortype", code.parse().unwrap());
                    }
                    Ok(r)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
