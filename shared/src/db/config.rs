//! Database settings, read from the environment once at cold start and validated there, so a
//! bad deployment fails with a message naming the variable instead of on some later invocation.

use std::{fmt, path::PathBuf, time::Duration};

use super::iam::IamTarget;
use crate::{
    env::{ConfigError, Env, ProcessEnv},
    tls::SslMode,
};

/// Where the database credentials come from.
#[derive(Clone)]
pub enum CredentialSource {
    /// An RDS-format secret in Secrets Manager (production).
    SecretsManager { secret_id: String },
    /// A connection URL (local runs and `sam local invoke` against a local database).
    Url(Box<tokio_postgres::Config>),
    /// IAM database authentication (`DB_AUTH=iam`): a token signed with the function's own
    /// credentials for every new connection, no password anywhere.
    Iam {
        target: IamTarget,
        dbname: Option<String>,
    },
}

impl fmt::Debug for CredentialSource {
    // The URL holds the password, so only say which kind of source this is.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SecretsManager { secret_id } => f
                .debug_struct("SecretsManager")
                .field("secret_id", secret_id)
                .finish(),
            Self::Url(_) => f.write_str("Url(<redacted>)"),
            Self::Iam { target, dbname } => f
                .debug_struct("Iam")
                .field("target", target)
                .field("dbname", dbname)
                .finish(),
        }
    }
}

/// Whether a connection may keep state in its database session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pooling {
    /// The connection is this environment's own database session (straight to the instance,
    /// or pinned by a proxy): `statement_timeout` is set once, as a startup option.
    #[default]
    Session,
    /// The connection may be shared per transaction by a proxy (RDS Proxy, PgBouncer): no
    /// startup options (RDS Proxy refuses them), no named statements, and each statement's
    /// timeout set inside its own transaction ([`super::stateless`]).
    Transaction,
}

impl std::str::FromStr for Pooling {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s.to_ascii_lowercase().as_str() {
            "session" => Ok(Self::Session),
            "transaction" => Ok(Self::Transaction),
            _ => Err(()),
        }
    }
}

/// Everything needed to build the connection pool.
#[derive(Debug, Clone)]
pub struct DbConfig {
    pub credentials: CredentialSource,
    /// Overrides for the secret's host, port and dbname (an RDS Proxy endpoint, say).
    pub host_override: Option<String>,
    pub port_override: Option<u16>,
    pub dbname_override: Option<String>,
    pub sslmode: SslMode,
    /// PEM bundle of the CAs trusted for `verify-full` (the RDS global bundle in production).
    pub ca_bundle: Option<PathBuf>,
    pub pool_size: usize,
    /// Bounds TCP connect, TLS handshake and authentication together.
    pub connect_timeout: Duration,
    /// Sent to the server as `statement_timeout`, so a lock wait ends as an error, not a hang.
    pub statement_timeout: Duration,
    /// Bounds one GetSecretValue call, retries included.
    pub secret_timeout: Duration,
    pub application_name: String,
    /// Chosen by the function, not the environment: what its statements need from a session.
    pub pooling: Pooling,
}

impl DbConfig {
    /// [`DbConfig::from_lookup`] for a Cognito trigger: one connection per environment and one
    /// statement per sign-up, fanned in through RDS Proxy when there is one, so by default it
    /// keeps nothing in the database session (`DB_POOLING=transaction`). Straight to the
    /// instance (`DB_POOLING=session`, as the template sets it without a proxy) the session is
    /// its own: the statement timeout is set once at login.
    pub fn for_trigger(env: &impl Env) -> Result<Self, ConfigError> {
        Ok(Self {
            pooling: env.parse_or(
                "DB_POOLING",
                Pooling::Transaction,
                "transaction (behind RDS Proxy or PgBouncer) or session (straight to Postgres)",
            )?,
            ..Self::from_lookup(env)?
        })
    }

    /// Reads the database settings from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&ProcessEnv)
    }

    /// Reads the database settings from any variable source.
    pub fn from_lookup(env: &impl Env) -> Result<Self, ConfigError> {
        let iam = match env.non_empty("DB_AUTH").as_deref() {
            None | Some("password") => false,
            Some("iam") => true,
            Some(_) => {
                return Err(ConfigError::invalid(
                    "DB_AUTH",
                    "one of password (the default: DB_SECRET_ARN or DATABASE_URL) or iam",
                ));
            }
        };
        let credentials = match (
            env.non_empty("DB_SECRET_ARN"),
            env.non_empty("DATABASE_URL"),
        ) {
            _ if iam => iam_source(env)?,
            (Some(secret_id), _) => CredentialSource::SecretsManager { secret_id },
            (None, Some(url)) => {
                // tokio-postgres's own parse errors can quote the URL, password included.
                let parsed = url.parse::<tokio_postgres::Config>().map_err(|_| {
                    ConfigError::invalid(
                        "DATABASE_URL",
                        "not a valid postgres:// URL or key=value connection string",
                    )
                })?;
                if parsed.get_user().is_none() {
                    return Err(ConfigError::invalid("DATABASE_URL", "it names no user"));
                }
                CredentialSource::Url(Box::new(parsed))
            }
            (None, None) => {
                return Err(ConfigError::missing("DB_SECRET_ARN or DATABASE_URL", None));
            }
        };

        let sslmode: SslMode = env.parse_or(
            "DB_SSLMODE",
            SslMode::VerifyFull,
            "one of disable, require, verify-full",
        )?;
        let ca_bundle = env.non_empty("DB_CA_BUNDLE").map(PathBuf::from);
        if iam && sslmode != SslMode::VerifyFull {
            // A token is a password good for 15 minutes: over TLS that checks no certificate
            // (`require`), a man in the middle would receive it and could log in with it.
            return Err(ConfigError::invalid(
                "DB_SSLMODE",
                "DB_AUTH=iam sends a signed token as the password: it needs verify-full (TLS \
                 that checks the server's certificate and name; under require a man in the \
                 middle would receive the token)",
            ));
        }

        let port_override = match env.non_empty("DB_PORT") {
            None => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| ConfigError::invalid("DB_PORT", "expected a port, 1-65535"))?,
            ),
        };

        let pool_size = env.parse_or("DB_POOL_SIZE", 1usize, "a whole number")?;
        if !(1..=64).contains(&pool_size) {
            return Err(ConfigError::invalid(
                "DB_POOL_SIZE",
                "must be between 1 and 64",
            ));
        }

        Ok(Self {
            credentials,
            host_override: env.non_empty("DB_HOST"),
            port_override,
            dbname_override: env.non_empty("DB_NAME"),
            sslmode,
            ca_bundle,
            pool_size,
            connect_timeout: env.millis_or("DB_CONNECT_TIMEOUT_MS", 1500, 100..=60_000)?,
            statement_timeout: env.millis_or("DB_STATEMENT_TIMEOUT_MS", 2000, 100..=600_000)?,
            secret_timeout: env.millis_or("SECRET_FETCH_TIMEOUT_MS", 1500, 100..=60_000)?,
            application_name: env
                .non_empty("AWS_LAMBDA_FUNCTION_NAME")
                .unwrap_or_else(|| "lambda".to_owned()),
            pooling: Pooling::Session,
        })
    }
}

/// `DB_AUTH=iam`: the endpoint, port and user the token is signed for, and the region.
fn iam_source(env: &impl Env) -> Result<CredentialSource, ConfigError> {
    let need = |var: &'static str, what: &'static str| {
        env.non_empty(var)
            .ok_or_else(|| ConfigError::missing(var, Some(what)))
    };
    let host = need(
        "DB_HOST",
        "when DB_AUTH=iam: the database or RDS Proxy endpoint the token is signed for",
    )?;
    let user = need(
        "DB_USER",
        "when DB_AUTH=iam: the database user granted rds_iam",
    )?;
    let region = match env.non_empty("DB_IAM_REGION") {
        Some(r) => r,
        None => need(
            "AWS_REGION",
            "when DB_AUTH=iam (or DB_IAM_REGION): the database's region",
        )?,
    };
    let port = match env.non_empty("DB_PORT") {
        None => 5432,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| ConfigError::invalid("DB_PORT", "expected a port, 1-65535"))?,
    };
    Ok(CredentialSource::Iam {
        target: IamTarget {
            host,
            port,
            user,
            region,
        },
        dbname: env.non_empty("DB_NAME"),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&'static str, &'static str)]) -> Result<DbConfig, ConfigError> {
        DbConfig::from_lookup(&vars.iter().copied().collect::<HashMap<_, _>>())
    }

    #[test]
    fn needs_a_credential_source() {
        let err = config(&[("DB_SSLMODE", "disable")]).unwrap_err();
        assert_eq!(err.to_string(), "DB_SECRET_ARN or DATABASE_URL must be set");
    }

    #[test]
    fn secret_arn_wins_over_url() {
        let cfg = config(&[
            (
                "DB_SECRET_ARN",
                "arn:aws:secretsmanager:us-east-1:1:secret:db",
            ),
            ("DATABASE_URL", "postgres://u:p@h/d"),
            ("DB_CA_BUNDLE", "/ca.pem"),
        ])
        .unwrap();
        assert!(matches!(
            cfg.credentials,
            CredentialSource::SecretsManager { .. }
        ));
        assert_eq!(cfg.sslmode, SslMode::VerifyFull);
        assert_eq!(cfg.pool_size, 1);
        assert_eq!(cfg.connect_timeout, Duration::from_millis(1500));
    }

    #[test]
    fn verify_full_without_a_bundle_trusts_the_compiled_in_cas() {
        let cfg = config(&[("DATABASE_URL", "postgres://u:p@h/d")]).unwrap();
        assert_eq!(cfg.sslmode, SslMode::VerifyFull);
        assert_eq!(cfg.ca_bundle, None);
    }

    #[test]
    fn bad_values_name_the_variable_and_never_echo_it() {
        let cases = [
            ("DB_SSLMODE", "prefer", "DB_SSLMODE is invalid"),
            ("DB_PORT", "0", "DB_PORT is invalid"),
            ("DB_POOL_SIZE", "0", "DB_POOL_SIZE is invalid"),
            (
                "DB_CONNECT_TIMEOUT_MS",
                "soon",
                "DB_CONNECT_TIMEOUT_MS is invalid",
            ),
            (
                "DB_STATEMENT_TIMEOUT_MS",
                "5",
                "DB_STATEMENT_TIMEOUT_MS is invalid",
            ),
        ];
        for (var, value, expected) in cases {
            let err = config(&[
                ("DATABASE_URL", "postgres://u:p@h/d"),
                ("DB_SSLMODE", "disable"),
                (var, value),
            ])
            .unwrap_err();
            assert!(
                err.to_string().starts_with(expected),
                "{var}={value}: {err}"
            );
        }
    }

    #[test]
    fn iam_takes_its_endpoint_user_and_region_from_config_and_insists_on_tls() {
        let cfg = config(&[
            ("DB_AUTH", "iam"),
            ("DB_HOST", "proxy.example"),
            ("DB_USER", "app"),
            ("AWS_REGION", "eu-west-1"),
            ("DB_CA_BUNDLE", "/ca.pem"),
        ])
        .unwrap();
        let CredentialSource::Iam { target, dbname } = cfg.credentials else {
            panic!("expected IAM credentials");
        };
        assert_eq!(
            target,
            IamTarget {
                host: "proxy.example".into(),
                port: 5432,
                user: "app".into(),
                region: "eu-west-1".into()
            }
        );
        assert_eq!(dbname, None);

        let err = config(&[("DB_AUTH", "iam"), ("DB_HOST", "h"), ("AWS_REGION", "r")]).unwrap_err();
        assert!(err.to_string().starts_with("DB_USER must be set"), "{err}");
        let err = config(&[
            ("DB_AUTH", "iam"),
            ("DB_HOST", "h"),
            ("DB_USER", "u"),
            ("AWS_REGION", "r"),
            ("DB_SSLMODE", "disable"),
        ])
        .unwrap_err();
        assert!(
            err.to_string().starts_with("DB_SSLMODE is invalid"),
            "{err}"
        );
        let err = config(&[
            ("DB_AUTH", "iam"),
            ("DB_HOST", "h"),
            ("DB_USER", "u"),
            ("AWS_REGION", "r"),
            ("DB_SSLMODE", "require"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("verify-full"), "{err}");
        let err = config(&[("DB_AUTH", "kerberos")]).unwrap_err();
        assert!(err.to_string().starts_with("DB_AUTH is invalid"), "{err}");
    }

    #[test]
    fn a_malformed_url_does_not_leak_its_password() {
        let err = config(&[
            ("DATABASE_URL", "postgres://u:hunter2@h:notaport/d"),
            ("DB_SSLMODE", "disable"),
        ])
        .unwrap_err();
        assert!(
            err.to_string().starts_with("DATABASE_URL is invalid"),
            "{err}"
        );
        assert!(!err.to_string().contains("hunter2"));
        let ok = config(&[
            ("DATABASE_URL", "postgres://u:hunter2@h/d"),
            ("DB_SSLMODE", "disable"),
        ])
        .unwrap();
        assert!(!format!("{ok:?}").contains("hunter2"));
    }
}
