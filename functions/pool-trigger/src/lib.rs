//! pool-trigger: the custom resource that wires one of the stack's functions into an existing
//! Cognito user pool as one trigger, keeping every other setting of the pool, and takes it out
//! again on Delete.
//!
//! Each resource manages ONE trigger, named by its `Trigger` property: `PostConfirmation`
//! (when absent, as every resource made before there were two) or `PreSignUp`; one function
//! serves both resources, and a resource never touches the other trigger.
//!
//! Layout:
//! - [`config`]: the settings read at cold start, among them the one function each trigger may
//!   be set to ([`Functions`]), and the [`State`] built from them once.
//! - [`properties`]: the resource's [`Properties`], checked.
//! - [`wiring`]: [`handle`], and the Create, Update and Delete steps against the pool.
//! - [`trigger`]: which trigger a resource manages, and every name that follows from it.
//! - [`physical_id`]: the physical id, which keeps the trigger ours replaced.
//! - [`settings`]: every other setting of the pool, carried over in `UpdateUserPool`.
//! - [`pool_triggers`]: the pool's triggers, one replaced and the rest carried, and the tag
//!   that remembers the earlier one.
//! - [`verification`]: the one set of verification messages `UpdateUserPool` accepts.
//! - [`error`]: what can go wrong, in the operator's words ([`update_failure`]).
#![forbid(unsafe_code)]
// The runtime's service stack nests the handler's future deeply.
#![recursion_limit = "256"]

pub mod config;
pub mod error;
pub mod physical_id;
pub mod pool_triggers;
pub mod properties;
pub mod settings;
pub mod trigger;
pub mod verification;
pub mod wiring;

pub use config::{Config, Functions, State};
pub use error::{Error, update_failure};
pub use properties::Properties;
pub use wiring::{apply, handle};
