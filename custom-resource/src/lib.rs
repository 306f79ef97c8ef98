//! CloudFormation's custom-resource protocol, for the functions that back a custom resource.
//!
//! | module | concept |
//! |---|---|
//! | [`request`] | the event CloudFormation sends: Create, Update or Delete, and where to answer |
//! | [`response`] | the answer: SUCCESS or FAILED with a reason, the physical id, the data |
//! | [`sender`] | the PUT of the answer to the pre-signed `ResponseURL` (HTTPS to S3; plain HTTP locally) |
//! | [`respond`](mod@respond) | the driver: whatever the handler does (fails, runs out of time, panics), one answer is sent; or, split in two, [`decide`] (settle the answer, send nothing) and [`relay`] (send the answer another function settled) |
//!
//! CloudFormation waits up to an hour for an answer that never comes, so [`respond::respond`]
//! answers FAILED for a malformed request, a handler error, a handler still running near the
//! invocation's deadline, and a handler panic, always with the cause as the reason.
#![forbid(unsafe_code)]
#![warn(unreachable_pub)]

pub mod request;
pub mod respond;
pub mod response;
pub mod sender;

pub use request::{Request, RequestType, Unanswerable, UrlPolicy};
pub use respond::{
    Answered, Outcome, ProtocolError, Responder, decide, error_chain, relay, respond,
};
pub use response::{Response, Status};
pub use sender::{PutError, Sender};
