//! Wiring only ([`shared::entry`]): once per execution environment, logging, the settings,
//! the pool and the EC2 client; per request (a signed Function URL call or a bus event), the
//! library's `handle` moves the rule.
// The runtime's service stack nests the handler's future deeply; computing its layout in an
// optimised build needs more than the default query depth.
#![recursion_limit = "256"]

use lambda_runtime::{Error, run, service_fn};
use sg_ip_update::{Config, State, handle};
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
