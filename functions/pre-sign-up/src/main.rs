//! Wiring only ([`shared::entry`]): once per execution environment, logging, the settings
//! and the pool; per PreSignUp event, the library's `handle` checks the sign-up.
// The runtime's service stack nests the handler's future deeply; computing its layout in an
// optimised build needs more than the default query depth.
#![recursion_limit = "256"]

use lambda_runtime::{Error, run, service_fn};
use pre_sign_up::{Config, DEFAULTS, State, handle};
use shared::{cold_start, entry};

fn main() -> Result<(), Error> {
    cold_start::begin();
    entry::runtime()?.block_on(async {
        entry::logging();
        let config = entry::config(Config::from_env(&DEFAULTS))?;
        let state = entry::init(State::init(config).await)?;
        run(service_fn(|event| handle(&state, event))).await
    })
}
