//! AWS SDK clients, all built the same way from one `aws-config` load per execution
//! environment, so `AWS_ENDPOINT_URL` (or a per-service `AWS_ENDPOINT_URL_<SERVICE>`) points
//! them at a local emulator with no code change:
//!
//! ```ignore
//! let sdk = shared::aws::sdk_config().await;                       // once, in State::init
//! let ec2 = aws_sdk_ec2::Client::new(&shared::aws::with_timeout(&sdk, timeout));
//! ```

use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig, timeout::TimeoutConfig};
use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// The shared SDK configuration: region, credentials and endpoints from the environment.
pub async fn sdk_config() -> SdkConfig {
    let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
    crate::cold_start::mark("sdk config");
    sdk
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
