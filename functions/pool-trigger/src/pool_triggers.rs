//! The pool's triggers (its `LambdaConfig`): which function each is set to, the one the
//! resource manages replaced and every other carried over as it is; and the pool's tags for
//! that trigger ([`Record`]). The unit tests fail when an SDK update brings a trigger this
//! code does not carry.

use std::collections::HashMap;

use aws_sdk_cognitoidentityprovider::types::{
    LambdaConfigType, UserPoolType, builders::LambdaConfigTypeBuilder,
};

use crate::trigger::Trigger;

/// What a write of the pool does with the trigger's [`Trigger::record_tag`]. Every write
/// removes the previous version's [`Trigger::legacy_previous_tag`], which nothing reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    /// Ours is wired under a signed id: the tag is set.
    Signed,
    /// Left as the pool has it (an Update under the previous version's unsigned id).
    Kept,
    /// Ours is taken out: the tag goes.
    Cleared,
}

/// The pool's tags after a write of `trigger` that does `record`.
pub(crate) fn tags(
    pool: &UserPoolType,
    trigger: Trigger,
    record: Record,
) -> HashMap<String, String> {
    let mut tags = pool.user_pool_tags.clone().unwrap_or_default();
    tags.remove(trigger.legacy_previous_tag());
    match record {
        Record::Signed => {
            tags.insert(trigger.record_tag().to_owned(), "signed-id".to_owned());
        }
        Record::Kept => {}
        Record::Cleared => {
            tags.remove(trigger.record_tag());
        }
    }
    tags
}

/// Whether the pool's `trigger` was wired under a signed id (its [`Trigger::record_tag`]).
pub fn wired_under_signed_id(pool: &UserPoolType, trigger: Trigger) -> bool {
    pool.user_pool_tags
        .as_ref()
        .is_some_and(|tags| tags.contains_key(trigger.record_tag()))
}

/// What the previous version's tag for `trigger` says (for the log only: never acted on).
pub fn legacy_previous(pool: &UserPoolType, trigger: Trigger) -> Option<&str> {
    pool.user_pool_tags
        .as_ref()?
        .get(trigger.legacy_previous_tag())
        .map(String::as_str)
}

/// The pool's `trigger`, if it has one.
pub fn current(pool: &UserPoolType, trigger: Trigger) -> Option<&str> {
    let c = pool.lambda_config.as_ref()?;
    match trigger {
        Trigger::PostConfirmation => c.post_confirmation.as_deref(),
        Trigger::PreSignUp => c.pre_sign_up.as_deref(),
        Trigger::PostAuthentication => c.post_authentication.as_deref(),
    }
}

/// The pool's triggers with `trigger` replaced by `function`.
pub(crate) fn lambda_config(
    current: Option<&LambdaConfigType>,
    trigger: Trigger,
    function: Option<String>,
) -> LambdaConfigType {
    let builder = match current {
        Some(c) => carried_triggers(c),
        None => LambdaConfigType::builder(),
    };
    match trigger {
        Trigger::PostConfirmation => builder.set_post_confirmation(function),
        Trigger::PreSignUp => builder.set_pre_sign_up(function),
        Trigger::PostAuthentication => builder.set_post_authentication(function),
    }
    .build()
}

/// Every trigger of `c` as it is.
fn carried_triggers(c: &LambdaConfigType) -> LambdaConfigTypeBuilder {
    LambdaConfigType::builder()
        .set_pre_sign_up(c.pre_sign_up.clone())
        .set_post_confirmation(c.post_confirmation.clone())
        .set_custom_message(c.custom_message.clone())
        .set_pre_authentication(c.pre_authentication.clone())
        .set_post_authentication(c.post_authentication.clone())
        .set_define_auth_challenge(c.define_auth_challenge.clone())
        .set_create_auth_challenge(c.create_auth_challenge.clone())
        .set_verify_auth_challenge_response(c.verify_auth_challenge_response.clone())
        .set_pre_token_generation(c.pre_token_generation.clone())
        .set_user_migration(c.user_migration.clone())
        .set_pre_token_generation_config(c.pre_token_generation_config.clone())
        .set_custom_sms_sender(c.custom_sms_sender.clone())
        .set_custom_email_sender(c.custom_email_sender.clone())
        .set_kms_key_id(c.kms_key_id.clone())
        .set_inbound_federation(c.inbound_federation.clone())
}

#[cfg(test)]
mod tests {
    use aws_sdk_cognitoidentityprovider::types::*;

    use super::*;

    #[test]
    fn every_trigger_of_the_pool_is_carried_over() {
        let arn = |name: &str| format!("arn:aws:lambda:us-east-1:1:function:{name}");
        let full = LambdaConfigType::builder()
            .pre_sign_up(arn("pre-sign-up"))
            .custom_message(arn("custom-message"))
            .post_confirmation(arn("post-confirmation"))
            .pre_authentication(arn("pre-authentication"))
            .post_authentication(arn("post-authentication"))
            .define_auth_challenge(arn("define"))
            .create_auth_challenge(arn("create"))
            .verify_auth_challenge_response(arn("verify"))
            .pre_token_generation(arn("pre-token"))
            .user_migration(arn("migration"))
            .pre_token_generation_config(
                PreTokenGenerationVersionConfigType::builder()
                    .lambda_version(PreTokenGenerationLambdaVersionType::V20)
                    .lambda_arn(arn("pre-token"))
                    .build()
                    .unwrap(),
            )
            .custom_sms_sender(
                CustomSmsLambdaVersionConfigType::builder()
                    .lambda_version(CustomSmsSenderLambdaVersionType::V10)
                    .lambda_arn(arn("sms"))
                    .build()
                    .unwrap(),
            )
            .custom_email_sender(
                CustomEmailLambdaVersionConfigType::builder()
                    .lambda_version(CustomEmailSenderLambdaVersionType::V10)
                    .lambda_arn(arn("email"))
                    .build()
                    .unwrap(),
            )
            .kms_key_id("arn:aws:kms:us-east-1:1:key/k")
            .inbound_federation(
                InboundFederationLambdaType::builder()
                    .lambda_version(InboundFederationLambdaVersionType::V10)
                    .lambda_arn(arn("federation"))
                    .build()
                    .unwrap(),
            )
            .build();
        // A field `full` cannot set (a new one in a later SDK) shows as `None` at the top
        // level of its pretty Debug: then this test, and `carried_triggers`, need it.
        let debug = format!("{full:#?}");
        let unset: Vec<&str> = debug
            .lines()
            .filter(|l| l.starts_with("    ") && !l.starts_with("     "))
            .filter(|l| l.ends_with(": None,"))
            .collect();
        assert!(unset.is_empty(), "not set, so not checked: {unset:?}");
        for trigger in Trigger::ALL {
            let pool = UserPoolType::builder().lambda_config(full.clone()).build();
            let same = current(&pool, trigger).map(str::to_owned);
            assert_eq!(lambda_config(Some(&full), trigger, same), full, "{trigger}");
        }
    }
}
