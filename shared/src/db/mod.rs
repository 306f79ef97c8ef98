//! The database: its settings ([`config`]), what can go wrong and whether it passes by itself
//! ([`error`]), and the pool every invocation of an execution environment shares ([`pool`]).

pub mod config;
pub mod error;
pub mod pool;

pub use config::{CredentialSource, DbConfig};
pub use error::DbError;
pub use pool::{Db, PgManager, PooledClient};
