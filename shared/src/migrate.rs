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

mod version {
    include!(concat!(env!("OUT_DIR"), "/schema_version.rs"));
}

/// The newest version this build embeds: the schema its queries are written for. Read from the
/// file names at build time (`build.rs`), which refinery parses again only to apply them.
pub const fn latest_version() -> i32 {
    version::LATEST_VERSION
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_worked_out_at_build_is_the_newest_refinery_embeds() {
        let newest = embedded().iter().map(|m| m.version()).max();
        assert_eq!(Some(latest_version()), newest);
        assert!(latest_version() >= 7, "V7 is in migrations/");
    }
}
