//! The stack's record key, which signs the physical ids this function makes (HMAC-SHA256), so
//! that a Delete can tell an id it made, which CloudFormation holds and hands back, from one
//! someone else wrote. The key is a secret the stack generates and only this function's role
//! may read; it is fetched on the first request that needs it, so a failure to read it is a
//! FAILED answer naming the secret rather than a cold start that never answers.

use std::fmt;

use aws_sdk_secretsmanager::Client;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tokio::sync::OnceCell;

use crate::Error;

/// The fewest bytes a key may have (the template generates 64 characters).
const MIN_KEY_BYTES: usize = 32;

/// A key that never shows itself in `Debug` or logs.
pub struct RecordKey(Vec<u8>);

impl RecordKey {
    /// A key of at least 32 bytes; `None` for a shorter one.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Option<Self> {
        let bytes = bytes.into();
        (bytes.len() >= MIN_KEY_BYTES).then_some(Self(bytes))
    }

    fn mac(&self, message: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        mac.update(message.as_bytes());
        mac
    }

    /// The signature of `message`, in URL-safe base64 (43 characters, no `/`).
    pub fn sign(&self, message: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(message).finalize().into_bytes())
    }

    /// Whether `signature` is this key's signature of `message` (compared in constant time).
    pub fn verifies(&self, message: &str, signature: &str) -> bool {
        URL_SAFE_NO_PAD
            .decode(signature)
            .is_ok_and(|bytes| self.mac(message).verify_slice(&bytes).is_ok())
    }
}

impl fmt::Debug for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecordKey(<redacted>)")
    }
}

/// Where the key comes from: the secret `RECORD_KEY_SECRET_ARN` names, read once per
/// execution environment.
pub struct KeySource {
    secrets: Client,
    secret_arn: String,
    key: OnceCell<RecordKey>,
}

impl KeySource {
    pub fn new(secrets: Client, secret_arn: String) -> Self {
        Self {
            secrets,
            secret_arn,
            key: OnceCell::new(),
        }
    }

    /// The key, read from the secret on first use.
    pub async fn get(&self) -> Result<&RecordKey, Error> {
        self.key.get_or_try_init(|| self.fetch()).await
    }

    async fn fetch(&self) -> Result<RecordKey, Error> {
        let failed = |reason: String| Error::RecordKey {
            secret: self.secret_arn.clone(),
            reason,
        };
        let answer = self
            .secrets
            .get_secret_value()
            .secret_id(&self.secret_arn)
            .send()
            .await
            .map_err(|e| failed(shared::aws::error_line(&e)))?;
        let text = answer
            .secret_string
            .ok_or_else(|| failed("the secret holds no string".into()))?;
        RecordKey::new(text.into_bytes())
            .ok_or_else(|| failed(format!("the key is shorter than {MIN_KEY_BYTES} bytes")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> RecordKey {
        RecordKey::new(vec![byte; 64]).unwrap()
    }

    #[test]
    fn a_signature_verifies_only_its_own_message_under_its_own_key() {
        let signature = key(1).sign("us-east-1_abc/pre-sign-up/none");
        assert_eq!(signature.len(), 43);
        assert!(!signature.contains('/'), "{signature}");
        assert!(key(1).verifies("us-east-1_abc/pre-sign-up/none", &signature));
        assert!(!key(1).verifies("us-east-1_abc/post-confirmation/none", &signature));
        assert!(!key(2).verifies("us-east-1_abc/pre-sign-up/none", &signature));
        for forged in ["", "AAAA", "not base64!", &signature[..42]] {
            assert!(!key(1).verifies("us-east-1_abc/pre-sign-up/none", forged));
        }
    }

    #[test]
    fn a_short_key_is_refused_and_a_key_never_shows_itself() {
        assert!(RecordKey::new(vec![7; 31]).is_none());
        let debug = format!("{:?}", RecordKey::new("k".repeat(40)).unwrap());
        assert!(!debug.contains("kkkk"), "{debug}");
    }
}
