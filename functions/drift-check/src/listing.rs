//! A listing of the user pool handed over by the lister (`DRIFT_RUNS_AS=lister`, outside the
//! VPC) to drift-check (in the VPC), which cannot reach Cognito when the pool has a domain and
//! the VPC has no NAT. The lister opens a listing, hands its users over in chunks (each one
//! synchronous invocation, well under Lambda's 6 MB payload) and ends with `complete` or
//! `broken_off`; drift-check stages the chunks in Postgres ([`store`]) and compares only a
//! listing whose every counted chunk arrived. What arrives is checked here first: whoever may
//! invoke drift-check can send anything.

pub mod store;

use std::collections::HashMap;

use aws_sdk_cognitoidentityprovider::types::UserStatusType;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::env::{ConfigError, Env};

use crate::request::Mode;

/// Where the users half gets its listing of the pool (`DRIFT_USERS_FROM`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsersFrom {
    /// drift-check calls `ListUsers` itself (the default): it needs a route to Cognito that
    /// serves the pool (NAT; a Cognito endpoint only for a pool without a domain).
    Cognito,
    /// Only from the lister's hand-over (`DRIFT_RUNS_AS=lister`, outside the VPC); a run
    /// without one checks the rules half only. What the template deploys.
    Lister,
}

impl UsersFrom {
    pub(crate) fn from_lookup(env: &impl Env) -> Result<Self, ConfigError> {
        match env.non_empty("DRIFT_USERS_FROM").as_deref() {
            None | Some("cognito") => Ok(Self::Cognito),
            Some("lister") => Ok(Self::Lister),
            Some(_) => Err(ConfigError::invalid(
                "DRIFT_USERS_FROM",
                "expected cognito or lister",
            )),
        }
    }
}

/// One user as `ListUsers` gave it: what the users check reads of a user, nothing more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListedUser {
    pub username: Option<String>,
    /// Cognito's `UserStatus` (`CONFIRMED`, `EXTERNAL_PROVIDER`, ...).
    pub status: Option<String>,
    pub attributes: HashMap<String, String>,
}

impl ListedUser {
    /// Whether the user must have a row: the same rule for a listing handed over as for a page
    /// read in the run ([`crate::users_check::status::must_have_row`]).
    pub fn owes_row(&self) -> bool {
        let status = self.status.as_deref().map(UserStatusType::from);
        crate::users_check::status::must_have_row(status.as_ref())
    }
}

/// A page of users and the token of the next one (`None`: the last page).
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub users: Vec<ListedUser>,
    pub next: Option<String>,
}

/// The most bytes of users (as JSON) one chunk may hold; the lister aims below it
/// (`DRIFT_HANDOVER_BYTES`). Lambda's synchronous payload limit is 6 MB.
pub const MAX_CHUNK_BYTES: usize = 2 * 1024 * 1024;
/// The most users one chunk may hold.
pub const MAX_CHUNK_USERS: usize = 5_000;
/// The most chunks one listing may have (at the lister's 1 MiB a chunk, 20 GiB of users).
pub const MAX_CHUNKS: i32 = 20_000;
/// Cognito's limits, with room: 50 custom attributes besides the standard ones, a value of up
/// to 2,048 characters (8 KiB of UTF-8), a name of up to 32 after `custom:`, a user name of
/// up to 128 characters.
const MAX_ATTRIBUTES: usize = 100;
const MAX_ATTRIBUTE_VALUE_BYTES: usize = 8 * 1024;
const MAX_ATTRIBUTE_NAME_BYTES: usize = 64;
const MAX_USERNAME_BYTES: usize = 512;
const MAX_STATUS_BYTES: usize = 64;
const MAX_REASON_CHARS: usize = 1000;

/// What the lister asks of drift-check (`{"hand_over": {"op": ...}}`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum HandOver {
    /// Opens a listing of `pool` (which must be drift-check's own), or continues the one a
    /// run suspended; the answer names it (and the token to continue from).
    Begin { pool: String },
    /// Stages chunk `seq` (0, 1, 2, ... with no gap) of `listing`.
    Chunk {
        listing: String,
        seq: i32,
        users: Vec<ListedUser>,
    },
    /// Every chunk was sent: `chunks` of them, `users` in all. Runs the whole check (rules
    /// and users) with `mode` and `trigger` as a direct invocation would.
    Complete {
        listing: String,
        chunks: i32,
        users: i64,
        #[serde(default)]
        mode: Option<Mode>,
        #[serde(default)]
        trigger: Option<String>,
    },
    /// The lister ran out of time: every page before `next_token` is staged, and its next run
    /// continues from there. Runs the rules half; the listing is compared once complete.
    Suspend {
        listing: String,
        next_token: String,
        #[serde(default)]
        mode: Option<Mode>,
        #[serde(default)]
        trigger: Option<String>,
    },
    /// The listing could not be finished: nothing of it is compared. Runs the rules half.
    BrokenOff {
        listing: String,
        reason: String,
        #[serde(default)]
        mode: Option<Mode>,
        #[serde(default)]
        trigger: Option<String>,
    },
}

/// Why a hand-over was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandOverError {
    #[error("not a hand-over: {0}")]
    Malformed(String),
    #[error("the hand-over is too large: {0}")]
    TooLarge(String),
    #[error("the listing names pool {0:?}, not drift-check's")]
    ForeignPool(String),
    #[error("no listing {0} is being staged")]
    UnknownListing(String),
    #[error("chunk {got} arrived where chunk {expected} was due")]
    OutOfOrder { expected: i32, got: i32 },
    #[error("the lister counted {claimed} but {staged} arrived")]
    CountsDiffer { claimed: String, staged: String },
    #[error(
        "drift-check takes no hand-over: it lists the pool itself (DRIFT_USERS_FROM=cognito) or has no users half (DRIFT_CHECKS)"
    )]
    NotExpected,
}

/// Reads a hand-over out of a payload: `None` when the payload is not one (any other request),
/// an error when it is one but malformed or over a limit.
pub fn parse(payload: &Value) -> Option<Result<HandOver, HandOverError>> {
    let inner = payload.as_object()?.get("hand_over")?;
    if payload.as_object().is_some_and(|o| o.len() != 1) {
        return Some(Err(HandOverError::Malformed(
            "fields besides hand_over".into(),
        )));
    }
    let parsed = HandOver::deserialize(inner)
        .map_err(|e| HandOverError::Malformed(shared::errors::truncate(&e.to_string(), 200)));
    Some(parsed.and_then(|h| check(&h).map(|()| h)))
}

fn too_large(what: String) -> HandOverError {
    HandOverError::TooLarge(what)
}

/// The limits every hand-over keeps, whoever sent it.
fn check(h: &HandOver) -> Result<(), HandOverError> {
    match h {
        HandOver::Begin { pool } if pool.len() > 64 => Err(too_large("the pool id".into())),
        HandOver::Begin { .. } => Ok(()),
        HandOver::Chunk {
            listing,
            seq,
            users,
        } => {
            listing_id(listing)?;
            if !(0..MAX_CHUNKS).contains(seq) {
                return Err(too_large(format!("chunk number {seq}")));
            }
            if users.len() > MAX_CHUNK_USERS {
                return Err(too_large(format!("{} users in one chunk", users.len())));
            }
            let mut bytes = 0usize;
            for u in users {
                check_user(u)?;
                bytes += u.username.as_ref().map_or(0, String::len)
                    + u.attributes
                        .iter()
                        .map(|(k, v)| k.len() + v.len())
                        .sum::<usize>();
            }
            if bytes > MAX_CHUNK_BYTES {
                return Err(too_large(format!("{bytes} bytes of users in one chunk")));
            }
            Ok(())
        }
        HandOver::Complete {
            listing,
            chunks,
            users,
            trigger,
            ..
        } => {
            listing_id(listing)?;
            if !(0..=MAX_CHUNKS).contains(chunks) || *users < 0 {
                return Err(HandOverError::Malformed("counts out of range".into()));
            }
            check_trigger(trigger.as_deref())
        }
        HandOver::Suspend {
            listing,
            next_token,
            trigger,
            ..
        } => {
            listing_id(listing)?;
            if next_token.is_empty() || next_token.len() > 8192 {
                return Err(too_large("the next token".into()));
            }
            check_trigger(trigger.as_deref())
        }
        HandOver::BrokenOff {
            listing,
            reason,
            trigger,
            ..
        } => {
            listing_id(listing)?;
            if reason.chars().count() > MAX_REASON_CHARS {
                return Err(too_large("the reason".into()));
            }
            check_trigger(trigger.as_deref())
        }
    }
}

fn check_user(u: &ListedUser) -> Result<(), HandOverError> {
    if u.username
        .as_ref()
        .is_some_and(|n| n.len() > MAX_USERNAME_BYTES)
        || u.status
            .as_ref()
            .is_some_and(|s| s.len() > MAX_STATUS_BYTES)
    {
        return Err(too_large("a user name or status".into()));
    }
    if u.attributes.len() > MAX_ATTRIBUTES {
        return Err(too_large(format!(
            "{} attributes on one user",
            u.attributes.len()
        )));
    }
    let over = u
        .attributes
        .iter()
        .any(|(k, v)| k.len() > MAX_ATTRIBUTE_NAME_BYTES || v.len() > MAX_ATTRIBUTE_VALUE_BYTES);
    if over {
        return Err(too_large("an attribute name or value".into()));
    }
    Ok(())
}

fn check_trigger(trigger: Option<&str>) -> Result<(), HandOverError> {
    if trigger.is_some_and(|t| t.len() > 64) {
        return Err(too_large("the trigger".into()));
    }
    Ok(())
}

/// A listing id as the database made it: a UUID, nothing else reaches a statement.
pub fn listing_id(s: &str) -> Result<&str, HandOverError> {
    let hex = |part: &str, n: usize| part.len() == n && part.bytes().all(|b| b.is_ascii_hexdigit());
    let parts: Vec<&str> = s.split('-').collect();
    let ok = parts.len() == 5 && [8, 4, 4, 4, 12].iter().zip(&parts).all(|(n, p)| hex(p, *n));
    if ok {
        Ok(s)
    } else {
        Err(HandOverError::Malformed(
            "the listing id is not a UUID".into(),
        ))
    }
}

/// What drift-check answers a hand-over that stages (`begin`, `chunk`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Staged {
    pub listing: String,
    /// Chunks staged so far, and the users in them.
    pub chunks: i32,
    pub users: i64,
    /// From `begin`, for a listing an earlier run suspended: the token of its next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<String>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ID: &str = "0b5e7a51-dead-4bee-8a0a-000000000000";

    #[test]
    fn drift_check_lists_the_pool_itself_unless_told_the_lister_does() {
        let from = |v: &'static str| {
            let env: HashMap<&str, &str> = [("DRIFT_USERS_FROM", v)].into_iter().collect();
            UsersFrom::from_lookup(&env)
        };
        assert_eq!(from("").unwrap(), UsersFrom::Cognito);
        assert_eq!(from("cognito").unwrap(), UsersFrom::Cognito);
        assert_eq!(from("lister").unwrap(), UsersFrom::Lister);
        assert_eq!(from("both").unwrap_err().var(), "DRIFT_USERS_FROM");
    }

    #[test]
    fn other_requests_are_not_hand_overs() {
        for p in [
            json!({}),
            json!(null),
            json!({"mode": "report"}),
            json!([1]),
        ] {
            assert!(parse(&p).is_none(), "{p}");
        }
    }

    #[test]
    fn a_chunk_is_read_with_its_users() {
        let p = json!({"hand_over": {"op": "chunk", "listing": ID, "seq": 0, "users": [
            {"username": "u", "status": "CONFIRMED", "attributes": {"sub": "s"}}]}});
        let HandOver::Chunk { users, .. } = parse(&p).unwrap().unwrap() else {
            panic!()
        };
        assert!(users[0].owes_row());
    }

    #[test]
    fn hostile_hand_overs_are_refused_by_what_is_wrong() {
        let chunk = |users: Value| json!({"hand_over": {"op": "chunk", "listing": ID, "seq": 0, "users": users}});
        let big = "x".repeat(MAX_ATTRIBUTE_VALUE_BYTES + 1);
        let many: HashMap<String, String> = (0..=MAX_ATTRIBUTES)
            .map(|i| (format!("a{i}"), "v".to_owned()))
            .collect();
        let cases = [
            chunk(json!([{"username": "u", "status": null, "attributes": {"sub": big}}])),
            chunk(json!([{"username": "u", "status": null, "attributes": many}])),
            chunk(json!(
                (0..=MAX_CHUNK_USERS)
                    .map(|_| json!({"username": null, "status": null, "attributes": {}}))
                    .collect::<Vec<_>>()
            )),
        ];
        for c in cases {
            assert!(
                matches!(parse(&c), Some(Err(HandOverError::TooLarge(_)))),
                "{:.200}",
                c.to_string()
            );
        }
        let malformed = [
            json!({"hand_over": {"op": "chunk", "listing": "1' OR '1'='1", "seq": 0, "users": []}}),
            json!({"hand_over": {"op": "chunk", "listing": ID, "seq": -1, "users": []}}),
            json!({"hand_over": {"op": "delete_everything"}}),
            json!({"hand_over": {"op": "begin", "pool": "p"}, "mode": "remediate"}),
            json!({"hand_over": {"op": "chunk", "listing": ID, "seq": 0, "users": [
                {"username": "u", "status": null, "attributes": {}, "extra": 1}]}}),
        ];
        for m in malformed {
            assert!(matches!(parse(&m), Some(Err(_))), "{m}");
        }
    }
}
