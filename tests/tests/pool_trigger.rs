//! The pool-trigger custom resource against moto's Cognito: an existing pool with
//! auto-verified attributes, an email configuration, MFA, a password policy, a PreSignUp
//! trigger, a custom attribute and tags keeps every one of them when post-confirmation is
//! wired in, and gets its earlier trigger back on Delete. moto stores what an update sends
//! without checking it, so the tests also read what `UpdateUserPool` was sent, from moto's
//! request recorder. The verification messages each kind of pool is sent are in
//! `pool_trigger_messages.rs`, the PreSignUp resource in `pool_trigger_pre_sign_up.rs`; the
//! shared fixture in `common/user_pool.rs`.

use std::time::Duration;

use aws_sdk_cognitoidentityprovider::Client;
use harness::{Stack, recorder::ResponseRecorder};
use serde_json::json;

#[path = "common/user_pool.rs"]
mod user_pool;
use user_pool::{
    LEGACY, OURS, PRE_SIGN_UP, answer, describe, event, existing_pool, pool_trigger,
    pool_trigger_with, post_confirmation, properties, request, settings_but_post_confirmation,
    update_bodies, wire_then_forge_delete,
};

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
    // Signed with the stack's record key (pool_trigger_planted.rs).
    let physical = a["PhysicalResourceId"].as_str().unwrap().to_owned();
    assert!(
        physical.starts_with(&format!("{pool}/post-confirmation/none/")),
        "{physical}"
    );
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
        json!({
            "team": "web",
            "cost-centre": "42",
            "db-sync:record-post-confirmation": "signed-id",
        })
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
    // only for a message the template lacks (see pool_trigger_messages::
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

    // The pool: our trigger and the tag saying it was wired under a signed id, everything
    // else as it was.
    let after = describe(&cognito, &pool).await;
    assert_eq!(post_confirmation(&after), Some(OURS));
    let mut tagged = before.clone();
    tagged.user_pool_tags.get_or_insert_default().insert(
        "db-sync:record-post-confirmation".into(),
        "signed-id".into(),
    );
    assert_eq!(
        settings_but_post_confirmation(&after),
        settings_but_post_confirmation(&tagged)
    );

    // Update (a new deploy): same physical id, same state.
    stack.start_recording();
    let a = request(
        &f,
        &recorder,
        "update",
        "Update",
        Some(&physical),
        properties(&pool, "false"),
    )
    .await;
    assert_eq!(a["Status"], "SUCCESS", "{a}");
    assert_eq!(a["PhysicalResourceId"], physical);
    assert_eq!(update_bodies(&stack).len(), 1);

    // Delete: the trigger goes (the pool had none before); the rest stays.
    stack.start_recording();
    let a = request(
        &f,
        &recorder,
        "delete",
        "Delete",
        Some(&physical),
        properties(&pool, "false"),
    )
    .await;
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
    let a = request(
        &f,
        &recorder,
        "refused",
        "Create",
        None,
        properties(&pool, "false"),
    )
    .await;
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
    assert_eq!(
        request(
            &f,
            &recorder,
            "rollback",
            "Delete",
            Some(&failed_id),
            properties(&pool, "false")
        )
        .await["Status"],
        "SUCCESS"
    );
    assert!(update_bodies(&stack).is_empty());
    assert_eq!(
        post_confirmation(&describe(&cognito, &pool).await),
        Some(LEGACY)
    );

    // With it: ours replaces the legacy trigger, which the physical id keeps.
    let a = request(
        &f,
        &recorder,
        "replace",
        "Create",
        None,
        properties(&pool, "true"),
    )
    .await;
    assert_eq!(a["Status"], "SUCCESS", "{a}");
    let physical = a["PhysicalResourceId"].as_str().unwrap().to_owned();
    assert!(
        physical.starts_with(&format!("{pool}/post-confirmation/{LEGACY}/")),
        "{physical}"
    );
    assert_eq!(a["Data"]["PreviousPostConfirmation"], LEGACY);
    assert_eq!(
        post_confirmation(&describe(&cognito, &pool).await),
        Some(OURS)
    );

    // Delete: the legacy trigger is back, every other setting as it was.
    assert_eq!(
        request(
            &f,
            &recorder,
            "restore",
            "Delete",
            Some(&physical),
            properties(&pool, "true")
        )
        .await["Status"],
        "SUCCESS"
    );
    let after = describe(&cognito, &pool).await;
    assert_eq!(post_confirmation(&after), Some(LEGACY));
    assert_eq!(
        settings_but_post_confirmation(&after),
        settings_but_post_confirmation(&before)
    );

    // Bad properties and a pool that does not exist: FAILED with the cause.
    let a = request(
        &f,
        &recorder,
        "bad-pool-id",
        "Create",
        None,
        properties("not a pool", "false"),
    )
    .await;
    assert_eq!(a["Status"], "FAILED");
    assert!(a["Reason"].as_str().unwrap().contains("UserPoolId"), "{a}");
    let a = request(
        &f,
        &recorder,
        "no-pool",
        "Create",
        None,
        properties("us-east-1_Missing1", "false"),
    )
    .await;
    assert_eq!(a["Status"], "FAILED");
    assert!(
        a["Reason"].as_str().unwrap().contains("does not exist"),
        "{a}"
    );
}

/// Whoever can invoke the function directly must not be able to point the pool (and with it
/// every new user's attributes) at a Lambda of their choosing: a Create naming another
/// function, even with ReplaceExistingTrigger, is refused; a Delete whose physical id names a
/// "previous" trigger but which this stack did not sign changes nothing; and an answer goes
/// only to CloudFormation's pre-signed S3 URLs over HTTPS.
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
    let a = request(&f, &recorder, "evil-create", "Create", None, props).await;
    assert_eq!(a["Status"], "FAILED", "{a}");
    assert!(a["Reason"].as_str().unwrap().contains("FunctionArn"), "{a}");
    assert_eq!(
        post_confirmation(&describe(&cognito, &pool).await),
        Some(LEGACY)
    );

    // Wired for real (replacing the legacy trigger), then a forged Delete names EVIL as the
    // trigger to put back: it changes nothing.
    let props = properties(&pool, "true");
    wire_then_forge_delete(&f, &recorder, &pool, "post-confirmation", EVIL, props).await;
    assert_eq!(
        post_confirmation(&describe(&cognito, &pool).await),
        Some(OURS),
        "a Delete for an id this stack did not sign changes nothing"
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
        Some(OURS)
    );
}
