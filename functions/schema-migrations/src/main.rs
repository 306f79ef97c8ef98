//! Wiring only: logging, config, the pool and the answer sender are set up once per execution
//! environment; the resource's logic lives in the library.
#![recursion_limit = "256"]

use lambda_runtime::{Error, service_fn};
use schema_migrations::{Config, State, handle};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let config =
        Config::from_env().inspect_err(|e| tracing::error!(error = %e, "invalid configuration"))?;
    let state = State::init(config)
        .await
        .inspect_err(|e| tracing::error!(error = %e, "init failed"))?;
    lambda_runtime::run(service_fn(|event| handle(&state, event))).await
}
