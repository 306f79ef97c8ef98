//! Wiring only: logging, config, the pool and the AWS clients are set up once per execution
//! environment; the checks live in the library.
// The runtime's service stack nests the handler's future deeply; computing its layout in an
// optimised build needs more than the default query depth.
#![recursion_limit = "256"]

use drift_check::{Config, State, handle};
use lambda_runtime::{Error, service_fn};

// One event at a time per environment: a single-threaded runtime keeps the handler and the
// Postgres connection task on one thread, with no cross-thread wakeups on the hot path.
fn main() -> Result<(), Error> {
    shared::cold_start::begin();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> Result<(), Error> {
    shared::logging::init();
    shared::cold_start::mark("logging");
    let config =
        Config::from_env().inspect_err(|e| tracing::error!(error = %e, "invalid configuration"))?;
    shared::cold_start::mark("config");
    let state = State::init(config)
        .await
        .inspect_err(|e| tracing::error!(error = %e, "init failed"))?;
    shared::cold_start::mark("init");
    lambda_runtime::run(service_fn(|event| handle(&state, event))).await
}
