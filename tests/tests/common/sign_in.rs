//! An administrator's user, as staff are onboarded and as the tests make them in moto: made
//! with a temporary password (`FORCE_CHANGE_PASSWORD`), then their first sign-in, which sets
//! the new password Cognito asks for (`CONFIRMED`).
// Each test file uses part of this.
#![allow(dead_code)]

use aws_sdk_cognitoidentityprovider::types::{
    AttributeType, AuthFlowType, ChallengeNameType, ExplicitAuthFlowsType, MessageActionType,
};

use super::drift::World;

pub const TEMPORARY: &str = "Temporary-Pass-1";

/// A user made by an administrator, as staff are onboarded: a temporary password, no
/// invitation sent. Returns the sub.
pub async fn admin_created(w: &World, username: &str) -> String {
    let attr = |n: &str, v: &str| AttributeType::builder().name(n).value(v).build().unwrap();
    let made = w
        .cognito
        .admin_create_user()
        .user_pool_id(&w.pool)
        .username(username)
        .temporary_password(TEMPORARY)
        .user_attributes(attr("email", &format!("{username}@example.com")))
        .user_attributes(attr("email_verified", "true"))
        .user_attributes(attr("name", &format!("{username} name")))
        .message_action(MessageActionType::Suppress)
        .send()
        .await
        .unwrap();
    made.user()
        .unwrap()
        .attributes()
        .iter()
        .find(|a| a.name() == "sub")
        .and_then(|a| a.value())
        .unwrap()
        .to_owned()
}

/// The first sign-in: the temporary password, then the new one Cognito asks for.
pub async fn first_sign_in(w: &World, username: &str) {
    let client = w
        .cognito
        .create_user_pool_client()
        .user_pool_id(&w.pool)
        .client_name("app")
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowAdminUserPasswordAuth)
        .send()
        .await
        .unwrap();
    let client_id = client.user_pool_client().unwrap().client_id().unwrap();
    let started = w
        .cognito
        .admin_initiate_auth()
        .user_pool_id(&w.pool)
        .client_id(client_id)
        .auth_flow(AuthFlowType::AdminUserPasswordAuth)
        .auth_parameters("USERNAME", username)
        .auth_parameters("PASSWORD", TEMPORARY)
        .send()
        .await
        .unwrap();
    assert_eq!(
        started.challenge_name(),
        Some(&ChallengeNameType::NewPasswordRequired)
    );
    let done = w
        .cognito
        .admin_respond_to_auth_challenge()
        .user_pool_id(&w.pool)
        .client_id(client_id)
        .challenge_name(ChallengeNameType::NewPasswordRequired)
        .session(started.session().unwrap())
        .challenge_responses("USERNAME", username)
        .challenge_responses("NEW_PASSWORD", "Correct-Horse-9")
        .send()
        .await
        .unwrap();
    assert!(done.authentication_result().is_some(), "{done:?}");
}

pub async fn status(w: &World, username: &str) -> String {
    w.cognito
        .admin_get_user()
        .user_pool_id(&w.pool)
        .username(username)
        .send()
        .await
        .unwrap()
        .user_status()
        .unwrap()
        .as_str()
        .to_owned()
}
