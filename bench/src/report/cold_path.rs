//! Section 8: the cold path phase by phase, and the binaries' sizes before and after.

use std::fmt::{self, Write as _};

use super::Report;
use crate::{
    binaries::BinarySize,
    cold_path::{Breakdown, CertEnv, ColdPath, PHASES, Variant},
    stats::{bytes_to_mib, median},
};

impl Report {
    /// Section 8: the cold path phase by phase, and the sizes before and after.
    pub(super) fn cold_path(&mut self, c: &ColdPath, binaries: &[BinarySize]) -> fmt::Result {
        let report = &mut self.body;
        writeln!(
            report,
            "\n## 8. The cold path, phase by phase (post-confirmation: secret fetch, TLS verify-full, first insert)\n"
        )?;
        writeln!(
            report,
            "Medians of {} cold starts per column, the columns taking turns with each other and with the echo \
             function. Each phase is timed by the function itself (`shared::cold_start`: a debug line per phase, on \
             with `AWS_LAMBDA_LOG_LEVEL=info,cold_start=debug`), from the end of the phase before; the driver adds the \
             time from starting the process to `main` and from the last phase to the answer. Each cell: elapsed ms / \
             CPU ms of the function's process (CPU time is what a busy machine inflates least; the kernel brings a \
             running process's count up to date only when it blocks or is preempted, so CPU spent in a phase that \
             ends without a wait shows in a later one: read the CPU by its total). Root certificates: the \
             columns say which environment they model; sections 1 to 6 model Lambda's ({}). \"DB_HOST set\": the \
             database's address is also in the environment (as the template sets it beside an RDS-managed secret, \
             which names no host), so the TCP connection can open while the secret is fetched; elsewhere the secret \
             alone names it, and the targets are read from that column. The sum of the medians need not equal the \
             median of the sums.\n",
            c.echo_total.len(),
            CertEnv::Lambda.describe(),
        )?;
        if let Some(dir) = &c.before_dir {
            writeln!(
                report,
                "\"before\" is the release build of {} (binaries in `{}`, given as `BENCH_COLD_BEFORE_DIR`), measured \
                 in the same run.\n",
                std::env::var("BENCH_COLD_BEFORE_LABEL")
                    .unwrap_or_else(|_| "an earlier commit".into()),
                dir.display()
            )?;
        }
        write!(report, "| phase | what it covers |")?;
        for row in &c.rows {
            write!(report, " {} ms |", row.label)?;
        }
        writeln!(report)?;
        writeln!(report, "|---|---|{}", "---|".repeat(c.rows.len()))?;
        type Pick<'a> = &'a dyn Fn(&Breakdown) -> String;
        let line = |report: &mut String, name: &str, what: &str, pick: Pick| -> fmt::Result {
            write!(report, "| {name} | {what} |")?;
            for row in &c.rows {
                write!(report, " {} |", pick(row))?;
            }
            writeln!(report)
        };
        let both = |wall: &[f64], cpu: &[f64]| format!("{:.2} / {:.2}", median(wall), median(cpu));
        line(
            report,
            "exec to `main`",
            "exec, page-in, the dynamic linker, Rust's start",
            &|r| both(&r.to_main, &r.to_main_cpu),
        )?;
        for (i, (phase, what)) in PHASES.iter().enumerate() {
            line(report, phase, what, &|r| {
                both(&r.phases[i], &r.phases_cpu[i])
            })?;
        }
        line(
            report,
            "answer",
            "the response posted, the driver reading it",
            &|r| format!("{:.2}", median(&r.answer)),
        )?;
        line(report, "**first response**", "spawn to the answer", &|r| {
            format!("**{:.2}**", median(&r.total))
        })?;
        let echo = median(&c.echo_total);
        line(
            report,
            "ratio to echo",
            &format!("echo's first response: {echo:.2} ms"),
            &|r| format!("{:.2}x", median(&r.total) / echo),
        )?;
        line(
            report,
            "CPU to the end of the handler",
            "all phases' CPU, ms",
            &|r| {
                let sums: Vec<f64> = (0..r.total.len())
                    .map(|k| r.to_main_cpu[k] + r.phases_cpu.iter().map(|p| p[k]).sum::<f64>())
                    .collect();
                format!("{:.2}", median(&sums))
            },
        )?;
        line(
            report,
            "minor page faults",
            "to the end of the handler",
            &|r| format!("{:.0}", median(&r.faults)),
        )?;
        let errors: usize = c.rows.iter().map(|r| r.errors).sum();
        writeln!(
            report,
            "\nCold starts that failed or printed no phase lines: {errors}.\n"
        )?;
        if !c.before_sizes.is_empty() {
            writeln!(
                report,
                "| binary | before: stripped MiB | now: stripped MiB |"
            )?;
            writeln!(report, "|---|---|---|")?;
            // Only the binaries there are earlier builds of.
            for (b, now) in c
                .before_sizes
                .iter()
                .zip(binaries)
                .filter(|(b, _)| b.bytes > 0)
            {
                writeln!(
                    report,
                    "| {} | {:.2} | {:.2} |",
                    b.name,
                    bytes_to_mib(b.bytes),
                    bytes_to_mib(now.bytes)
                )?;
            }
            writeln!(report)?;
        }
        let target_column = format!("now, {}", Variant::SECRET_HOST.describe());
        if let Some(now) = c.rows.iter().find(|r| r.label == target_column) {
            let first = median(&now.total);
            self.target(
                "cold first response <= 8 ms (Lambda's certificates)",
                first <= 8.0,
                format!("{first:.2} ms"),
            );
            self.target(
                "cold first response <= 4x echo's, same run",
                first / echo <= 4.0,
                format!("{:.2}x", first / echo),
            );
        }
        let largest = binaries.iter().map(|b| b.bytes).max().unwrap_or(0);
        self.target(
            "stripped binaries <= 8 MiB each",
            largest > 0 && largest <= 8 * 1024 * 1024,
            format!("largest {:.2} MiB", bytes_to_mib(largest)),
        );
        Ok(())
    }
}
