//! Section 9: the PreSignUp trigger beside post-confirmation, both as deployed (the secret from
//! Secrets Manager, verify-full, their own session straight to Postgres): cold starts taken in
//! turns, then warm invocations in turns of 250 on one environment each. Cognito waits 5 s for
//! either; a sign-up pays for both, one before the account exists and one after.
//! `BENCH_ONLY=pre-sign-up bench/run` measures it alone and writes it between its markers in
//! BENCHMARKS.md; a full run keeps it.

use std::fmt::Write as _;

use anyhow::Result;
use harness::{event, fixtures::unique};
use serde_json::{Value, json};

use crate::{
    fixtures::signup,
    report::Provenance,
    setup::Setup,
    stats::{median, pct},
    subjects::{Subject, secret_env},
    turns::{self, Counts, Turned},
};

pub const BEGIN: &str = "<!-- pre-sign-up:begin -->";
pub const END: &str = "<!-- pre-sign-up:end -->";

const COLD: usize = 7;
const WARM: usize = 1_000;
const TURN: usize = 250;

/// One subject's numbers, in milliseconds.
#[derive(Default)]
pub struct Timings {
    pub cold: Vec<f64>,
    pub warm: Vec<f64>,
}

/// A PreSignUp event for a new user whose handle no one holds.
fn sign_up(i: usize) -> Value {
    let mut e = event("pre-sign-up.json");
    let handle = unique(&format!("psu{i}")).replace('-', "");
    e["request"]["userAttributes"]["preferred_username"] = json!(&handle[..30]);
    e
}

const COUNTS: Counts = Counts {
    cold: COLD,
    warm: WARM,
    turn: TURN,
};

pub async fn measure(s: &Setup) -> Result<(Timings, Timings)> {
    let pre = Subject::Rust {
        name: "pre-sign-up",
        env: secret_env(s),
    };
    let mut subjects = [
        Turned::new("pre-sign-up", pre, sign_up),
        Turned::new("post-confirmation", Subject::ours(s), |i| {
            signup("psu-post", i)
        }),
    ];
    turns::measure(s, &mut subjects, &COUNTS, &mut 0).await?;
    let [pre, post] = subjects.map(|t| Timings {
        cold: t.cold,
        warm: t.warm,
    });
    Ok((pre, post))
}

/// The section, between its markers.
pub fn render(pre: &Timings, post: &Timings, p: &Provenance) -> String {
    let mut doc = String::new();
    let _ = writeln!(doc, "{BEGIN}");
    let _ = writeln!(
        doc,
        "## 9. pre-sign-up beside post-confirmation ({COLD} cold starts and {WARM} warm sign-ups each, in turns)\n"
    );
    let _ = writeln!(
        doc,
        "`BENCH_ONLY=pre-sign-up bench/run`, {} on {} ({} cores). Both as deployed: the secret \
         from Secrets Manager (moto), verify-full TLS, their own session straight to Postgres. \
         pre-sign-up reads whether the handle is taken; post-confirmation inserts the row. \
         First response = spawn to the first answer; warm = one invocation on a warm \
         environment.\n",
        p.date, p.cpu, p.cores
    );
    let _ = writeln!(
        doc,
        "| function | first response, median | warm median | warm p99 |\n|---|---:|---:|---:|"
    );
    for (name, t) in [("pre-sign-up", pre), ("post-confirmation", post)] {
        let _ = writeln!(
            doc,
            "| {name} | {:.1} ms | {:.2} ms | {:.2} ms |",
            median(&t.cold),
            median(&t.warm),
            pct(&t.warm, 0.99)
        );
    }
    let _ = writeln!(doc, "{END}");
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::replace_section;

    #[test]
    fn the_section_renders_medians_and_the_p99() {
        let t = Timings {
            cold: vec![30.0, 10.0, 20.0],
            warm: (1..=1000).map(f64::from).collect(),
        };
        let p = Provenance {
            command: "bench/run".into(),
            date: "2026-12-06".into(),
            cpu: "cpu".into(),
            cores: 2,
        };
        let doc = render(&t, &t, &p);
        assert!(
            doc.starts_with(BEGIN) && doc.trim_end().ends_with(END),
            "{doc}"
        );
        assert!(
            doc.contains("| pre-sign-up | 20.0 ms | 501.00 ms | 990.00 ms |"),
            "{doc}"
        );
    }

    #[test]
    fn the_section_is_replaced_in_place_or_appended() {
        let section = format!("{BEGIN}\n## 9\nnew\n{END}\n");
        let old = format!(
            "# B\n\n## 8\nx\n\n{BEGIN}\n## 9\nold\n{END}\n\n<!-- deploy-loop:begin -->\nd\n"
        );
        let new = replace_section(&old, &section, BEGIN, END);
        assert!(new.contains("## 9\nnew") && !new.contains("old"), "{new}");
        assert!(new.ends_with("<!-- deploy-loop:begin -->\nd\n"), "{new}");
        let appended = replace_section("# B\n", &section, BEGIN, END);
        assert_eq!(appended, format!("# B\n\n{section}"));
    }
}
