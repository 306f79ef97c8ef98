//! drift-check and the user statuses that owe a row: an administrator's user gets none while
//! they wait on their first sign-in (`FORCE_CHANGE_PASSWORD`) and theirs at the next run once
//! they have set a password; a confirmed user whose password was reset (`RESET_REQUIRED`) is
//! backfilled and followed. `EXTERNAL_PROVIDER`, which moto cannot make, is exercised on the
//! recorded `ListUsers` shape in drift-check's `users_check::status` tests.

use aws_sdk_cognitoidentityprovider::types::AttributeType;
use serde_json::json;

#[path = "common/drift.rs"]
mod drift;
#[path = "common/sign_in.rs"]
mod sign_in;
use drift::World;
use sign_in::{admin_created, first_sign_in, status};

#[tokio::test]
async fn an_admin_created_user_gets_a_row_at_the_first_run_after_their_first_sign_in() {
    let w = World::shared().await;
    let sub = admin_created(&w, "staff").await;
    assert_eq!(status(&w, "staff").await, "FORCE_CHANGE_PASSWORD");
    let f = w.start(&[("DRIFT_MODE", "remediate")]).await;

    // Not yet signed in: no tokens, and an administrator may still change every attribute.
    let before = f.invoke(&json!({})).await.response().clone();
    assert_eq!(before["status"], "complete", "{before:#}");
    assert_eq!(before["counts"]["missing_user"], 0, "{before:#}");
    assert!(w.user_rows().await.is_empty());

    first_sign_in(&w, "staff").await;
    assert_eq!(status(&w, "staff").await, "CONFIRMED");
    let after = f.invoke(&json!({})).await.response().clone();
    assert_eq!(after["counts"]["missing_user"], 1, "{after:#}");
    assert_eq!(after["actions"]["backfilled"], 1, "{after:#}");
    assert_eq!(
        w.user_rows().await,
        vec![(sub, "staff".to_owned(), "staff name".to_owned())]
    );
}

/// A confirmed user whose password an administrator reset was confirmed before: their lost row
/// is backfilled and their profile still followed while they have not yet set a new one.
#[tokio::test]
async fn a_user_whose_password_was_reset_is_backfilled_and_followed() {
    let w = World::shared().await;
    let lost = w.user("lost", true).await;
    let kept = w.user("kept", true).await;
    w.add_row(&kept, "kept").await;
    for username in ["lost", "kept"] {
        w.cognito
            .admin_reset_user_password()
            .user_pool_id(&w.pool)
            .username(username)
            .send()
            .await
            .unwrap();
        assert_eq!(status(&w, username).await, "RESET_REQUIRED");
    }
    w.cognito
        .admin_update_user_attributes()
        .user_pool_id(&w.pool)
        .username("kept")
        .user_attributes(
            AttributeType::builder()
                .name("name")
                .value("Kept Renamed")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let f = w.start(&[("DRIFT_MODE", "remediate")]).await;
    let summary = f.invoke(&json!({})).await.response().clone();
    assert_eq!(summary["counts"]["missing_user"], 1, "{summary:#}");
    assert_eq!(summary["actions"]["backfilled"], 1, "{summary:#}");
    assert_eq!(summary["counts"]["profile_changed"], 1, "{summary:#}");
    let mut expected = vec![
        (kept, "kept".to_owned(), "Kept Renamed".to_owned()),
        (lost, "lost".to_owned(), "lost name".to_owned()),
    ];
    expected.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(w.user_rows().await, expected);
}
