//! Which kind of request a deployed function takes (`SG_IP_UPDATE_SOURCE`), and the refusal
//! of the other kind before anything of it is believed.

use ingress::store::Via;
use serde::Serialize;
use serde_json::Value;

use crate::{Error, request::storable, way_in};

/// The kind of request a deployed function takes (`SG_IP_UPDATE_SOURCE`), set per function by
/// the template: the Function URL's function takes only Function URL requests, the bus
/// function only EventBridge events and bare direct invocations. The payload's shape alone
/// cannot say where it came from: anyone allowed `lambda:InvokeFunction` can write a payload
/// shaped like a Function URL request, identity included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Function URL requests, whose identity AWS checked (`SgIpUpdateFunction`).
    FunctionUrl,
    /// EventBridge events and bare direct invocations, which prove no sender
    /// (`SgIpUpdateBusFunction`).
    Eventbridge,
}

impl Source {
    pub const ALL: [Self; 2] = [Self::FunctionUrl, Self::Eventbridge];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::FunctionUrl => "function_url",
            Self::Eventbridge => "eventbridge",
        }
    }

    /// Whether a payload that came `via` is this function's kind.
    pub fn takes(self, via: Via) -> bool {
        match self {
            Self::FunctionUrl => via == Via::FunctionUrl,
            Self::Eventbridge => via != Via::FunctionUrl,
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Source {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("{s:?} is neither function_url nor eventbridge"))
    }
}

/// Refuses a payload that is not `source`'s kind, before anything of it is believed: the
/// bus function is never handed a Function URL request by AWS, so an identity in one was
/// written by whoever invoked it; the Function URL's function is never handed anything else.
pub fn check_source(payload: &Value, source: Source) -> Result<(), Error> {
    let via = way_in(payload);
    if source.takes(via) {
        return Ok(());
    }
    let claimed = match via {
        Via::FunctionUrl => payload
            .pointer("/requestContext/authorizer/iam/userArn")
            .and_then(Value::as_str)
            .map(|arn| storable(arn, 300)),
        _ => None,
    };
    Err(Error::WrongSource {
        takes: source,
        via,
        claimed,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use shared::errors::Classified;

    use super::*;

    fn url_event() -> Value {
        serde_json::from_str(include_str!(
            "../../../events/sg-ip-update-function-url.json"
        ))
        .unwrap()
    }

    #[test]
    fn each_function_takes_only_its_own_kind_of_payload() {
        let bus = json!({"version": "0", "id": "1", "detail-type": "Workspace IP Changed",
                         "source": "dev.workspace", "detail": {"owner": "andrew", "ip": "34.201.17.5"}});
        let bare = json!({"owner": "andrew", "ip": "34.201.17.5"});
        let url = url_event();
        for (payload, url_ok, bus_ok) in [
            (&url, true, false),
            (&bus, false, true),
            (&bare, false, true),
        ] {
            assert_eq!(
                check_source(payload, Source::FunctionUrl).is_ok(),
                url_ok,
                "{payload}"
            );
            assert_eq!(
                check_source(payload, Source::Eventbridge).is_ok(),
                bus_ok,
                "{payload}"
            );
        }
        // The identity a forged request claims is kept for the audit's detail, and refused.
        let err = check_source(&url, Source::Eventbridge).unwrap_err();
        assert!(
            matches!(&err, Error::WrongSource { claimed: Some(c), .. } if c.ends_with("user/andrew")),
            "{err}"
        );
        assert!(!err.is_retryable());
        assert_eq!(err.http_status(), 403);
        assert_eq!("eventbridge".parse::<Source>(), Ok(Source::Eventbridge));
        assert!("Eventbridge".parse::<Source>().is_err());
    }
}
