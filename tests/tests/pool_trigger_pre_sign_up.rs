//! The pool-trigger custom resource wiring the stack's pre-sign-up as the pool's PreSignUp
//! (`Trigger: PreSignUp`) against moto's Cognito: beside our PostConfirmation, leaving it as
//! it is, each resource putting back only its own trigger; only `PRE_SIGN_UP_FUNCTION_ARN`
//! may be wired; and another PreSignUp stops the Create unless replacing is asked.

use aws_sdk_cognitoidentityprovider::Client;
use harness::{Stack, recorder::ResponseRecorder};
use serde_json::json;

#[path = "common/user_pool.rs"]
mod user_pool;
use user_pool::{
    LEGACY, OUR_PRE_SIGN_UP, OURS, PRE_SIGN_UP, answer, describe, event, existing_pool,
    pool_trigger, pool_trigger_without_pre_sign_up, pre_sign_up_properties, properties, request,
    settings_but_post_confirmation, settings_but_triggers_and_tags, triggers, update_bodies,
    wire_then_forge_delete,
};

/// A pool with the app's PreSignUp and our PostConfirmation (wired by the PostConfirmation
/// resource in place of a legacy one): the PreSignUp resource replaces the app's PreSignUp and
/// leaves PostConfirmation and its tag alone; its Delete puts the app's back
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

    // Our PostConfirmation already set, the legacy one recorded in its id.
    let a = request(
        &f,
        &recorder,
        "post",
        "Create",
        None,
        properties(&pool, "true"),
    )
    .await;
    assert_eq!(a["Status"], "SUCCESS", "{a}");
    let post_id = a["PhysicalResourceId"].as_str().unwrap().to_owned();
    assert!(
        post_id.starts_with(&format!("{pool}/post-confirmation/{LEGACY}/")),
        "{post_id}"
    );
    assert_eq!(
        triggers(&describe(&cognito, &pool).await),
        (Some(PRE_SIGN_UP), Some(OURS))
    );

    // PreSignUp: ours replaces the app's, which its own (signed) id keeps.
    stack.start_recording();
    let a = request(
        &f,
        &recorder,
        "pre",
        "Create",
        None,
        pre_sign_up_properties(&pool, "true"),
    )
    .await;
    assert_eq!(a["Status"], "SUCCESS", "{a}");
    let pre_id = a["PhysicalResourceId"].as_str().unwrap().to_owned();
    assert!(
        pre_id.starts_with(&format!("{pool}/pre-sign-up/{PRE_SIGN_UP}/")),
        "{pre_id}"
    );
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
            "db-sync:record-post-confirmation": "signed-id",
            "db-sync:record-pre-sign-up": "signed-id",
        })
    );
    let wired = describe(&cognito, &pool).await;
    assert_eq!(triggers(&wired), (Some(OUR_PRE_SIGN_UP), Some(OURS)));
    assert_eq!(
        settings_but_triggers_and_tags(&wired),
        settings_but_triggers_and_tags(&before)
    );

    // Update (a new deploy): the same id, the same triggers.
    let a = request(
        &f,
        &recorder,
        "pre-update",
        "Update",
        Some(&pre_id),
        pre_sign_up_properties(&pool, "true"),
    )
    .await;
    assert_eq!(a["Status"], "SUCCESS", "{a}");
    assert_eq!(a["PhysicalResourceId"], pre_id.as_str());
    assert_eq!(
        triggers(&describe(&cognito, &pool).await),
        (Some(OUR_PRE_SIGN_UP), Some(OURS))
    );

    // Delete the PreSignUp resource: the app's PreSignUp is back; PostConfirmation and its
    // tag stay.
    stack.start_recording();
    assert_eq!(
        request(
            &f,
            &recorder,
            "pre-delete",
            "Delete",
            Some(&pre_id),
            pre_sign_up_properties(&pool, "true")
        )
        .await["Status"],
        "SUCCESS"
    );
    let sent = update_bodies(&stack);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["LambdaConfig"]["PreSignUp"], PRE_SIGN_UP);
    assert_eq!(sent[0]["LambdaConfig"]["PostConfirmation"], OURS);
    assert_eq!(
        sent[0]["UserPoolTags"],
        json!({
            "team": "web",
            "cost-centre": "42",
            "db-sync:record-post-confirmation": "signed-id",
        })
    );
    assert_eq!(
        triggers(&describe(&cognito, &pool).await),
        (Some(PRE_SIGN_UP), Some(OURS))
    );

    // Delete the PostConfirmation resource: the legacy trigger is back, PreSignUp left as
    // it is, and the pool is as it was before either resource.
    assert_eq!(
        request(
            &f,
            &recorder,
            "post-delete",
            "Delete",
            Some(&post_id),
            properties(&pool, "true")
        )
        .await["Status"],
        "SUCCESS"
    );
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
/// forged Delete changes nothing.
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
        let a = request(&f, &recorder, key, "Create", None, props).await;
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
        let a = request(&f, &recorder, key, "Create", None, props).await;
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

    // Wired for real, then a forged Delete names EVIL as the PreSignUp to put back: it
    // changes nothing.
    let props = pre_sign_up_properties(&pool, "true");
    wire_then_forge_delete(&f, &recorder, &pool, "pre-sign-up", EVIL, props).await;
    assert_eq!(
        triggers(&describe(&cognito, &pool).await),
        (Some(OUR_PRE_SIGN_UP), None),
        "a Delete for an id this stack did not sign changes nothing"
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
        let a = request(&f, &recorder, key, "Create", None, props.clone()).await;
        assert_eq!(a["Status"], "FAILED", "{key}: {a}");
        let reason = a["Reason"].as_str().unwrap();
        for part in [
            PRE_SIGN_UP,
            "different PreSignUp trigger",
            "ReplaceExistingTrigger",
            // PreSignUp's own stack parameter, never PostConfirmation's.
            "ReplaceExistingPreSignUpTrigger",
        ] {
            assert!(reason.contains(part), "{key}: {part}: {reason}");
        }
        assert!(
            !reason.contains("ReplaceExistingPostConfirmationTrigger"),
            "{key}: {reason}"
        );
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
    let a = request(
        &f,
        &recorder,
        "post",
        "Create",
        None,
        properties(&pool, "false"),
    )
    .await;
    assert_eq!(a["Status"], "SUCCESS", "{a}");
    assert_eq!(
        triggers(&describe(&cognito, &pool).await),
        (Some(PRE_SIGN_UP), Some(OURS))
    );
}
