//! moto's own API, from the tests' side: its request recorder, to see which AWS calls a
//! function made and when.

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Method, Request, Uri, header::HOST};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::Stack;

impl Stack {
    /// One call to moto's own API (`/moto-api/PATH`); returns the body. Panics on an error,
    /// as the callers are tests and the benchmark's setup.
    fn moto_api(&self, method: Method, path: &str) -> String {
        let url = format!("{}/moto-api/{path}", self.aws_endpoint);
        // The callers are sync test code and async code alike (the benchmark's runtime): the
        // request gets a thread and a runtime of its own, so it works from either.
        let answer = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .context("starting a runtime")?
                        .block_on(http_request(method, &url))
                })
                .join()
        });
        match answer {
            Ok(Ok(body)) => body,
            Ok(Err(e)) => panic!("moto {path}: {e:#}"),
            Err(_) => panic!("moto {path}: the request thread panicked"),
        }
    }

    /// Starts moto's request recorder (use a private stack: the recorder sees every client).
    pub fn start_recording(&self) {
        self.moto_api(Method::POST, "recorder/reset-recording");
        self.moto_api(Method::POST, "recorder/start-recording");
    }

    /// The API actions moto received since `start_recording`, in order (`GetSecretValue`,
    /// `AuthorizeSecurityGroupIngress`, ...).
    pub fn recorded_actions(&self) -> Vec<String> {
        self.recorded_calls()
            .into_iter()
            .map(|c| c.action)
            .collect()
    }

    /// Each request moto received since `start_recording`: its action and its body (JSON for
    /// the JSON protocols, such as Cognito's; `Null` for the query protocols). Stops the
    /// recording.
    pub fn recorded_requests(&self) -> Vec<(String, serde_json::Value)> {
        self.recorded_calls()
            .into_iter()
            .map(|c| {
                let json = serde_json::from_str(&c.body).unwrap_or_default();
                (c.action, json)
            })
            .collect()
    }

    /// The calls moto received since `start_recording`, in order, with the time each was
    /// signed and its body (stops the recording).
    pub fn recorded_calls(&self) -> Vec<RecordedCall> {
        use base64::Engine;
        self.moto_api(Method::POST, "recorder/stop-recording");
        let recording = self.moto_api(Method::GET, "recorder/download-recording");
        recording
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter_map(|req| {
                let body = req["body"].as_str().unwrap_or_default();
                let body = if req["body_encoded"] == true {
                    String::from_utf8(
                        base64::engine::general_purpose::STANDARD
                            .decode(body)
                            .ok()?,
                    )
                    .ok()?
                } else {
                    body.to_owned()
                };
                let headers = req["headers"].as_object()?;
                let header = |name: &str| {
                    headers
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(name))
                        .and_then(|(_, v)| v.as_str())
                        .map(str::to_owned)
                };
                // JSON protocols name the action in a header, query protocols in the body.
                let action = match header("X-Amz-Target") {
                    Some(target) => target.rsplit('.').next()?.to_owned(),
                    None => body
                        .split('&')
                        .find_map(|kv| kv.strip_prefix("Action="))?
                        .to_owned(),
                };
                Some(RecordedCall {
                    action,
                    amz_date: header("X-Amz-Date").unwrap_or_default(),
                    body,
                })
            })
            .collect()
    }
}

/// A bodiless HTTP/1 request to `url` (plain http); the body of a 2xx answer.
async fn http_request(method: Method, url: &str) -> anyhow::Result<String> {
    let uri: Uri = url.parse().with_context(|| format!("not a URL: {url}"))?;
    let authority = uri.authority().context("no host:port in the URL")?.clone();
    let stream = TcpStream::connect(authority.as_str())
        .await
        .with_context(|| format!("connecting to {authority}"))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = Request::builder()
        .method(method)
        .uri(uri.path_and_query().map_or("/", |p| p.as_str()))
        .header(HOST, authority.as_str())
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    let body = String::from_utf8_lossy(&body).into_owned();
    if !status.is_success() {
        bail!("{status}: {body}");
    }
    Ok(body)
}

/// One request moto's recorder kept.
#[derive(Debug, Clone)]
pub struct RecordedCall {
    /// `ListUsers`, `GetSecretValue`, ...
    pub action: String,
    /// When the client signed it (SigV4's `X-Amz-Date`, `20261124T152100Z`: whole seconds).
    pub amz_date: String,
    pub body: String,
}
