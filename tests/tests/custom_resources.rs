//! The custom resources, through the Runtime API harness and with their `ResponseURL`
//! pointing at a local server that records what was PUT: the protocol (Create, Update,
//! Delete, malformed requests, a timeout near the deadline, a panic), the migrations against
//! the local Postgres, and the schema guard of the three functions. The migrations run as
//! deployed: cfn-responder is the `ServiceToken` and invokes schema-migrations through a local
//! Lambda Invoke API (common/invoke_api.rs); cfn_responder.rs has the responder's own faults.
//!
//! The sample events are built here, in CloudFormation's documented shape.

#![recursion_limit = "256"]

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, SystemTime},
};

use custom_resource::{Outcome, Responder, UrlPolicy};
use harness::{
    Function, Stack, TestDb,
    fixtures::{signup, unique},
    function_binary,
    recorder::{Recorded, ResponseRecorder},
};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use shared::db::{Db, DbConfig};

#[path = "common/invoke_api.rs"]
mod invoke_api;
#[path = "common/sg.rs"]
mod sg;
use invoke_api::{InvokeApi, Target};

const STACK_ID: &str = "arn:aws:cloudformation:us-east-1:123456789012:stack/db-sync/5b5f0e70-0000-11ef-9c4d-0a1b2c3d4e5f";

/// A custom-resource request as CloudFormation sends it, answering at `key`'s URL.
fn cfn_event(
    recorder: &ResponseRecorder,
    key: &str,
    request_type: &str,
    resource_type: &str,
    physical: Option<&str>,
    properties: Value,
    old: Option<Value>,
) -> Value {
    let mut e = json!({
        "RequestType": request_type,
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:db-sync-custom",
        "ResponseURL": recorder.url(key),
        "StackId": STACK_ID,
        "RequestId": format!("{key}-request"),
        "LogicalResourceId": "Resource",
        "ResourceType": resource_type,
        "ResourceProperties": properties,
    });
    if let Some(p) = physical {
        e["PhysicalResourceId"] = json!(p);
    }
    if let Some(o) = old {
        e["OldResourceProperties"] = o;
    }
    e
}

fn migrations_event(
    recorder: &ResponseRecorder,
    key: &str,
    request_type: &str,
    physical: Option<&str>,
) -> Value {
    let props = json!({"ServiceToken": "arn", "MigrationsVersion": "3"});
    cfn_event(
        recorder,
        key,
        request_type,
        "Custom::SchemaMigrations",
        physical,
        props,
        None,
    )
}

/// The answer recorded at `key`, checked for what every answer must carry.
async fn answer(recorder: &ResponseRecorder, key: &str) -> Value {
    let put: Recorded = recorder
        .wait_for(key, Duration::from_secs(10))
        .await
        .unwrap_or_else(|| panic!("no answer was PUT for {key}"));
    assert_eq!(put.method, "PUT");
    // Signed for an empty content type, as AWS's own modules send it.
    assert_eq!(put.content_type.as_deref(), Some(""));
    assert_eq!(put.content_length, Some(put.body.len()));
    assert!(put.body.len() <= 4096);
    let body = put.json();
    assert_eq!(body["StackId"], STACK_ID, "{body}");
    assert_eq!(body["RequestId"], format!("{key}-request"), "{body}");
    assert_eq!(body["LogicalResourceId"], "Resource", "{body}");
    assert!(
        body["PhysicalResourceId"]
            .as_str()
            .is_some_and(|p| !p.is_empty()),
        "{body}"
    );
    assert_eq!(
        recorder.requests(key).len(),
        1,
        "exactly one answer for {key}"
    );
    eprintln!("answer {key}: {body}");
    body
}

async fn applied_versions(db: &TestDb) -> Vec<i32> {
    db.connect_as_app()
        .await
        .unwrap()
        .query(
            "SELECT version FROM refinery_schema_history ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// The migrations as deployed: the responder CloudFormation invokes, and the migrator it
/// invokes in turn (with a `timeout` function timeout), through a local Invoke API.
struct Migrations {
    responder: Function,
    migrator: Arc<Function>,
    _api: InvokeApi,
}

impl Migrations {
    async fn invoke(&self, event: &Value) -> harness::Invocation {
        self.responder.invoke(event).await
    }
}

async fn migrations_function(db: &TestDb, extra: &[(&str, &str)]) -> Migrations {
    migrations_within(db, extra, Duration::from_secs(30)).await
}

async fn migrations_within(db: &TestDb, extra: &[(&str, &str)], timeout: Duration) -> Migrations {
    let mut env = db.url_env();
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let api = InvokeApi::start().await.unwrap();
    let migrator = Target::binary("schema-migrations", &env, timeout).await;
    api.serve("schema-migrations", migrator.clone());
    let mut env = api.env();
    env.push((
        "TARGET_FUNCTION_ARN".into(),
        InvokeApi::arn("schema-migrations"),
    ));
    // The answers go to the local recorder, a loopback HTTP URL.
    env.push(("CFN_RESPONSE_URL_ALLOW_LOOPBACK".into(), "true".into()));
    let responder = Function::spawn(&function_binary("cfn-responder"), &env)
        .await
        .unwrap();
    Migrations {
        responder,
        migrator: migrator.function().unwrap().clone(),
        _api: api,
    }
}

#[tokio::test]
async fn create_migrates_a_fresh_database_update_is_a_no_op_and_delete_keeps_the_data() {
    let stack = Stack::shared();
    let db = stack.empty_database().await.unwrap();
    let recorder = ResponseRecorder::start().await.unwrap();
    let f = migrations_function(&db, &[]).await;
    let every: Vec<i32> = shared::migrate::embedded()
        .iter()
        .map(|m| m.version())
        .collect();

    let inv = f
        .invoke(&migrations_event(&recorder, "create", "Create", None))
        .await;
    assert_eq!(inv.response()["status"], "SUCCESS", "{:?}", inv.outcome);
    let a = answer(&recorder, "create").await;
    assert_eq!(a["Status"], "SUCCESS", "{a}");
    assert_eq!(a["PhysicalResourceId"], "schema-migrations");
    assert_eq!(a["Data"]["Version"], shared::migrate::latest_version());
    assert_eq!(
        a["Data"]["Applied"].as_str().unwrap().split(',').count(),
        every.len(),
        "{a}"
    );
    assert_eq!(
        applied_versions(&db).await,
        every,
        "a fresh database gets every version"
    );

    // A second run (the next deploy) changes nothing and keeps the physical id.
    let inv = f
        .invoke(&migrations_event(
            &recorder,
            "update",
            "Update",
            Some("schema-migrations"),
        ))
        .await;
    assert_eq!(inv.response()["status"], "SUCCESS");
    let a = answer(&recorder, "update").await;
    assert_eq!(a["Status"], "SUCCESS", "{a}");
    assert_eq!(a["PhysicalResourceId"], "schema-migrations");
    assert_eq!(a["Data"]["Applied"], "", "nothing applied the second time");
    assert_eq!(applied_versions(&db).await, every);

    // Delete leaves the schema and its data.
    let user = db.connect_as_app().await.unwrap();
    user.execute(
        "INSERT INTO users (cognito_user_id, email, handle, display_name) VALUES ('s1', 'a@example.com', 'kept', 'kept')",
        &[],
    )
    .await
    .unwrap();
    f.invoke(&migrations_event(
        &recorder,
        "delete",
        "Delete",
        Some("schema-migrations"),
    ))
    .await;
    let a = answer(&recorder, "delete").await;
    assert_eq!(a["Status"], "SUCCESS", "{a}");
    assert_eq!(a["PhysicalResourceId"], "schema-migrations");
    let n: i64 = user
        .query_one("SELECT count(*) FROM users", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    assert_eq!(applied_versions(&db).await, every);
}

#[tokio::test]
async fn malformed_requests_are_answered_failed_or_reported_and_the_process_lives() {
    let stack = Stack::shared();
    let db = stack.fresh_database().await.unwrap();
    let recorder = ResponseRecorder::start().await.unwrap();
    let f = migrations_function(&db, &[]).await;

    // An unknown request type: answered FAILED, naming it, under a physical id that a
    // rollback's Delete finds nothing behind.
    let mut e = migrations_event(&recorder, "unknown-type", "Create", None);
    e["RequestType"] = json!("Destroy");
    let inv = f.invoke(&e).await;
    assert_eq!(inv.response()["status"], "FAILED");
    let a = answer(&recorder, "unknown-type").await;
    assert_eq!(a["Status"], "FAILED");
    let reason = a["Reason"].as_str().unwrap();
    assert!(
        reason.starts_with("malformed custom-resource request"),
        "{reason}"
    );
    assert!(reason.contains("Destroy"), "{reason}");
    assert_eq!(
        a["PhysicalResourceId"],
        "Resource-not-created-unknown-type-request"
    );

    // An Update without the physical id it must carry.
    f.invoke(&migrations_event(&recorder, "no-physical", "Update", None))
        .await;
    let a = answer(&recorder, "no-physical").await;
    assert_eq!(a["Status"], "FAILED");
    assert!(
        a["Reason"].as_str().unwrap().contains("PhysicalResourceId"),
        "{a}"
    );

    // Properties that are not an object.
    let mut e = migrations_event(&recorder, "bad-properties", "Create", None);
    e["ResourceProperties"] = json!("nope");
    f.invoke(&e).await;
    let a = answer(&recorder, "bad-properties").await;
    assert_eq!(a["Status"], "FAILED");
    assert!(a["Reason"].as_str().unwrap().contains("malformed"), "{a}");

    // No URL to answer at, or not even an object: nothing can be PUT; the invocation fails
    // with the reason (CloudWatch shows it), and the process serves the next one.
    for (name, event) in [
        ("no-url", {
            let mut e = migrations_event(&recorder, "no-url", "Create", None);
            e.as_object_mut().unwrap().remove("ResponseURL");
            e
        }),
        ("a list", json!([1, 2])),
        ("a file URL", {
            let mut e = migrations_event(&recorder, "file-url", "Create", None);
            e["ResponseURL"] = json!("file:///etc/passwd");
            e
        }),
    ] {
        let inv = f.invoke(&event).await;
        let (kind, message) = inv.error();
        assert_eq!(kind, "Permanent.Unanswerable", "{name}: {message}");
        assert!(message.contains("ResponseURL"), "{name}: {message}");
    }
    assert!(recorder.requests("no-url").is_empty());
    f.invoke(&migrations_event(&recorder, "after", "Create", None))
        .await;
    assert_eq!(answer(&recorder, "after").await["Status"], "SUCCESS");
}

#[tokio::test]
async fn a_migration_still_running_near_the_deadline_is_answered_failed_in_time() {
    let stack = Stack::shared();
    let db = stack.fresh_database().await.unwrap();
    let recorder = ResponseRecorder::start().await.unwrap();
    // Long statements allowed, as deployed: only the invocation's deadline stops it.
    // A 9 s function timeout for the migrator: its answer goes 5 s before it.
    let f = migrations_within(
        &db,
        &[("DB_STATEMENT_TIMEOUT_MS", "120000")],
        Duration::from_secs(9),
    )
    .await;
    // Another session holds the history table, so the migration run waits on its lock.
    let mut blocker = db.admin().await.unwrap();
    let tx = blocker.transaction().await.unwrap();
    tx.batch_execute("LOCK TABLE refinery_schema_history IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();

    let inv = f
        .invoke(&migrations_event(&recorder, "deadline", "Create", None))
        .await;
    assert_eq!(inv.response()["status"], "FAILED", "{:?}", inv.outcome);
    let a = answer(&recorder, "deadline").await;
    assert_eq!(a["Status"], "FAILED");
    let reason = a["Reason"].as_str().unwrap();
    assert!(reason.contains("did not finish within"), "{reason}");
    assert!(reason.contains("before the function's timeout"), "{reason}");
    tx.rollback().await.unwrap();
}

/// A database pool for `db`, as a function builds it (plaintext on loopback).
async fn pool_for(db: &TestDb) -> Db {
    let url = db.url();
    let env: HashMap<&str, &str> = HashMap::from([
        ("DATABASE_URL", url.as_str()),
        ("DB_SSLMODE", "disable"),
        ("DB_STATEMENT_TIMEOUT_MS", "60000"),
    ]);
    let config = DbConfig::from_lookup(&env).unwrap();
    Db::from_config(&config, &db.stack.sdk_config().await).unwrap()
}

fn invocation(payload: Value, timeout: Duration) -> LambdaEvent<Value> {
    let mut context = Context::default();
    context.request_id = unique("req");
    context.deadline = (SystemTime::now() + timeout)
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    LambdaEvent::new(payload, context)
}

#[tokio::test]
async fn a_broken_migration_answers_failed_with_the_sql_error_and_applies_nothing_of_itself() {
    let stack = Stack::shared();
    let db = stack.empty_database().await.unwrap();
    let recorder = ResponseRecorder::start().await.unwrap();
    // A migration set of this test's own, shaped like migrations/: one good, one broken.
    let migrations = vec![
        refinery::Migration::unapplied("V1__good", "CREATE TABLE good (id int PRIMARY KEY);")
            .unwrap(),
        refinery::Migration::unapplied(
            "V2__broken",
            "CREATE TABLE half (id int);\nALTER TABLE no_such_table ADD COLUMN x int;",
        )
        .unwrap(),
    ];
    let state = schema_migrations::State {
        db: pool_for(&db).await,
        migrations,
        logins: Vec::new(),
        secrets: aws_sdk_secretsmanager::Client::new(&stack.sdk_config().await),
    };
    let event = migrations_event(&recorder, "broken", "Create", None);
    let answered = schema_migrations::handle(&state, invocation(event, Duration::from_secs(30)))
        .await
        .unwrap();
    // The answer is returned, for cfn-responder to send; the migrator PUTs nothing itself.
    assert_eq!(answered.status.to_string(), "FAILED");
    assert_eq!(
        answered.physical_resource_id,
        "Resource-not-created-broken-request"
    );
    let reason = answered.reason.as_str();
    assert!(reason.contains("V2__broken"), "{reason}");
    assert!(
        reason.contains("relation \"no_such_table\" does not exist"),
        "the SQL error itself: {reason}"
    );
    assert!(recorder.requests("broken").is_empty());
    // The good one is applied; nothing of the broken one is (its transaction rolled back).
    assert_eq!(applied_versions(&db).await, [1]);
    let half: bool = db
        .connect_as_app()
        .await
        .unwrap()
        .query_one("SELECT to_regclass('half') IS NOT NULL", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!half, "the broken migration left a table behind");
}

#[tokio::test]
async fn a_handler_that_panics_or_fails_is_answered_failed_with_the_cause() {
    let recorder = ResponseRecorder::start().await.unwrap();
    let responder = Responder::new(UrlPolicy {
        allow_loopback_http: true,
    })
    .unwrap();
    let deadline = SystemTime::now() + Duration::from_secs(30);

    let e = migrations_event(&recorder, "panic", "Create", None);
    let answered = custom_resource::respond(
        &responder,
        &e,
        deadline,
        async |_| -> Result<Outcome, std::io::Error> { panic!("index out of range") },
    )
    .await
    .unwrap();
    assert_eq!(answered.status.to_string(), "FAILED");
    let a = answer(&recorder, "panic").await;
    assert_eq!(a["Reason"], "the handler panicked: index out of range");
    assert_eq!(
        a["PhysicalResourceId"],
        "Resource-not-created-panic-request"
    );

    // On Update, a failure keeps the physical id CloudFormation sent, so nothing is replaced.
    let e = migrations_event(&recorder, "fail", "Update", Some("kept-id"));
    custom_resource::respond(&responder, &e, deadline, async |_| {
        Err::<Outcome, _>(std::io::Error::other("disk on fire"))
    })
    .await
    .unwrap();
    let a = answer(&recorder, "fail").await;
    assert_eq!(a["Status"], "FAILED");
    assert_eq!(a["Reason"], "disk on fire");
    assert_eq!(a["PhysicalResourceId"], "kept-id");
}

/// Removes the newest row of the migration history: the database is one version behind.
async fn roll_back_one_version(db: &TestDb) -> (i32, String, String) {
    let admin = db.admin().await.unwrap();
    let row = admin
        .query_one(
            "DELETE FROM refinery_schema_history WHERE version = (SELECT max(version) FROM refinery_schema_history) \
             RETURNING version, name, checksum",
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1), row.get(2))
}

#[tokio::test]
async fn a_function_on_a_schema_one_version_behind_fails_each_invocation_clearly_until_migrated() {
    let stack = Stack::shared();
    let db = stack.fresh_database().await.unwrap();
    let (removed, name, checksum) = roll_back_one_version(&db).await;
    let needs = shared::migrate::latest_version();
    assert_eq!(removed, needs);
    let expected = format!(
        "schema at V{}; this build needs V{needs}; the stack's migration step has not run",
        needs - 1
    );

    // post-confirmation: the same clear error on every invocation, and no row written.
    let f = Function::spawn(&function_binary("post-confirmation"), &db.url_env())
        .await
        .unwrap();
    for _ in 0..2 {
        let inv = f.invoke(&signup(&unique("sub"), &unique("h"))).await;
        let (kind, message) = inv.error();
        assert_eq!(kind, "Retryable.SchemaBehind");
        // The answer reaches the person signing up; the log line says what is wrong.
        assert_eq!(
            message,
            "the account could not be saved just now; please try again"
        );
        let line = f.error_line(&inv).await;
        assert!(line.contains(&expected), "{line}");
    }
    let users: i64 = db
        .connect_as_app()
        .await
        .unwrap()
        .query_one("SELECT count(*) FROM users", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(users, 0);

    // sg-ip-update and drift-check answer the same.
    let mut env = db.url_env();
    env.push(("SECURITY_GROUP_ID".into(), "sg-0123456789abcdef0".into()));
    env.push(("SG_IP_UPDATE_SOURCE".into(), "eventbridge".into()));
    env.push(("USER_POOL_ID".into(), "us-east-1_abc".into()));
    let sg = Function::spawn(&function_binary("sg-ip-update"), &env)
        .await
        .unwrap();
    let inv = sg
        .invoke(&json!({"owner": "andrew", "ip": "34.201.17.5"}))
        .await;
    assert_eq!(inv.error(), ("Retryable.SchemaBehind", expected.as_str()));
    let drift = Function::spawn(&function_binary("drift-check"), &env)
        .await
        .unwrap();
    let inv = drift.invoke(&json!({})).await;
    assert_eq!(inv.error(), ("Retryable.SchemaBehind", expected.as_str()));

    // The migration step runs (the row comes back): the same process picks it up.
    db.admin()
        .await
        .unwrap()
        .execute(
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) VALUES ($1, $2, now()::text, $3)",
            &[&removed, &name, &checksum],
        )
        .await
        .unwrap();
    let inv = f.invoke(&signup(&unique("sub"), &unique("h"))).await;
    inv.response();
}

/// What a later build does to `db`: this build's migrations and one more, additive as every
/// migration is (a column and a table). Returns the later migration's name.
async fn a_later_build_migrates(db: &TestDb) -> String {
    let later = shared::migrate::latest_version() + 1;
    let name = format!("V{later}__a_later_build");
    let mut theirs = shared::migrate::embedded();
    theirs.push(
        refinery::Migration::unapplied(
            &name,
            "ALTER TABLE users ADD COLUMN bio text; \
             ALTER TABLE managed_ingress_rules ADD COLUMN note text; \
             CREATE TABLE later_build_things (id bigint PRIMARY KEY);",
        )
        .unwrap(),
    );
    let mut client = db.connect_as_app().await.unwrap();
    let applied = shared::migrate::run_set(&mut client, &theirs)
        .await
        .unwrap();
    assert_eq!(applied, vec![name.clone()]);
    name
}

#[tokio::test]
async fn a_rollback_runs_this_build_on_the_schema_a_later_build_left() {
    let fx = sg::Fixture::shared().await;
    let db = &fx.db;
    let later = a_later_build_migrates(db).await;
    let before = applied_versions(db).await;

    // The migrations resource of the earlier build (this one): nothing to apply, SUCCESS.
    let recorder = ResponseRecorder::start().await.unwrap();
    let f = migrations_function(db, &[]).await;
    for (key, kind) in [("rollback-update", "Update"), ("rollback-create", "Create")] {
        let physical = (kind == "Update").then_some("schema-migrations");
        f.invoke(&migrations_event(&recorder, key, kind, physical))
            .await;
        let a = answer(&recorder, key).await;
        assert_eq!(a["Status"], "SUCCESS", "{a}");
        assert_eq!(a["Data"]["Applied"], "", "{a}");
    }
    assert_eq!(applied_versions(db).await, before, "{later} stays applied");
    let line = f
        .migrator
        .logs_when(
            |l| l.iter().any(|l| l.contains(&later)),
            Duration::from_secs(5),
        )
        .await
        .join("\n");
    assert!(
        line.contains(&later),
        "the later build's migration is named: {line}"
    );

    // Each function of this build on that schema does its job.
    let pc = Function::spawn(&function_binary("post-confirmation"), &db.url_env())
        .await
        .unwrap();
    let sub = unique("sub");
    pc.invoke(&signup(&sub, &unique("h"))).await.response();
    let rows: i64 = db
        .connect_as_app()
        .await
        .unwrap()
        .query_one(
            "SELECT count(*) FROM users WHERE cognito_user_id = $1",
            &[&sub],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 1);

    let rule_id = fx.open("34.201.17.5/32").await;
    fx.add_owner("andrew", Some("34.201.17.5/32"), Some(&rule_id), false)
        .await;
    let inv = fx
        .start()
        .await
        .invoke(&sg::change("andrew", "52.14.99.8"))
        .await;
    assert_eq!(inv.response()["outcome"], "applied");

    let cognito = aws_sdk_cognitoidentityprovider::Client::new(&fx.moto.sdk_config().await);
    let pool = harness::aws::create_pool(&cognito).await;
    let env = harness::fixtures::function_env(db, &fx.moto, &[("USER_POOL_ID", &pool)]);
    let drift = Function::spawn(&function_binary("drift-check"), &env)
        .await
        .unwrap();
    assert_eq!(
        drift.invoke(&json!({})).await.response()["status"],
        "complete"
    );
}

#[tokio::test]
async fn a_history_that_diverges_from_this_builds_is_still_refused() {
    let stack = Stack::shared();
    let recorder = ResponseRecorder::start().await.unwrap();
    let newest = shared::migrate::latest_version();
    for (case, sql, says) in [
        (
            "other-name",
            format!(
                "UPDATE refinery_schema_history SET name = 'someone_elses' WHERE version = {newest}"
            ),
            "the histories diverge",
        ),
        (
            "skipped",
            format!(
                "DELETE FROM refinery_schema_history WHERE version = {}",
                newest - 1
            ),
            "was never applied",
        ),
        (
            "unknown-older",
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) \
             VALUES (0, 'a_branch', now()::text, '1')"
                .to_owned(),
            "does not have",
        ),
    ] {
        let db = stack.fresh_database().await.unwrap();
        let before = {
            db.admin().await.unwrap().batch_execute(&sql).await.unwrap();
            applied_versions(&db).await
        };
        let f = migrations_function(&db, &[]).await;
        f.invoke(&migrations_event(&recorder, case, "Create", None))
            .await;
        let a = answer(&recorder, case).await;
        assert_eq!(a["Status"], "FAILED", "{case}: {a}");
        let reason = a["Reason"].as_str().unwrap();
        assert!(reason.contains(says), "{case}: {reason}");
        assert_eq!(
            applied_versions(&db).await,
            before,
            "{case}: nothing applied"
        );
    }
}
