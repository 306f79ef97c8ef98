//! The resource's properties, as the template passes them, checked before anything is done:
//! the pool id's shape, the trigger, and the function, which must be the stack's own for it.

use custom_resource::Request;

use crate::{
    Error, Functions,
    trigger::{Trigger, UnknownTrigger},
};

/// The resource's properties, as the template passes them (CloudFormation sends strings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Properties {
    pub user_pool_id: String,
    /// The one trigger of the pool this resource manages.
    pub trigger: Trigger,
    /// The function to set as that trigger: the stack's own for it.
    pub function_arn: String,
    /// Whether a different function already set as that trigger may be replaced.
    pub replace_existing: bool,
}

impl Properties {
    /// Reads the properties; `FunctionArn` must be the stack's own function for the trigger
    /// (`functions`).
    pub fn from_request(request: &Request, functions: &Functions) -> Result<Self, Error> {
        // Absent means PostConfirmation, as every resource made before `Trigger` existed; a
        // value of any other shape is refused rather than read as that default.
        let trigger = match request.resource_properties.get("Trigger") {
            None => Trigger::PostConfirmation,
            Some(value) => value
                .as_str()
                .ok_or(UnknownTrigger)
                .and_then(str::parse)
                .map_err(|e| Error::BadProperty {
                    name: "Trigger",
                    reason: e.to_string(),
                })?,
        };
        let ours = functions.allowed(trigger)?;
        let required = |name: &'static str| {
            request
                .property(name)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .ok_or(Error::BadProperty {
                    name,
                    reason: "missing or not a string".into(),
                })
        };
        let user_pool_id = required("UserPoolId")?;
        if !valid_pool_id(&user_pool_id) {
            return Err(Error::BadProperty {
                name: "UserPoolId",
                reason: "expected <region>_<id>".into(),
            });
        }
        let function_arn = required("FunctionArn")?;
        if function_arn != ours {
            return Err(Error::BadProperty {
                name: "FunctionArn",
                reason: format!(
                    "only this stack's own {trigger} function ({}) may be wired as {trigger}",
                    trigger.function_var()
                ),
            });
        }
        let replace_existing = match request.property("ReplaceExistingTrigger") {
            None | Some("") | Some("false") => false,
            Some("true") => true,
            Some(_) => {
                return Err(Error::BadProperty {
                    name: "ReplaceExistingTrigger",
                    reason: "expected \"true\" or \"false\"".into(),
                });
            }
        };
        Ok(Self {
            user_pool_id,
            trigger,
            function_arn,
            replace_existing,
        })
    }
}

/// Whether `id` has a user pool id's shape, `<region>_<id>`.
pub(crate) fn valid_pool_id(id: &str) -> bool {
    id.len() <= 55
        && id.split_once('_').is_some_and(|(region, rest)| {
            !region.is_empty()
                && !rest.is_empty()
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::config::tests::{POST, PRE, functions};

    /// A Create with `properties` besides the pool (and `FunctionArn` unless they name one).
    fn create(properties: Value) -> Request {
        let mut props = json!({"UserPoolId": "us-east-1_abc", "FunctionArn": POST});
        for (k, v) in properties.as_object().unwrap() {
            props[k] = v.clone();
        }
        Request::from_event(&json!({
            "RequestType": "Create",
            "ResponseURL": "https://bucket.s3.amazonaws.com/key?sig=1",
            "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/s/1",
            "RequestId": "r-1",
            "ResourceType": "Custom::PoolPreSignUpTrigger",
            "LogicalResourceId": "PoolPreSignUpTrigger",
            "ResourceProperties": props,
        }))
        .unwrap()
    }

    #[test]
    fn the_trigger_property_defaults_to_post_confirmation() {
        let props = Properties::from_request(&create(json!({})), &functions(Some(PRE))).unwrap();
        assert_eq!(
            (props.trigger, props.function_arn.as_str()),
            (Trigger::PostConfirmation, POST)
        );
        for (trigger, function) in [(Trigger::PostConfirmation, POST), (Trigger::PreSignUp, PRE)] {
            let request = create(json!({"Trigger": trigger.as_str(), "FunctionArn": function}));
            let props = Properties::from_request(&request, &functions(Some(PRE))).unwrap();
            assert_eq!(
                (props.trigger, props.function_arn.as_str()),
                (trigger, function)
            );
        }
    }

    #[test]
    fn a_trigger_property_naming_no_trigger_we_manage_is_refused() {
        for bad in [
            json!(""),
            json!("preSignUp"),
            json!("PreSignUp "),
            json!("pre-sign-up"),
            json!("PreAuthentication"),
            json!(null),
            json!(1),
            json!(["PreSignUp"]),
            json!({"Trigger": "PreSignUp"}),
        ] {
            let request = create(json!({"Trigger": bad, "FunctionArn": PRE}));
            let e = Properties::from_request(&request, &functions(Some(PRE))).unwrap_err();
            assert!(
                matches!(
                    e,
                    Error::BadProperty {
                        name: "Trigger",
                        ..
                    }
                ),
                "{bad}: {e:?}"
            );
            let text = e.to_string();
            assert!(
                text.contains("\"PostConfirmation\", \"PreSignUp\" or \"PostAuthentication\""),
                "{text}"
            );
        }
    }

    #[test]
    fn each_trigger_takes_only_its_own_function() {
        let evil = "arn:aws:lambda:us-east-1:999999999999:function:collect-attributes";
        for (trigger, wrong) in [
            (Trigger::PreSignUp, POST),
            (Trigger::PreSignUp, evil),
            (Trigger::PostConfirmation, PRE),
            (Trigger::PostConfirmation, evil),
        ] {
            let request = create(json!({"Trigger": trigger.as_str(), "FunctionArn": wrong}));
            let e = Properties::from_request(&request, &functions(Some(PRE))).unwrap_err();
            assert!(
                matches!(
                    e,
                    Error::BadProperty {
                        name: "FunctionArn",
                        ..
                    }
                ),
                "{trigger} {wrong}: {e:?}"
            );
            assert!(e.to_string().contains(trigger.function_var()), "{e}");
        }
    }

    #[test]
    fn pre_sign_up_without_its_variable_is_refused_naming_it() {
        let request = create(json!({"Trigger": "PreSignUp", "FunctionArn": PRE}));
        let e = Properties::from_request(&request, &functions(None)).unwrap_err();
        assert!(
            matches!(e, Error::NotConfigured(Trigger::PreSignUp)),
            "{e:?}"
        );
        assert!(e.to_string().contains("PRE_SIGN_UP_FUNCTION_ARN"), "{e}");
        // PostConfirmation does not need it.
        let props = Properties::from_request(&create(json!({})), &functions(None)).unwrap();
        assert_eq!(props.trigger, Trigger::PostConfirmation);
    }
}
