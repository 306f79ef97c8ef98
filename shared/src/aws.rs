//! AWS SDK clients, all built the same way from one `aws-config` load per execution
//! environment, so `AWS_ENDPOINT_URL` (or a per-service `AWS_ENDPOINT_URL_<SERVICE>`) points
//! them at a local emulator with no code change. Their HTTPS client trusts the roots AWS's
//! endpoints chain to, compiled in ([`AWS_ROOTS`]), instead of loading and parsing the
//! system's whole bundle (and any `SSL_CERT_DIR`) on every cold start:
//!
//! ```ignore
//! let sdk = shared::aws::sdk_config().await;                       // once, in State::init
//! let ec2 = aws_sdk_ec2::Client::new(&shared::aws::with_timeout(&sdk, timeout));
//! ```

use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig, retry::RetryConfig, timeout::TimeoutConfig};
use aws_sdk_secretsmanager::{
    config::SharedHttpClient,
    error::{DisplayErrorContext, ProvideErrorMetadata, SdkError},
};
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};

/// The roots of Amazon Trust Services, which issues the certificates of AWS's service
/// endpoints (regional, FIPS and VPC interface endpoints alike), and the Starfield root that
/// cross-signs them. Five certificates instead of the system's ~150: parsing the system bundle
/// (and reading every file of `SSL_CERT_DIR` where that is set) was a cold-start cost paid
/// before the first call. An endpoint with a certificate from any other CA (a TLS-intercepting
/// proxy, an emulator served over HTTPS) is refused; emulators over plain HTTP are unaffected.
pub const AWS_ROOTS: &[u8] = include_bytes!("../certs/aws-roots.pem");

/// The shared SDK configuration: region, credentials and endpoints from the environment.
pub async fn sdk_config() -> SdkConfig {
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
        .load()
        .await;
    crate::cold_start::mark("sdk config");
    sdk
}

/// The SDK's default HTTPS client (rustls with aws-lc) trusting only [`AWS_ROOTS`].
fn https_client() -> SharedHttpClient {
    let trust = TrustStore::empty().with_pem_certificate(AWS_ROOTS);
    let context = TlsContext::builder()
        .with_trust_store(trust)
        .build()
        // Building a context from a trust store checks nothing that can fail today; should it
        // ever, the SDK's own default (the system's roots) is still a working client.
        .unwrap_or_default();
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(context)
        .build_https()
}

/// Timeouts for one SDK operation: the whole call, retries included, and each attempt, so
/// that one slow attempt still leaves room for a retry.
pub fn operation_timeouts(total: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .operation_timeout(total)
        .operation_attempt_timeout(total / 2)
        .connect_timeout(total / 2)
        .build()
}

/// The shared configuration with [`operation_timeouts`] of `timeout`: what every client is
/// built from (`Client::new(&with_timeout(&sdk, t))`), so each call ends within its budget.
pub fn with_timeout(sdk: &SdkConfig, timeout: Duration) -> SdkConfig {
    sdk.to_builder()
        .timeout_config(operation_timeouts(timeout))
        .build()
}

/// The shared configuration for a call that must never reach its service twice, such as a
/// Lambda `Invoke` whose first attempt may already be running the function: one attempt, no
/// SDK retry (the SDK would retry a timed-out attempt as transient), and the whole `timeout`
/// for it. Only the caller may try again, and only on an answer proving the call did not run
/// (Lambda's `TooManyRequestsException`).
pub fn single_attempt(sdk: &SdkConfig, timeout: Duration) -> SdkConfig {
    sdk.to_builder()
        .timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(timeout)
                .operation_attempt_timeout(timeout)
                .connect_timeout(timeout)
                .build(),
        )
        .retry_config(RetryConfig::disabled())
        .build()
}

/// An SDK error as one readable line. A service error says all it has in its code and message;
/// its full context would add the raw HTTP response (headers, body) to every log line, row and
/// error message that quotes it. Other failures (a timeout, a refused connection) keep their
/// chain of causes, which is where their story is.
pub fn error_line<E, R>(e: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match (e, e.code(), e.message()) {
        (SdkError::ServiceError(_), Some(code), Some(message)) => format!("{code}: {message}"),
        (SdkError::ServiceError(_), Some(code), None) => code.to_owned(),
        _ => DisplayErrorContext(e).to_string(),
    }
}

/// Whether an SDK call may succeed if made again later: the network, a timeout, throttling or
/// AWS's own fault. A missing resource, a missing permission or a bad request never is.
pub fn is_transient<E, R>(e: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    match e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(_) => matches!(
            e.code(),
            Some(
                "RequestLimitExceeded"
                    | "Throttling"
                    | "ThrottlingException"
                    | "TooManyRequestsException"
                    | "InternalError"
                    | "InternalErrorException"
                    | "InternalFailure"
                    | "InternalServiceError"
                    | "ServiceUnavailable"
                    | "Unavailable"
            )
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use rustls_pki_types::{CertificateDer, pem::PemObject};

    use super::AWS_ROOTS;

    #[test]
    fn the_compiled_in_roots_are_the_five_aws_roots_and_all_parse() {
        let certs: Vec<CertificateDer<'_>> = CertificateDer::pem_slice_iter(AWS_ROOTS)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(certs.len(), 5);
        let mut store = rustls::RootCertStore::empty();
        let (added, rejected) = store.add_parsable_certificates(certs);
        assert_eq!((added, rejected), (5, 0));
    }
}
