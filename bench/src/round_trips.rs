//! Section 10: the cold and warm paths in round trips. On Lambda a cold sign-up waits mostly
//! on the network (Secrets Manager, then Postgres in another Availability Zone or behind RDS
//! Proxy), which this machine's loopback servers hide: they answer in microseconds. So both
//! links go through `harness::latency` fronts that delay every chunk by a set time each way,
//! and each subject's first response is timed at several delays. The slope of time against
//! the round-trip time is the number of round trips that wait in sequence: what the network
//! adds per millisecond of round trip. The fronts also count the exchanges on each link (an
//! answer after a request), which says how many there are, waiting in sequence or not.
//!
//! The front cannot delay TCP's own handshake (the kernel completes it before the front
//! accepts), so every subject's new connections are one round trip cheaper here than on a
//! network; the report says so beside the counts.

use std::{path::PathBuf, time::Duration};

use anyhow::Result;
use harness::{Function, latency::LatencyFront};
use serde_json::json;

use crate::{
    fixtures::signup,
    setup::Setup,
    stats::{median, ms},
    subjects::{Subject, is_ok, secret_env},
};

pub const BEGIN: &str = "<!-- round-trips:begin -->";
pub const END: &str = "<!-- round-trips:end -->";

/// One-way delays added on both links; the round trip is twice each.
pub const ONE_WAY_MS: [u64; 3] = [0, 1, 3];
/// Cold starts per subject and delay, taking turns.
pub const COLD: usize = 7;
/// Warm invocations after each cold start.
pub const WARM: usize = 10;

/// The goals issue 30 set, in round trips waiting in sequence.
pub const COLD_GOAL_SECRET: f64 = 7.0;
pub const WARM_GOAL: f64 = 1.0;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// post-confirmation, credentials from Secrets Manager, host in the secret.
    Secret,
    /// The same with `DB_HOST` (and `DB_PORT`) set, so the connection opens early.
    SecretDbHost,
    /// post-confirmation with `DATABASE_URL`: no secret to fetch, the login alone.
    Url,
    /// Python, one module-level connection, URL from the environment.
    PythonCareful,
    /// Python: boto3 fetches the secret, psycopg2 connects with verify-full.
    PythonAwsGuidance,
    /// sg-ip-update moving a rule (DescribeSecurityGroupRules, ModifySecurityGroupRules, the
    /// row and its audit), secret and `DB_HOST` as for post-confirmation.
    SgIpUpdate,
    /// drift-check, one report run over a small pool and one group.
    DriftCheck,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Secret,
        Kind::SecretDbHost,
        Kind::Url,
        Kind::PythonCareful,
        Kind::PythonAwsGuidance,
        Kind::SgIpUpdate,
        Kind::DriftCheck,
    ];

    /// New TCP connections on the cold path's critical path, one after the other: each is a
    /// round trip on a network that the front cannot model (the secret's, then Postgres';
    /// with `DB_HOST` both at once; the SDK and boto3 connect afresh for the one call).
    /// `None` for sg-ip-update and drift-check: their AWS calls go to other endpoints on AWS
    /// than the secret's (one more TCP and TLS each) but to the same moto here, so no one
    /// number converts theirs.
    pub fn tcp_handshakes_in_sequence(self) -> Option<f64> {
        match self {
            Kind::Secret | Kind::PythonAwsGuidance => Some(2.0),
            Kind::SecretDbHost | Kind::Url | Kind::PythonCareful => Some(1.0),
            Kind::SgIpUpdate | Kind::DriftCheck => None,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Kind::Secret => "post-confirmation, secret from Secrets Manager",
            Kind::SecretDbHost => "post-confirmation, secret, `DB_HOST` set",
            Kind::Url => "post-confirmation, `DATABASE_URL` (no secret: IAM's shape, see below)",
            Kind::PythonCareful => "Python careful: one connection, URL from the environment",
            Kind::PythonAwsGuidance => {
                "Python as AWS's guidance has it: boto3 fetches the secret, psycopg2 verify-full"
            }
            Kind::SgIpUpdate => "sg-ip-update, an IP move (secret, `DB_HOST`)",
            Kind::DriftCheck => {
                "drift-check, a report run (secret, `DB_HOST`; 1 group, empty pool)"
            }
        }
    }
}

/// One subject at one delay.
#[derive(Default, Clone)]
pub struct Cell {
    /// Spawn to the first answer, ms, per cold start.
    pub cold: Vec<f64>,
    /// Median warm invocation of each cold start's process, ms.
    pub warm: Vec<f64>,
    pub errors: usize,
    /// Exchanges with Postgres and with Secrets Manager up to the first answer, per cold start.
    pub pg_exchanges: Vec<usize>,
    pub sm_exchanges: Vec<usize>,
    /// Exchanges with Postgres per warm invocation.
    pub pg_warm_exchanges: Vec<f64>,
}

pub struct Row {
    pub kind: Kind,
    /// An earlier build's post-confirmation (`BENCH_COLD_BEFORE_DIR`), measured in turn.
    pub before: Option<PathBuf>,
    /// One cell per entry of [`ONE_WAY_MS`].
    pub cells: Vec<Cell>,
}

pub struct RoundTrips {
    pub rows: Vec<Row>,
}

/// The two fronts of one delay, and the secret naming that delay's Postgres front.
struct Links {
    pg: LatencyFront,
    sm: LatencyFront,
    secret_arn: String,
}

async fn links(s: &Setup, one_way: Duration, n: usize) -> Result<Links> {
    let pg = LatencyFront::start(s.stack.pg_port, one_way)?;
    let sm = LatencyFront::start(s.stack.moto_port(), one_way)?;
    let mut secret = s.db.rds_secret(&s.stack.app_password);
    secret["port"] = json!(pg.port);
    let client = aws_sdk_secretsmanager::Client::new(&s.stack.sdk_config().await);
    let secret_arn = client
        .create_secret()
        .name(format!("bench-round-trips-{n}"))
        .secret_string(secret.to_string())
        .send()
        .await?
        .arn()
        .unwrap_or_default()
        .to_owned();
    Ok(Links { pg, sm, secret_arn })
}

fn subject(s: &Setup, kind: Kind, l: &Links, t: &Targets) -> Subject {
    let pg_port = l.pg.port.to_string();
    let endpoint = format!("http://127.0.0.1:{}", l.sm.port);
    let with_secret = |extra: &[(&str, &str)]| {
        let mut env = secret_env(s);
        env.retain(|(k, _)| k != "AWS_ENDPOINT_URL" && k != "DB_SECRET_ARN");
        env.push(("AWS_ENDPOINT_URL".into(), endpoint.clone()));
        env.push(("DB_SECRET_ARN".into(), l.secret_arn.clone()));
        env.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        env
    };
    let url = |params: &str| {
        format!(
            "postgresql://app:{}@127.0.0.1:{pg_port}/{}{params}",
            s.stack.app_password, s.db.name
        )
    };
    match kind {
        Kind::Secret => Subject::Rust {
            name: "post-confirmation",
            env: with_secret(&[]),
        },
        Kind::SecretDbHost => Subject::Rust {
            name: "post-confirmation",
            env: with_secret(&[("DB_HOST", "127.0.0.1"), ("DB_PORT", &pg_port)]),
        },
        Kind::Url => {
            let mut env = with_secret(&[("DATABASE_URL", &url(""))]);
            env.retain(|(k, _)| k != "DB_SECRET_ARN");
            Subject::Rust {
                name: "post-confirmation",
                env,
            }
        }
        Kind::PythonCareful => Subject::Python {
            module: "careful",
            env: vec![(
                "DATABASE_URL".into(),
                url("?sslmode=require&application_name=py-careful"),
            )],
        },
        // boto3 reads the region from AWS_DEFAULT_REGION, which Lambda sets beside AWS_REGION.
        Kind::PythonAwsGuidance => Subject::Python {
            module: "aws_guidance",
            env: with_secret(&[("AWS_DEFAULT_REGION", "us-east-1")]),
        },
        Kind::SgIpUpdate => Subject::Rust {
            name: "sg-ip-update",
            env: with_secret(&[
                ("DB_HOST", "127.0.0.1"),
                ("DB_PORT", &pg_port),
                ("SECURITY_GROUP_ID", &t.group),
                ("SG_IP_UPDATE_SOURCE", "eventbridge"),
            ]),
        },
        Kind::DriftCheck => Subject::Rust {
            name: "drift-check",
            env: with_secret(&[
                ("DB_HOST", "127.0.0.1"),
                ("DB_PORT", &pg_port),
                ("SECURITY_GROUP_ID", &t.group),
                ("USER_POOL_ID", &t.pool),
            ]),
        },
    }
}

/// What sg-ip-update and drift-check work on: a group with one managed rule that bare
/// invocations may move, and a user pool.
struct Targets {
    group: String,
    pool: String,
}

async fn targets(s: &Setup) -> Result<Targets> {
    let group = harness::aws::create_group(&s.ec2).await;
    s.admin
        .execute(
            "INSERT INTO managed_ingress_rules (security_group_id, owner, allow_unverified) \
             VALUES ($1, 'round-trips', true)",
            &[&group],
        )
        .await?;
    let pool = harness::aws::create_pool(&s.cognito).await;
    Ok(Targets { group, pool })
}

/// The `i`th invocation's event: a sign-up, an IP move (back and forth, so each is a change),
/// or a drift-check run.
fn event(kind: Kind, tag: &str, i: usize) -> serde_json::Value {
    match kind {
        Kind::SgIpUpdate => {
            let ip = if i % 2 == 0 {
                "34.201.17.5"
            } else {
                "52.14.99.8"
            };
            json!({"owner": "round-trips", "ip": ip})
        }
        Kind::DriftCheck => json!({}),
        _ => signup(tag, i),
    }
}

/// One cold start and its warm invocations, into `cell`.
async fn once(
    s: &Setup,
    (kind, subject): (Kind, &Subject),
    l: &Links,
    tag: &str,
    cell: &mut Cell,
) -> Result<()> {
    let (pg0, sm0) = (l.pg.exchanges(), l.sm.exchanges());
    let started = std::time::Instant::now();
    let f: Function = subject.spawn(s).await?;
    let first = f.invoke(&event(kind, tag, 0)).await;
    let cold = ms(started.elapsed());
    let (pg1, sm1) = (l.pg.exchanges(), l.sm.exchanges());
    let mut warm = Vec::with_capacity(WARM);
    let mut ok = is_ok(&first.outcome);
    for i in 1..=WARM {
        let t = std::time::Instant::now();
        let inv = f.invoke(&event(kind, tag, i)).await;
        warm.push(ms(t.elapsed()));
        ok &= is_ok(&inv.outcome);
    }
    let pg2 = l.pg.exchanges();
    f.stop().await;
    if !ok {
        cell.errors += 1;
        return Ok(());
    }
    cell.cold.push(cold);
    cell.warm.push(median(&warm));
    cell.pg_exchanges.push(pg1 - pg0);
    cell.sm_exchanges.push(sm1 - sm0);
    cell.pg_warm_exchanges
        .push((pg2 - pg1) as f64 / WARM as f64);
    Ok(())
}

pub async fn measure(s: &Setup) -> Result<RoundTrips> {
    let mut all_links = Vec::new();
    for (n, one_way) in ONE_WAY_MS.iter().enumerate() {
        all_links.push(links(s, Duration::from_millis(*one_way), n).await?);
    }
    let t = targets(s).await?;
    let before = std::env::var_os("BENCH_COLD_BEFORE_DIR").map(PathBuf::from);
    let mut rows: Vec<Row> = Vec::new();
    for kind in Kind::ALL {
        let ours = matches!(kind, Kind::Secret | Kind::SecretDbHost);
        if let (true, Some(dir)) = (ours, &before) {
            rows.push(Row {
                kind,
                before: Some(dir.join("post-confirmation")),
                cells: vec![Cell::default(); ONE_WAY_MS.len()],
            });
        }
        rows.push(Row {
            kind,
            before: None,
            cells: vec![Cell::default(); ONE_WAY_MS.len()],
        });
    }
    // Taking turns, so that the machine's drift over the run falls on every cell alike.
    for c in 0..COLD {
        for (d, l) in all_links.iter().enumerate() {
            for row in rows.iter_mut() {
                let subject = match (subject(s, row.kind, l, &t), &row.before) {
                    (Subject::Rust { name, env }, Some(path)) => Subject::At {
                        name,
                        path: path.clone(),
                        env,
                    },
                    (subject, _) => subject,
                };
                let tag = format!("rt{c}d{d}");
                once(s, (row.kind, &subject), l, &tag, &mut row.cells[d]).await?;
            }
        }
        eprintln!("bench: round trips, {} of {COLD} cold starts each", c + 1);
    }
    Ok(RoundTrips { rows })
}
