//! A local stand-in for the pre-signed S3 URL a custom resource answers CloudFormation at:
//! an HTTP server on a loopback port that records every request made to it.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::{net::TcpListener, task::JoinHandle};

/// One request the recorder received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// The path and query, as the URL handed out named them.
    pub target: String,
    /// The `content-type` header, if one was sent.
    pub content_type: Option<String>,
    pub content_length: Option<usize>,
    pub body: Bytes,
}

impl Recorded {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// The recording server; stops when dropped.
pub struct ResponseRecorder {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Recorded>>>,
    accept: JoinHandle<()>,
}

impl ResponseRecorder {
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let accept = tokio::spawn(serve(listener, seen.clone()));
        Ok(Self { addr, seen, accept })
    }

    /// A URL shaped like a pre-signed one, unique to `key`.
    pub fn url(&self, key: &str) -> String {
        format!(
            "http://{}/cloudformation-responses/{key}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=local",
            self.addr
        )
    }

    /// Every request to `key`'s URL so far.
    pub fn requests(&self, key: &str) -> Vec<Recorded> {
        let prefix = format!("/cloudformation-responses/{key}?");
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|r| r.target.starts_with(&prefix))
            .cloned()
            .collect()
    }

    /// The first request to `key`'s URL, waiting up to `limit` for it.
    pub async fn wait_for(&self, key: &str, limit: Duration) -> Option<Recorded> {
        let start = Instant::now();
        loop {
            if let Some(r) = self.requests(key).into_iter().next() {
                return Some(r);
            }
            if start.elapsed() >= limit {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for ResponseRecorder {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn serve(listener: TcpListener, seen: Arc<Mutex<Vec<Recorded>>>) {
    while let Ok((stream, _)) = listener.accept().await {
        let seen = seen.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let seen = seen.clone();
                async move {
                    let header = |name: &str| {
                        request
                            .headers()
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned)
                    };
                    let method = request.method().to_string();
                    let target = request
                        .uri()
                        .path_and_query()
                        .map_or_else(String::new, |p| p.to_string());
                    let content_type = header("content-type");
                    let content_length = header("content-length").and_then(|v| v.parse().ok());
                    let body = request
                        .into_body()
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    seen.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(Recorded {
                            method,
                            target,
                            content_type,
                            content_length,
                            body,
                        });
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
