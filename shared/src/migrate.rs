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

/// Applies every migration not yet applied; returns the names of those it applied.
pub async fn run(client: &mut tokio_postgres::Client) -> Result<Vec<String>, MigrateError> {
    let report = embedded::migrations::runner().run_async(client).await?;
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
