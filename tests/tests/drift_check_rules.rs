//! drift-check end to end, the limits on remediating: the kill switch (read before every
//! change, failing closed), one run remediating at a time, at most a share of a group changed
//! by one run, allowlisted rules kept only as pinned, and a configured group checked after its
//! last row is gone.

use harness::{Function, event};
use serde_json::{Value, json};

#[path = "common/drift.rs"]
mod drift;
use drift::{World, counts, drifted_world, logs_through};

/// Runs remediate on a drifted world after `switch` (SQL on the kill switch) and checks that
/// the run only reported: no rule created, moved or revoked, nobody backfilled.
async fn remediate_after(switch: &str) -> (World, Function) {
    let (w, group, _) = drifted_world().await;
    w.sql(switch).await;
    let before = w.ingress(&group).await;
    let f = w.start(&[("DRIFT_MODE", "remediate")]).await;
    let summary = f
        .invoke(&json!({"mode": "remediate"}))
        .await
        .response()
        .clone();
    assert_eq!(summary["remediation_paused"], true, "{summary:#}");
    assert_eq!(summary["requested_mode"], "remediate");
    assert_eq!(summary["mode"], "report");
    assert_eq!(counts(&summary), [1, 1, 1, 1, 1]);
    assert_eq!(summary["actions"], json!({"none": 4, "reported": 1}));
    assert_eq!(
        w.ingress(&group).await,
        before,
        "no rule created, moved or revoked"
    );
    assert_eq!(w.user_rows().await.len(), 2, "nobody backfilled");
    (w, f)
}

#[tokio::test]
async fn the_kill_switch_stops_remediation() {
    let (w, f) = remediate_after("UPDATE drift_settings SET remediation_paused = true").await;
    w.sql("UPDATE drift_settings SET remediation_paused = false")
        .await;
    let resumed = f
        .invoke(&json!({"mode": "remediate"}))
        .await
        .response()
        .clone();
    assert_eq!(resumed["actions"]["revoked"], 1);
}

/// The kill switch fails closed: with its settings row gone, a remediate run only reports.
#[tokio::test]
async fn without_its_row_the_kill_switch_fails_closed() {
    remediate_after("DELETE FROM drift_settings").await;
}

/// The kill switch is read before every change: set while a run is remediating (here by a
/// trigger that sets it as the run records its first finding), it stops the run at its next
/// change, not at the next run.
#[tokio::test]
async fn the_kill_switch_set_during_a_run_stops_its_next_change() {
    let w = World::shared().await;
    let group = w.group().await;
    for cidr in ["0.0.0.0/0", "10.0.0.0/8", "172.16.0.0/12"] {
        w.open(&group, cidr, 5432).await;
    }
    // The operator's hand, as the schema owner (SECURITY DEFINER): drift-check's own role
    // may not set the switch.
    w.sql(
        "CREATE FUNCTION pause_remediation() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$ \
         BEGIN UPDATE drift_settings SET remediation_paused = true; RETURN NEW; END $$; \
         CREATE TRIGGER pause_remediation AFTER INSERT ON drift_findings \
         FOR EACH ROW EXECUTE FUNCTION pause_remediation()",
    )
    .await;
    let f = w
        .start(&[
            ("DRIFT_MODE", "remediate"),
            ("SECURITY_GROUP_IDS", &group),
            ("DRIFT_MAX_CHANGE_SHARE", "1"),
        ])
        .await;
    let summary = f.invoke(&json!({})).await.response().clone();
    assert_eq!(summary["counts"]["unexpected"], 3, "{summary:#}");
    assert_eq!(summary["actions"]["revoked"], 1, "{summary:#}");
    assert_eq!(summary["actions"]["skipped"], 2, "{summary:#}");
    assert_eq!(summary["remediation_paused"], true, "{summary:#}");
    assert_eq!(w.ingress(&group).await.len(), 2);
}

/// Two runs at once (a stack without reserved concurrency): while one holds the remediation
/// lock, another asked to remediate only reports; once it is free, remediation goes on.
#[tokio::test]
async fn a_run_while_another_remediates_only_reports() {
    let (w, group, _) = drifted_world().await;
    let before = w.ingress(&group).await;
    // The other run, as its connection holds the lock.
    let other = w.db.connect_as_app().await.unwrap();
    let lock = drift_check::exclusive::REMEDIATION_LOCK;
    other
        .query_one("SELECT pg_advisory_lock(hashtext($1))", &[&lock])
        .await
        .unwrap();
    let f = w.start(&[("DRIFT_MODE", "remediate")]).await;
    let summary = f.invoke(&json!({})).await.response().clone();
    assert_eq!(summary["requested_mode"], "remediate");
    assert_eq!(summary["mode"], "report", "{summary:#}");
    assert_eq!(summary["remediation_paused"], false);
    assert_eq!(summary["actions"], json!({"none": 4, "reported": 1}));
    assert_eq!(w.ingress(&group).await, before, "nothing changed");

    other
        .query_one("SELECT pg_advisory_unlock(hashtext($1))", &[&lock])
        .await
        .unwrap();
    let next = f.invoke(&json!({})).await.response().clone();
    assert_eq!(next["mode"], "remediate", "{next:#}");
    assert_eq!(next["actions"]["revoked"], 1);
    // The run gave the lock back: the next one takes it again.
    let third = f.invoke(&json!({})).await.response().clone();
    assert_eq!(third["mode"], "remediate", "{third:#}");
}

/// A restored old snapshot or a mistaken mass DELETE must not let one run revoke or move every
/// rule: a run that would change more than DRIFT_MAX_CHANGE_SHARE of a group's rules changes
/// nothing in it, reports what it would have done (the drift alarm counts it) and names the
/// group.
#[tokio::test]
async fn a_run_that_would_change_most_of_a_group_changes_nothing() {
    let w = World::shared().await;
    let group = w.group().await;
    for (i, ip) in [
        "34.201.17.5",
        "34.201.17.6",
        "34.201.17.7",
        "34.201.17.8",
        "34.201.17.9",
        "34.201.17.10",
    ]
    .iter()
    .enumerate()
    {
        let cidr = format!("{ip}/32");
        let id = w.open(&group, &cidr, 5432).await;
        w.manage(&group, &format!("dev{i}"), &cidr, Some(&id)).await;
    }
    // Five of the six rows deleted by mistake.
    w.sql("DELETE FROM managed_ingress_rules WHERE owner <> 'dev0'")
        .await;
    let before = w.ingress(&group).await;
    let f = w
        .start(&[("DRIFT_MODE", "remediate"), ("SECURITY_GROUP_IDS", &group)])
        .await;
    let summary = f.invoke(&json!({})).await.response().clone();
    assert_eq!(summary["counts"]["unexpected"], 5, "{summary:#}");
    assert_eq!(summary["actions"]["skipped"], 5, "{summary:#}");
    assert_eq!(summary["held_back"], json!([group]), "{summary:#}");
    assert_eq!(
        w.ingress(&group).await,
        before,
        "nothing in the group changed"
    );

    // One rule opened by hand in a group in step is still revoked: within the share.
    w.sql("DELETE FROM managed_ingress_rules").await;
    let small = w.group().await;
    let id = w.open(&small, "34.201.17.5/32", 5432).await;
    w.manage(&small, "dev0", "34.201.17.5/32", Some(&id)).await;
    w.open(&small, "0.0.0.0/0", 5432).await;
    let f = w
        .start(&[("DRIFT_MODE", "remediate"), ("SECURITY_GROUP_IDS", &small)])
        .await;
    let summary = f.invoke(&json!({})).await.response().clone();
    assert_eq!(summary["actions"]["revoked"], 1, "{summary:#}");
    assert_eq!(summary["held_back"], json!([]), "{summary:#}");
}

/// A team's own rules in a managed group (a VPN range, say) survive remediation once an
/// allowlist entry names them; a rule no entry names exactly, like 0.0.0.0/0, does not.
#[tokio::test]
async fn an_allowlisted_vpn_range_survives_remediate_while_the_open_world_is_revoked() {
    let w = World::shared().await;
    let group = w.group().await;
    let kept = w.open(&group, "34.201.17.5/32", 5432).await;
    w.manage(&group, "andrew", "34.201.17.5/32", Some(&kept))
        .await;
    let vpn = w.open(&group, "10.20.0.0/16", 5432).await;
    w.open(&group, "0.0.0.0/0", 5432).await;
    w.db.connect_as_app()
        .await
        .unwrap()
        .execute(
            "INSERT INTO drift_allowed_rules \
             (security_group_id, cidr, ip_protocol, from_port, to_port, reason, added_by) \
             VALUES ($1, '10.20.0.0/16', 'tcp', 5432, 5432, 'office VPN', 'ops@example.com')",
            &[&group],
        )
        .await
        .unwrap();
    let f = w.start(&[("DRIFT_MODE", "remediate")]).await;
    let first = f.invoke(&json!({})).await;
    let summary = first.response().clone();
    assert_eq!(summary["counts"]["allowed"], 1, "{summary:#}");
    assert_eq!(summary["counts"]["unexpected"], 1, "{summary:#}");
    assert_eq!(summary["actions"]["revoked"], 1);
    assert_eq!(summary["actions"]["kept"], 1);
    let allowed = summary["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "allowed")
        .unwrap();
    assert_eq!(allowed["resource"], format!("{group}/{vpn}"));
    assert_eq!(allowed["desired"]["reason"], "office VPN");
    assert_eq!(
        w.ingress(&group).await,
        [
            ("10.20.0.0/16".to_owned(), 5432),
            ("34.201.17.5/32".to_owned(), 5432)
        ],
        "the VPN range stays; 0.0.0.0/0 is gone"
    );
    // Allowlisted rules are not drift: the alarm's total counts only the revoked one.
    let total = logs_through(&f, &first)
        .await
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v.get("_aws").is_some() && v.get("Kind").is_none())
        .unwrap();
    assert_eq!(total["Findings"], 1);
    let second = f.invoke(&json!({})).await.response().clone();
    assert_eq!(second["counts"]["unexpected"], 0);
    assert_eq!(second["counts"]["allowed"], 1);
}

/// An allowlist entry pins what it allows. The bastion's rule, allowlisted by id, source,
/// protocol and port, widened by hand to 0.0.0.0/0 is drift and is revoked, not kept. An entry
/// written before entries were pinned (an id alone) keeps nothing: the rule it names is
/// reported as drift but left in place for the operator to pin.
#[tokio::test]
async fn an_allowlisted_rule_widened_by_hand_is_drift() {
    let w = World::shared().await;
    let group = w.group().await;
    let bastion = w.open(&group, "52.0.0.9/32", 5432).await;
    let legacy = w.open(&group, "52.0.0.10/32", 22).await;
    let admin = w.db.admin().await.unwrap();
    admin
        .execute(
            "INSERT INTO drift_allowed_rules \
             (security_group_id, aws_rule_id, cidr, ip_protocol, from_port, to_port, reason, added_by) \
             VALUES ($1, $2, '52.0.0.9/32', 'tcp', 5432, 5432, 'bastion', 'ops@example.com')",
            &[&group, &bastion],
        )
        .await
        .unwrap();
    // An entry as it was written before V8 (the constraint holds for new rows only).
    admin
        .batch_execute(&format!(
            "ALTER TABLE drift_allowed_rules DROP CONSTRAINT drift_allowed_rules_pins_a_rule; \
             INSERT INTO drift_allowed_rules (security_group_id, aws_rule_id, reason, added_by) \
             VALUES ('{group}', '{legacy}', 'old jump host', 'ops@example.com'); \
             ALTER TABLE drift_allowed_rules ADD CONSTRAINT drift_allowed_rules_pins_a_rule \
             CHECK (cidr IS NOT NULL AND ip_protocol IS NOT NULL AND from_port IS NOT NULL \
             AND to_port IS NOT NULL) NOT VALID"
        ))
        .await
        .unwrap();
    // A new entry that pins nothing but a CIDR is refused.
    let unpinned = admin
        .execute(
            "INSERT INTO drift_allowed_rules (security_group_id, cidr, reason, added_by) \
             VALUES ($1, '10.0.0.0/8', 'vpn', 'ops@example.com')",
            &[&group],
        )
        .await;
    assert!(unpinned.is_err(), "an unpinned entry was accepted");

    let f = w
        .start(&[("DRIFT_MODE", "remediate"), ("SECURITY_GROUP_IDS", &group)])
        .await;
    let summary = f.invoke(&json!({})).await.response().clone();
    assert_eq!(summary["counts"]["allowed"], 1, "{summary:#}");
    assert_eq!(
        summary["counts"]["unexpected"], 1,
        "the legacy entry's rule: {summary:#}"
    );
    assert_eq!(summary["actions"]["skipped"], 1, "{summary:#}");

    // Widened by hand, in place (same rule id): now it matches its entry no more.
    w.ec2
        .modify_security_group_rules()
        .group_id(&group)
        .security_group_rules(
            aws_sdk_ec2::types::SecurityGroupRuleUpdate::builder()
                .security_group_rule_id(&bastion)
                .security_group_rule(
                    aws_sdk_ec2::types::SecurityGroupRuleRequest::builder()
                        .ip_protocol("tcp")
                        .from_port(5432)
                        .to_port(5432)
                        .cidr_ipv4("0.0.0.0/0")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let summary = f.invoke(&json!({})).await.response().clone();
    assert_eq!(summary["counts"]["allowed"], 0, "{summary:#}");
    assert_eq!(summary["counts"]["unexpected"], 2, "{summary:#}");
    assert_eq!(summary["actions"]["revoked"], 1, "{summary:#}");
    assert_eq!(
        w.ingress(&group).await,
        [("52.0.0.10/32".to_owned(), 22)],
        "the widened bastion rule is gone; the legacy entry's rule is left for the operator"
    );
}

/// Offboarding: the last developer's row is deleted, and their rule (and a 0.0.0.0/0 opened
/// later) must still be found. The groups checked come from the configuration, not from the
/// rows that happen to exist.
#[tokio::test]
async fn a_group_whose_last_row_was_deleted_is_still_checked() {
    let w = World::shared().await;
    let group = w.group().await;
    let left = w.open(&group, "52.14.99.8/32", 5432).await;
    w.manage(&group, "leaver", "52.14.99.8/32", Some(&left))
        .await;
    w.sql("DELETE FROM managed_ingress_rules").await;
    w.open(&group, "0.0.0.0/0", 5432).await;

    let f = w
        .start(&[("SECURITY_GROUP_IDS", &group), ("DRIFT_MODE", "remediate")])
        .await;
    let summary = f.invoke(&json!({})).await.response().clone();
    assert_eq!(summary["counts"]["unexpected"], 2, "{summary:#}");
    assert_eq!(summary["actions"]["revoked"], 2, "{summary:#}");
    assert!(w.ingress(&group).await.is_empty());

    // A CloudTrail event for the group is checked too, with no row in it.
    w.open(&group, "0.0.0.0/0", 5432).await;
    let mut trail = event("drift-check-cloudtrail.json");
    trail["detail"]["requestParameters"]["groupId"] = json!(group);
    let summary = f.invoke(&trail).await.response().clone();
    assert_eq!(summary["counts"]["unexpected"], 1, "{summary:#}");
}
