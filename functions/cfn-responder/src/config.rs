//! The responder's settings, read and checked once at cold start, and what is built from them.

use std::fmt;

use custom_resource::{PutError, Responder, UrlPolicy};
use shared::env::{ConfigError, Env, ProcessEnv};

/// The function that does the resource's work (`TARGET_FUNCTION_ARN`): a Lambda function ARN,
/// unqualified or with a version or alias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetFunction(String);

impl TargetFunction {
    const VAR: &'static str = "TARGET_FUNCTION_ARN";

    /// Checks `arn` is `arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`.
    pub fn parse(arn: &str) -> Result<Self, ConfigError> {
        let invalid = |why: &str| ConfigError::invalid(Self::VAR, why.to_owned());
        let parts: Vec<&str> = arn.split(':').collect();
        let [
            arn_word,
            partition,
            service,
            region,
            account,
            kind,
            name,
            qualifier @ ..,
        ] = parts.as_slice()
        else {
            return Err(invalid(
                "expected arn:aws:lambda:REGION:ACCOUNT:function:NAME",
            ));
        };
        let word = |s: &str, extra: &[char]| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || extra.contains(&c))
        };
        if *arn_word != "arn"
            || !word(partition, &[])
            || *service != "lambda"
            || *kind != "function"
        {
            return Err(invalid(
                "expected arn:aws:lambda:REGION:ACCOUNT:function:NAME",
            ));
        }
        if !word(region, &[]) {
            return Err(invalid("the region is empty or not a region name"));
        }
        if account.len() != 12 || !account.chars().all(|c| c.is_ascii_digit()) {
            return Err(invalid("the account is not 12 digits"));
        }
        if !word(name, &['_']) || name.len() > 64 {
            return Err(invalid("the function name is empty or not a function name"));
        }
        match qualifier {
            [] => {}
            [q] if word(q, &['_', '$']) => {}
            _ => return Err(invalid("the qualifier is not a version or an alias")),
        }
        Ok(Self(arn.to_owned()))
    }

    pub fn arn(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TargetFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The function's settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub target: TargetFunction,
    /// Where answers may go (`CFN_RESPONSE_URL_ALLOW_LOOPBACK` lets the tests' recorder in).
    pub response_urls: UrlPolicy,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&ProcessEnv)
    }

    pub fn from_lookup(env: &impl Env) -> Result<Self, ConfigError> {
        let arn = env.required(
            TargetFunction::VAR,
            "(the ARN of the function that does the resource's work)",
        )?;
        Ok(Self {
            target: TargetFunction::parse(&arn)?,
            response_urls: UrlPolicy::from_lookup(env)?,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Answer(#[from] PutError),
}

/// Lambda's longest run: the client never ends an Invoke before the handler's budget does.
const LONGEST_INVOKE: std::time::Duration = std::time::Duration::from_secs(900);

/// What lives for the whole execution environment.
pub struct State {
    pub target: TargetFunction,
    pub lambda: aws_sdk_lambda::Client,
    pub responder: Responder,
}

impl State {
    pub async fn init(config: Config) -> Result<Self, InitError> {
        let sdk = shared::aws::sdk_config().await;
        Ok(Self {
            target: config.target,
            // One attempt per Invoke: the SDK would re-send a timed-out attempt, which may
            // already be running the migrations. The handler's own timeout bounds the wait;
            // only a throttle (which proves the call did not run) is asked again.
            lambda: aws_sdk_lambda::Client::new(&shared::aws::single_attempt(&sdk, LONGEST_INVOKE)),
            responder: Responder::new(config.response_urls)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn a_function_arn_is_taken_with_or_without_a_qualifier() {
        for ok in [
            "arn:aws:lambda:eu-west-1:123456789012:function:db-sync-SchemaMigrationsFunction-AbC12",
            "arn:aws:lambda:us-east-1:123456789012:function:migrate:live",
            "arn:aws:lambda:us-east-1:123456789012:function:migrate:7",
            "arn:aws-cn:lambda:cn-north-1:123456789012:function:m_1:$LATEST",
        ] {
            assert_eq!(TargetFunction::parse(ok).unwrap().arn(), ok);
        }
    }

    #[test]
    fn anything_else_is_refused_naming_the_variable() {
        for bad in [
            "",
            "migrate",
            "arn:aws:s3:::bucket",
            "arn:aws:lambda:us-east-1:123456789012:layer:x:1",
            "arn:aws:lambda:us-east-1:12345:function:migrate",
            "arn:aws:lambda::123456789012:function:migrate",
            "arn:aws:lambda:us-east-1:123456789012:function:",
            "arn:aws:lambda:us-east-1:123456789012:function:a/b",
            "arn:aws:lambda:us-east-1:123456789012:function:m:live:extra",
            "https://lambda.us-east-1.amazonaws.com/function:migrate",
        ] {
            let e = TargetFunction::parse(bad).unwrap_err();
            assert_eq!(e.var(), "TARGET_FUNCTION_ARN", "{bad}");
        }
    }

    #[test]
    fn the_config_needs_the_target() {
        let e = Config::from_lookup(&HashMap::new()).unwrap_err();
        assert_eq!(e.var(), "TARGET_FUNCTION_ARN");
        let env = HashMap::from([(
            "TARGET_FUNCTION_ARN",
            "arn:aws:lambda:us-east-1:123456789012:function:migrate",
        )]);
        let c = Config::from_lookup(&env).unwrap();
        assert!(!c.response_urls.allow_loopback_http);
    }
}
