//! Test support shared by the end-to-end tests and the benchmark:
//!
//! - [`stack`]: the local Postgres and moto from `scripts/stack`, private stacks for fault
//!   injection and SDK configuration for moto; fresh databases ([`TestDb`]); moto's request
//!   recorder ([`stack::RecordedCall`]); the function binaries and sample events
//!   ([`function_binary`], [`event`]).
//! - [`aws`]: seeding and reading moto's EC2 and Cognito.
//! - [`fixtures`]: the events, rows and function environments several tests build alike.
//! - [`front`]: a TCP front for Postgres that records and can stall logins.
//! - [`latency`]: a TCP front that models a network's round trips and counts the exchanges.
//! - [`runtime_api`]: a local Lambda Runtime API that runs a function binary as Lambda does.
//! - [`recorder`]: a local stand-in for a custom resource's pre-signed `ResponseURL`.
//! - [`rie`]: AWS's Runtime Interface Emulator as a second driver of the same binaries.
//! - [`leaks`]: the secrets no function may print or return, checked on every invocation.
//! - [`workspace`]: the crate graph from `cargo metadata`, for the layout and IAM tests.
#![forbid(unsafe_code)]

pub mod aws;
pub mod fixtures;
pub mod front;
pub mod latency;
pub mod leaks;
pub mod recorder;
pub mod rie;
pub mod runtime_api;
pub mod stack;
pub mod workspace;

pub use leaks::forbid;
pub use runtime_api::{Function, Invocation, Outcome};
pub use stack::{Route, Stack, TestDb, event, function_binary};
