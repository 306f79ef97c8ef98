//! What can go wrong with the database, and which of it may pass by itself: the one
//! classification every function uses to answer retryable or permanent.

use std::time::Duration;

use tokio_postgres::error::SqlState;

use super::iam::IamError;
use crate::{secret::SecretError, tls::TlsError};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("could not get the database credentials: {0}")]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Iam(#[from] IamError),
    #[error("TLS configuration: {0}")]
    Tls(#[from] TlsError),
    #[error(
        "DB_HOST is not set and the secret names no host (RDS-managed secrets hold only the \
         user name and password): set DB_HOST to the database or RDS Proxy endpoint"
    )]
    NoHost,
    #[error(
        "DB_NAME is not set and the credentials name no database (RDS-managed secrets hold only \
         the user name and password): set DB_NAME; Postgres would otherwise pick the database \
         named after the user, the maintenance database `postgres` for the master user"
    )]
    NoDbName,
    #[error("could not connect to Postgres at {target}: {}", describe(source))]
    Connect {
        target: String,
        source: tokio_postgres::Error,
    },
    #[error("connecting to Postgres at {target} timed out after {after:?}")]
    ConnectTimeout { target: String, after: Duration },
    #[error("timed out after {0:?} waiting for a pooled connection")]
    PoolTimeout(Duration),
    #[error("the connection pool failed: {0}")]
    Pool(String),
    #[error("query failed: {}", describe(.0))]
    Query(#[from] tokio_postgres::Error),
}

impl DbError {
    /// Whether the same request can succeed if tried again later.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Secret(e) => e.is_retryable(),
            Self::Iam(e) => e.is_retryable(),
            Self::Tls(_) | Self::Pool(_) | Self::NoHost | Self::NoDbName => false,
            // An unreachable or restarting server, or a password mid-rotation: all pass.
            Self::Connect { .. } | Self::ConnectTimeout { .. } | Self::PoolTimeout(_) => true,
            Self::Query(e) => is_transient(e),
        }
    }

    /// Whether this looks like a server restarting or swamped: the connection was refused or
    /// cut, the server said it is starting up or shutting down, or the login did not finish
    /// within `DB_CONNECT_TIMEOUT_MS` (a burst of new environments logging in at once through
    /// a proxy). Worth retrying within the same invocation, after a short pause, while time
    /// remains.
    pub fn passes_soon(&self) -> bool {
        match self {
            Self::ConnectTimeout { .. } => true,
            Self::Connect { source, .. } => {
                is_connection_lost(source)
                    || source
                        .code()
                        .is_some_and(|c| *c == SqlState::CANNOT_CONNECT_NOW)
                    || io_error_kind(source).is_some_and(|k| {
                        matches!(
                            k,
                            std::io::ErrorKind::ConnectionRefused
                                | std::io::ErrorKind::ConnectionReset
                                | std::io::ErrorKind::ConnectionAborted
                        )
                    })
            }
            Self::Query(e) => is_connection_lost(e),
            _ => false,
        }
    }
}

impl DbError {
    /// Whether the database could not be reached in time: a connection refused, cut or timed
    /// out, no route to it, a server starting up, shutting down or full, a pool that handed out
    /// no connection in time, a statement cancelled by its timeout, or Secrets Manager (or the
    /// credentials behind an IAM token) out of reach. What an outage looks like, and passes by
    /// itself.
    ///
    /// Everything else is a setting or a grant to fix, and no wait fixes it: a login refused
    /// (SQLSTATE 28P01, 28000), a missing privilege (42501) or table, a database that is not
    /// there, a TLS certificate that does not verify, a host name that does not resolve, a
    /// secret denied, missing or encrypted with a key the role may not use.
    pub fn is_unreachable(&self) -> bool {
        match self {
            Self::ConnectTimeout { .. } | Self::PoolTimeout(_) => true,
            Self::Connect { source, .. } => {
                if is_auth_failure(source) {
                    return false;
                }
                match source.code() {
                    Some(c) => {
                        *c == SqlState::CANNOT_CONNECT_NOW
                            || *c == SqlState::ADMIN_SHUTDOWN
                            || *c == SqlState::CRASH_SHUTDOWN
                            || *c == SqlState::TOO_MANY_CONNECTIONS
                    }
                    None => {
                        source.is_closed() || io_error_kind(source).is_some_and(is_network_down)
                    }
                }
            }
            Self::Query(e) => is_transient(e),
            Self::Secret(e) => e.is_retryable(),
            Self::Iam(e) => e.is_retryable(),
            Self::Tls(_) | Self::NoHost | Self::NoDbName | Self::Pool(_) => false,
        }
    }
}

/// An I/O error that says the network path to the server is down or the server is not
/// listening, not that what came back was wrong (a TLS failure is `InvalidData`; a name that
/// does not resolve is none of these).
fn is_network_down(kind: std::io::ErrorKind) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        kind,
        K::ConnectionRefused
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::NotConnected
            | K::BrokenPipe
            | K::TimedOut
            | K::UnexpectedEof
            | K::HostUnreachable
            | K::NetworkUnreachable
            | K::NetworkDown
            | K::AddrNotAvailable
    )
}

/// The kind of the I/O error underneath a tokio-postgres error, if there is one.
fn io_error_kind(e: &tokio_postgres::Error) -> Option<std::io::ErrorKind> {
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        cause = c.source();
    }
    None
}

/// The error with its causes: tokio-postgres's own `Display` says only "db error" and leaves
/// the server's message (and the SQLSTATE) in the source chain.
pub fn describe(e: &tokio_postgres::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    if let Some(code) = e.code() {
        text.push_str(&format!(" (SQLSTATE {})", code.code()));
    }
    text
}

/// SQLSTATE 28P01/28000: the server refused the credentials.
pub fn is_auth_failure(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::INVALID_PASSWORD
            || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
    )
}

/// The connection itself is gone (closed socket, server shut down or restarting); the
/// statement never ran or its effect is unknown, so an idempotent statement can be re-sent.
pub fn is_connection_lost(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        return *code == SqlState::ADMIN_SHUTDOWN
            || *code == SqlState::CRASH_SHUTDOWN
            || *code == SqlState::CANNOT_CONNECT_NOW;
    }
    std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
}

/// A failure that may pass by itself: a lost connection, a statement or lock timeout, a
/// serialization failure or deadlock, too many connections.
pub fn is_transient(e: &tokio_postgres::Error) -> bool {
    if is_connection_lost(e) {
        return true;
    }
    matches!(
        e.code(),
        Some(c) if *c == SqlState::QUERY_CANCELED
            || *c == SqlState::LOCK_NOT_AVAILABLE
            || *c == SqlState::T_R_SERIALIZATION_FAILURE
            || *c == SqlState::T_R_DEADLOCK_DETECTED
            || *c == SqlState::TOO_MANY_CONNECTIONS
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn only_an_outage_counts_as_unreachable() {
        let target = "db:5432/app".to_owned();
        let after = Duration::from_millis(1500);
        assert!(DbError::ConnectTimeout { target, after }.is_unreachable());
        assert!(DbError::PoolTimeout(after).is_unreachable());
        // Settings no wait fixes (a login, a grant or a secret refused is read from the real
        // errors in tests/tests/pre_sign_up.rs).
        assert!(!DbError::NoHost.is_unreachable());
        assert!(!DbError::Pool("bad".into()).is_unreachable());
        assert!(!DbError::Secret(SecretError::NotAString).is_unreachable());
        assert!(!DbError::Secret(SecretError::Malformed("x".into())).is_unreachable());
        assert!(!DbError::Iam(IamError::NoCredentialsProvider).is_unreachable());
        for kind in [
            std::io::ErrorKind::ConnectionRefused,
            std::io::ErrorKind::TimedOut,
        ] {
            assert!(is_network_down(kind), "{kind:?}");
        }
        // What a TLS failure and a permission problem come as.
        for kind in [
            std::io::ErrorKind::InvalidData,
            std::io::ErrorKind::PermissionDenied,
        ] {
            assert!(!is_network_down(kind), "{kind:?}");
        }
    }
}
