//! Wiring only ([`shared::entry`]): once per execution environment, logging, the settings and
//! the state; per event, the library's handler. One binary, two functions: `DRIFT_RUNS_AS`,
//! read at cold start, makes it drift-check itself (`check`, the default, in the VPC: the
//! pool, EC2) or its lister (`lister`, outside the VPC: Cognito and Lambda clients, no
//! database), so `sam build` compiles and links it once for both.
// The runtime's service stack nests the handler's future deeply; computing its layout in an
// optimised build needs more than the default query depth.
#![recursion_limit = "256"]

use drift_check::{
    Config, State, handle,
    lister::{self, Lister, ListerConfig},
};
use lambda_runtime::{Error, run, service_fn};
use shared::{cold_start, entry};

fn main() -> Result<(), Error> {
    cold_start::begin();
    entry::runtime()?.block_on(async {
        entry::logging();
        let runs_as = std::env::var("DRIFT_RUNS_AS").unwrap_or_default();
        match runs_as.trim() {
            "" | "check" => {}
            "lister" => {
                let config = entry::config(ListerConfig::from_env())?;
                let state = Lister::init(config).await;
                cold_start::mark("init");
                return run(service_fn(|event| lister::handle(&state, event))).await;
            }
            other => {
                let e =
                    format!("DRIFT_RUNS_AS is invalid: expected check or lister, got {other:?}");
                tracing::error!(error = %e, "invalid configuration");
                return Err(e.into());
            }
        }
        let config = entry::config(Config::from_env())?;
        let state = entry::init(State::init(config).await)?;
        run(service_fn(|event| handle(&state, event))).await
    })
}
