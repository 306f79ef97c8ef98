//! The pool's manager: makes each connection with the credentials at hand (a cached secret,
//! fetched again when the server rejects it; a URL; or a fresh IAM token), over the TLS the
//! settings ask for, and checks a connection before it is handed out again.

use std::{sync::Arc, time::Instant};

use deadpool::managed::{self, Metrics, RecycleError, RecycleResult};
use deadpool_postgres::ClientWrapper;
use tokio_postgres::{
    Config as PgConfig, NoTls,
    config::{Host, SslMode as PgSslMode, SslNegotiation},
};

use super::early_connect::{Early, EarlyConnect, Handshaken};
use crate::{
    db::{
        config::{CredentialSource, DbConfig, Pooling},
        error::{DbError, is_auth_failure},
        iam::TokenSource,
    },
    secret::{DbSecret, SecretCache},
    tls::Connector,
};

/// Where a new connection's credentials come from.
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

/// Makes and checks connections for the pool.
pub struct PgManager {
    credentials: Credentials,
    connector: Connector,
    config: DbConfig,
}

impl PgManager {
    /// The manager for `config`: its TLS connector, and its credentials from the secret (with
    /// `secrets_client`), the URL, or IAM tokens signed with `sdk`'s credentials.
    pub(super) fn new(
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
        Ok(Self {
            credentials,
            connector,
            config: config.clone(),
        })
    }

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
        // Without a name, Postgres takes the user's: for the RDS master user, the maintenance
        // database `postgres`, where every row would silently land.
        match c.dbname_override.as_ref().or(dbname.as_ref()) {
            Some(db) => {
                pg.dbname(db);
            }
            None => return Err(DbError::NoDbName),
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
                // The same login over a socket already open.
                (_, Some(Early::Tcp(stream))) => {
                    let (client, conn) = pg.connect_raw(stream, NoTls).await?;
                    Ok(ClientWrapper::new(client, tokio::spawn(drive(conn))))
                }
                // Over a TLS session already made, verified against the same host: told
                // that TLS was negotiated directly, tokio-postgres sends no SSL request and
                // takes the stream as the one it would have made.
                (_, Some(Early::Tls(stream))) => {
                    let mut pg = pg.clone();
                    pg.ssl_negotiation(SslNegotiation::Direct);
                    let (client, conn) = pg.connect_raw(*stream, Handshaken).await?;
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

/// Where the pool's connections go: the host, port and database name a login user of the same
/// server needs in a secret of its own (see [`super::Db::address`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub dbname: Option<String>,
}

impl PgManager {
    /// The address the next connection goes to, overrides applied; with a secret, read from it.
    pub(super) async fn address(&self) -> Result<Address, DbError> {
        let pg = match &self.credentials {
            Credentials::Secret(cache) => {
                let secret = cache.get().await?;
                self.pg_config(Login::Secret(&secret))?
            }
            Credentials::Url(_) => self.pg_config(Login::Url)?,
            Credentials::Iam { tokens, dbname } => {
                let t = tokens.target();
                return Ok(Address {
                    host: self.config.host_override.clone().or(Some(t.host.clone())),
                    port: self.config.port_override.or(Some(t.port)),
                    dbname: self.config.dbname_override.clone().or(dbname.clone()),
                });
            }
        };
        Ok(Address {
            host: pg.get_hosts().first().map(|h| match h {
                Host::Tcp(h) => h.clone(),
                Host::Unix(p) => p.display().to_string(),
            }),
            port: pg.get_ports().first().copied(),
            dbname: pg.get_dbname().map(str::to_owned),
        })
    }
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
        let early = EarlyConnect::start(&self.config, &self.connector);
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
