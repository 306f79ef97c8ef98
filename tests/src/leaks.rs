//! The forbidden values: secrets no function may ever print or return. Tests register them
//! with [`forbid`]; the harness ([`crate::Function`]) checks every response, error and log line
//! against them and fails the test on a leak, naming where it was without printing the value.

use std::{
    fmt,
    sync::{Mutex, PoisonError},
};

/// Values shorter than this are not registered: they would match by chance.
const MIN_LEN: usize = 6;

/// How much of a leaking text a report shows (with the secret masked).
const EXCERPT_CHARS: usize = 300;

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

/// The values registered so far.
pub fn forbidden() -> Vec<String> {
    FORBIDDEN
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// A forbidden value described without giving it away: its length and first two characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    pub len: usize,
    pub starts_with: String,
}

impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a forbidden value ({} chars, starting {:?})",
            self.len, self.starts_with
        )
    }
}

/// The forms a value takes in the text we read: as is, and escaped inside a JSON string (a log
/// line or a response body).
fn forms(secret: &str) -> Vec<String> {
    let mut forms = vec![secret.to_owned()];
    if let Ok(quoted) = serde_json::to_string(secret) {
        let escaped = &quoted[1..quoted.len() - 1];
        if escaped != secret {
            forms.push(escaped.to_owned());
        }
    }
    forms
}

/// The first of `forbidden` that appears in `text`, if any.
pub fn find_leak(text: &str, forbidden: &[String]) -> Option<Hint> {
    forbidden
        .iter()
        .find(|s| forms(s).iter().any(|form| text.contains(form.as_str())))
        .map(|s| Hint {
            len: s.chars().count(),
            starts_with: s.chars().take(2).collect(),
        })
}

/// `text` with every forbidden value masked, cut to a readable length.
pub fn redact(text: &str, forbidden: &[String]) -> String {
    let mut masked = text.to_owned();
    for form in forbidden.iter().flat_map(|s| forms(s)) {
        masked = masked.replace(&form, "<forbidden>");
    }
    if masked.chars().count() > EXCERPT_CHARS {
        masked = masked.chars().take(EXCERPT_CHARS).collect::<String>() + "…";
    }
    masked
}

/// One forbidden value found somewhere it must never be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leak {
    /// Where it was: "the response of invocation 1b2c… to post-confirmation", say.
    pub place: String,
    pub secret: Hint,
    /// The text around it, with the value masked.
    pub excerpt: String,
}

impl fmt::Display for Leak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} leaked in {}: {}",
            self.secret, self.place, self.excerpt
        )
    }
}

/// The leak in `text`, if any, described as being in `place`.
pub fn scan(place: impl FnOnce() -> String, text: &str, forbidden: &[String]) -> Option<Leak> {
    let secret = find_leak(text, forbidden)?;
    Some(Leak {
        place: place(),
        secret,
        excerpt: redact(text, forbidden),
    })
}

/// Panics with every leak named, when there are any.
pub fn assert_none(leaks: &[Leak]) {
    if leaks.is_empty() {
        return;
    }
    let list: Vec<String> = leaks.iter().map(|l| format!("  - {l}")).collect();
    panic!(
        "secret leak: {} place(s) hold a value registered with forbid():\n{}",
        leaks.len(),
        list.join("\n")
    );
}

/// Panics when `text` (an error the test got from library code, say) holds a forbidden value.
pub fn assert_no_leak(place: &str, text: &str) {
    let leak = scan(|| place.to_owned(), text, &forbidden());
    assert_none(leak.as_slice());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(values: &[&str]) -> Vec<String> {
        values.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn finds_a_value_anywhere_in_the_text() {
        let forbidden = list(&["app-0123456789"]);
        let hint = find_leak("connect to postgres://app:app-0123456789@host", &forbidden);
        assert_eq!(
            hint,
            Some(Hint {
                len: 14,
                starts_with: "ap".into()
            })
        );
        assert_eq!(find_leak("nothing to see", &forbidden), None);
    }

    #[test]
    fn finds_a_value_escaped_in_json() {
        let forbidden = list(&["pa\"ss\\word"]);
        let line = serde_json::json!({ "message": "pa\"ss\\word" }).to_string();
        assert!(find_leak(&line, &forbidden).is_some(), "{line}");
    }

    #[test]
    fn a_report_masks_the_value_and_names_the_place() {
        let forbidden = list(&["s3cret-value"]);
        let leak = scan(|| "log line 3".into(), "x s3cret-value y", &forbidden).unwrap();
        let text = leak.to_string();
        assert!(
            text.contains("log line 3") && text.contains("x <forbidden> y"),
            "{text}"
        );
        assert!(!text.contains("s3cret-value"), "{text}");
        let panic = std::panic::catch_unwind(|| assert_none(&[leak])).unwrap_err();
        let message = panic.downcast_ref::<String>().unwrap();
        assert!(message.contains("12 chars, starting \"s3\""), "{message}");
    }

    #[test]
    fn short_values_are_not_registered() {
        forbid("abc");
        assert!(!forbidden().iter().any(|s| s == "abc"));
    }
}
