//! A stack's signing key (HMAC-SHA256), kept in a Secrets Manager secret the template
//! generates: what one function signs, only a function whose role may read the same secret
//! can sign too. The functions that read one fetch it themselves ([`SigningKey::from_secret`]
//! checks what the secret held), so each role's grant stays beside its own call.

use std::fmt;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The fewest bytes a key may have (the template generates 64 characters).
pub const MIN_KEY_BYTES: usize = 32;

/// A key that never shows itself in `Debug` or logs.
pub struct SigningKey(Vec<u8>);

impl SigningKey {
    /// A key of at least [`MIN_KEY_BYTES`]; `None` for a shorter one.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Option<Self> {
        let bytes = bytes.into();
        (bytes.len() >= MIN_KEY_BYTES).then_some(Self(bytes))
    }

    /// The key a secret's string holds, or why it holds none.
    pub fn from_secret(secret_string: Option<String>) -> Result<Self, String> {
        let text = secret_string.ok_or_else(|| "the secret holds no string".to_owned())?;
        Self::new(text.into_bytes())
            .ok_or_else(|| format!("the key is shorter than {MIN_KEY_BYTES} bytes"))
    }

    fn mac(&self, message: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        mac.update(message);
        mac
    }

    /// The signature of `message`, in URL-safe base64 (43 characters, no `/`).
    pub fn sign(&self, message: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(message).finalize().into_bytes())
    }

    /// Whether `signature` is this key's signature of `message` (compared in constant time).
    pub fn verifies(&self, message: &[u8], signature: &str) -> bool {
        URL_SAFE_NO_PAD
            .decode(signature)
            .is_ok_and(|bytes| self.mac(message).verify_slice(&bytes).is_ok())
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SigningKey {
        SigningKey::new(vec![byte; 64]).unwrap()
    }

    #[test]
    fn a_signature_verifies_only_its_own_message_under_its_own_key() {
        let signature = key(1).sign(b"{\"op\":\"begin\"}");
        assert_eq!(signature.len(), 43);
        assert!(key(1).verifies(b"{\"op\":\"begin\"}", &signature));
        assert!(!key(1).verifies(b"{\"op\":\"begin\" }", &signature));
        assert!(!key(2).verifies(b"{\"op\":\"begin\"}", &signature));
        for forged in ["", "AAAA", "not base64!", &signature[..42]] {
            assert!(!key(1).verifies(b"{\"op\":\"begin\"}", forged));
        }
    }

    #[test]
    fn a_short_or_missing_key_is_refused_and_a_key_never_shows_itself() {
        assert!(SigningKey::new(vec![7; 31]).is_none());
        assert!(SigningKey::from_secret(None).is_err());
        assert!(SigningKey::from_secret(Some("short".into())).is_err());
        let debug = format!(
            "{:?}",
            SigningKey::from_secret(Some("k".repeat(40))).unwrap()
        );
        assert!(!debug.contains("kkkk"), "{debug}");
    }
}
