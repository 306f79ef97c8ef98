//! What every function shares, built once per execution environment:
//!
//! - [`config`]: database settings from the environment, validated at cold start.
//! - [`secret`]: RDS credentials from Secrets Manager, cached, refreshed on rotation.
//! - [`tls`]: rustls for Postgres (`disable`, `require`, `verify-full` with a CA bundle).
//! - [`db`]: the deadpool-postgres pool, with rotation and dead-connection handling.
//! - [`errors`]: how handler errors reach Lambda (retryable or permanent).
//! - [`aws`]: SDK clients from `aws-config` (so `AWS_ENDPOINT_URL` reaches an emulator).
//! - [`logging`]: JSON log lines carrying the invocation's request id.
//! - [`migrate`]: the versioned schema in `migrations/`.
//! - [`users`]: mapping Cognito attributes to a `users` row and inserting it idempotently.
#![forbid(unsafe_code)]

pub mod aws;
pub mod config;
pub mod db;
pub mod errors;
pub mod logging;
pub mod migrate;
pub mod secret;
pub mod tls;
pub mod users;
