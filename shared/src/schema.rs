//! The schema guard: a function refuses to run against a database whose migration history is
//! behind what its build embeds, with one clear error instead of a confusing SQL one.
//!
//! Why this shape: the stack's migration step runs before the functions are updated, so a
//! behind schema is rare and usually passes (the step is still running, or failed and the
//! deploy is rolling back). So the check costs one `SELECT max(version)` at cold start or
//! first use, and once the schema is found current it is never asked again in that execution
//! environment (schemas only move forward). Until then every invocation asks again, on the
//! connection it uses anyway, so a migration applied meanwhile is picked up without a
//! restart, and the function never runs its queries on a schema it was not built for.
//!
//! A function whose first statement runs in a transaction can skip that round trip too:
//! [`SchemaGuard::guard_statement`] is a statement to send in the same round trip, just
//! before it, that fails the transaction (so the statement changes nothing) unless the schema
//! is current. Only a refusal then costs the query that says how far behind it is.

use std::{
    fmt,
    sync::atomic::{AtomicBool, Ordering},
};

use tokio_postgres::{SimpleQueryMessage, error::SqlState};

use crate::{db::Db, migrate};

/// The database's schema is older than this build needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SchemaBehind {
    /// The newest migration applied, or `None` when none is.
    pub at: Option<i32>,
    pub needs: i32,
}

impl fmt::Display for SchemaBehind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            Some(v) => write!(f, "schema at V{v}")?,
            None => f.write_str("schema has no migrations applied")?,
        }
        write!(
            f,
            "; this build needs V{}; the stack's migration step has not run",
            self.needs
        )
    }
}

/// The SQLSTATE the guard statement raises when the schema is behind ("schema behind").
const BEHIND: &str = "SB001";

/// Remembers, per execution environment, that the schema was found current.
#[derive(Debug)]
pub struct SchemaGuard {
    needs: i32,
    current: AtomicBool,
}

impl Default for SchemaGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl SchemaGuard {
    /// A guard for the newest migration this build embeds.
    pub fn new() -> Self {
        Self::needing(migrate::latest_version())
    }

    /// A guard for a given version.
    pub fn needing(needs: i32) -> Self {
        Self {
            needs,
            current: AtomicBool::new(false),
        }
    }

    pub fn needs(&self) -> i32 {
        self.needs
    }

    /// A statement that fails unless the schema is current, to run at the start of the
    /// transaction of a function's first statement, written together with it; `None` once
    /// the schema was found current. After it fails, [`SchemaGuard::refused`] says whether
    /// the failure is the guard's; after the transaction commits, call
    /// [`SchemaGuard::found_current`].
    pub fn guard_statement(&self) -> Option<String> {
        if self.current.load(Ordering::Relaxed) {
            return None;
        }
        // No history table at all fails the same way (undefined_table).
        Some(format!(
            "DO $guard$ BEGIN \
             IF coalesce((SELECT max(version) FROM refinery_schema_history), 0) < {needs} THEN \
             RAISE EXCEPTION 'schema behind V{needs}' USING ERRCODE = '{BEHIND}'; \
             END IF; END $guard$",
            needs = self.needs
        ))
    }

    /// Whether `e` is the guard statement's refusal: the schema is behind, or has no history.
    /// [`SchemaGuard::check`] then says by how much.
    pub fn refused(e: &tokio_postgres::Error) -> bool {
        e.code()
            .is_some_and(|c| c.code() == BEHIND || *c == SqlState::UNDEFINED_TABLE)
    }

    /// Records that the guard statement passed: no later call asks again.
    pub fn found_current(&self) {
        self.current.store(true, Ordering::Relaxed);
    }

    /// Checks on `client` unless the schema was already found current: no query then. The
    /// outer error is the query's (the caller classifies and retries it like its own); the
    /// inner one says the schema is behind.
    pub async fn check(
        &self,
        client: &tokio_postgres::Client,
    ) -> Result<Result<(), SchemaBehind>, tokio_postgres::Error> {
        if self.current.load(Ordering::Relaxed) {
            return Ok(Ok(()));
        }
        // A simple query: no prepared statement left behind on a pooled session.
        let at = match client
            .simple_query("SELECT max(version) FROM refinery_schema_history")
            .await
        {
            Ok(messages) => messages.iter().find_map(|m| match m {
                SimpleQueryMessage::Row(row) => row.get(0).and_then(|v| v.parse::<i32>().ok()),
                _ => None,
            }),
            Err(e) if e.code() == Some(&SqlState::UNDEFINED_TABLE) => None,
            Err(e) => return Err(e),
        };
        if at.is_some_and(|v| v >= self.needs) {
            self.current.store(true, Ordering::Relaxed);
            return Ok(Ok(()));
        }
        Ok(Err(SchemaBehind {
            at,
            needs: self.needs,
        }))
    }

    /// [`SchemaGuard::check`] on a pooled connection, for handlers that do not hold one yet.
    /// A database that cannot be asked is not this guard's to report: the handler's own query
    /// meets the same failure and reports it as it always has, and the next call asks again.
    pub async fn ensure(&self, db: &Db) -> Result<(), SchemaBehind> {
        if self.current.load(Ordering::Relaxed) {
            return Ok(());
        }
        match db.run(async |client| self.check(client).await).await {
            Ok(verdict) => verdict,
            Err(e) => {
                tracing::debug!(error = %e, "could not check the schema version; will ask again");
                Ok(())
            }
        }
    }

    /// Asks once at cold start (best effort), so that a current schema costs no query later.
    pub async fn warm_up(&self, db: &Db) {
        if let Err(e) = self.ensure(db).await {
            tracing::error!(error = %e, "the database schema is behind this build");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_names_both_versions_and_the_step_that_did_not_run() {
        let e = SchemaBehind {
            at: Some(2),
            needs: 6,
        };
        assert_eq!(
            e.to_string(),
            "schema at V2; this build needs V6; the stack's migration step has not run"
        );
        let none = SchemaBehind { at: None, needs: 6 };
        assert!(
            none.to_string()
                .starts_with("schema has no migrations applied; this build needs V6")
        );
    }

    #[test]
    fn the_guard_needs_the_newest_embedded_migration() {
        assert!(SchemaGuard::new().needs() >= 6);
        assert_eq!(SchemaGuard::new().needs(), migrate::latest_version());
    }
}
