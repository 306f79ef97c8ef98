//! Section 8: post-confirmation's cold path broken down phase by phase. Each cold start runs
//! with `cold_start=debug`, so the function prints one line per phase of its cold path with
//! the microseconds since `main` began (`shared::cold_start`); the driver adds what only it
//! can see: when it started the process (so how long the process took to reach `main`) and
//! when the answer arrived. Medians over the cold starts, phase by phase.
//!
//! The certificate environment is stated, because the SDK's HTTPS client may load the
//! system's root certificates: Lambda's image has one CA bundle file and no `SSL_CERT_FILE` or
//! `SSL_CERT_DIR`, while this machine also has a directory of ~150 certificate files that
//! the loader reads one by one when it finds it. Both are measured.
//!
//! With `BENCH_COLD_BEFORE_DIR` naming a folder of earlier release binaries (with the same
//! phase lines), they are measured in the same run, taking turns with the current ones, for
//! a before/after table.

use std::{
    path::{Path, PathBuf},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::Result;
use harness::Function;
use serde_json::Value;

use crate::{
    binaries::{BinarySize, sizes},
    fixtures::signup,
    setup::Setup,
    stats::ms,
    subjects::is_ok,
};

/// The phases the function marks, in order, and what each covers (from the previous mark).
pub const PHASES: &[(&str, &str)] = &[
    ("logging", "tokio runtime and the JSON log subscriber"),
    ("config", "configuration read from the environment"),
    (
        "sdk config",
        "`aws-config`: region, credentials and endpoint chains (and what it builds eagerly)",
    ),
    (
        "pool",
        "the Postgres TLS connector (CA bundle parsed) and the Secrets Manager client",
    ),
    (
        "secret",
        "GetSecretValue: the SDK's HTTPS client (and its root certificates), signing, the call",
    ),
    ("connect", "TCP, TLS verify-full, scram-sha-256, startup"),
    ("init", "the rest of init"),
    (
        "event",
        "the runtime client's start, its first `/next`, the event read",
    ),
    (
        "handler",
        "the first insert (prepare and execute) and its log line",
    ),
];

/// Where the root certificates may come from, as the function's environment says.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum CertEnv {
    /// As on Lambda: one CA bundle file, no certificate directory.
    Lambda,
    /// As this machine's shell has it: `SSL_CERT_FILE` and `SSL_CERT_DIR=/etc/ssl/certs`.
    ThisMachine,
}

impl CertEnv {
    pub fn describe(self) -> &'static str {
        match self {
            CertEnv::Lambda => {
                "one CA bundle file (`SSL_CERT_FILE`), no certificate directory, as on Lambda"
            }
            CertEnv::ThisMachine => {
                "`SSL_CERT_FILE` and `SSL_CERT_DIR=/etc/ssl/certs` (~150 files), as this machine's shell sets them"
            }
        }
    }

    /// The variables to add to a function's environment.
    pub fn vars(self) -> Vec<(String, String)> {
        let mut vars = vec![("SSL_CERT_FILE".to_owned(), system_bundle())];
        if self == CertEnv::ThisMachine {
            vars.push(("SSL_CERT_DIR".to_owned(), "/etc/ssl/certs".to_owned()));
        }
        vars
    }
}

/// One column of the breakdown: where the root certificates come from, and whether the
/// database's address is in the environment (`DB_HOST`, as the template sets it beside an
/// RDS-managed secret, which holds no host) or only in the secret.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Variant {
    pub cert_env: CertEnv,
    pub db_host: bool,
}

impl Variant {
    /// The column the targets are read from: Lambda's certificates, the host in the secret.
    pub const SECRET_HOST: Variant = Variant {
        cert_env: CertEnv::Lambda,
        db_host: false,
    };

    pub fn describe(self) -> String {
        let certs = match self.cert_env {
            CertEnv::Lambda => "Lambda's certificates",
            CertEnv::ThisMachine => "this machine's certificate directory",
        };
        if self.db_host {
            format!("{certs}, DB_HOST set")
        } else {
            certs.to_owned()
        }
    }
}

/// The system's CA bundle file (Debian's path, then Amazon Linux's).
pub fn system_bundle() -> String {
    [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
    .unwrap_or("/etc/ssl/certs/ca-certificates.crt")
    .to_owned()
}

/// One variant's cold starts.
pub struct Breakdown {
    pub label: String,
    /// Spawn to `main`, per cold start, in ms.
    pub to_main: Vec<f64>,
    /// Each phase's own duration (from the previous mark) per cold start, in ms, in
    /// [`PHASES`] order.
    pub phases: Vec<Vec<f64>>,
    /// The same phases' CPU time, in ms (the first: spawn to `main`).
    pub to_main_cpu: Vec<f64>,
    pub phases_cpu: Vec<Vec<f64>>,
    /// Minor page faults up to the end of the first invocation.
    pub faults: Vec<f64>,
    /// From the last mark to the answer reaching the driver, in ms.
    pub answer: Vec<f64>,
    /// Spawn to the answer, in ms.
    pub total: Vec<f64>,
    pub errors: usize,
}

pub struct ColdPath {
    pub echo_total: Vec<f64>,
    pub rows: Vec<Breakdown>,
    pub before_dir: Option<PathBuf>,
    /// The earlier binaries' sizes, when there are earlier binaries.
    pub before_sizes: Vec<BinarySize>,
}

/// Cold starts per variant.
const COLD: usize = 20;

pub async fn measure(s: &Setup) -> Result<ColdPath> {
    let before_dir = std::env::var_os("BENCH_COLD_BEFORE_DIR").map(PathBuf::from);
    let mut variants: Vec<(String, PathBuf, Variant)> = Vec::new();
    for variant in [
        Variant::SECRET_HOST,
        Variant {
            cert_env: CertEnv::ThisMachine,
            db_host: false,
        },
        Variant {
            cert_env: CertEnv::Lambda,
            db_host: true,
        },
    ] {
        let name = variant.describe();
        if let Some(dir) = &before_dir {
            variants.push((
                format!("before, {name}"),
                dir.join("post-confirmation"),
                variant,
            ));
        }
        variants.push((
            format!("now, {name}"),
            s.release.join("post-confirmation"),
            variant,
        ));
    }
    let mut rows: Vec<Breakdown> = variants
        .iter()
        .map(|(label, _, _)| Breakdown {
            label: label.clone(),
            to_main: vec![],
            phases: vec![vec![]; PHASES.len()],
            to_main_cpu: vec![],
            phases_cpu: vec![vec![]; PHASES.len()],
            faults: vec![],
            answer: vec![],
            total: vec![],
            errors: 0,
        })
        .collect();
    let mut echo_total = Vec::new();
    // Taking turns, so that the machine's drift over the run falls on every variant alike.
    for c in 0..COLD {
        echo_total.push(echo_once(s).await?);
        for ((_, program, variant), row) in variants.iter().zip(rows.iter_mut()) {
            once(s, program, *variant, &format!("cold{c}"), row).await?;
        }
    }
    Ok(ColdPath {
        echo_total,
        rows,
        before_sizes: before_dir.as_deref().map(sizes).unwrap_or_default(),
        before_dir,
    })
}

fn unix_us(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_micros() as f64)
}

async fn echo_once(s: &Setup) -> Result<f64> {
    let started = SystemTime::now();
    let f = Function::spawn_program("echo", &s.release.join("echo"), &[], &[]).await?;
    let first = f.invoke(&signup("echo", 0)).await;
    let total = ms(SystemTime::now()
        .duration_since(started)
        .unwrap_or_default());
    f.stop().await;
    Ok(if is_ok(&first.outcome) {
        total
    } else {
        f64::NAN
    })
}

/// One cold start of `program`: spawn, first event at once, then the phase lines.
async fn once(
    s: &Setup,
    program: &Path,
    variant: Variant,
    tag: &str,
    row: &mut Breakdown,
) -> Result<()> {
    let mut env = crate::subjects::secret_env(s);
    env.extend(variant.cert_env.vars());
    if variant.db_host {
        // The address the secret names too: only when it is known is it known early.
        env.push(("DB_HOST".into(), "127.0.0.1".into()));
        env.push(("DB_PORT".into(), s.stack.pg_port.to_string()));
    }
    env.push((
        "AWS_LAMBDA_LOG_LEVEL".into(),
        "info,cold_start=debug".into(),
    ));
    let started = SystemTime::now();
    let f = Function::spawn_program("post-confirmation", program, &[], &env).await?;
    let first = f.invoke(&signup(tag, 0)).await;
    let answered = SystemTime::now();
    let logs = f
        .logs_when(
            |logs| logs.iter().any(|l| l.contains("\"phase\":\"handler\"")),
            Duration::from_secs(5),
        )
        .await;
    f.stop().await;
    let marks: Vec<Value> = logs
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("phase").is_some())
        .collect();
    let field = |v: &Value, name: &str| v.get(name).and_then(Value::as_f64);
    let found: Option<Vec<(f64, f64, f64)>> = PHASES
        .iter()
        .map(|(phase, _)| {
            let m = marks
                .iter()
                .find(|m| m.get("phase").and_then(Value::as_str) == Some(*phase))?;
            Some((field(m, "us")?, field(m, "cpu_us")?, field(m, "minflt")?))
        })
        .collect();
    let first_mark = marks.first();
    let main = first_mark.and_then(|m| Some((field(m, "main_unix_us")?, field(m, "main_cpu_us")?)));
    let (Some(at), Some((main_unix, main_cpu))) = (found, main) else {
        row.errors += 1;
        return Ok(());
    };
    if !is_ok(&first.outcome) {
        row.errors += 1;
        return Ok(());
    }
    let to_main = (main_unix - unix_us(started)) / 1000.0;
    let total = ms(answered.duration_since(started).unwrap_or_default());
    let (mut previous, mut previous_cpu) = (0.0, main_cpu);
    for (i, (us, cpu, _)) in at.iter().enumerate() {
        row.phases[i].push((us - previous) / 1000.0);
        row.phases_cpu[i].push((cpu - previous_cpu) / 1000.0);
        (previous, previous_cpu) = (*us, *cpu);
    }
    row.to_main.push(to_main);
    row.to_main_cpu.push(main_cpu / 1000.0);
    row.faults.push(at.last().map_or(0.0, |m| m.2));
    row.answer.push(total - to_main - previous / 1000.0);
    row.total.push(total);
    Ok(())
}
