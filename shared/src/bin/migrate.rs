//! `migrate`: applies the schema migrations to the database the environment names
//! (DB_SECRET_ARN or DATABASE_URL, as the functions read them).

use shared::{aws, db::DbConfig, migrate};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = DbConfig::from_env()?;
    let sdk = aws::sdk_config().await;
    let applied = migrate::run_with(&config, &sdk).await?;
    if applied.is_empty() {
        println!("migrate: schema is up to date");
    } else {
        for name in applied {
            println!("migrate: applied {name}");
        }
    }
    Ok(())
}
