//! The shared crate against the real stack: secrets from moto and their caching, password
//! rotation, TLS modes, config errors, migrations, and no secret ever in the output (the
//! harness checks every invocation; the TLS errors are checked here).

use std::{path::PathBuf, time::Duration};

use harness::{
    Function, Outcome, Stack, TestDb,
    fixtures::{secret_env, unique},
    forbid,
    front::Front,
    function_binary,
    leaks::assert_no_leak,
    stack::repo_root,
};
use serde_json::json;
use shared::{
    db::{CredentialSource, Db, DbConfig, DbError},
    tls::SslMode,
};

/// A sign-up whose handle is its sub.
fn signup(sub: &str) -> serde_json::Value {
    harness::fixtures::signup(sub, sub)
}

async fn create_secret(stack: &Stack, value: &serde_json::Value) -> String {
    let sm = aws_sdk_secretsmanager::Client::new(&stack.sdk_config().await);
    harness::aws::create_secret(&sm, value).await
}

/// Debug logging: the level at which a secret would most likely slip into a log line.
const DEBUG: &[(&str, &str)] = &[("AWS_LAMBDA_LOG_LEVEL", "debug")];

#[tokio::test]
async fn the_secret_is_fetched_once_per_cold_start() {
    // moto of its own, so its request recorder sees only this test's calls.
    let moto = Stack::private("moto").unwrap();
    let db = Stack::shared().fresh_database().await.unwrap();
    let password = db.stack.app_password.clone();
    forbid(&password);
    let arn = create_secret(&moto, &db.rds_secret(&password)).await;
    let env = secret_env(&db, &moto, &arn, DEBUG);

    moto.start_recording();
    for environment in 0..2 {
        let f = Function::spawn(&function_binary("post-confirmation"), &env)
            .await
            .unwrap();
        for i in 0..5 {
            f.invoke(&signup(&format!("cold{environment}-{i}")))
                .await
                .response();
        }
        f.stop().await;
    }
    let fetches = moto
        .recorded_actions()
        .iter()
        .filter(|a| *a == "GetSecretValue")
        .count();
    assert_eq!(
        fetches, 2,
        "one GetSecretValue per cold start, two cold starts, ten invocations"
    );
}

/// With `DB_HOST` set beside an RDS-managed secret (which names no host), the TCP connection
/// to the database opens while the secret is still on its way, and the login then uses it:
/// Postgres (behind a front that records accepts) takes the connection before moto (behind a
/// front that holds each request 1 s) can have answered, and it is the only one.
#[tokio::test]
async fn with_db_host_set_the_connection_opens_while_the_secret_is_fetched() {
    let stack = Stack::shared();
    let db = stack.fresh_database().await.unwrap();
    let rds_managed = json!({"username": "app", "password": db.stack.app_password});
    let arn = create_secret(stack, &rds_managed).await;
    let moto_port = stack.moto_port();
    let hold = Duration::from_secs(1);
    let slow_moto = Front::start_delayed(moto_port, hold).await;
    let database = Front::start(db.stack.pg_port).await;
    let (db_port, endpoint) = (
        database.port.to_string(),
        format!("http://127.0.0.1:{}", slow_moto.port),
    );
    let mut env = secret_env(
        &db,
        stack,
        &arn,
        &[
            ("DB_HOST", "127.0.0.1"),
            ("DB_PORT", &db_port),
            ("DB_NAME", &db.name),
            // Room for the held secret and a login on a busy machine.
            ("DB_CONNECT_TIMEOUT_MS", "4000"),
            ("SECRET_FETCH_TIMEOUT_MS", "4000"),
        ],
    );
    env.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
    env.push(("AWS_ENDPOINT_URL".into(), endpoint));
    let f = Function::spawn(&function_binary("post-confirmation"), &env)
        .await
        .unwrap();
    f.invoke(&signup("early")).await.response();
    f.stop().await;

    let asked = slow_moto.accept_times()[0];
    let connected = database.accept_times();
    assert_eq!(
        connected.len(),
        1,
        "the early connection is the one logged in"
    );
    assert!(
        connected[0] < asked + hold,
        "Postgres accepted {:?} after the secret was asked for; its answer was held {hold:?}",
        connected[0].duration_since(asked)
    );
}

#[tokio::test]
async fn a_rotated_password_costs_no_failed_invocation() {
    let stack = Stack::shared();
    let db = stack.fresh_database().await.unwrap();
    let role = format!("r_{}", uuid::Uuid::new_v4().simple());
    let (old, new) = (unique("old-pw"), unique("new-pw"));
    forbid(&old);
    forbid(&new);
    let admin = db.admin().await.unwrap();
    db.create_role(&role, &old).await.unwrap();
    let mut secret = db.rds_secret(&old);
    secret["username"] = json!(role);
    let arn = create_secret(stack, &secret).await;
    let f = Function::spawn(
        &function_binary("post-confirmation"),
        &secret_env(&db, stack, &arn, DEBUG),
    )
    .await
    .unwrap();
    f.invoke(&signup("before-rotation")).await.response();

    // Rotate as Secrets Manager's rotation function does: new password in the database and
    // in the secret. Then cut the pooled connection, as an idle timeout or failover would, so
    // the next invocation must log in again.
    admin
        .batch_execute(&format!("ALTER ROLE {role} PASSWORD '{new}'"))
        .await
        .unwrap();
    secret["password"] = json!(new);
    let sm = aws_sdk_secretsmanager::Client::new(&stack.sdk_config().await);
    sm.put_secret_value()
        .secret_id(&arn)
        .secret_string(secret.to_string())
        .send()
        .await
        .unwrap();
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
            &[&role],
        )
        .await
        .unwrap();

    for i in 0..3 {
        let inv = f.invoke(&signup(&format!("after-rotation-{i}"))).await;
        assert!(
            matches!(inv.outcome, Outcome::Response(_)),
            "{:?}",
            inv.outcome
        );
    }
    let logs = f.logs();
    assert_eq!(
        logs.iter()
            .filter(|l| l.contains("fetched database secret"))
            .count(),
        2,
        "{logs:#?}"
    );
    assert!(
        logs.iter()
            .any(|l| l.contains("rejected the cached credentials"))
    );
}

#[tokio::test]
async fn secret_problems_are_clear_errors_without_the_value() {
    let stack = Stack::shared();
    let db = stack.fresh_database().await.unwrap();
    let missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:does-not-exist-AbCdEf";
    forbid("leaky-value-123");
    let malformed = create_secret(
        stack,
        &json!({"username": "app", "pass": "leaky-value-123"}),
    )
    .await;
    for (arn, mentions) in [
        (missing, "ResourceNotFoundException"),
        (malformed.as_str(), "missing field `password`"),
    ] {
        let f = Function::spawn(
            &function_binary("post-confirmation"),
            &secret_env(&db, stack, arn, DEBUG),
        )
        .await
        .unwrap();
        let inv = f.invoke(&signup("x")).await;
        let (t, m) = inv.error();
        assert_eq!(t, "Permanent.SecretUnavailable", "{m}");
        // The answer goes to the app signing the person up; the log line has the cause.
        assert!(!m.contains(arn) && !m.contains(mentions), "{m}");
        let line = f.error_line(&inv).await;
        assert!(line.contains(mentions), "{line}");
        assert!(
            line.len() < 1000 && !line.contains("headers"),
            "one readable line: {line}"
        );
    }
}

#[tokio::test]
async fn bad_configuration_stops_the_cold_start_with_the_variable_named() {
    let db = Stack::shared().fresh_database().await.unwrap();
    forbid(&db.stack.app_password);
    // (verify-full without DB_CA_BUNDLE is no longer one: it trusts the compiled-in CAs, see
    // without_a_bundle_verify_full_trusts_only_the_compiled_in_cas.)
    let cases: [(Vec<(String, String)>, &str); 2] = [
        (vec![], "DB_SECRET_ARN or DATABASE_URL must be set"),
        (
            vec![
                ("DATABASE_URL".into(), db.url()),
                ("DB_SSLMODE".into(), "prefer".into()),
            ],
            "DB_SSLMODE is invalid",
        ),
    ];
    for (env, expected) in cases {
        let f = Function::spawn(&function_binary("post-confirmation"), &env)
            .await
            .unwrap();
        let inv = f.invoke(&signup("x")).await;
        match &inv.outcome {
            Outcome::Exited(detail) => assert!(detail.contains(expected), "{detail}"),
            other => panic!("expected the process to stop at init, got {other:?}"),
        }
    }
}

/// The trust the functions need, and the host a secret may lack: a missing, empty or non-PEM
/// CA bundle, and an RDS-managed secret (user name and password only) without `DB_HOST` or
/// without `DB_NAME`, each stop the cold start with one error naming the setting, never a
/// silent fallback.
#[tokio::test]
async fn a_bad_ca_bundle_or_a_secret_without_a_host_or_a_database_stops_the_cold_start_naming_the_setting()
 {
    let db = Stack::shared().fresh_database().await.unwrap();
    forbid(&db.stack.app_password);
    let dir = std::env::temp_dir().join(unique("bundles"));
    std::fs::create_dir_all(&dir).unwrap();
    let (empty, not_pem) = (dir.join("empty.pem"), dir.join("not.pem"));
    std::fs::write(&empty, "").unwrap();
    std::fs::write(
        &not_pem,
        "this is the RDS documentation page, not a bundle\n",
    )
    .unwrap();
    let with_bundle = |bundle: &std::path::Path| -> Vec<(String, String)> {
        vec![
            ("DATABASE_URL".into(), db.url()),
            ("DB_SSLMODE".into(), "verify-full".into()),
            ("DB_CA_BUNDLE".into(), bundle.display().to_string()),
        ]
    };
    let moto = Stack::shared();
    let rds_managed = json!({"username": "app", "password": db.stack.app_password});
    let arn = create_secret(moto, &rds_managed).await;
    let pg_port = db.stack.pg_port.to_string();
    let cases = [
        (
            with_bundle(&dir.join("missing.pem")),
            "DB_CA_BUNDLE: cannot read",
        ),
        (with_bundle(&empty), "DB_CA_BUNDLE: the CA bundle"),
        (with_bundle(&not_pem), "DB_CA_BUNDLE: the CA bundle"),
        (secret_env(&db, moto, &arn, &[]), "DB_HOST is not set"),
        // With the host given but no name, Postgres would take the user's (`postgres` for
        // the RDS master user): refused, never a silent fall-back.
        (
            secret_env(
                &db,
                moto,
                &arn,
                &[("DB_HOST", "127.0.0.1"), ("DB_PORT", &pg_port)],
            ),
            "DB_NAME is not set",
        ),
    ];
    for (env, expected) in cases {
        let f = Function::spawn(&function_binary("post-confirmation"), &env)
            .await
            .unwrap();
        let inv = f.invoke(&signup(&unique("x"))).await;
        match &inv.outcome {
            Outcome::Exited(detail) => assert!(detail.contains(expected), "{expected}: {detail}"),
            other => panic!("expected the process to stop at init ({expected}), got {other:?}"),
        }
    }
    // The deployer's layer step, fed the stack's own CA instead of AWS's bundle: it refuses
    // what is not PEM, and what it packs is a bundle the function connects with.
    let layer = |source: &std::path::Path| {
        std::process::Command::new(repo_root().join("scripts/rds-ca-layer"))
            .args(["--region", "eu-west-1"])
            .env("RDS_CA_URL", format!("file://{}", source.display()))
            .env("RDS_CA_OUT", &dir)
            .output()
            .unwrap()
    };
    // A layer serves one region: without --region the script says so and packs nothing.
    let no_region = std::process::Command::new(repo_root().join("scripts/rds-ca-layer"))
        .env(
            "RDS_CA_URL",
            format!("file://{}", db.stack.ca_bundle.display()),
        )
        .env("RDS_CA_OUT", &dir)
        .output()
        .unwrap();
    assert!(!no_region.status.success());
    assert!(String::from_utf8_lossy(&no_region.stderr).contains("--region REGION is required"));
    let refused = layer(&not_pem);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("no PEM certificate"));
    let packed = layer(&db.stack.ca_bundle);
    assert!(packed.status.success(), "{packed:?}");
    let unpacked = dir.join("layer");
    let status = std::process::Command::new("python3")
        .args(["-m", "zipfile", "-e"])
        .arg(dir.join("rds-ca-layer.zip"))
        .arg(&unpacked)
        .status()
        .unwrap();
    assert!(status.success());
    let f = Function::spawn(
        &function_binary("post-confirmation"),
        &with_bundle(&unpacked.join("rds-global-bundle.pem")),
    )
    .await
    .unwrap();
    let e = signup(&unique("y"));
    assert_eq!(f.invoke(&e).await.response(), &e);
    std::fs::remove_dir_all(&dir).ok();
}

/// The TLS tests call the shared crate directly, not through the harness: the password in this
/// URL is forbidden, and the errors they read are checked for it by hand.
fn url_config(db: &TestDb, sslmode: SslMode, ca: Option<PathBuf>) -> DbConfig {
    forbid(&db.stack.app_password);
    DbConfig {
        credentials: CredentialSource::Url(Box::new(db.url().parse().unwrap())),
        host_override: None,
        port_override: None,
        dbname_override: None,
        sslmode,
        ca_bundle: ca,
        pool_size: 1,
        connect_timeout: Duration::from_secs(2),
        statement_timeout: Duration::from_secs(2),
        secret_timeout: Duration::from_secs(2),
        application_name: "foundation-test".into(),
        pooling: Default::default(),
    }
}

async fn uses_tls(db: &Db) -> Result<bool, DbError> {
    db.run(async |c| {
        let row = c
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await?;
        Ok(row.get::<_, bool>(0))
    })
    .await
    .inspect_err(|e| assert_no_leak("a database error", &e.to_string()))
}

#[tokio::test]
async fn tls_modes_against_a_local_ca() {
    let db = Stack::shared().fresh_database().await.unwrap();
    let ca = Some(db.stack.ca_bundle.clone());

    let verified = Db::new(&url_config(&db, SslMode::VerifyFull, ca.clone()), None).unwrap();
    assert!(
        uses_tls(&verified).await.unwrap(),
        "verify-full with the right CA connects over TLS"
    );
    let encrypted = Db::new(&url_config(&db, SslMode::Require, None), None).unwrap();
    assert!(
        uses_tls(&encrypted).await.unwrap(),
        "require encrypts without a CA"
    );
    let plain = Db::new(&url_config(&db, SslMode::Disable, None), None).unwrap();
    assert!(!uses_tls(&plain).await.unwrap());

    let wrong = Db::new(
        &url_config(
            &db,
            SslMode::VerifyFull,
            Some(db.stack.other_ca_bundle.clone()),
        ),
        None,
    )
    .unwrap();
    let err = uses_tls(&wrong).await.unwrap_err().to_string();
    assert!(
        err.contains("TLS handshake") && err.contains("invalid peer certificate"),
        "{err}"
    );

    let err = Db::new(
        &url_config(&db, SslMode::VerifyFull, Some("/nonexistent/ca.pem".into())),
        None,
    )
    .err()
    .expect("a missing bundle is refused at cold start")
    .to_string();
    assert_no_leak("the CA bundle error", &err);
    assert!(
        err.contains("cannot read the CA bundle /nonexistent/ca.pem"),
        "{err}"
    );
}

#[tokio::test]
async fn tls_modes_refuse_a_server_without_tls() {
    let stack = Stack::private("pg").unwrap();
    let db = stack.fresh_database().await.unwrap();
    stack
        .admin("postgres")
        .await
        .unwrap()
        .batch_execute("ALTER SYSTEM SET ssl = off")
        .await
        .unwrap();
    stack.pg_restart();
    for mode in [SslMode::Require, SslMode::VerifyFull] {
        let tls = Db::new(&url_config(&db, mode, Some(stack.ca_bundle.clone())), None).unwrap();
        let err = uses_tls(&tls).await.unwrap_err().to_string();
        assert!(err.contains("server does not support TLS"), "{mode}: {err}");
    }
    let plain = Db::new(&url_config(&db, SslMode::Disable, None), None).unwrap();
    assert!(!uses_tls(&plain).await.unwrap());
}

#[tokio::test]
async fn migrations_apply_once_and_are_then_up_to_date() {
    let db = Stack::shared().fresh_database().await.unwrap();
    let mut client = db.connect_as_app().await.unwrap();
    assert!(
        shared::migrate::run(&mut client).await.unwrap().is_empty(),
        "fresh_database already migrated"
    );
    let tables: Vec<String> = client
        .query(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(tables.contains(&"users".to_owned()), "{tables:?}");
}

/// Without `DB_CA_BUNDLE`, verify-full trusts the compiled-in RDS and Amazon CAs and nothing
/// else: the local server's certificate, from the stack's own CA, is refused; with the
/// stack's bundle named, the same function signs the user up.
#[tokio::test]
async fn without_a_bundle_verify_full_trusts_only_the_compiled_in_cas() {
    let db = Stack::shared().fresh_database().await.unwrap();
    let mut env = db.url_env();
    env.retain(|(k, _)| k != "DB_CA_BUNDLE");
    let f = Function::spawn(&function_binary("post-confirmation"), &env)
        .await
        .unwrap();
    let inv = f.invoke(&signup("untrusted")).await;
    let (kind, _) = inv.error();
    assert!(kind.starts_with("Retryable."), "{kind}");
    let line = f.error_line(&inv).await;
    assert!(line.contains("UnknownIssuer"), "{line}");

    let f = Function::spawn(&function_binary("post-confirmation"), &db.url_env())
        .await
        .unwrap();
    f.invoke(&signup("trusted")).await.response();
}
