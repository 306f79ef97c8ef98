//! What every function's `main` shares. Each `main.rs` is written out in full, in the same
//! few lines, so a reader sees what starts once and what runs per event:
//!
//! ```no_run
//! # mod post_confirmation {
//! #     pub struct Config;
//! #     impl Config { pub fn from_env() -> Result<Self, std::io::Error> { Ok(Config) } }
//! #     pub struct State;
//! #     impl State { pub async fn init(_: Config) -> Result<Self, std::io::Error> { Ok(State) } }
//! #     pub async fn handle(_: &State, e: lambda_runtime::LambdaEvent<serde_json::Value>)
//! #         -> Result<serde_json::Value, std::io::Error> { Ok(e.payload) }
//! # }
//! use lambda_runtime::{Error, run, service_fn};
//! use post_confirmation::{Config, State, handle};
//! use shared::{cold_start, entry};
//!
//! fn main() -> Result<(), Error> {
//!     cold_start::begin();
//!     entry::runtime()?.block_on(async {
//!         entry::logging();
//!         let config = entry::config(Config::from_env())?;
//!         let state = entry::init(State::init(config).await)?;
//!         run(service_fn(|event| handle(&state, event))).await
//!     })
//! }
//! ```
//!
//! - [`runtime`]: a single-threaded runtime (one event at a time per environment, so the
//!   handler and the Postgres connection task share one thread, with no cross-thread wake-ups
//!   on the hot path);
//! - [`logging`]: JSON log lines ([`crate::logging::init`]);
//! - [`config`] and [`init`]: the settings read once and the state (pool, SDK clients) built
//!   once; a failure is logged and ends the cold start with the error;
//! - then the runtime's loop calls the library's `handle` with each event, the state borrowed.
//!
//! Each step marks its cold-start phase ([`crate::cold_start`]).

use std::fmt::Display;

/// The runtime every function runs on: tokio's current-thread runtime with its I/O and timers.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Starts the JSON logging ([`crate::logging::init`]) and marks the `logging` phase.
pub fn logging() {
    crate::logging::init();
    crate::cold_start::mark("logging");
}

/// The function's settings, read once: logs an error as `invalid configuration` and marks the
/// `config` phase.
pub fn config<C, E: Display>(read: Result<C, E>) -> Result<C, E> {
    let config = read.inspect_err(|e| tracing::error!(error = %e, "invalid configuration"))?;
    crate::cold_start::mark("config");
    Ok(config)
}

/// The function's state, built once: logs an error as `init failed`, marks the `init` phase
/// and records its end ([`crate::cold_start::initialised`]).
pub fn init<S, E: Display>(built: Result<S, E>) -> Result<S, E> {
    let state = built.inspect_err(|e| tracing::error!(error = %e, "init failed"))?;
    crate::cold_start::mark("init");
    crate::cold_start::initialised();
    Ok(state)
}

/// Expands to the `main` above for the library crate `$lib`, which provides
/// `Config::from_env`, `State::init(config)` and `handle(&state, event)`. Kept for crates not
/// yet written out; a new function writes its `main` in full, as the module shows.
///
/// ```no_run
/// mod my_function {
///     pub struct Config;
///     impl Config { pub fn from_env() -> Result<Self, std::io::Error> { Ok(Config) } }
///     pub struct State;
///     impl State { pub async fn init(_: Config) -> Result<Self, std::io::Error> { Ok(State) } }
///     pub async fn handle(_: &State, e: lambda_runtime::LambdaEvent<serde_json::Value>)
///         -> Result<serde_json::Value, std::io::Error> { Ok(e.payload) }
/// }
/// shared::lambda_main!(my_function);
/// ```
#[macro_export]
macro_rules! lambda_main {
    ($lib:ident) => {
        fn main() -> Result<(), $crate::entry::lambda_runtime::Error> {
            use $crate::entry::lambda_runtime;
            $crate::cold_start::begin();
            $crate::entry::runtime()?.block_on(async {
                $crate::entry::logging();
                let config = $crate::entry::config($lib::Config::from_env())?;
                let state = $crate::entry::init($lib::State::init(config).await)?;
                lambda_runtime::run(lambda_runtime::service_fn(|event| {
                    $lib::handle(&state, event)
                }))
                .await
            })
        }
    };
}

// What the macro's expansion names, reached through this crate so a function needs no line
// for them.
#[doc(hidden)]
pub use {lambda_runtime, tokio, tracing};
