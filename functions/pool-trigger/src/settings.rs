//! Every setting `UpdateUserPool` takes, carried over from what `DescribeUserPool` returned.
//!
//! `UpdateUserPool` resets each setting it is not given (auto-verified attributes, the other
//! triggers, email and SMS settings, message templates, MFA, ...), so the request repeats all
//! of them and changes only the one trigger the resource manages and that trigger's tag
//! ([`crate::pool_triggers`]); the verification messages, which DescribeUserPool may report
//! twice over, go as the one set UpdateUserPool accepts ([`crate::verification`]). The unit
//! tests fail when an SDK update brings an input field this code does not fill.

use aws_sdk_cognitoidentityprovider::{
    operation::update_user_pool::builders::UpdateUserPoolFluentBuilder,
    types::{AdminCreateUserConfigType, UserPoolType},
};

use crate::{
    pool_triggers::{Record, lambda_config, tags},
    trigger::Trigger,
    verification::verification_messages,
};

pub use crate::pool_triggers::current;

/// `request` with every updatable setting of `pool`, `trigger` set to `function` (`None`
/// removes it), and that trigger's tags as `record` says ([`Record`]). The other triggers and
/// their tags go as the pool has them.
pub fn carry_over(
    request: UpdateUserPoolFluentBuilder,
    pool: &UserPoolType,
    trigger: Trigger,
    function: Option<String>,
    record: Record,
) -> UpdateUserPoolFluentBuilder {
    let tags = tags(pool, trigger, record);
    let messages = verification_messages(pool);
    request
        .set_user_pool_id(pool.id.clone())
        .set_pool_name(pool.name.clone())
        .set_policies(pool.policies.clone())
        .set_deletion_protection(pool.deletion_protection.clone())
        .set_lambda_config(Some(lambda_config(
            pool.lambda_config.as_ref(),
            trigger,
            function,
        )))
        .set_auto_verified_attributes(pool.auto_verified_attributes.clone())
        .set_sms_verification_message(messages.sms_verification_message)
        .set_email_verification_message(messages.email_verification_message)
        .set_email_verification_subject(messages.email_verification_subject)
        .set_verification_message_template(messages.template)
        .set_sms_authentication_message(pool.sms_authentication_message.clone())
        .set_user_attribute_update_settings(pool.user_attribute_update_settings.clone())
        .set_mfa_configuration(pool.mfa_configuration.clone())
        .set_device_configuration(pool.device_configuration.clone())
        .set_email_configuration(pool.email_configuration.clone())
        .set_sms_configuration(pool.sms_configuration.clone())
        .set_user_pool_tags(Some(tags))
        .set_admin_create_user_config(admin_create_user_config(pool))
        .set_user_pool_add_ons(pool.user_pool_add_ons.clone())
        .set_account_recovery_setting(pool.account_recovery_setting.clone())
        .set_user_pool_tier(pool.user_pool_tier.clone())
        .set_key_configuration(pool.key_configuration.clone())
        .set_issuer_configuration(pool.issuer_configuration.clone())
        .set_acr_configuration(pool.acr_configuration.clone())
}

/// The pool's admin-create-user settings. DescribeUserPool still reports the deprecated
/// `UnusedAccountValidityDays`, and UpdateUserPool refuses it beside the password policy's
/// `TemporaryPasswordValidityDays`, which replaced it: then only the policy's is sent.
fn admin_create_user_config(pool: &UserPoolType) -> Option<AdminCreateUserConfigType> {
    let c = pool.admin_create_user_config.as_ref()?;
    let policy_has_it = pool
        .policies
        .as_ref()
        .and_then(|p| p.password_policy.as_ref())
        .is_some_and(|p| p.temporary_password_validity_days > 0);
    Some(
        AdminCreateUserConfigType::builder()
            .set_allow_admin_create_user_only(Some(c.allow_admin_create_user_only))
            .set_invite_message_template(c.invite_message_template.clone())
            .set_unused_account_validity_days(
                (!policy_has_it && c.unused_account_validity_days > 0)
                    .then_some(c.unused_account_validity_days),
            )
            .build(),
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeSet;

    use aws_sdk_cognitoidentityprovider::{Client, config::Region, types::*};

    use super::*;

    fn client() -> Client {
        let config = aws_sdk_cognitoidentityprovider::Config::builder()
            .behavior_version(aws_sdk_cognitoidentityprovider::config::BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .build();
        Client::from_conf(config)
    }

    /// The request that puts a function of ours in as `pool`'s PostConfirmation trigger,
    /// recording it signed, as a Create does.
    pub(crate) fn wire_ours(pool: &UserPoolType) -> UpdateUserPoolFluentBuilder {
        carry_over(
            client().update_user_pool(),
            pool,
            Trigger::PostConfirmation,
            Some("ours".into()),
            Record::Signed,
        )
    }

    /// A pool with every setting DescribeUserPool can return set.
    fn full_pool() -> UserPoolType {
        UserPoolType::builder()
            .id("us-east-1_abc")
            .name("app")
            .policies(
                UserPoolPolicyType::builder()
                    .password_policy(
                        PasswordPolicyType::builder()
                            .minimum_length(12)
                            .temporary_password_validity_days(3)
                            .build(),
                    )
                    .build(),
            )
            .deletion_protection(DeletionProtectionType::Active)
            .lambda_config(
                LambdaConfigType::builder()
                    .pre_sign_up("arn:aws:lambda:us-east-1:1:function:pre")
                    .custom_message("arn:aws:lambda:us-east-1:1:function:msg")
                    .build(),
            )
            .auto_verified_attributes(VerifiedAttributeType::Email)
            .sms_verification_message("code {####}")
            .email_verification_message("code {####}")
            .email_verification_subject("verify")
            .verification_message_template(
                VerificationMessageTemplateType::builder()
                    .email_message("code {####}")
                    .build(),
            )
            .sms_authentication_message("auth {####}")
            .user_attribute_update_settings(
                UserAttributeUpdateSettingsType::builder()
                    .attributes_require_verification_before_update(VerifiedAttributeType::Email)
                    .build(),
            )
            .mfa_configuration(UserPoolMfaType::Optional)
            .device_configuration(
                DeviceConfigurationType::builder()
                    .challenge_required_on_new_device(true)
                    .build(),
            )
            .email_configuration(
                EmailConfigurationType::builder()
                    .email_sending_account(EmailSendingAccountType::Developer)
                    .source_arn("arn:aws:ses:us-east-1:1:identity/a@example.com")
                    .build(),
            )
            .sms_configuration(
                SmsConfigurationType::builder()
                    .sns_caller_arn("arn:aws:iam::1:role/sns")
                    .build(),
            )
            .user_pool_tags("team", "web")
            .admin_create_user_config(
                AdminCreateUserConfigType::builder()
                    .allow_admin_create_user_only(true)
                    .unused_account_validity_days(7)
                    .build(),
            )
            .user_pool_add_ons(
                UserPoolAddOnsType::builder()
                    .advanced_security_mode(AdvancedSecurityModeType::Audit)
                    .build()
                    .unwrap(),
            )
            .account_recovery_setting(AccountRecoverySettingType::builder().build())
            .user_pool_tier(UserPoolTierType::Essentials)
            .key_configuration(KeyConfigurationType::builder().build())
            .issuer_configuration(IssuerConfigurationType::builder().build())
            .acr_configuration(
                "acr",
                AcrLevelConfigType::builder()
                    .acr_value("1")
                    .build()
                    .unwrap(),
            )
            .build()
    }

    #[test]
    fn every_input_field_of_update_user_pool_is_filled() {
        // The deprecated verification-message fields go only when the template lacks their
        // message (crate::verification): a pool whose messages are in the deprecated fields
        // alone fills those. A field neither pool fills is one this code does not carry.
        let full = full_pool();
        let deprecated_only = UserPoolType::builder()
            .set_verification_message_template(None)
            .set_email_verification_message(full.email_verification_message.clone())
            .set_email_verification_subject(full.email_verification_subject.clone())
            .set_sms_verification_message(full.sms_verification_message.clone())
            .build();
        let mut debugs = Vec::new();
        let mut unset_in_each = Vec::new();
        for pool in [&full, &deprecated_only] {
            let request = wire_ours(pool);
            // The input's own fields sit at one level of indentation in its pretty Debug; a
            // field this code does not fill (a new one in a later SDK) shows as `None` there.
            let debug = format!("{:#?}", request.as_input());
            let top_level = || {
                debug
                    .lines()
                    .filter(|l| l.starts_with("    ") && !l.starts_with("     "))
            };
            assert!(top_level().count() >= 24);
            let unset: BTreeSet<String> = top_level()
                .filter(|l| l.ends_with(": None,"))
                .map(str::to_owned)
                .collect();
            unset_in_each.push(unset);
            debugs.push(debug);
        }
        let unset: Vec<&String> = unset_in_each[0].intersection(&unset_in_each[1]).collect();
        assert!(
            unset.is_empty(),
            "not carried over: {unset:?}\n{}",
            debugs[0]
        );
    }

    #[test]
    fn only_post_confirmation_changes_among_the_triggers() {
        let mut pool = full_pool();
        pool.user_pool_tags.get_or_insert_default().insert(
            "db-sync:previous-post-confirmation".into(),
            "arn:aws:lambda:us-east-1:1:function:planted".into(),
        );
        let request = wire_ours(&pool);
        let tags = request.as_input().get_user_pool_tags().clone().unwrap();
        assert_eq!(
            tags.get("db-sync:record-post-confirmation")
                .map(String::as_str),
            Some("signed-id")
        );
        assert!(
            !tags.contains_key("db-sync:previous-post-confirmation"),
            "the previous version's tag goes: {tags:?}"
        );
        assert_eq!(
            tags.get("team").map(String::as_str),
            Some("web"),
            "{tags:?}"
        );
        let lc = request.as_input().get_lambda_config().clone().unwrap();
        assert_eq!(lc.post_confirmation(), Some("ours"));
        assert_eq!(
            lc.pre_sign_up(),
            Some("arn:aws:lambda:us-east-1:1:function:pre")
        );
        assert_eq!(
            lc.custom_message(),
            Some("arn:aws:lambda:us-east-1:1:function:msg")
        );
        let removed = carry_over(
            client().update_user_pool(),
            &pool,
            Trigger::PostConfirmation,
            None,
            Record::Cleared,
        );
        let tags = removed.as_input().get_user_pool_tags().clone().unwrap();
        assert!(
            !tags.contains_key("db-sync:previous-post-confirmation")
                && !tags.contains_key("db-sync:record-post-confirmation"),
            "{tags:?}"
        );
        let lc = removed.as_input().get_lambda_config().clone().unwrap();
        assert_eq!(lc.post_confirmation(), None);
        assert_eq!(
            lc.pre_sign_up(),
            Some("arn:aws:lambda:us-east-1:1:function:pre")
        );
    }

    /// A pool with both triggers this function manages wired under signed ids, each with the
    /// previous version's tag too.
    fn pool_with_both_triggers() -> UserPoolType {
        let mut pool = full_pool();
        pool.lambda_config = Some(
            LambdaConfigType::builder()
                .pre_sign_up("arn:aws:lambda:us-east-1:1:function:our-pre")
                .post_confirmation("arn:aws:lambda:us-east-1:1:function:our-post")
                .custom_message("arn:aws:lambda:us-east-1:1:function:msg")
                .build(),
        );
        let tags = pool.user_pool_tags.get_or_insert_default();
        for trigger in Trigger::ALL {
            tags.insert(
                trigger.legacy_previous_tag().into(),
                "arn:aws:lambda:us-east-1:1:function:old".into(),
            );
            tags.insert(trigger.record_tag().into(), "signed-id".into());
        }
        pool
    }

    #[test]
    fn each_trigger_changes_only_itself_and_its_own_tags() {
        let pool = pool_with_both_triggers();
        let tag = |pool: &UserPoolType, key: &str| {
            pool.user_pool_tags
                .as_ref()
                .and_then(|t| t.get(key).cloned())
        };
        for (trigger, other) in [
            (Trigger::PreSignUp, Trigger::PostConfirmation),
            (Trigger::PostConfirmation, Trigger::PreSignUp),
        ] {
            for (function, record, signed) in [
                (Some("new".to_owned()), Record::Signed, true),
                (Some("new".to_owned()), Record::Kept, true),
                (None, Record::Cleared, false),
            ] {
                let request = carry_over(
                    client().update_user_pool(),
                    &pool,
                    trigger,
                    function.clone(),
                    record,
                );
                let input = request.as_input();
                let sent = UserPoolType::builder()
                    .set_lambda_config(input.get_lambda_config().clone())
                    .set_user_pool_tags(input.get_user_pool_tags().clone())
                    .build();
                assert_eq!(current(&sent, trigger), function.as_deref(), "{trigger}");
                assert_eq!(
                    crate::pool_triggers::wired_under_signed_id(&sent, trigger),
                    signed,
                    "{trigger} {record:?}"
                );
                assert_eq!(tag(&sent, trigger.legacy_previous_tag()), None);
                assert_eq!(current(&sent, other), current(&pool, other), "{trigger}");
                for key in [other.legacy_previous_tag(), other.record_tag()] {
                    assert_eq!(tag(&sent, key), tag(&pool, key), "{trigger}: {key}");
                }
                assert_eq!(
                    sent.lambda_config.as_ref().unwrap().custom_message(),
                    Some("arn:aws:lambda:us-east-1:1:function:msg")
                );
                assert_eq!(tag(&sent, "team").as_deref(), Some("web"));
            }
        }
    }

    #[test]
    fn the_deprecated_validity_days_go_only_without_the_policys() {
        let pool = full_pool();
        let sent = admin_create_user_config(&pool).unwrap();
        assert_eq!(sent.unused_account_validity_days(), 0);
        assert!(sent.allow_admin_create_user_only());
        let without_policy = UserPoolType::builder()
            .set_admin_create_user_config(pool.admin_create_user_config.clone())
            .build();
        assert_eq!(
            admin_create_user_config(&without_policy)
                .unwrap()
                .unused_account_validity_days(),
            7
        );
    }
}
