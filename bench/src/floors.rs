//! The floors a warm invocation is held against: pgbench running the same INSERT, and our
//! database layer alone, in-process, with no Lambda around it.

use std::{process::Command, time::Instant};

use anyhow::{Context, Result, bail};

use crate::{
    procfs::thread_cpu_ns,
    setup::Setup,
    stats::{median, ms},
};

/// What pgbench reports for the sign-up INSERT.
pub struct Pgbench {
    /// The median latency from pgbench's per-transaction log.
    pub p50_ms: f64,
    pub tps: f64,
}

/// The sign-up INSERT through our database layer alone.
pub struct DbLayer {
    pub times_ms: Vec<f64>,
    /// CPU time per insert, in microseconds.
    pub cpu_us: f64,
}

/// The floors for section 1: pgbench with one client, then our database layer alone.
pub struct Floors {
    pub pgbench: Pgbench,
    pub layer: DbLayer,
}

pub fn measure(s: &Setup) -> Result<Floors> {
    let pgbench = pgbench(s, 1, 10)?;
    let layer = db_layer_alone(s, 1000)?;
    Ok(Floors { pgbench, layer })
}

/// The same sign-up insert through the functions' own database layer (`shared::db::Db`, the
/// pool, rustls, the prepared statement), called in a loop in-process on a single-threaded
/// runtime as the functions run it: no Lambda, no event, no logging. It splits the gap to
/// pgbench into what the Postgres client stack costs and what the rest of an invocation costs.
fn db_layer_alone(s: &Setup, n: usize) -> Result<DbLayer> {
    let env: Vec<(String, String)> = s.db.url_env();
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                // Made, used and dropped on this thread: a runtime may not be dropped inside
                // the driver's own.
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                rt.block_on(async {
                    let lookup: std::collections::HashMap<&str, &str> =
                        env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                    let config = shared::db::DbConfig::from_lookup(&lookup)?;
                    let db = shared::db::Db::new(&config, None)?;
                    db.warm_up().await?;
                    let mut times = Vec::with_capacity(n);
                    let cpu_before = thread_cpu_ns();
                    for i in 0..n {
                        let id = format!("layer-{i}-{}", uuid::Uuid::new_v4().simple());
                        let user = shared::users::NewUser {
                            cognito_user_id: id.clone(),
                            email: "b@example.com".into(),
                            display_name: "bench".into(),
                            handle: id,
                        };
                        let started = Instant::now();
                        db.run(async |c| shared::users::insert_confirmed_user(c, &user).await)
                            .await?;
                        times.push(ms(started.elapsed()));
                    }
                    let cpu_us = (thread_cpu_ns() - cpu_before) as f64 / 1000.0 / n.max(1) as f64;
                    Ok::<_, anyhow::Error>(DbLayer {
                        times_ms: times,
                        cpu_us,
                    })
                })
            })
            .join()
            .map_err(|_| anyhow::anyhow!("the in-process loop panicked"))?
    })
}

/// pgbench running the sign-up INSERT, prepared, over TLS as the app role, with `clients`
/// clients for `seconds` seconds.
pub fn pgbench(s: &Setup, clients: u32, seconds: u32) -> Result<Pgbench> {
    let dir = std::env::temp_dir().join(format!("pgbench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let script = dir.join("insert.sql");
    std::fs::write(
        &script,
        "\\set id random(1, 4611686018427387903)\n\
         INSERT INTO users (cognito_user_id, email, display_name, handle) \
         VALUES ('pgb-' || :id, 'b@example.com', 'bench', 'pgb-' || :id) \
         ON CONFLICT (cognito_user_id) DO NOTHING;\n",
    )?;
    let out = Command::new("pgbench")
        .current_dir(&dir)
        .args(["-n", "-M", "prepared", "-l", "-f"])
        .arg(&script)
        .args([
            "-c",
            &clients.to_string(),
            "-j",
            "2",
            "-T",
            &seconds.to_string(),
        ])
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &s.stack.pg_port.to_string(),
            "-U",
            "app",
            &s.db.name,
        ])
        .env("PGPASSWORD", &s.stack.app_password)
        .env("PGSSLMODE", "require")
        .output()
        .context("running pgbench")?;
    if !out.status.success() {
        bail!("pgbench: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let tps = text
        .lines()
        .find(|l| l.starts_with("tps"))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|n| n.parse().ok())
        .unwrap_or(f64::NAN);
    let mut latencies = Vec::new();
    for entry in std::fs::read_dir(&dir)?.flatten() {
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with("pgbench_log")
        {
            for line in std::fs::read_to_string(entry.path())?.lines() {
                if let Some(us) = line
                    .split_whitespace()
                    .nth(2)
                    .and_then(|n| n.parse::<f64>().ok())
                {
                    latencies.push(us / 1000.0);
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Pgbench {
        p50_ms: median(&latencies),
        tps,
    })
}
