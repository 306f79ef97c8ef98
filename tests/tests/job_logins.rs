//! The jobs' own logins, made by the migrations out of the box: schema-migrations, as the
//! schema owner, turns each secret the stack created (a user name and a generated password)
//! into a login that is a member of its job's group role and nothing else, and writes the
//! database's address into the secret; each function then logs in with its own secret. The
//! real binary, moto's Secrets Manager and the local Postgres.

#![recursion_limit = "256"]

use harness::{
    Function, Stack, TestDb, fixtures::unique, function_binary, recorder::ResponseRecorder,
};
use serde_json::{Value, json};
use shared::db::{Db, DbConfig};

const STACK_ID: &str = "arn:aws:cloudformation:us-east-1:123456789012:stack/db-sync/5b5f0e70-0000-11ef-9c4d-0a1b2c3d4e5f";
/// Each group role, and a read its job makes.
const GROUPS: [(&str, &str); 5] = [
    ("db_sync_post_confirmation", "SELECT count(*) FROM users"),
    ("db_sync_sign_in_guard", "SELECT count(handle) FROM users"),
    ("db_sync_pre_sign_up", "SELECT count(handle) FROM users"),
    (
        "db_sync_sg_ip_update",
        "SELECT count(*) FROM managed_ingress_rules",
    ),
    ("db_sync_drift_check", "SELECT count(*) FROM drift_settings"),
];

fn request(recorder: &ResponseRecorder, key: &str, kind: &str) -> Value {
    json!({
        "RequestType": kind,
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:db-sync-migrations",
        "ResponseURL": recorder.url(key),
        "StackId": STACK_ID,
        "RequestId": format!("{key}-request"),
        "LogicalResourceId": "SchemaMigrations",
        "PhysicalResourceId": "schema-migrations",
        "ResourceType": "Custom::SchemaMigrations",
        "ResourceProperties": {"ServiceToken": "arn", "MigrationsVersion": "1"},
    })
}

/// A login secret as the template's `GenerateSecretString` makes it: a user name and a
/// password, no address.
async fn login_secret(sm: &aws_sdk_secretsmanager::Client, user: &str) -> (String, String) {
    let password = format!("Pw{}", uuid::Uuid::new_v4().simple());
    harness::forbid(&password);
    let arn =
        harness::aws::create_secret(sm, &json!({"username": user, "password": password})).await;
    (arn, password)
}

async fn secret(sm: &aws_sdk_secretsmanager::Client, arn: &str) -> (Value, usize) {
    let value = sm.get_secret_value().secret_id(arn).send().await.unwrap();
    let versions = sm
        .list_secret_version_ids()
        .secret_id(arn)
        .send()
        .await
        .unwrap();
    (
        serde_json::from_str(value.secret_string().unwrap()).unwrap(),
        versions.versions().len(),
    )
}

async fn migrate(db: &TestDb, logins: &str, key: &str, kind: &str) -> Value {
    let recorder = ResponseRecorder::start().await.unwrap();
    let mut env = db.url_env();
    env.push(("DB_JOB_LOGINS".into(), logins.into()));
    let f = Function::spawn(&function_binary("schema-migrations"), &env)
        .await
        .unwrap();
    // The migrator returns its answer for cfn-responder to send (in CloudFormation's field
    // names here) and PUTs nothing itself.
    let inv = f.invoke(&request(&recorder, key, kind)).await;
    let r = inv.response();
    let answer = json!({"Status": r["status"], "Reason": r["reason"],
        "PhysicalResourceId": r["physicalResourceId"], "Data": r["data"]});
    assert!(
        recorder.requests(key).is_empty(),
        "the migrator PUT an answer"
    );
    let logs = f.logs().join("\n");
    harness::leaks::assert_no_leak("schema-migrations' logs", &logs);
    harness::leaks::assert_no_leak("the answer", &answer.to_string());
    f.stop().await;
    answer
}

/// A function's pool as the template configures it: only its own secret, verify-full TLS.
async fn pool_from_secret(db: &TestDb, arn: &str) -> Db {
    let ca = db.stack.ca_bundle.display().to_string();
    let env = std::collections::HashMap::from([
        ("DB_SECRET_ARN", arn),
        ("DB_SSLMODE", "verify-full"),
        ("DB_CA_BUNDLE", ca.as_str()),
    ]);
    Db::from_config(
        &DbConfig::from_lookup(&env).unwrap(),
        &db.stack.sdk_config().await,
    )
    .unwrap()
}

#[tokio::test]
async fn each_job_logs_in_as_its_own_login_made_by_the_migrations_and_nothing_more() {
    let stack = Stack::shared();
    let db = stack.empty_database().await.unwrap();
    let sm = aws_sdk_secretsmanager::Client::new(&stack.sdk_config().await);
    let suffix = unique("s").replace('-', "_").to_lowercase();
    let mut logins = Vec::new();
    for (group, read) in GROUPS {
        let user = format!("{group}_{suffix}");
        let (arn, _) = login_secret(&sm, &user).await;
        logins.push((group, user, arn, read));
    }
    let list: Vec<String> = logins
        .iter()
        .map(|(g, _, a, _)| format!("{g}={a}"))
        .collect();
    let list = list.join(",");

    let created = migrate(&db, &list, "create", "Create").await;
    assert_eq!(created["Status"], "SUCCESS", "{created}");
    let made = created["Data"]["Logins"].as_str().unwrap();
    for (_, user, _, _) in &logins {
        assert!(made.split(',').any(|m| m == user), "{user} in {made}");
    }

    let app = db.connect_as_app().await.unwrap();
    for (group, user, arn, read) in &logins {
        // The secret now says where the database is, as an RDS secret does.
        let (value, versions) = secret(&sm, arn).await;
        assert_eq!(value["host"], "127.0.0.1", "{value:?}");
        assert_eq!(value["port"], stack.pg_port, "{group}");
        assert_eq!(value["dbname"], db.name.as_str(), "{group}");
        assert_eq!(versions, 2, "{group}: generated, then completed once");

        // Its login is a member of its own group and of nothing else, with no other power.
        let row = app
            .query_one(
                "SELECT r.rolcanlogin, r.rolsuper OR r.rolcreaterole OR r.rolcreatedb OR r.rolbypassrls, \
                        array(SELECT g.rolname::text FROM pg_auth_members m \
                              JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid) \
                 FROM pg_roles r WHERE r.rolname = $1",
                &[user],
            )
            .await
            .unwrap();
        assert!(row.get::<_, bool>(0), "{user} can log in");
        assert!(
            !row.get::<_, bool>(1),
            "{user} has no power beyond logging in"
        );
        assert_eq!(
            row.get::<_, Vec<String>>(2),
            vec![group.to_string()],
            "{user}"
        );

        // The function's pool, built from that secret alone, logs in as that login.
        let pool = pool_from_secret(&db, arn).await;
        let client = pool.client().await.unwrap();
        let me: String = client
            .query_one("SELECT current_user::text", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(&me, user);
        // Its job's read works; the owner's work does not.
        client.query_one(*read, &[]).await.unwrap();
        let alter = client
            .batch_execute("ALTER TABLE users ADD COLUMN x int")
            .await;
        assert!(alter.is_err(), "{user} may not alter the schema");
    }

    // An Update makes nothing new: the logins are there, the secrets hold the address.
    let updated = migrate(&db, &list, "update", "Update").await;
    assert_eq!(updated["Status"], "SUCCESS", "{updated}");
    for (group, _, arn, _) in &logins {
        assert_eq!(secret(&sm, arn).await.1, 2, "{group}: not written again");
        // The password set again is still the secret's.
        let client = pool_from_secret(&db, arn).await.client().await.unwrap();
        client.query_one("SELECT 1", &[]).await.unwrap();
    }
}

#[tokio::test]
async fn a_login_secret_naming_the_owner_or_a_powerful_role_changes_no_password() {
    let stack = Stack::shared();
    let db = stack.empty_database().await.unwrap();
    let sm = aws_sdk_secretsmanager::Client::new(&stack.sdk_config().await);

    // The schema owner's own name: outside the job's names, refused before any SQL.
    let (owner, _) = login_secret(&sm, "app").await;
    let answer = migrate(
        &db,
        &format!("db_sync_drift_check={owner}"),
        "owner",
        "Create",
    )
    .await;
    assert_eq!(answer["Status"], "FAILED", "{answer}");
    let reason = answer["Reason"].as_str().unwrap();
    assert!(reason.contains("db_sync_drift_check_"), "{reason}");
    db.connect_as_app()
        .await
        .expect("the owner's password is unchanged");

    // A role of the job's name that already holds CREATEROLE: never given a new password.
    let powerful = format!(
        "db_sync_drift_check_{}",
        unique("p").replace('-', "_").to_lowercase()
    );
    db.admin()
        .await
        .unwrap()
        .batch_execute(&format!(
            "CREATE ROLE {powerful} LOGIN CREATEROLE PASSWORD 'kept-as-it-was'"
        ))
        .await
        .unwrap();
    let (arn, _) = login_secret(&sm, &powerful).await;
    let answer = migrate(
        &db,
        &format!("db_sync_drift_check={arn}"),
        "powerful",
        "Create",
    )
    .await;
    assert_eq!(answer["Status"], "FAILED", "{answer}");
    let reason = answer["Reason"].as_str().unwrap();
    assert!(reason.contains("more than the right to log in"), "{reason}");
    let (value, versions) = secret(&sm, &arn).await;
    assert_eq!(versions, 1, "the secret was not completed: {value:?}");
    let url = format!(
        "postgres://{powerful}:kept-as-it-was@127.0.0.1:{}/{}",
        stack.pg_port, db.name
    );
    let (_c, conn) = url
        .parse::<tokio_postgres::Config>()
        .unwrap()
        .connect(tokio_postgres::NoTls)
        .await
        .expect("its password is the one it had");
    drop(conn);
}
