//! The database: its settings ([`config`]), what can go wrong and whether it passes by itself
//! ([`error`]), the pool every invocation of an execution environment shares ([`pool`]), the
//! statements that keep no session state for a transaction-pooling proxy ([`stateless`]), and
//! IAM authentication tokens ([`iam`]).

pub mod config;
pub mod error;
pub mod iam;
pub mod pool;
pub mod stateless;

pub use config::{CredentialSource, DbConfig, Pooling};
pub use error::DbError;
pub use pool::{Address, Db, PgManager, PooledClient};
