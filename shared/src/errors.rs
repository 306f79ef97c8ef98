//! How handler errors reach Lambda: an error type that says whether a retry can help, and
//! messages that stay short whatever the input quoted in them.

use lambda_runtime::Diagnostic;

/// An error a handler can return.
pub trait Classified: std::fmt::Display {
    /// Whether the same request can succeed if tried again later.
    fn is_retryable(&self) -> bool;
    /// A short name for the failure, such as `MissingAttribute` or `DatabaseUnavailable`.
    fn kind(&self) -> &'static str;
}

/// `Retryable.<Kind>` or `Permanent.<Kind>` as the error type, so a dashboard or a caller can
/// tell an outage from bad input without reading messages.
pub fn diagnostic(e: &impl Classified) -> Diagnostic {
    let class = if e.is_retryable() {
        "Retryable"
    } else {
        "Permanent"
    };
    Diagnostic {
        error_type: format!("{class}.{}", e.kind()),
        error_message: e.to_string(),
    }
}

/// For an answer that reaches someone outside: a Cognito trigger's message, which Cognito
/// hands to the app signing the person up (`UserLambdaValidationException: PostConfirmation
/// failed with error ...`), or a Function URL caller's. The error type as [`diagnostic`] gives
/// it, with `message`, a short text meant for that reader: no other user's identifiers,
/// nothing that tells one refusal from another where that would leak, nothing of the
/// infrastructure (hosts, ports, database names, SQL). The function's log line keeps the
/// detail.
pub fn diagnostic_for_client(e: &impl Classified, message: impl Into<String>) -> Diagnostic {
    Diagnostic {
        error_message: message.into(),
        ..diagnostic(e)
    }
}

/// At most `max` characters of `s` (an ellipsis marks a cut), for quoting input in errors.
pub fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_on_character_boundaries() {
        assert_eq!(truncate("🦀🦀🦀", 2), "🦀🦀…");
        assert_eq!(truncate("short", 10), "short");
    }
}
