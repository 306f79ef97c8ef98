//! The one `main` every function has: a single-threaded runtime (one event at a time per
//! environment, so the handler and the Postgres connection task share one thread, with no
//! cross-thread wake-ups on the hot path), logging, config read once, the state built once,
//! then the runtime's loop, with each cold-start phase marked ([`crate::cold_start`]).

/// Expands to `fn main` for the library crate `$lib`, which provides `Config::from_env`,
/// `State::init(config)` and `handle(&state, event)`. A failed config or init is logged and
/// ends the cold start with the error.
#[macro_export]
macro_rules! lambda_main {
    ($lib:ident) => {
        fn main() -> Result<(), $crate::entry::lambda_runtime::Error> {
            use $crate::entry::{lambda_runtime, tokio, tracing};
            $crate::cold_start::begin();
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(async {
                    $crate::logging::init();
                    $crate::cold_start::mark("logging");
                    let config = $lib::Config::from_env()
                        .inspect_err(|e| tracing::error!(error = %e, "invalid configuration"))?;
                    $crate::cold_start::mark("config");
                    let state = $lib::State::init(config)
                        .await
                        .inspect_err(|e| tracing::error!(error = %e, "init failed"))?;
                    $crate::cold_start::mark("init");
                    lambda_runtime::run(lambda_runtime::service_fn(|event| {
                        $lib::handle(&state, event)
                    }))
                    .await
                })
        }
    };
}

// What the expansion names, reached through this crate so a function needs no line for them.
#[doc(hidden)]
pub use {lambda_runtime, tokio, tracing};
