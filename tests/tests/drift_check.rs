//! drift-check end to end: the real binary through the Lambda Runtime API, real Postgres, EC2
//! and Cognito served by moto.

use std::{collections::HashMap, time::Duration};

use aws_sdk_cognitoidentityprovider::types::AttributeType;
use harness::{
    Function, Invocation, Outcome, Stack, TestDb, aws, event,
    fixtures::{RuleRow, add_managed_rule, function_env},
    function_binary,
};
use serde_json::{Value, json};

struct World {
    db: TestDb,
    ec2: aws_sdk_ec2::Client,
    cognito: aws_sdk_cognitoidentityprovider::Client,
    pool: String,
    moto: Stack,
}

impl World {
    async fn new(db: TestDb) -> World {
        let moto = Stack::shared().clone();
        let sdk = moto.sdk_config().await;
        let cognito = aws_sdk_cognitoidentityprovider::Client::new(&sdk);
        let pool = aws::create_pool(&cognito).await;
        World {
            db,
            ec2: aws_sdk_ec2::Client::new(&sdk),
            cognito,
            pool,
            moto,
        }
    }

    async fn shared() -> World {
        World::new(Stack::shared().fresh_database().await.unwrap()).await
    }

    fn env(&self, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut vars = vec![("USER_POOL_ID", self.pool.as_str())];
        vars.extend_from_slice(extra);
        function_env(&self.db, &self.moto, &vars)
    }

    async fn start(&self, extra: &[(&str, &str)]) -> Function {
        Function::spawn(&function_binary("drift-check"), &self.env(extra))
            .await
            .unwrap()
    }

    async fn group(&self) -> String {
        aws::create_group(&self.ec2).await
    }

    async fn open(&self, group: &str, cidr: &str, port: i32) -> String {
        aws::open_port(&self.ec2, group, cidr, port).await
    }

    async fn manage(&self, group: &str, owner: &str, cidr: &str, rule_id: Option<&str>) {
        let row = RuleRow {
            owner,
            cidr: Some(cidr),
            aws_rule_id: rule_id,
            ..RuleRow::default()
        };
        add_managed_rule(&self.db, group, row).await;
    }

    async fn ingress(&self, group: &str) -> Vec<(String, i32)> {
        let rules = aws::ingress(&self.ec2, group).await;
        let mut by_source: Vec<_> = rules
            .into_iter()
            .map(|(_, cidr, port, _)| (cidr, port))
            .collect();
        by_source.sort();
        by_source
    }

    /// A user in the pool with a verified email; confirmed unless `confirmed` is false.
    /// Returns its sub.
    async fn user(&self, username: &str, confirmed: bool) -> String {
        self.user_with(username, confirmed, &[("email_verified", "true")])
            .await
    }

    /// [`World::user`] with `attributes` besides its email and name.
    async fn user_with(
        &self,
        username: &str,
        confirmed: bool,
        attributes: &[(&str, &str)],
    ) -> String {
        let attr = |n: &str, v: &str| AttributeType::builder().name(n).value(v).build().unwrap();
        let mut create = self
            .cognito
            .admin_create_user()
            .user_pool_id(&self.pool)
            .username(username)
            .user_attributes(attr("name", &format!("{username} name")));
        if !attributes.iter().any(|(name, _)| *name == "email") {
            create = create.user_attributes(attr("email", &format!("{username}@example.com")));
        }
        for (name, value) in attributes {
            create = create.user_attributes(attr(name, value));
        }
        create
            .message_action(aws_sdk_cognitoidentityprovider::types::MessageActionType::Suppress)
            .send()
            .await
            .unwrap();
        if confirmed {
            self.cognito
                .admin_set_user_password()
                .user_pool_id(&self.pool)
                .username(username)
                .password("Correct-Horse-9")
                .permanent(true)
                .send()
                .await
                .unwrap();
        }
        let user = self
            .cognito
            .admin_get_user()
            .user_pool_id(&self.pool)
            .username(username)
            .send()
            .await
            .unwrap();
        user.user_attributes()
            .iter()
            .find(|a| a.name() == "sub")
            .and_then(|a| a.value())
            .unwrap()
            .to_owned()
    }

    /// The row the trigger wrote for the user `handle` made by [`World::user`]: the same
    /// name, email and handle, so that only what a test changes differs.
    async fn add_row(&self, sub: &str, handle: &str) {
        self.db
            .connect_as_app()
            .await
            .unwrap()
            .execute(
                "INSERT INTO users (cognito_user_id, email, display_name, handle, created_at) \
                 VALUES ($1, $2, $3, $4, now() - interval '1 hour')",
                &[
                    &sub,
                    &format!("{handle}@example.com"),
                    &format!("{handle} name"),
                    &handle,
                ],
            )
            .await
            .unwrap();
    }

    async fn user_rows(&self) -> Vec<(String, String, String)> {
        self.db
            .connect_as_app()
            .await
            .unwrap()
            .query(
                "SELECT cognito_user_id, handle, display_name FROM users ORDER BY handle",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect()
    }

    async fn sql(&self, statement: &str) {
        self.db
            .connect_as_app()
            .await
            .unwrap()
            .batch_execute(statement)
            .await
            .unwrap();
    }
}

/// Every line drift-check printed up to its closing line for `inv` (its EMF metric lines come
/// just before that line, and may reach the harness just after the answer).
async fn logs_through(f: &Function, inv: &Invocation) -> Vec<String> {
    f.logs_when(
        |logs| {
            logs.iter()
                .any(|l| l.contains(&inv.request_id) && l.contains("\"message\":\"drift-check\""))
        },
        Duration::from_secs(5),
    )
    .await
}

fn counts(summary: &Value) -> [u64; 5] {
    let c = &summary["counts"];
    [
        "missing",
        "changed",
        "unexpected",
        "missing_user",
        "orphan_user",
    ]
    .map(|k| c[k].as_u64().unwrap())
}

/// Drift of every kind: a managed rule deleted in AWS, one moved, 0.0.0.0/0 opened by hand,
/// a confirmed user with no row, an unconfirmed one (ignored), and a row with no user.
async fn drifted_world() -> (World, String, String) {
    let w = World::shared().await;
    let group = w.group().await;
    let kept = w.open(&group, "34.201.17.5/32", 5432).await;
    w.manage(&group, "kept", "34.201.17.5/32", Some(&kept))
        .await;
    let deleted = w.open(&group, "52.14.99.8/32", 5432).await;
    w.manage(&group, "gone", "52.14.99.8/32", Some(&deleted))
        .await;
    w.ec2
        .revoke_security_group_ingress()
        .group_id(&group)
        .security_group_rule_ids(&deleted)
        .send()
        .await
        .unwrap();
    let moved = w.open(&group, "18.204.3.77/32", 5432).await;
    w.manage(&group, "moved", "18.204.3.99/32", Some(&moved))
        .await;
    w.open(&group, "0.0.0.0/0", 5432).await;

    let with_row = w.user("alice", true).await;
    w.add_row(&with_row, "alice").await;
    let lost = w.user("bob", true).await;
    w.user("carol", false).await;
    w.add_row("0b5e7a51-dead-4bee-8a0a-000000000000", "ghost")
        .await;
    (w, group, lost)
}

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
        .filter(|v| v.get("_aws").is_some())
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
    let emf: Vec<&Value> = lines.iter().filter(|v| v.get("_aws").is_some()).collect();
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
    signup["request"]["userAttributes"] =
        json!({"sub": sub, "email": "dora@example.com", "name": "dora name"});
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

/// The kill switch fails closed: with its settings row gone, a remediate run only reports.
#[tokio::test]
async fn without_its_row_the_kill_switch_fails_closed() {
    remediate_after("DELETE FROM drift_settings").await;
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

    // Report mode reports it and changes nothing.
    let report = w.start(&[("SECURITY_GROUP_IDS", &group)]).await;
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

    let env = function_env(&w.db, &w.moto, &[("SECURITY_GROUP_ID", &group)]);
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
