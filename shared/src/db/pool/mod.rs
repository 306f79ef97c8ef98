//! The Postgres pool: built once per execution environment, credentials from the secret cache,
//! a fresh secret when the server rejects the cached password (rotation), and one transparent
//! retry when a pooled connection turns out to have died while the environment was frozen.
//! With IAM authentication each new connection signs a fresh token instead.
//!
//! [`Db`] is the pool and the retries around it; [`PgManager`] (in `manager`) makes and checks
//! its connections, starting the TCP connection early while the secret is fetched
//! (`early_connect`).

mod early_connect;
mod manager;

use std::time::{Duration, Instant};

use deadpool::managed::{self, PoolError};
use deadpool_postgres::ClientWrapper;

pub use manager::{Address, PgManager};

use super::{
    config::{CredentialSource, DbConfig},
    error::{DbError, is_connection_lost},
};

/// A connection checked out of the pool.
pub type PooledClient = managed::Object<PgManager>;

/// The pool and what it needs, shared by every invocation of an execution environment.
pub struct Db {
    pool: managed::Pool<PgManager>,
    wait: Duration,
    statement_timeout: Duration,
}

impl Db {
    /// Builds the pool; makes no connection yet. IAM authentication needs the SDK's
    /// credentials: use [`Db::from_config`] for it.
    pub fn new(
        config: &DbConfig,
        secrets_client: Option<aws_sdk_secretsmanager::Client>,
    ) -> Result<Self, DbError> {
        Self::build(config, secrets_client, None)
    }

    fn build(
        config: &DbConfig,
        secrets_client: Option<aws_sdk_secretsmanager::Client>,
        sdk: Option<&aws_config::SdkConfig>,
    ) -> Result<Self, DbError> {
        let manager = PgManager::new(config, secrets_client, sdk)?;
        // Long enough for a cold connection: secret fetch, then connect, then one rotation retry.
        let wait = config.secret_timeout * 2 + config.connect_timeout * 2;
        let pool = managed::Pool::builder(manager)
            .max_size(config.pool_size)
            .runtime(deadpool::Runtime::Tokio1)
            .wait_timeout(Some(wait))
            .build()
            .map_err(|e| DbError::Pool(e.to_string()))?;
        Ok(Self {
            pool,
            wait,
            statement_timeout: config.statement_timeout,
        })
    }

    /// How long one statement may run (`DB_STATEMENT_TIMEOUT_MS`), for statements that set
    /// it themselves ([`super::stateless`]).
    pub fn statement_timeout(&self) -> Duration {
        self.statement_timeout
    }

    /// Builds the pool from the environment's config and the function's AWS config.
    pub fn from_config(config: &DbConfig, sdk: &aws_config::SdkConfig) -> Result<Self, DbError> {
        let client =
            matches!(config.credentials, CredentialSource::SecretsManager { .. }).then(|| {
                aws_sdk_secretsmanager::Client::new(&crate::aws::with_timeout(
                    sdk,
                    config.secret_timeout,
                ))
            });
        let db = Self::build(config, client, Some(sdk));
        crate::cold_start::mark("pool");
        db
    }

    /// Cold-start wiring every function shares: the pool, with its first connection opened
    /// during init.
    pub async fn init(config: &DbConfig, sdk: &aws_config::SdkConfig) -> Result<Self, DbError> {
        let db = Self::from_config(config, sdk)?;
        db.warm_up().await?;
        Ok(db)
    }

    /// [`Db::init`] for a function whose only AWS calls are for its credentials: the SDK
    /// configuration is loaded only for a secret or an IAM token, so a `DATABASE_URL` cold
    /// start pays for no AWS setup at all.
    pub async fn init_alone(config: &DbConfig) -> Result<Self, DbError> {
        let db = match config.credentials {
            // The secret and IAM tokens both need the SDK (its client, its credentials).
            CredentialSource::SecretsManager { .. } | CredentialSource::Iam { .. } => {
                Self::from_config(config, &crate::aws::sdk_config().await)?
            }
            CredentialSource::Url(_) => {
                let db = Self::new(config, None)?;
                crate::cold_start::mark("pool");
                db
            }
        };
        db.warm_up().await?;
        Ok(db)
    }

    /// Opens the first connection now, during init, where Lambda gives the CPU for free. A
    /// failure that may pass is only logged: the next invocation tries again and reports it
    /// then. A setting no retry can fix (no host or no database name to connect to) is
    /// returned, to stop the cold start with the setting named.
    pub async fn warm_up(&self) -> Result<(), DbError> {
        match self.client().await {
            Ok(_) => tracing::debug!("database connection ready"),
            Err(e @ (DbError::NoHost | DbError::NoDbName)) => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "could not connect during init; will retry per invocation")
            }
        }
        Ok(())
    }

    /// Where this pool connects (host, port, database), for a secret of another login user
    /// of the same database: the schema migrations write it into each job's own secret.
    pub async fn address(&self) -> Result<Address, DbError> {
        self.pool.manager().address().await
    }

    /// A connection from the pool.
    pub async fn client(&self) -> Result<PooledClient, DbError> {
        self.pool.get().await.map_err(|e| match e {
            PoolError::Backend(e) => e,
            PoolError::Timeout(_) => DbError::PoolTimeout(self.wait),
            other => DbError::Pool(other.to_string()),
        })
    }

    /// Runs an idempotent operation, once more on a new connection if the pooled one turns
    /// out to be dead (the server restarted or cut it while the environment was frozen).
    pub async fn run<T, F>(&self, op: F) -> Result<T, DbError>
    where
        F: AsyncFn(&ClientWrapper) -> Result<T, tokio_postgres::Error>,
    {
        let client = self.client().await?;
        match op(&client).await {
            Err(e) if is_connection_lost(&e) => {
                tracing::warn!(error = %e, "database connection lost; retrying on a new one");
                drop(managed::Object::take(client));
                let client = self.client().await?;
                Ok(op(&client).await?)
            }
            other => Ok(other?),
        }
    }

    /// Like [`Db::run`], and rides out a short server restart or a login the server (or the
    /// proxy in front of it) was too busy to finish in time: while the error says so
    /// ([`DbError::passes_soon`]), tries again after a pause (25 ms, doubling to 250 ms) as
    /// long as one more attempt as long as the last one, and the answer, fit before
    /// `deadline`. Past that it returns the error, so the caller still answers in time and
    /// with the cause named rather than a bare "out of time".
    pub async fn run_until<T, F>(&self, deadline: Instant, op: F) -> Result<T, DbError>
    where
        F: AsyncFn(&ClientWrapper) -> Result<T, tokio_postgres::Error>,
    {
        // Time kept for the answer's way back.
        const ROOM: Duration = Duration::from_millis(250);
        let mut pause = Duration::from_millis(25);
        let mut attempts = 1u32;
        loop {
            let started = Instant::now();
            match self.run(&op).await {
                Err(e)
                    if e.passes_soon()
                        && Instant::now() + pause + started.elapsed() + ROOM < deadline =>
                {
                    tracing::warn!(error = %e, attempts, retry_in_ms = pause.as_millis() as u64, "database unavailable; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(250));
                    attempts += 1;
                }
                other => return other,
            }
        }
    }
}
