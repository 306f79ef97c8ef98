//! Wiring only: logging, config, the pool and the EC2 client are set up once per execution
//! environment; the logic lives in the library.

use lambda_runtime::{Error, service_fn};
use sg_ip_update::{Config, State, handle};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let config =
        Config::from_env().inspect_err(|e| tracing::error!(error = %e, "invalid configuration"))?;
    let state = State::init(config)
        .await
        .inspect_err(|e| tracing::error!(error = %e, "init failed"))?;
    lambda_runtime::run(service_fn(|event| handle(&state, event))).await
}
