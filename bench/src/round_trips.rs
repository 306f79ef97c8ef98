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

use std::{fmt::Write as _, path::PathBuf, time::Duration};

use anyhow::Result;
use harness::{Function, latency::LatencyFront};
use serde_json::json;

use crate::{
    fixtures::signup,
    report::Provenance,
    setup::Setup,
    stats::{median, ms},
    subjects::{Subject, is_ok, secret_env},
};

pub const BEGIN: &str = "<!-- round-trips:begin -->";
pub const END: &str = "<!-- round-trips:end -->";

/// One-way delays added on both links; the round trip is twice each.
const ONE_WAY_MS: [u64; 3] = [0, 1, 3];
/// Cold starts per subject and delay, taking turns.
const COLD: usize = 7;
/// Warm invocations after each cold start.
const WARM: usize = 10;

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
    const ALL: [Kind; 7] = [
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

/// Round trips waiting in sequence: ms added per ms of round trip, between the two largest
/// delays (both pay the front's own scheduling alike, which the zero-delay cell does not).
pub fn slope(medians: &[f64]) -> f64 {
    let n = ONE_WAY_MS.len();
    let rtt = |i: usize| 2.0 * ONE_WAY_MS[i] as f64;
    (medians[n - 1] - medians[n - 2]) / (rtt(n - 1) - rtt(n - 2))
}

fn medians(row: &Row, of: impl Fn(&Cell) -> f64) -> Vec<f64> {
    row.cells.iter().map(of).collect()
}

/// The cold path's round trips on a network: the measured slope plus the TCP handshakes the
/// front cannot delay.
pub fn on_a_network(row: &Row) -> Option<f64> {
    Some(slope(&medians(row, |c| median(&c.cold))) + row.kind.tcp_handshakes_in_sequence()?)
}

/// The targets: the template's wiring (a secret with `DB_HOST`) within the cold goal, and a
/// warm sign-up in one round trip. Half a round trip of slack: the slope is a difference of
/// two medians of a few cold starts each.
pub fn verdicts(r: &RoundTrips) -> Vec<(String, bool, String)> {
    let find = |k: Kind| {
        r.rows
            .iter()
            .find(|row| row.kind == k && row.before.is_none())
    };
    let mut out = Vec::new();
    if let Some(cold) = find(Kind::SecretDbHost).and_then(on_a_network) {
        out.push((
            format!(
                "cold sign-up with a secret and `DB_HOST` (the template's wiring): <= {COLD_GOAL_SECRET} round trips in sequence on a network"
            ),
            cold <= COLD_GOAL_SECRET + 0.5,
            format!("{cold:.1}"),
        ));
    }
    if let Some(row) = find(Kind::Secret) {
        let warm = slope(&medians(row, |c| median(&c.warm)));
        out.push((
            format!("warm sign-up: {WARM_GOAL} round trip"),
            (warm - WARM_GOAL).abs() <= 0.25,
            format!("{warm:.2}"),
        ));
    }
    out
}

pub fn render(r: &RoundTrips, p: &Provenance) -> String {
    let mut doc = String::new();
    let _ = writeln!(doc, "{BEGIN}");
    let _ = writeln!(
        doc,
        "## 10. Round trips: the cold and warm paths under a modelled network\n"
    );
    let _ = writeln!(
        doc,
        "Generated by `{}` on {} ({}, {} cores). Both links \
         (Postgres, Secrets Manager) go through a front that delays every chunk by the same time \
         each way (`tests/src/latency.rs`); medians of {COLD} cold starts per cell, the subjects \
         and delays taking turns, and of {WARM} warm invocations after each. \"Round trips\" is \
         the slope between the two largest delays: milliseconds added per millisecond of round \
         trip, the exchanges that wait in sequence. \"Exchanges\" are counted by the fronts at \
         no added delay: Postgres / AWS (moto: the secret, and EC2 or Cognito), up to the first answer.\n",
        p.command
            .replace("bench/run", "BENCH_ONLY=round-trips bench/run"),
        p.date,
        p.cpu,
        p.cores
    );
    let rtts: Vec<String> = ONE_WAY_MS
        .iter()
        .map(|d| match d {
            0 => "cold, no added delay".to_owned(),
            d => format!("cold, {} ms round trip", 2 * d),
        })
        .collect();
    let _ = writeln!(
        doc,
        "| subject | {} | cold round trips (measured) | on a network (+ TCP handshakes) | exchanges (pg / AWS) | warm ms, no added delay | warm round trips | errors |",
        rtts.join(" | ")
    );
    let _ = writeln!(
        doc,
        "|---|{}---|---|---|---|---|---|",
        "---|".repeat(rtts.len())
    );
    for row in &r.rows {
        let cold = medians(row, |c| median(&c.cold));
        let warm = medians(row, |c| median(&c.warm));
        let at0 = &row.cells[0];
        let count = |v: &[usize]| {
            let f: Vec<f64> = v.iter().map(|n| *n as f64).collect();
            median(&f)
        };
        let errors: usize = row.cells.iter().map(|c| c.errors).sum();
        let _ = writeln!(
            doc,
            "| {} | {} | {:.1} | {} | {:.0} / {:.0} | {:.2} | {:.2} | {errors} |",
            match &row.before {
                Some(_) => format!("before: {}", row.kind.describe()),
                None => row.kind.describe().to_owned(),
            },
            cold.iter()
                .map(|v| format!("{v:.1} ms"))
                .collect::<Vec<_>>()
                .join(" | "),
            slope(&cold),
            on_a_network(row).map_or("-".to_owned(), |n| format!("{n:.1}")),
            count(&at0.pg_exchanges),
            count(&at0.sm_exchanges),
            warm[0],
            slope(&warm),
        );
    }
    let _ = writeln!(doc);
    for (name, met, measured) in verdicts(r) {
        let _ = writeln!(
            doc,
            "- {name}: **{}** ({measured})",
            if met { "met" } else { "not met" }
        );
    }
    let _ = writeln!(
        doc,
        "\nHow to read the counts. post-confirmation's cold path with a secret: the secret's fetch \
         (TCP and the request) runs beside Postgres' TCP handshake, SSL request and TLS handshake \
         when `DB_HOST` is set (the handshake needs no credentials); then SCRAM's three steps; \
         then the schema guard, the insert and its commit, written together: 3 + 3 + 1 = 7 on a \
         network, one less here (the front cannot delay TCP's handshake). Without `DB_HOST` the \
         address is in the secret, so the fetch comes first. IAM authentication needs no secret \
         and answers the server's password request once instead of SCRAM's two exchanges: TCP, \
         SSL request, TLS, the startup, the token, the insert = 6 on a network with Postgres up \
         to 17 (the SSL request goes with `sslnegotiation=direct`, Postgres 17's, which would \
         make it 5). No server here can check an IAM token, so the `DATABASE_URL` row (the same \
         login with SCRAM) stands in for it: one exchange more than IAM's.\n\n\
         \"before\" rows, when `BENCH_COLD_BEFORE_DIR` names an earlier build, run that build's \
         post-confirmation in the same turns. sg-ip-update and drift-check have the same phase \
         lines (`cold_start=debug`) and are counted the same way, but their AWS calls go to \
         other endpoints than the secret's on AWS (one more connection each) while here they \
         reach the same moto, so no network column is given for them; their warm counts are \
         their own statements, one after another (a move: the row locked, EC2 described and \
         modified, the row and its audit written)."
    );
    let _ = writeln!(doc, "{END}");
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slope_is_milliseconds_added_per_millisecond_of_round_trip() {
        // 2 ms and 6 ms round trips: 7 round trips add 28 ms between them.
        assert_eq!(slope(&[20.0, 34.0, 62.0]), 7.0);
    }

    #[test]
    fn the_section_carries_its_markers_and_a_row_per_subject() {
        let cell = |base: f64, per_rtt: f64, d: usize| Cell {
            cold: vec![base + per_rtt * 2.0 * ONE_WAY_MS[d] as f64; 3],
            warm: vec![0.3 + 2.0 * ONE_WAY_MS[d] as f64; 3],
            errors: 0,
            pg_exchanges: vec![6; 3],
            sm_exchanges: vec![1; 3],
            pg_warm_exchanges: vec![1.0; 3],
        };
        let r = RoundTrips {
            rows: Kind::ALL
                .iter()
                .map(|k| Row {
                    kind: *k,
                    before: None,
                    cells: (0..ONE_WAY_MS.len()).map(|d| cell(20.0, 7.0, d)).collect(),
                })
                .collect(),
        };
        let p = Provenance {
            command: "bench/run".into(),
            date: "2026-12-06".into(),
            cpu: "cpu".into(),
            cores: 2,
        };
        let doc = render(&r, &p);
        assert!(
            doc.starts_with(BEGIN) && doc.trim_end().ends_with(END),
            "{doc}"
        );
        assert_eq!(doc.matches("| post-confirmation").count(), 3, "{doc}");
        assert!(
            doc.contains("| 20.0 ms | 34.0 ms | 62.0 ms | 7.0 | 8.0 | 6 / 1 | 0.30 | 1.00 | 0 |"),
            "{doc}"
        );
        // With `DB_HOST`: 6 measured and its one TCP handshake.
        let row = |k| r.rows.iter().find(|row| row.kind == k).unwrap();
        for (k, cold) in [(Kind::Secret, 9.0), (Kind::SecretDbHost, 8.0)] {
            let one = Row {
                kind: k,
                before: row(k).before.clone(),
                cells: (0..ONE_WAY_MS.len()).map(|d| cell(20.0, 6.0, d)).collect(),
            };
            assert_eq!(on_a_network(&one), Some(cold - 1.0));
        }
        assert!(doc.contains("**not met** (8.0)"), "{doc}");
        // Six in sequence with DB_HOST is the goal's 7 on a network.
        let mut at_goal = r;
        for row in &mut at_goal.rows {
            row.cells = (0..ONE_WAY_MS.len()).map(|d| cell(20.0, 6.0, d)).collect();
        }
        assert!(render(&at_goal, &p).contains("**met** (7.0)"));
    }
}
