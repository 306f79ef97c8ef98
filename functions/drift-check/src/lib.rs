//! drift-check: compares the desired state in Postgres (managed ingress rules, the users
//! table) with what AWS has (security groups, the Cognito pool), records every difference, and
//! in remediate mode moves AWS and the table towards each other. SQL is the source of truth.
//!
//! Layout:
//! - [`config`]: the settings read at cold start, and the [`State`] built from them once.
//! - [`request`]: what a schedule, a CloudTrail event or a direct call asks for, without I/O.
//! - [`handler`]: [`handle`], one run from the request to its recorded end.
//! - [`exclusive`]: the lock that lets one run at a time remediate.
//! - [`rules_check`]: security groups, compared ([`rules_check::compare`]) and remediated.
//! - [`users_check`]: the user pool against `users`, page by page, lost sign-ups backfilled;
//!   [`pass`] keeps a pass over the pool across runs, [`pacing`] paces `ListUsers`, and
//!   [`profiles`] follows profile changes.
//! - [`report`]: the run's record: finding kinds and actions, bookkeeping, metric lines.
//! - [`error`]: why a run could not check, and whether a retry can help.
//! - [`listing`]: a listing of the pool handed over by the lister, checked and staged.
//! - [`lister`]: the same binary run outside the VPC (`DRIFT_RUNS_AS=lister`): lists the pool
//!   ([`cognito_pages`], the crate's one Cognito call) and hands it to drift-check.
#![forbid(unsafe_code)]

pub mod cognito_pages;
pub mod config;
pub mod error;
pub mod exclusive;
pub mod handler;
pub mod lister;
pub mod listing;
pub mod pacing;
pub mod pass;
pub mod profiles;
pub mod report;
pub mod request;
pub mod rules_check;
pub mod users_check;

pub use config::{Config, DEFAULT_METRICS_NAMESPACE, State};
pub use error::Error;
pub use handler::{Answer, Completion, handle};
