//! The bench's users: sign-up events for post-confirmation (the harness's own fixture, with
//! names readable in the database) and confirmed users in a Cognito pool.

use anyhow::{Context, Result};
use harness::fixtures;
use serde_json::Value;

/// A post-confirmation event for a new user; `tag` and `i` make its sub and handle readable in
/// the database, the random suffix makes them unique across runs.
pub fn signup(tag: &str, i: usize) -> Value {
    let sub = fixtures::unique(&format!("{tag}-{i}"));
    let handle = fixtures::unique(&format!("{tag}{i}")).replace('-', "");
    fixtures::signup(&sub, &handle)
}

/// A confirmed Cognito user (as after sign-up and confirmation) with this handle as its
/// username and `preferred_username`, and this verified email: what post-confirmation and
/// drift-check's backfill turn into a row. Returns the sub Cognito gave it.
pub async fn confirmed_user(
    cognito: &aws_sdk_cognitoidentityprovider::Client,
    pool: &str,
    handle: &str,
    email: &str,
) -> Result<String> {
    use aws_sdk_cognitoidentityprovider::types::{AttributeType, MessageActionType};
    let attr = |name: &str, value: &str| {
        AttributeType::builder()
            .name(name)
            .value(value)
            .build()
            .context("attribute")
    };
    let created = cognito
        .admin_create_user()
        .user_pool_id(pool)
        .username(handle)
        .message_action(MessageActionType::Suppress)
        .user_attributes(attr("email", email)?)
        .user_attributes(attr("email_verified", "true")?)
        .user_attributes(attr("preferred_username", handle)?)
        .send()
        .await?;
    cognito
        .admin_set_user_password()
        .user_pool_id(pool)
        .username(handle)
        .password("Correct-Horse-9")
        .permanent(true)
        .send()
        .await?;
    created
        .user()
        .and_then(|u| u.attributes().iter().find(|a| a.name() == "sub"))
        .and_then(|a| a.value())
        .map(str::to_owned)
        .context("admin_create_user returned no sub")
}
