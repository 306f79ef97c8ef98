//! A database role per job: each function's login user, a member of its job's group role,
//! may run the statements its function runs and no other. The suites of the three functions
//! run as these users too (the harness logs each function in as its own, see
//! `harness::stack::JOB_ROLES`); here, what each may not do.

use harness::{Stack, TestDb, stack::JOB_ROLES};
use tokio_postgres::error::SqlState;

/// A plaintext connection to `db` as `login` (the tests' side channel, as `connect_as_app`).
async fn connect_as(db: &TestDb, login: &str) -> tokio_postgres::Client {
    let url = db
        .url()
        .replacen("postgres://app:", &format!("postgres://{login}:"), 1);
    let (client, conn) = url
        .parse::<tokio_postgres::Config>()
        .unwrap()
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("{login} logs in: {e}"));
    tokio::spawn(conn);
    client
}

fn login(function: &str) -> &'static str {
    JOB_ROLES.iter().find(|(f, ..)| *f == function).unwrap().1
}

/// Runs `sql` as `client`; `Ok` or the SQLSTATE it failed with.
async fn try_sql(client: &tokio_postgres::Client, sql: &str) -> Result<(), SqlState> {
    client
        .batch_execute(sql)
        .await
        .map_err(|e| e.code().cloned().unwrap_or(SqlState::INTERNAL_ERROR))
}

const A_USER: &str = "INSERT INTO users (display_name, email, handle, cognito_user_id) \
                      VALUES ('A', 'a@example.com', 'a_user', 'sub-a')";
const A_RULE: &str = "INSERT INTO managed_ingress_rules (security_group_id, owner) \
                      VALUES ('sg-0123456789abcdef0', 'andrew')";
const AN_AUDIT_ROW: &str = "INSERT INTO ip_update_audit (owner, security_group_id, outcome) VALUES ('andrew', 'sg-0123456789abcdef0', 'busy')";

#[tokio::test]
async fn each_job_may_run_only_its_own_statements() {
    let db = Stack::shared().fresh_database().await.unwrap();
    let owner = db.connect_as_app().await.unwrap();
    owner.batch_execute(A_RULE).await.unwrap();

    let denied = Err(SqlState::INSUFFICIENT_PRIVILEGE);
    let cases: &[(&str, &str, Result<(), SqlState>)] = &[
        // post-confirmation: sign-ups, and nothing about rules, the audit or drift.
        ("post-confirmation", A_USER, Ok(())),
        ("post-confirmation", "SELECT count(*) FROM users", Ok(())),
        (
            "post-confirmation",
            "SELECT max(version) FROM refinery_schema_history",
            Ok(()),
        ),
        (
            "post-confirmation",
            "SELECT * FROM managed_ingress_rules",
            denied.clone(),
        ),
        (
            "post-confirmation",
            "SELECT * FROM ip_update_audit",
            denied.clone(),
        ),
        (
            "post-confirmation",
            "UPDATE users SET handle = 'taken'",
            denied.clone(),
        ),
        ("post-confirmation", "DELETE FROM users", denied.clone()),
        (
            "post-confirmation",
            "SELECT * FROM drift_settings",
            denied.clone(),
        ),
        // pre-sign-up: whether a handle is taken, and nothing else of a user.
        (
            "pre-sign-up",
            "SELECT count(*) FROM users WHERE lower(handle) = 'a'",
            Ok(()),
        ),
        ("pre-sign-up", "SELECT email FROM users", denied.clone()),
        (
            "pre-sign-up",
            "SELECT cognito_user_id FROM users",
            denied.clone(),
        ),
        ("pre-sign-up", A_USER, denied.clone()),
        (
            "pre-sign-up",
            "SELECT * FROM managed_ingress_rules",
            denied.clone(),
        ),
        // sg-ip-update: the rules and appending to the audit; not the users, not reading
        // back or deleting the audit.
        (
            "sg-ip-update",
            "UPDATE managed_ingress_rules SET status = 'pending'",
            Ok(()),
        ),
        ("sg-ip-update", AN_AUDIT_ROW, Ok(())),
        ("sg-ip-update", A_RULE, denied.clone()),
        (
            "sg-ip-update",
            "DELETE FROM managed_ingress_rules",
            denied.clone(),
        ),
        ("sg-ip-update", "SELECT * FROM users", denied.clone()),
        (
            "sg-ip-update",
            "DELETE FROM ip_update_audit",
            denied.clone(),
        ),
        (
            "sg-ip-update",
            "UPDATE drift_settings SET remediation_paused = true",
            denied.clone(),
        ),
        // drift-check: reads the desired state; may not change it (the allowlist, the kill
        // switch) nor delete users or rules.
        ("drift-check", "SELECT * FROM drift_allowed_rules", Ok(())),
        ("drift-check", "SELECT * FROM drift_settings", Ok(())),
        (
            "drift-check",
            "UPDATE drift_settings SET remediation_paused = true",
            denied.clone(),
        ),
        (
            "drift-check",
            "DELETE FROM drift_allowed_rules",
            denied.clone(),
        ),
        ("drift-check", "DELETE FROM users", denied.clone()),
        (
            "drift-check",
            "DELETE FROM managed_ingress_rules",
            denied.clone(),
        ),
    ];
    for (function, sql, expected) in cases {
        let client = connect_as(&db, login(function)).await;
        assert_eq!(&try_sql(&client, sql).await, expected, "{function}: {sql}");
    }
}

#[tokio::test]
async fn no_job_may_alter_a_table_or_turn_off_the_audits_append_only_triggers() {
    let db = Stack::shared().fresh_database().await.unwrap();
    let owner = db.connect_as_app().await.unwrap();
    owner.batch_execute(AN_AUDIT_ROW).await.unwrap();
    for (function, login, _) in JOB_ROLES {
        let client = connect_as(&db, login).await;
        for sql in [
            "ALTER TABLE ip_update_audit DISABLE TRIGGER ip_update_audit_append_only",
            "ALTER TABLE ip_update_audit DISABLE TRIGGER ALL",
            "DROP TRIGGER ip_update_audit_only_expired ON ip_update_audit",
            "ALTER TABLE users ADD COLUMN note text",
            "CREATE TABLE mine (id int)",
            "TRUNCATE ip_update_audit",
        ] {
            assert_eq!(
                try_sql(&client, sql).await,
                Err(SqlState::INSUFFICIENT_PRIVILEGE),
                "{function}: {sql}"
            );
        }
        // Nor replay as a replica (which skips triggers): superusers only.
        assert_eq!(
            try_sql(&client, "SET session_replication_role = replica").await,
            Err(SqlState::INSUFFICIENT_PRIVILEGE),
            "{function}"
        );
        // A row inside the retention stays, whoever may delete.
        let kept = try_sql(&client, "DELETE FROM ip_update_audit").await;
        assert!(kept.is_err(), "{function}: {kept:?}");
    }
    let rows: i64 = owner
        .query_one("SELECT count(*) FROM ip_update_audit", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 1);
}

#[tokio::test]
async fn the_migrations_say_what_to_do_when_they_may_not_create_the_roles() {
    // A server of its own: the shared one already has the roles.
    let stack = Stack::private("pg").unwrap();
    let weak = "weak_owner";
    let admin = stack.admin("postgres").await.unwrap();
    let pw = &stack.app_password;
    for sql in [
        format!("CREATE ROLE {weak} LOGIN PASSWORD '{pw}' CREATEDB"),
        format!("CREATE DATABASE weak OWNER {weak}"),
    ] {
        admin.batch_execute(&sql).await.unwrap();
    }
    let url = format!(
        "postgres://{weak}:{}@127.0.0.1:{}/weak",
        stack.app_password, stack.pg_port
    );
    let (mut client, conn) = url
        .parse::<tokio_postgres::Config>()
        .unwrap()
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let refused = shared::migrate::run(&mut client).await.unwrap_err();
    let db_error = std::error::Error::source(&refused)
        .and_then(|e| e.downcast_ref::<refinery::Error>())
        .map(|e| format!("{e:?}"))
        .unwrap_or_else(|| format!("{refused:?}"));
    assert!(
        db_error.contains("cannot create the group role db_sync_post_confirmation")
            && db_error.contains("CREATE ROLE db_sync_post_confirmation NOLOGIN"),
        "{db_error}"
    );

    // With CREATEROLE (as the RDS master user has), the same migrations make them.
    stack
        .admin("postgres")
        .await
        .unwrap()
        .batch_execute(&format!("ALTER ROLE {weak} CREATEROLE"))
        .await
        .unwrap();
    shared::migrate::run(&mut client).await.unwrap();
    stack.grant_job_roles().await.unwrap();
}
