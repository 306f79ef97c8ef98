//! The lister's copy of the stack's hand-over key (`DRIFT_HANDOVER_KEY_SECRET_ARN`), which
//! signs every hand-over ([`crate::listing::seal`]). Read from its secret on the first listing
//! and kept for the execution environment; a failure to read it fails that listing's `begin`
//! (the tick still runs the rules half). Its own call, so the lister's role is granted the
//! read beside the code that makes it.

use shared::signing::SigningKey;
use tokio::sync::OnceCell;

/// Where the key comes from, and the key once read.
pub struct ListerKey {
    secrets: aws_sdk_secretsmanager::Client,
    secret_arn: String,
    key: OnceCell<SigningKey>,
}

impl ListerKey {
    pub fn new(secrets: aws_sdk_secretsmanager::Client, secret_arn: String) -> Self {
        Self {
            secrets,
            secret_arn,
            key: OnceCell::new(),
        }
    }

    /// The key, read from the secret on first use; why not, naming the secret.
    pub async fn get(&self) -> Result<&SigningKey, String> {
        self.key
            .get_or_try_init(|| async {
                let answer = self
                    .secrets
                    .get_secret_value()
                    .secret_id(&self.secret_arn)
                    .send()
                    .await
                    .map_err(|e| shared::aws::error_line(&e))?;
                SigningKey::from_secret(answer.secret_string)
            })
            .await
            .map_err(|e| format!("the hand-over key ({}): {e}", self.secret_arn))
    }
}
