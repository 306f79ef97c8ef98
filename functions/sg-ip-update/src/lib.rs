//! sg-ip-update: moves a developer's ingress rule on the database security group to their new
//! address when their workspace reports an IP change. Only known owners, only the sender the
//! row names (as AWS authenticated it through the Function URL), only one host, and the table
//! records the desired state before AWS is touched.
//!
//! Layout, on top of the `ingress` crate's store and EC2 calls:
//! - [`config`]: the settings read at cold start, and the [`State`] built from them once.
//! - [`request`]: reads and refuses requests, without I/O.
//! - [`source`]: the one kind of request each deployed function takes.
//! - [`handler`]: [`handle`] and its [`Answer`] for each way in; audits requests refused
//!   before their owner was looked up.
//! - [`update`]: the update itself: the row and the sender's right to it, then, under the
//!   owner's lock, the request taken once ([`replay`]), AWS, and the audit row.
//! - [`replay`]: what names one signed request, and the record that takes it only once.
//! - [`error`]: classifies failures and says how each is answered.
#![forbid(unsafe_code)]

pub mod config;
pub mod error;
pub mod handler;
pub mod replay;
pub mod request;
pub mod source;
pub mod stale;
pub mod update;

pub use config::{Config, State};
pub use error::Error;
pub use handler::{Answer, Refusal, Summary, handle};
pub use request::{
    Envelope, IpChange, Request, Sender, caller_of, parse_event, parse_event_at, way_in,
};
pub use source::{Source, check_source};
pub use stale::is_stale;
