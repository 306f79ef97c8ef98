//! What every section runs against: the bench's settings (`BENCH_*`), a private stack
//! (PostgreSQL with scram-sha-256 + TLS, moto), a fresh database and the database secret.

use std::path::PathBuf;

use anyhow::Result;
use harness::{Stack, TestDb};

/// The settings `bench/run` passes in.
pub struct Options {
    pub release: PathBuf,
    pub out_path: PathBuf,
    pub drift_sizes: Vec<usize>,
    pub python: PathBuf,
}

impl Options {
    pub fn from_env() -> Options {
        let release = PathBuf::from(
            std::env::var("BENCH_RELEASE_DIR").unwrap_or_else(|_| "target/release".into()),
        );
        let out_path =
            PathBuf::from(std::env::var("BENCH_OUT").unwrap_or_else(|_| "BENCHMARKS.md".into()));
        let drift_sizes: Vec<usize> = std::env::var("BENCH_DRIFT_USERS")
            .unwrap_or_else(|_| "1000,10000,100000".into())
            .split(',')
            .filter_map(|n| n.trim().parse().ok())
            .collect();
        let python =
            PathBuf::from(std::env::var("BENCH_PYTHON").unwrap_or_else(|_| "python3".into()));
        Options {
            release,
            out_path,
            drift_sizes,
            python,
        }
    }
}

pub struct Setup {
    pub stack: Stack,
    pub db: TestDb,
    /// A superuser connection, to read pg_stat_activity and to seed rows.
    pub admin: tokio_postgres::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub cognito: aws_sdk_cognitoidentityprovider::Client,
    pub release: PathBuf,
    pub python: PathBuf,
    pub python_dir: PathBuf,
    pub secret_arn: String,
}

impl Setup {
    pub async fn new(options: &Options) -> Result<Setup> {
        let stack = Stack::private("pg,moto,pgbouncer")?;
        let db = stack.fresh_database().await?;
        let sdk = stack.sdk_config().await;
        let sm = aws_sdk_secretsmanager::Client::new(&sdk);
        let secret_arn = sm
            .create_secret()
            .name("bench-db")
            .secret_string(db.rds_secret(&stack.app_password).to_string())
            .send()
            .await?
            .arn()
            .unwrap_or_default()
            .to_owned();
        let admin = db.admin().await?;
        Ok(Setup {
            stack,
            db,
            admin,
            ec2: aws_sdk_ec2::Client::new(&sdk),
            cognito: aws_sdk_cognitoidentityprovider::Client::new(&sdk),
            release: options.release.clone(),
            python: options.python.clone(),
            python_dir: harness::stack::repo_root().join("bench/python"),
            secret_arn,
        })
    }
}
