//! drift-check end to end, rule lifetimes: a rule past its lifetime is revoked with its row
//! kept, nothing else in the group changing, and a request opens it again and renews it.

use harness::{
    Function,
    fixtures::{RuleRow, add_managed_rule, function_env},
    function_binary,
};
use serde_json::json;

#[path = "common/drift.rs"]
mod drift;
use drift::World;

/// andrew's and bea's rules in a new group, both applied, movable by bare requests; andrew's
/// lifetime ran out a minute ago, bea's has an hour left. Returns the group.
async fn a_lapsed_and_a_live_rule(w: &World) -> String {
    let group = w.group().await;
    for (owner, cidr) in [("andrew", "34.201.17.5/32"), ("bea", "52.14.99.8/32")] {
        let id = w.open(&group, cidr, 5432).await;
        let row = RuleRow {
            owner,
            cidr: Some(cidr),
            aws_rule_id: Some(&id),
            allow_unverified: true,
            ..RuleRow::default()
        };
        add_managed_rule(&w.db, &group, row).await;
    }
    w.sql(
        "UPDATE managed_ingress_rules SET expires_at = CASE owner \
         WHEN 'andrew' THEN now() - interval '1 minute' ELSE now() + interval '1 hour' END",
    )
    .await;
    group
}

/// (status, cidr, AWS rule id, seconds until it lapses) of `owner`'s row.
async fn lifetime_row(w: &World, owner: &str) -> (String, Option<String>, Option<String>, f64) {
    let row =
        w.db.connect_as_app()
            .await
            .unwrap()
            .query_one(
                "SELECT status, cidr::text, aws_rule_id, \
             extract(epoch FROM expires_at - now())::float8 \
             FROM managed_ingress_rules WHERE owner = $1",
                &[&owner],
            )
            .await
            .unwrap();
    (row.get(0), row.get(1), row.get(2), row.get(3))
}

#[tokio::test]
async fn a_rule_past_its_lifetime_is_revoked_and_nothing_else_in_the_group_changes() {
    let w = World::shared().await;
    let group = a_lapsed_and_a_live_rule(&w).await;
    let both = w.ingress(&group).await;

    // Report mode with DRIFT_LAPSE=report reports it and changes nothing (by default a lapsed
    // rule is revoked in report mode too: drift_check_security.rs).
    let report = w
        .start(&[("SECURITY_GROUP_IDS", &group), ("DRIFT_LAPSE", "report")])
        .await;
    let summary = report.invoke(&json!({})).await.response().clone();
    assert_eq!(summary["counts"]["expired"], 1, "{summary:#}");
    assert_eq!(w.ingress(&group).await, both);

    let f = w
        .start(&[("DRIFT_MODE", "remediate"), ("SECURITY_GROUP_IDS", &group)])
        .await;
    let summary = f.invoke(&json!({})).await.response().clone();
    assert_eq!(summary["counts"]["expired"], 1, "{summary:#}");
    assert_eq!(summary["actions"]["revoked"], 1, "{summary:#}");
    assert_eq!(
        w.ingress(&group).await,
        vec![("52.14.99.8/32".to_owned(), 5432)],
        "andrew's rule revoked, bea's kept"
    );
    let (status, cidr, rule_id, _) = lifetime_row(&w, "andrew").await;
    assert_eq!(
        (status.as_str(), cidr.as_deref(), rule_id),
        ("expired", Some("34.201.17.5/32"), None),
        "the row is kept and says so"
    );
    assert_eq!(lifetime_row(&w, "bea").await.0, "applied");
    let audit =
        w.db.connect_as_app()
            .await
            .unwrap()
            .query_one(
                "SELECT owner, outcome, old_cidr, via FROM ip_update_audit",
                &[],
            )
            .await
            .unwrap();
    assert_eq!(
        (
            audit.get::<_, String>(0),
            audit.get::<_, String>(1),
            audit.get::<_, Option<String>>(2),
            audit.get::<_, Option<String>>(3)
        ),
        (
            "andrew".into(),
            "expired".into(),
            Some("34.201.17.5/32".into()),
            None
        )
    );

    // An expired row wants nothing: the next run finds nothing to do.
    let again = f.invoke(&json!({})).await.response().clone();
    assert_eq!(again["counts"]["expired"], 0, "{again:#}");
    assert_eq!(again["counts"]["missing"], 0, "{again:#}");
    assert_eq!(again["actions"], json!({}), "{again:#}");
}

#[tokio::test]
async fn an_expired_rule_opens_again_on_request_and_every_request_renews_it() {
    let w = World::shared().await;
    let group = a_lapsed_and_a_live_rule(&w).await;
    let drift = w
        .start(&[("DRIFT_MODE", "remediate"), ("SECURITY_GROUP_IDS", &group)])
        .await;
    drift.invoke(&json!({})).await.response();
    assert_eq!(lifetime_row(&w, "andrew").await.0, "expired");

    let env = function_env(
        &w.db,
        &w.moto,
        &[
            ("SECURITY_GROUP_ID", &group),
            ("SG_IP_UPDATE_SOURCE", "eventbridge"),
        ],
    );
    let sg = Function::spawn(&function_binary("sg-ip-update"), &env)
        .await
        .unwrap();
    let change = json!({"owner": "andrew", "ip": "34.201.17.5"});
    assert_eq!(sg.invoke(&change).await.response()["outcome"], "applied");
    let (status, _, rule_id, left) = lifetime_row(&w, "andrew").await;
    assert_eq!(status, "applied");
    assert!(rule_id.is_some());
    // The default lifetime, 12 hours, from now.
    assert!((11.9 * 3600.0..=12.0 * 3600.0).contains(&left), "{left}");
    assert_eq!(w.ingress(&group).await.len(), 2);

    // A request that only confirms the rule renews it too; a rule with a lifetime of its own
    // is renewed by that.
    w.sql(
        "UPDATE managed_ingress_rules SET expires_at = now() + interval '1 minute', \
         lifetime = interval '30 minutes' WHERE owner = 'andrew'",
    )
    .await;
    assert_eq!(sg.invoke(&change).await.response()["outcome"], "unchanged");
    let left = lifetime_row(&w, "andrew").await.3;
    assert!((29.0 * 60.0..=30.0 * 60.0).contains(&left), "{left}");
    let summary = drift.invoke(&json!({})).await.response().clone();
    assert_eq!(
        summary["counts"]["expired"], 0,
        "a renewed rule is kept: {summary:#}"
    );
    assert_eq!(w.ingress(&group).await.len(), 2);
}
