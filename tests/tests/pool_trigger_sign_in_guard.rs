//! The pool-trigger custom resource wiring the stack's sign-in guard as the pool's
//! PostAuthentication (`Trigger: PostAuthentication`, opted into with
//! `SignInGuardOnExistingPool`) against moto's Cognito: beside our PostConfirmation, leaving
//! it as it is, and its Delete taking out only its own trigger; only
//! `SIGN_IN_GUARD_FUNCTION_ARN` may be wired. On a pool the stack creates, the stack's
//! delete takes the guard out of the retained pool too.

use aws_sdk_cognitoidentityprovider::{
    Client,
    types::{LambdaConfigType, UserPoolType},
};
use harness::{Stack, recorder::ResponseRecorder};
use serde_json::{Value, json};

#[path = "common/user_pool.rs"]
mod user_pool;
use user_pool::{
    LEGACY, OURS, describe, existing_pool, pool_trigger_with, properties, request,
    settings_but_triggers_and_tags, triggers,
};

/// The stack's own sign-in guard, the one function a PostAuthentication resource may wire.
const OUR_GUARD: &str = "arn:aws:lambda:us-east-1:123456789012:function:db-sync-SignInGuard";

fn guard_properties(pool: &str, function: &str) -> Value {
    json!({
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:db-sync-PoolTrigger",
        "UserPoolId": pool,
        "Trigger": "PostAuthentication",
        "FunctionArn": function,
        "ReplaceExistingTrigger": "false",
    })
}

fn post_authentication(pool: &UserPoolType) -> Option<&str> {
    pool.lambda_config
        .as_ref()
        .and_then(|c| c.post_authentication.as_deref())
}

#[tokio::test]
async fn the_guard_is_wired_beside_the_other_triggers_and_delete_takes_out_only_it() {
    let stack = Stack::private("moto").unwrap();
    let cognito = Client::new(&stack.sdk_config().await);
    let pool = existing_pool(&cognito, Some(LEGACY)).await;
    let recorder = ResponseRecorder::start().await.unwrap();
    let f = pool_trigger_with(
        &stack,
        &[
            ("CFN_RESPONSE_URL_ALLOW_LOOPBACK", "true"),
            ("SIGN_IN_GUARD_FUNCTION_ARN", OUR_GUARD),
        ],
    )
    .await;
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
    let before = describe(&cognito, &pool).await;
    assert_eq!(post_authentication(&before), None);

    // Another function than the stack's own guard is refused, naming the variable.
    let evil = "arn:aws:lambda:us-east-1:123456789012:function:evil";
    let a = request(
        &f,
        &recorder,
        "evil",
        "Create",
        None,
        guard_properties(&pool, evil),
    )
    .await;
    assert_eq!(a["Status"], "FAILED", "{a}");
    assert!(
        a["Reason"]
            .as_str()
            .unwrap()
            .contains("SIGN_IN_GUARD_FUNCTION_ARN"),
        "{a}"
    );
    assert_eq!(post_authentication(&describe(&cognito, &pool).await), None);

    let a = request(
        &f,
        &recorder,
        "guard",
        "Create",
        None,
        guard_properties(&pool, OUR_GUARD),
    )
    .await;
    assert_eq!(a["Status"], "SUCCESS", "{a}");
    let id = a["PhysicalResourceId"].as_str().unwrap().to_owned();
    assert!(id.starts_with(&format!("{pool}/sign-in-guard/")), "{id}");
    let wired = describe(&cognito, &pool).await;
    assert_eq!(post_authentication(&wired), Some(OUR_GUARD));
    assert_eq!(triggers(&wired), triggers(&before));
    assert_eq!(
        settings_but_triggers_and_tags(&wired)
            .into_iter()
            .filter(|(n, _)| *n != "lambda_config")
            .collect::<Vec<_>>(),
        settings_but_triggers_and_tags(&before)
            .into_iter()
            .filter(|(n, _)| *n != "lambda_config")
            .collect::<Vec<_>>()
    );

    let a = request(
        &f,
        &recorder,
        "guard-delete",
        "Delete",
        Some(&id),
        guard_properties(&pool, OUR_GUARD),
    )
    .await;
    assert_eq!(a["Status"], "SUCCESS", "{a}");
    let after = describe(&cognito, &pool).await;
    assert_eq!(post_authentication(&after), None);
    assert_eq!(triggers(&after), triggers(&before));
    assert_eq!(triggers(&after).1, Some(OURS));
}

/// A pool the stack created, retained on delete: the created-pool resource's Delete takes our
/// PostAuthentication out with the other two, so no sign-in calls a deleted function.
#[tokio::test]
async fn the_stacks_delete_takes_the_guard_out_of_the_pool_it_created() {
    let stack = Stack::private("moto").unwrap();
    let cognito = Client::new(&stack.sdk_config().await);
    let pool = cognito
        .create_user_pool()
        .pool_name(format!("db-sync-users-{}", uuid::Uuid::new_v4().simple()))
        .lambda_config(
            LambdaConfigType::builder()
                .post_confirmation(OURS)
                .post_authentication(OUR_GUARD)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .user_pool()
        .and_then(|p| p.id())
        .unwrap()
        .to_owned();
    let recorder = ResponseRecorder::start().await.unwrap();
    let f = pool_trigger_with(
        &stack,
        &[
            ("CFN_RESPONSE_URL_ALLOW_LOOPBACK", "true"),
            ("POOL_LAYOUT", "created"),
            ("SIGN_IN_GUARD_FUNCTION_ARN", OUR_GUARD),
        ],
    )
    .await;
    let props = json!({
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:db-sync-PoolTrigger",
        "UserPoolId": pool,
        "Purpose": "ClearOurTriggersOnDelete",
        "SignInGuard": OUR_GUARD,
    });
    let a = request(&f, &recorder, "create", "Create", None, props.clone()).await;
    assert_eq!(a["Status"], "SUCCESS", "{a}");
    assert_eq!(
        post_authentication(&describe(&cognito, &pool).await),
        Some(OUR_GUARD)
    );
    let id = a["PhysicalResourceId"].as_str().unwrap().to_owned();
    let a = request(&f, &recorder, "delete", "Delete", Some(&id), props).await;
    assert_eq!(a["Status"], "SUCCESS", "{a}");
    let after = describe(&cognito, &pool).await;
    assert_eq!(post_authentication(&after), None);
    assert_eq!(triggers(&after), (None, None));
}
