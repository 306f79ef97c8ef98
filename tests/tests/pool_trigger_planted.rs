//! A planted trigger (issue 37, item 2), against moto's Cognito: what pool-trigger puts back on
//! Delete is what its Create found on the pool, carried in the physical id CloudFormation
//! holds and signed with the stack's record key, never a pool tag a pool admin can write; only
//! a Lambda function of the stack's own account and region is put back; a Delete for a
//! physical id the function did not sign changes nothing and still answers SUCCESS; and a
//! resource made by the previous version (the earlier trigger in a tag) still deletes cleanly.

use std::collections::HashMap;

use aws_sdk_cognitoidentityprovider::{Client, types::LambdaConfigType};
use harness::{Stack, recorder::ResponseRecorder};
use serde_json::Value;

#[path = "common/user_pool.rs"]
mod user_pool;
use user_pool::{
    LEGACY, OUR_PRE_SIGN_UP, OURS, PRE_SIGN_UP, describe, existing_pool, pool_trigger,
    pre_sign_up_properties, properties, request, settings_but_triggers_and_tags, triggers,
    update_bodies,
};

/// Another account's function: what the attacker wants as PreSignUp (it can auto-confirm and
/// auto-verify any sign-up).
const EVIL: &str = "arn:aws:lambda:us-east-1:999999999999:function:evil";

/// The pool's tags, sorted.
async fn tags(cognito: &Client, pool: &str) -> Vec<(String, String)> {
    let mut tags: Vec<(String, String)> = describe(cognito, pool)
        .await
        .user_pool_tags
        .unwrap_or_default()
        .into_iter()
        .collect();
    tags.sort();
    tags
}

/// What someone with only a tagging right on the pool does: sets one tag, the pool's
/// triggers as they are (moto's `TagResource` answers 500, so through `UpdateUserPool`).
async fn plant_tag(cognito: &Client, pool: &str, key: &str, value: &str) {
    let current = describe(cognito, pool).await;
    let mut tags: HashMap<String, String> = current.user_pool_tags.unwrap_or_default();
    tags.insert(key.to_owned(), value.to_owned());
    set_pool(cognito, pool, current.lambda_config, tags).await;
}

/// Sets the pool's triggers and tags (moto resets some settings it is not sent; the tests
/// compare triggers and tags, and settings only from after this).
async fn set_pool(
    cognito: &Client,
    pool: &str,
    lambda: Option<LambdaConfigType>,
    tags: HashMap<String, String>,
) {
    cognito
        .update_user_pool()
        .user_pool_id(pool)
        .set_lambda_config(lambda)
        .set_user_pool_tags(Some(tags))
        .send()
        .await
        .expect("update_user_pool");
}

fn id_of(answer: &Value) -> String {
    assert_eq!(answer["Status"], "SUCCESS", "{answer}");
    answer["PhysicalResourceId"].as_str().unwrap().to_owned()
}

/// The attack as reproduced: after pool-trigger wired our PreSignUp (in place of the app's)
/// and our PostConfirmation (where there was none), the tags `db-sync:previous-pre-sign-up`
/// and `db-sync:previous-post-confirmation` are set to another account's function; the
/// stack's Deletes then put back what each Create found (the app's PreSignUp, no
/// PostConfirmation), never the planted function.
#[tokio::test]
async fn a_planted_previous_tag_restores_nothing() {
    let stack = Stack::private("moto").unwrap();
    let cognito = Client::new(&stack.sdk_config().await);
    let pool = existing_pool(&cognito, None).await;
    let recorder = ResponseRecorder::start().await.unwrap();
    let f = pool_trigger(&stack).await;

    let post = properties(&pool, "false");
    let pre = pre_sign_up_properties(&pool, "true");
    let post_id = id_of(&request(&f, &recorder, "post", "Create", None, post.clone()).await);
    let pre_id = id_of(&request(&f, &recorder, "pre", "Create", None, pre.clone()).await);
    assert_eq!(
        triggers(&describe(&cognito, &pool).await),
        (Some(OUR_PRE_SIGN_UP), Some(OURS))
    );

    plant_tag(&cognito, &pool, "db-sync:previous-pre-sign-up", EVIL).await;
    plant_tag(&cognito, &pool, "db-sync:previous-post-confirmation", EVIL).await;

    let a = request(&f, &recorder, "pre-delete", "Delete", Some(&pre_id), pre).await;
    assert_eq!(a["Status"], "SUCCESS", "{a}");
    let a = request(&f, &recorder, "post-delete", "Delete", Some(&post_id), post).await;
    assert_eq!(a["Status"], "SUCCESS", "{a}");
    assert_eq!(
        triggers(&describe(&cognito, &pool).await),
        (Some(PRE_SIGN_UP), None),
        "the planted function must never be wired"
    );
}

/// Whoever can invoke the function sends Deletes naming physical ids it did not sign: the
/// previous version's shape (one naming no earlier trigger, one naming EVIL), the signed
/// shape with a made-up signature, the genuine signature under another earlier trigger or the
/// other trigger's mark, and another pool. Each answers SUCCESS (a stack delete never hangs on
/// one) and sends no `UpdateUserPool`: our PreSignUp stays. The genuine id still restores.
#[tokio::test]
async fn a_forged_delete_for_another_physical_id_changes_nothing() {
    let stack = Stack::private("moto").unwrap();
    let cognito = Client::new(&stack.sdk_config().await);
    let pool = existing_pool(&cognito, None).await;
    let recorder = ResponseRecorder::start().await.unwrap();
    let f = pool_trigger(&stack).await;
    let props = pre_sign_up_properties(&pool, "true");
    let genuine = id_of(&request(&f, &recorder, "wire", "Create", None, props.clone()).await);
    let wired = tags(&cognito, &pool).await;

    let (_, signature) = genuine.rsplit_once('/').unwrap();
    let forged = [
        format!("{pool}/pre-sign-up/none"),
        format!("{pool}/pre-sign-up/{EVIL}"),
        format!("{pool}/pre-sign-up/{PRE_SIGN_UP}"),
        format!("{pool}/pre-sign-up/none/{}", "A".repeat(43)),
        format!("{pool}/pre-sign-up/{EVIL}/{signature}"),
        format!("{pool}/pre-sign-up/none/{signature}"),
        format!("{pool}/post-confirmation/{PRE_SIGN_UP}/{signature}"),
        format!("us-east-1_Other1/pre-sign-up/{PRE_SIGN_UP}/{signature}"),
        format!("{genuine}/x"),
    ];
    stack.start_recording();
    for (i, id) in forged.iter().enumerate() {
        let key = format!("forged-{i}");
        let a = request(&f, &recorder, &key, "Delete", Some(id), props.clone()).await;
        assert_eq!(a["Status"], "SUCCESS", "{id}: {a}");
        assert_eq!(
            triggers(&describe(&cognito, &pool).await),
            (Some(OUR_PRE_SIGN_UP), None),
            "a Delete for {id} changed the pool"
        );
    }
    assert!(update_bodies(&stack).is_empty(), "nothing may be written");
    assert_eq!(tags(&cognito, &pool).await, wired);

    let a = request(&f, &recorder, "genuine", "Delete", Some(&genuine), props).await;
    assert_eq!(a["Status"], "SUCCESS", "{a}");
    assert_eq!(
        triggers(&describe(&cognito, &pool).await),
        (Some(PRE_SIGN_UP), None)
    );
}

/// The honest path: both resources replace the pool's own triggers (ReplaceExistingTrigger),
/// an Update keeps each id, and the Deletes put the originals back and leave no tag of ours.
#[tokio::test]
async fn an_honest_create_then_delete_restores_the_original_triggers() {
    let stack = Stack::private("moto").unwrap();
    let cognito = Client::new(&stack.sdk_config().await);
    let pool = existing_pool(&cognito, Some(LEGACY)).await;
    let before = describe(&cognito, &pool).await;
    let tags_before = tags(&cognito, &pool).await;
    let recorder = ResponseRecorder::start().await.unwrap();
    let f = pool_trigger(&stack).await;
    let post = properties(&pool, "true");
    let pre = pre_sign_up_properties(&pool, "true");

    let a = request(&f, &recorder, "post", "Create", None, post.clone()).await;
    assert_eq!(a["Data"]["PreviousPostConfirmation"], LEGACY, "{a}");
    let post_id = id_of(&a);
    assert!(
        post_id.starts_with(&format!("{pool}/post-confirmation/{LEGACY}/")),
        "{post_id}"
    );
    let a = request(&f, &recorder, "pre", "Create", None, pre.clone()).await;
    assert_eq!(a["Data"]["PreviousPreSignUp"], PRE_SIGN_UP, "{a}");
    let pre_id = id_of(&a);
    assert!(
        pre_id.starts_with(&format!("{pool}/pre-sign-up/{PRE_SIGN_UP}/")),
        "{pre_id}"
    );
    assert_eq!(
        triggers(&describe(&cognito, &pool).await),
        (Some(OUR_PRE_SIGN_UP), Some(OURS))
    );
    let a = request(
        &f,
        &recorder,
        "pre-update",
        "Update",
        Some(&pre_id),
        pre.clone(),
    )
    .await;
    assert_eq!(id_of(&a), pre_id);

    let a = request(&f, &recorder, "pre-delete", "Delete", Some(&pre_id), pre).await;
    assert_eq!(a["Status"], "SUCCESS", "{a}");
    let a = request(&f, &recorder, "post-delete", "Delete", Some(&post_id), post).await;
    assert_eq!(a["Status"], "SUCCESS", "{a}");
    let after = describe(&cognito, &pool).await;
    assert_eq!(triggers(&after), (Some(PRE_SIGN_UP), Some(LEGACY)));
    assert_eq!(tags(&cognito, &pool).await, tags_before);
    assert_eq!(
        settings_but_triggers_and_tags(&after),
        settings_but_triggers_and_tags(&before)
    );
}

/// A pool whose PreSignUp is not a Lambda function of the stack's own account and region
/// (another account's, another region's, another partition's, another service's, not an ARN)
/// gets ours when replacing is asked, and on Delete none: that trigger is not recorded, so it
/// is never put back.
#[tokio::test]
async fn an_original_trigger_not_a_lambda_of_this_account_and_region_is_not_restored() {
    let stack = Stack::private("moto").unwrap();
    let cognito = Client::new(&stack.sdk_config().await);
    let recorder = ResponseRecorder::start().await.unwrap();
    let f = pool_trigger(&stack).await;

    for (i, original) in [
        "arn:aws:lambda:us-east-1:999999999999:function:app-pre-sign-up",
        "arn:aws:lambda:eu-west-1:123456789012:function:app-pre-sign-up",
        "arn:aws-cn:lambda:us-east-1:123456789012:function:app-pre-sign-up",
        "arn:aws:sns:us-east-1:123456789012:function:app-pre-sign-up",
        "arn:aws:lambda:us-east-1:123456789012:layer:app-pre-sign-up",
        "app-pre-sign-up",
    ]
    .into_iter()
    .enumerate()
    {
        let pool = existing_pool(&cognito, None).await;
        let current = describe(&cognito, &pool).await;
        let lambda = LambdaConfigType::builder().pre_sign_up(original).build();
        set_pool(
            &cognito,
            &pool,
            Some(lambda),
            current.user_pool_tags.unwrap_or_default(),
        )
        .await;
        let props = pre_sign_up_properties(&pool, "true");
        let a = request(
            &f,
            &recorder,
            &format!("c{i}"),
            "Create",
            None,
            props.clone(),
        )
        .await;
        assert_eq!(a["Data"]["PreviousPreSignUp"], "", "{original}: {a}");
        let id = id_of(&a);
        assert_eq!(
            triggers(&describe(&cognito, &pool).await).0,
            Some(OUR_PRE_SIGN_UP)
        );
        let a = request(&f, &recorder, &format!("d{i}"), "Delete", Some(&id), props).await;
        assert_eq!(a["Status"], "SUCCESS", "{original}: {a}");
        assert_eq!(
            triggers(&describe(&cognito, &pool).await).0,
            None,
            "{original} was put back"
        );
    }
}

/// A stack made by the previous version: its ids name the earlier trigger unsigned
/// (`<pool>/<mark>/<arn>`) and the pool's `db-sync:previous-*` tags repeat it, both of which a
/// pool admin or an invoker can forge. An Update keeps such an id; the Deletes take our
/// triggers out and put back nothing (the log names what the old record claimed), the old
/// tags go, and every other setting stays: the stack deletes cleanly, and a planted function
/// is never wired.
#[tokio::test]
async fn a_stack_made_by_the_previous_version_deletes_cleanly_restoring_nothing() {
    let stack = Stack::private("moto").unwrap();
    let cognito = Client::new(&stack.sdk_config().await);
    let pool = existing_pool(&cognito, Some(LEGACY)).await;
    let recorder = ResponseRecorder::start().await.unwrap();
    let f = pool_trigger(&stack).await;
    let tags_before = tags(&cognito, &pool).await;

    // The pool as the previous version left it, one earlier trigger planted over.
    let mut old_tags: HashMap<String, String> = tags_before.iter().cloned().collect();
    old_tags.insert("db-sync:previous-post-confirmation".into(), LEGACY.into());
    old_tags.insert("db-sync:previous-pre-sign-up".into(), EVIL.into());
    let lambda = LambdaConfigType::builder()
        .pre_sign_up(OUR_PRE_SIGN_UP)
        .post_confirmation(OURS)
        .build();
    set_pool(&cognito, &pool, Some(lambda), old_tags).await;
    let post_id = format!("{pool}/post-confirmation/{LEGACY}");
    let pre_id = format!("{pool}/pre-sign-up/{EVIL}");
    let post = properties(&pool, "true");
    let pre = pre_sign_up_properties(&pool, "true");

    let a = request(
        &f,
        &recorder,
        "post-update",
        "Update",
        Some(&post_id),
        post.clone(),
    )
    .await;
    assert_eq!(id_of(&a), post_id, "an Update never replaces the resource");
    // (moto reset what the bare UpdateUserPool above did not send; the settings compared below
    // are the pool's from here.)
    let before = describe(&cognito, &pool).await;
    assert_eq!(triggers(&before), (Some(OUR_PRE_SIGN_UP), Some(OURS)));

    let a = request(&f, &recorder, "pre-delete", "Delete", Some(&pre_id), pre).await;
    assert_eq!(a["Status"], "SUCCESS", "{a}");
    let a = request(&f, &recorder, "post-delete", "Delete", Some(&post_id), post).await;
    assert_eq!(a["Status"], "SUCCESS", "{a}");
    let after = describe(&cognito, &pool).await;
    assert_eq!(triggers(&after), (None, None));
    assert_eq!(tags(&cognito, &pool).await, tags_before);
    assert_eq!(
        settings_but_triggers_and_tags(&after),
        settings_but_triggers_and_tags(&before)
    );
}
