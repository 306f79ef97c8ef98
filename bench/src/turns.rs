//! Functions measured side by side, in turns: each subject's cold starts taken one after the
//! other's, then warm invocations in turns of a few hundred on one environment each, so a busy
//! moment of the machine falls on all of them alike (sections 9 and 11).

use anyhow::{Result, bail};
use harness::Function;
use serde_json::Value;

use crate::{
    setup::Setup,
    stats::ms,
    subjects::{Subject, is_ok},
};

/// One function measured in turns: what runs it, its events, and its timings (milliseconds).
pub struct Turned {
    pub name: &'static str,
    pub subject: Subject,
    /// The `n`th event of the whole measurement.
    pub event: fn(usize) -> Value,
    pub cold: Vec<f64>,
    pub warm: Vec<f64>,
}

impl Turned {
    pub fn new(name: &'static str, subject: Subject, event: fn(usize) -> Value) -> Self {
        Self {
            name,
            subject,
            event,
            cold: Vec::new(),
            warm: Vec::new(),
        }
    }
}

/// How many: cold starts per subject, warm invocations per subject, warm invocations per turn.
pub struct Counts {
    pub cold: usize,
    pub warm: usize,
    pub turn: usize,
}

/// Measures `subjects` in turns; `n` counts the events sent (each subject's `event(n)`). Every
/// environment is stopped before it returns; a failed invocation ends the measurement.
pub async fn measure(
    s: &Setup,
    subjects: &mut [Turned],
    counts: &Counts,
    n: &mut usize,
) -> Result<()> {
    let mut kept: Vec<Function> = Vec::with_capacity(subjects.len());
    for c in 0..counts.cold {
        for (i, subj) in subjects.iter_mut().enumerate() {
            let f = subj.subject.spawn(s).await?;
            *n += 1;
            let first = f.invoke(&(subj.event)(*n)).await;
            if !is_ok(&first.outcome) {
                bail!(
                    "{}: the cold invocation failed: {:?}",
                    subj.name,
                    first.outcome
                );
            }
            subj.cold.push(ms(first.elapsed));
            if c + 1 == counts.cold {
                debug_assert_eq!(kept.len(), i);
                kept.push(f);
            } else {
                f.stop().await;
            }
        }
    }
    let warm = async {
        for _ in 0..counts.warm / counts.turn {
            for (subj, f) in subjects.iter_mut().zip(&kept) {
                for _ in 0..counts.turn {
                    *n += 1;
                    let inv = f.invoke(&(subj.event)(*n)).await;
                    if !is_ok(&inv.outcome) {
                        bail!("{}: a warm invocation failed: {:?}", subj.name, inv.outcome);
                    }
                    subj.warm.push(ms(inv.elapsed));
                }
            }
        }
        Ok(())
    }
    .await;
    for f in kept {
        f.stop().await;
    }
    warm
}
