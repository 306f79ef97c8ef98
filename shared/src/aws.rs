//! AWS SDK clients, all built from `aws-config`, so `AWS_ENDPOINT_URL` (or a per-service
//! `AWS_ENDPOINT_URL_<SERVICE>`) points them at a local emulator with no code change.

use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig, timeout::TimeoutConfig};

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
