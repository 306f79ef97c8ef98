//! The functions under AWS's Runtime Interface Emulator (`aws-lambda-rie`, from the SAM CLI
//! package), without Docker: a happy path and an error path each, with the rows and the
//! security group checked, so the binaries are proven against AWS's implementation of the
//! Runtime API and not only our own harness (`harness::runtime_api`).
//!
//! Where the two drivers differ, the test says so: the emulator answers a function error
//! with status 200 and no `X-Amz-Function-Error` header (Lambda's Invoke API sets it), so
//! only the body tells an error from a response.

use harness::{
    Stack, TestDb, aws, event,
    fixtures::{RuleRow, add_managed_rule, function_env, signup, unique},
    function_binary,
    rie::{Answer, Rie},
};
use serde_json::json;

async fn start(function: &str, db: &TestDb, vars: &[(&str, &str)]) -> Rie {
    let env = function_env(db, Stack::shared(), vars);
    Rie::spawn(&function_binary(function), &env)
        .await
        .unwrap_or_else(|e| panic!("{function} under aws-lambda-rie: {e:#}"))
}

async fn count(db: &TestDb, sql: &str, param: &str) -> i64 {
    db.connect_as_app()
        .await
        .unwrap()
        .query_one(sql, &[&param])
        .await
        .unwrap()
        .get(0)
}

/// A function error as the emulator answers it: 200, Lambda's error body, no error header.
fn assert_error(answer: &Answer, error_type: &str) {
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.header("x-amz-function-error"), None, "{answer:?}");
    let (t, m) = answer
        .error()
        .unwrap_or_else(|| panic!("not an error: {answer:?}"));
    assert_eq!(t, error_type, "{m}");
}

#[tokio::test]
async fn post_confirmation_stores_the_user_and_returns_the_event() {
    let db = Stack::shared().fresh_database().await.unwrap();
    let f = start("post-confirmation", &db, &[]).await;
    let sub = uuid::Uuid::new_v4().to_string();
    let ev = signup(&sub, &unique("rie"));

    let answer = f.invoke(&ev).await.unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, ev, "Cognito's event, unchanged");
    // Again, as a Cognito retry: still one row, still the event.
    assert_eq!(f.invoke(&ev).await.unwrap().body, ev);
    let sql = "SELECT count(*) FROM users WHERE cognito_user_id = $1";
    assert_eq!(count(&db, sql, &sub).await, 1);
}

#[tokio::test]
async fn post_confirmation_refuses_an_event_without_email_and_writes_nothing() {
    let db = Stack::shared().fresh_database().await.unwrap();
    let f = start("post-confirmation", &db, &[]).await;
    let sub = uuid::Uuid::new_v4().to_string();
    let mut ev = signup(&sub, &unique("rie"));
    ev["request"]["userAttributes"]
        .as_object_mut()
        .unwrap()
        .remove("email");

    let answer = f.invoke(&ev).await.unwrap();
    assert_error(&answer, "Permanent.MissingAttribute");
    let sql = "SELECT count(*) FROM users WHERE cognito_user_id = $1";
    assert_eq!(count(&db, sql, &sub).await, 0);
    // The environment lives on and serves the next event.
    let ok = signup(&sub, &unique("rie"));
    assert_eq!(f.invoke(&ok).await.unwrap().body, ok);
}

struct Group {
    db: TestDb,
    ec2: aws_sdk_ec2::Client,
    id: String,
}

/// The bus function's settings for the group `id`: bus events and bare direct invocations.
fn bus_function(id: &str) -> [(&str, &str); 2] {
    [
        ("SECURITY_GROUP_ID", id),
        ("SG_IP_UPDATE_SOURCE", "eventbridge"),
    ]
}

/// A fresh database and security group, with andrew's row (movable by bus events).
async fn andrews_group() -> Group {
    let stack = Stack::shared();
    let db = stack.fresh_database().await.unwrap();
    let ec2 = aws_sdk_ec2::Client::new(&stack.sdk_config().await);
    let id = aws::create_group(&ec2).await;
    let row = RuleRow {
        owner: "andrew",
        allow_unverified: true,
        ..RuleRow::default()
    };
    add_managed_rule(&db, &id, row).await;
    Group { db, ec2, id }
}

impl Group {
    async fn andrew(&self) -> (Option<String>, String) {
        let row = self
            .db
            .connect_as_app()
            .await
            .unwrap()
            .query_one(
                "SELECT cidr::text, status FROM managed_ingress_rules WHERE owner = 'andrew'",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    }

    async fn cidrs(&self) -> Vec<String> {
        aws::ingress(&self.ec2, &self.id)
            .await
            .into_iter()
            .map(|(_, cidr, _, _)| cidr)
            .collect()
    }
}

#[tokio::test]
async fn sg_ip_update_moves_andrews_rule_for_the_sample_bus_event() {
    let g = andrews_group().await;
    let f = start("sg-ip-update", &g.db, &bus_function(&g.id)).await;

    let answer = f.invoke(&event("sg-ip-update.json")).await.unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.error(), None, "{answer:?}");
    assert_eq!(answer.body["cidr"], "34.201.17.5/32", "{answer:?}");
    assert_eq!(g.cidrs().await, ["34.201.17.5/32"]);
    assert_eq!(
        g.andrew().await,
        (Some("34.201.17.5/32".into()), "applied".into())
    );
}

#[tokio::test]
async fn sg_ip_update_refuses_an_unknown_owner_and_changes_nothing() {
    let g = andrews_group().await;
    let f = start("sg-ip-update", &g.db, &bus_function(&g.id)).await;
    let before = g.andrew().await;

    let answer = f
        .invoke(&json!({"owner": "mallory", "ip": "52.14.99.8"}))
        .await
        .unwrap();
    assert_error(&answer, "Permanent.Unauthorized");
    assert_eq!(g.cidrs().await, Vec::<String>::new());
    assert_eq!(g.andrew().await, before);
}

/// A managed group where 0.0.0.0/0 was opened by hand, and a user pool.
async fn drifted() -> (Group, String) {
    let g = andrews_group().await;
    aws::open_port(&g.ec2, &g.id, "0.0.0.0/0", 5432).await;
    let cognito = aws_sdk_cognitoidentityprovider::Client::new(&Stack::shared().sdk_config().await);
    let pool = aws::create_pool(&cognito).await;
    (g, pool)
}

#[tokio::test]
async fn drift_check_reports_the_open_world_for_the_scheduler_input() {
    let (g, pool) = drifted().await;
    let f = start("drift-check", &g.db, &[("USER_POOL_ID", &pool)]).await;

    let answer = f
        .invoke(&event("drift-check-schedule-v2.json"))
        .await
        .unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.error(), None, "{answer:?}");
    assert_eq!(answer.body["status"], "complete", "{answer:?}");
    assert_eq!(answer.body["counts"]["unexpected"], 1, "{answer:?}");
    let sql = "SELECT count(*) FROM drift_runs WHERE status = 'complete' AND mode = $1";
    assert_eq!(count(&g.db, sql, "report").await, 1);
    // Report mode: the rule is still there.
    assert_eq!(g.cidrs().await, ["0.0.0.0/0"]);
}

#[tokio::test]
async fn drift_check_refuses_a_bad_mode_and_records_no_run() {
    let (g, pool) = drifted().await;
    let f = start("drift-check", &g.db, &[("USER_POOL_ID", &pool)]).await;

    let answer = f.invoke(&json!({"mode": "sideways"})).await.unwrap();
    assert_error(&answer, "Permanent.BadRequest");
    let sql = "SELECT count(*) FROM drift_runs WHERE $1 <> ''";
    assert_eq!(count(&g.db, sql, "any").await, 0);
    assert_eq!(g.cidrs().await, ["0.0.0.0/0"]);
}
