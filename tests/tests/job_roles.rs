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
/// The sign-in guard's insert, as `shared::users` sends it.
const GUARD_INSERT: &str = "INSERT INTO users (cognito_user_id, email, display_name, handle) \
                            VALUES ('sub-g', 'g@example.com', 'G', 'g_user') \
                            ON CONFLICT (cognito_user_id) DO NOTHING RETURNING id";
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
        // The taken signed requests (V15) are sg-ip-update's alone: no other job may read
        // them or clear one to let a captured request through again.
        (
            "sg-ip-update",
            "SELECT count(*) FROM signed_requests",
            Ok(()),
        ),
        (
            "post-confirmation",
            "DELETE FROM signed_requests",
            denied.clone(),
        ),
        (
            "pre-sign-up",
            "SELECT count(*) FROM signed_requests",
            denied.clone(),
        ),
        ("drift-check", "DELETE FROM signed_requests", denied.clone()),
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
        // sign-in-guard: post-confirmation's insert, run twice (the second finds the row),
        // and the columns it reads back; no email, no change to a row, nothing else.
        ("sign-in-guard", GUARD_INSERT, Ok(())),
        ("sign-in-guard", GUARD_INSERT, Ok(())),
        (
            "sign-in-guard",
            "SELECT cognito_user_id FROM users WHERE cognito_user_id = 'sub-g' OR lower(handle) = 'g_user'",
            Ok(()),
        ),
        (
            "sign-in-guard",
            "SELECT max(version) FROM refinery_schema_history",
            Ok(()),
        ),
        ("sign-in-guard", "SELECT email FROM users", denied.clone()),
        (
            "sign-in-guard",
            "UPDATE users SET handle = 'taken'",
            denied.clone(),
        ),
        ("sign-in-guard", "DELETE FROM users", denied.clone()),
        (
            "sign-in-guard",
            "SELECT * FROM managed_ingress_rules",
            denied.clone(),
        ),
        (
            "sign-in-guard",
            "SELECT * FROM drift_settings",
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

async fn audit_rows(owner: &tokio_postgres::Client) -> i64 {
    owner
        .query_one("SELECT count(*) FROM ip_update_audit", &[])
        .await
        .unwrap()
        .get(0)
}

/// The attack of issue 37, as it was run: a temporary table named like the settings the
/// audit's retention trigger reads, holding a retention of 0 days, let a row inside the
/// retention go.
#[tokio::test]
async fn the_audit_cannot_be_emptied_through_a_temp_table_named_like_the_settings() {
    let db = Stack::shared().fresh_database().await.unwrap();
    let owner = db.connect_as_app().await.unwrap();
    owner.batch_execute(AN_AUDIT_ROW).await.unwrap();
    let drift = connect_as(&db, login("drift-check")).await;
    let attack = "CREATE TEMP TABLE drift_settings(audit_retention_days int, \
                  remediation_paused bool, rule_lifetime interval); \
                  INSERT INTO drift_settings VALUES (0, false, '1 hour'); \
                  DELETE FROM ip_update_audit;";
    assert_eq!(
        try_sql(&drift, attack).await,
        Err(SqlState::INSUFFICIENT_PRIVILEGE)
    );
    assert_eq!(audit_rows(&owner).await, 1);
}

/// Each trigger on a table of ours, a statement it refuses on the rows of
/// [`no_trigger_is_misled_by_temp_tables_named_like_every_table`], and who it refuses (the
/// jobs are refused the others' statements by their grants, before any trigger).
const TRIGGERS_REFUSE: &[(&str, &str, &str)] = &[
    (
        "ip_update_audit_append_only",
        "UPDATE public.ip_update_audit SET detail = 'rewritten'",
        "owner",
    ),
    (
        "ip_update_audit_append_only",
        "TRUNCATE public.ip_update_audit",
        "owner",
    ),
    (
        "ip_update_audit_only_expired",
        "DELETE FROM public.ip_update_audit",
        "drift-check",
    ),
    (
        "managed_ingress_rules_lifetime_bound",
        "UPDATE public.managed_ingress_rules SET expires_at = now() + interval '100 years'",
        "sg-ip-update",
    ),
    (
        "managed_ingress_rules_lifetime_bound",
        "UPDATE public.managed_ingress_rules SET expires_at = now() + interval '100 years'",
        "drift-check",
    ),
    (
        "managed_ingress_rules_lifetime_bound",
        "UPDATE public.managed_ingress_rules SET last_request_at = now() + interval '100 years'",
        "sg-ip-update",
    ),
    (
        "drift_releases_spent_once",
        "UPDATE public.drift_releases SET reason = 'rewritten'",
        "owner",
    ),
];

/// The rows the statements of [`TRIGGERS_REFUSE`] act on.
const TRIGGER_FIXTURES: &str = "INSERT INTO drift_releases (security_group_id, reason, added_by) \
                                VALUES ('sg-0123456789abcdef0', 'a held-back group', 'ops')";

/// The same trick against every trigger, by a role that may still make temporary tables (a
/// job whose TEMP an operator gave back, or the owner): a temporary table named like every
/// table of ours, the settings in it as loose as they go, changes nothing a trigger decides.
#[tokio::test]
async fn no_trigger_is_misled_by_temp_tables_named_like_every_table() {
    let db = Stack::shared().fresh_database().await.unwrap();
    let owner = db.connect_as_app().await.unwrap();
    owner
        .batch_execute(&format!("{A_RULE}; {AN_AUDIT_ROW}; {TRIGGER_FIXTURES}"))
        .await
        .unwrap();
    let triggers: Vec<String> = owner
        .query(
            "SELECT t.tgname::text FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid \
             WHERE c.relnamespace = 'public'::regnamespace AND NOT t.tgisinternal",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for trigger in &triggers {
        assert!(
            TRIGGERS_REFUSE.iter().any(|(t, ..)| t == trigger),
            "{trigger} needs a statement it refuses in TRIGGERS_REFUSE"
        );
    }
    let admin = db.admin().await.unwrap();
    for (.., group) in JOB_ROLES {
        let grant = format!("GRANT TEMPORARY ON DATABASE {} TO {group}", db.name);
        admin.batch_execute(&grant).await.unwrap();
    }
    let shadows: String = owner
        .query_one(
            "SELECT string_agg(format('CREATE TEMP TABLE %I (%s);', relname, columns), ' ') \
             FROM (SELECT c.relname, string_agg(format('%I %s', a.attname, \
                       format_type(a.atttypid, a.atttypmod)), ', ' ORDER BY a.attnum) AS columns \
                   FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid \
                   WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v') \
                     AND a.attnum > 0 AND NOT a.attisdropped \
                   GROUP BY c.relname) t",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let loosest = "INSERT INTO pg_temp.drift_settings \
                   (singleton, remediation_paused, audit_retention_days, rule_lifetime) \
                   VALUES (true, false, 0, interval '1000 years')";
    let mut who = vec![("owner", owner)];
    for (function, login, _) in JOB_ROLES {
        who.push((function, connect_as(&db, login).await));
    }
    for (name, client) in &who {
        client
            .batch_execute(&format!("{shadows} {loosest}"))
            .await
            .unwrap_or_else(|e| panic!("{name} shadows every table: {e}"));
    }
    for (trigger, sql, reached_by) in TRIGGERS_REFUSE {
        let (_, client) = who.iter().find(|(name, _)| name == reached_by).unwrap();
        client.batch_execute("BEGIN").await.unwrap();
        let outcome = try_sql(client, sql).await;
        client.batch_execute("ROLLBACK").await.unwrap();
        assert_eq!(
            outcome,
            Err(SqlState::RAISE_EXCEPTION),
            "{reached_by}, {trigger}: {sql}"
        );
    }
    for (trigger, ..) in TRIGGERS_REFUSE {
        assert!(triggers.iter().any(|t| t == trigger), "{trigger} exists");
    }
    let owner = db.connect_as_app().await.unwrap();
    assert_eq!(audit_rows(&owner).await, 1);
    let untouched: bool = owner
        .query_one(
            "SELECT expires_at IS NULL AND last_request_at IS NULL FROM managed_ingress_rules",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(untouched);
}

#[tokio::test]
async fn no_job_may_make_a_temp_table_or_anything_in_public() {
    let db = Stack::shared().fresh_database().await.unwrap();
    for (function, login, _) in JOB_ROLES {
        let client = connect_as(&db, login).await;
        for sql in [
            "CREATE TEMP TABLE scratch (id int)",
            "CREATE TABLE pg_temp.scratch (id int)",
            "CREATE TABLE public.scratch (id int)",
            "CREATE VIEW public.scratch AS SELECT 1",
            "CREATE FUNCTION public.scratch() RETURNS int LANGUAGE sql AS 'SELECT 1'",
            "CREATE SCHEMA scratch",
        ] {
            assert_eq!(
                try_sql(&client, sql).await,
                Err(SqlState::INSUFFICIENT_PRIVILEGE),
                "{function}: {sql}"
            );
        }
    }
    // Nor any login made later: PUBLIC, which every role is in, has neither.
    let public: (bool, bool) = db
        .connect_as_app()
        .await
        .unwrap()
        .query_one(
            "SELECT has_database_privilege('public', current_database(), 'TEMPORARY'), \
                    has_schema_privilege('public', 'public', 'CREATE')",
            &[],
        )
        .await
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert_eq!(public, (false, false));
}

/// What every function of ours runs with, whoever calls it: the temporary schema named, last.
const PINNED_SEARCH_PATH: &str = "search_path=pg_catalog, public, pg_temp";

#[tokio::test]
async fn every_function_the_migrations_define_pins_its_search_path() {
    let db = Stack::shared().fresh_database().await.unwrap();
    let functions: Vec<(String, Option<Vec<String>>)> = db
        .connect_as_app()
        .await
        .unwrap()
        .query(
            "SELECT p.oid::regprocedure::text, p.proconfig FROM pg_proc p \
             JOIN pg_namespace n ON n.oid = p.pronamespace \
             WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') \
               AND n.nspname NOT LIKE 'pg\\_%' \
               AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass \
                               AND d.objid = p.oid AND d.deptype = 'e') \
             ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert!(functions.len() >= 3, "{functions:?}");
    for (function, config) in &functions {
        assert_eq!(
            config.as_deref(),
            Some(&[PINNED_SEARCH_PATH.to_owned()][..]),
            "{function}"
        );
    }
}

/// The column grants on `managed_ingress_rules`: a job moves and marks a rule, never who may
/// move it, whether private addresses are allowed, its ports or its lifetime.
#[tokio::test]
async fn no_job_may_change_who_may_move_a_rule_its_ports_or_its_lifetime() {
    let db = Stack::shared().fresh_database().await.unwrap();
    let owner = db.connect_as_app().await.unwrap();
    owner
        .batch_execute(&format!(
            "{A_RULE}; UPDATE managed_ingress_rules SET expires_at = now() + interval '1 hour'"
        ))
        .await
        .unwrap();
    let rule = "SELECT row_to_json(r)::text FROM managed_ingress_rules r";
    let before: String = owner.query_one(rule, &[]).await.unwrap().get(0);

    let denied = Err(SqlState::INSUFFICIENT_PRIVILEGE);
    let bounded = Err(SqlState::RAISE_EXCEPTION);
    let never = [
        (
            "SET principal = 'arn:aws:iam::123456789012:user/mallory'",
            denied.clone(),
        ),
        ("SET allow_unverified = true", denied.clone()),
        ("SET allow_private = true", denied.clone()),
        ("SET from_port = 0, to_port = 65535", denied.clone()),
        ("SET ip_protocol = 'udp'", denied.clone()),
        ("SET owner = 'mallory'", denied.clone()),
        ("SET security_group_id = 'sg-00000000'", denied.clone()),
        ("SET description = 'mine'", denied.clone()),
        ("SET lifetime = interval '100 years'", denied.clone()),
        ("SET expires_at = 'infinity'", bounded.clone()),
        (
            "SET expires_at = now() + interval '13 hours'",
            bounded.clone(),
        ),
        ("SET expires_at = NULL", bounded.clone()),
    ];
    for function in ["sg-ip-update", "drift-check"] {
        let client = connect_as(&db, login(function)).await;
        for (set, expected) in &never {
            let sql = format!("UPDATE managed_ingress_rules {set}");
            assert_eq!(&try_sql(&client, &sql).await, expected, "{function}: {sql}");
        }
    }
    let sg = connect_as(&db, login("sg-ip-update")).await;
    let drift = connect_as(&db, login("drift-check")).await;
    let cases = [
        // What each job's own statements set (ingress::store).
        (
            &sg,
            "SET cidr = '203.0.113.7/32', status = 'pending', last_error = NULL, \
             updated_at = now(), last_request_at = now()",
            Ok(()),
        ),
        (
            &sg,
            "SET status = 'applied', aws_rule_id = 'sgr-0123', expires_at = now() + \
             coalesce(lifetime, (SELECT rule_lifetime FROM drift_settings), interval '12 hours')",
            Ok(()),
        ),
        (
            &drift,
            "SET status = 'expired', aws_rule_id = NULL, last_error = NULL, updated_at = now()",
            Ok(()),
        ),
        // A request from the future would make every later one stale.
        (
            &sg,
            "SET last_request_at = now() + interval '1 day'",
            bounded.clone(),
        ),
        // drift-check never moves a rule nor takes a request.
        (&drift, "SET cidr = '203.0.113.8/32'", denied.clone()),
        (&drift, "SET last_request_at = now()", denied.clone()),
    ];
    for (client, set, expected) in cases {
        let sql = format!("UPDATE managed_ingress_rules {set}");
        assert_eq!(try_sql(client, &sql).await, expected, "{sql}");
    }
    let after: serde_json::Value =
        serde_json::from_str(owner.query_one(rule, &[]).await.unwrap().get(0)).unwrap();
    let before: serde_json::Value = serde_json::from_str(&before).unwrap();
    for column in [
        "principal",
        "allow_unverified",
        "allow_private",
        "from_port",
        "to_port",
        "ip_protocol",
        "owner",
        "security_group_id",
        "description",
        "lifetime",
    ] {
        assert_eq!(after[column], before[column], "{column}");
    }
}

#[tokio::test]
async fn drift_check_adds_findings_and_may_not_rewrite_or_delete_them() {
    let db = Stack::shared().fresh_database().await.unwrap();
    let drift = connect_as(&db, login("drift-check")).await;
    drift
        .batch_execute(
            "WITH run AS (INSERT INTO drift_runs (trigger, mode, scope) \
                          VALUES ('schedule', 'report', 'all') RETURNING id) \
             INSERT INTO drift_findings (run_id, kind, resource, action) \
             SELECT id, 'unexpected', 'sgr-0123', 'revoked' FROM run",
        )
        .await
        .unwrap();
    for sql in [
        "UPDATE drift_findings SET action = 'none'",
        "DELETE FROM drift_findings",
    ] {
        assert_eq!(
            try_sql(&drift, sql).await,
            Err(SqlState::INSUFFICIENT_PRIVILEGE),
            "{sql}"
        );
    }
    let action: String = db
        .connect_as_app()
        .await
        .unwrap()
        .query_one("SELECT action FROM drift_findings", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(action, "revoked");
}

/// Only the owner of the database and of `public` may revoke TEMP and CREATE from PUBLIC:
/// migrations run by another login stop at V14, saying what the owner must run, rather than
/// leave the jobs able to make temporary tables.
#[tokio::test]
async fn migrations_that_cannot_revoke_temp_stop_with_the_statements_to_run() {
    let stack = Stack::shared();
    // The job roles belong to the server: made first by the harness, one migration alone.
    stack.fresh_database().await.unwrap();
    let admin = stack.admin("postgres").await.unwrap();
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let (runner, name) = (format!("runner_{suffix}"), format!("t_{suffix}"));
    let pw = &stack.app_password;
    for sql in [
        format!("CREATE ROLE {runner} LOGIN PASSWORD '{pw}'"),
        format!("CREATE DATABASE {name}"),
    ] {
        admin.batch_execute(&sql).await.unwrap();
    }
    stack
        .admin(&name)
        .await
        .unwrap()
        .batch_execute(&format!("GRANT CREATE ON SCHEMA public TO {runner}"))
        .await
        .unwrap();
    let url = format!(
        "postgres://{runner}:{pw}@127.0.0.1:{}/{name}",
        stack.pg_port
    );
    let (mut client, conn) = url
        .parse::<tokio_postgres::Config>()
        .unwrap()
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap();
    let conn = tokio::spawn(conn);
    let refused = shared::migrate::run(&mut client).await.unwrap_err();
    let db_error = std::error::Error::source(&refused)
        .and_then(|e| e.downcast_ref::<refinery::Error>())
        .map(|e| format!("{e:?}"))
        .unwrap_or_else(|| format!("{refused:?}"));
    assert!(
        db_error.contains("may still make temporary tables")
            && db_error.contains(&format!("REVOKE TEMPORARY ON DATABASE {name} FROM PUBLIC")),
        "{db_error}"
    );
    drop(client);
    let _ = conn.await;
    for sql in [
        format!("DROP DATABASE {name} WITH (FORCE)"),
        format!("DROP ROLE {runner}"),
    ] {
        admin.batch_execute(&sql).await.unwrap();
    }
}
