//! The answer PUT to the `ResponseURL`: SUCCESS or FAILED, a reason, the physical id and data.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::request::ReplyTo;

/// CloudFormation refuses an answer larger than this many bytes.
pub const MAX_BODY: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Success,
    Failed,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Success => "SUCCESS",
            Self::Failed => "FAILED",
        })
    }
}

/// One answer, as CloudFormation documents it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Response {
    pub status: Status,
    pub reason: String,
    pub physical_resource_id: String,
    pub stack_id: String,
    pub request_id: String,
    pub logical_resource_id: String,
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub data: Map<String, Value>,
}

impl Response {
    pub fn new(
        reply: &ReplyTo,
        status: Status,
        reason: String,
        physical_resource_id: String,
        data: Map<String, Value>,
    ) -> Self {
        Self {
            status,
            reason,
            physical_resource_id,
            stack_id: reply.stack_id.clone(),
            request_id: reply.request_id.clone(),
            logical_resource_id: reply.logical_resource_id.clone(),
            data,
        }
    }

    /// The JSON body, within [`MAX_BODY`]: a long reason is cut (marked with an ellipsis), and
    /// data that alone would not fit is dropped and said so in the reason, so that a large
    /// answer still reaches CloudFormation rather than being refused.
    pub fn body(&self) -> Vec<u8> {
        let mut answer = self.clone();
        let encoded = |r: &Response| serde_json::to_vec(r).unwrap_or_default();
        let body = encoded(&answer);
        if body.len() <= MAX_BODY {
            return body;
        }
        answer.reason = String::new();
        if encoded(&answer).len() > MAX_BODY / 2 {
            answer.data = Map::new();
            answer.status = Status::Failed;
            answer.reason = "the answer's data was too large for CloudFormation; ".to_owned();
        }
        let prefix = answer.reason.clone();
        let with_reason = |keep: usize| {
            let mut a = answer.clone();
            a.reason = format!("{prefix}{}", cut(&self.reason, keep));
            encoded(&a)
        };
        // The longest cut of the reason that fits (escaping makes bytes per character vary).
        let (mut fits, mut over) = (0, self.reason.chars().count());
        while fits + 1 < over {
            let mid = (fits + over) / 2;
            if with_reason(mid).len() <= MAX_BODY {
                fits = mid;
            } else {
                over = mid;
            }
        }
        with_reason(fits)
    }
}

fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply() -> ReplyTo {
        ReplyTo {
            response_url: "http://x".into(),
            stack_id: "stack".into(),
            request_id: "req".into(),
            logical_resource_id: "Thing".into(),
            physical_resource_id: None,
        }
    }

    #[test]
    fn the_body_has_cloudformations_field_names() {
        let r = Response::new(
            &reply(),
            Status::Failed,
            "why".into(),
            "p".into(),
            Map::new(),
        );
        let v: Value = serde_json::from_slice(&r.body()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"Status": "FAILED", "Reason": "why", "PhysicalResourceId": "p",
                "StackId": "stack", "RequestId": "req", "LogicalResourceId": "Thing"})
        );
    }

    #[test]
    fn a_huge_reason_is_cut_to_fit() {
        let reason = "\"é\u{1}".repeat(5000);
        let r = Response::new(&reply(), Status::Failed, reason, "p".into(), Map::new());
        let body = r.body();
        assert!(body.len() <= MAX_BODY, "{}", body.len());
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert!(v["Reason"].as_str().unwrap().ends_with('…'));
        assert!(v["Reason"].as_str().unwrap().len() > 1000);
    }

    #[test]
    fn huge_data_is_dropped_and_the_answer_fails_saying_why() {
        let mut data = Map::new();
        data.insert("Big".into(), Value::String("x".repeat(10_000)));
        let r = Response::new(&reply(), Status::Success, "ok".into(), "p".into(), data);
        let v: Value = serde_json::from_slice(&r.body()).unwrap();
        assert_eq!(v["Status"], "FAILED");
        assert!(v.get("Data").is_none());
        assert!(v["Reason"].as_str().unwrap().contains("too large"));
    }
}
