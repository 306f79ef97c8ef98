//! A local Lambda Runtime API that runs a function's binary as Lambda does:
//!
//! - [`Function`] (`function`): one execution environment; invokes it and checks everything it
//!   answers and prints for forbidden values.
//! - `server`: the Runtime API over HTTP, its queue of events and the invocations in flight.
//! - `process`: the function's process, its output lines, and stopping it.
//! - [`Invocation`], [`Outcome`] (`invocation`): what one invocation came to.

mod function;
mod invocation;
mod process;
mod server;

pub use function::Function;
pub use invocation::{Invocation, Outcome};
