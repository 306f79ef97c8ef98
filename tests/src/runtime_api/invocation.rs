//! What one invocation came to: the function's response or error, or why there was none.

use std::time::Duration;

use serde_json::Value;

/// How one invocation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The function answered; the body parsed as JSON.
    Response(Value),
    /// The function reported an error through `/error`.
    Error {
        error_type: String,
        error_message: String,
    },
    /// The process exited before answering (crash, or a failed init).
    Exited(String),
    /// No answer by the deadline plus a grace period.
    TimedOut,
}

/// One finished invocation.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    pub outcome: Outcome,
    /// From handing the event out (or queuing it, if the function was busy) to the answer.
    pub elapsed: Duration,
}

impl Invocation {
    /// The response body; panics with the whole outcome when the invocation did not succeed.
    pub fn response(&self) -> &Value {
        match &self.outcome {
            Outcome::Response(v) => v,
            other => panic!("invocation {} did not succeed: {other:?}", self.request_id),
        }
    }

    /// The error type and message; panics when the invocation did not report an error.
    pub fn error(&self) -> (&str, &str) {
        match &self.outcome {
            Outcome::Error {
                error_type,
                error_message,
            } => (error_type, error_message),
            other => panic!("invocation {} did not fail: {other:?}", self.request_id),
        }
    }

    /// The texts the function produced for this invocation, each named for a leak report.
    pub(super) fn texts(&self, function: &str) -> Vec<(String, String)> {
        let at = |what: &str| format!("the {what} of invocation {} to {function}", self.request_id);
        match &self.outcome {
            Outcome::Response(v) => vec![(at("response"), v.to_string())],
            Outcome::Error {
                error_type,
                error_message,
            } => vec![
                (at("error type"), error_type.clone()),
                (at("error message"), error_message.clone()),
            ],
            Outcome::Exited(detail) => vec![(at("exit report"), detail.clone())],
            Outcome::TimedOut => vec![],
        }
    }
}
