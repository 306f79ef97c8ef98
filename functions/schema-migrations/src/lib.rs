//! schema-migrations: the custom resource that applies the refinery migrations on every
//! deploy, from inside the VPC with the functions' own secret, before the functions that need
//! them are updated (they depend on it in the template).
//!
//! CloudFormation does not call it: its `ServiceToken` is cfn-responder, outside the VPC, which
//! invokes this function synchronously and answers CloudFormation with what it returns
//! ([`custom_resource::decide`]: status, reason, physical id, data). This function sends
//! nothing anywhere, so it needs no route out of the VPC to CloudFormation's response bucket.
//!
//! - Create and Update: apply every migration not yet applied, each in its own transaction;
//!   what is already applied is left alone, so a repeat changes nothing. A failing migration
//!   answers FAILED with the SQL error, and CloudFormation rolls the stack back.
//! - Delete: nothing. The data outlives the stack (and so do the jobs' logins, whose
//!   passwords die with the stack's secrets).
//!
//! After the migrations, Create and Update make each job's own login user from the secret
//! the stack made for it ([`logins`]): out of the box, no function but this one logs in as
//! the schema owner.
//!
//! One file: [`Config`] and the [`State`] built from it once ([`InitError`] when it cannot
//! be); [`handle`], one CloudFormation request answered; and [`apply`], what Create and Update
//! do, with its [`Error`].
#![forbid(unsafe_code)]
// The runtime's service stack nests the handler's future deeply.
#![recursion_limit = "256"]

pub mod logins;

use std::time::Duration;

use custom_resource::{Answered, Outcome, ProtocolError, Request, RequestType};
use lambda_runtime::LambdaEvent;
use refinery::Migration;
use serde_json::Value;
use shared::{
    db::{Db, DbConfig, DbError},
    deadline::{Deadline, LOCAL_CUSTOM_RESOURCE_BUDGET},
    env::{ConfigError, Env, ProcessEnv},
    migrate::MigrateError,
};

/// The physical id: one schema per stack, never replaced.
pub const PHYSICAL_ID: &str = "schema-migrations";

/// How long before the invocation's deadline a migration run still going is stopped, so that
/// the FAILED answer reaches cfn-responder before Lambda ends the invocation.
pub const ANSWER_MARGIN: Duration = Duration::from_secs(5);

/// The function's settings, read once at cold start.
#[derive(Debug, Clone)]
pub struct Config {
    pub db: DbConfig,
    /// The jobs' logins to make (`DB_JOB_LOGINS`), each with the secret that holds it.
    pub logins: Vec<logins::JobLogin>,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&ProcessEnv)
    }

    pub fn from_lookup(env: &impl Env) -> Result<Self, ConfigError> {
        Ok(Self {
            db: DbConfig::from_lookup(env)?,
            logins: logins::from_lookup(env)?,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Db(#[from] DbError),
}

/// What lives for the whole execution environment.
pub struct State {
    pub db: Db,
    /// The migrations to apply: this build's, embedded from `migrations/`.
    pub migrations: Vec<Migration>,
    pub logins: Vec<logins::JobLogin>,
    /// Reads and completes the jobs' login secrets.
    pub secrets: aws_sdk_secretsmanager::Client,
}

impl State {
    /// Builds the pool (no connection yet: a deploy is one invocation, which connects).
    pub async fn init(config: Config) -> Result<Self, InitError> {
        let sdk = shared::aws::sdk_config().await;
        Ok(Self {
            db: Db::from_config(&config.db, &sdk)?,
            migrations: shared::migrate::embedded(),
            secrets: aws_sdk_secretsmanager::Client::new(&sdk),
            logins: config.logins,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    #[error(transparent)]
    Login(#[from] logins::LoginError),
}

/// Handles one custom-resource request and returns the answer for cfn-responder to send: always
/// SUCCESS or FAILED with the cause, unless the request lacks the ids an answer carries.
pub async fn handle(state: &State, event: LambdaEvent<Value>) -> Result<Answered, ProtocolError> {
    let (payload, context) = event.into_parts();
    // A local Runtime API's deadline already past counts as a local budget, less the margin
    // so that the answer reaches cfn-responder (which read the same budget) in its time.
    let local = LOCAL_CUSTOM_RESOURCE_BUDGET.saturating_sub(ANSWER_MARGIN);
    Ok(custom_resource::decide(
        &payload,
        Deadline::of(&context, local).wall(),
        ANSWER_MARGIN,
        async |request| apply(state, request).await,
    )
    .await?)
}

/// Does what `request` asks: migrate on Create and Update, nothing on Delete.
pub async fn apply(state: &State, request: &Request) -> Result<Outcome, Error> {
    if request.request_type == RequestType::Delete {
        tracing::info!("Delete leaves the schema and its data as they are");
        return Ok(Outcome::new(PHYSICAL_ID));
    }
    let mut client = state.db.client().await?;
    let client: &mut tokio_postgres::Client = &mut client;
    let applied = shared::migrate::run_set(client, &state.migrations).await?;
    let version = state
        .migrations
        .iter()
        .map(|m| m.version())
        .max()
        .unwrap_or(0);
    let mut made = Vec::new();
    if !state.logins.is_empty() {
        let address = state
            .db
            .address()
            .await
            .map_err(logins::LoginError::Address)?;
        made = logins::ensure(&state.secrets, client, &address, &state.logins).await?;
    }
    if applied.is_empty() {
        tracing::info!(version, "schema already current; nothing applied");
    } else {
        tracing::info!(version, applied = ?applied, "migrations applied");
    }
    Ok(Outcome::new(PHYSICAL_ID)
        .with("Version", version)
        .with("Applied", applied.join(","))
        .with("Logins", made.join(",")))
}
