//! The benchmark driver: runs each function's release binary (and the Python peers under
//! awslambdaric) through the local Lambda Runtime API against a Postgres configured like
//! production (scram-sha-256, TLS), measures, and writes BENCHMARKS.md. Numbers drift from run
//! to run: the report gives medians and ratios from one run, side by side.
//!
//! Each section is measured in turn into its own results, then [`report`] writes them out.
//! `BENCH_ONLY=pooler` measures and writes the pooler section alone, `BENCH_ONLY=cold` the cold
//! path (section 8) and the sizes, `BENCH_ONLY=pre-sign-up` section 9 into the existing report,
//! `BENCH_ONLY=round-trips` section 10 likewise, `BENCH_ONLY=sign-in-guard` section 11 likewise.
//! `BENCH_ONLY=drift` writes section 6's drift-check table alone, between its markers.
//!
//! | module | what it holds |
//! |---|---|
//! | [`setup`] | the settings (`BENCH_*`), the private stack, the database and its secret |
//! | [`fixtures`] | the sign-up events and the Cognito users the sections use |
//! | [`subjects`] | sections 1, 2 and 5: our functions, the echo floor and the Python peers, warm, cold and in a burst |
//! | [`floors`] | section 1's floors: pgbench and our database layer in-process |
//! | [`binaries`] | section 3's sizes: each binary stripped and zipped |
//! | [`connections`] | section 4: database connections and secret fetches per environment |
//! | [`sg_ip_update`], [`drift_check`] | section 6: sg-ip-update's IP moves, drift-check's passes by pool size |
//! | [`drift_passes`] | section 6's drift-check table, for the full report or alone (`BENCH_ONLY=drift`) |
//! | [`pooler`] | section 7: behind PgBouncer, and a direct burst past `max_connections` |
//! | [`cold_path`] | section 8: the cold path phase by phase |
//! | [`pre_sign_up`] | section 9: the PreSignUp trigger beside post-confirmation |
//! | [`sign_in_guard`] | section 11: the sign-in guard beside post-confirmation, with its exchanges |
//! | [`round_trips`] | section 10: the cold and warm paths in round trips, under a modelled network |
//! | [`round_trips_report`] | section 10's table and targets |
//! | [`procfs`], [`stats`] | what /proc says about a process; medians, percentiles and units |
//! | [`report`] | BENCHMARKS.md from the results, one module per group of sections |

mod binaries;
mod cold_path;
mod connections;
mod drift_check;
mod drift_passes;
mod fixtures;
mod floors;
mod pooler;
mod pre_sign_up;
mod procfs;
mod report;
mod round_trips;
mod round_trips_report;
mod setup;
mod sg_ip_update;
mod sign_in_guard;
mod stats;
mod subjects;
mod turns;

use anyhow::Result;

use crate::{
    report::{Provenance, Results},
    setup::{Options, Setup},
};

#[tokio::main]
async fn main() -> Result<()> {
    let options = Options::from_env();
    let s = Setup::new(&options).await?;
    if std::env::var("BENCH_ONLY").as_deref() == Ok("pooler") {
        let doc = report::render_pooler(&pooler::measure(&s).await?)?;
        std::fs::write(&options.out_path, doc)?;
        eprintln!("bench: wrote {}", options.out_path.display());
        return Ok(());
    }
    if std::env::var("BENCH_ONLY").as_deref() == Ok("pre-sign-up") {
        let (pre, post) = pre_sign_up::measure(&s).await?;
        let section = pre_sign_up::render(&pre, &post, &Provenance::from_env());
        let previous = std::fs::read_to_string(&options.out_path).unwrap_or_default();
        std::fs::write(
            &options.out_path,
            report::replace_section(&previous, &section, pre_sign_up::BEGIN, pre_sign_up::END),
        )?;
        eprintln!("bench: wrote section 9 into {}", options.out_path.display());
        return Ok(());
    }
    if std::env::var("BENCH_ONLY").as_deref() == Ok("sign-in-guard") {
        let measured = sign_in_guard::measure(&s).await?;
        let section = sign_in_guard::render(&measured, &Provenance::from_env());
        let previous = std::fs::read_to_string(&options.out_path).unwrap_or_default();
        std::fs::write(
            &options.out_path,
            report::replace_section(
                &previous,
                &section,
                sign_in_guard::BEGIN,
                sign_in_guard::END,
            ),
        )?;
        eprintln!(
            "bench: wrote section 11 into {}",
            options.out_path.display()
        );
        return Ok(());
    }
    if std::env::var("BENCH_ONLY").as_deref() == Ok("round-trips") {
        let measured = round_trips::measure(&s).await?;
        let section = round_trips_report::render(&measured, &Provenance::from_env());
        let previous = std::fs::read_to_string(&options.out_path).unwrap_or_default();
        std::fs::write(
            &options.out_path,
            report::replace_section(&previous, &section, round_trips::BEGIN, round_trips::END),
        )?;
        eprintln!(
            "bench: wrote section 10 into {}",
            options.out_path.display()
        );
        return Ok(());
    }
    if std::env::var("BENCH_ONLY").as_deref() == Ok("drift") {
        let measured = drift_check::measure(&s, &options.drift_sizes).await?;
        let section = drift_passes::render(&measured, &Provenance::from_env())?;
        let previous = std::fs::read_to_string(&options.out_path).unwrap_or_default();
        std::fs::write(
            &options.out_path,
            report::replace_section(&previous, &section, drift_check::BEGIN, drift_check::END),
        )?;
        eprintln!(
            "bench: wrote section 6's drift-check table into {}",
            options.out_path.display()
        );
        return Ok(());
    }
    if std::env::var("BENCH_ONLY").as_deref() == Ok("cold") {
        let cold_path = cold_path::measure(&s).await?;
        let doc = report::render_cold_path(&cold_path, &binaries::sizes(&s.release))?;
        std::fs::write(&options.out_path, doc)?;
        eprintln!("bench: wrote {}", options.out_path.display());
        return Ok(());
    }

    eprintln!("bench: warm and cold runs");
    let runs = subjects::warm_and_cold(&s).await?;
    let floors = floors::measure(&s)?;
    let binaries = binaries::sizes(&s.release);

    eprintln!("bench: the cold path, phase by phase");
    let cold_path = cold_path::measure(&s).await?;

    eprintln!("bench: connections and secret calls");
    let connections = connections::measure(&s).await?;

    eprintln!("bench: burst");
    let bursts = subjects::bursts(&s).await?;

    eprintln!("bench: sg-ip-update");
    let sg_ip_update = sg_ip_update::measure(&s).await?;
    let drift_check = drift_check::measure(&s, &options.drift_sizes).await?;
    // Last: it restarts Postgres (for a lower max_connections) under the sections above.
    eprintln!("bench: behind a pooler");
    let pooler = pooler::measure(&s).await?;

    let results = Results {
        runs,
        floors,
        binaries,
        connections,
        bursts,
        sg_ip_update,
        drift_check,
        pooler,
        cold_path,
    };
    let doc = report::render(&results, &Provenance::from_env())?;
    let previous = std::fs::read_to_string(&options.out_path).unwrap_or_default();
    eprintln!("bench: pre-sign-up beside post-confirmation");
    let (pre, post) = pre_sign_up::measure(&s).await?;
    let doc = report::replace_section(
        &doc,
        &pre_sign_up::render(&pre, &post, &Provenance::from_env()),
        pre_sign_up::BEGIN,
        pre_sign_up::END,
    );
    eprintln!("bench: round trips under a modelled network");
    let doc = report::replace_section(
        &doc,
        &round_trips_report::render(&round_trips::measure(&s).await?, &Provenance::from_env()),
        round_trips::BEGIN,
        round_trips::END,
    );
    std::fs::write(&options.out_path, keep_deploy_loop(&previous, doc))?;
    eprintln!("bench: wrote {}", options.out_path.display());
    Ok(())
}

/// `doc` with the deploy-loop section of the `previous` report appended: `bench/deploy-loop`
/// writes that section (it takes half an hour of builds), and a regenerated report keeps it.
fn keep_deploy_loop(previous: &str, mut doc: String) -> String {
    const BEGIN: &str = "<!-- deploy-loop:begin -->";
    const END: &str = "<!-- deploy-loop:end -->";
    let Some(start) = previous.find(BEGIN) else {
        return doc;
    };
    let Some(len) = previous[start..].find(END) else {
        return doc;
    };
    doc.truncate(doc.trim_end().len());
    doc.push_str("\n\n");
    doc.push_str(&previous[start..start + len + END.len()]);
    doc.push('\n');
    doc
}

#[cfg(test)]
mod tests {
    use super::keep_deploy_loop;

    #[test]
    fn a_regenerated_report_keeps_the_deploy_loop_section() {
        let previous = "# old\n\n## 1\nold\n\n<!-- deploy-loop:begin -->\n## Deploy\n| a |\n<!-- deploy-loop:end -->\n";
        let doc = keep_deploy_loop(previous, "# new\n\n## 1\nnew\n".into());
        assert_eq!(
            doc,
            "# new\n\n## 1\nnew\n\n<!-- deploy-loop:begin -->\n## Deploy\n| a |\n<!-- deploy-loop:end -->\n"
        );
        assert_eq!(keep_deploy_loop("# old\n", "# new\n".into()), "# new\n");
    }
}
