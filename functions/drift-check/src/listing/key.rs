//! drift-check's copy of the stack's hand-over key (`DRIFT_HANDOVER_KEY_SECRET_ARN`), read
//! from its secret on the first hand-over and kept for the execution environment. A hand-over
//! is opened with it before anything reaches the database.

use shared::signing::SigningKey;
use tokio::sync::OnceCell;

use super::HandOverError;

/// Where the key comes from, and the key once read.
pub struct HandOverKey {
    secrets: aws_sdk_secretsmanager::Client,
    secret_arn: String,
    key: OnceCell<SigningKey>,
}

impl HandOverKey {
    pub fn new(secrets: aws_sdk_secretsmanager::Client, secret_arn: String) -> Self {
        Self {
            secrets,
            secret_arn,
            key: OnceCell::new(),
        }
    }

    /// The key, read from the secret on first use (tried again on the next hand-over if that
    /// failed).
    pub async fn get(&self) -> Result<&SigningKey, HandOverError> {
        self.key
            .get_or_try_init(|| async {
                let answer = self
                    .secrets
                    .get_secret_value()
                    .secret_id(&self.secret_arn)
                    .send()
                    .await
                    .map_err(|e| HandOverError::NoKey(shared::aws::error_line(&e)))?;
                SigningKey::from_secret(answer.secret_string).map_err(HandOverError::NoKey)
            })
            .await
    }
}
