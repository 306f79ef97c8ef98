//! drift-check and the user statuses that owe a row: an administrator's user gets none while
//! they wait on their first sign-in (`FORCE_CHANGE_PASSWORD`) and theirs at the next run once
//! they have set a password; a confirmed user whose password was reset (`RESET_REQUIRED`) is
//! backfilled and followed. `EXTERNAL_PROVIDER`, which moto cannot make, comes from the
//! recorded `ListUsers` shape (functions/drift-check/src/users_check/list-users-statuses.json)
//! handed to drift-check as its lister hands a listing over: a federated user whose provider's
//! `email_verified` is mapped is backfilled; one whose provider's is not gets no row and is
//! reported.

use aws_sdk_cognitoidentityprovider::types::AttributeType;
use harness::stack::repo_root;
use serde_json::{Value, json};

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

/// The recorded `ListUsers` page's federated users (status `EXTERNAL_PROVIDER`, an
/// `identities` attribute), as the lister hands users over.
fn recorded_federated_users() -> Vec<Value> {
    let path = repo_root().join("functions/drift-check/src/users_check/list-users-statuses.json");
    let page: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    page["Users"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["UserStatus"] == "EXTERNAL_PROVIDER")
        .map(|u| {
            let attributes: serde_json::Map<String, Value> = u["Attributes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| (a["Name"].as_str().unwrap().to_owned(), a["Value"].clone()))
                .collect();
            json!({"username": u["Username"], "status": u["UserStatus"], "attributes": attributes})
        })
        .collect()
}

/// End to end through the users half: the federated users of the recorded page handed over
/// (begin, one chunk, complete) to drift-check in remediate mode, on a database that has no
/// row for either.
#[tokio::test]
async fn a_federated_user_whose_row_was_lost_is_backfilled_and_one_without_a_verified_email_is_reported()
 {
    let w = World::shared().await;
    let users = recorded_federated_users();
    assert_eq!(
        users.len(),
        2,
        "the recorded page's federated users: {users:?}"
    );
    assert!(
        users
            .iter()
            .all(|u| u["attributes"]["identities"].is_string())
    );
    let f = w
        .start(&[("DRIFT_MODE", "remediate"), ("DRIFT_USERS_FROM", "lister")])
        .await;
    // Signed with the stack's hand-over key, as the lister signs it.
    let hand = |op: Value| w.seal(&json!({"hand_over": op}));
    let now = drift_check::listing::unix_now();
    let begun = f
        .invoke(&hand(
            json!({"op": "begin", "pool": w.pool, "issued_at": now}),
        ))
        .await;
    let listing = begun.response()["listing"].as_str().unwrap().to_owned();
    let staged = f
        .invoke(&hand(
            json!({"op": "chunk", "listing": listing, "seq": 0, "users": users}),
        ))
        .await;
    assert_eq!(staged.response()["chunks"], 1, "{:#}", staged.response());
    let summary = f
        .invoke(&hand(
            json!({"op": "complete", "listing": listing, "chunks": 1, "users": 2}),
        ))
        .await
        .response()
        .clone();
    assert_eq!(summary["status"], "complete", "{summary:#}");
    assert_eq!(summary["actions"]["backfilled"], 1, "{summary:#}");
    assert_eq!(summary["counts"]["unwritable_user"], 1, "{summary:#}");
    let rows = w.user_rows().await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        rows[0].0, "7c1d2f3e-0a4b-4c5d-8e9f-000000000101",
        "{rows:?}"
    );
    assert_eq!(rows[0].2, "Grace Hopper", "{rows:?}");
}
