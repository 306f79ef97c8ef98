//! From Cognito attributes to a row's values: which attribute feeds which column, and the
//! checks every path to a row makes (the PreSignUp trigger, the PostConfirmation insert and
//! drift-check's backfill), the verified email ([`email_is_verified`]) among them for the two
//! that write a confirmed user's row ([`NewUser::from_confirmed_attributes`]).

use std::collections::HashMap;

use super::handle::{MAX_SUB_CHARS, handle_problem};
use crate::env::{ConfigError, Env};

/// Which Cognito attribute feeds which column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeMapping {
    pub sub: String,
    pub email: String,
    pub display_name: String,
    pub handle: String,
}

impl Default for AttributeMapping {
    fn default() -> Self {
        Self {
            sub: "sub".to_owned(),
            email: "email".to_owned(),
            display_name: "name".to_owned(),
            handle: "preferred_username".to_owned(),
        }
    }
}

impl AttributeMapping {
    /// Reads `USER_ATTR_SUB`, `USER_ATTR_EMAIL`, `USER_ATTR_DISPLAY_NAME`, `USER_ATTR_HANDLE`,
    /// each defaulting to the standard attribute.
    pub fn from_lookup(env: &impl Env) -> Result<Self, ConfigError> {
        let d = Self::default();
        let pick = |var: &str, default: String| -> Result<String, ConfigError> {
            match env.non_empty(var) {
                None => Ok(default),
                Some(v) if v.len() <= 128 && !v.contains(char::is_whitespace) => Ok(v),
                Some(_) => Err(ConfigError::invalid(var, "expected an attribute name")),
            }
        };
        Ok(Self {
            sub: pick("USER_ATTR_SUB", d.sub)?,
            email: pick("USER_ATTR_EMAIL", d.email)?,
            display_name: pick("USER_ATTR_DISPLAY_NAME", d.display_name)?,
            handle: pick("USER_ATTR_HANDLE", d.handle)?,
        })
    }
}

/// A confirmed user, ready to insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub cognito_user_id: String,
    pub email: String,
    pub display_name: String,
    pub handle: String,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum UserError {
    #[error("the user attribute `{0}` is missing or empty")]
    MissingAttribute(String),
    #[error("the user attribute `{attribute}` cannot be stored: {reason}")]
    InvalidAttribute {
        attribute: String,
        reason: &'static str,
    },
}

/// What a sign-up must carry to become a row, before Cognito has given it a sub: the checks
/// the PreSignUp trigger, the PostConfirmation insert and drift-check's backfill all make, so
/// that a sign-up refused by none of them is one the table takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignUp {
    pub email: String,
    pub display_name: String,
    pub handle: String,
}

impl SignUp {
    /// Maps Cognito attributes to the row's values. The handle falls back to the Cognito user
    /// name, and the display name to the handle. Values are kept verbatim: only what Postgres
    /// cannot store (a NUL character) and a handle [`handle_problem`] refuses are refused.
    pub fn from_attributes(
        user_name: Option<&str>,
        attributes: &HashMap<String, String>,
        mapping: &AttributeMapping,
    ) -> Result<Self, UserError> {
        let get = |name: &str| {
            attributes
                .get(name)
                .map(String::as_str)
                .filter(|v| !v.trim().is_empty())
        };
        let email = get(&mapping.email)
            .ok_or_else(|| UserError::MissingAttribute(mapping.email.clone()))?;
        let handle = get(&mapping.handle)
            .or(user_name.filter(|u| !u.trim().is_empty()))
            .ok_or_else(|| {
                UserError::MissingAttribute(format!("{} (or userName)", mapping.handle))
            })?;
        let display_name = get(&mapping.display_name).unwrap_or(handle);
        for (attribute, value) in [
            (&mapping.email, email),
            (&mapping.handle, handle),
            (&mapping.display_name, display_name),
        ] {
            if value.contains('\0') {
                return Err(UserError::InvalidAttribute {
                    attribute: attribute.clone(),
                    reason: "it contains a NUL character",
                });
            }
        }
        if let Some(reason) = handle_problem(handle) {
            return Err(UserError::InvalidAttribute {
                attribute: mapping.handle.clone(),
                reason,
            });
        }
        Ok(Self {
            email: email.to_owned(),
            display_name: display_name.to_owned(),
            handle: handle.to_owned(),
        })
    }
}

/// Whether Cognito says the user proved the address: `email_verified` is `"true"`. Cognito
/// verifies only its standard `email`; a pool mapped to another attribute has no such flag,
/// and its addresses are taken as they are.
pub fn email_is_verified(mapping: &AttributeMapping, attrs: &HashMap<String, String>) -> bool {
    mapping.email != "email" || attrs.get("email_verified").map(String::as_str) == Some("true")
}

impl NewUser {
    /// The row for a confirmed user, as both writers of one make it (the PostConfirmation
    /// trigger and drift-check's backfill): [`NewUser::from_attributes`], and an email the
    /// user has verified ([`email_is_verified`]). A user confirmed without proving the
    /// address (AdminConfirmSignUp, a federated sign-in whose provider says it is not
    /// verified) could have typed anyone's: no row is written with it, by either path.
    pub fn from_confirmed_attributes(
        user_name: Option<&str>,
        attributes: &HashMap<String, String>,
        mapping: &AttributeMapping,
    ) -> Result<Self, UserError> {
        let user = Self::from_attributes(user_name, attributes, mapping)?;
        if !email_is_verified(mapping, attributes) {
            return Err(UserError::InvalidAttribute {
                attribute: mapping.email.clone(),
                reason: "it is not verified (`email_verified` is not \"true\")",
            });
        }
        Ok(user)
    }

    /// Maps Cognito attributes to a row: the sub, then [`SignUp::from_attributes`].
    pub fn from_attributes(
        user_name: Option<&str>,
        attributes: &HashMap<String, String>,
        mapping: &AttributeMapping,
    ) -> Result<Self, UserError> {
        let cognito_user_id = attributes
            .get(&mapping.sub)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| UserError::MissingAttribute(mapping.sub.clone()))?;
        let sign_up = SignUp::from_attributes(user_name, attributes, mapping)?;
        if cognito_user_id.contains('\0') {
            return Err(UserError::InvalidAttribute {
                attribute: mapping.sub.clone(),
                reason: "it contains a NUL character",
            });
        }
        if cognito_user_id.chars().count() > MAX_SUB_CHARS {
            return Err(UserError::InvalidAttribute {
                attribute: mapping.sub.clone(),
                reason: "it is longer than 128 characters",
            });
        }
        Ok(Self {
            cognito_user_id: cognito_user_id.to_owned(),
            email: sign_up.email,
            display_name: sign_up.display_name,
            handle: sign_up.handle,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn maps_the_standard_attributes() {
        let u = NewUser::from_attributes(
            Some("u1"),
            &attrs(&[
                ("sub", "s"),
                ("email", "e@x"),
                ("name", "N"),
                ("preferred_username", "h"),
            ]),
            &AttributeMapping::default(),
        )
        .unwrap();
        assert_eq!((u.cognito_user_id.as_str(), u.email.as_str()), ("s", "e@x"));
        assert_eq!((u.display_name.as_str(), u.handle.as_str()), ("N", "h"));
    }

    #[test]
    fn handle_falls_back_to_user_name_and_name_to_handle() {
        let u = NewUser::from_attributes(
            Some("andrew"),
            &attrs(&[("sub", "s"), ("email", "e@x")]),
            &AttributeMapping::default(),
        )
        .unwrap();
        assert_eq!(
            (u.handle.as_str(), u.display_name.as_str()),
            ("andrew", "andrew")
        );
    }

    #[test]
    fn missing_required_attributes_are_named() {
        let m = AttributeMapping::default();
        let e = NewUser::from_attributes(Some("u"), &attrs(&[("email", "e")]), &m).unwrap_err();
        assert_eq!(e, UserError::MissingAttribute("sub".into()));
        let e = NewUser::from_attributes(Some("u"), &attrs(&[("sub", "s"), ("email", " ")]), &m)
            .unwrap_err();
        assert_eq!(e, UserError::MissingAttribute("email".into()));
        let e = NewUser::from_attributes(None, &attrs(&[("sub", "s"), ("email", "e")]), &m)
            .unwrap_err();
        assert!(e.to_string().contains("preferred_username (or userName)"));
    }

    #[test]
    fn nul_is_refused_everything_else_kept() {
        let m = AttributeMapping::default();
        let e = NewUser::from_attributes(
            Some("u"),
            &attrs(&[("sub", "s"), ("email", "e"), ("name", "a\0b")]),
            &m,
        )
        .unwrap_err();
        assert!(
            matches!(e, UserError::InvalidAttribute { ref attribute, .. } if attribute == "name")
        );
        let odd = "'); DROP TABLE users;-- 🦀 مرحبا";
        let u = NewUser::from_attributes(
            Some("u"),
            &attrs(&[("sub", "s"), ("email", "e"), ("name", odd)]),
            &m,
        )
        .unwrap();
        assert_eq!(u.display_name, odd);
    }

    #[test]
    fn a_handle_the_unique_index_could_not_hold_or_tell_apart_is_refused() {
        let m = AttributeMapping::default();
        let with_handle = |h: &str| {
            NewUser::from_attributes(
                Some("u"),
                &attrs(&[("sub", "s"), ("email", "e"), ("preferred_username", h)]),
                &m,
            )
        };
        // 1,000 CJK characters: 3,000 bytes, past the btree's 2,704.
        let cjk = "漢".repeat(1000);
        for (handle, reason) in [
            (cjk.as_str(), "longer than 64"),
            ("andrew\u{200B}", "invisible"),
            ("\u{202E}werdna", "invisible"),
            ("and\nrew", "control"),
            ("Ａｎｄｒｅｗ", "NFKC"),
            ("ﬁsh", "NFKC"),
        ] {
            let e = with_handle(handle).unwrap_err();
            assert!(
                matches!(&e, UserError::InvalidAttribute { attribute, reason: r }
                    if attribute == "preferred_username" && r.contains(reason)),
                "{handle:?}: {e}"
            );
        }
        assert!(with_handle(&"漢".repeat(64)).is_ok());
        assert!(with_handle("🦀 Ölçü مرحبا").is_ok());
        let long_sub = "s".repeat(129);
        let e =
            NewUser::from_attributes(Some("u"), &attrs(&[("sub", &long_sub), ("email", "e")]), &m)
                .unwrap_err();
        assert!(e.to_string().contains("longer than 128"), "{e}");
    }

    #[test]
    fn a_confirmed_users_row_needs_a_verified_email_unless_the_pool_maps_another() {
        let m = AttributeMapping::default();
        let with = |verified: Option<&str>| {
            let mut a = attrs(&[("sub", "s"), ("email", "e@x")]);
            if let Some(v) = verified {
                a.insert("email_verified".into(), v.into());
            }
            NewUser::from_confirmed_attributes(Some("u"), &a, &m)
        };
        assert_eq!(with(Some("true")).unwrap().email, "e@x");
        for verified in [None, Some("false"), Some("True"), Some("")] {
            let e = with(verified).unwrap_err();
            assert!(
                matches!(&e, UserError::InvalidAttribute { attribute, reason }
                    if attribute == "email" && reason.contains("not verified")),
                "{verified:?}: {e}"
            );
        }
        let other = AttributeMapping {
            email: "custom:email".into(),
            ..AttributeMapping::default()
        };
        let a = attrs(&[("sub", "s"), ("custom:email", "e@x")]);
        assert!(NewUser::from_confirmed_attributes(Some("u"), &a, &other).is_ok());
    }

    #[test]
    fn mapping_is_configurable() {
        let env: HashMap<&str, &str> = [("USER_ATTR_HANDLE", "custom:handle")]
            .into_iter()
            .collect();
        let m = AttributeMapping::from_lookup(&env).unwrap();
        assert_eq!(m.handle, "custom:handle");
        let env: HashMap<&str, &str> = [("USER_ATTR_EMAIL", "has space")].into_iter().collect();
        assert!(AttributeMapping::from_lookup(&env).is_err());
    }
}
