//! Which users of a `ListUsers` page must have a row: pure functions on the user record, so
//! the rule is the same whichever path hands the page to the check.
//!
//! A row is owed to every user who can sign in, or who could and whose identity Cognito has
//! already established:
//! - `CONFIRMED`: signed up and confirmed, or made by an administrator and past the first
//!   sign-in's new password.
//! - `EXTERNAL_PROVIDER`: a federated user. Cognito creates them at their first sign-in and
//!   they never pass through `CONFIRMED`.
//! - `RESET_REQUIRED`: a confirmed user whose password an administrator reset
//!   (`AdminResetUserPassword`), or a user imported confirmed from a CSV file. Their identity
//!   was established before the reset or by the import. Their next sign-in sets a new
//!   password (`ConfirmForgotPassword`, whose PostConfirmation would write the row anyway), so
//!   writing the row now only keeps it from being lost and follows their profile meanwhile.
//!
//! No row is owed to these:
//! - `FORCE_CHANGE_PASSWORD`: made by `AdminCreateUser` and not yet signed in. Such a user
//!   cannot get tokens until they answer `NEW_PASSWORD_REQUIRED`, which makes them
//!   `CONFIRMED`. Until then an administrator may still change every attribute. The
//!   sign-in guard writes the row at that first sign-in; without the guard, the next pass
//!   does.
//! - `UNCONFIRMED`: signed up but never confirmed.
//! - `ARCHIVED`, `COMPROMISED`, `UNKNOWN`, and any status this build does not know: none of
//!   them can sign in.
//!
//! The email rule is the same for every status, federated users included: a row is written
//! only with an address Cognito says is verified (`email_verified` is `"true"`,
//! [`shared::users::email_is_verified`]). For a federated user that flag comes only from the
//! identity provider's attribute mapping. Mapping `email_verified` is how the pool's
//! administrator says the provider proves its addresses. A provider that does not map it
//! could hand Cognito any address, so its users are reported as `unwritable_user` with the
//! reason ("not verified") and get no row until the mapping is added; they are never written
//! with an unproven address.

use std::collections::HashMap;

use aws_sdk_cognitoidentityprovider::types::{UserStatusType, UserType};

/// Whether a user in `status` must have a row (see the module's list).
pub fn must_have_row(status: Option<&UserStatusType>) -> bool {
    matches!(
        status,
        Some(
            UserStatusType::Confirmed
                | UserStatusType::ExternalProvider
                | UserStatusType::ResetRequired
        )
    )
}

/// A user of a page who must have a row: the sub, the Cognito user name and the attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowOwed {
    pub sub: String,
    pub username: Option<String>,
    pub attributes: HashMap<String, String>,
}

/// The user's attributes by name; an attribute without a value is left out.
pub fn attributes(user: &UserType) -> HashMap<String, String> {
    user.attributes()
        .iter()
        .filter_map(|a| Some((a.name().to_owned(), a.value()?.to_owned())))
        .collect()
}

/// The sub (the attribute `sub_attr`) of any user, whatever the status, for the pass's list of
/// subs seen; `None` for a user without one.
pub fn sub_of(user: &UserType, sub_attr: &str) -> Option<String> {
    user.attributes()
        .iter()
        .find(|a| a.name() == sub_attr)
        .and_then(|a| a.value())
        .map(str::to_owned)
}

/// The user as one who must have a row, or `None` when their status owes none
/// ([`must_have_row`]) or they have no sub.
pub fn row_owed(user: &UserType, sub_attr: &str) -> Option<RowOwed> {
    if !must_have_row(user.user_status()) {
        return None;
    }
    let attributes = attributes(user);
    Some(RowOwed {
        sub: attributes.get(sub_attr)?.clone(),
        username: user.username().map(str::to_owned),
        attributes,
    })
}

#[cfg(test)]
mod tests {
    use aws_sdk_cognitoidentityprovider::types::AttributeType;
    use serde_json::Value;
    use shared::users::{AttributeMapping, NewUser};

    use super::*;

    /// `ListUsers` answers as AWS documents them (the API reference's response syntax), one
    /// user of each status, and a federated user with its `identities` attribute: moto cannot
    /// make an `EXTERNAL_PROVIDER` user, so the shape is recorded here.
    const LIST_USERS: &str = include_str!("list-users-statuses.json");

    /// The page's users as the SDK hands them to the check.
    fn page() -> Vec<UserType> {
        let doc: Value = serde_json::from_str(LIST_USERS).unwrap();
        doc["Users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| {
                let mut b = UserType::builder()
                    .username(u["Username"].as_str().unwrap())
                    .enabled(u["Enabled"].as_bool().unwrap())
                    .user_status(UserStatusType::from(u["UserStatus"].as_str().unwrap()));
                for a in u["Attributes"].as_array().unwrap() {
                    b = b.attributes(
                        AttributeType::builder()
                            .name(a["Name"].as_str().unwrap())
                            .value(a["Value"].as_str().unwrap())
                            .build()
                            .unwrap(),
                    );
                }
                b.build()
            })
            .collect()
    }

    #[test]
    fn every_status_that_can_sign_in_owes_a_row_and_no_other() {
        let owed: Vec<(String, bool)> = page()
            .iter()
            .map(|u| {
                (
                    u.user_status().unwrap().as_str().to_owned(),
                    row_owed(u, "sub").is_some(),
                )
            })
            .collect();
        let owes = |status: &str| {
            owed.iter()
                .filter(|(s, _)| s == status)
                .all(|(_, owed)| *owed)
        };
        for status in ["CONFIRMED", "EXTERNAL_PROVIDER", "RESET_REQUIRED"] {
            assert!(owes(status), "{status}: {owed:?}");
        }
        for status in [
            "FORCE_CHANGE_PASSWORD",
            "UNCONFIRMED",
            "ARCHIVED",
            "COMPROMISED",
            "UNKNOWN",
            "SOME_STATUS_TO_COME",
        ] {
            assert!(
                owed.iter().any(|(s, _)| s == status),
                "the fixture has a {status} user"
            );
            assert!(
                owed.iter()
                    .filter(|(s, _)| s == status)
                    .all(|(_, owed)| !owed),
                "{status}: {owed:?}"
            );
        }
        assert!(!must_have_row(None));
    }

    #[test]
    fn a_federated_user_with_a_verified_email_gets_the_row_the_trigger_writes() {
        let users = page();
        let federated = users
            .iter()
            .find(|u| u.username() == Some("Google_107163467358521046271"))
            .unwrap();
        let owed = row_owed(federated, "sub").unwrap();
        assert!(owed.attributes["identities"].contains("\"providerName\":\"Google\""));
        let row = NewUser::from_confirmed_attributes(
            owed.username.as_deref(),
            &owed.attributes,
            &AttributeMapping::default(),
        )
        .unwrap();
        assert_eq!(row.cognito_user_id, "7c1d2f3e-0a4b-4c5d-8e9f-000000000101");
        assert_eq!(row.email, "grace@example.com");
        // No preferred_username from the provider: the handle is the Cognito user name.
        assert_eq!(row.handle, "Google_107163467358521046271");
        assert_eq!(row.display_name, "Grace Hopper");
    }

    #[test]
    fn a_federated_user_whose_provider_does_not_map_email_verified_gets_no_row() {
        let users = page();
        let unmapped = users
            .iter()
            .find(|u| u.username() == Some("oidc-corp_ada"))
            .unwrap();
        let owed = row_owed(unmapped, "sub").expect("still owed a row: reported, not skipped");
        let e = NewUser::from_confirmed_attributes(
            owed.username.as_deref(),
            &owed.attributes,
            &AttributeMapping::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("not verified"), "{e}");
    }
}
