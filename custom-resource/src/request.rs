//! The request CloudFormation sends to a custom resource's function.

use std::fmt;

use serde::Deserialize;
use serde_json::{Map, Value};

/// What CloudFormation asks of the resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum RequestType {
    Create,
    Update,
    Delete,
}

impl fmt::Display for RequestType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Create => "Create",
            Self::Update => "Update",
            Self::Delete => "Delete",
        })
    }
}

/// One custom-resource request, as documented by CloudFormation.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Request {
    pub request_type: RequestType,
    #[serde(rename = "ResponseURL")]
    pub response_url: String,
    pub stack_id: String,
    pub request_id: String,
    pub logical_resource_id: String,
    pub resource_type: String,
    /// Absent on Create; set on Update and Delete.
    #[serde(default)]
    pub physical_resource_id: Option<String>,
    #[serde(default)]
    pub resource_properties: Map<String, Value>,
    /// Set on Update only: the properties before the change.
    #[serde(default)]
    pub old_resource_properties: Option<Map<String, Value>>,
}

/// The fields an answer needs. A request that has them can be answered FAILED even when the
/// rest of it is malformed; one that lacks them cannot be answered at all.
#[derive(Debug, Clone)]
pub struct ReplyTo {
    pub response_url: String,
    pub stack_id: String,
    pub request_id: String,
    pub logical_resource_id: String,
    pub physical_resource_id: Option<String>,
}

/// Why a request cannot be answered: no URL to answer to, or no ids CloudFormation would
/// match the answer with.
#[derive(Debug, Clone, thiserror::Error)]
#[error("not a custom-resource request that can be answered: {0}")]
pub struct Unanswerable(pub String);

/// Where an answer may be sent. CloudFormation's `ResponseURL` is always a pre-signed S3 URL
/// over HTTPS; anything else comes from someone invoking the function directly, and a PUT
/// to it from inside the VPC would reach whatever they name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UrlPolicy {
    /// Also `http://127.0.0.1:<port>/...`: the tests' local recorder
    /// (`CFN_RESPONSE_URL_ALLOW_LOOPBACK=true`). Off in every deploy.
    pub allow_loopback_http: bool,
}

impl UrlPolicy {
    /// Reads `CFN_RESPONSE_URL_ALLOW_LOOPBACK` (`true` or `false`, default false).
    pub fn from_lookup(env: &impl shared::env::Env) -> Result<Self, shared::env::ConfigError> {
        Ok(Self {
            allow_loopback_http: env.parse_or(
                "CFN_RESPONSE_URL_ALLOW_LOOPBACK",
                false,
                "true or false",
            )?,
        })
    }

    /// Whether `url` is an HTTPS URL on an S3 endpoint (`<bucket>.s3.amazonaws.com`,
    /// `<bucket>.s3.<region>.amazonaws.com`, `s3-<region>`, dual-stack, China), or a loopback
    /// HTTP URL where the policy allows one.
    pub fn admits(&self, url: &str) -> bool {
        if let Some(rest) = url.strip_prefix("https://") {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
            if authority.contains('@') {
                return false;
            }
            let host = authority
                .split(':')
                .next()
                .unwrap_or("")
                .to_ascii_lowercase();
            let Some(name) = host
                .strip_suffix(".amazonaws.com")
                .or_else(|| host.strip_suffix(".amazonaws.com.cn"))
            else {
                return false;
            };
            return name
                .split('.')
                .any(|label| label == "s3" || label.starts_with("s3-"))
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
        }
        if let Some(rest) = url.strip_prefix("http://") {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
            let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
            return self.allow_loopback_http && host == "127.0.0.1";
        }
        false
    }
}

impl ReplyTo {
    /// Reads where and how to answer, before anything else of the request is trusted.
    pub fn from_event(payload: &Value, policy: UrlPolicy) -> Result<Self, Unanswerable> {
        let text = |field: &str| {
            payload
                .get(field)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| Unanswerable(format!("{field} is missing or not a string")))
        };
        let response_url = text("ResponseURL")?;
        if !policy.admits(&response_url) {
            return Err(Unanswerable(
                "ResponseURL is not CloudFormation's pre-signed S3 URL over HTTPS".into(),
            ));
        }
        Ok(Self {
            response_url,
            ..Self::ids_from_event(payload)?
        })
    }

    /// The ids an answer carries, for a function that decides the answer but leaves sending it
    /// to the function that invoked it ([`crate::decide`]): the `ResponseURL` is neither
    /// needed nor checked, and is left empty.
    pub fn ids_from_event(payload: &Value) -> Result<Self, Unanswerable> {
        let text = |field: &str| {
            payload
                .get(field)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| Unanswerable(format!("{field} is missing or not a string")))
        };
        Ok(Self {
            response_url: String::new(),
            stack_id: text("StackId")?,
            request_id: text("RequestId")?,
            logical_resource_id: text("LogicalResourceId")?,
            physical_resource_id: text("PhysicalResourceId").ok(),
        })
    }

    /// The physical id to answer with when the handler gave none: the one CloudFormation
    /// sent, or, for a Create that failed before making anything, one that names the failure.
    /// CloudFormation sends a Delete for it on rollback, which must then find nothing to undo.
    pub fn fallback_physical_id(&self) -> String {
        self.physical_resource_id.clone().unwrap_or_else(|| {
            format!(
                "{}-not-created-{}",
                self.logical_resource_id, self.request_id
            )
        })
    }
}

impl Request {
    /// Parses a request; the error says which field is wrong.
    pub fn from_event(payload: &Value) -> Result<Self, String> {
        let request = Self::deserialize(payload).map_err(|e| e.to_string())?;
        if request.request_type != RequestType::Create && request.physical_resource_id.is_none() {
            return Err(format!(
                "PhysicalResourceId is missing on a {} request",
                request.request_type
            ));
        }
        Ok(request)
    }

    /// The physical id to answer a failure with: the one CloudFormation sent, or, for a
    /// Create, one that names the failure (see [`ReplyTo::fallback_physical_id`]).
    pub fn fallback_physical_id(&self) -> String {
        self.physical_resource_id.clone().unwrap_or_else(|| {
            format!(
                "{}-not-created-{}",
                self.logical_resource_id, self.request_id
            )
        })
    }

    /// A string property, if present.
    pub fn property(&self, name: &str) -> Option<&str> {
        self.resource_properties.get(name).and_then(Value::as_str)
    }

    /// A string property of the properties before an Update.
    pub fn old_property(&self, name: &str) -> Option<&str> {
        self.old_resource_properties
            .as_ref()
            .and_then(|p| p.get(name))
            .and_then(Value::as_str)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn create() -> Value {
        json!({
            "RequestType": "Create",
            "ResponseURL": "https://bucket.s3.amazonaws.com/key?sig=1",
            "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/s/1",
            "RequestId": "r-1",
            "ResourceType": "Custom::Thing",
            "LogicalResourceId": "Thing",
            "ResourceProperties": {"ServiceToken": "arn", "A": "b"}
        })
    }

    #[test]
    fn a_create_parses_and_its_properties_are_read() {
        let r = Request::from_event(&create()).unwrap();
        assert_eq!(r.request_type, RequestType::Create);
        assert_eq!(r.property("A"), Some("b"));
        assert_eq!(r.old_property("A"), None);
    }

    #[test]
    fn an_update_without_a_physical_id_is_refused_but_answerable() {
        let mut e = create();
        e["RequestType"] = json!("Update");
        assert!(
            Request::from_event(&e)
                .unwrap_err()
                .contains("PhysicalResourceId")
        );
        let reply = ReplyTo::from_event(&e, UrlPolicy::default()).unwrap();
        assert_eq!(reply.fallback_physical_id(), "Thing-not-created-r-1");
    }

    #[test]
    fn an_unknown_request_type_is_refused() {
        let mut e = create();
        e["RequestType"] = json!("Destroy");
        assert!(Request::from_event(&e).unwrap_err().contains("Destroy"));
    }

    #[test]
    fn without_a_url_or_ids_nothing_can_be_answered() {
        for field in ["ResponseURL", "StackId", "RequestId", "LogicalResourceId"] {
            let mut e = create();
            e.as_object_mut().unwrap().remove(field);
            assert!(
                ReplyTo::from_event(&e, UrlPolicy::default())
                    .unwrap_err()
                    .0
                    .contains(field)
            );
        }
        let mut e = create();
        e["ResponseURL"] = json!("file:///etc/passwd");
        assert!(ReplyTo::from_event(&e, UrlPolicy::default()).is_err());
    }

    #[test]
    fn answers_go_only_to_s3_over_https() {
        let cfn = UrlPolicy::default();
        for ok in [
            "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/arn%3A?X-Amz-Signature=1",
            "https://cloudformation-custom-resource-response-euwest1.s3.eu-west-1.amazonaws.com/k?sig=1",
            "https://bucket.s3-us-west-2.amazonaws.com/k",
            "https://bucket.s3.dualstack.us-east-1.amazonaws.com/k",
            "https://bucket.s3.cn-north-1.amazonaws.com.cn/k",
        ] {
            assert!(cfn.admits(ok), "{ok}");
        }
        for bad in [
            "http://bucket.s3.amazonaws.com/k",
            "https://evil.example/k",
            "https://s3.amazonaws.com.evil.example/k",
            "https://user@bucket.s3.amazonaws.com/k",
            "https://169.254.169.254/latest/meta-data",
            "https://ec2.us-east-1.amazonaws.com/k",
            "http://127.0.0.1:9001/2018-06-01/runtime/invocation/next",
            "file:///etc/passwd",
        ] {
            assert!(!cfn.admits(bad), "{bad}");
        }
        let local = UrlPolicy {
            allow_loopback_http: true,
        };
        assert!(local.admits("http://127.0.0.1:40123/answers/1"));
        assert!(!local.admits("http://10.0.0.5:80/x"));
        assert!(!local.admits("http://127.0.0.1.evil.example:80/x"));
    }
}
