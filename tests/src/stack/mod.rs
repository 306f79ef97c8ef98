//! The local stack from the tests' side: `scripts/stack` starts Postgres, PgBouncer and moto
//! (the same script the README and CI use); these helpers read its environment, make a fresh
//! database per test, build SDK clients for moto, and start private stacks for fault injection.
//!
//! Here: finding or starting a stack ([`Stack::shared`], [`Stack::private`]), stopping and
//! starting its servers, and the SDK configuration for its moto. Its databases (a fresh one per
//! test, the job roles, [`TestDb`]) are in `database`, moto's request recorder
//! ([`Stack::recorded_calls`]) in `moto`, and the function binaries and sample events in
//! `binaries`.

mod binaries;
mod database;
mod moto;

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

use anyhow::{Context, bail};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_secretsmanager::config::Credentials;

pub use binaries::{FUNCTION_PACKAGES, event, function_binary};
pub use database::{JOB_ROLES, Route, TestDb, as_job_login};
pub use moto::RecordedCall;

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

    /// SDK configuration for moto, independent of the process environment.
    pub async fn sdk_config(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&self.aws_endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "stack"))
            .load()
            .await
    }

    /// The port moto listens on, for a front put between it and a function.
    pub fn moto_port(&self) -> u16 {
        self.aws_endpoint
            .trim_end_matches('/')
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("moto's endpoint ends in its port")
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
