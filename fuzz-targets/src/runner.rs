//! Runs one target over its corpus, then over generated inputs until a count or a time
//! limit is reached, and stops at the first panic, as libFuzzer stops at the first crash.

use std::{
    io,
    panic::{self, AssertUnwindSafe},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use crate::{
    Target,
    inputs::{Generator, Rng},
};

/// How much to run.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Generated inputs per target, after the corpus.
    pub inputs: u64,
    /// Stop generating after this long, even short of `inputs`.
    pub time_limit: Option<Duration>,
    pub seed: u64,
}

/// An input the target panicked on.
#[derive(Debug, Clone)]
pub struct Crash {
    pub input: Vec<u8>,
    pub message: String,
    /// The corpus file it was, if it was one.
    pub corpus_file: Option<PathBuf>,
}

/// What one target's run did.
#[derive(Debug, Clone)]
pub struct Report {
    pub target: &'static str,
    pub seed: u64,
    pub corpus_inputs: usize,
    pub generated_inputs: u64,
    pub elapsed: Duration,
    /// The slowest input: how long it took and its length.
    pub slowest: (Duration, usize),
    pub crash: Option<Crash>,
}

impl Report {
    pub fn total_inputs(&self) -> u64 {
        self.corpus_inputs as u64 + self.generated_inputs
    }
}

/// The corpus files of `dir`, sorted by name, with their contents.
pub fn read_corpus(dir: &Path) -> io::Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| std::fs::read(&p).map(|data| (p, data)))
        .collect()
}

/// Runs `target` on every corpus entry, then on `plan.inputs` generated ones (or as many as
/// `plan.time_limit` allows), stopping at the first panic.
pub fn run(target: &Target, corpus: &[(PathBuf, Vec<u8>)], plan: &Plan) -> Report {
    let started = Instant::now();
    let mut report = Report {
        target: target.name,
        seed: plan.seed,
        corpus_inputs: 0,
        generated_inputs: 0,
        elapsed: Duration::ZERO,
        slowest: (Duration::ZERO, 0),
        crash: None,
    };
    for (path, data) in corpus {
        report.corpus_inputs += 1;
        if let Err(message) = timed(target, data, &mut report.slowest) {
            report.crash = Some(Crash {
                input: data.clone(),
                message,
                corpus_file: Some(path.clone()),
            });
            report.elapsed = started.elapsed();
            return report;
        }
    }
    let seeds: Vec<Vec<u8>> = corpus.iter().map(|(_, d)| d.clone()).collect();
    let generator = Generator::new(target.shape, &seeds, target.tokens);
    let mut rng = Rng::new(plan.seed);
    let deadline = plan.time_limit.map(|t| started + t);
    while report.generated_inputs < plan.inputs {
        // Checking the clock every input would cost more than some inputs do.
        if report.generated_inputs % 256 == 0 && deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let data = generator.generate(&mut rng);
        report.generated_inputs += 1;
        if let Err(message) = timed(target, &data, &mut report.slowest) {
            report.crash = Some(Crash {
                input: data,
                message,
                corpus_file: None,
            });
            break;
        }
    }
    report.elapsed = started.elapsed();
    report
}

fn timed(target: &Target, data: &[u8], slowest: &mut (Duration, usize)) -> Result<(), String> {
    let t = Instant::now();
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| (target.body)(data)));
    let took = t.elapsed();
    if took > slowest.0 {
        *slowest = (took, data.len());
    }
    outcome.map_err(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "a panic without a message".to_owned())
    })
}

/// Writes a crashing input where cargo-fuzz would (`crash-<hash>` in the target's artifact
/// folder) and returns its path.
pub fn save_crash(target: &Target, crash: &Crash) -> io::Result<PathBuf> {
    let dir = target.artifact_dir();
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("crash-{:016x}", fnv1a(&crash.input)));
    std::fs::write(&path, &crash.input)?;
    Ok(path)
}

/// FNV-1a, to name an artifact after its content.
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}
