//! Behind a pooler: post-confirmation through PgBouncer (transaction pooling, the local
//! stand-in for RDS Proxy) beside the direct path. A burst from more environments than the
//! pooler keeps server connections; the same burst straight to a Postgres whose
//! `max_connections` is below the number of environments, what the overflow gets, and whether
//! one drift-check then leaves anybody lost; warm and cold cost of the extra hop; and the two
//! ways to bound a statement without session state (`SET LOCAL` vs a client-side deadline).

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicI64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use futures_util::future::join_all;
use harness::{Function, Outcome, Route, TestDb, fixtures};
use serde_json::json;
use shared::{
    db::{CredentialSource, Db, DbConfig, Pooling, stateless},
    tls::SslMode,
};
use tokio_postgres::types::Type;

use crate::{
    fixtures::confirmed_user,
    setup::Setup,
    stats::ms,
    subjects::{self, Run, Subject},
};

/// Environments in each burst; sign-ups per environment.
pub const ENVIRONMENTS: usize = 200;
pub const PER_ENVIRONMENT: usize = 10;
/// PgBouncer's server pool (`scripts/stack`'s `default_pool_size`).
pub const SERVER_POOL: usize = 20;
/// Postgres's `max_connections` for the direct burst: below the number of environments.
pub const TIGHT_MAX_CONNECTIONS: i64 = 100;

/// One burst as the driver saw it.
pub struct Wave {
    pub ok: usize,
    /// Error type (as Lambda reports it) and how many.
    pub errors: BTreeMap<String, usize>,
    /// One error message of each type, cut short.
    pub samples: BTreeMap<String, String>,
    /// Errors past each environment's first sign-up: the first one also opens the connection
    /// when the one made during init failed (200 logins at once, TLS and SCRAM each).
    pub errors_after_first: usize,
    pub slowest_error_ms: f64,
    pub slowest_ok_ms: f64,
    pub secs: f64,
    /// Peak server connections to the burst's database (`pg_stat_activity`).
    pub peak_server_connections: i64,
}

impl Wave {
    pub fn error_count(&self) -> usize {
        self.errors.values().sum()
    }
}

/// The direct burst past `max_connections`, then one drift-check.
pub struct Overflow {
    pub wave: Wave,
    pub max_connections: i64,
    pub rows_after_burst: i64,
    pub drift_status: String,
    pub rows_after_drift_check: i64,
}

/// Warm and cold, one subject each way.
pub struct Hop {
    pub pooled: Run,
    pub direct: Run,
}

/// One way of bounding a statement, timed on the happy path.
pub struct TimeoutStyle {
    pub style: &'static str,
    pub route: &'static str,
    pub samples_ms: Vec<f64>,
}

pub struct Pooler {
    pub pooled: Wave,
    pub overflow: Overflow,
    pub hop: Hop,
    pub timeouts: Vec<TimeoutStyle>,
}

pub async fn measure(s: &Setup) -> Result<Pooler> {
    eprintln!("bench: pooler: statement timeout styles");
    let timeouts = timeout_styles(s).await?;
    eprintln!("bench: pooler: warm and cold through PgBouncer and direct");
    let hop = hop(s).await?;
    eprintln!("bench: pooler: burst through PgBouncer");
    let db = s.stack.fresh_database().await?;
    let users = sign_ups("pooled");
    let pooled = wave(&db, Route::Pooler, &users, s).await?;
    eprintln!("bench: pooler: burst straight to a Postgres with too few connections");
    let overflow = overflow(s).await?;
    Ok(Pooler {
        pooled,
        overflow,
        hop,
        timeouts,
    })
}

/// (sub, handle, email) for every sign-up of a burst.
fn sign_ups(tag: &str) -> Vec<(String, String, String)> {
    (0..ENVIRONMENTS * PER_ENVIRONMENT)
        .map(|i| {
            let handle = fixtures::unique(&format!("{tag}{i}")).replace('-', "");
            (
                fixtures::unique(&format!("{tag}-{i}")),
                handle.clone(),
                format!("{handle}@example.com"),
            )
        })
        .collect()
}

/// Each route as the template wires post-confirmation: its own session straight to Postgres,
/// nothing kept in it through the pooler.
fn function_env(db: &TestDb, route: Route, s: &Setup) -> Vec<(String, String)> {
    let pooling: &[(&str, &str)] = match route {
        Route::Direct => &[("DB_POOLING", "session")],
        Route::Pooler => &[],
    };
    fixtures::function_env_via(db, &s.stack, route, pooling)
}

/// [`ENVIRONMENTS`] environments, each sending [`PER_ENVIRONMENT`] sign-ups in turn.
async fn wave(
    db: &TestDb,
    route: Route,
    users: &[(String, String, String)],
    s: &Setup,
) -> Result<Wave> {
    let env = function_env(db, route, s);
    let binary = s.release.join("post-confirmation");
    let mut envs = Vec::new();
    for _ in 0..ENVIRONMENTS {
        envs.push(Function::spawn_program("post-confirmation", &binary, &[], &env).await?);
    }
    for f in &envs {
        f.wait_initialised(Duration::from_secs(60)).await;
    }
    let peak = Arc::new(AtomicI64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (peak, stop, admin, name) = (
            peak.clone(),
            stop.clone(),
            s.stack.admin("postgres").await?,
            db.name.clone(),
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let sql =
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND usename = 'app'";
                if let Ok(r) = admin.query_one(sql, &[&name]).await {
                    peak.fetch_max(r.get(0), Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let started = Instant::now();
    let lanes = envs.iter().enumerate().map(|(lane, f)| async move {
        let mut seen = Vec::new();
        for i in 0..PER_ENVIRONMENT {
            let (sub, handle, email) = &users[lane * PER_ENVIRONMENT + i];
            let inv = f
                .invoke(&fixtures::signup_with_email(sub, handle, email))
                .await;
            seen.push((i, inv.outcome, ms(inv.elapsed)));
        }
        seen
    });
    let outcomes: Vec<_> = join_all(lanes).await.into_iter().flatten().collect();
    let secs = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    watcher.await?;
    for f in envs {
        f.stop().await;
    }
    let mut w = Wave {
        ok: 0,
        errors: BTreeMap::new(),
        samples: BTreeMap::new(),
        errors_after_first: 0,
        slowest_error_ms: 0.0,
        slowest_ok_ms: 0.0,
        secs,
        peak_server_connections: peak.load(Ordering::Relaxed),
    };
    for (i, outcome, elapsed) in outcomes {
        let (kind, message) = match outcome {
            Outcome::Response(_) => {
                w.ok += 1;
                w.slowest_ok_ms = w.slowest_ok_ms.max(elapsed);
                continue;
            }
            Outcome::Error {
                error_type,
                error_message,
            } => (error_type, error_message),
            Outcome::Exited(e) => ("(process exited)".to_owned(), e),
            Outcome::TimedOut => ("(no answer)".to_owned(), String::new()),
        };
        w.slowest_error_ms = w.slowest_error_ms.max(elapsed);
        w.errors_after_first += usize::from(i > 0);
        *w.errors.entry(kind.clone()).or_default() += 1;
        w.samples
            .entry(kind)
            .or_insert_with(|| message.chars().take(160).collect());
    }
    Ok(w)
}

/// The direct burst with `max_connections` below the number of environments, then one
/// drift-check (remediate) against Cognito, where every sign-up is a confirmed user.
async fn overflow(s: &Setup) -> Result<Overflow> {
    let db = s.stack.fresh_database().await?;
    // Every sign-up is a confirmed Cognito user, under the sub Cognito gave it.
    let pool = harness::aws::create_pool(&s.cognito).await;
    let mut users = Vec::new();
    for chunk in sign_ups("direct").chunks(50) {
        let created = join_all(
            chunk
                .iter()
                .map(|(_, handle, email)| confirmed_user(&s.cognito, &pool, handle, email)),
        )
        .await;
        for ((_, handle, email), sub) in chunk.iter().zip(created) {
            users.push((sub?, handle.clone(), email.clone()));
        }
    }
    set_max_connections(s, Some(TIGHT_MAX_CONNECTIONS)).await?;
    let measured = wave(&db, Route::Direct, &users, s).await;
    set_max_connections(s, None).await?;
    let wave = measured?;
    let count = async || -> Result<i64> {
        Ok(db
            .connect_as_app()
            .await?
            .query_one("SELECT count(*) FROM users", &[])
            .await?
            .get(0))
    };
    let rows_after_burst = count().await?;
    let mut env = db.url_env();
    env.push(("USER_POOL_ID".into(), pool.clone()));
    env.push(("DRIFT_MODE".into(), "remediate".into()));
    let drift = Subject::Rust {
        name: "drift-check",
        env,
    };
    let f = drift.spawn(s).await?;
    let inv = f.invoke_within(&json!({}), Duration::from_secs(900)).await;
    f.stop().await;
    let drift_status = match &inv.outcome {
        Outcome::Response(v) => format!(
            "{} (missing_user {})",
            v["status"].as_str().unwrap_or("?"),
            v["counts"]["missing_user"]
        ),
        other => format!("{other:?}"),
    };
    Ok(Overflow {
        wave,
        max_connections: TIGHT_MAX_CONNECTIONS,
        rows_after_burst,
        drift_status,
        rows_after_drift_check: count().await?,
    })
}

/// Sets (or resets) `max_connections` and restarts Postgres for it to apply.
async fn set_max_connections(s: &Setup, value: Option<i64>) -> Result<()> {
    let admin = s.stack.admin("postgres").await?;
    match value {
        Some(v) => {
            admin
                .batch_execute(&format!("ALTER SYSTEM SET max_connections = {v}"))
                .await?
        }
        None => {
            admin
                .batch_execute("ALTER SYSTEM RESET max_connections")
                .await?
        }
    }
    drop(admin);
    s.stack.pg_restart();
    Ok(())
}

/// Cold starts and warm invocations through PgBouncer and straight to Postgres.
async fn hop(s: &Setup) -> Result<Hop> {
    let db = s.stack.fresh_database().await?;
    let pooled = Subject::Rust {
        name: "post-confirmation",
        env: function_env(&db, Route::Pooler, s),
    };
    let direct = Subject::Rust {
        name: "post-confirmation",
        env: function_env(&db, Route::Direct, s),
    };
    let (mut pooled_run, pooled_env) = subjects::measure(s, &pooled, "hop-pooled", 10).await?;
    let (mut direct_run, direct_env) = subjects::measure(s, &direct, "hop-direct", 10).await?;
    subjects::warm_interleaved(
        &mut [
            ("hop-pooled", &mut pooled_run, pooled_env),
            ("hop-direct", &mut direct_run, direct_env),
        ],
        500,
    )
    .await;
    Ok(Hop {
        pooled: pooled_run,
        direct: direct_run,
    })
}

/// The insert post-confirmation makes, bounded two ways, 300 times each way and route, taking
/// turns: `SET LOCAL` in the statement's own pipelined transaction (what the function does),
/// and the bare unnamed statement under a client-side deadline (what a cancel request would
/// need on the happy path: the cancel itself costs only when the deadline passes).
async fn timeout_styles(s: &Setup) -> Result<Vec<TimeoutStyle>> {
    const SQL: &str = "INSERT INTO users (cognito_user_id, email, display_name, handle) \
                       VALUES ($1, $2, $3, $4) ON CONFLICT (cognito_user_id) DO NOTHING RETURNING id";
    let db = s.stack.fresh_database().await?;
    let timeout = Duration::from_secs(2);
    let mut out = Vec::new();
    for (route, route_name) in [(Route::Direct, "direct"), (Route::Pooler, "PgBouncer")] {
        let config = DbConfig {
            credentials: CredentialSource::Url(Box::new(db.url_via(route).parse()?)),
            host_override: None,
            port_override: None,
            dbname_override: None,
            sslmode: SslMode::VerifyFull,
            ca_bundle: Some(s.stack.ca_bundle.clone()),
            pool_size: 1,
            connect_timeout: Duration::from_secs(5),
            statement_timeout: timeout,
            secret_timeout: Duration::from_secs(2),
            application_name: "bench-timeouts".into(),
            pooling: Pooling::Transaction,
        };
        let pool = Db::new(&config, None)?;
        let client = pool.client().await?;
        let (mut local, mut deadline) = (Vec::new(), Vec::new());
        for i in 0..300 {
            for set_local in [true, false] {
                let (sub, handle) = (
                    fixtures::unique(&format!("t{i}")),
                    fixtures::unique(&format!("h{i}")),
                );
                let params: [(&(dyn tokio_postgres::types::ToSql + Sync), Type); 4] = [
                    (&sub, Type::TEXT),
                    (&sub, Type::TEXT),
                    (&sub, Type::TEXT),
                    (&handle, Type::TEXT),
                ];
                let started = Instant::now();
                if set_local {
                    stateless::query_typed_within(&client, timeout, SQL, &params).await?;
                    local.push(ms(started.elapsed()));
                } else {
                    tokio::time::timeout(timeout, client.query_typed(SQL, &params))
                        .await
                        .context("deadline")??;
                    deadline.push(ms(started.elapsed()));
                }
            }
        }
        out.push(TimeoutStyle {
            style: "SET LOCAL in its own transaction (kept)",
            route: route_name,
            samples_ms: local,
        });
        out.push(TimeoutStyle {
            style: "client-side deadline (+ cancel request when it passes)",
            route: route_name,
            samples_ms: deadline,
        });
    }
    Ok(out)
}
