//! pool-trigger: the custom resource that wires one of the stack's functions into an existing
//! Cognito user pool as one trigger, keeping every other setting of the pool, and takes it out
//! again on Delete; and, on the pool the stack creates, the resource whose Delete takes the
//! stack's triggers out of that retained pool ([`created_pool`]).
//!
//! Each resource manages ONE trigger, named by its `Trigger` property: `PostConfirmation`
//! (when absent, as every resource made before there were two), `PreSignUp` or
//! `PostAuthentication` (the sign-in guard); one function serves every resource, and a
//! resource never touches another trigger.
//!
//! Layout:
//! - [`config`]: the settings read at cold start, among them the one function each trigger may
//!   be set to ([`Functions`]), and the [`State`] built from them once.
//! - [`properties`]: the resource's [`Properties`], checked.
//! - [`wiring`]: [`handle`], and the Create, Update and Delete steps against the pool.
//! - [`created_pool`]: the pool the stack creates, whose triggers the stack's delete takes out.
//! - [`trigger`]: which trigger a resource manages, and every name that follows from it.
//! - [`physical_id`]: the physical id, which records the trigger ours replaced, signed.
//! - [`record_key`]: the stack's key that signs it, read from a secret only this role may read.
//! - [`home`]: the stack's account and region, the only place an earlier trigger is put back
//!   from.
//! - [`settings`]: every other setting of the pool, carried over in `UpdateUserPool`.
//! - [`pool_triggers`]: the pool's triggers, one replaced and the rest carried, and that
//!   trigger's tags.
//! - [`verification`]: the one set of verification messages `UpdateUserPool` accepts.
//! - [`error`]: what can go wrong, in the operator's words ([`update_failure`]).
#![forbid(unsafe_code)]
// The runtime's service stack nests the handler's future deeply.
#![recursion_limit = "256"]

pub mod config;
pub mod created_pool;
pub mod error;
pub mod home;
pub mod physical_id;
pub mod pool_triggers;
pub mod properties;
pub mod record_key;
pub mod settings;
pub mod trigger;
pub mod verification;
pub mod wiring;

pub use config::{Config, Functions, PoolLayout, State};
pub use error::{Error, update_failure};
pub use properties::Properties;
pub use wiring::{apply, handle};
