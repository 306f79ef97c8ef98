//! The Postgres pool: built once per execution environment, credentials from the secret cache,
//! a fresh secret when the server rejects the cached password (rotation), and one transparent
//! retry when a pooled connection turns out to have died while the environment was frozen.
//! With IAM authentication each new connection signs a fresh token instead.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use deadpool::managed::{self, Metrics, PoolError, RecycleError, RecycleResult};
use deadpool_postgres::ClientWrapper;
use tokio::net::TcpStream;
use tokio_postgres::{
    Config as PgConfig, NoTls,
    config::{Host, SslMode as PgSslMode},
    tls::MakeTlsConnect,
};

use super::{
    config::{CredentialSource, DbConfig, Pooling},
    error::{DbError, is_auth_failure, is_connection_lost},
    iam::TokenSource,
};
use crate::{
    secret::{DbSecret, SecretCache},
    tls::Connector,
};

/// A connection checked out of the pool.
pub type PooledClient = managed::Object<PgManager>;

enum Credentials {
    Secret(Arc<SecretCache>),
    Url(Box<PgConfig>),
    Iam {
        tokens: TokenSource,
        dbname: Option<String>,
    },
}

/// What one new connection authenticates with.
enum Login<'a> {
    Secret(&'a DbSecret),
    Token(String),
    Url,
}

/// A TCP connection started before the credentials are at hand, to the address `DB_HOST` (and
/// `DB_PORT`, else 5432) gives, so that the server starts the backend process for it while the
/// secret is on its way. Dropped unused, it stops trying.
struct EarlyConnect {
    task: tokio::task::JoinHandle<std::io::Result<TcpStream>>,
    host: String,
    port: u16,
}

impl EarlyConnect {
    fn start(config: &DbConfig) -> Option<Self> {
        let host = config.host_override.clone()?;
        let port = config.port_override.unwrap_or(5432);
        let target = host.clone();
        let task = tokio::spawn(async move {
            let stream = TcpStream::connect((target.as_str(), port)).await?;
            // As tokio-postgres sets its own sockets: the login is a run of small messages.
            stream.set_nodelay(true)?;
            Ok(stream)
        });
        Some(Self { task, host, port })
    }

    /// The socket for the login `pg` describes, waited for until `deadline`. `Ok(None)`: the
    /// login goes elsewhere (the secret named another port), or the connect failed, which
    /// the usual path then meets and reports. `Err`: still not connected at `deadline`.
    async fn finish(mut self, pg: &PgConfig, deadline: Instant) -> Result<Option<TcpStream>, ()> {
        let fits = matches!(pg.get_hosts(), [Host::Tcp(h)] if *h == self.host)
            && pg.get_ports().len() <= 1
            && pg.get_ports().first().copied().unwrap_or(5432) == self.port;
        if !fits {
            return Ok(None);
        }
        match tokio::time::timeout_at(deadline.into(), &mut self.task).await {
            Ok(Ok(Ok(stream))) => Ok(Some(stream)),
            Ok(_) => Ok(None),
            Err(_) => Err(()),
        }
    }
}

impl Drop for EarlyConnect {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Makes and checks connections for the pool.
pub struct PgManager {
    credentials: Credentials,
    connector: Connector,
    config: DbConfig,
}

impl PgManager {
    fn pg_config(&self, login: Login<'_>) -> Result<PgConfig, DbError> {
        let c = &self.config;
        let mut pg = PgConfig::new();
        let (hosts, ports, dbname) = match (&self.credentials, login) {
            (Credentials::Iam { tokens, dbname }, Login::Token(token)) => {
                let t = tokens.target();
                pg.user(&t.user).password(token);
                (
                    vec![Host::Tcp(t.host.clone())],
                    vec![t.port],
                    dbname.clone(),
                )
            }
            (Credentials::Secret(_), Login::Secret(s)) => {
                pg.user(&s.username).password(s.password.expose());
                (
                    s.host.iter().map(|h| Host::Tcp(h.clone())).collect(),
                    s.port.into_iter().collect(),
                    s.dbname.clone(),
                )
            }
            (Credentials::Url(url), _) => {
                if let Some(user) = url.get_user() {
                    pg.user(user);
                }
                if let Some(password) = url.get_password() {
                    pg.password(password);
                }
                (
                    url.get_hosts().to_vec(),
                    url.get_ports().to_vec(),
                    url.get_dbname().map(str::to_owned),
                )
            }
            _ => (vec![], vec![], None),
        };
        match &c.host_override {
            Some(h) => {
                pg.host(h);
            }
            // A URL without a host means this machine, as libpq reads it; a secret without one
            // (RDS-managed secrets hold only the user and password) names no database at all.
            None if hosts.is_empty() && matches!(self.credentials, Credentials::Secret(_)) => {
                return Err(DbError::NoHost);
            }
            None if hosts.is_empty() => {
                pg.host("localhost");
            }
            None => {
                for h in hosts {
                    match h {
                        Host::Tcp(h) => pg.host(&h),
                        Host::Unix(p) => pg.host_path(p),
                    };
                }
            }
        }
        match c.port_override {
            Some(p) => {
                pg.port(p);
            }
            None => {
                for p in ports {
                    pg.port(p);
                }
            }
        }
        if let Some(db) = c.dbname_override.as_ref().or(dbname.as_ref()) {
            pg.dbname(db);
        }
        if c.pooling == Pooling::Session {
            // One setting for the session's life, no round trip. A transaction-pooling proxy
            // refuses startup options (RDS Proxy: "Feature not supported"), so there each
            // statement sets its own (`stateless`).
            pg.options(format!(
                "-c statement_timeout={}",
                c.statement_timeout.as_millis()
            ));
        }
        pg.application_name(&c.application_name)
            .connect_timeout(c.connect_timeout)
            .ssl_mode(match self.connector {
                Connector::Plain => PgSslMode::Disable,
                // The connector does the checking; tokio-postgres only has to insist on TLS.
                Connector::Tls(_) => PgSslMode::Require,
            });
        Ok(pg)
    }

    /// Connects as `pg` says, over `early` when it goes to the same place: TCP, TLS and the
    /// login all before `deadline`.
    async fn connect(
        &self,
        pg: &PgConfig,
        early: Option<EarlyConnect>,
        deadline: Instant,
    ) -> Result<ClientWrapper, DbError> {
        let target = describe_target(pg);
        let timed_out = |target: String| DbError::ConnectTimeout {
            target,
            after: self.config.connect_timeout,
        };
        let early = match early {
            Some(e) => e
                .finish(pg, deadline)
                .await
                .map_err(|()| timed_out(target.clone()))?,
            None => None,
        };
        let attempt = async {
            match (&self.connector, early) {
                (Connector::Plain, None) => {
                    let (client, conn) = pg.connect(NoTls).await?;
                    Ok(ClientWrapper::new(client, tokio::spawn(drive(conn))))
                }
                (Connector::Tls(tls), None) => {
                    let (client, conn) = pg.connect(tls.clone()).await?;
                    Ok(ClientWrapper::new(client, tokio::spawn(drive(conn))))
                }
                // The same login over a socket already open: tokio-postgres still asks for
                // TLS (the SSL request, then the handshake against `host`) as `pg` says.
                (Connector::Plain, Some(stream)) => {
                    let (client, conn) = pg.connect_raw(stream, NoTls).await?;
                    Ok(ClientWrapper::new(client, tokio::spawn(drive(conn))))
                }
                (Connector::Tls(tls), Some(stream)) => {
                    // The name checked against the certificate, as tokio-postgres's own
                    // connect would give it: the one host `pg` names.
                    let host = match pg.get_hosts() {
                        [Host::Tcp(h)] => h.as_str(),
                        _ => "",
                    };
                    let Ok(tls) =
                        MakeTlsConnect::<TcpStream>::make_tls_connect(&mut tls.clone(), host);
                    let (client, conn) = pg.connect_raw(stream, tls).await?;
                    Ok(ClientWrapper::new(client, tokio::spawn(drive(conn))))
                }
            }
        };
        match tokio::time::timeout_at(deadline.into(), attempt).await {
            Ok(Ok(client)) => {
                crate::cold_start::mark("connect");
                Ok(client)
            }
            Ok(Err(source)) => Err(DbError::Connect { target, source }),
            Err(_) => Err(timed_out(target)),
        }
    }

    /// When a connection attempt starting now must be done.
    fn deadline(&self) -> Instant {
        Instant::now() + self.config.connect_timeout
    }
}

async fn drive<F: Future<Output = Result<(), tokio_postgres::Error>>>(conn: F) {
    if let Err(e) = conn.await {
        tracing::warn!(error = %e, "postgres connection ended");
    }
}

fn describe_target(pg: &PgConfig) -> String {
    let host = match pg.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "?".to_owned(),
    };
    let port = pg.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}/{}", pg.get_dbname().unwrap_or("-"))
}

impl managed::Manager for PgManager {
    type Type = ClientWrapper;
    type Error = DbError;

    async fn create(&self) -> Result<ClientWrapper, DbError> {
        let cache = match &self.credentials {
            Credentials::Secret(cache) => cache,
            Credentials::Url(_) => {
                return self
                    .connect(&self.pg_config(Login::Url)?, None, self.deadline())
                    .await;
            }
            // Signed now, for this connection: a token is only checked at connect time and
            // lasts 15 minutes, so one kept from an earlier connection could have expired.
            Credentials::Iam { tokens, .. } => {
                let token = tokens.token().await?;
                return self
                    .connect(&self.pg_config(Login::Token(token))?, None, self.deadline())
                    .await;
            }
        };
        // The secret's fetch is the longest wait of a cold start. When the address is known
        // without it, the TCP connection is started meanwhile. The attempt is timed from the
        // secret's arrival, as if it had started then; a failed fetch drops (stops) it.
        let early = EarlyConnect::start(&self.config);
        let secret = cache.get().await?;
        let deadline = self.deadline();
        match self
            .connect(&self.pg_config(Login::Secret(&secret))?, early, deadline)
            .await
        {
            Err(DbError::Connect { source, .. }) if is_auth_failure(&source) => {
                // The password was probably rotated since we cached it: fetch it once more.
                tracing::warn!(
                    "Postgres rejected the cached credentials; fetching the secret again"
                );
                let fresh = cache.refresh(&secret).await?;
                self.connect(
                    &self.pg_config(Login::Secret(&fresh))?,
                    None,
                    self.deadline(),
                )
                .await
            }
            other => other,
        }
    }

    async fn recycle(&self, client: &mut ClientWrapper, _: &Metrics) -> RecycleResult<DbError> {
        // No round trip here: a connection that died while frozen is caught by `Db::run`'s
        // retry, which costs only when it happens instead of on every invocation.
        if client.is_closed() {
            return Err(RecycleError::message("connection closed"));
        }
        Ok(())
    }
}

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
        let connector = Connector::new(config.sslmode, config.ca_bundle.as_deref())?;
        let credentials = match (&config.credentials, secrets_client) {
            (CredentialSource::Iam { target, dbname }, _) => {
                let sdk = sdk.ok_or_else(|| {
                    DbError::Pool("IAM authentication needs the SDK's credentials".into())
                })?;
                Credentials::Iam {
                    tokens: TokenSource::new(target.clone(), sdk)?,
                    dbname: dbname.clone(),
                }
            }
            (CredentialSource::SecretsManager { secret_id }, Some(client)) => {
                Credentials::Secret(Arc::new(SecretCache::new(client, secret_id.clone())))
            }
            (CredentialSource::SecretsManager { .. }, None) => {
                return Err(DbError::Pool(
                    "a Secrets Manager client is needed for DB_SECRET_ARN".into(),
                ));
            }
            (CredentialSource::Url(url), _) => Credentials::Url(url.clone()),
        };
        // Long enough for a cold connection: secret fetch, then connect, then one rotation retry.
        let wait = config.secret_timeout * 2 + config.connect_timeout * 2;
        let manager = PgManager {
            credentials,
            connector,
            config: config.clone(),
        };
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
    /// then. A setting no retry can fix (no host to connect to) is returned, to stop the cold
    /// start with the setting named.
    pub async fn warm_up(&self) -> Result<(), DbError> {
        match self.client().await {
            Ok(_) => tracing::debug!("database connection ready"),
            Err(e @ DbError::NoHost) => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "could not connect during init; will retry per invocation")
            }
        }
        Ok(())
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
