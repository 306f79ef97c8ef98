//! What the pool-trigger test files share: an existing pool as a team would have it, the
//! pool's settings and triggers as the tests compare them, the function as the template
//! configures it, and its requests and answers.
// Each test file uses part of this.
#![allow(dead_code)]

use std::time::Duration;

use aws_sdk_cognitoidentityprovider::{
    Client,
    types::{
        AccountRecoverySettingType, AdminCreateUserConfigType, AttributeDataType,
        EmailConfigurationType, EmailSendingAccountType, LambdaConfigType, PasswordPolicyType,
        RecoveryOptionNameType, RecoveryOptionType, SchemaAttributeType, UserPoolMfaType,
        UserPoolPolicyType, UserPoolType, VerificationMessageTemplateType, VerifiedAttributeType,
    },
};
use harness::{Function, Stack, function_binary, recorder::ResponseRecorder};
use serde_json::{Value, json};

/// The stack's own post-confirmation, the function the PostConfirmation resource wires.
pub const OURS: &str = "arn:aws:lambda:us-east-1:123456789012:function:db-sync-PostConfirmation";
/// The stack's own pre-sign-up, the one function a PreSignUp resource may wire.
pub const OUR_PRE_SIGN_UP: &str =
    "arn:aws:lambda:us-east-1:123456789012:function:db-sync-PreSignUp";
/// The app's PreSignUp trigger, already on the pool.
pub const PRE_SIGN_UP: &str = "arn:aws:lambda:us-east-1:123456789012:function:app-pre-sign-up";
/// A PostConfirmation trigger the pool had before the stack.
pub const LEGACY: &str = "arn:aws:lambda:us-east-1:123456789012:function:legacy-post-confirmation";
/// The stack the requests come from.
pub const STACK_ID: &str = "arn:aws:cloudformation:us-east-1:123456789012:stack/db-sync/1";

/// A pool as a team would have it, with the trigger `post_confirmation` (if any).
pub async fn existing_pool(cognito: &Client, post_confirmation: Option<&str>) -> String {
    cognito
        .create_user_pool()
        .pool_name(format!("app-{}", uuid::Uuid::new_v4().simple()))
        .auto_verified_attributes(VerifiedAttributeType::Email)
        .email_configuration(
            EmailConfigurationType::builder()
                .email_sending_account(EmailSendingAccountType::Developer)
                .source_arn("arn:aws:ses:us-east-1:123456789012:identity/no-reply@example.com")
                .from("App <no-reply@example.com>")
                .reply_to_email_address("support@example.com")
                .build(),
        )
        .mfa_configuration(UserPoolMfaType::Optional)
        .policies(
            UserPoolPolicyType::builder()
                .password_policy(
                    PasswordPolicyType::builder()
                        .minimum_length(14)
                        .require_symbols(true)
                        .require_numbers(true)
                        .temporary_password_validity_days(3)
                        .build(),
                )
                .build(),
        )
        .lambda_config(
            LambdaConfigType::builder()
                .pre_sign_up(PRE_SIGN_UP)
                .set_post_confirmation(post_confirmation.map(str::to_owned))
                .build(),
        )
        .schema(
            SchemaAttributeType::builder()
                .name("team")
                .attribute_data_type(AttributeDataType::String)
                .mutable(true)
                .build(),
        )
        .user_pool_tags("team", "web")
        .user_pool_tags("cost-centre", "42")
        .verification_message_template(
            VerificationMessageTemplateType::builder()
                .email_subject("Your code")
                .email_message("Your code is {####}")
                .build(),
        )
        .admin_create_user_config(
            AdminCreateUserConfigType::builder()
                .allow_admin_create_user_only(true)
                .build(),
        )
        .account_recovery_setting(
            AccountRecoverySettingType::builder()
                .recovery_mechanisms(
                    RecoveryOptionType::builder()
                        .name(RecoveryOptionNameType::VerifiedEmail)
                        .priority(1)
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .expect("create_user_pool")
        .user_pool()
        .and_then(|p| p.id())
        .expect("pool id")
        .to_owned()
}

/// The pool as DescribeUserPool gives it.
pub async fn describe(cognito: &Client, pool: &str) -> UserPoolType {
    cognito
        .describe_user_pool()
        .user_pool_id(pool)
        .send()
        .await
        .expect("describe_user_pool")
        .user_pool
        .expect("a pool")
}

/// Every setting of the pool but its PostConfirmation trigger and modification time, as text
/// to compare before and after.
pub fn settings_but_post_confirmation(pool: &UserPoolType) -> Vec<(&'static str, String)> {
    let lc = pool.lambda_config.as_ref();
    vec![
        ("name", format!("{:?}", pool.name)),
        ("policies", format!("{:?}", pool.policies)),
        (
            "auto_verified_attributes",
            format!("{:?}", pool.auto_verified_attributes),
        ),
        (
            "email_configuration",
            format!("{:?}", pool.email_configuration),
        ),
        ("mfa_configuration", format!("{:?}", pool.mfa_configuration)),
        (
            "pre_sign_up",
            format!("{:?}", lc.and_then(|c| c.pre_sign_up.clone())),
        ),
        ("schema_attributes", format!("{:?}", pool.schema_attributes)),
        (
            "user_pool_tags",
            format!(
                "{:?}",
                pool.user_pool_tags
                    .as_ref()
                    .map(|t| t.iter().collect::<std::collections::BTreeMap<_, _>>())
            ),
        ),
        (
            "verification_message_template",
            format!("{:?}", pool.verification_message_template),
        ),
        (
            "admin_create_user_config",
            format!("{:?}", pool.admin_create_user_config),
        ),
        (
            "account_recovery_setting",
            format!("{:?}", pool.account_recovery_setting),
        ),
        (
            "deletion_protection",
            format!("{:?}", pool.deletion_protection),
        ),
    ]
}

/// The pool's PostConfirmation trigger.
pub fn post_confirmation(pool: &UserPoolType) -> Option<&str> {
    pool.lambda_config
        .as_ref()
        .and_then(|c| c.post_confirmation.as_deref())
}

/// The pool's PreSignUp trigger.
pub fn pre_sign_up(pool: &UserPoolType) -> Option<&str> {
    pool.lambda_config
        .as_ref()
        .and_then(|c| c.pre_sign_up.as_deref())
}

/// The pool's (PreSignUp, PostConfirmation) triggers.
pub fn triggers(pool: &UserPoolType) -> (Option<&str>, Option<&str>) {
    (pre_sign_up(pool), post_confirmation(pool))
}

/// Every setting of the pool but its triggers and tags (which the wiring changes).
pub fn settings_but_triggers_and_tags(pool: &UserPoolType) -> Vec<(&'static str, String)> {
    settings_but_post_confirmation(pool)
        .into_iter()
        .filter(|(name, _)| !["pre_sign_up", "user_pool_tags"].contains(name))
        .collect()
}

/// A custom-resource request from CloudFormation, answered to `recorder` under `key`.
pub fn event(
    recorder: &ResponseRecorder,
    key: &str,
    request_type: &str,
    physical: Option<&str>,
    properties: Value,
) -> Value {
    let mut e = json!({
        "RequestType": request_type,
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:db-sync-PoolTrigger",
        "ResponseURL": recorder.url(key),
        "StackId": STACK_ID,
        "RequestId": format!("{key}-request"),
        "LogicalResourceId": "PoolPostConfirmationTrigger",
        "ResourceType": "Custom::PoolPostConfirmationTrigger",
        "ResourceProperties": properties,
    });
    if let Some(p) = physical {
        e["PhysicalResourceId"] = json!(p);
    }
    e
}

/// The PostConfirmation resource's properties: [`OURS`] as the pool's PostConfirmation.
pub fn properties(pool: &str, replace: &str) -> Value {
    json!({
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:db-sync-PoolTrigger",
        "UserPoolId": pool,
        "FunctionArn": OURS,
        "ReplaceExistingTrigger": replace,
    })
}

/// The PreSignUp resource's properties: the stack's pre-sign-up as the pool's PreSignUp.
pub fn pre_sign_up_properties(pool: &str, replace: &str) -> Value {
    json!({
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:db-sync-PoolTrigger",
        "UserPoolId": pool,
        "Trigger": "PreSignUp",
        "FunctionArn": OUR_PRE_SIGN_UP,
        "ReplaceExistingTrigger": replace,
    })
}

/// The answer PUT to `recorder` under `key`.
pub async fn answer(recorder: &ResponseRecorder, key: &str) -> Value {
    let put = recorder
        .wait_for(key, Duration::from_secs(10))
        .await
        .unwrap_or_else(|| panic!("no answer was PUT for {key}"));
    assert_eq!(put.method, "PUT");
    let body = put.json();
    eprintln!("answer {key}: {body}");
    body
}

/// Sends `f` a custom-resource request ([`event`]) and returns the answer it PUT.
pub async fn request(
    f: &Function,
    recorder: &ResponseRecorder,
    key: &str,
    request_type: &str,
    physical: Option<&str>,
    properties: Value,
) -> Value {
    f.invoke(&event(recorder, key, request_type, physical, properties))
        .await;
    answer(recorder, key).await
}

/// Wires the trigger for real with `props`, then sends a forged Delete whose physical id
/// names `evil` as the trigger `slot` (`post-confirmation`, `pre-sign-up`) had before; both
/// must answer SUCCESS. What the pool holds afterwards is the caller's to check: the forged
/// Delete changes nothing (`pool_trigger_planted.rs` has every other shape of forged id).
pub async fn wire_then_forge_delete(
    f: &Function,
    recorder: &ResponseRecorder,
    pool: &str,
    slot: &str,
    evil: &str,
    props: Value,
) {
    let wired = request(f, recorder, "wire", "Create", None, props.clone()).await;
    assert_eq!(wired["Status"], "SUCCESS", "{wired}");
    let forged = format!("{pool}/{slot}/{evil}");
    let a = request(f, recorder, "forged-delete", "Delete", Some(&forged), props).await;
    assert_eq!(a["Status"], "SUCCESS", "{a}");
}

/// The bodies of the `UpdateUserPool` requests moto received since recording started.
pub fn update_bodies(stack: &Stack) -> Vec<Value> {
    stack
        .recorded_requests()
        .into_iter()
        .filter(|(action, _)| action == "UpdateUserPool")
        .map(|(_, body)| body)
        .collect()
}

/// [`pool_trigger_with`] answering to a recorder on this machine.
pub async fn pool_trigger(stack: &Stack) -> Function {
    pool_trigger_with(stack, &[("CFN_RESPONSE_URL_ALLOW_LOOPBACK", "true")]).await
}

/// The function as the template configures it (its own post-confirmation is [`OURS`], its
/// own pre-sign-up [`OUR_PRE_SIGN_UP`]), with `extra` settings.
pub async fn pool_trigger_with(stack: &Stack, extra: &[(&str, &str)]) -> Function {
    let mut extra = extra.to_vec();
    extra.push(("PRE_SIGN_UP_FUNCTION_ARN", OUR_PRE_SIGN_UP));
    pool_trigger_without_pre_sign_up(stack, &extra).await
}

/// The function as a template that wires no PreSignUp configures it: no
/// `PRE_SIGN_UP_FUNCTION_ARN`; its record key in a secret of its own, as the stack makes it.
pub async fn pool_trigger_without_pre_sign_up(stack: &Stack, extra: &[(&str, &str)]) -> Function {
    let mut env = stack.aws_env();
    env.push(("TRIGGER_FUNCTION_ARN".into(), OURS.into()));
    env.push(("RECORD_KEY_SECRET_ARN".into(), record_key(stack).await));
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    Function::spawn(&function_binary("pool-trigger"), &env)
        .await
        .unwrap()
}

/// A new record key for the function, in a secret as the template generates it (64
/// characters, no punctuation); returns the secret's ARN.
pub async fn record_key(stack: &Stack) -> String {
    let sm = aws_sdk_secretsmanager::Client::new(&stack.sdk_config().await);
    let key = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    sm.create_secret()
        .name(format!(
            "pool-trigger-key-{}",
            uuid::Uuid::new_v4().simple()
        ))
        .secret_string(key)
        .send()
        .await
        .expect("create_secret")
        .arn()
        .expect("arn")
        .to_owned()
}
