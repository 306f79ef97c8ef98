//! Wiring only ([`shared::entry`]): once per execution environment, logging, the settings,
//! the Lambda client and the answer sender; per custom-resource request, the library's
//! `handle` relays it to the function in the VPC and answers CloudFormation.
// The runtime's service stack nests the handler's future deeply; computing its layout in an
// optimised build needs more than the default query depth.
#![recursion_limit = "256"]

use cfn_responder::{Config, State, handle};
use lambda_runtime::{Error, run, service_fn};
use shared::{cold_start, entry};

fn main() -> Result<(), Error> {
    cold_start::begin();
    entry::runtime()?.block_on(async {
        entry::logging();
        let config = entry::config(Config::from_env())?;
        let state = entry::init(State::init(config).await)?;
        run(service_fn(|event| handle(&state, event))).await
    })
}
