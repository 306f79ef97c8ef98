//! Time left before Lambda's deadline for the current invocation, which every function
//! budgets its work against.

use std::time::{Duration, SystemTime};

use lambda_runtime::Context;

/// How long until the invocation's deadline (zero once it has passed).
pub fn time_left(context: &Context) -> Duration {
    context
        .deadline()
        .duration_since(SystemTime::now())
        .unwrap_or_default()
}
