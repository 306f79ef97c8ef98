//! A stack's databases: a fresh one per test, migrated, with the functions' login users in
//! their jobs' roles; and [`TestDb`], one test's database and the ways a function reaches it.

use std::path::PathBuf;

use anyhow::Context;

use super::Stack;

impl Stack {
    /// A superuser connection (plaintext: the tests' own side channel, not the code under test).
    pub async fn admin(&self, dbname: &str) -> anyhow::Result<tokio_postgres::Client> {
        let (client, conn) = tokio_postgres::Config::new()
            .host("127.0.0.1")
            .port(self.pg_port)
            .user("postgres")
            .password(&self.superuser_password)
            .dbname(dbname)
            .connect(tokio_postgres::NoTls)
            .await
            .context("connecting as the superuser")?;
        tokio::spawn(conn);
        Ok(client)
    }

    /// A new, migrated database owned by `app`, for one test; the functions' login users are
    /// members of their jobs' roles.
    pub async fn fresh_database(&self) -> anyhow::Result<TestDb> {
        let db = self.empty_database().await?;
        let mut client = db.connect_as_app().await?;
        // The first migration on a server makes the job roles, which belong to the whole
        // server: two made at once in two databases can trip over each other (one's GRANT may
        // not see the role the other just made), so the first one runs alone.
        static MIGRATED: tokio::sync::Mutex<Vec<PathBuf>> =
            tokio::sync::Mutex::const_new(Vec::new());
        let mut migrated = MIGRATED.lock().await;
        if migrated.contains(&self.dir) {
            drop(migrated);
            shared::migrate::run(&mut client).await?;
        } else {
            shared::migrate::run(&mut client).await?;
            migrated.push(self.dir.clone());
            drop(migrated);
        }
        self.grant_job_roles().await?;
        Ok(db)
    }

    /// Makes each function's login user a member of its job's group role, as an operator does
    /// once the migrations made the groups. Idempotent.
    pub async fn grant_job_roles(&self) -> anyhow::Result<()> {
        // One at a time and once per server: two sessions granting the same membership at
        // once fail with "tuple concurrently updated".
        static GRANTED: tokio::sync::Mutex<Vec<PathBuf>> =
            tokio::sync::Mutex::const_new(Vec::new());
        let mut granted = GRANTED.lock().await;
        if granted.contains(&self.dir) {
            return Ok(());
        }
        let sql: String = JOB_ROLES
            .iter()
            .map(|(_, login, group)| format!("GRANT {group} TO {login};"))
            .collect();
        self.admin("postgres")
            .await?
            .batch_execute(&sql)
            .await
            .context("granting the job roles (is the database migrated?)")?;
        granted.push(self.dir.clone());
        Ok(())
    }

    /// A new database owned by `app` with no migration applied.
    pub async fn empty_database(&self) -> anyhow::Result<TestDb> {
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        self.admin("postgres")
            .await?
            .batch_execute(&format!("CREATE DATABASE {name} OWNER app"))
            .await?;
        Ok(TestDb {
            stack: self.clone(),
            name,
        })
    }
}

/// Each function that reads the database: its binary, its login user (made by
/// `scripts/stack`, with the stack's app password) and its job's group role (made by the
/// migrations). The harness runs each function as its login user, as a deploy does.
pub const JOB_ROLES: [(&str, &str, &str); 5] = [
    (
        "post-confirmation",
        "post_confirmation_fn",
        "db_sync_post_confirmation",
    ),
    ("pre-sign-up", "pre_sign_up_fn", "db_sync_pre_sign_up"),
    ("sg-ip-update", "sg_ip_update_fn", "db_sync_sg_ip_update"),
    ("drift-check", "drift_check_fn", "db_sync_drift_check"),
    ("sign-in-guard", "sign_in_guard_fn", "db_sync_sign_in_guard"),
];

/// `env` with a `DATABASE_URL` for `app` turned into one for `function`'s login user, when it
/// has one: the functions run with their job's rights, not the schema owner's.
pub fn as_job_login(function: &str, env: &[(String, String)]) -> Vec<(String, String)> {
    let Some((_, login, _)) = JOB_ROLES.iter().find(|(f, ..)| *f == function) else {
        return env.to_vec();
    };
    env.iter()
        .map(|(k, v)| match v.strip_prefix("postgres://app:") {
            Some(rest) if k == "DATABASE_URL" => (k.clone(), format!("postgres://{login}:{rest}")),
            _ => (k.clone(), v.clone()),
        })
        .collect()
}

/// How a function reaches Postgres: straight to the server, or through the stack's PgBouncer in
/// transaction pooling (the local stand-in for RDS Proxy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Direct,
    Pooler,
}

/// One test's database on a stack.
pub struct TestDb {
    pub stack: Stack,
    pub name: String,
}

impl TestDb {
    /// A connection URL for the `app` role (what `DATABASE_URL` would hold).
    pub fn url(&self) -> String {
        self.url_via(Route::Direct)
    }

    /// [`TestDb::url`] by `route`.
    pub fn url_via(&self, route: Route) -> String {
        let port = match route {
            Route::Direct => self.stack.pg_port,
            Route::Pooler => self.stack.pgbouncer_port,
        };
        format!(
            "postgres://app:{}@127.0.0.1:{port}/{}",
            self.stack.app_password, self.name
        )
    }

    /// The RDS-format secret for this database, as Secrets Manager would hold it. The password
    /// is forbidden from then on: no function may print or return it.
    pub fn rds_secret(&self, password: &str) -> serde_json::Value {
        crate::forbid(password);
        serde_json::json!({
            "engine": "postgres",
            "host": "127.0.0.1",
            "port": self.stack.pg_port,
            "username": "app",
            "password": password,
            "dbname": self.name,
        })
    }

    /// Function environment using `DATABASE_URL` over verify-full TLS.
    pub fn url_env(&self) -> Vec<(String, String)> {
        self.url_env_via(Route::Direct)
    }

    /// [`TestDb::url_env`] by `route`: PgBouncer presents the stack's certificate too.
    pub fn url_env_via(&self, route: Route) -> Vec<(String, String)> {
        let mut env = self.stack.aws_env();
        env.extend([
            ("DATABASE_URL".to_owned(), self.url_via(route)),
            ("DB_SSLMODE".to_owned(), "verify-full".to_owned()),
            (
                "DB_CA_BUNDLE".to_owned(),
                self.stack.ca_bundle.display().to_string(),
            ),
        ]);
        env
    }

    /// A plaintext connection as `app`, for the tests to look at the data.
    pub async fn connect_as_app(&self) -> anyhow::Result<tokio_postgres::Client> {
        let (client, conn) = self
            .url()
            .parse::<tokio_postgres::Config>()?
            .connect(tokio_postgres::NoTls)
            .await?;
        tokio::spawn(conn);
        Ok(client)
    }

    /// A login role with `app`'s privileges, for a test that changes its password.
    pub async fn create_role(&self, role: &str, password: &str) -> anyhow::Result<()> {
        let sql = format!("CREATE ROLE {role} LOGIN PASSWORD '{password}'; GRANT app TO {role};");
        self.admin().await?.batch_execute(&sql).await?;
        Ok(())
    }

    /// A superuser connection to this database.
    pub async fn admin(&self) -> anyhow::Result<tokio_postgres::Client> {
        self.stack.admin(&self.name).await
    }
}
