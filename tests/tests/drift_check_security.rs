//! drift-check end to end, what a deployed setting promises whoever invokes it: a rule open to
//! more than one host is revoked whatever the share limit says (the limit guards developers'
//! own rules only), a held-back group is released once by an operator's recorded row, a
//! direct invocation never asks for more than the deployed mode, and access lapses in the
//! default deploy, also for a row with no expiry of its own.

use harness::fixtures::{RuleRow, add_managed_rule};
use serde_json::{Value, json};

#[path = "common/drift.rs"]
mod drift;
use drift::{World, drifted_world};
mod common;

/// drift-check's settings as the template deploys them with every parameter at its default:
/// `DRIFT_MODE` from `DriftMode`'s default, `DRIFT_LAPSE` as set, and the schedule's input
/// (the lister's schedule, whose input the lister hands on).
fn as_deployed() -> (String, String, Value) {
    let t = common::template();
    let mode = t["Parameters"]["DriftMode"]["Default"]
        .as_str()
        .unwrap()
        .to_owned();
    let function = &t["Resources"]["DriftCheckFunction"]["Properties"];
    let variables = &function["Environment"]["Variables"];
    assert!(common::is_ref_to(&variables["DRIFT_MODE"], "DriftMode"));
    let lapse = variables["DRIFT_LAPSE"].as_str().unwrap_or("").to_owned();
    // The schedule starts the lister, which hands its input on to drift-check.
    let lister = &t["Resources"]["DriftCheckListerFunction"]["Properties"];
    let input = common::strings(&lister["Events"]["Schedule"]["Properties"]["Input"])[0]
        .replace("${DriftMode}", &mode);
    (mode, lapse, serde_json::from_str(&input).unwrap())
}

/// A managed group as a mistaken mass DELETE leaves it: six developers' rules in AWS, five of
/// their rows gone. Returns the group.
async fn five_rows_deleted(w: &World) -> String {
    let group = w.group().await;
    for i in 0..6 {
        let cidr = format!("34.201.17.{}/32", 5 + i);
        let id = w.open(&group, &cidr, 5432).await;
        w.manage(&group, &format!("dev{i}"), &cidr, Some(&id)).await;
    }
    w.sql("DELETE FROM managed_ingress_rules WHERE owner <> 'dev0'")
        .await;
    group
}

fn sources(ingress: &[(String, i32)]) -> Vec<&str> {
    ingress.iter().map(|(cidr, _)| cidr.as_str()).collect()
}

/// The reproduction: 0.0.0.0/0 and ::/0 opened by hand beside one missing and one
/// changed developer rule. Before, the four changes held the whole group back (`skipped: 4`)
/// and the world stayed open run after run; the open world is now revoked, and the two
/// developers' rules are repaired, within the share.
#[tokio::test]
async fn the_open_world_beside_developer_drift_is_revoked_not_held_back() {
    let (w, group, _) = drifted_world().await;
    aws_open_v6(&w, &group, "::/0").await;
    let f = w
        .start(&[("DRIFT_MODE", "remediate"), ("SECURITY_GROUP_IDS", &group)])
        .await;
    let summary = f.invoke(&json!({})).await.response().clone();
    assert_eq!(summary["held_back"], json!([]), "{summary:#}");
    assert_eq!(summary["counts"]["unexpected"], 2, "{summary:#}");
    assert_eq!(summary["actions"]["revoked"], 2, "{summary:#}");
    assert_eq!(summary["actions"]["created"], 1, "{summary:#}");
    assert_eq!(summary["actions"]["modified"], 1, "{summary:#}");
    assert_eq!(
        sources(&w.ingress(&group).await),
        ["18.204.3.99/32", "34.201.17.5/32", "52.14.99.8/32"]
    );
}

/// The share limit still guards developers' rules (five of six about to be revoked after a
/// mass DELETE: held back), but a 0.0.0.0/0 and a /8 opened beside them are revoked in the
/// same run: revoking them locks out no developer.
#[tokio::test]
async fn a_held_back_group_still_loses_its_rules_wider_than_one_host() {
    let w = World::shared().await;
    let group = five_rows_deleted(&w).await;
    w.open(&group, "0.0.0.0/0", 5432).await;
    w.open(&group, "10.0.0.0/8", 5432).await;
    let f = w
        .start(&[("DRIFT_MODE", "remediate"), ("SECURITY_GROUP_IDS", &group)])
        .await;
    let summary = f.invoke(&json!({})).await.response().clone();
    assert_eq!(summary["held_back"], json!([group]), "{summary:#}");
    assert_eq!(summary["counts"]["unexpected"], 7, "{summary:#}");
    assert_eq!(summary["actions"]["skipped"], 5, "{summary:#}");
    assert_eq!(summary["actions"]["revoked"], 2, "{summary:#}");
    let left = w.ingress(&group).await;
    assert_eq!(left.len(), 6, "{left:?}");
    assert!(
        left.iter().all(|(cidr, _)| cidr.ends_with("/32")),
        "{left:?}"
    );
}

/// An operator releases a held-back group on purpose with a row in `drift_releases`: the next
/// remediating run makes the held-back changes, stamps the row with its run id and what it let
/// through, and names the group in its summary. The row is spent: the same mass change again
/// is held back again. drift-check itself may neither write a release nor spend one twice.
#[tokio::test]
async fn a_release_lets_one_run_through_once_and_is_recorded() {
    let w = World::shared().await;
    let group = five_rows_deleted(&w).await;
    let env = [("DRIFT_MODE", "remediate"), ("SECURITY_GROUP_IDS", &group)];
    let f = w.start(&env).await;
    let held = f.invoke(&json!({})).await.response().clone();
    assert_eq!(held["held_back"], json!([group]), "{held:#}");

    let admin = w.db.connect_as_app().await.unwrap();
    admin
        .execute(
            "INSERT INTO drift_releases (security_group_id, reason, added_by) \
             VALUES ($1, 'five developers offboarded on purpose', 'ops@example.com')",
            &[&group],
        )
        .await
        .unwrap();
    let released = f.invoke(&json!({})).await.response().clone();
    assert_eq!(released["held_back"], json!([]), "{released:#}");
    assert_eq!(released["released"], json!([group]), "{released:#}");
    assert_eq!(released["actions"]["revoked"], 5, "{released:#}");
    assert_eq!(sources(&w.ingress(&group).await), ["34.201.17.5/32"]);
    let row = admin
        .query_one(
            "SELECT used_by_run::text, used_at IS NOT NULL, changes FROM drift_releases",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (
            row.get::<_, Option<String>>(0),
            row.get::<_, bool>(1),
            row.get::<_, Option<i32>>(2)
        ),
        (
            released["run_id"].as_str().map(str::to_owned),
            true,
            Some(5)
        ),
        "the release names the run that used it and what it let through"
    );

    // Used once: the same mass change again is held back again.
    for i in 0..5 {
        let cidr = format!("52.14.99.{}/32", 10 + i);
        let id = w.open(&group, &cidr, 5432).await;
        w.manage(&group, &format!("next{i}"), &cidr, Some(&id))
            .await;
    }
    w.sql("DELETE FROM managed_ingress_rules WHERE owner LIKE 'next%'")
        .await;
    let again = f.invoke(&json!({})).await.response().clone();
    assert_eq!(again["held_back"], json!([group]), "{again:#}");
    assert_eq!(again["released"], json!([]), "{again:#}");
    assert_eq!(w.ingress(&group).await.len(), 6);

    // drift-check's own role may not write a release, nor spend one again.
    let login = db_login(&w, "drift_check_fn").await;
    let forged = login
        .execute(
            "INSERT INTO drift_releases (security_group_id, reason, added_by) \
             VALUES ($1, 'self-release', 'drift-check')",
            &[&group],
        )
        .await;
    assert!(forged.is_err(), "drift-check wrote a release");
    // Its column grants allow these three: the trigger refuses a spent row.
    let reused = login
        .execute(
            "UPDATE drift_releases SET used_by_run = NULL, used_at = NULL, changes = NULL",
            &[],
        )
        .await
        .unwrap_err();
    let refusal = reused.as_db_error().map(|e| e.message()).unwrap_or("");
    assert!(
        refusal.contains("is spent"),
        "a spent release was made unspent: {reused:?}"
    );
    let deleted = login.execute("DELETE FROM drift_releases", &[]).await;
    assert!(deleted.is_err(), "drift-check deleted a release");
}

/// Issue 37, item 10: a direct invocation asking for `remediate` of a stack deployed with
/// `DriftMode=report` only reports. The deployed mode caps what an invocation may ask for; it
/// may ask for less.
#[tokio::test]
async fn a_direct_invocation_cannot_remediate_past_a_deployed_report_mode() {
    let (w, group, _) = drifted_world().await;
    let before = w.ingress(&group).await;
    let report = w.start(&[]).await;
    let summary = report
        .invoke(&json!({"mode": "remediate"}))
        .await
        .response()
        .clone();
    assert_eq!(summary["requested_mode"], "remediate", "{summary:#}");
    assert_eq!(summary["mode"], "report", "{summary:#}");
    assert_eq!(
        w.ingress(&group).await,
        before,
        "nothing created, moved or revoked"
    );
    assert_eq!(w.user_rows().await.len(), 2, "nobody backfilled");

    // Deployed to remediate, an invocation may still ask for a report only.
    let remediate = w.start(&[("DRIFT_MODE", "remediate")]).await;
    let summary = remediate
        .invoke(&json!({"mode": "report"}))
        .await
        .response()
        .clone();
    assert_eq!(summary["mode"], "report", "{summary:#}");
    assert_eq!(w.ingress(&group).await, before);
}

/// andrew's rule lapsed a minute ago, bea's has an hour left, and 0.0.0.0/0 is open by hand.
async fn a_lapsed_rule_beside_an_open_world(w: &World) -> String {
    let group = w.group().await;
    for (owner, cidr) in [("andrew", "34.201.17.5/32"), ("bea", "52.14.99.8/32")] {
        let id = w.open(&group, cidr, 5432).await;
        w.manage(&group, owner, cidr, Some(&id)).await;
    }
    w.open(&group, "0.0.0.0/0", 5432).await;
    w.sql(
        "UPDATE managed_ingress_rules SET expires_at = CASE owner \
         WHEN 'andrew' THEN now() - interval '1 minute' ELSE now() + interval '1 hour' END",
    )
    .await;
    group
}

/// Issue 37, item 7: as deployed (the template's settings with every parameter at its default,
/// invoked with the schedule's own input), a rule past its lifetime is revoked by the first
/// scheduled run after it lapses, with its audit record; everything else is only reported.
/// `DRIFT_LAPSE=report` turns that off.
#[tokio::test]
async fn in_the_default_deploy_a_lapsed_rule_is_revoked_by_the_next_scheduled_run() {
    let w = World::shared().await;
    let group = a_lapsed_rule_beside_an_open_world(&w).await;
    let (mode, lapse, schedule) = as_deployed();
    assert_eq!(mode, "report");

    let reporting = w
        .start(&[("SECURITY_GROUP_IDS", &group), ("DRIFT_LAPSE", "report")])
        .await;
    let summary = reporting.invoke(&schedule).await.response().clone();
    assert_eq!(summary["counts"]["expired"], 1, "{summary:#}");
    assert_eq!(w.ingress(&group).await.len(), 3, "DRIFT_LAPSE=report");

    let deployed = [
        ("SECURITY_GROUP_IDS", group.as_str()),
        ("DRIFT_MODE", &mode),
        ("DRIFT_LAPSE", &lapse),
    ];
    let f = w.start(&deployed).await;
    let summary = f.invoke(&schedule).await.response().clone();
    assert_eq!(summary["mode"], "report", "{summary:#}");
    assert_eq!(summary["lapse"], "revoke", "{summary:#}");
    assert_eq!(summary["counts"]["expired"], 1, "{summary:#}");
    assert_eq!(summary["counts"]["unexpected"], 1, "{summary:#}");
    assert_eq!(summary["actions"]["revoked"], 1, "{summary:#}");
    assert_eq!(
        sources(&w.ingress(&group).await),
        ["0.0.0.0/0", "52.14.99.8/32"],
        "andrew's lapsed rule revoked; the open world only reported in report mode"
    );
    let outcome: String =
        w.db.connect_as_app()
            .await
            .unwrap()
            .query_one(
                "SELECT outcome FROM ip_update_audit WHERE owner = 'andrew'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
    assert_eq!(outcome, "expired");
}

/// Issue 37, item 7: a row with no `expires_at` lapses one lifetime (its own, else
/// `drift_settings.rule_lifetime`) after its last request. andrew asked 13 hours ago (default
/// lifetime 12 hours): revoked. bea asked an hour ago: kept. carol, with a lifetime of 30
/// minutes of her own, asked an hour ago: revoked.
#[tokio::test]
async fn a_row_with_no_expiry_lapses_one_lifetime_after_its_last_request() {
    let w = World::shared().await;
    let group = w.group().await;
    for (owner, cidr) in [
        ("andrew", "34.201.17.5/32"),
        ("bea", "52.14.99.8/32"),
        ("carol", "18.204.3.77/32"),
    ] {
        let id = w.open(&group, cidr, 5432).await;
        let row = RuleRow {
            owner,
            cidr: Some(cidr),
            aws_rule_id: Some(&id),
            ..RuleRow::default()
        };
        add_managed_rule(&w.db, &group, row).await;
    }
    w.sql(
        "UPDATE managed_ingress_rules SET expires_at = NULL, last_request_at = CASE owner \
         WHEN 'andrew' THEN now() - interval '13 hours' ELSE now() - interval '1 hour' END; \
         UPDATE managed_ingress_rules SET lifetime = interval '30 minutes' WHERE owner = 'carol'",
    )
    .await;
    let f = w.start(&[("SECURITY_GROUP_IDS", &group)]).await;
    let summary = f
        .invoke(&harness::event("drift-check-schedule-v2.json"))
        .await
        .response()
        .clone();
    assert_eq!(summary["counts"]["expired"], 2, "{summary:#}");
    assert_eq!(summary["actions"]["revoked"], 2, "{summary:#}");
    assert_eq!(sources(&w.ingress(&group).await), ["52.14.99.8/32"]);
    let statuses: Vec<(String, String)> =
        w.db.connect_as_app()
            .await
            .unwrap()
            .query(
                "SELECT owner, status FROM managed_ingress_rules ORDER BY owner",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
    assert_eq!(
        statuses,
        [
            ("andrew".to_owned(), "expired".to_owned()),
            ("bea".to_owned(), "applied".to_owned()),
            ("carol".to_owned(), "expired".to_owned())
        ]
    );
}

/// A plaintext connection to the world's database as a function's login user.
async fn db_login(w: &World, login: &str) -> tokio_postgres::Client {
    let url =
        w.db.url()
            .replacen("postgres://app:", &format!("postgres://{login}:"), 1);
    let (client, conn) = url
        .parse::<tokio_postgres::Config>()
        .unwrap()
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

/// Opens port 5432 to an IPv6 source by hand.
async fn aws_open_v6(w: &World, group: &str, cidr: &str) -> String {
    let permission = aws_sdk_ec2::types::IpPermission::builder()
        .ip_protocol("tcp")
        .from_port(5432)
        .to_port(5432)
        .ipv6_ranges(
            aws_sdk_ec2::types::Ipv6Range::builder()
                .cidr_ipv6(cidr)
                .build(),
        )
        .build();
    w.ec2
        .authorize_security_group_ingress()
        .group_id(group)
        .ip_permissions(permission)
        .send()
        .await
        .unwrap()
        .security_group_rules()[0]
        .security_group_rule_id()
        .unwrap()
        .to_owned()
}
