//! A listing of the user pool handed over by the lister (`DRIFT_RUNS_AS=lister`, outside the
//! VPC) to drift-check (in the VPC), which cannot reach Cognito when the pool has a domain and
//! the VPC has no NAT. The lister opens a listing, hands its users over in chunks (each one
//! synchronous invocation, well under Lambda's 6 MB payload) and ends with `complete` or
//! `broken_off`; drift-check stages the chunks in Postgres ([`store`]) and compares only a
//! listing whose every counted chunk arrived. What arrives is checked here first: whoever may
//! invoke drift-check can send anything. Every hand-over is signed with the stack's hand-over
//! key ([`seal`], [`Sealed::open`]), which only the lister's and drift-check's roles may read:
//! a forged one is refused before anything reaches the database.

pub mod key;
pub mod store;

use std::collections::HashMap;

use aws_sdk_cognitoidentityprovider::types::UserStatusType;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shared::{
    env::{ConfigError, Env},
    signing::SigningKey,
};

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

/// The secret holding the stack's hand-over key (`DRIFT_HANDOVER_KEY_SECRET_ARN`): required
/// where hand-overs are signed or opened (`required`), an ARN of Secrets Manager's.
pub fn handover_key_secret(env: &impl Env, required: bool) -> Result<Option<String>, ConfigError> {
    const VAR: &str = "DRIFT_HANDOVER_KEY_SECRET_ARN";
    let value = if required {
        Some(env.required(VAR, "(arn:aws:secretsmanager:...), for the hand-over")?)
    } else {
        env.non_empty(VAR)
    };
    match value {
        Some(arn)
            if !arn.starts_with("arn:") || arn.split(':').nth(2) != Some("secretsmanager") =>
        {
            Err(ConfigError::invalid(
                VAR,
                "expected a Secrets Manager secret ARN",
            ))
        }
        other => Ok(other),
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
    /// run suspended; the answer names it (and the token to continue from). `issued_at`
    /// (Unix seconds) must be within [`BEGIN_FRESH_SECS`] of drift-check's clock: an old
    /// `begin`, replayed, would supersede the listing being staged.
    Begin { pool: String, issued_at: i64 },
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
    #[error("the hand-over is not signed with the stack's hand-over key")]
    BadSignature,
    #[error("the begin was issued {0} s from drift-check's clock: too far")]
    Stale(i64),
    #[error("the hand-over key could not be read: {0}")]
    NoKey(String),
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

/// How far a `begin`'s `issued_at` may be from drift-check's clock, either way.
pub const BEGIN_FRESH_SECS: i64 = 300;

/// A hand-over as it arrives: the op's JSON, exactly the bytes signed, and the signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    body: String,
    signature: String,
}

/// The payload that hands `payload` (`{"hand_over": {"op": ...}}`) over: the op as the JSON
/// text signed (so no one need serialize it the same way twice) and its signature.
pub fn seal(key: &SigningKey, payload: &Value) -> Value {
    let body = payload["hand_over"].to_string();
    let signature = key.sign(body.as_bytes());
    json!({"hand_over": body, "signature": signature})
}

/// Reads a sealed hand-over out of a payload: `None` when the payload is not one (any other
/// request), an error when its envelope is malformed.
pub fn envelope(payload: &Value) -> Option<Result<Sealed, HandOverError>> {
    let object = payload.as_object()?;
    let inner = object.get("hand_over")?;
    let malformed = |why: &str| Some(Err(HandOverError::Malformed(why.into())));
    if object.keys().any(|k| k != "hand_over" && k != "signature") {
        return malformed("fields besides hand_over and signature");
    }
    let (Some(body), Some(signature)) = (inner.as_str(), object.get("signature")) else {
        return Some(Err(HandOverError::BadSignature));
    };
    let Some(signature) = signature.as_str() else {
        return Some(Err(HandOverError::BadSignature));
    };
    Some(Ok(Sealed {
        body: body.to_owned(),
        signature: signature.to_owned(),
    }))
}

impl Sealed {
    /// The hand-over, once its signature is `key`'s and, for `begin`, it was issued within
    /// [`BEGIN_FRESH_SECS`] of `now` (Unix seconds); then the limits every hand-over keeps.
    pub fn open(&self, key: &SigningKey, now: i64) -> Result<HandOver, HandOverError> {
        if !key.verifies(self.body.as_bytes(), &self.signature) {
            return Err(HandOverError::BadSignature);
        }
        let h: HandOver = serde_json::from_str(&self.body)
            .map_err(|e| HandOverError::Malformed(shared::errors::truncate(&e.to_string(), 200)))?;
        if let HandOver::Begin { issued_at, .. } = h {
            let skew = now.saturating_sub(issued_at);
            if skew.saturating_abs() > BEGIN_FRESH_SECS {
                return Err(HandOverError::Stale(skew));
            }
        }
        check(&h)?;
        Ok(h)
    }
}

/// Now in Unix seconds, as `begin`'s `issued_at` is written and read.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn too_large(what: String) -> HandOverError {
    HandOverError::TooLarge(what)
}

/// The limits every hand-over keeps, whoever sent it.
fn check(h: &HandOver) -> Result<(), HandOverError> {
    match h {
        HandOver::Begin { pool, .. } if pool.len() > 64 => Err(too_large("the pool id".into())),
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
mod tests;
