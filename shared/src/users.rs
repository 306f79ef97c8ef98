//! Users: from Cognito attributes to a `users` row, inserted idempotently. The sign-up trigger
//! and drift-check's backfill both go through here, so a backfilled row is the row the trigger
//! would have written.

use std::{collections::HashMap, time::Duration};

use deadpool_postgres::ClientWrapper;
use tokio_postgres::{
    error::SqlState,
    types::{ToSql, Type},
};

use crate::{
    db::stateless,
    env::{ConfigError, Env},
};

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

/// The longest handle accepted, in characters. A Cognito attribute may hold 2,048 characters
/// (up to 8 KiB of UTF-8), but a btree index entry holds at most 2,704 bytes: a longer handle
/// would pass every check and then fail the unique index on every attempt, the trigger's and
/// every backfill's. 64 characters are at most 256 bytes.
pub const MAX_HANDLE_CHARS: usize = 64;

/// The longest identity (`sub`) accepted, in characters: it is unique-indexed too. Cognito's
/// own subs are 36-character UUIDs.
pub const MAX_SUB_CHARS: usize = 128;

/// What makes a handle one this table can hold and tell apart from the others. The one
/// definition: the sign-up trigger, drift-check's backfill and the pre-sign-up check all call
/// it. `None`: the handle is fine.
pub fn handle_problem(handle: &str) -> Option<&'static str> {
    if handle.chars().count() > MAX_HANDLE_CHARS {
        return Some("it is longer than 64 characters");
    }
    if handle.chars().any(char::is_control) {
        return Some("it contains a control character");
    }
    // Compared by lower() alone, a full-width "Ａｎｄｒｅｗ" or a ligature would stand beside
    // "andrew"; a handle already in NFKC has none of those forms.
    if !unicode_normalization::is_nfkc(handle) {
        return Some(
            "it is not in Unicode normal form NFKC (full-width or compatibility characters)",
        );
    }
    if handle.chars().any(is_invisible) {
        return Some("it contains an invisible or direction-changing character");
    }
    None
}

/// Characters that show nothing or reorder what follows, so that two handles that look the
/// same differ: zero-width and joiner characters, bidirectional controls, the soft hyphen,
/// the byte-order mark, variation selectors and tag characters.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}'
        | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}'
        | '\u{E0000}'..='\u{E0FFF}')
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

impl NewUser {
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

/// Whether a user already holds `handle`, compared without case as the unique index does.
pub async fn handle_is_taken(
    client: &ClientWrapper,
    handle: &str,
) -> Result<bool, tokio_postgres::Error> {
    let stmt = client
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM users WHERE lower(handle) = lower($1))")
        .await?;
    client.query_one(&stmt, &[&handle]).await?.try_get(0)
}

/// What inserting a confirmed user did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InsertOutcome {
    Inserted,
    /// A row for this sub exists already; it was left as it was.
    AlreadyPresent,
    /// Another user holds this handle (compared without case); nothing was written.
    HandleTaken {
        other_sub: String,
    },
}

impl InsertOutcome {
    /// The outcome as logged: `inserted`, `already_present` or `handle_taken`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Inserted => "inserted",
            Self::AlreadyPresent => "already_present",
            Self::HandleTaken { .. } => "handle_taken",
        }
    }
}

const INSERT_CONFIRMED_USER: &str = "\
    INSERT INTO users (cognito_user_id, email, display_name, handle) \
    VALUES ($1, $2, $3, $4) \
    ON CONFLICT (cognito_user_id) DO NOTHING \
    RETURNING id";

const FIND_SUB_OR_HANDLE_OWNER: &str = "\
    SELECT cognito_user_id FROM users \
    WHERE cognito_user_id = $1 OR lower(handle) = lower($2) \
    ORDER BY (cognito_user_id = $1) DESC \
    LIMIT 1";

/// Inserts the user unless a row for its sub exists; never overwrites. Safe to repeat and to
/// run concurrently for the same user. It takes a plain connection, not a transaction: a
/// handle conflict aborts the statement and is then examined with a second query. The
/// statements are unnamed, so nothing is left in the session; their timeout is the session's
/// own `statement_timeout` ([`Pooling::Session`](crate::db::Pooling)).
pub async fn insert_confirmed_user(
    client: &ClientWrapper,
    user: &NewUser,
) -> Result<InsertOutcome, tokio_postgres::Error> {
    insert(client, user, None).await
}

/// [`insert_confirmed_user`] for a connection that keeps no session state (behind a
/// transaction-pooling proxy): each statement runs in its own transaction with `SET LOCAL
/// statement_timeout = timeout` ([`crate::db::stateless`]).
pub async fn insert_confirmed_user_within(
    client: &ClientWrapper,
    user: &NewUser,
    timeout: Duration,
) -> Result<InsertOutcome, tokio_postgres::Error> {
    insert(client, user, Some(timeout)).await
}

async fn insert(
    client: &ClientWrapper,
    user: &NewUser,
    timeout: Option<Duration>,
) -> Result<InsertOutcome, tokio_postgres::Error> {
    let run = async |sql: &str, params: &[(&(dyn ToSql + Sync), Type)]| match timeout {
        Some(t) => stateless::query_typed_within(client, t, sql, params).await,
        None => client.query_typed(sql, params).await,
    };
    let result = run(
        INSERT_CONFIRMED_USER,
        &[
            (&user.cognito_user_id, Type::TEXT),
            (&user.email, Type::TEXT),
            (&user.display_name, Type::TEXT),
            (&user.handle, Type::TEXT),
        ],
    )
    .await;
    match result {
        Ok(rows) if !rows.is_empty() => Ok(InsertOutcome::Inserted),
        Ok(_) => Ok(InsertOutcome::AlreadyPresent),
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            // ON CONFLICT arbitrates only the sub. Two deliveries of the same user racing can
            // meet first on the handle index, so look at who holds what before calling it a
            // collision.
            let found = run(
                FIND_SUB_OR_HANDLE_OWNER,
                &[
                    (&user.cognito_user_id, Type::TEXT),
                    (&user.handle, Type::TEXT),
                ],
            )
            .await?;
            match found.first() {
                Some(row) => {
                    let holder: String = row.get(0);
                    if holder == user.cognito_user_id {
                        Ok(InsertOutcome::AlreadyPresent)
                    } else {
                        Ok(InsertOutcome::HandleTaken { other_sub: holder })
                    }
                }
                None => Err(e),
            }
        }
        Err(e) => Err(e),
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
