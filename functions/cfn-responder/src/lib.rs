//! cfn-responder: the `ServiceToken` of a custom resource whose work runs in a function inside
//! the VPC (schema-migrations). It runs outside the VPC, invokes that function synchronously
//! and answers CloudFormation with the result, so the answer never needs a route from the
//! VPC to CloudFormation's response bucket (NAT or an S3 gateway endpoint).
//!
//! - Create and Update: the target's answer (status, reason, physical id, data) is passed on
//!   as it is. When the target cannot be invoked, fails to start, crashes, times out or answers
//!   something else, the answer is FAILED with that cause.
//! - Delete: the same, except that a target which cannot run is answered SUCCESS with a reason
//!   saying what happened. A Delete that waited for a function which cannot start would hold the
//!   stack's delete (or rollback) until CloudFormation gives up; the target's Delete must
//!   therefore be one that may be skipped (the migrations' leaves the data as it is anyway).
//!
//! Layout: [`config`], the target read once at cold start and the [`State`] built from it;
//! [`relay`], one request handed on and its answer ([`handle`]).
#![forbid(unsafe_code)]
// The runtime's service stack nests the handler's future deeply.
#![recursion_limit = "256"]

pub mod config;
pub mod relay;

pub use config::{Config, InitError, State, TargetFunction};
pub use relay::{RelayError, handle, on_failure};
