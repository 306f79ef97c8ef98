//! What every function shares, built once per execution environment.
//!
//! | module | concept |
//! |---|---|
//! | [`env`](mod@env) | reading settings from the environment; [`env::ConfigError`] names the variable |
//! | [`db`] | database settings, error classification, IAM tokens, and the pool ([`db::Db`]) with rotation handling |
//! | [`secret`] | RDS credentials from Secrets Manager, cached, refreshed on rotation |
//! | [`signing`] | a stack's HMAC-SHA256 signing key, read from a secret the template generates |
//! | [`tls`] | rustls for Postgres (`disable`, `require`, `verify-full` with a CA bundle) |
//! | [`cold_start`] | debug lines timing each phase of a cold start, for the bench |
//! | [`entry`] | what every function's `main` shares: the runtime, logging, config and state read once, each phase marked |
//! | [`aws`] | one SDK config per environment and one way to build every client from it |
//! | [`errors`] | how handler errors reach Lambda (retryable or permanent) |
//! | [`deadline`] | the invocation's [`deadline::Deadline`], read once; a local Runtime API's past deadline reads as the function's budget |
//! | [`logging`] | JSON log lines carrying the invocation's request id |
//! | [`metrics`] | counts as CloudWatch metrics (Embedded Metric Format lines) for alarms |
//! | [`migrate`] | the versioned schema in `migrations/` |
//! | [`schema`] | the guard that stops a function on a schema older than its build |
//! | [`trigger`] | what the Cognito triggers share: their settings, their state, the time one event has within Cognito's wait, the row's insert with the schema guard |
//! | [`users`] | Cognito attributes to a `users` row ([`users::NewUser`]), the handle rules ([`users::handle_problem`]), the idempotent insert ([`users::insert_confirmed_user`]) |
//!
//! A function's `State::init` loads [`aws::sdk_config`] once and hands it to
//! [`db::Db::init`] and to every SDK client it builds with [`aws::with_timeout`].
#![forbid(unsafe_code)]
#![warn(unreachable_pub)]

pub mod aws;
pub mod cold_start;
pub mod db;
pub mod deadline;
pub mod entry;
pub mod env;
pub mod errors;
pub mod logging;
pub mod metrics;
pub mod migrate;
pub mod schema;
pub mod secret;
pub mod signing;
pub mod tls;
pub mod trigger;
pub mod users;
