//! Schema migrations: the versioned `.sql` files in `migrations/`, embedded at build time and
//! applied in order by refinery, which records each in `refinery_schema_history`.
//!
//! A rollback redeploys an earlier build against a database a later build has migrated. The
//! migrations are additive (a later build adds, never takes away what an earlier one reads),
//! so that build must run: the history may go past what it embeds. What it must still refuse
//! is a history that diverges from its own: a migration of its version with another name or
//! checksum, an unknown migration older than its newest, or one of its own skipped while a
//! newer one was applied. [`check_history`] decides that before refinery runs, and refinery's
//! own "missing from the filesystem" check, which refuses every rollback, is turned off.

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
    #[error("reading the migration history: {0}")]
    History(#[source] tokio_postgres::Error),
    #[error(transparent)]
    Diverged(#[from] Divergence),
}

/// A migration recorded in `refinery_schema_history`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub version: i32,
    pub name: String,
    pub checksum: String,
}

/// Why a database's migration history is not one this build may run on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Divergence {
    #[error(
        "the database applied V{version}__{applied} but this build's V{version} is {ours}: \
         the histories diverge"
    )]
    OtherMigration {
        version: i32,
        applied: String,
        ours: String,
    },
    #[error(
        "the database applied V{version}__{name} with another checksum than this build's: \
         an applied migration was edited"
    )]
    Edited { version: i32, name: String },
    #[error(
        "the database applied V{version}__{name}, which this build (newest V{newest}) does not \
         have: the histories diverge"
    )]
    Unknown {
        version: i32,
        name: String,
        newest: i32,
    },
    #[error(
        "this build's V{version}__{name} was never applied, yet the database is at V{at}: \
         the histories diverge"
    )]
    Skipped { version: i32, name: String, at: i32 },
}

/// What a history holds beyond this build: the migrations of a later build, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryCheck {
    pub ahead: Vec<String>,
}

/// Decides whether `migrations` may be applied on a database whose history is `applied`: it
/// may when every applied migration this build has is the same one, and every other one is
/// newer than anything this build has (a later build's, left in place by a rollback).
pub fn check_history(
    applied: &[Applied],
    migrations: &[refinery::Migration],
) -> Result<HistoryCheck, Divergence> {
    let newest = migrations.iter().map(|m| m.version()).max().unwrap_or(-1);
    let mut ahead = Vec::new();
    for a in applied {
        match migrations.iter().find(|m| m.version() == a.version) {
            Some(m) if m.name() != a.name => {
                return Err(Divergence::OtherMigration {
                    version: a.version,
                    applied: a.name.clone(),
                    ours: m.name().to_owned(),
                });
            }
            Some(m) if m.checksum().to_string() != a.checksum => {
                return Err(Divergence::Edited {
                    version: a.version,
                    name: a.name.clone(),
                });
            }
            Some(_) => {}
            None if a.version > newest => ahead.push(format!("V{}__{}", a.version, a.name)),
            None => {
                return Err(Divergence::Unknown {
                    version: a.version,
                    name: a.name.clone(),
                    newest,
                });
            }
        }
    }
    if let Some(at) = applied.iter().map(|a| a.version).max() {
        let skipped = migrations
            .iter()
            .filter(|m| m.version() < at && !applied.iter().any(|a| a.version == m.version()))
            .min_by_key(|m| m.version());
        if let Some(m) = skipped {
            return Err(Divergence::Skipped {
                version: m.version(),
                name: m.name().to_owned(),
                at,
            });
        }
    }
    Ok(HistoryCheck { ahead })
}

/// The database's migration history; empty when no migration was ever applied.
pub async fn history(client: &tokio_postgres::Client) -> Result<Vec<Applied>, MigrateError> {
    let rows = match client
        .query(
            "SELECT version, coalesce(name, ''), coalesce(checksum, '') \
             FROM refinery_schema_history ORDER BY version",
            &[],
        )
        .await
    {
        Ok(rows) => rows,
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => {
            return Ok(Vec::new());
        }
        Err(e) => return Err(MigrateError::History(e)),
    };
    Ok(rows
        .iter()
        .map(|r| Applied {
            version: r.get(0),
            name: r.get(1),
            checksum: r.get(2),
        })
        .collect())
}

/// The migrations this build embeds, in version order (refinery keeps them in file-name
/// order, which puts V10 before V2).
pub fn embedded() -> Vec<refinery::Migration> {
    let mut migrations = embedded::migrations::runner().get_migrations().clone();
    migrations.sort_by_key(refinery::Migration::version);
    migrations
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

/// Applies every migration of `migrations` not yet applied, each in its own transaction, after
/// [`check_history`] found the database's history compatible with them.
pub async fn run_set(
    client: &mut tokio_postgres::Client,
    migrations: &[refinery::Migration],
) -> Result<Vec<String>, MigrateError> {
    let check = check_history(&history(client).await?, migrations)?;
    if !check.ahead.is_empty() {
        tracing::warn!(
            ahead = ?check.ahead,
            "the database has migrations of a later build; they stay, and this build runs on them"
        );
    }
    // The history was checked above, a later build's migrations allowed: refinery's own check
    // would refuse them. It still refuses a migration of the same version that differs.
    let report = refinery::Runner::new(migrations)
        .set_abort_missing(false)
        .set_abort_divergent(true)
        .run_async(client)
        .await?;
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

    fn ours() -> Vec<refinery::Migration> {
        ["V1__users", "V2__rules", "V3__drift"]
            .iter()
            .map(|name| refinery::Migration::unapplied(name, "SELECT 1").unwrap())
            .collect()
    }

    fn applied(m: &refinery::Migration) -> Applied {
        Applied {
            version: m.version(),
            name: m.name().to_owned(),
            checksum: m.checksum().to_string(),
        }
    }

    fn later(version: i32, name: &str) -> Applied {
        Applied {
            version,
            name: name.to_owned(),
            checksum: "1".to_owned(),
        }
    }

    #[test]
    fn a_history_of_this_build_or_behind_it_is_applied_on() {
        let ours = ours();
        assert_eq!(check_history(&[], &ours), Ok(HistoryCheck::default()));
        let two: Vec<_> = ours[..2].iter().map(applied).collect();
        assert_eq!(check_history(&two, &ours), Ok(HistoryCheck::default()));
    }

    #[test]
    fn a_later_builds_migrations_are_left_in_place_and_named() {
        let ours = ours();
        let mut history: Vec<_> = ours.iter().map(applied).collect();
        history.push(later(4, "roles"));
        history.push(later(5, "more"));
        assert_eq!(
            check_history(&history, &ours),
            Ok(HistoryCheck {
                ahead: vec!["V4__roles".into(), "V5__more".into()]
            })
        );
    }

    #[test]
    fn a_history_that_diverges_is_refused_with_what_differs() {
        let ours = ours();
        let mut other = vec![applied(&ours[0]), later(2, "someone_elses")];
        assert!(matches!(
            check_history(&other, &ours),
            Err(Divergence::OtherMigration { version: 2, .. })
        ));
        other[1] = Applied {
            checksum: "42".into(),
            ..applied(&ours[1])
        };
        assert!(matches!(
            check_history(&other, &ours),
            Err(Divergence::Edited { version: 2, .. })
        ));
        // Unknown below our newest: a branch we never had, not a later build.
        let mut ours_with_gap = ours.clone();
        ours_with_gap.remove(1);
        let history: Vec<_> = ours.iter().map(applied).collect();
        let refused = check_history(&history, &ours_with_gap).unwrap_err();
        assert!(matches!(
            refused,
            Divergence::Unknown {
                version: 2,
                newest: 3,
                ..
            }
        ));
        // One of ours skipped while a newer one was applied.
        let skipped = vec![applied(&ours[0]), applied(&ours[2])];
        let refused = check_history(&skipped, &ours).unwrap_err();
        assert_eq!(
            refused,
            Divergence::Skipped {
                version: 2,
                name: "rules".into(),
                at: 3
            }
        );
        assert!(refused.to_string().contains("V2__rules was never applied"));
    }
}
