//! pool-trigger: the custom resource that wires one of the stack's functions into an existing
//! Cognito user pool as one trigger, keeping every other setting of the pool, and takes it out
//! again on Delete.
//!
//! Each resource manages ONE trigger, named by its `Trigger` property ([`trigger`]):
//! `PostConfirmation` (when absent, as every resource made before there were two) or
//! `PreSignUp`; one function serves both resources. Each trigger may be set only to the one
//! function its environment variable names ([`Functions`]), has its own physical id and its
//! own pool tag, and its resource never touches the other trigger: that one is carried over
//! as the pool has it at that moment, like every other setting.
//!
//! - Create: `DescribeUserPool`, then `UpdateUserPool` with every setting carried over
//!   ([`settings`]) and the resource's trigger set to our function. A pool that already has
//!   another function as that trigger is refused unless `ReplaceExistingTrigger` is `"true"`;
//!   the trigger it had is kept in the physical id ([`physical_id`]) and in the pool's tag.
//! - Update: the same on the same pool and trigger, under the same physical id. Another pool
//!   or another trigger is a new resource: a new id, and CloudFormation then deletes the old
//!   one (which restores what it had wired).
//! - Delete: puts the earlier trigger of that kind back (or none), if the pool still points
//!   at our function there; every other setting is carried over as it is then.
//!
//! The verification messages are carried as one set UpdateUserPool accepts
//! ([`verification`]); a pool that sends SMS needs `iam:PassRole` on its role, and a refusal
//! names the template parameter that grants it ([`update_failure`]).
#![forbid(unsafe_code)]
// The runtime's service stack nests the handler's future deeply.
#![recursion_limit = "256"]

pub mod physical_id;
pub mod settings;
pub mod trigger;
pub mod verification;

use std::time::Duration;

use aws_sdk_cognitoidentityprovider::{Client, error::ProvideErrorMetadata, types::UserPoolType};
use custom_resource::{
    Answered, Outcome, ProtocolError, PutError, Request, RequestType, Responder, UrlPolicy,
};
use lambda_runtime::LambdaEvent;
use serde_json::Value;
use shared::env::{ConfigError, Env, ProcessEnv};

use crate::{
    physical_id::Wired,
    trigger::{Trigger, UnknownTrigger},
};

/// The function's settings, read once at cold start.
#[derive(Debug, Clone)]
pub struct Config {
    pub aws_timeout: Duration,
    pub functions: Functions,
    /// Where answers may go (`CFN_RESPONSE_URL_ALLOW_LOOPBACK` lets the tests' recorder in).
    pub response_urls: UrlPolicy,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&ProcessEnv)
    }

    pub fn from_lookup(env: &impl Env) -> Result<Self, ConfigError> {
        Ok(Self {
            aws_timeout: env.millis_or("AWS_CALL_TIMEOUT_MS", 5000, 500..=60_000)?,
            functions: Functions::from_lookup(env)?,
            response_urls: UrlPolicy::from_lookup(env)?,
        })
    }
}

/// The one function each trigger may be set to: the stack's own, from the template. A request
/// naming any other is refused, so whoever can invoke this function cannot point the pool (and
/// every new user's attributes) at a Lambda of their choosing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Functions {
    /// `TRIGGER_FUNCTION_ARN`: the stack's post-confirmation; always there.
    pub post_confirmation: String,
    /// `PRE_SIGN_UP_FUNCTION_ARN`: set only where the stack wires a PreSignUp trigger too.
    pub pre_sign_up: Option<String>,
}

impl Functions {
    pub fn from_lookup(env: &impl Env) -> Result<Self, ConfigError> {
        let post_var = Trigger::PostConfirmation.function_var();
        let pre_var = Trigger::PreSignUp.function_var();
        let post_confirmation = env.required(post_var, "(arn:aws:lambda:...)")?;
        Ok(Self {
            post_confirmation: lambda_arn(post_var, post_confirmation)?,
            pre_sign_up: env
                .non_empty(pre_var)
                .map(|arn| lambda_arn(pre_var, arn))
                .transpose()?,
        })
    }

    /// The function `trigger` may be set to; an error naming the variable when this
    /// function was given none, so such a resource changes nothing.
    pub fn allowed(&self, trigger: Trigger) -> Result<&str, Error> {
        match trigger {
            Trigger::PostConfirmation => Ok(&self.post_confirmation),
            Trigger::PreSignUp => self
                .pre_sign_up
                .as_deref()
                .ok_or(Error::NotConfigured(trigger)),
        }
    }
}

fn lambda_arn(var: &str, arn: String) -> Result<String, ConfigError> {
    if arn.starts_with("arn:") && arn.contains(":lambda:") {
        Ok(arn)
    } else {
        Err(ConfigError::invalid(var, "expected a Lambda function ARN"))
    }
}

/// What lives for the whole execution environment.
pub struct State {
    pub cognito: Client,
    pub responder: Responder,
    pub functions: Functions,
}

impl State {
    pub async fn init(config: Config) -> Result<Self, PutError> {
        let sdk = shared::aws::sdk_config().await;
        Ok(Self {
            cognito: Client::new(&shared::aws::with_timeout(&sdk, config.aws_timeout)),
            responder: Responder::new(config.response_urls)?,
            functions: config.functions,
        })
    }
}

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
        let pool_ok = user_pool_id.len() <= 55
            && user_pool_id.split_once('_').is_some_and(|(region, id)| {
                !region.is_empty()
                    && !id.is_empty()
                    && user_pool_id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            });
        if !pool_ok {
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

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("bad property {name}: {reason}")]
    BadProperty { name: &'static str, reason: String },
    #[error(
        "this function may not wire a {0} trigger: {var} is not set (it names the one \
         function a {0} trigger may be set to)",
        var = .0.function_var()
    )]
    NotConfigured(Trigger),
    // The template feeds one parameter to both resources' ReplaceExistingTrigger: an operator
    // sees this in the stack's events and acts on the parameter.
    #[error(
        "user pool {pool} already has a different {trigger} trigger ({current}); refusing to \
         replace it. Set the stack parameter ReplaceExistingPostConfirmationTrigger (each \
         trigger resource's ReplaceExistingTrigger) to true to replace it (it is put back when \
         the stack is deleted)"
    )]
    OtherTrigger {
        pool: String,
        trigger: Trigger,
        current: String,
    },
    #[error("user pool {0} does not exist")]
    PoolNotFound(String),
    #[error("DescribeUserPool {pool}: {message}")]
    Describe { pool: String, message: String },
    #[error("UpdateUserPool {pool}: {message}")]
    Update { pool: String, message: String },
    #[error(
        "UpdateUserPool {pool}: this function may not pass the pool's SMS role {role} to \
         Cognito ({message}). Set the stack parameter UserPoolSmsRoleArn to {role} to grant it \
         iam:PassRole on that role"
    )]
    SmsRoleNotPassable {
        pool: String,
        role: String,
        message: String,
    },
}

/// What a failed `UpdateUserPool` of `pool` tells CloudFormation, from the error's `code` and
/// its one-line text. Updating a pool that sends SMS (`SmsConfiguration.SnsCallerArn`) hands
/// Cognito that role, which needs `iam:PassRole` on it; the template grants it only when told
/// the role (`UserPoolSmsRoleArn`), so that refusal names the parameter.
pub fn update_failure(pool: &UserPoolType, code: Option<&str>, line: String) -> Error {
    let pool_id = pool.id.clone().unwrap_or_default();
    let role = pool
        .sms_configuration
        .as_ref()
        .map(|c| c.sns_caller_arn())
        .filter(|arn| !arn.is_empty());
    let denied = code.is_some_and(|c| c.starts_with("AccessDenied"));
    match role {
        Some(role) if denied && line.to_ascii_lowercase().contains("iam:passrole") => {
            Error::SmsRoleNotPassable {
                pool: pool_id,
                role: role.to_owned(),
                message: line,
            }
        }
        _ => Error::Update {
            pool: pool_id,
            message: line,
        },
    }
}

/// Handles one custom-resource request; the answer always reaches CloudFormation unless the
/// request names nowhere to send it.
pub async fn handle(state: &State, event: LambdaEvent<Value>) -> Result<Answered, ProtocolError> {
    state
        .responder
        .handle(event, async |request| {
            apply(&state.cognito, &state.functions, request).await
        })
        .await
}

/// Does what `request` asks of the pool.
pub async fn apply(
    cognito: &Client,
    functions: &Functions,
    request: &Request,
) -> Result<Outcome, Error> {
    let physical = request.physical_resource_id.as_deref();
    match request.request_type {
        RequestType::Create => {
            attach(cognito, &Properties::from_request(request, functions)?, &[]).await
        }
        RequestType::Update => {
            let props = Properties::from_request(request, functions)?;
            match physical.and_then(Wired::parse) {
                Some(wired)
                    if wired.pool_id == props.user_pool_id && wired.trigger == props.trigger =>
                {
                    // Our function as it was before the update is ours too, not a stranger's.
                    let ours: Vec<&str> = request.old_property("FunctionArn").into_iter().collect();
                    rewire(cognito, &props, wired, &ours).await
                }
                _ => attach(cognito, &props, &[]).await,
            }
        }
        RequestType::Delete => {
            let physical = physical.unwrap_or_default();
            // The id, not the properties, says which trigger was wired: it is what the
            // Create did, and a Delete after a failed Create must find nothing to undo even
            // when its properties are the ones that failed.
            match Wired::parse(physical) {
                Some(wired) => detach(cognito, &wired, functions.allowed(wired.trigger)?).await?,
                None => {
                    tracing::info!(physical, "nothing was wired under this id; nothing to undo")
                }
            }
            Ok(Outcome::new(physical))
        }
    }
}

/// Sets our trigger on a pool not wired before; the trigger it had goes into the id.
async fn attach(cognito: &Client, props: &Properties, ours: &[&str]) -> Result<Outcome, Error> {
    let pool = describe(cognito, &props.user_pool_id).await?;
    let previous = check_current(&pool, props, ours)?;
    // The trigger to put back on Delete is kept in the pool itself: a Delete request (or
    // anyone invoking this function) could name any ARN in the physical id.
    let remembered = previous
        .clone()
        .or_else(|| settings::remembered_trigger(&pool, props.trigger));
    let function = Some(props.function_arn.clone());
    update(cognito, &pool, props.trigger, function, remembered).await?;
    let wired = Wired {
        pool_id: props.user_pool_id.clone(),
        trigger: props.trigger,
        previous,
    };
    Ok(outcome(&wired))
}

/// Sets our (possibly new) function on a pool wired before, keeping the id and what it holds.
async fn rewire(
    cognito: &Client,
    props: &Properties,
    wired: Wired,
    ours: &[&str],
) -> Result<Outcome, Error> {
    let pool = describe(cognito, &props.user_pool_id).await?;
    check_current(&pool, props, ours)?;
    let remembered = settings::remembered_trigger(&pool, props.trigger);
    let function = Some(props.function_arn.clone());
    update(cognito, &pool, props.trigger, function, remembered).await?;
    Ok(outcome(&wired))
}

/// The pool's trigger (of the resource's kind) before ours, when it may be replaced; an error
/// when it may not.
fn check_current(
    pool: &UserPoolType,
    props: &Properties,
    ours: &[&str],
) -> Result<Option<String>, Error> {
    match settings::current(pool, props.trigger) {
        None => Ok(None),
        Some(current) if current == props.function_arn || ours.contains(&current) => Ok(None),
        Some(current) if props.replace_existing => Ok(Some(current.to_owned())),
        Some(current) => Err(Error::OtherTrigger {
            pool: props.user_pool_id.clone(),
            trigger: props.trigger,
            current: current.to_owned(),
        }),
    }
}

/// Puts the earlier trigger of `wired`'s kind back if the pool still points at our function
/// there. If someone has set another function since, theirs stays. A pool that is gone has
/// nothing to restore.
async fn detach(cognito: &Client, wired: &Wired, ours: &str) -> Result<(), Error> {
    let pool = match describe(cognito, &wired.pool_id).await {
        Err(Error::PoolNotFound(_)) => {
            tracing::warn!(pool = %wired.pool_id, "the user pool is gone; nothing to restore");
            return Ok(());
        }
        other => other?,
    };
    let trigger = wired.trigger;
    let current = settings::current(&pool, trigger);
    if current == Some(ours) {
        // What the pool itself remembers, never what the request's physical id names.
        let previous = settings::remembered_trigger(&pool, trigger);
        if wired.previous.is_some() && wired.previous != previous {
            tracing::warn!(pool = %wired.pool_id, %trigger, claimed = wired.previous.as_deref().unwrap_or("none"),
                "the physical id names a previous trigger the pool does not remember; not restored");
        }
        update(cognito, &pool, trigger, previous.clone(), None).await?;
        tracing::info!(pool = %wired.pool_id, %trigger, restored = previous.as_deref().unwrap_or("none"), "trigger restored");
    } else {
        tracing::warn!(pool = %wired.pool_id, %trigger, current = current.unwrap_or("none"), "the pool no longer points at our function; left as it is");
    }
    Ok(())
}

/// The answer's `Data` (for `Fn::GetAtt`): `Previous<Trigger>`, e.g.
/// `PreviousPostConfirmation`, is the trigger the pool had before.
fn outcome(wired: &Wired) -> Outcome {
    Outcome::new(wired.to_string())
        .with("UserPoolId", wired.pool_id.clone())
        .with("Trigger", wired.trigger.as_str())
        .with(
            &format!("Previous{}", wired.trigger),
            wired.previous.clone().unwrap_or_default(),
        )
}

async fn describe(cognito: &Client, pool_id: &str) -> Result<UserPoolType, Error> {
    let answer = cognito
        .describe_user_pool()
        .user_pool_id(pool_id)
        .send()
        .await
        .map_err(|e| {
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception())
            {
                Error::PoolNotFound(pool_id.to_owned())
            } else {
                Error::Describe {
                    pool: pool_id.to_owned(),
                    message: shared::aws::error_line(&e),
                }
            }
        })?;
    answer
        .user_pool
        .ok_or_else(|| Error::PoolNotFound(pool_id.to_owned()))
}

async fn update(
    cognito: &Client,
    pool: &UserPoolType,
    trigger: Trigger,
    function: Option<String>,
    remember: Option<String>,
) -> Result<(), Error> {
    settings::carry_over(
        cognito.update_user_pool(),
        pool,
        trigger,
        function,
        remember,
    )
    .send()
    .await
    .map_err(|e| update_failure(pool, e.code(), shared::aws::error_line(&e)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use aws_sdk_cognitoidentityprovider::types::SmsConfigurationType;
    use serde_json::json;

    use super::*;

    const POST: &str = "arn:aws:lambda:us-east-1:123456789012:function:db-sync-PostConfirmation";
    const PRE: &str = "arn:aws:lambda:us-east-1:123456789012:function:db-sync-PreSignUp";

    fn functions(pre_sign_up: Option<&str>) -> Functions {
        Functions {
            post_confirmation: POST.into(),
            pre_sign_up: pre_sign_up.map(str::to_owned),
        }
    }

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
                text.contains("\"PostConfirmation\" or \"PreSignUp\""),
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

    #[test]
    fn the_pre_sign_up_function_is_optional_and_checked_when_set() {
        let env = |pre: Option<&'static str>| {
            let mut env: HashMap<&str, &str> = [("TRIGGER_FUNCTION_ARN", POST)].into();
            if let Some(pre) = pre {
                env.insert("PRE_SIGN_UP_FUNCTION_ARN", pre);
            }
            env
        };
        assert_eq!(Functions::from_lookup(&env(None)), Ok(functions(None)));
        assert_eq!(Functions::from_lookup(&env(Some(" "))), Ok(functions(None)));
        assert_eq!(
            Functions::from_lookup(&env(Some(PRE))),
            Ok(functions(Some(PRE)))
        );
        let e = Functions::from_lookup(&env(Some("db-sync-PreSignUp"))).unwrap_err();
        assert_eq!(e.var(), "PRE_SIGN_UP_FUNCTION_ARN");
        let e = Functions::from_lookup(&HashMap::<&str, &str>::new()).unwrap_err();
        assert_eq!(e.var(), "TRIGGER_FUNCTION_ARN");
    }

    const ROLE: &str = "arn:aws:iam::123456789012:role/app-sms";
    /// IAM's words when the caller may not pass a role (as Cognito relays them).
    const PASS_ROLE_DENIED: &str = "AccessDeniedException: User: \
        arn:aws:sts::123456789012:assumed-role/db-sync-PoolTriggerRole/db-sync-PoolTrigger is \
        not authorized to perform: iam:PassRole on resource: arn:aws:iam::123456789012:role/app-sms \
        because no identity-based policy allows the iam:PassRole action";

    fn pool(sms_role: Option<&str>) -> UserPoolType {
        UserPoolType::builder()
            .id("us-east-1_abc")
            .set_sms_configuration(
                sms_role.map(|r| SmsConfigurationType::builder().sns_caller_arn(r).build()),
            )
            .build()
    }

    #[test]
    fn a_refused_pass_role_on_the_sms_role_names_the_parameter_that_grants_it() {
        let e = update_failure(
            &pool(Some(ROLE)),
            Some("AccessDeniedException"),
            PASS_ROLE_DENIED.to_owned(),
        );
        assert!(matches!(e, Error::SmsRoleNotPassable { .. }), "{e:?}");
        let answer = e.to_string();
        for part in ["UserPoolSmsRoleArn", ROLE, "iam:PassRole", "us-east-1_abc"] {
            assert!(answer.contains(part), "{part}: {answer}");
        }
    }

    #[test]
    fn other_update_failures_keep_their_own_message() {
        for (sms_role, code, line) in [
            // No SMS role on the pool: the parameter would not help.
            (None, "AccessDeniedException", PASS_ROLE_DENIED),
            // Denied, but not PassRole: the function's own grant on the pool.
            (
                Some(ROLE),
                "AccessDeniedException",
                "AccessDeniedException: not authorized to perform: cognito-idp:UpdateUserPool",
            ),
            // Not a denial at all.
            (
                Some(ROLE),
                "InvalidParameterException",
                "InvalidParameterException: The message is invalid.",
            ),
        ] {
            let e = update_failure(&pool(sms_role), Some(code), line.to_owned());
            assert!(matches!(e, Error::Update { .. }), "{e:?}");
            assert!(!e.to_string().contains("UserPoolSmsRoleArn"), "{e}");
            assert!(e.to_string().contains(line), "{e}");
        }
    }
}
