//! The pool-trigger custom resource against moto's Cognito: an existing pool with
//! auto-verified attributes, an email configuration, MFA, a password policy, a PreSignUp
//! trigger, a custom attribute and tags keeps every one of them when post-confirmation is
//! wired in, and gets its earlier trigger back on Delete. The same function wires the stack's
//! pre-sign-up as the pool's PreSignUp (`Trigger: PreSignUp`), leaving PostConfirmation as it
//! is, and each resource puts back only its own trigger. moto stores what an update sends
//! without checking it (it takes settings Cognito refuses together, such as the verification
//! messages below), so the tests also read what `UpdateUserPool` was sent, from moto's
//! request recorder.

use std::{collections::BTreeMap, time::Duration};

use aws_sdk_cognitoidentityprovider::{
    Client,
    types::{
        AccountRecoverySettingType, AdminCreateUserConfigType, AttributeDataType,
        DefaultEmailOptionType, EmailConfigurationType, EmailSendingAccountType, LambdaConfigType,
        PasswordPolicyType, RecoveryOptionNameType, RecoveryOptionType, SchemaAttributeType,
        UserPoolMfaType, UserPoolPolicyType, UserPoolType, VerificationMessageTemplateType,
        VerifiedAttributeType,
    },
};
use harness::{Function, Stack, function_binary, recorder::ResponseRecorder};
use serde_json::{Value, json};

const OURS: &str = "arn:aws:lambda:us-east-1:123456789012:function:db-sync-PostConfirmation";
/// The stack's own pre-sign-up, the one function a PreSignUp resource may wire.
const OUR_PRE_SIGN_UP: &str = "arn:aws:lambda:us-east-1:123456789012:function:db-sync-PreSignUp";
/// The app's PreSignUp trigger, already on the pool.
const PRE_SIGN_UP: &str = "arn:aws:lambda:us-east-1:123456789012:function:app-pre-sign-up";
const LEGACY: &str = "arn:aws:lambda:us-east-1:123456789012:function:legacy-post-confirmation";
const STACK_ID: &str = "arn:aws:cloudformation:us-east-1:123456789012:stack/db-sync/1";

/// A pool as a team would have it, with the trigger `post_confirmation` (if any).
async fn existing_pool(cognito: &Client, post_confirmation: Option<&str>) -> String {
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

async fn describe(cognito: &Client, pool: &str) -> UserPoolType {
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
fn settings_but_post_confirmation(pool: &UserPoolType) -> Vec<(&'static str, String)> {
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

fn post_confirmation(pool: &UserPoolType) -> Option<&str> {
    pool.lambda_config
        .as_ref()
        .and_then(|c| c.post_confirmation.as_deref())
}

fn pre_sign_up(pool: &UserPoolType) -> Option<&str> {
    pool.lambda_config
        .as_ref()
        .and_then(|c| c.pre_sign_up.as_deref())
}

/// The pool's (PreSignUp, PostConfirmation) triggers.
fn triggers(pool: &UserPoolType) -> (Option<&str>, Option<&str>) {
    (pre_sign_up(pool), post_confirmation(pool))
}

/// Every setting of the pool but its triggers and tags (which the wiring changes).
fn settings_but_triggers_and_tags(pool: &UserPoolType) -> Vec<(&'static str, String)> {
    settings_but_post_confirmation(pool)
        .into_iter()
        .filter(|(name, _)| !["pre_sign_up", "user_pool_tags"].contains(name))
        .collect()
}

fn event(
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

fn properties(pool: &str, replace: &str) -> Value {
    json!({
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:db-sync-PoolTrigger",
        "UserPoolId": pool,
        "FunctionArn": OURS,
        "ReplaceExistingTrigger": replace,
    })
}

/// The PreSignUp resource's properties: the stack's pre-sign-up as the pool's PreSignUp.
fn pre_sign_up_properties(pool: &str, replace: &str) -> Value {
    json!({
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:db-sync-PoolTrigger",
        "UserPoolId": pool,
        "Trigger": "PreSignUp",
        "FunctionArn": OUR_PRE_SIGN_UP,
        "ReplaceExistingTrigger": replace,
    })
}

async fn answer(recorder: &ResponseRecorder, key: &str) -> Value {
    let put = recorder
        .wait_for(key, Duration::from_secs(10))
        .await
        .unwrap_or_else(|| panic!("no answer was PUT for {key}"));
    assert_eq!(put.method, "PUT");
    let body = put.json();
    eprintln!("answer {key}: {body}");
    body
}

/// The bodies of the `UpdateUserPool` requests moto received since recording started.
fn update_bodies(stack: &Stack) -> Vec<Value> {
    stack
        .recorded_requests()
        .into_iter()
        .filter(|(action, _)| action == "UpdateUserPool")
        .map(|(_, body)| body)
        .collect()
}

async fn pool_trigger(stack: &Stack) -> Function {
    pool_trigger_with(stack, &[("CFN_RESPONSE_URL_ALLOW_LOOPBACK", "true")]).await
}

/// The function as the template configures it (its own post-confirmation is [`OURS`], its
/// own pre-sign-up [`OUR_PRE_SIGN_UP`]), with `extra` settings.
async fn pool_trigger_with(stack: &Stack, extra: &[(&str, &str)]) -> Function {
    let mut extra = extra.to_vec();
    extra.push(("PRE_SIGN_UP_FUNCTION_ARN", OUR_PRE_SIGN_UP));
    pool_trigger_without_pre_sign_up(stack, &extra).await
}

/// The function as a template that wires no PreSignUp configures it: no
/// `PRE_SIGN_UP_FUNCTION_ARN`.
async fn pool_trigger_without_pre_sign_up(stack: &Stack, extra: &[(&str, &str)]) -> Function {
    let mut env = stack.aws_env();
    env.push(("TRIGGER_FUNCTION_ARN".into(), OURS.into()));
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    Function::spawn(&function_binary("pool-trigger"), &env)
        .await
        .unwrap()
}

#[tokio::test]
async fn create_wires_our_trigger_keeping_every_setting_and_delete_takes_it_out() {
    let stack = Stack::private("moto").unwrap();
    let cognito = Client::new(&stack.sdk_config().await);
    let pool = existing_pool(&cognito, None).await;
    let before = describe(&cognito, &pool).await;
    let recorder = ResponseRecorder::start().await.unwrap();
    let f = pool_trigger(&stack).await;

    stack.start_recording();
    let inv = f
        .invoke(&event(
            &recorder,
            "create",
            "Create",
            None,
            properties(&pool, "false"),
        ))
        .await;
    assert_eq!(inv.response()["status"], "SUCCESS", "{:?}", inv.outcome);
    let a = answer(&recorder, "create").await;
    assert_eq!(a["Status"], "SUCCESS", "{a}");
    let physical = format!("{pool}/post-confirmation/none");
    assert_eq!(a["PhysicalResourceId"], physical);
    assert_eq!(a["Data"]["UserPoolId"], pool.as_str());

    // What UpdateUserPool was sent: every setting the pool has, and our trigger.
    let sent = update_bodies(&stack);
    assert_eq!(sent.len(), 1, "{sent:?}");
    let body = &sent[0];
    eprintln!(
        "UpdateUserPool body: {}",
        serde_json::to_string_pretty(body).unwrap()
    );
    assert_eq!(body["UserPoolId"], pool.as_str());
    assert_eq!(body["LambdaConfig"]["PostConfirmation"], OURS);
    assert_eq!(body["LambdaConfig"]["PreSignUp"], PRE_SIGN_UP);
    assert_eq!(body["AutoVerifiedAttributes"], json!(["email"]));
    assert_eq!(body["MfaConfiguration"], "OPTIONAL");
    let email = &body["EmailConfiguration"];
    assert_eq!(email["EmailSendingAccount"], "DEVELOPER");
    assert_eq!(
        email["SourceArn"],
        "arn:aws:ses:us-east-1:123456789012:identity/no-reply@example.com"
    );
    assert_eq!(email["ReplyToEmailAddress"], "support@example.com");
    assert_eq!(email["From"], "App <no-reply@example.com>");
    let password = &body["Policies"]["PasswordPolicy"];
    assert_eq!(password["MinimumLength"], 14);
    assert_eq!(password["RequireSymbols"], true);
    assert_eq!(password["TemporaryPasswordValidityDays"], 3);
    assert_eq!(
        body["UserPoolTags"],
        json!({"team": "web", "cost-centre": "42"})
    );
    assert_eq!(
        body["VerificationMessageTemplate"]["EmailMessage"],
        "Your code is {####}"
    );
    assert!(body.get("EmailVerificationMessage").is_none(), "{body}");
    assert_eq!(
        body["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"],
        true
    );
    assert_eq!(
        body["AccountRecoverySetting"]["RecoveryMechanisms"][0]["Name"],
        "verified_email"
    );
    // And every setting the pool reported that UpdateUserPool takes (the name is PoolName).
    // The deprecated verification-message fields, which moto copies from the template, go
    // only for a message the template lacks (see
    // each_kind_of_pool_is_sent_one_consistent_set_of_verification_messages).
    for (described, sent_as) in [
        (before.name.is_some(), "PoolName"),
        (before.policies.is_some(), "Policies"),
        (before.email_configuration.is_some(), "EmailConfiguration"),
        (
            before.verification_message_template.is_some(),
            "VerificationMessageTemplate",
        ),
        (
            before.sms_authentication_message.is_some(),
            "SmsAuthenticationMessage",
        ),
        (before.sms_configuration.is_some(), "SmsConfiguration"),
        (before.device_configuration.is_some(), "DeviceConfiguration"),
        (before.user_pool_add_ons.is_some(), "UserPoolAddOns"),
        (
            before.user_attribute_update_settings.is_some(),
            "UserAttributeUpdateSettings",
        ),
        (before.deletion_protection.is_some(), "DeletionProtection"),
        (before.user_pool_tier.is_some(), "UserPoolTier"),
    ] {
        if described {
            assert!(body.get(sent_as).is_some(), "{sent_as} not sent: {body}");
        }
    }

    // The pool: our trigger, everything else as it was.
    let after = describe(&cognito, &pool).await;
    assert_eq!(post_confirmation(&after), Some(OURS));
    assert_eq!(
        settings_but_post_confirmation(&after),
        settings_but_post_confirmation(&before)
    );

    // Update (a new deploy): same physical id, same state.
    stack.start_recording();
    f.invoke(&event(
        &recorder,
        "update",
        "Update",
        Some(&physical),
        properties(&pool, "false"),
    ))
    .await;
    let a = answer(&recorder, "update").await;
    assert_eq!(a["Status"], "SUCCESS", "{a}");
    assert_eq!(a["PhysicalResourceId"], physical);
    assert_eq!(update_bodies(&stack).len(), 1);

    // Delete: the trigger goes (the pool had none before); the rest stays.
    stack.start_recording();
    f.invoke(&event(
        &recorder,
        "delete",
        "Delete",
        Some(&physical),
        properties(&pool, "false"),
    ))
    .await;
    let a = answer(&recorder, "delete").await;
    assert_eq!(a["Status"], "SUCCESS", "{a}");
    let sent = update_bodies(&stack);
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0]["LambdaConfig"].get("PostConfirmation").is_none(),
        "{}",
        sent[0]
    );
    assert_eq!(sent[0]["LambdaConfig"]["PreSignUp"], PRE_SIGN_UP);
    assert_eq!(sent[0]["MfaConfiguration"], "OPTIONAL");
    let gone = describe(&cognito, &pool).await;
    assert_eq!(post_confirmation(&gone), None);
    assert_eq!(
        settings_but_post_confirmation(&gone),
        settings_but_post_confirmation(&before)
    );
}

#[tokio::test]
async fn another_trigger_is_refused_unless_replacing_is_asked_and_delete_puts_it_back() {
    let stack = Stack::private("moto").unwrap();
    let cognito = Client::new(&stack.sdk_config().await);
    let pool = existing_pool(&cognito, Some(LEGACY)).await;
    let before = describe(&cognito, &pool).await;
    let recorder = ResponseRecorder::start().await.unwrap();
    let f = pool_trigger(&stack).await;

    // Without the parameter: FAILED, naming the trigger and the parameter; nothing written.
    stack.start_recording();
    f.invoke(&event(
        &recorder,
        "refused",
        "Create",
        None,
        properties(&pool, "false"),
    ))
    .await;
    let a = answer(&recorder, "refused").await;
    assert_eq!(a["Status"], "FAILED");
    let reason = a["Reason"].as_str().unwrap();
    assert!(reason.contains(LEGACY), "{reason}");
    assert!(
        reason.contains("ReplaceExistingPostConfirmationTrigger"),
        "{reason}"
    );
    assert!(update_bodies(&stack).is_empty(), "nothing may be written");
    assert_eq!(
        post_confirmation(&describe(&cognito, &pool).await),
        Some(LEGACY)
    );

    // The rollback's Delete for that failed Create finds nothing to undo.
    let failed_id = a["PhysicalResourceId"].as_str().unwrap().to_owned();
    stack.start_recording();
    f.invoke(&event(
        &recorder,
        "rollback",
        "Delete",
        Some(&failed_id),
        properties(&pool, "false"),
    ))
    .await;
    assert_eq!(answer(&recorder, "rollback").await["Status"], "SUCCESS");
    assert!(update_bodies(&stack).is_empty());
    assert_eq!(
        post_confirmation(&describe(&cognito, &pool).await),
        Some(LEGACY)
    );

    // With it: ours replaces the legacy trigger, which the physical id keeps.
    f.invoke(&event(
        &recorder,
        "replace",
        "Create",
        None,
        properties(&pool, "true"),
    ))
    .await;
    let a = answer(&recorder, "replace").await;
    assert_eq!(a["Status"], "SUCCESS", "{a}");
    let physical = a["PhysicalResourceId"].as_str().unwrap().to_owned();
    assert_eq!(physical, format!("{pool}/post-confirmation/{LEGACY}"));
    assert_eq!(a["Data"]["PreviousPostConfirmation"], LEGACY);
    assert_eq!(
        post_confirmation(&describe(&cognito, &pool).await),
        Some(OURS)
    );

    // Delete: the legacy trigger is back, every other setting as it was.
    f.invoke(&event(
        &recorder,
        "restore",
        "Delete",
        Some(&physical),
        properties(&pool, "true"),
    ))
    .await;
    assert_eq!(answer(&recorder, "restore").await["Status"], "SUCCESS");
    let after = describe(&cognito, &pool).await;
    assert_eq!(post_confirmation(&after), Some(LEGACY));
    assert_eq!(
        settings_but_post_confirmation(&after),
        settings_but_post_confirmation(&before)
    );

    // Bad properties and a pool that does not exist: FAILED with the cause.
    f.invoke(&event(
        &recorder,
        "bad-pool-id",
        "Create",
        None,
        properties("not a pool", "false"),
    ))
    .await;
    let a = answer(&recorder, "bad-pool-id").await;
    assert_eq!(a["Status"], "FAILED");
    assert!(a["Reason"].as_str().unwrap().contains("UserPoolId"), "{a}");
    f.invoke(&event(
        &recorder,
        "no-pool",
        "Create",
        None,
        properties("us-east-1_Missing1", "false"),
    ))
    .await;
    let a = answer(&recorder, "no-pool").await;
    assert_eq!(a["Status"], "FAILED");
    assert!(
        a["Reason"].as_str().unwrap().contains("does not exist"),
        "{a}"
    );
}

/// Whoever can invoke the function directly must not be able to point the pool (and with it
/// every new user's attributes) at a Lambda of their choosing: a Create naming another
/// function, even with ReplaceExistingTrigger, is refused; a Delete whose physical id names a
/// "previous" trigger restores only what the pool itself remembers; and an answer goes only to
/// CloudFormation's pre-signed S3 URLs over HTTPS.
#[tokio::test]
async fn requests_naming_another_function_or_answer_url_change_nothing() {
    let stack = Stack::private("moto").unwrap();
    let cognito = Client::new(&stack.sdk_config().await);
    let pool = existing_pool(&cognito, Some(LEGACY)).await;
    let recorder = ResponseRecorder::start().await.unwrap();
    let f = pool_trigger(&stack).await;
    const EVIL: &str = "arn:aws:lambda:us-east-1:999999999999:function:collect-attributes";

    let mut props = properties(&pool, "true");
    props["FunctionArn"] = json!(EVIL);
    f.invoke(&event(&recorder, "evil-create", "Create", None, props))
        .await;
    let a = answer(&recorder, "evil-create").await;
    assert_eq!(a["Status"], "FAILED", "{a}");
    assert!(a["Reason"].as_str().unwrap().contains("FunctionArn"), "{a}");
    assert_eq!(
        post_confirmation(&describe(&cognito, &pool).await),
        Some(LEGACY)
    );

    // Wired for real (replacing the legacy trigger), then a forged Delete names EVIL as the
    // trigger to put back: the pool gets back what it remembers, the legacy one.
    f.invoke(&event(
        &recorder,
        "wire",
        "Create",
        None,
        properties(&pool, "true"),
    ))
    .await;
    assert_eq!(answer(&recorder, "wire").await["Status"], "SUCCESS");
    let forged = format!("{pool}/post-confirmation/{EVIL}");
    f.invoke(&event(
        &recorder,
        "forged-delete",
        "Delete",
        Some(&forged),
        properties(&pool, "true"),
    ))
    .await;
    assert_eq!(
        answer(&recorder, "forged-delete").await["Status"],
        "SUCCESS"
    );
    assert_eq!(
        post_confirmation(&describe(&cognito, &pool).await),
        Some(LEGACY),
        "restored from the pool's own memory, never from the request"
    );

    // Configured as deployed (no loopback answers): a request whose ResponseURL is not S3 over
    // HTTPS is not answered there, and changes nothing.
    let deployed = pool_trigger_with(&stack, &[]).await;
    let inv = deployed
        .invoke(&event(
            &recorder,
            "ssrf",
            "Create",
            None,
            properties(&pool, "true"),
        ))
        .await;
    let (t, m) = inv.error();
    assert!(t.starts_with("Permanent."), "{t}: {m}");
    assert!(m.contains("ResponseURL"), "{m}");
    assert!(
        recorder
            .wait_for("ssrf", Duration::from_millis(500))
            .await
            .is_none(),
        "nothing was PUT to the URL"
    );
    assert_eq!(
        post_confirmation(&describe(&cognito, &pool).await),
        Some(LEGACY)
    );
}

/// The verification messages of an `UpdateUserPool` body, by name: the deprecated top-level
/// fields, and the template's as `VerificationMessageTemplate.<field>`.
fn verification_messages(body: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for name in [
        "EmailVerificationMessage",
        "EmailVerificationSubject",
        "SmsVerificationMessage",
    ] {
        if let Some(v) = body[name].as_str() {
            out.insert(name.to_owned(), v.to_owned());
        }
    }
    for (field, v) in body["VerificationMessageTemplate"]
        .as_object()
        .into_iter()
        .flatten()
    {
        if let Some(v) = v.as_str() {
            out.insert(format!("VerificationMessageTemplate.{field}"), v.to_owned());
        }
    }
    out
}

fn expected(fields: &[(&str, &str)]) -> BTreeMap<String, String> {
    fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// UpdateUserPool refuses the code and the link messages together, and the deprecated
/// EmailVerificationMessage beside CONFIRM_WITH_LINK ("The message is invalid", aws-cdk#6811).
/// moto checks neither and stores what it is sent, so the test reads the request itself: for a
/// pool made in each way, one consistent set of messages, the pool's own.
#[tokio::test]
async fn each_kind_of_pool_is_sent_one_consistent_set_of_verification_messages() {
    const CODE: &str = "Your verification code is {####}. ";
    const SUBJECT: &str = "Your verification code";
    const LINK: &str =
        "Please click the link below to verify your email address. {##Verify Email##} ";
    const LINK_SUBJECT: &str = "Your verification link";
    const SMS: &str = "Your SMS code is {####}. ";
    let stack = Stack::private("moto").unwrap();
    let cognito = Client::new(&stack.sdk_config().await);
    let recorder = ResponseRecorder::start().await.unwrap();
    let f = pool_trigger(&stack).await;

    // The console's: the template holds the code and the link messages both, and the
    // deprecated fields repeat the code ones.
    let console = |option: DefaultEmailOptionType| {
        VerificationMessageTemplateType::builder()
            .default_email_option(option)
            .email_message(CODE)
            .email_subject(SUBJECT)
            .email_message_by_link(LINK)
            .email_subject_by_link(LINK_SUBJECT)
            .sms_message(SMS)
            .build()
    };
    let deprecated = (Some(CODE), Some(SUBJECT), Some(SMS));
    let code_template = [
        (
            "VerificationMessageTemplate.DefaultEmailOption",
            "CONFIRM_WITH_CODE",
        ),
        ("VerificationMessageTemplate.EmailMessage", CODE),
        ("VerificationMessageTemplate.EmailSubject", SUBJECT),
        ("VerificationMessageTemplate.SmsMessage", SMS),
    ];
    let shapes = [
        (
            "console-code",
            Some(console(DefaultEmailOptionType::ConfirmWithCode)),
            deprecated,
            expected(&code_template),
        ),
        (
            "console-link",
            Some(console(DefaultEmailOptionType::ConfirmWithLink)),
            deprecated,
            expected(&[
                (
                    "VerificationMessageTemplate.DefaultEmailOption",
                    "CONFIRM_WITH_LINK",
                ),
                ("VerificationMessageTemplate.EmailMessageByLink", LINK),
                (
                    "VerificationMessageTemplate.EmailSubjectByLink",
                    LINK_SUBJECT,
                ),
                ("VerificationMessageTemplate.SmsMessage", SMS),
            ]),
        ),
        // AWS::Cognito::UserPool's VerificationMessageTemplate alone; moto then reports the
        // deprecated fields too, copied from the template.
        (
            "cloudformation",
            Some(
                VerificationMessageTemplateType::builder()
                    .default_email_option(DefaultEmailOptionType::ConfirmWithCode)
                    .email_message(CODE)
                    .email_subject(SUBJECT)
                    .sms_message(SMS)
                    .build(),
            ),
            (None, None, None),
            expected(&code_template),
        ),
        // `create-user-pool` with the deprecated fields only. moto gives every pool created
        // without a template its own default one; an empty template is how it keeps none.
        (
            "cli",
            Some(VerificationMessageTemplateType::builder().build()),
            deprecated,
            expected(&[
                ("EmailVerificationMessage", CODE),
                ("EmailVerificationSubject", SUBJECT),
                ("SmsVerificationMessage", SMS),
            ]),
        ),
    ];
    for (name, template, (email, subject, sms), want) in shapes {
        let pool = cognito
            .create_user_pool()
            .pool_name(format!("{name}-{}", uuid::Uuid::new_v4().simple()))
            .set_verification_message_template(template)
            .set_email_verification_message(email.map(str::to_owned))
            .set_email_verification_subject(subject.map(str::to_owned))
            .set_sms_verification_message(sms.map(str::to_owned))
            .send()
            .await
            .expect("create_user_pool")
            .user_pool()
            .and_then(|p| p.id())
            .expect("pool id")
            .to_owned();
        let before = describe(&cognito, &pool).await;
        eprintln!(
            "{name}: DescribeUserPool: template {:?}, EmailVerificationMessage {:?}, \
             EmailVerificationSubject {:?}, SmsVerificationMessage {:?}",
            before.verification_message_template,
            before.email_verification_message,
            before.email_verification_subject,
            before.sms_verification_message
        );

        stack.start_recording();
        f.invoke(&event(
            &recorder,
            name,
            "Create",
            None,
            properties(&pool, "false"),
        ))
        .await;
        let a = answer(&recorder, name).await;
        assert_eq!(a["Status"], "SUCCESS", "{name}: {a}");
        let sent = update_bodies(&stack);
        assert_eq!(sent.len(), 1, "{name}: {sent:?}");
        assert_eq!(verification_messages(&sent[0]), want, "{name}: {}", sent[0]);
    }
}

/// A pool with the app's PreSignUp and our PostConfirmation (wired by the PostConfirmation
/// resource in place of a legacy one): the PreSignUp resource replaces the app's PreSignUp and
/// leaves PostConfirmation and its remembered trigger alone; its Delete puts the app's back
/// and still leaves PostConfirmation; the PostConfirmation resource's Delete then puts the
/// legacy trigger back and leaves PreSignUp. The pool ends as it began.
#[tokio::test]
async fn pre_sign_up_is_wired_beside_our_post_confirmation_and_delete_restores_only_it() {
    let stack = Stack::private("moto").unwrap();
    let cognito = Client::new(&stack.sdk_config().await);
    let pool = existing_pool(&cognito, Some(LEGACY)).await;
    let before = describe(&cognito, &pool).await;
    let recorder = ResponseRecorder::start().await.unwrap();
    let f = pool_trigger(&stack).await;

    // Our PostConfirmation already set, the legacy one remembered.
    f.invoke(&event(
        &recorder,
        "post",
        "Create",
        None,
        properties(&pool, "true"),
    ))
    .await;
    let a = answer(&recorder, "post").await;
    assert_eq!(a["Status"], "SUCCESS", "{a}");
    let post_id = a["PhysicalResourceId"].as_str().unwrap().to_owned();
    assert_eq!(post_id, format!("{pool}/post-confirmation/{LEGACY}"));
    assert_eq!(
        triggers(&describe(&cognito, &pool).await),
        (Some(PRE_SIGN_UP), Some(OURS))
    );

    // PreSignUp: ours replaces the app's, which its own id and tag keep.
    stack.start_recording();
    f.invoke(&event(
        &recorder,
        "pre",
        "Create",
        None,
        pre_sign_up_properties(&pool, "true"),
    ))
    .await;
    let a = answer(&recorder, "pre").await;
    assert_eq!(a["Status"], "SUCCESS", "{a}");
    let pre_id = a["PhysicalResourceId"].as_str().unwrap().to_owned();
    assert_eq!(pre_id, format!("{pool}/pre-sign-up/{PRE_SIGN_UP}"));
    assert_eq!(a["Data"]["Trigger"], "PreSignUp");
    assert_eq!(a["Data"]["PreviousPreSignUp"], PRE_SIGN_UP);
    let sent = update_bodies(&stack);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["LambdaConfig"]["PreSignUp"], OUR_PRE_SIGN_UP);
    assert_eq!(sent[0]["LambdaConfig"]["PostConfirmation"], OURS);
    assert_eq!(
        sent[0]["UserPoolTags"],
        json!({
            "team": "web",
            "cost-centre": "42",
            "db-sync:previous-post-confirmation": LEGACY,
            "db-sync:previous-pre-sign-up": PRE_SIGN_UP,
        })
    );
    let wired = describe(&cognito, &pool).await;
    assert_eq!(triggers(&wired), (Some(OUR_PRE_SIGN_UP), Some(OURS)));
    assert_eq!(
        settings_but_triggers_and_tags(&wired),
        settings_but_triggers_and_tags(&before)
    );

    // Update (a new deploy): the same id, the same triggers.
    f.invoke(&event(
        &recorder,
        "pre-update",
        "Update",
        Some(&pre_id),
        pre_sign_up_properties(&pool, "true"),
    ))
    .await;
    let a = answer(&recorder, "pre-update").await;
    assert_eq!(a["Status"], "SUCCESS", "{a}");
    assert_eq!(a["PhysicalResourceId"], pre_id.as_str());
    assert_eq!(
        triggers(&describe(&cognito, &pool).await),
        (Some(OUR_PRE_SIGN_UP), Some(OURS))
    );

    // Delete the PreSignUp resource: the app's PreSignUp is back; PostConfirmation and the
    // trigger it remembers stay.
    stack.start_recording();
    f.invoke(&event(
        &recorder,
        "pre-delete",
        "Delete",
        Some(&pre_id),
        pre_sign_up_properties(&pool, "true"),
    ))
    .await;
    assert_eq!(answer(&recorder, "pre-delete").await["Status"], "SUCCESS");
    let sent = update_bodies(&stack);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["LambdaConfig"]["PreSignUp"], PRE_SIGN_UP);
    assert_eq!(sent[0]["LambdaConfig"]["PostConfirmation"], OURS);
    assert_eq!(
        sent[0]["UserPoolTags"],
        json!({
            "team": "web",
            "cost-centre": "42",
            "db-sync:previous-post-confirmation": LEGACY,
        })
    );
    assert_eq!(
        triggers(&describe(&cognito, &pool).await),
        (Some(PRE_SIGN_UP), Some(OURS))
    );

    // Delete the PostConfirmation resource: the legacy trigger is back, PreSignUp left as
    // it is, and the pool is as it was before either resource.
    f.invoke(&event(
        &recorder,
        "post-delete",
        "Delete",
        Some(&post_id),
        properties(&pool, "true"),
    ))
    .await;
    assert_eq!(answer(&recorder, "post-delete").await["Status"], "SUCCESS");
    let after = describe(&cognito, &pool).await;
    assert_eq!(triggers(&after), (Some(PRE_SIGN_UP), Some(LEGACY)));
    assert_eq!(
        settings_but_post_confirmation(&after),
        settings_but_post_confirmation(&before)
    );
}

/// A PreSignUp resource may wire only `PRE_SIGN_UP_FUNCTION_ARN`: a request naming another
/// function (a stranger's, or the stack's post-confirmation), naming no trigger we manage, or
/// reaching a function configured without that variable is refused and writes nothing; and a
/// forged Delete restores only what the pool itself remembers.
#[tokio::test]
async fn pre_sign_up_requests_naming_another_function_change_nothing() {
    let stack = Stack::private("moto").unwrap();
    let cognito = Client::new(&stack.sdk_config().await);
    let pool = existing_pool(&cognito, None).await;
    let before = describe(&cognito, &pool).await;
    let recorder = ResponseRecorder::start().await.unwrap();
    let f = pool_trigger(&stack).await;
    let unset =
        pool_trigger_without_pre_sign_up(&stack, &[("CFN_RESPONSE_URL_ALLOW_LOOPBACK", "true")])
            .await;
    const EVIL: &str = "arn:aws:lambda:us-east-1:999999999999:function:collect-attributes";

    stack.start_recording();
    for (key, function) in [("evil", EVIL), ("post-confirmation-as-pre-sign-up", OURS)] {
        let mut props = pre_sign_up_properties(&pool, "true");
        props["FunctionArn"] = json!(function);
        f.invoke(&event(&recorder, key, "Create", None, props))
            .await;
        let a = answer(&recorder, key).await;
        assert_eq!(a["Status"], "FAILED", "{key}: {a}");
        let reason = a["Reason"].as_str().unwrap();
        assert!(reason.contains("FunctionArn"), "{key}: {reason}");
        assert!(
            reason.contains("PRE_SIGN_UP_FUNCTION_ARN"),
            "{key}: {reason}"
        );
    }
    for (key, trigger) in [
        ("lowercase", json!("preSignUp")),
        ("list", json!(["PreSignUp"])),
    ] {
        let mut props = pre_sign_up_properties(&pool, "true");
        props["Trigger"] = trigger;
        f.invoke(&event(&recorder, key, "Create", None, props))
            .await;
        let a = answer(&recorder, key).await;
        assert_eq!(a["Status"], "FAILED", "{key}: {a}");
        assert!(
            a["Reason"]
                .as_str()
                .unwrap()
                .contains("bad property Trigger"),
            "{key}: {a}"
        );
    }
    unset
        .invoke(&event(
            &recorder,
            "unset",
            "Create",
            None,
            pre_sign_up_properties(&pool, "true"),
        ))
        .await;
    let a = answer(&recorder, "unset").await;
    assert_eq!(a["Status"], "FAILED", "{a}");
    assert!(
        a["Reason"]
            .as_str()
            .unwrap()
            .contains("PRE_SIGN_UP_FUNCTION_ARN"),
        "{a}"
    );
    // Its rollback's Delete finds nothing to undo, even there.
    let failed_id = a["PhysicalResourceId"].as_str().unwrap().to_owned();
    unset
        .invoke(&event(
            &recorder,
            "unset-rollback",
            "Delete",
            Some(&failed_id),
            pre_sign_up_properties(&pool, "true"),
        ))
        .await;
    assert_eq!(
        answer(&recorder, "unset-rollback").await["Status"],
        "SUCCESS"
    );
    assert!(update_bodies(&stack).is_empty(), "nothing may be written");
    let after = describe(&cognito, &pool).await;
    assert_eq!(triggers(&after), (Some(PRE_SIGN_UP), None));
    assert_eq!(
        settings_but_post_confirmation(&after),
        settings_but_post_confirmation(&before)
    );

    // Wired for real, then a forged Delete names EVIL as the PreSignUp to put back: the pool
    // gets back what it remembers, the app's.
    f.invoke(&event(
        &recorder,
        "wire",
        "Create",
        None,
        pre_sign_up_properties(&pool, "true"),
    ))
    .await;
    assert_eq!(answer(&recorder, "wire").await["Status"], "SUCCESS");
    let forged = format!("{pool}/pre-sign-up/{EVIL}");
    f.invoke(&event(
        &recorder,
        "forged-delete",
        "Delete",
        Some(&forged),
        pre_sign_up_properties(&pool, "true"),
    ))
    .await;
    assert_eq!(
        answer(&recorder, "forged-delete").await["Status"],
        "SUCCESS"
    );
    assert_eq!(
        triggers(&describe(&cognito, &pool).await),
        (Some(PRE_SIGN_UP), None),
        "restored from the pool's own memory, never from the request"
    );
}

/// Without ReplaceExistingTrigger (absent or "false"), a pool whose PreSignUp is another
/// function stops the PreSignUp Create, naming that function and the parameter, and nothing is
/// written; the refusal is the PreSignUp resource's alone: PostConfirmation is still wired.
#[tokio::test]
async fn a_different_pre_sign_up_stops_the_create_unless_replacing_is_asked() {
    let stack = Stack::private("moto").unwrap();
    let cognito = Client::new(&stack.sdk_config().await);
    let pool = existing_pool(&cognito, None).await;
    let recorder = ResponseRecorder::start().await.unwrap();
    let f = pool_trigger(&stack).await;

    let mut absent = pre_sign_up_properties(&pool, "false");
    absent
        .as_object_mut()
        .unwrap()
        .remove("ReplaceExistingTrigger");
    stack.start_recording();
    for (key, props) in [
        ("absent", absent),
        ("false", pre_sign_up_properties(&pool, "false")),
    ] {
        f.invoke(&event(&recorder, key, "Create", None, props.clone()))
            .await;
        let a = answer(&recorder, key).await;
        assert_eq!(a["Status"], "FAILED", "{key}: {a}");
        let reason = a["Reason"].as_str().unwrap();
        for part in [
            PRE_SIGN_UP,
            "different PreSignUp trigger",
            "ReplaceExistingTrigger",
            "ReplaceExistingPostConfirmationTrigger",
        ] {
            assert!(reason.contains(part), "{key}: {part}: {reason}");
        }
        // The rollback's Delete for that failed Create finds nothing to undo.
        let failed_id = a["PhysicalResourceId"].as_str().unwrap().to_owned();
        let rollback = format!("{key}-rollback");
        f.invoke(&event(
            &recorder,
            &rollback,
            "Delete",
            Some(&failed_id),
            props,
        ))
        .await;
        assert_eq!(answer(&recorder, &rollback).await["Status"], "SUCCESS");
    }
    assert!(update_bodies(&stack).is_empty(), "nothing may be written");
    assert_eq!(
        triggers(&describe(&cognito, &pool).await),
        (Some(PRE_SIGN_UP), None)
    );

    // The PostConfirmation resource on the same pool is not held back by it.
    f.invoke(&event(
        &recorder,
        "post",
        "Create",
        None,
        properties(&pool, "false"),
    ))
    .await;
    let a = answer(&recorder, "post").await;
    assert_eq!(a["Status"], "SUCCESS", "{a}");
    assert_eq!(
        triggers(&describe(&cognito, &pool).await),
        (Some(PRE_SIGN_UP), Some(OURS))
    );
}
