//! What the PreSignUp trigger does for each of Cognito's trigger sources, through the real
//! binary. `PreSignUp_SignUp` refuses a sign-up that
//! could never become a row: the person signing up is there to choose other attributes
//! (`pre_sign_up.rs`); a source Cognito does not document is refused as unreadable. `PreSignUp_AdminCreateUser` and `PreSignUp_ExternalProvider` are never
//! refused for the user's attributes or handle: an admin may set them later, a federated
//! user's are mapped again from the provider at every sign-in, and a refusal would lock the
//! user out of the app, not only out of the table. They go on unchanged, with a WARN line
//! naming what keeps the row from being written yet, and without asking the database.

use harness::{Function, Stack, TestDb, event, fixtures::function_env, function_binary};
use serde_json::{Value, json};

async fn start(db: &TestDb) -> Function {
    let env = function_env(db, Stack::shared(), &[]);
    Function::spawn(&function_binary("pre-sign-up"), &env)
        .await
        .unwrap()
}

/// `file`'s event with `attributes` set (a null removes one).
fn with(file: &str, attributes: Value) -> Value {
    let mut e = event(file);
    let attrs = e["request"]["userAttributes"].as_object_mut().unwrap();
    for (k, v) in attributes.as_object().unwrap() {
        if v.is_null() {
            attrs.remove(k);
        } else {
            attrs.insert(k.clone(), v.clone());
        }
    }
    e
}

#[tokio::test]
async fn admin_created_and_federated_users_are_never_refused_for_their_attributes() {
    let db = Stack::shared().fresh_database().await.unwrap();
    db.connect_as_app()
        .await
        .unwrap()
        .execute(
            "INSERT INTO users (cognito_user_id, email, display_name, handle) \
             VALUES ('sub-andrew', 'a@example.com', 'Andrew', 'Andrew')",
            &[],
        )
        .await
        .unwrap();
    let f = start(&db).await;

    for file in [
        "pre-sign-up-admin-create-user.json",
        "pre-sign-up-external-provider.json",
    ] {
        // The samples go on unchanged: nothing auto-confirmed or auto-verified.
        let sample = event(file);
        assert_eq!(f.invoke(&sample).await.response(), &sample, "{file}");
        for attributes in [
            // No email yet: an admin may add it; a provider's mapping may bring it next time.
            json!({"email": null}),
            // A handle another user holds, one the table refuses, none at all (the user name
            // then stands in).
            json!({"preferred_username": "andrew"}),
            json!({"preferred_username": "ａｎｄｒｅｗ"}),
            json!({"preferred_username": null, "email": null}),
        ] {
            let e = with(file, attributes.clone());
            let inv = f.invoke(&e).await;
            assert_eq!(inv.response(), &e, "{file} {attributes}");
            let logs = f.logs_of(&[&inv]).await.join("\n");
            assert!(logs.contains("no row can be written yet"), "{file}: {logs}");
        }
    }

    // The same attributes through self-service sign-up are refused, as before.
    for (attributes, error) in [
        (json!({"email": null}), "Permanent.MissingAttribute"),
        (
            json!({"preferred_username": "andrew"}),
            "Permanent.HandleTaken",
        ),
        (
            json!({"preferred_username": "ａｎｄｒｅｗ"}),
            "Permanent.InvalidAttribute",
        ),
    ] {
        let inv = f
            .invoke(&with("pre-sign-up.json", attributes.clone()))
            .await;
        assert_eq!(inv.error().0, error, "{attributes}");
    }
    // A source Cognito does not document is not let through unchecked: the event type
    // cannot read it, and it is refused as unreadable.
    let mut e = with("pre-sign-up.json", json!({"email": null}));
    e["triggerSource"] = json!("PreSignUp_Unheard");
    assert_eq!(f.invoke(&e).await.error().0, "Permanent.BadEvent");
}
