//! `local-invoke FUNCTION EVENT_FILE...`: runs a function's binary as Lambda does, through the
//! local Runtime API, with the current environment, feeds it each event in turn (one warm
//! environment), and prints each response or error and the function's log lines.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, bail};
use harness::{Function, Outcome, function_binary};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(name), events) = (args.next(), args.collect::<Vec<_>>()) else {
        bail!("usage: local-invoke FUNCTION EVENT_FILE...");
    };
    if events.is_empty() {
        bail!("usage: local-invoke FUNCTION EVENT_FILE...");
    }
    // The caller's whole environment, as a deployed function gets its configuration.
    let env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| !k.starts_with("AWS_LAMBDA_"))
        .collect();
    let f = Function::spawn(&function_binary(&name), &env)
        .await
        .context("starting the function")?;
    let mut failed = false;
    for file in &events {
        let text = std::fs::read_to_string(PathBuf::from(file))
            .with_context(|| format!("reading {file}"))?;
        let event: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {file}"))?;
        let inv = f.invoke_within(&event, Duration::from_secs(30)).await;
        println!("--- {name} <- {file} ({} ms)", inv.elapsed.as_millis());
        match &inv.outcome {
            Outcome::Response(v) => println!("response: {}", serde_json::to_string_pretty(v)?),
            Outcome::Error {
                error_type,
                error_message,
            } => {
                failed = true;
                println!("error: {error_type}: {error_message}");
            }
            other => {
                failed = true;
                println!("failed: {other:?}");
            }
        }
    }
    println!("--- {name} log lines");
    for line in f.logs() {
        println!("{line}");
    }
    f.stop().await;
    if failed {
        bail!("{name}: an invocation failed");
    }
    Ok(())
}
