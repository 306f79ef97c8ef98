//! The forbidden values: secrets no function may ever print or return, registered by the tests.

use std::sync::{Mutex, PoisonError};

/// Values shorter than this are not registered: they would match by chance.
const MIN_LEN: usize = 6;

/// Every value registered in this process (one test binary, so every test in it).
static FORBIDDEN: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Adds a secret value (a password in a Secrets Manager secret, say) to the forbidden list.
/// The password in a function's `DATABASE_URL` is added by [`crate::Function`] itself.
pub fn forbid(secret: &str) {
    if secret.len() < MIN_LEN {
        return;
    }
    let mut forbidden = FORBIDDEN.lock().unwrap_or_else(PoisonError::into_inner);
    if !forbidden.iter().any(|s| s == secret) {
        forbidden.push(secret.to_owned());
    }
}
