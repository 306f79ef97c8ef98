//! Any bytes that parse as JSON, through all three event parsers: no panic, ever; what is
//! accepted can be stored, an IP change means the same with or without its envelope, and an
//! error echoes only a bounded piece of the input.

use drift_check::request::Scope;
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
        }
        Err(e) => bounded_error("post-confirmation", &e),
    }
    match sg_ip_update::parse_event(&v, &sg_ip_update::Envelope::default()) {
        Ok(request) => {
            let change = &request.change;
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
                let bare = sg_ip_update::parse_event(detail, &sg_ip_update::Envelope::default())
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

fn bounded_error(parser: &str, e: &dyn std::error::Error) {
    let n = e.to_string().chars().count();
    assert!(
        (1..=MAX_ERROR_CHARS).contains(&n),
        "{parser}: a {n}-character error message"
    );
}
