//! The settings, read and checked once at cold start: above all the one function each trigger
//! may be set to ([`Functions`]); and what is built from them once per execution environment.

use std::time::Duration;

use aws_sdk_cognitoidentityprovider::Client;
use custom_resource::{PutError, Responder, UrlPolicy};
use shared::env::{ConfigError, Env, ProcessEnv};

use crate::{Error, trigger::Trigger};

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

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::HashMap;

    use super::*;

    pub(crate) const POST: &str =
        "arn:aws:lambda:us-east-1:123456789012:function:db-sync-PostConfirmation";
    pub(crate) const PRE: &str = "arn:aws:lambda:us-east-1:123456789012:function:db-sync-PreSignUp";

    pub(crate) fn functions(pre_sign_up: Option<&str>) -> Functions {
        Functions {
            post_confirmation: POST.into(),
            pre_sign_up: pre_sign_up.map(str::to_owned),
        }
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
}
