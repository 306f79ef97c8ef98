//! Users: from Cognito attributes to a `users` row, inserted idempotently. The sign-up trigger
//! and drift-check's backfill both go through here, so a backfilled row is the row the trigger
//! would have written.
//!
//! Three parts: what makes a handle one the table can hold (`handle`: [`handle_problem`]),
//! Cognito attributes to a row's values (`attributes`: [`AttributeMapping`], [`SignUp`],
//! [`NewUser`], and the verified email a confirmed user's row needs, [`email_is_verified`]), and the SQL that inserts a row idempotently (`store`:
//! [`insert_confirmed_user`]).

mod attributes;
mod handle;
mod store;

pub use attributes::{AttributeMapping, NewUser, SignUp, UserError, email_is_verified};
pub use handle::{MAX_HANDLE_CHARS, MAX_SUB_CHARS, handle_problem};
pub use store::{
    InsertMode, InsertOutcome, handle_is_taken, insert_confirmed_user, insert_confirmed_user_with,
};
