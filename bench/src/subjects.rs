//! The subjects (our functions, the echo floor, the Python peers) and how each is measured:
//! cold starts, warm invocations taken in turns, and a burst from 50 environments.

use std::time::{Duration, Instant};

use anyhow::Result;
use futures_util::future::join_all;
use harness::{Function, Outcome};

use crate::{
    cold_path::CertEnv,
    fixtures::signup,
    floors,
    procfs::{cpu_ns, peak_rss_kb},
    setup::Setup,
    stats::ms,
};

/// What one subject did under the driver.
#[derive(Default, Clone)]
pub struct Run {
    pub init_ms: Vec<f64>,
    pub cold_ms: Vec<f64>,
    pub warm_ms: Vec<f64>,
    pub peak_rss_kb: u64,
    /// The function process's CPU time per warm invocation, in microseconds.
    pub cpu_us_per_warm: f64,
    pub errors: usize,
}

/// How a subject is started.
#[derive(Clone)]
pub enum Subject {
    Rust {
        name: &'static str,
        env: Vec<(String, String)>,
    },
    Python {
        module: &'static str,
        env: Vec<(String, String)>,
    },
    /// A binary outside the release directory (an earlier build), by its path.
    At {
        name: &'static str,
        path: std::path::PathBuf,
        env: Vec<(String, String)>,
    },
}

impl Subject {
    /// The driver's floor: a function that answers at once.
    pub fn echo() -> Subject {
        Subject::Rust {
            name: "echo",
            env: vec![],
        }
    }

    /// post-confirmation as deployed: credentials from Secrets Manager, TLS with the CA bundle.
    pub fn ours(s: &Setup) -> Subject {
        Subject::Rust {
            name: "post-confirmation",
            env: secret_env(s),
        }
    }

    pub async fn spawn(&self, s: &Setup) -> Result<Function> {
        Ok(match self {
            Subject::Rust { name, env } => {
                Function::spawn_program(name, &s.release.join(name), &[], env).await?
            }
            Subject::At { name, path, env } => {
                Function::spawn_program(name, path, &[], env).await?
            }
            Subject::Python { module, env } => {
                let mut env = env.clone();
                env.push(("PYTHONPATH".into(), s.python_dir.display().to_string()));
                let handler = format!("{module}.lambda_handler");
                Function::spawn_program(module, &s.python, &["-m", "awslambdaric", &handler], &env)
                    .await?
            }
        })
    }
}

/// post-confirmation's environment as deployed: the secret, the CA bundle, and the root
/// certificates where Lambda has them (one bundle file, no certificate directory).
pub fn secret_env(s: &Setup) -> Vec<(String, String)> {
    let mut env = s.stack.aws_env();
    env.extend(CertEnv::Lambda.vars());
    env.push(("DB_SECRET_ARN".into(), s.secret_arn.clone()));
    // Straight to Postgres, as the template wires post-confirmation without a proxy.
    env.push(("DB_POOLING".into(), "session".into()));
    env.push((
        "DB_CA_BUNDLE".into(),
        s.stack.ca_bundle.display().to_string(),
    ));
    env
}

fn python_env(s: &Setup, app: &str) -> Vec<(String, String)> {
    let url = format!(
        "postgresql://app:{}@127.0.0.1:{}/{}?sslmode=require&application_name={app}",
        s.stack.app_password, s.stack.pg_port, s.db.name
    );
    vec![("DATABASE_URL".into(), url)]
}

async fn stop(f: Option<Function>) {
    if let Some(f) = f {
        f.stop().await;
    }
}

pub fn is_ok(o: &Outcome) -> bool {
    matches!(o, Outcome::Response(_))
}

/// `cold` cold starts (spawn, first event at once); the last environment is kept, warm, for
/// [`warm_interleaved`].
pub async fn measure(
    s: &Setup,
    subject: &Subject,
    tag: &str,
    cold: usize,
) -> Result<(Run, Option<Function>)> {
    let mut run = Run::default();
    let mut kept = None;
    for c in 0..cold {
        let f = subject.spawn(s).await?;
        let first = f.invoke(&signup(tag, c * 1_000_000)).await;
        run.cold_ms.push(ms(first.elapsed));
        run.init_ms.push(f.init_duration().map_or(f64::NAN, ms));
        run.errors += usize::from(!is_ok(&first.outcome));
        if c + 1 == cold {
            kept = Some(f);
        } else {
            f.stop().await;
        }
    }
    Ok((run, kept))
}

/// Warm invocations per subject in one turn: back to back, as an environment under steady
/// traffic sees them (one invocation per turn would measure an environment idle for the
/// others' turns: cold caches, a sleeping CPU, about 0.14 ms more even for echo).
const TURN: usize = 250;

/// `warm` invocations on each kept environment, taken in turns of [`TURN`], so that the
/// machine's drift over the run falls on every subject alike. Then each environment's peak
/// RSS and CPU per invocation, and it is stopped.
pub async fn warm_interleaved(subjects: &mut [(&str, &mut Run, Option<Function>)], warm: usize) {
    let cpu_before: Vec<u64> = subjects
        .iter()
        .map(|(_, _, f)| cpu_ns(f.as_ref().and_then(Function::pid)))
        .collect();
    for turn in (0..warm).step_by(TURN) {
        for (tag, run, f) in subjects.iter_mut() {
            let Some(f) = f else { continue };
            for i in turn..warm.min(turn + TURN) {
                let inv = f.invoke(&signup(tag, i)).await;
                run.errors += usize::from(!is_ok(&inv.outcome));
                run.warm_ms.push(ms(inv.elapsed));
            }
        }
    }
    for ((_, run, f), before) in subjects.iter_mut().zip(cpu_before) {
        let Some(f) = f.take() else { continue };
        run.peak_rss_kb = peak_rss_kb(f.pid());
        run.cpu_us_per_warm = (cpu_ns(f.pid()) - before) as f64 / 1000.0 / warm.max(1) as f64;
        f.stop().await;
    }
}

/// The warm and cold runs behind sections 1 to 3, one [`Run`] per subject.
pub struct Runs {
    pub echo: Run,
    pub ours: Run,
    /// Ours without the one info log line per invocation.
    pub quiet: Run,
    pub careful: Run,
    pub naive: Run,
    /// Ours reading DATABASE_URL (no secret fetch), with TLS.
    pub url_tls: Run,
    /// Ours reading DATABASE_URL, without TLS.
    pub url_plain: Run,
    /// The earlier build of ours (`BENCH_COLD_BEFORE_DIR`), taking turns with the others.
    pub before: Option<Run>,
}

pub async fn warm_and_cold(s: &Setup) -> Result<Runs> {
    let echo = Subject::echo();
    let ours = Subject::ours(s);
    let mut url_tls = s.db.url_env();
    url_tls.retain(|(k, _)| !k.starts_with("AWS_"));
    url_tls.extend(CertEnv::Lambda.vars());
    let mut url_plain = url_tls.clone();
    url_plain.retain(|(k, _)| k != "DB_SSLMODE");
    url_plain.push(("DB_SSLMODE".into(), "disable".into()));
    let ours_url_tls = Subject::Rust {
        name: "post-confirmation",
        env: url_tls,
    };
    let ours_url_plain = Subject::Rust {
        name: "post-confirmation",
        env: url_plain,
    };
    let careful = Subject::Python {
        module: "careful",
        env: python_env(s, "py-careful"),
    };
    let naive = Subject::Python {
        module: "naive",
        env: python_env(s, "py-naive"),
    };

    let (mut r_echo, f_echo) = measure(s, &echo, "echo", 5).await?;
    let (mut r_ours, f_ours) = measure(s, &ours, "ours", 5).await?;
    // The same, without the one info log line per invocation: how much of the warm path is
    // formatting and writing that line.
    let mut quiet_env = secret_env(s);
    quiet_env.push(("AWS_LAMBDA_LOG_LEVEL".into(), "warn".into()));
    let quiet = Subject::Rust {
        name: "post-confirmation",
        env: quiet_env,
    };
    let (mut r_quiet, f_quiet) = measure(s, &quiet, "quiet", 1).await?;
    let (mut r_careful, f_careful) = measure(s, &careful, "careful", 5).await?;
    // The earlier build, when there is one, takes its turns beside the others.
    let (mut r_before, f_before) = match std::env::var_os("BENCH_COLD_BEFORE_DIR") {
        Some(dir) => {
            let earlier = Subject::At {
                name: "post-confirmation",
                path: std::path::Path::new(&dir).join("post-confirmation"),
                env: secret_env(s),
            };
            let (run, f) = measure(s, &earlier, "before", 5).await?;
            (Some(run), f)
        }
        None => (None, None),
    };
    let mut turns = vec![
        ("echo", &mut r_echo, f_echo),
        ("ours", &mut r_ours, f_ours),
        ("quiet", &mut r_quiet, f_quiet),
        ("careful", &mut r_careful, f_careful),
    ];
    if let Some(run) = r_before.as_mut() {
        turns.push(("before", run, f_before));
    }
    warm_interleaved(&mut turns, 1000).await;
    drop(turns);
    // Apart: each of its calls leaves a backend exiting behind it, which would slow the others.
    let (mut r_naive, f_naive) = measure(s, &naive, "naive", 3).await?;
    warm_interleaved(&mut [("naive", &mut r_naive, f_naive)], 1000).await;
    let (r_url_tls, f) = measure(s, &ours_url_tls, "ourstls", 5).await?;
    stop(f).await;
    let (r_url_plain, f) = measure(s, &ours_url_plain, "oursplain", 5).await?;
    stop(f).await;
    Ok(Runs {
        echo: r_echo,
        ours: r_ours,
        quiet: r_quiet,
        careful: r_careful,
        naive: r_naive,
        url_tls: r_url_tls,
        url_plain: r_url_plain,
        before: r_before,
    })
}

/// One burst of 2,000 invocations.
pub struct Burst {
    pub errors: usize,
    pub secs: f64,
    /// The peak count of post-confirmation's server connections.
    pub peak_connections: i64,
}

/// 2,000 invocations from 50 environments (40 each, in order).
async fn burst(s: &Setup, subject: &Subject) -> Result<Burst> {
    let mut envs = Vec::new();
    for _ in 0..50 {
        envs.push(subject.spawn(s).await?);
    }
    for f in &envs {
        f.wait_initialised(Duration::from_secs(30)).await;
    }
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (peak, stop, admin) = (peak.clone(), stop.clone(), s.db.admin().await?);
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let sql = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'post-confirmation'";
                if let Ok(r) = admin.query_one(sql, &[]).await {
                    peak.fetch_max(r.get(0), std::sync::atomic::Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let started = Instant::now();
    let lanes = envs.iter().enumerate().map(|(lane, f)| async move {
        let mut errors = 0;
        for i in 0..40 {
            errors += usize::from(!is_ok(
                &f.invoke(&signup(&format!("burst{lane}"), i)).await.outcome,
            ));
        }
        errors
    });
    let errors: usize = join_all(lanes).await.into_iter().sum();
    let secs = started.elapsed().as_secs_f64();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    watcher.await?;
    for f in envs {
        f.stop().await;
    }
    Ok(Burst {
        errors,
        secs,
        peak_connections: peak.load(std::sync::atomic::Ordering::Relaxed),
    })
}

/// Section 5: ours in a burst, the echo function in the same burst as the driver's ceiling,
/// and pgbench with as many clients as there are environments.
pub struct Bursts {
    pub ours: Burst,
    pub echo: Burst,
    pub pgbench_tps_50: f64,
}

pub async fn bursts(s: &Setup) -> Result<Bursts> {
    let ours = burst(s, &Subject::ours(s)).await?;
    let echo = burst(s, &Subject::echo()).await?;
    let pgbench_tps_50 = floors::pgbench(s, 50, 10)?.tps;
    Ok(Bursts {
        ours,
        echo,
        pgbench_tps_50,
    })
}
