//! The settings, read and checked once at cold start: above all the one function each trigger
//! may be set to ([`Functions`]) and the secret holding the record key; and what is built from
//! them once per execution environment.

use std::time::Duration;

use aws_sdk_cognitoidentityprovider::Client;
use custom_resource::{PutError, Responder, UrlPolicy};
use shared::env::{ConfigError, Env, ProcessEnv};

use crate::{Error, home::Home, record_key::KeySource, trigger::Trigger};

/// The function's settings, read once at cold start.
#[derive(Debug, Clone)]
pub struct Config {
    pub aws_timeout: Duration,
    pub functions: Functions,
    /// `RECORD_KEY_SECRET_ARN`: the secret holding the key that signs the physical ids.
    pub record_key_secret: String,
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
            record_key_secret: secret_arn(
                "RECORD_KEY_SECRET_ARN",
                env.required("RECORD_KEY_SECRET_ARN", "(arn:aws:secretsmanager:...)")?,
            )?,
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
    /// `SIGN_IN_GUARD_FUNCTION_ARN`: set only where the stack wires the sign-in guard
    /// (PostAuthentication) too.
    pub sign_in_guard: Option<String>,
    /// The partition, region and account of the post-confirmation function: the only place an
    /// earlier trigger is recorded from and put back to.
    pub home: Home,
    /// `POOL_LAYOUT`: whether the stack created its pool (`created`: only the created-pool
    /// resource is served, [`crate::created_pool`]) or wires an existing one (`existing`, the
    /// default: only the trigger resources are). A request of the other kind changes nothing.
    pub layout: PoolLayout,
}

/// Which pool the stack's triggers are on, and so which resources this function serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolLayout {
    /// A pool the stack creates (CloudFormation wires it; the stack's delete clears it).
    Created,
    /// An existing pool, wired by the trigger resources.
    Existing,
}

impl Functions {
    pub fn from_lookup(env: &impl Env) -> Result<Self, ConfigError> {
        let post_var = Trigger::PostConfirmation.function_var();
        let pre_var = Trigger::PreSignUp.function_var();
        let guard_var = Trigger::PostAuthentication.function_var();
        let post_confirmation =
            lambda_arn(post_var, env.required(post_var, "(arn:aws:lambda:...)")?)?;
        let home = Home::of(&post_confirmation).ok_or_else(|| {
            ConfigError::invalid(
                post_var,
                "expected arn:<partition>:lambda:<region>:<account>:function:<name>",
            )
        })?;
        let layout = match env.non_empty("POOL_LAYOUT").as_deref() {
            None | Some("existing") => PoolLayout::Existing,
            Some("created") => PoolLayout::Created,
            Some(_) => {
                return Err(ConfigError::invalid(
                    "POOL_LAYOUT",
                    "expected \"created\" or \"existing\"",
                ));
            }
        };
        Ok(Self {
            post_confirmation,
            home,
            layout,
            pre_sign_up: env
                .non_empty(pre_var)
                .map(|arn| lambda_arn(pre_var, arn))
                .transpose()?,
            sign_in_guard: env
                .non_empty(guard_var)
                .map(|arn| lambda_arn(guard_var, arn))
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
            Trigger::PostAuthentication => self
                .sign_in_guard
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

fn secret_arn(var: &str, arn: String) -> Result<String, ConfigError> {
    if arn.starts_with("arn:") && arn.contains(":secretsmanager:") {
        Ok(arn)
    } else {
        Err(ConfigError::invalid(
            var,
            "expected a Secrets Manager secret ARN",
        ))
    }
}

/// What lives for the whole execution environment.
pub struct State {
    pub cognito: Client,
    pub responder: Responder,
    pub functions: Functions,
    /// The key that signs physical ids, read on first use.
    pub record_key: KeySource,
}

impl State {
    pub async fn init(config: Config) -> Result<Self, PutError> {
        let sdk = shared::aws::with_timeout(&shared::aws::sdk_config().await, config.aws_timeout);
        Ok(Self {
            cognito: Client::new(&sdk),
            responder: Responder::new(config.response_urls)?,
            functions: config.functions,
            record_key: KeySource::new(
                aws_sdk_secretsmanager::Client::new(&sdk),
                config.record_key_secret,
            ),
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
            sign_in_guard: None,
            home: Home::of(POST).unwrap(),
            layout: PoolLayout::Existing,
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
        let mut created = env(Some(PRE));
        created.insert("POOL_LAYOUT", "created");
        assert_eq!(
            Functions::from_lookup(&created).unwrap().layout,
            PoolLayout::Created
        );
        created.insert("POOL_LAYOUT", "Created");
        assert_eq!(
            Functions::from_lookup(&created).unwrap_err().var(),
            "POOL_LAYOUT"
        );
        let e = Functions::from_lookup(&HashMap::<&str, &str>::new()).unwrap_err();
        assert_eq!(e.var(), "TRIGGER_FUNCTION_ARN");
        // The stack's own function names the account and region triggers are put back from.
        let layer = "arn:aws:lambda:us-east-1:123456789012:layer:db-sync";
        let e =
            Functions::from_lookup(&HashMap::from([("TRIGGER_FUNCTION_ARN", layer)])).unwrap_err();
        assert_eq!(e.var(), "TRIGGER_FUNCTION_ARN");
    }

    #[test]
    fn the_record_key_secret_is_required() {
        let mut env: HashMap<&str, &str> = [("TRIGGER_FUNCTION_ARN", POST)].into();
        let e = Config::from_lookup(&env).unwrap_err();
        assert_eq!(e.var(), "RECORD_KEY_SECRET_ARN");
        env.insert("RECORD_KEY_SECRET_ARN", "pool-trigger-key");
        let e = Config::from_lookup(&env).unwrap_err();
        assert_eq!(e.var(), "RECORD_KEY_SECRET_ARN");
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-sync-key-AbCdEf";
        env.insert("RECORD_KEY_SECRET_ARN", arn);
        assert_eq!(Config::from_lookup(&env).unwrap().record_key_secret, arn);
    }
}
