//! AWS SDK clients, all built from `aws-config`, so `AWS_ENDPOINT_URL` (or a per-service
//! `AWS_ENDPOINT_URL_<SERVICE>`) points them at a local emulator with no code change.

use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig, timeout::TimeoutConfig};
use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// The shared SDK configuration: region, credentials and endpoints from the environment.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
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

/// A Secrets Manager client whose calls end within `timeout`.
pub fn secrets_client(sdk: &SdkConfig, timeout: Duration) -> aws_sdk_secretsmanager::Client {
    let config = aws_sdk_secretsmanager::config::Builder::from(sdk)
        .timeout_config(operation_timeouts(timeout))
        .build();
    aws_sdk_secretsmanager::Client::from_conf(config)
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
