//! The PUT of an answer to the pre-signed `ResponseURL`: HTTPS to S3 in production (rustls on
//! aws-lc-rs with the system's roots, as the AWS SDK's client), plain HTTP to a local recorder
//! in tests. Retried on a network error or a 5xx while time remains.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode, header};
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};

#[derive(Debug, thiserror::Error)]
pub enum PutError {
    #[error("cannot set up HTTPS (no system root certificates?): {0}")]
    Setup(std::io::Error),
    #[error("the ResponseURL is not a valid URL: {0}")]
    BadUrl(String),
    #[error("the ResponseURL answered {status}: {body}")]
    Refused { status: StatusCode, body: String },
    #[error("the PUT to the ResponseURL failed after {attempts} attempts: {last}")]
    GaveUp { attempts: u32, last: String },
}

/// Sends answers; built once per execution environment.
#[derive(Clone)]
pub struct Sender {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Sender {
    pub fn new() -> Result<Self, PutError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider)
            .map_err(PutError::Setup)?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
        })
    }

    /// PUTs `body` to `url`, trying again after a network error, a timeout or a 5xx, with
    /// each attempt bounded so that the last one ends by `until`. A 4xx is final: the URL has
    /// expired or the answer was refused, and repeating it changes nothing.
    pub async fn put(&self, url: &str, body: Vec<u8>, until: Instant) -> Result<(), PutError> {
        let uri: hyper::Uri = url.parse().map_err(|e| PutError::BadUrl(format!("{e}")))?;
        let body = Bytes::from(body);
        let mut pause = Duration::from_millis(100);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let left = until.saturating_duration_since(Instant::now());
            let attempt = tokio::time::timeout(
                left.min(Duration::from_secs(10)),
                self.attempt(&uri, body.clone()),
            )
            .await;
            let failure = match attempt {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(AttemptError::Final(e))) => return Err(e),
                Ok(Err(AttemptError::Again(e))) => e,
                Err(_) => format!("no answer within {left:?}"),
            };
            tracing::warn!(attempts, error = %failure, "answering CloudFormation failed");
            if Instant::now() + pause >= until {
                return Err(PutError::GaveUp {
                    attempts,
                    last: failure,
                });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }

    async fn attempt(&self, uri: &hyper::Uri, body: Bytes) -> Result<(), AttemptError> {
        let request = Request::builder()
            .method(Method::PUT)
            .uri(uri.clone())
            // The URL is signed for an empty content type (as AWS's own cfn-response sends it).
            .header(header::CONTENT_TYPE, "")
            .header(header::CONTENT_LENGTH, body.len())
            .body(Full::new(body))
            .map_err(|e| AttemptError::Final(PutError::BadUrl(e.to_string())))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| AttemptError::Again(error_text(&e)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response
            .into_body()
            .collect()
            .await
            .map(|b| {
                String::from_utf8_lossy(&b.to_bytes())
                    .chars()
                    .take(300)
                    .collect()
            })
            .unwrap_or_default();
        let refused = PutError::Refused { status, body };
        if status.is_server_error() {
            Err(AttemptError::Again(refused.to_string()))
        } else {
            Err(AttemptError::Final(refused))
        }
    }
}

enum AttemptError {
    Again(String),
    Final(PutError),
}

fn error_text(e: &dyn std::error::Error) -> String {
    crate::respond::error_chain(e)
}
