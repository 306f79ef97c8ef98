//! The pool the stack creates is retained when the stack is deleted; its triggers must not
//! outlive the functions they name. pool-trigger's created-pool resource
//! (`Purpose: ClearOurTriggersOnDelete`) changes nothing on Create, and on Delete takes our
//! PreSignUp and PostConfirmation out of that pool, each only where it still names ours, with
//! every other setting kept; a Delete whose id it did not sign, or that names another pool,
//! changes nothing. Against moto's Cognito, through the real binary.

use aws_sdk_cognitoidentityprovider::{
    Client,
    types::{
        DeletionProtectionType, EmailConfigurationType, EmailSendingAccountType, LambdaConfigType,
        UserPoolType, VerifiedAttributeType,
    },
};
use harness::{Stack, recorder::ResponseRecorder};
use serde_json::{Value, json};

#[path = "common/user_pool.rs"]
mod user_pool;
use harness::Function;
use user_pool::{
    OUR_PRE_SIGN_UP, OURS, describe, pool_trigger, pool_trigger_with, request,
    settings_but_post_confirmation, triggers, update_bodies,
};

/// The function as the template configures it on a pool the stack creates.
async fn created_layout(stack: &Stack) -> Function {
    pool_trigger_with(
        stack,
        &[
            ("CFN_RESPONSE_URL_ALLOW_LOOPBACK", "true"),
            ("POOL_LAYOUT", "created"),
        ],
    )
    .await
}

/// The app's CustomMessage trigger, which the stack never touches.
const CUSTOM_MESSAGE: &str = "arn:aws:lambda:us-east-1:123456789012:function:app-custom-message";

/// A pool as the template creates it: our two triggers, with deletion protection, plus a
/// CustomMessage trigger and settings someone added by hand since.
async fn created_pool(cognito: &Client) -> String {
    cognito
        .create_user_pool()
        .pool_name(format!("db-sync-users-{}", uuid::Uuid::new_v4().simple()))
        .deletion_protection(DeletionProtectionType::Active)
        .auto_verified_attributes(VerifiedAttributeType::Email)
        .email_configuration(
            EmailConfigurationType::builder()
                .email_sending_account(EmailSendingAccountType::Developer)
                .source_arn("arn:aws:ses:us-east-1:123456789012:identity/no-reply@example.com")
                .build(),
        )
        .lambda_config(
            LambdaConfigType::builder()
                .pre_sign_up(OUR_PRE_SIGN_UP)
                .post_confirmation(OURS)
                .custom_message(CUSTOM_MESSAGE)
                .build(),
        )
        .user_pool_tags("team", "web")
        .send()
        .await
        .expect("create_user_pool")
        .user_pool()
        .and_then(|p| p.id())
        .expect("pool id")
        .to_owned()
}

fn props(pool: &str) -> Value {
    json!({
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:db-sync-PoolTrigger",
        "UserPoolId": pool,
        "Purpose": "ClearOurTriggersOnDelete",
    })
}

fn custom_message(pool: &UserPoolType) -> Option<&str> {
    pool.lambda_config
        .as_ref()
        .and_then(|c| c.custom_message.as_deref())
}

/// Every setting but PreSignUp and PostConfirmation. The admin-create-user settings without
/// the deprecated `UnusedAccountValidityDays`, which moto reports beside the password policy's
/// `TemporaryPasswordValidityDays` and UpdateUserPool refuses beside it (`settings.rs`).
fn settings(pool: &UserPoolType) -> Vec<(&'static str, String)> {
    let mut s = settings_but_post_confirmation(pool);
    s.retain(|(name, _)| !["pre_sign_up", "admin_create_user_config"].contains(name));
    s.push(("custom_message", format!("{:?}", custom_message(pool))));
    let admin = pool.admin_create_user_config.as_ref();
    s.push((
        "admin_create_user_config",
        format!(
            "{:?}",
            admin.map(|c| (c.allow_admin_create_user_only, &c.invite_message_template))
        ),
    ));
    s
}

#[tokio::test]
async fn the_stacks_delete_takes_our_triggers_out_of_the_pool_it_created_and_nothing_else() {
    let stack = Stack::private("moto").unwrap();
    let cognito = Client::new(&stack.sdk_config().await);
    let pool = created_pool(&cognito).await;
    let before = describe(&cognito, &pool).await;
    let recorder = ResponseRecorder::start().await.unwrap();
    let f = created_layout(&stack).await;

    // Create: CloudFormation wired the pool itself; nothing is written.
    stack.start_recording();
    let a = request(&f, &recorder, "create", "Create", None, props(&pool)).await;
    assert_eq!(a["Status"], "SUCCESS", "{a}");
    let id = a["PhysicalResourceId"].as_str().unwrap().to_owned();
    assert!(id.starts_with(&format!("{pool}/created-pool/")), "{id}");
    assert!(update_bodies(&stack).is_empty());
    // Update with the same pool: the same id.
    let a = request(&f, &recorder, "update", "Update", Some(&id), props(&pool)).await;
    assert_eq!(a["PhysicalResourceId"], id.as_str(), "{a}");

    // Delete: our two triggers are gone; the app's CustomMessage and every setting stay.
    let a = request(&f, &recorder, "delete", "Delete", Some(&id), props(&pool)).await;
    assert_eq!(a["Status"], "SUCCESS", "{a}");
    let after = describe(&cognito, &pool).await;
    assert_eq!(triggers(&after), (None, None));
    assert_eq!(custom_message(&after), Some(CUSTOM_MESSAGE));
    assert_eq!(settings(&after), settings(&before));
    assert_eq!(
        after.deletion_protection,
        Some(DeletionProtectionType::Active)
    );
}

/// A trigger someone set by hand since is theirs: the Delete leaves it.
#[tokio::test]
async fn a_trigger_that_no_longer_names_ours_is_left_as_it_is() {
    let stack = Stack::private("moto").unwrap();
    let cognito = Client::new(&stack.sdk_config().await);
    let pool = created_pool(&cognito).await;
    let recorder = ResponseRecorder::start().await.unwrap();
    let f = created_layout(&stack).await;
    let a = request(&f, &recorder, "create", "Create", None, props(&pool)).await;
    let id = a["PhysicalResourceId"].as_str().unwrap().to_owned();
    // Someone points PreSignUp at their own function (through the wiring resource, which
    // keeps every other setting).
    let theirs = "arn:aws:lambda:us-east-1:123456789012:function:app-pre-sign-up";
    let mut lc = describe(&cognito, &pool).await.lambda_config.unwrap();
    lc.pre_sign_up = Some(theirs.to_owned());
    let pool_now = describe(&cognito, &pool).await;
    cognito
        .update_user_pool()
        .user_pool_id(&pool)
        .set_auto_verified_attributes(pool_now.auto_verified_attributes.clone())
        .set_email_configuration(pool_now.email_configuration.clone())
        .set_user_pool_tags(pool_now.user_pool_tags.clone())
        .set_deletion_protection(pool_now.deletion_protection.clone())
        .lambda_config(lc)
        .send()
        .await
        .expect("update_user_pool");

    let a = request(&f, &recorder, "delete", "Delete", Some(&id), props(&pool)).await;
    assert_eq!(a["Status"], "SUCCESS", "{a}");
    let after = describe(&cognito, &pool).await;
    assert_eq!(triggers(&after), (Some(theirs), None));
    assert_eq!(custom_message(&after), Some(CUSTOM_MESSAGE));
}

/// Whoever may invoke the function cannot clear a pool it did not sign for: an unsigned id,
/// another pool's id under this pool's signature, a trigger resource's id shape, another
/// key's signature. Each answers SUCCESS (a stack's delete never stops on it) and changes
/// nothing; no UpdateUserPool is sent.
#[tokio::test]
async fn a_forged_delete_naming_another_pool_changes_nothing() {
    let stack = Stack::private("moto").unwrap();
    let cognito = Client::new(&stack.sdk_config().await);
    let ours = created_pool(&cognito).await;
    let victim = created_pool(&cognito).await;
    let recorder = ResponseRecorder::start().await.unwrap();
    let f = created_layout(&stack).await;
    let a = request(&f, &recorder, "create", "Create", None, props(&ours)).await;
    let id = a["PhysicalResourceId"].as_str().unwrap().to_owned();
    let (_, signature) = id.rsplit_once('/').unwrap();
    let before = describe(&cognito, &victim).await;

    stack.start_recording();
    for (n, forged) in [
        format!("{victim}/created-pool/{signature}"),
        format!("{victim}/created-pool/{}", "A".repeat(43)),
        format!("{victim}/created-pool"),
        format!("{victim}/post-confirmation/none"),
        format!("{victim}/pre-sign-up/none"),
    ]
    .iter()
    .enumerate()
    {
        let key = format!("forged-{n}");
        let a = request(&f, &recorder, &key, "Delete", Some(forged), props(&victim)).await;
        assert_eq!(a["Status"], "SUCCESS", "{forged}: {a}");
    }
    assert!(
        update_bodies(&stack).is_empty(),
        "{:?}",
        update_bodies(&stack)
    );
    let after = describe(&cognito, &victim).await;
    assert_eq!(triggers(&after), (Some(OUR_PRE_SIGN_UP), Some(OURS)));
    assert_eq!(settings(&after), settings(&before));
    // And the pool it did sign for is still wired too.
    let ours_now = describe(&cognito, &ours).await;
    assert_eq!(triggers(&ours_now), (Some(OUR_PRE_SIGN_UP), Some(OURS)));

    // The function of a stack on an existing pool serves no created-pool resource: it signs
    // nothing for one, so none of its Deletes can clear a pool.
    let existing = pool_trigger(&stack).await;
    let a = request(
        &existing,
        &recorder,
        "other-layout",
        "Create",
        None,
        props(&victim),
    )
    .await;
    assert_eq!(a["Status"], "FAILED", "{a}");
    assert!(a["Reason"].as_str().unwrap().contains("POOL_LAYOUT"), "{a}");
    let a = request(
        &existing,
        &recorder,
        "other-layout-delete",
        "Delete",
        Some(&id),
        props(&ours),
    )
    .await;
    assert_eq!(a["Status"], "SUCCESS", "{a}");
    assert_eq!(
        triggers(&describe(&cognito, &ours).await),
        (Some(OUR_PRE_SIGN_UP), Some(OURS))
    );
}
