//! drift-check end to end: the real binary through the Lambda Runtime API, real Postgres, EC2
//! and Cognito served by moto. Here, a run: every kind found in report mode and fixed in
//! remediate mode, its metric lines, the events it accepts, a deadline too short, a permanent
//! error, and the audit's retention. The limits on remediating are in
//! `drift_check_rules.rs`, users and their rows in `drift_check_users.rs`, rule lifetimes in
//! `drift_check_lifetimes.rs`; the shared world in `common/drift.rs`.

use std::time::Duration;

use harness::{Outcome, event};
use serde_json::{Value, json};

#[path = "common/drift.rs"]
mod drift;
use drift::{World, counts, drifted_world, logs_through};

#[tokio::test]
async fn report_mode_finds_every_kind_and_changes_nothing() {
    let (w, group, lost) = drifted_world().await;
    let before = w.ingress(&group).await;
    let f = w.start(&[]).await;
    let inv = f.invoke(&event("drift-check-schedule.json")).await;
    let summary = inv.response();
    assert_eq!(summary["status"], "complete");
    assert_eq!(summary["mode"], "report");
    assert_eq!(counts(summary), [1, 1, 1, 1, 1], "{summary:#}");
    let lost_finding = summary["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "missing_user")
        .unwrap();
    assert!(lost_finding["resource"].as_str().unwrap().ends_with(&lost));

    assert_eq!(
        w.ingress(&group).await,
        before,
        "report mode changes nothing"
    );
    assert_eq!(w.user_rows().await.len(), 2);
    let client = w.db.connect_as_app().await.unwrap();
    let stored: i64 = client
        .query_one("SELECT count(*) FROM drift_findings f JOIN drift_runs r ON r.id = f.run_id WHERE r.status = 'complete'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 5);

    let logs = logs_through(&f, &inv).await;
    assert_eq!(
        logs.iter()
            .filter(|l| l.contains("\"message\":\"drift finding\""))
            .count(),
        5
    );
    let emf: Vec<Value> = logs
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        // The findings' lines (the groups' capacity lines follow them).
        .filter(|v| v.get("_aws").is_some() && v.get("Findings").is_some())
        .collect();
    assert_eq!(
        emf.len(),
        drift_check::report::Kind::ALL.len() + 1,
        "one metric line per kind and a total"
    );
    assert!(
        emf.iter()
            .any(|m| m["Kind"] == "unexpected" && m["Findings"] == 1)
    );
    assert!(
        emf.iter()
            .any(|m| m.get("Kind").is_none() && m["Findings"] == 5)
    );
}

/// The drift alarm reads these lines: Lambda drops a JSON line without a level above INFO
/// when the application log level is WARN, so raising the level must not silence them.
#[tokio::test]
async fn metric_lines_survive_log_level_warn_in_the_stacks_namespace() {
    let (w, _group, _lost) = drifted_world().await;
    let f = w
        .start(&[
            ("AWS_LAMBDA_LOG_LEVEL", "warn"),
            ("METRICS_NAMESPACE", "DriftCheck/db-sync-staging"),
        ])
        .await;
    let summary = f
        .invoke(&event("drift-check-schedule.json"))
        .await
        .response()
        .clone();
    assert_eq!(summary["status"], "complete", "{summary:#}");
    // At this level the run's closing info line is filtered: wait for the total metric line,
    // the last one printed, instead.
    let parse = |l: &String| serde_json::from_str::<Value>(l).ok();
    let is_total = |v: &Value| v.get("_aws").is_some() && v.get("Kind").is_none();
    let lines: Vec<Value> = f
        .logs_when(
            |logs| logs.iter().filter_map(parse).any(|v| is_total(&v)),
            Duration::from_secs(5),
        )
        .await
        .iter()
        .filter_map(parse)
        .collect();
    assert!(
        lines.iter().any(|l| l["message"] == "drift finding"),
        "findings are warnings: {lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l["level"] == "INFO"),
        "the run's info summary is filtered, so the level took effect: {lines:#?}"
    );
    let emf: Vec<&Value> = lines
        .iter()
        .filter(|v| v.get("_aws").is_some() && v.get("Findings").is_some())
        .collect();
    assert_eq!(
        emf.len(),
        drift_check::report::Kind::ALL.len() + 1,
        "one metric line per kind and a total: {lines:#?}"
    );
    for m in &emf {
        assert_eq!(
            m["_aws"]["CloudWatchMetrics"][0]["Namespace"], "DriftCheck/db-sync-staging",
            "{m}"
        );
        // What Lambda's level filter reads: a level at WARN, and an RFC 3339 timestamp.
        assert_eq!(m["level"], "WARN", "{m}");
        let ts = m["timestamp"].as_str().unwrap();
        assert!(
            ts.len() == 24 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T',
            "{ts}"
        );
    }
    assert!(
        emf.iter()
            .any(|m| m.get("Kind").is_none() && m["Findings"] == 5)
    );
}

#[tokio::test]
async fn a_namespace_cloudwatch_would_refuse_stops_the_cold_start() {
    let w = World::shared().await;
    for bad in ["AWS/Lambda", "Drift\u{1}Check"] {
        let f = w.start(&[("METRICS_NAMESPACE", bad)]).await;
        match &f.invoke(&json!({})).await.outcome {
            Outcome::Exited(detail) => assert!(detail.contains("METRICS_NAMESPACE"), "{detail}"),
            other => panic!("{bad:?}: expected the process to stop at init, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn remediate_fixes_everything_but_orphans_and_a_second_run_is_clean() {
    let (w, group, lost) = drifted_world().await;
    let f = w.start(&[("DRIFT_MODE", "remediate")]).await;
    let first = f.invoke(&json!({})).await.response().clone();
    assert_eq!(counts(&first), [1, 1, 1, 1, 1]);
    assert_eq!(
        first["actions"],
        json!({"created": 1, "modified": 1, "revoked": 1, "backfilled": 1, "reported": 1})
    );

    let mut expected = vec![
        ("18.204.3.99/32".to_owned(), 5432),
        ("34.201.17.5/32".to_owned(), 5432),
        ("52.14.99.8/32".to_owned(), 5432),
    ];
    expected.sort();
    assert_eq!(
        w.ingress(&group).await,
        expected,
        "0.0.0.0/0 revoked, the rest as the table says"
    );
    let rows = w.user_rows().await;
    assert!(
        rows.iter()
            .any(|r| r.0 == lost && r.1 == "bob" && r.2 == "bob name"),
        "backfilled with the trigger's mapping: {rows:?}"
    );
    assert!(
        rows.iter().any(|r| r.1 == "ghost"),
        "orphans are never deleted"
    );

    let second = f.invoke(&json!({})).await.response().clone();
    assert_eq!(counts(&second), [0, 0, 0, 0, 1], "{second:#}");
}

#[tokio::test]
async fn a_cloudtrail_event_checks_only_its_group() {
    let w = World::shared().await;
    let (watched, other, unmanaged) = (w.group().await, w.group().await, w.group().await);
    for g in [&watched, &other] {
        w.manage(g, "andrew", "34.201.17.5/32", None).await;
        w.open(g, "0.0.0.0/0", 5432).await;
    }
    w.open(&unmanaged, "0.0.0.0/0", 22).await;
    w.user("lost", true).await;
    let f = w.start(&[]).await;

    let mut e = event("drift-check-cloudtrail.json");
    e["detail"]["requestParameters"]["groupId"] = json!(watched);
    let s = f.invoke(&e).await.response().clone();
    assert_eq!(s["scope"], json!(watched));
    assert_eq!(s["trigger"], "cloudtrail:AuthorizeSecurityGroupIngress");
    assert_eq!(
        counts(&s),
        [1, 0, 1, 0, 0],
        "only the watched group, no users: {s:#}"
    );
    for f in s["findings"].as_array().unwrap() {
        assert!(f["resource"].as_str().unwrap().starts_with(&watched));
    }

    e["detail"]["requestParameters"]["groupId"] = json!(unmanaged);
    let s = f.invoke(&e).await.response().clone();
    assert_eq!(
        counts(&s),
        [0, 0, 0, 0, 0],
        "an unmanaged group is not ours"
    );
}

#[tokio::test]
async fn scheduler_rule_and_direct_payloads_are_accepted() {
    let w = World::shared().await;
    let f = w.start(&[]).await;
    let classic = event("drift-check-schedule.json");
    for payload in [
        json!({}),
        json!(null),
        json!({"mode": "report"}),
        classic,
        // What EventBridge Scheduler (the template's ScheduleV2) delivers: its Input as-is.
        event("drift-check-schedule-v2.json"),
        json!({"trigger": "manual"}),
    ] {
        let inv = f.invoke(&payload).await;
        assert_eq!(inv.response()["status"], "complete", "{payload}");
    }
    for bad in [
        json!({"mode": "delete-everything"}),
        json!([1]),
        json!({"detail-type": "Something Else", "detail": {}}),
    ] {
        let inv = f.invoke(&bad).await;
        assert_eq!(inv.error().0, "Permanent.BadRequest", "{bad}");
    }
}

#[tokio::test]
async fn a_deadline_too_short_gives_a_partial_run_not_a_crash() {
    let (w, _, _) = drifted_world().await;
    let f = w
        .start(&[
            ("DRIFT_DEADLINE_MARGIN_MS", "1000"),
            ("DRIFT_MODE", "remediate"),
        ])
        .await;
    // The whole invocation gets as long as the margin: the check must stop at once.
    let inv = f
        .invoke_within(&json!({}), Duration::from_millis(1000))
        .await;
    let summary = inv.response();
    assert_eq!(summary["status"], "partial", "{summary:#}");
    let status: String =
        w.db.connect_as_app()
            .await
            .unwrap()
            .query_one("SELECT status FROM drift_runs", &[])
            .await
            .unwrap()
            .get(0);
    assert_eq!(status, "partial");
    assert!(f.exit_status().is_none(), "the process lives on");
    assert_eq!(f.invoke(&json!({})).await.response()["status"], "complete");
}

/// A database error that will not pass by itself (here: drift-check's tables are missing) is
/// a permanent error, classified as the other functions classify it.
#[tokio::test]
async fn a_database_error_that_will_not_pass_is_permanent() {
    let w = World::shared().await;
    w.sql("DROP TABLE drift_settings").await;
    let f = w.start(&[]).await;
    let inv = f.invoke(&json!({})).await;
    let (t, m) = inv.error();
    assert_eq!(t, "Permanent.Database", "{m}");
    assert!(m.contains("drift_settings") && m.contains("42P01"), "{m}");
}

/// sg-ip-update's audit has a stated retention: each scheduled run deletes rows older than
/// `drift_settings.audit_retention_days` (90), so a flood of refused events cannot grow it
/// without bound; inside the retention it stays append-only, for the functions' own role too.
#[tokio::test]
async fn the_audit_is_kept_for_its_retention_and_no_longer() {
    let w = World::shared().await;
    w.sql(
        "INSERT INTO ip_update_audit (owner, security_group_id, outcome, via, at) VALUES \
         ('expired1', 'sg-0a1b2c3d', 'refused_unknown_owner', 'eventbridge', now() - interval '100 days'), \
         ('expired2', 'sg-0a1b2c3d', 'refused_unknown_owner', 'eventbridge', now() - interval '91 days'), \
         ('kept', 'sg-0a1b2c3d', 'applied', 'function_url', now() - interval '89 days')",
    )
    .await;
    let client = w.db.connect_as_app().await.unwrap();
    for tamper in [
        "DELETE FROM ip_update_audit WHERE owner = 'kept'",
        "UPDATE ip_update_audit SET detail = 'edited'",
        "TRUNCATE ip_update_audit",
    ] {
        let refused = client.batch_execute(tamper).await;
        assert!(refused.is_err(), "{tamper} was allowed");
    }
    let f = w.start(&[]).await;
    assert_eq!(f.invoke(&json!({})).await.response()["status"], "complete");
    let owners: Vec<String> = client
        .query("SELECT owner FROM ip_update_audit ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(owners, ["kept"]);
}
