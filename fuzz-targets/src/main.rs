//! `fuzz-stable`: runs the fuzz targets on stable Rust, each over its committed corpus
//! (`fuzz/corpus/<target>/`) and then over generated inputs, and says how many it ran.
//!
//! ```text
//! cargo run -p fuzz-targets --bin fuzz-stable -- [--inputs N] [--seconds S] [--seed N] [TARGET...]
//! ```
//!
//! `--inputs`: generated inputs per target (default 100000); `--seconds`: a time limit per
//! target that stops it sooner; `--seed`: replays a run (a fresh seed is drawn and printed
//! otherwise). Exits 1 if a target panicked, after saving the input to
//! `fuzz/artifacts/<target>/`.
#![forbid(unsafe_code)]

use std::{
    process::ExitCode,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use fuzz_targets::{
    TARGETS, Target,
    runner::{self, Plan, Report},
};

fn main() -> ExitCode {
    let (plan, targets) = match parse_args(std::env::args().skip(1)) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("fuzz-stable: {e}");
            return ExitCode::from(2);
        }
    };
    let mut total = 0;
    let mut crashed = 0;
    for target in targets {
        let corpus_dir = target.corpus_dir();
        let corpus = match runner::read_corpus(&corpus_dir) {
            Ok(c) => c,
            Err(e) => {
                eprintln!(
                    "fuzz: {}: cannot read {}: {e}",
                    target.name,
                    corpus_dir.display()
                );
                return ExitCode::FAILURE;
            }
        };
        let report = runner::run(target, &corpus, &plan);
        total += report.total_inputs();
        print_report(target, &report, &plan);
        crashed += u32::from(report.crash.is_some());
    }
    println!("fuzz: {total} inputs, {crashed} crashed targets");
    if crashed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn print_report(target: &Target, r: &Report, plan: &Plan) {
    let secs = r.elapsed.as_secs_f64();
    println!(
        "fuzz: {}: {} inputs ({} corpus + {} generated, seed {}) in {secs:.1} s, {:.0}/s; slowest {:.1} ms ({} bytes)",
        r.target,
        r.total_inputs(),
        r.corpus_inputs,
        r.generated_inputs,
        r.seed,
        r.total_inputs() as f64 / secs.max(1e-9),
        r.slowest.0.as_secs_f64() * 1000.0,
        r.slowest.1,
    );
    let Some(crash) = &r.crash else {
        return;
    };
    println!("fuzz: {}: CRASH: {}", r.target, crash.message);
    println!(
        "fuzz: {}: input ({} bytes): \"{}\"",
        r.target,
        crash.input.len(),
        crash.input.escape_ascii()
    );
    match &crash.corpus_file {
        Some(path) => println!("fuzz: {}: the corpus file {}", r.target, path.display()),
        None => match runner::save_crash(target, crash) {
            Ok(path) => println!(
                "fuzz: {}: saved to {}; replay with `cargo run -p fuzz-targets --bin fuzz-stable -- --seed {} --inputs {} {}`",
                r.target,
                path.display(),
                plan.seed,
                r.generated_inputs,
                r.target
            ),
            Err(e) => println!("fuzz: {}: could not save the input: {e}", r.target),
        },
    }
}

fn parse_args(
    mut args: impl Iterator<Item = String>,
) -> Result<(Plan, Vec<&'static Target>), String> {
    let mut plan = Plan {
        inputs: 100_000,
        time_limit: None,
        seed: fresh_seed(),
    };
    let mut targets = Vec::new();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| format!("{name} needs a value"))
                .and_then(|v| {
                    v.parse::<u64>()
                        .map_err(|_| format!("{name}: expected a whole number, got {v:?}"))
                })
        };
        match arg.as_str() {
            "--inputs" => plan.inputs = value("--inputs")?,
            "--seconds" => plan.time_limit = Some(Duration::from_secs(value("--seconds")?)),
            "--seed" => plan.seed = value("--seed")?,
            name => targets.push(fuzz_targets::target(name).ok_or_else(|| {
                let known: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
                format!("unknown target {name:?} (targets: {})", known.join(", "))
            })?),
        }
    }
    if targets.is_empty() {
        targets = TARGETS.iter().collect();
    }
    Ok((plan, targets))
}

/// A seed that differs from run to run, so CI explores new inputs each time; printed, so a
/// run can be replayed.
fn fresh_seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ u64::from(std::process::id()).rotate_left(32)
}
