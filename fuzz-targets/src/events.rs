//! Any bytes that parse as JSON, through every event parser (post-confirmation, pre-sign-up,
//! sign-in-guard, sg-ip-update, drift-check): no panic, ever; what is accepted can be stored,
//! a sign-up pre-sign-up lets on can become post-confirmation's row, sign-in-guard writes the
//! row post-confirmation would, an IP change means the same with or without its envelope, and
//! an error echoes only a bounded piece of the input.

use std::collections::HashMap;

use aws_lambda_events::event::cognito::{
    CognitoEventUserPoolsPostAuthentication, CognitoEventUserPoolsPreSignup,
};
use drift_check::request::Scope;
use serde::Deserialize;
use shared::users::AttributeMapping;

/// The longest error message a parser may produce, whatever the input's size: errors quote
/// at most 64 or 200 characters of the input (`shared::errors::truncate`), escaped.
const MAX_ERROR_CHARS: usize = 2048;

/// The longest `drift_runs.trigger` a request may ask to store: `direct:` and a caller's
/// label truncated to 64 characters, or `cloudtrail:` and one of three API call names.
const MAX_TRIGGER_CHARS: usize = 80;

/// Field names and values the parsers branch on, so generated inputs reach past the first
/// check.
pub const TOKENS: &[&str] = &[
    "\"triggerSource\"",
    "\"PostConfirmation_ConfirmSignUp\"",
    "\"PostConfirmation_ConfirmForgotPassword\"",
    "\"PreSignUp_SignUp\"",
    "\"PreSignUp_AdminCreateUser\"",
    "\"PreSignUp_ExternalProvider\"",
    "\"PostAuthentication_Authentication\"",
    "\"request\"",
    "\"validationData\"",
    "\"name\"",
    "\"userAttributes\"",
    "\"userName\"",
    "\"sub\"",
    "\"email\"",
    "\"preferred_username\"",
    "\"detail-type\"",
    "\"Workspace IP Changed\"",
    "\"dev.workspace\"",
    "\"Scheduled Event\"",
    "\"AWS API Call via CloudTrail\"",
    "\"detail\"",
    "\"owner\"",
    "\"ip\"",
    "\"description\"",
    "\"mode\"",
    "\"report\"",
    "\"remediate\"",
    "\"trigger\"",
    "\"eventName\"",
    "\"requestParameters\"",
    "\"groupId\"",
    "\"GroupId\"",
    "\"sg-0123456789abcdef0\"",
    "\"AuthorizeSecurityGroupIngress\"",
    "\"ModifySecurityGroupRules\"",
    "\"RevokeSecurityGroupIngress\"",
    "\"time\"",
    "\"2026-11-23T09:00:00Z\"",
    "\"2099-01-01T00:00:00Z\"",
    "\"email_verified\"",
    "\"Ａｎｄｒｅｗ\"",
    "\"andrew\\u200b\"",
    "\"\\u202e\"",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "null",
    "true",
    "-0",
    "1e999",
    "18446744073709551616",
];

/// The `events` target.
pub fn events(data: &[u8]) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    match post_confirmation::parse_event(&v, &AttributeMapping::default()) {
        Ok((_, user)) => {
            assert!(
                !user.cognito_user_id.trim().is_empty() && !user.email.trim().is_empty(),
                "post-confirmation accepted a user without sub or email: {user:?}"
            );
            for field in [
                &user.cognito_user_id,
                &user.email,
                &user.handle,
                &user.display_name,
            ] {
                assert!(
                    !field.contains('\0'),
                    "post-confirmation accepted a NUL, which Postgres cannot store: {user:?}"
                );
            }
            // A handle the unique index could not hold, or could not tell apart, never
            // reaches the insert (one such user once stalled every backfill).
            assert!(
                shared::users::handle_problem(&user.handle).is_none()
                    && user.cognito_user_id.chars().count() <= shared::users::MAX_SUB_CHARS,
                "post-confirmation accepted the handle {:?} / sub {:?}",
                user.handle,
                user.cognito_user_id
            );
        }
        Err(e) => {
            bounded_error("post-confirmation", &e);
            // What Cognito shows the person signing up: short, and none of the input beyond
            // an attribute's name.
            let shown = e.client_message();
            assert!(
                shown.chars().count() <= 160,
                "post-confirmation would show the app {shown:?}"
            );
        }
    }
    pre_sign_up(&v);
    sign_in_guard(&v);
    match sg_ip_update::parse_event_at(&v, &sg_ip_update::Envelope::default(), now()) {
        Ok(request) => {
            let change = &request.change;
            // A sender-set time far ahead would make every later request stale.
            if let Some(sent) = change.sent_at {
                assert!(
                    sent <= now() + sg_ip_update::request::MAX_CLOCK_SKEW,
                    "sg-ip-update accepted an event from the future: {sent:?}"
                );
            }
            let owner_ok = (1..=64).contains(&change.owner.len())
                && change
                    .owner
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._@+-".contains(&b));
            assert!(
                owner_ok,
                "sg-ip-update accepted the owner {:?}",
                change.owner
            );
            if let Some(d) = &change.description {
                assert!(
                    d.len() <= 255,
                    "sg-ip-update accepted a {}-byte description",
                    d.len()
                );
            }
            // The same request without its EventBridge envelope means the same.
            if let Some(detail) = v.get("detail") {
                let bare =
                    sg_ip_update::parse_event_at(detail, &sg_ip_update::Envelope::default(), now())
                        .map(|r| r.change);
                assert!(
                    bare.as_ref()
                        .is_ok_and(|b| (&b.owner, &b.ip, &b.description)
                            == (&change.owner, &change.ip, &change.description)),
                    "sg-ip-update read the envelope as {change:?} and its detail as {bare:?}"
                );
            }
            // What the handler does next with the address.
            let _ = ingress::ip::host_cidr(&change.ip, false);
        }
        Err(e) => bounded_error("sg-ip-update", &e),
    }
    match drift_check::request::parse(&v) {
        Ok(r) => {
            assert!(
                r.trigger.chars().count() <= MAX_TRIGGER_CHARS,
                "drift-check would store a {}-character trigger",
                r.trigger.chars().count()
            );
            if let Scope::Group(g) = &r.scope {
                assert!(
                    g.as_str()
                        .parse::<ingress::group::SecurityGroupId>()
                        .as_ref()
                        == Ok(g),
                    "drift-check scoped a run to {g}, which does not read back as itself"
                );
            }
        }
        Err(e) => bounded_error("drift-check", &e),
    }
}

/// pre-sign-up refuses what could never become a row: a sign-up it lets on is storable, and
/// post-confirmation makes the same row of it once Cognito confirms the user.
fn pre_sign_up(v: &serde_json::Value) {
    let mapping = AttributeMapping::default();
    match pre_sign_up::parse_event(v, &mapping) {
        Ok(sign_up) => {
            assert!(
                !sign_up.email.trim().is_empty() && !sign_up.handle.trim().is_empty(),
                "pre-sign-up accepted a sign-up without email or handle: {sign_up:?}"
            );
            for field in [&sign_up.email, &sign_up.handle, &sign_up.display_name] {
                assert!(
                    !field.contains('\0'),
                    "pre-sign-up accepted a NUL, which Postgres cannot store: {sign_up:?}"
                );
            }
            assert!(
                shared::users::handle_problem(&sign_up.handle).is_none(),
                "pre-sign-up accepted the handle {:?}",
                sign_up.handle
            );
            // The same person confirmed: what Cognito adds (a sub, the verified email) and
            // nothing else changed. Read as pre-sign-up read it (serde also takes a struct
            // written as an array, so the JSON's shape is not the event's).
            let Ok(event) = CognitoEventUserPoolsPreSignup::deserialize(v) else {
                panic!("pre-sign-up accepted an event it cannot read: {sign_up:?}");
            };
            let mut attributes = event.request.user_attributes;
            attributes.insert(
                "sub".to_owned(),
                "3a9e7c51-2b4d-4f6a-8c1e-5d7b9f0a2c43".to_owned(),
            );
            attributes.insert("email_verified".to_owned(), "true".to_owned());
            let confirmed =
                confirmation(event.cognito_event_user_pools_header.user_name, attributes);
            let row = post_confirmation::parse_event(&confirmed, &mapping).map(|(_, user)| user);
            assert!(
                row.as_ref()
                    .is_ok_and(|u| (&u.email, &u.handle, &u.display_name)
                        == (&sign_up.email, &sign_up.handle, &sign_up.display_name)),
                "pre-sign-up let on {sign_up:?}; post-confirmation then makes {row:?}"
            );
        }
        Err(e) => {
            bounded_error("pre-sign-up", &e);
            let shown = e.client_message();
            assert!(
                shown.chars().count() <= 160,
                "pre-sign-up would show the app {shown:?}"
            );
        }
    }
}

/// sign-in-guard writes the row post-confirmation would for the same user, or says in a
/// bounded message why none can be written.
fn sign_in_guard(v: &serde_json::Value) {
    let mapping = AttributeMapping::default();
    match sign_in_guard::parse_event(v, &mapping) {
        Ok(Ok(user)) => {
            assert!(
                !user.cognito_user_id.trim().is_empty() && !user.email.trim().is_empty(),
                "sign-in-guard accepted a user without sub or email: {user:?}"
            );
            assert!(
                shared::users::handle_problem(&user.handle).is_none()
                    && user.cognito_user_id.chars().count() <= shared::users::MAX_SUB_CHARS
                    && ![
                        &user.cognito_user_id,
                        &user.email,
                        &user.handle,
                        &user.display_name,
                    ]
                    .iter()
                    .any(|f| f.contains('\0')),
                "sign-in-guard would write {user:?}"
            );
            let Ok(event) = CognitoEventUserPoolsPostAuthentication::deserialize(v) else {
                panic!("sign-in-guard accepted an event it cannot read: {user:?}");
            };
            let confirmed = confirmation(
                event.cognito_event_user_pools_header.user_name,
                event.request.user_attributes,
            );
            let row = post_confirmation::parse_event(&confirmed, &mapping).map(|(_, u)| u);
            assert!(
                row.as_ref().is_ok_and(|u| u == &user),
                "sign-in-guard would write {user:?}; post-confirmation {row:?}"
            );
        }
        Ok(Err(reason)) => {
            let n = reason.chars().count();
            assert!(
                (1..=MAX_ERROR_CHARS).contains(&n),
                "sign-in-guard: a {n}-character reason"
            );
        }
        Err(e) => {
            bounded_error("sign-in-guard", &e);
            let shown = e.client_message();
            assert!(
                shown.chars().count() <= 160,
                "sign-in-guard would show the app {shown:?}"
            );
        }
    }
}

/// The PostConfirmation event Cognito would send for `user_name` with `attributes`.
fn confirmation(
    user_name: Option<String>,
    attributes: HashMap<String, String>,
) -> serde_json::Value {
    serde_json::json!({
        "version": "1",
        "region": "us-east-1",
        "userPoolId": "us-east-1_EXAMPLE1",
        "userName": user_name,
        "callerContext": {"awsSdkVersion": "1", "clientId": "c"},
        "triggerSource": "PostConfirmation_ConfirmSignUp",
        "request": {"userAttributes": attributes},
        "response": {}
    })
}

/// The clock the target parses against: fixed, so a failing input fails the same way again.
fn now() -> std::time::SystemTime {
    // 2026-11-23T10:00:00Z
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_428_000)
}

fn bounded_error(parser: &str, e: &dyn std::error::Error) {
    let n = e.to_string().chars().count();
    assert!(
        (1..=MAX_ERROR_CHARS).contains(&n),
        "{parser}: a {n}-character error message"
    );
}
