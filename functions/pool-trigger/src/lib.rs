//! pool-trigger: the custom resource that wires post-confirmation into an existing Cognito
//! user pool, keeping every other setting of the pool, and takes it out again on Delete.
//!
//! - Create: `DescribeUserPool`, then `UpdateUserPool` with every setting carried over
//!   ([`settings`]) and PostConfirmation set to our function. A pool that already has another
//!   PostConfirmation trigger is refused unless `ReplaceExistingTrigger` is `"true"`; the
//!   trigger it had is kept in the physical id ([`physical_id`]).
//! - Update: the same on the same pool, under the same physical id. Another pool is a new
//!   resource: a new id, and CloudFormation then deletes the old one (which restores the old
//!   pool).
//! - Delete: puts the earlier trigger back (or none), if the pool still points at our
//!   function; every other setting is carried over as it is then.
//!
//! The verification messages are carried as one set UpdateUserPool accepts
//! ([`verification`]); a pool that sends SMS needs `iam:PassRole` on its role, and a refusal
//! names the template parameter that grants it ([`update_failure`]).
#![forbid(unsafe_code)]
// The runtime's service stack nests the handler's future deeply.
#![recursion_limit = "256"]

pub mod physical_id;
pub mod settings;
pub mod verification;

use std::time::Duration;

use aws_sdk_cognitoidentityprovider::{Client, error::ProvideErrorMetadata, types::UserPoolType};
use custom_resource::{
    Answered, Outcome, ProtocolError, PutError, Request, RequestType, Responder, UrlPolicy,
};
use lambda_runtime::LambdaEvent;
use serde_json::Value;
use shared::env::{ConfigError, Env, ProcessEnv};

use crate::physical_id::Wired;

/// The function's settings, read once at cold start.
#[derive(Debug, Clone)]
pub struct Config {
    pub aws_timeout: Duration,
    /// The one function this resource may wire as the pool's trigger: the stack's own
    /// post-confirmation (`TRIGGER_FUNCTION_ARN`, from the template). A request naming any
    /// other is refused, so whoever can invoke this function cannot point the pool (and every
    /// new user's attributes) at a Lambda of their choosing.
    pub function_arn: String,
    /// Where answers may go (`CFN_RESPONSE_URL_ALLOW_LOOPBACK` lets the tests' recorder in).
    pub response_urls: UrlPolicy,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&ProcessEnv)
    }

    pub fn from_lookup(env: &impl Env) -> Result<Self, ConfigError> {
        let function_arn = env.required("TRIGGER_FUNCTION_ARN", "(arn:aws:lambda:...)")?;
        if !(function_arn.starts_with("arn:") && function_arn.contains(":lambda:")) {
            return Err(ConfigError::invalid(
                "TRIGGER_FUNCTION_ARN",
                "expected a Lambda function ARN",
            ));
        }
        Ok(Self {
            aws_timeout: env.millis_or("AWS_CALL_TIMEOUT_MS", 5000, 500..=60_000)?,
            function_arn,
            response_urls: UrlPolicy::from_lookup(env)?,
        })
    }
}

/// What lives for the whole execution environment.
pub struct State {
    pub cognito: Client,
    pub responder: Responder,
    pub function_arn: String,
}

impl State {
    pub async fn init(config: Config) -> Result<Self, PutError> {
        let sdk = shared::aws::sdk_config().await;
        Ok(Self {
            cognito: Client::new(&shared::aws::with_timeout(&sdk, config.aws_timeout)),
            responder: Responder::new(config.response_urls)?,
            function_arn: config.function_arn,
        })
    }
}

/// The resource's properties, as the template passes them (CloudFormation sends strings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Properties {
    pub user_pool_id: String,
    /// The function to set as PostConfirmation: post-confirmation's ARN.
    pub function_arn: String,
    /// Whether a different PostConfirmation trigger already on the pool may be replaced.
    pub replace_existing: bool,
}

impl Properties {
    /// Reads the properties; `FunctionArn` must be `ours`, the stack's own function.
    pub fn from_request(request: &Request, ours: &str) -> Result<Self, Error> {
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
                reason: "only this stack's post-confirmation function may be wired".into(),
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
        "user pool {pool} already has a different PostConfirmation trigger ({current}); \
         refusing to replace it. Set the stack parameter ReplaceExistingPostConfirmationTrigger \
         to true to replace it (it is put back when the stack is deleted)"
    )]
    OtherTrigger { pool: String, current: String },
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
            apply(&state.cognito, &state.function_arn, request).await
        })
        .await
}

/// Does what `request` asks of the pool.
pub async fn apply(cognito: &Client, ours: &str, request: &Request) -> Result<Outcome, Error> {
    let physical = request.physical_resource_id.as_deref();
    match request.request_type {
        RequestType::Create => {
            attach(cognito, &Properties::from_request(request, ours)?, &[]).await
        }
        RequestType::Update => {
            let props = Properties::from_request(request, ours)?;
            match physical.and_then(Wired::parse) {
                Some(wired) if wired.pool_id == props.user_pool_id => {
                    // Our function as it was before the update is ours too, not a stranger's.
                    let ours: Vec<&str> = request.old_property("FunctionArn").into_iter().collect();
                    rewire(cognito, &props, wired, &ours).await
                }
                _ => attach(cognito, &props, &[]).await,
            }
        }
        RequestType::Delete => {
            let physical = physical.unwrap_or_default();
            match Wired::parse(physical) {
                Some(wired) => detach(cognito, &wired, ours).await?,
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
        .or_else(|| settings::remembered_trigger(&pool));
    update(cognito, &pool, Some(props.function_arn.clone()), remembered).await?;
    let wired = Wired {
        pool_id: props.user_pool_id.clone(),
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
    let remembered = settings::remembered_trigger(&pool);
    update(cognito, &pool, Some(props.function_arn.clone()), remembered).await?;
    Ok(outcome(&wired))
}

/// The pool's trigger before ours, when it may be replaced; an error when it may not.
fn check_current(
    pool: &UserPoolType,
    props: &Properties,
    ours: &[&str],
) -> Result<Option<String>, Error> {
    match settings::post_confirmation(pool) {
        None => Ok(None),
        Some(current) if current == props.function_arn || ours.contains(&current) => Ok(None),
        Some(current) if props.replace_existing => Ok(Some(current.to_owned())),
        Some(current) => Err(Error::OtherTrigger {
            pool: props.user_pool_id.clone(),
            current: current.to_owned(),
        }),
    }
}

/// Puts the earlier trigger back if the pool still points at our function. If someone has
/// set another trigger since, theirs stays. A pool that is gone has nothing to restore.
async fn detach(cognito: &Client, wired: &Wired, ours: &str) -> Result<(), Error> {
    let pool = match describe(cognito, &wired.pool_id).await {
        Err(Error::PoolNotFound(_)) => {
            tracing::warn!(pool = %wired.pool_id, "the user pool is gone; nothing to restore");
            return Ok(());
        }
        other => other?,
    };
    let current = settings::post_confirmation(&pool);
    if current == Some(ours) {
        // What the pool itself remembers, never what the request's physical id names.
        let previous = settings::remembered_trigger(&pool);
        if wired.previous.is_some() && wired.previous != previous {
            tracing::warn!(pool = %wired.pool_id, claimed = wired.previous.as_deref().unwrap_or("none"),
                "the physical id names a previous trigger the pool does not remember; not restored");
        }
        update(cognito, &pool, previous.clone(), None).await?;
        tracing::info!(pool = %wired.pool_id, restored = previous.as_deref().unwrap_or("none"), "PostConfirmation restored");
    } else {
        tracing::warn!(pool = %wired.pool_id, current = current.unwrap_or("none"), "the pool no longer points at our function; left as it is");
    }
    Ok(())
}

fn outcome(wired: &Wired) -> Outcome {
    Outcome::new(wired.to_string())
        .with("UserPoolId", wired.pool_id.clone())
        .with(
            "PreviousPostConfirmation",
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
    post_confirmation: Option<String>,
    remember: Option<String>,
) -> Result<(), Error> {
    settings::carry_over(
        cognito.update_user_pool(),
        pool,
        post_confirmation,
        remember,
    )
    .send()
    .await
    .map_err(|e| update_failure(pool, e.code(), shared::aws::error_line(&e)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use aws_sdk_cognitoidentityprovider::types::SmsConfigurationType;

    use super::*;

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
