//! Schema migrations: the versioned `.sql` files in `migrations/`, embedded at build time and
//! applied in order by refinery, which records each in `refinery_schema_history`.

use crate::db::{Db, DbConfig, DbError};

mod embedded {
    refinery::embed_migrations!("../migrations");
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("migration failed: {0}")]
    Refinery(#[from] refinery::Error),
}

/// The migrations this build embeds, in order.
pub fn embedded() -> Vec<refinery::Migration> {
    embedded::migrations::runner().get_migrations().clone()
}

/// The newest version this build embeds: the schema its queries are written for.
pub fn latest_version() -> i32 {
    embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| m.version())
        .max()
        .unwrap_or(0)
}

/// Applies every migration not yet applied; returns the names of those it applied.
pub async fn run(client: &mut tokio_postgres::Client) -> Result<Vec<String>, MigrateError> {
    run_set(client, &embedded()).await
}

/// Applies every migration of `migrations` not yet applied, each in its own transaction.
pub async fn run_set(
    client: &mut tokio_postgres::Client,
    migrations: &[refinery::Migration],
) -> Result<Vec<String>, MigrateError> {
    let report = refinery::Runner::new(migrations).run_async(client).await?;
    Ok(report
        .applied_migrations()
        .iter()
        .map(|m| m.to_string())
        .collect())
}

/// Connects with the environment's database settings and applies the migrations.
pub async fn run_with(
    config: &DbConfig,
    sdk: &aws_config::SdkConfig,
) -> Result<Vec<String>, MigrateError> {
    let db = Db::from_config(config, sdk)?;
    let mut client = db.client().await?;
    let client: &mut tokio_postgres::Client = &mut client;
    run(client).await
}
