//! drift-check end to end, users and their rows: a sign-up lost while Postgres was down is
//! backfilled, a user whose row cannot be written holds back no one, orphans past the cap are
//! counted and not stored, and profile changes are followed unless unverified or taken.

use std::{collections::HashMap, time::Duration};

use aws_sdk_cognitoidentityprovider::types::AttributeType;
use harness::{Function, Stack, event, fixtures::function_env, function_binary};
use serde_json::{Value, json};

#[path = "common/drift.rs"]
mod drift;
use drift::{World, counts, logs_through};

#[tokio::test]
async fn a_sign_up_lost_while_postgres_was_down_is_backfilled() {
    let stack = Stack::private("pg").unwrap();
    let w = World::new(stack.fresh_database().await.unwrap()).await;
    let sub = w.user("dora", true).await;

    // Cognito confirms dora, but the trigger cannot reach Postgres: the sign-up is lost.
    stack.pg_stop();
    let env = function_env(&w.db, &w.moto, &[]);
    let trigger = Function::spawn(&function_binary("post-confirmation"), &env)
        .await
        .unwrap();
    let mut signup = event("post-confirmation.json");
    signup["userPoolId"] = json!(w.pool);
    signup["userName"] = json!("dora");
    signup["request"]["userAttributes"] = json!({"sub": sub, "email": "dora@example.com", "email_verified": "true", "name": "dora name"});
    let failed = trigger.invoke_within(&signup, Duration::from_secs(5)).await;
    assert_eq!(failed.error().0, "Retryable.DatabaseUnavailable");

    stack.pg_start();
    assert!(w.user_rows().await.is_empty());
    let drift = w.start(&[("DRIFT_MODE", "remediate")]).await;
    let summary = drift.invoke(&json!({})).await.response().clone();
    assert_eq!(summary["counts"]["missing_user"], 1);
    assert_eq!(summary["actions"]["backfilled"], 1);
    assert_eq!(
        w.user_rows().await,
        vec![(sub, "dora".to_owned(), "dora name".to_owned())]
    );
}

/// One confirmed user whose row can never be written must hold back no one: a 1,000-character
/// CJK handle (3,000 bytes, past the unique index's 2,704), an email that is not verified (a
/// user who failed the trigger on purpose and then put someone else's address there), and a
/// row the database itself refuses are each reported as `unwritable_user` with the reason;
/// the lost sign-ups on the same and later pages are backfilled and the pass completes.
#[tokio::test]
async fn a_user_whose_row_cannot_be_written_holds_back_no_one() {
    let w = World::shared().await;
    let cjk = "漢".repeat(1000);
    let verified = ("email_verified", "true");
    let long = w
        .user_with("long", true, &[verified, ("preferred_username", &cjk)])
        .await;
    let unverified = w
        .user_with("mallory", true, &[("email", "victim@example.com")])
        .await;
    let refused = w.user_with("boom", true, &[verified]).await;
    let mut honest = Vec::new();
    for name in ["erin", "frank", "grace"] {
        honest.push(w.user(name, true).await);
    }
    // Any other per-user failure: a row the database refuses, whatever the reason.
    w.sql(
        "CREATE FUNCTION refuse_boom() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN IF NEW.handle = 'boom' THEN RAISE EXCEPTION 'boom is refused here'; END IF; \
         RETURN NEW; END $$; \
         CREATE TRIGGER refuse_boom BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION refuse_boom()",
    )
    .await;

    // Two users a page: the three that cannot be written come first.
    let f = w
        .start(&[("DRIFT_MODE", "remediate"), ("DRIFT_PAGE_SIZE", "2")])
        .await;
    let summary = f.invoke(&json!({})).await.response().clone();
    assert_eq!(summary["status"], "complete", "{summary:#}");
    assert_eq!(summary["counts"]["unwritable_user"], 3, "{summary:#}");
    assert_eq!(summary["counts"]["missing_user"], 3, "{summary:#}");
    assert_eq!(summary["actions"]["backfilled"], 3, "{summary:#}");
    let rows: Vec<String> = w.user_rows().await.into_iter().map(|r| r.0).collect();
    let mut expected = honest.clone();
    expected.sort();
    let mut got = rows.clone();
    got.sort();
    assert_eq!(got, expected, "exactly the three honest users were written");

    let findings = w
        .db
        .connect_as_app()
        .await
        .unwrap()
        .query(
            "SELECT resource, actual->>'reason' FROM drift_findings WHERE kind = 'unwritable_user'",
            &[],
        )
        .await
        .unwrap();
    let reason_of = |sub: &str| -> String {
        findings
            .iter()
            .find(|r| r.get::<_, String>(0).ends_with(sub))
            .map(|r| r.get(1))
            .unwrap_or_else(|| panic!("no unwritable_user finding for {sub}"))
    };
    assert!(
        reason_of(&long).contains("longer than 64 characters"),
        "{}",
        reason_of(&long)
    );
    assert!(
        reason_of(&unverified).contains("not verified"),
        "{}",
        reason_of(&unverified)
    );
    assert!(
        reason_of(&refused).contains("boom is refused here"),
        "{}",
        reason_of(&refused)
    );
    assert!(
        !w.user_rows().await.iter().any(|r| r.0 == unverified),
        "the unverified address was not written"
    );

    // The next run reports them again and writes nothing more: no page is stuck.
    let again = f.invoke(&json!({})).await.response().clone();
    assert_eq!(again["status"], "complete", "{again:#}");
    assert_eq!(again["counts"]["unwritable_user"], 3, "{again:#}");
    assert_eq!(again["counts"]["missing_user"], 0, "{again:#}");
}

/// A pool that lost many users at once: every orphan is counted, only the cap's worth are
/// stored and logged (and only that many rows are ever read into the function).
#[tokio::test]
async fn orphans_past_the_cap_are_counted_not_stored() {
    let w = World::shared().await;
    let kept = w.user("kept", true).await;
    w.add_row(&kept, "kept").await;
    w.sql(
        "INSERT INTO users (cognito_user_id, email, display_name, handle, created_at) \
         SELECT 'gone-' || i, 'g' || i || '@example.com', 'g' || i, 'g' || i, \
                now() - interval '1 hour' - i * interval '1 second' \
         FROM generate_series(1, 250) AS i",
    )
    .await;
    let f = w.start(&[("DRIFT_MAX_FINDINGS_PER_KIND", "7")]).await;
    let inv = f.invoke(&json!({})).await;
    let summary = inv.response().clone();
    assert_eq!(summary["status"], "complete", "{summary:#}");
    assert_eq!(counts(&summary), [0, 0, 0, 0, 250]);
    assert_eq!(summary["actions"], json!({"reported": 250}));

    let client = w.db.connect_as_app().await.unwrap();
    let stored: Vec<String> = client
        .query(
            "SELECT resource FROM drift_findings WHERE run_id = $1::text::uuid ORDER BY id",
            &[&summary["run_id"].as_str().unwrap()],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    // The oldest first: gone-250 was created first.
    let oldest: Vec<String> = (244..=250)
        .rev()
        .map(|i| format!("users/gone-{i}"))
        .collect();
    assert_eq!(stored, oldest);
    let persisted: Value = client
        .query_one(
            "SELECT counts::text FROM drift_runs WHERE id = $1::text::uuid",
            &[&summary["run_id"].as_str().unwrap()],
        )
        .await
        .map(|r| serde_json::from_str(r.get(0)).unwrap())
        .unwrap();
    assert_eq!(persisted["orphan_user"], 250);
    let logged: Vec<String> = logs_through(&f, &inv)
        .await
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["message"] == "drift finding")
        .map(|v| v["resource"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(logged, oldest, "only the oldest are logged");
}

/// Sets `attributes` on `username` in Cognito, as the user editing their profile would.
async fn edit_profile(w: &World, username: &str, attributes: &[(&str, &str)]) {
    let attrs: Vec<AttributeType> = attributes
        .iter()
        .map(|(n, v)| AttributeType::builder().name(*n).value(*v).build().unwrap())
        .collect();
    w.cognito
        .admin_update_user_attributes()
        .user_pool_id(&w.pool)
        .username(username)
        .set_user_attributes(Some(attrs))
        .send()
        .await
        .unwrap();
}

/// (email, display name, handle) of the row for `sub`.
async fn profile_row(w: &World, sub: &str) -> (String, String, String) {
    let row =
        w.db.connect_as_app()
            .await
            .unwrap()
            .query_one(
                "SELECT email, display_name, handle FROM users WHERE cognito_user_id = $1",
                &[&sub],
            )
            .await
            .unwrap();
    (row.get(0), row.get(1), row.get(2))
}

/// Users who change their email, name or preferred username in Cognito: report mode reports
/// each and writes nothing; remediate updates the row from Cognito, except a new email that is
/// not verified and a handle another user holds (reported, not written).
#[tokio::test]
async fn profile_changes_are_reported_then_followed_unless_unverified_or_taken() {
    let w = World::shared().await;
    let mut subs = HashMap::new();
    for name in ["dora", "eve", "finn", "gus"] {
        let sub = w.user(name, true).await;
        w.add_row(&sub, name).await;
        subs.insert(name, sub);
    }
    // dora: a new verified email and name; eve: a new handle; finn: a new email, not yet
    // verified; gus: dora's handle, in another case.
    edit_profile(
        &w,
        "dora",
        &[
            ("email", "dora@new.example"),
            ("email_verified", "true"),
            ("name", "Dora D"),
        ],
    )
    .await;
    edit_profile(&w, "eve", &[("preferred_username", "eve_2")]).await;
    edit_profile(
        &w,
        "finn",
        &[
            ("email", "finn@elsewhere.example"),
            ("email_verified", "false"),
        ],
    )
    .await;
    edit_profile(&w, "gus", &[("preferred_username", "Dora")]).await;
    let before: Vec<_> = {
        let mut v = Vec::new();
        for name in ["dora", "eve", "finn", "gus"] {
            v.push(profile_row(&w, &subs[name]).await);
        }
        v
    };

    let summary = w
        .start(&[])
        .await
        .invoke(&json!({}))
        .await
        .response()
        .clone();
    assert_eq!(summary["counts"]["profile_changed"], 4, "{summary:#}");
    for (i, name) in ["dora", "eve", "finn", "gus"].iter().enumerate() {
        assert_eq!(
            profile_row(&w, &subs[name]).await,
            before[i],
            "report mode wrote {name}"
        );
    }

    let f = w.start(&[("DRIFT_MODE", "remediate")]).await;
    let summary = f.invoke(&json!({})).await.response().clone();
    assert_eq!(summary["counts"]["profile_changed"], 4, "{summary:#}");
    assert_eq!(
        profile_row(&w, &subs["dora"]).await,
        ("dora@new.example".into(), "Dora D".into(), "dora".into())
    );
    assert_eq!(profile_row(&w, &subs["eve"]).await.2, "eve_2");
    assert_eq!(
        profile_row(&w, &subs["finn"]).await,
        before[2],
        "an unverified email is not written"
    );
    let findings = summary["findings"].as_array().unwrap();
    let about = |name: &str| {
        findings
            .iter()
            .find(|f| {
                f["kind"] == "profile_changed"
                    && f["resource"].as_str().unwrap().ends_with(&subs[name])
            })
            .unwrap_or_else(|| panic!("{name}: {summary:#}"))
            .clone()
    };
    assert!(
        about("finn").to_string().contains("not verified"),
        "{}",
        about("finn")
    );
    assert_eq!(
        profile_row(&w, &subs["gus"]).await,
        before[3],
        "never over another's handle"
    );
    let gus = about("gus").to_string();
    assert!(
        gus.contains("the handle is taken by") && gus.contains(&subs["dora"]),
        "{gus}"
    );

    // What was followed is no longer a difference; what was not is reported again.
    let again = f.invoke(&json!({})).await.response().clone();
    assert_eq!(
        again["counts"]["profile_changed"], 2,
        "finn and gus: {again:#}"
    );
}
