//! Section 11: the sign-in guard (PostAuthentication) beside post-confirmation, both as
//! deployed (the secret from Secrets Manager, verify-full, their own session straight to
//! Postgres): the guard on a user who has a row (every sign-in but the first), the guard on a
//! user who has none (the insert), and post-confirmation's insert. Cold starts taken in
//! turns, then warm invocations in turns of 250 on one environment each; and the exchanges
//! with Postgres a warm invocation costs, counted by a front with no added delay.
//! `BENCH_ONLY=sign-in-guard bench/run` measures it alone and writes it between its markers in
//! BENCHMARKS.md.

use std::{fmt::Write as _, time::Duration};

use anyhow::{Result, bail};
use harness::{event, fixtures::unique, latency::LatencyFront};
use serde_json::{Value, json};

use crate::{
    fixtures::signup,
    report::Provenance,
    setup::Setup,
    stats::{median, pct},
    subjects::{Subject, is_ok, secret_env},
    turns::{self, Counts, Turned},
};

pub const BEGIN: &str = "<!-- sign-in-guard:begin -->";
pub const END: &str = "<!-- sign-in-guard:end -->";

const COLD: usize = 7;
const WARM: usize = 1_000;
const TURN: usize = 250;
/// Warm invocations whose exchanges with Postgres are counted, per subject.
const COUNTED: usize = 100;

/// One subject's numbers: milliseconds, and exchanges per warm invocation.
#[derive(Default)]
pub struct Timings {
    pub name: &'static str,
    pub cold: Vec<f64>,
    pub warm: Vec<f64>,
    pub exchanges: f64,
}

/// A PostAuthentication event for the user `sub` (handle derived from it).
fn sign_in(sub: &str) -> Value {
    let mut e = event("sign-in-guard.json");
    let handle = sub.replace('-', "");
    e["userName"] = json!(&handle);
    e["request"]["userAttributes"]["sub"] = json!(sub);
    e["request"]["userAttributes"]["preferred_username"] = json!(&handle[..handle.len().min(30)]);
    e
}

/// The same user every time: after the first, each sign-in finds the row.
fn known_user(_: usize) -> Value {
    sign_in("sig-bench-known")
}

/// A new user every time: each sign-in writes the row.
fn new_user(i: usize) -> Value {
    sign_in(&unique(&format!("sig{i}")))
}

/// A subject: its name in the table, its binary, its `n`th event.
type Measured = (&'static str, &'static str, fn(usize) -> Value);

const COUNTS: Counts = Counts {
    cold: COLD,
    warm: WARM,
    turn: TURN,
};

fn subject(s: &Setup, binary: &'static str, extra: &[(String, String)]) -> Subject {
    let mut env = secret_env(s);
    env.extend(extra.iter().cloned());
    Subject::Rust { name: binary, env }
}

pub async fn measure(s: &Setup) -> Result<Vec<Timings>> {
    let measured: [Measured; 3] = [
        ("sign-in-guard, the row there", "sign-in-guard", known_user),
        ("sign-in-guard, the row missing", "sign-in-guard", new_user),
        ("post-confirmation", "post-confirmation", |i| {
            signup("sig-post", i)
        }),
    ];
    let mut turned =
        measured.map(|(name, binary, event)| Turned::new(name, subject(s, binary, &[]), event));
    let mut n = 0;
    turns::measure(s, &mut turned, &COUNTS, &mut n).await?;
    let mut out = Vec::with_capacity(turned.len());
    for ((_, binary, event), t) in measured.into_iter().zip(turned) {
        // The exchanges: Postgres behind a front with no added delay, one warm-up first.
        let front = LatencyFront::start(s.stack.pg_port, Duration::ZERO)?;
        let extra = [
            ("DB_HOST".to_owned(), "127.0.0.1".to_owned()),
            ("DB_PORT".to_owned(), front.port.to_string()),
        ];
        let f = subject(s, binary, &extra).spawn(s).await?;
        n += 1;
        f.invoke(&event(n)).await;
        let before = front.exchanges();
        for _ in 0..COUNTED {
            n += 1;
            let inv = f.invoke(&event(n)).await;
            if !is_ok(&inv.outcome) {
                bail!("{}: a counted invocation failed: {:?}", t.name, inv.outcome);
            }
        }
        let exchanges = (front.exchanges() - before) as f64 / COUNTED as f64;
        f.stop().await;
        out.push(Timings {
            name: t.name,
            cold: t.cold,
            warm: t.warm,
            exchanges,
        });
    }
    Ok(out)
}

/// The section, between its markers.
pub fn render(subjects: &[Timings], p: &Provenance) -> String {
    let mut doc = String::new();
    let _ = writeln!(doc, "{BEGIN}");
    let _ = writeln!(
        doc,
        "## 11. sign-in-guard beside post-confirmation ({COLD} cold starts and {WARM} warm invocations each, in turns)\n"
    );
    let _ = writeln!(
        doc,
        "`BENCH_ONLY=sign-in-guard bench/run`, {} on {} ({} cores). All as deployed: the \
         secret from Secrets Manager (moto), verify-full TLS, their own session straight to \
         Postgres. \"The row there\" is every sign-in after a user's first: the guard's insert \
         finds the row and changes nothing. First response = spawn to the first answer; warm \
         = one invocation on a warm environment; exchanges = answers from Postgres per warm \
         invocation, counted by a front with no added delay over {COUNTED} invocations.\n",
        p.date, p.cpu, p.cores
    );
    let _ = writeln!(
        doc,
        "| function | first response, median | warm median | warm p99 | exchanges with Postgres, warm |\n|---|---:|---:|---:|---:|"
    );
    for t in subjects {
        let _ = writeln!(
            doc,
            "| {} | {:.1} ms | {:.2} ms | {:.2} ms | {:.2} |",
            t.name,
            median(&t.cold),
            median(&t.warm),
            pct(&t.warm, 0.99),
            t.exchanges
        );
    }
    let _ = writeln!(doc, "{END}");
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_renders_medians_the_p99_and_the_exchanges() {
        let t = Timings {
            name: "sign-in-guard, the row there",
            cold: vec![30.0, 10.0, 20.0],
            warm: (1..=1000).map(f64::from).collect(),
            exchanges: 1.0,
        };
        let p = Provenance {
            command: "bench/run".into(),
            date: "2026-12-07".into(),
            cpu: "cpu".into(),
            cores: 2,
        };
        let doc = render(&[t], &p);
        assert!(
            doc.starts_with(BEGIN) && doc.trim_end().ends_with(END),
            "{doc}"
        );
        assert!(
            doc.contains(
                "| sign-in-guard, the row there | 20.0 ms | 501.00 ms | 990.00 ms | 1.00 |"
            ),
            "{doc}"
        );
    }

    #[test]
    fn the_known_user_is_one_user_and_the_new_ones_are_not() {
        assert_eq!(known_user(1), known_user(2));
        assert_ne!(
            new_user(1)["request"]["userAttributes"]["sub"],
            new_user(2)["request"]["userAttributes"]["sub"]
        );
    }
}
