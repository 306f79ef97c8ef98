//! The local stack from the tests' side: `scripts/stack` starts Postgres, PgBouncer and moto
//! (the same script the README and CI use); these helpers read its environment, make a fresh database
//! per test, build SDK clients for moto, and start private stacks for fault injection.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

use anyhow::{Context, bail};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_secretsmanager::config::Credentials;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Method, Request, Uri, header::HOST};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// A running stack, as `scripts/stack` describes it.
#[derive(Debug, Clone)]
pub struct Stack {
    pub dir: PathBuf,
    pub pg_port: u16,
    /// PgBouncer in transaction pooling in front of `pg_port` (when the stack runs it).
    pub pgbouncer_port: u16,
    pub superuser_password: String,
    pub app_password: String,
    pub ca_bundle: PathBuf,
    pub other_ca_bundle: PathBuf,
    pub aws_endpoint: String,
    /// For a private stack: removes it when the last clone is dropped.
    _private: Option<std::sync::Arc<PrivateStack>>,
}

/// Owns a private stack's lifetime.
#[derive(Debug)]
struct PrivateStack(PathBuf);

impl Drop for PrivateStack {
    fn drop(&mut self) {
        let _ = run_script(Some(&self.0), "pg,moto,pgbouncer", &["down"]);
    }
}

fn run_script(dir: Option<&Path>, services: &str, args: &[&str]) -> anyhow::Result<String> {
    let mut cmd = Command::new(repo_root().join("scripts/stack"));
    cmd.args(args).env("SERVICES", services);
    if let Some(dir) = dir {
        cmd.env("STACK_DIR", dir);
    }
    let out = cmd.output().context("running scripts/stack")?;
    if !out.status.success() {
        bail!(
            "scripts/stack {args:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn parse_env(text: &str) -> std::collections::HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').to_owned()))
        .collect()
}

impl Stack {
    fn from_script(dir: Option<&Path>, services: &str, private: bool) -> anyhow::Result<Stack> {
        let env = parse_env(&run_script(dir, services, &["up"])?);
        let get = |k: &str| {
            env.get(k)
                .cloned()
                .with_context(|| format!("scripts/stack printed no {k}"))
        };
        let moto = get("AWS_ENDPOINT_URL")?;
        Ok(Stack {
            dir: get("STACK_DIR")?.into(),
            pg_port: get("STACK_PG_PORT")?.parse()?,
            pgbouncer_port: get("STACK_PGBOUNCER_PORT")?.parse()?,
            superuser_password: get("STACK_PG_SUPERUSER_PASSWORD")?,
            app_password: get("STACK_APP_PASSWORD")?,
            ca_bundle: get("STACK_CA_BUNDLE")?.into(),
            other_ca_bundle: get("STACK_OTHER_CA_BUNDLE")?.into(),
            _private: private.then(|| {
                std::sync::Arc::new(PrivateStack(get("STACK_DIR").unwrap_or_default().into()))
            }),
            aws_endpoint: moto,
        })
    }

    /// The shared stack, started (or found running) once per test process.
    pub fn shared() -> &'static Stack {
        static SHARED: OnceLock<Stack> = OnceLock::new();
        SHARED.get_or_init(|| {
            Stack::from_script(None, "pg,moto,pgbouncer", false)
                .unwrap_or_else(|e| panic!("the local stack did not start: {e:#}"))
        })
    }

    /// A stack of its own, for a test that stops or restarts its servers. `services` is a
    /// comma list of "pg", "moto" and "pgbouncer"; the stack is removed when dropped.
    pub fn private(services: &str) -> anyhow::Result<Stack> {
        let dir =
            std::env::temp_dir().join(format!("lambda-test-{}", uuid::Uuid::new_v4().simple()));
        Stack::from_script(Some(&dir), services, true)
    }

    fn control(&self, command: &str) {
        run_script(Some(&self.dir), "pg,moto,pgbouncer", &[command])
            .unwrap_or_else(|e| panic!("scripts/stack {command}: {e:#}"));
    }

    pub fn pg_stop(&self) {
        self.control("pg-stop");
    }
    pub fn pg_start(&self) {
        self.control("pg-start");
    }
    pub fn pg_restart(&self) {
        self.control("pg-restart");
    }
    pub fn moto_stop(&self) {
        self.control("moto-stop");
    }
    pub fn moto_start(&self) {
        self.control("moto-start");
    }
    pub fn pgbouncer_restart(&self) {
        self.control("pgbouncer-restart");
    }

    /// One call to moto's own API (`/moto-api/PATH`); returns the body. Panics on an error,
    /// as the callers are tests and the benchmark's setup.
    fn moto_api(&self, method: Method, path: &str) -> String {
        let url = format!("{}/moto-api/{path}", self.aws_endpoint);
        // The callers are sync test code and async code alike (the benchmark's runtime): the
        // request gets a thread and a runtime of its own, so it works from either.
        let answer = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .context("starting a runtime")?
                        .block_on(http_request(method, &url))
                })
                .join()
        });
        match answer {
            Ok(Ok(body)) => body,
            Ok(Err(e)) => panic!("moto {path}: {e:#}"),
            Err(_) => panic!("moto {path}: the request thread panicked"),
        }
    }

    /// Starts moto's request recorder (use a private stack: the recorder sees every client).
    pub fn start_recording(&self) {
        self.moto_api(Method::POST, "recorder/reset-recording");
        self.moto_api(Method::POST, "recorder/start-recording");
    }

    /// The API actions moto received since `start_recording`, in order (`GetSecretValue`,
    /// `AuthorizeSecurityGroupIngress`, ...).
    pub fn recorded_actions(&self) -> Vec<String> {
        self.recorded_calls()
            .into_iter()
            .map(|c| c.action)
            .collect()
    }

    /// Each request moto received since `start_recording`: its action and its body (JSON for
    /// the JSON protocols, such as Cognito's; `Null` for the query protocols). Stops the
    /// recording.
    pub fn recorded_requests(&self) -> Vec<(String, serde_json::Value)> {
        self.recorded_calls()
            .into_iter()
            .map(|c| {
                let json = serde_json::from_str(&c.body).unwrap_or_default();
                (c.action, json)
            })
            .collect()
    }

    /// The calls moto received since `start_recording`, in order, with the time each was
    /// signed and its body (stops the recording).
    pub fn recorded_calls(&self) -> Vec<RecordedCall> {
        use base64::Engine;
        self.moto_api(Method::POST, "recorder/stop-recording");
        let recording = self.moto_api(Method::GET, "recorder/download-recording");
        recording
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter_map(|req| {
                let body = req["body"].as_str().unwrap_or_default();
                let body = if req["body_encoded"] == true {
                    String::from_utf8(
                        base64::engine::general_purpose::STANDARD
                            .decode(body)
                            .ok()?,
                    )
                    .ok()?
                } else {
                    body.to_owned()
                };
                let headers = req["headers"].as_object()?;
                let header = |name: &str| {
                    headers
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(name))
                        .and_then(|(_, v)| v.as_str())
                        .map(str::to_owned)
                };
                // JSON protocols name the action in a header, query protocols in the body.
                let action = match header("X-Amz-Target") {
                    Some(target) => target.rsplit('.').next()?.to_owned(),
                    None => body
                        .split('&')
                        .find_map(|kv| kv.strip_prefix("Action="))?
                        .to_owned(),
                };
                Some(RecordedCall {
                    action,
                    amz_date: header("X-Amz-Date").unwrap_or_default(),
                    body,
                })
            })
            .collect()
    }

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

    /// SDK configuration for moto, independent of the process environment.
    pub async fn sdk_config(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&self.aws_endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "stack"))
            .load()
            .await
    }

    /// The variables every function process needs to reach this stack's moto.
    pub fn aws_env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.aws_endpoint.as_str()),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }
}

/// A bodiless HTTP/1 request to `url` (plain http); the body of a 2xx answer.
async fn http_request(method: Method, url: &str) -> anyhow::Result<String> {
    let uri: Uri = url.parse().with_context(|| format!("not a URL: {url}"))?;
    let authority = uri.authority().context("no host:port in the URL")?.clone();
    let stream = TcpStream::connect(authority.as_str())
        .await
        .with_context(|| format!("connecting to {authority}"))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = Request::builder()
        .method(method)
        .uri(uri.path_and_query().map_or("/", |p| p.as_str()))
        .header(HOST, authority.as_str())
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    let body = String::from_utf8_lossy(&body).into_owned();
    if !status.is_success() {
        bail!("{status}: {body}");
    }
    Ok(body)
}

/// Each function that reads the database: its binary, its login user (made by
/// `scripts/stack`, with the stack's app password) and its job's group role (made by the
/// migrations). The harness runs each function as its login user, as a deploy does.
pub const JOB_ROLES: [(&str, &str, &str); 4] = [
    (
        "post-confirmation",
        "post_confirmation_fn",
        "db_sync_post_confirmation",
    ),
    ("pre-sign-up", "pre_sign_up_fn", "db_sync_pre_sign_up"),
    ("sg-ip-update", "sg_ip_update_fn", "db_sync_sg_ip_update"),
    ("drift-check", "drift_check_fn", "db_sync_drift_check"),
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

/// Every function crate under `functions/`, which [`function_binary`] builds
/// (`layout::every_function_crate_is_built_for_the_tests` keeps it complete).
pub const FUNCTION_PACKAGES: [&str; 6] = [
    "drift-check",
    "pool-trigger",
    "post-confirmation",
    "pre-sign-up",
    "schema-migrations",
    "sg-ip-update",
];

/// The path of a function's debug binary, built (or found up to date) once per test process.
pub fn function_binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let status = Command::new(cargo)
            .current_dir(repo_root())
            .args(["build", "--quiet", "--bins"])
            .args(FUNCTION_PACKAGES.iter().flat_map(|p| ["-p", p]))
            .status()
            .map_err(|e| e.to_string())?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("cargo build failed: {status}"))
        }
    });
    if let Err(e) = built {
        panic!("could not build the function binaries: {e}");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| repo_root().join("target"), PathBuf::from);
    target.join("debug").join(name)
}

/// An event from `events/`, the same files `sam local invoke -e` uses.
pub fn event(file: &str) -> serde_json::Value {
    let path = repo_root().join("events").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One request moto's recorder kept.
#[derive(Debug, Clone)]
pub struct RecordedCall {
    /// `ListUsers`, `GetSecretValue`, ...
    pub action: String,
    /// When the client signed it (SigV4's `X-Amz-Date`, `20261124T152100Z`: whole seconds).
    pub amz_date: String,
    pub body: String,
}
