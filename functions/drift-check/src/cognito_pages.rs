//! `ListUsers`, paced ([`crate::pacing`]), a page at a time, as a [`Page`]: the one place the
//! crate calls Cognito. The lister (outside the VPC) reads the pool with it; drift-check itself
//! only when it lists the pool in its own run (`DRIFT_USERS_FROM=cognito`, which needs NAT or
//! a Cognito endpoint that serves the pool).

use std::{collections::HashMap, time::Instant};

use aws_sdk_cognitoidentityprovider::{
    Client,
    error::{ProvideErrorMetadata, SdkError},
    types::UserType,
};

use shared::env::{ConfigError, Env};

use crate::{
    Error,
    listing::{ListedUser, Page},
    pacing::{Pacer, backoff},
};

/// Which pool, and how many users a page.
#[derive(Debug, Clone, Copy)]
pub struct Pool<'a> {
    pub id: &'a str,
    pub page_size: i32,
}

/// The pool (`USER_POOL_ID`, required) and the pacing of `ListUsers`
/// (`DRIFT_LIST_USERS_PER_SECOND`, `DRIFT_PAGE_SIZE`) by drift-check's rules, for the lister.
pub fn pool_and_pacing(env: &impl Env) -> Result<(String, f64, i32), ConfigError> {
    let pool = env.required("USER_POOL_ID", "(region_id)")?;
    let ok = pool.split_once('_').is_some_and(|(region, id)| {
        !region.is_empty()
            && !id.is_empty()
            && pool.len() <= 55
            && pool
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    });
    if !ok {
        return Err(ConfigError::invalid(
            "USER_POOL_ID",
            "expected <region>_<id>",
        ));
    }
    let page_size: i32 = env.parse_or("DRIFT_PAGE_SIZE", 60, "a whole number from 1 to 60")?;
    if !(1..=60).contains(&page_size) {
        return Err(ConfigError::invalid(
            "DRIFT_PAGE_SIZE",
            "expected a whole number from 1 to 60",
        ));
    }
    Ok((pool, crate::config::list_users_rate(env)?, page_size))
}

/// What asking for the next page gave.
pub enum Fetched {
    Page(Page),
    /// Cognito refused the stored token: it expired, or belongs to a pool that was recreated.
    TokenRefused(String),
    /// The deadline comes before the next page could be read (pacing, backoff).
    OutOfTime,
}

/// A user as the users check reads it.
pub fn listed(user: &UserType) -> ListedUser {
    let attributes: HashMap<String, String> = user
        .attributes()
        .iter()
        .filter_map(|a| Some((a.name().to_owned(), a.value()?.to_owned())))
        .collect();
    ListedUser {
        username: user.username().map(str::to_owned),
        status: user.user_status().map(|s| s.as_str().to_owned()),
        attributes,
    }
}

/// Reads the page at `token`, paced; waits out throttling while the deadline allows.
pub async fn fetch(
    cognito: &Client,
    pool: Pool<'_>,
    pacer: &mut Pacer,
    token: Option<&str>,
    deadline: Instant,
) -> Result<Fetched, Error> {
    let mut throttled = 0;
    loop {
        let slot = pacer.next_slot(Instant::now());
        if slot >= deadline {
            return Ok(Fetched::OutOfTime);
        }
        tokio::time::sleep_until(slot.into()).await;
        // From when the call really starts: a late wake-up must not bring the next call closer.
        pacer.take(Instant::now());
        let result = cognito
            .list_users()
            .user_pool_id(pool.id)
            .limit(pool.page_size)
            .set_pagination_token(token.map(str::to_owned))
            .send()
            .await;
        match result {
            Ok(page) => {
                return Ok(Fetched::Page(Page {
                    users: page.users().iter().map(listed).collect(),
                    next: page
                        .pagination_token()
                        .filter(|t| !t.is_empty())
                        .map(str::to_owned),
                }));
            }
            Err(e) if token.is_some() && token_refused(&e) => {
                return Ok(Fetched::TokenRefused(shared::aws::error_line(&e)));
            }
            Err(e) if is_throttle(&e) => {
                pacer.slow_down();
                let wait = backoff(throttled);
                throttled += 1;
                tracing::warn!(
                    wait_ms = wait.as_millis() as u64,
                    interval_ms = pacer.interval().as_millis() as u64,
                    "ListUsers throttled; waiting and slowing down"
                );
                if Instant::now() + wait >= deadline {
                    return Ok(Fetched::OutOfTime);
                }
                tokio::time::sleep(wait).await;
            }
            Err(e) => return Err(Error::cognito(&e)),
        }
    }
}

fn is_throttle<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    matches!(
        e.code(),
        Some("TooManyRequestsException" | "ThrottlingException" | "Throttling")
    )
}

/// Cognito answers an expired or foreign pagination token as a bad parameter (moto as
/// `InvalidToken`); sent with a token, either means the pass must start again.
fn token_refused<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    matches!(
        e.code(),
        Some("InvalidParameterException" | "InvalidToken" | "InvalidTokenException")
    )
}
