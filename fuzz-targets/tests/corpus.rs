//! The committed corpus as regression tests: every entry (the seeds, and any input that once
//! crashed a target) runs clean under plain `cargo test`; the seeds cover the hostile fixtures
//! and the sample events; and the runner does catch a panicking target.

use std::{collections::HashSet, path::Path};

use fuzz_targets::{
    Shape, TARGETS, Target, repo_root,
    runner::{self, Plan},
};
use serde_json::Value;
use shared::users::AttributeMapping;

fn corpus(target: &Target) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let c = runner::read_corpus(&target.corpus_dir()).unwrap();
    assert!(!c.is_empty(), "{}: empty corpus", target.name);
    c
}

#[test]
fn every_corpus_entry_runs_clean() {
    for target in &TARGETS {
        let plan = Plan {
            inputs: 0,
            time_limit: None,
            seed: 0,
        };
        let report = runner::run(target, &corpus(target), &plan);
        assert!(
            report.crash.is_none(),
            "{}: {:?}",
            target.name,
            report.crash
        );
        assert!(report.corpus_inputs > 0);
    }
}

#[test]
fn the_events_corpus_carries_the_hostile_fixtures_and_the_sample_events() {
    let events = fuzz_targets::target("events").unwrap();
    let have: HashSet<Vec<u8>> = corpus(events).into_iter().map(|(_, d)| d).collect();
    let root = repo_root();
    let mut wanted = files(&root.join("events"));
    for dir in std::fs::read_dir(root.join("tests/corpus")).unwrap() {
        wanted.extend(files(&dir.unwrap().path()));
    }
    assert!(wanted.len() > 50, "{} fixtures", wanted.len());
    for (path, data) in wanted {
        assert!(
            have.contains(&data),
            "{} has no copy in fuzz/corpus/events/: copy it there as a seed",
            path.display()
        );
    }
}

#[test]
fn the_valid_seeds_are_accepted() {
    let events = fuzz_targets::target("events").unwrap();
    let mut checked = 0;
    for (path, data) in corpus(events) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(kind) = name.strip_prefix("valid-") else {
            continue;
        };
        let v: Value = serde_json::from_slice(&data).unwrap();
        let mapping = AttributeMapping::default();
        let accepted = if kind.starts_with("post-confirmation") {
            post_confirmation::parse_event(&v, &mapping).is_ok()
        } else if kind.starts_with("pre-sign-up") {
            pre_sign_up::parse_event(&v, &mapping).is_ok()
        } else if kind.starts_with("sign-in-guard") {
            sign_in_guard::parse_event(&v, &mapping).is_ok_and(|row| row.is_ok())
        } else if kind.starts_with("sg-ip-update") {
            sg_ip_update::parse_event(&v, &sg_ip_update::Envelope::default())
                .is_ok_and(|c| ingress::ip::host_cidr(&c.change.ip, false).is_ok())
        } else {
            drift_check::request::parse(&v).is_ok()
        };
        assert!(
            accepted,
            "{name} is refused: a seed named valid- must parse"
        );
        checked += 1;
    }
    assert!(checked >= 9, "{checked} valid seeds");
}

#[test]
fn the_runner_stops_at_the_first_panic_and_keeps_the_input() {
    fn fragile(data: &[u8]) {
        assert!(!data.windows(4).any(|w| w == b"boom"), "found the word");
    }
    let target = Target {
        name: "fragile",
        body: fragile,
        shape: Shape::Json,
        tokens: &["boom"],
    };
    let corpus = vec![("seed".into(), br#"{"a":1}"#.to_vec())];
    let plan = Plan {
        inputs: 100_000,
        time_limit: None,
        seed: 42,
    };
    let report = runner::run(&target, &corpus, &plan);
    let crash = report.crash.expect("the runner must find the word");
    assert!(crash.input.windows(4).any(|w| w == b"boom"));
    assert_eq!(crash.message, "found the word");
    assert!(crash.corpus_file.is_none());
    assert!(report.generated_inputs < plan.inputs);

    // A corpus entry that crashes is reported as that file, before anything is generated.
    let corpus = vec![("known".into(), b"boom".to_vec())];
    let report = runner::run(&target, &corpus, &plan);
    let crash = report.crash.unwrap();
    assert_eq!(crash.corpus_file.as_deref(), Some(Path::new("known")));
    assert_eq!(report.generated_inputs, 0);
}

fn files(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    runner::read_corpus(dir).unwrap()
}
