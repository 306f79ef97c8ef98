//! Property tests over everything that reads untrusted input: the three event parsers, the
//! attribute mapping and IP validation. Arbitrary JSON and strings never panic, and every
//! rejection is a typed error. (`fuzz-targets/` fuzzes the same parsers: in CI on stable, and
//! through cargo-fuzz in `fuzz/` for longer runs.)

use std::collections::HashMap;

use harness::event;
use ingress::ip::{IpError, host_cidr};
use proptest::prelude::*;
use serde_json::{Map, Value};
use shared::users::{AttributeMapping, NewUser, UserError};

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec(("[a-zA-Z:_-]{0,20}", inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A real event with one field, anywhere in it, replaced by arbitrary JSON.
fn mutated(file: &'static str) -> impl Strategy<Value = Value> {
    let base = event(file);
    let paths = leaf_paths(&base, String::new());
    (prop::sample::select(paths), json()).prop_map(move |(path, v)| {
        let mut e = base.clone();
        if let Some(slot) = e.pointer_mut(&path) {
            *slot = v;
        }
        e
    })
}

fn leaf_paths(v: &Value, at: String) -> Vec<String> {
    let mut out = vec![at.clone()];
    if let Value::Object(o) = v {
        for (k, child) in o {
            out.extend(leaf_paths(
                child,
                format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
            ));
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn post_confirmation_parses_anything_without_panicking(v in prop_oneof![json(), mutated("post-confirmation.json")]) {
        match post_confirmation::parse_event(&v, &AttributeMapping::default()) {
            Ok((_, user)) => {
                prop_assert!(!user.cognito_user_id.trim().is_empty() && !user.email.trim().is_empty());
                prop_assert!(!user.handle.contains('\0') && !user.display_name.contains('\0'));
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn sg_ip_update_parses_anything_without_panicking(
        v in prop_oneof![json(), mutated("sg-ip-update.json"), mutated("sg-ip-update-function-url.json")]
    ) {
        if let Ok(request) = sg_ip_update::parse_event(&v, &sg_ip_update::Envelope::default()) {
            prop_assert!((1..=64).contains(&request.change.owner.len()));
            // A Function URL request is taken only with the identity AWS put in it.
            if let Some(caller) = request.sender.caller() {
                prop_assert!(!caller.arn.is_empty());
            }
        }
    }

    #[test]
    fn drift_check_parses_anything_without_panicking(
        v in prop_oneof![json(), mutated("drift-check-schedule.json"), mutated("drift-check-cloudtrail.json")]
    ) {
        let _ = drift_check::request::parse(&v);
    }

    #[test]
    fn attribute_mapping_takes_any_strings(
        attrs in prop::collection::hash_map(".{0,12}", ".{0,30}", 0..8),
        user_name in proptest::option::of(".{0,20}"),
    ) {
        let attrs: HashMap<String, String> = attrs;
        match NewUser::from_attributes(user_name.as_deref(), &attrs, &AttributeMapping::default()) {
            Ok(u) => prop_assert_eq!(Some(&u.cognito_user_id), attrs.get("sub")),
            Err(UserError::MissingAttribute(a)) => prop_assert!(!a.is_empty()),
            Err(UserError::InvalidAttribute { .. }) => {}
        }
    }

    #[test]
    fn ip_validation_never_admits_more_than_one_host(s in prop_oneof![
        ".{0,50}",
        "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}(/[0-9]{1,3})?",
        "[0-9a-f:]{2,39}(/[0-9]{1,3})?",
    ], allow_private in any::<bool>()) {
        match host_cidr(&s, allow_private) {
            Ok(c) => {
                let text = c.to_string();
                prop_assert!(text.ends_with("/32") || text.ends_with("/128"), "{}", text);
                prop_assert!(!c.addr().is_loopback() && !c.addr().is_unspecified() && !c.addr().is_multicast());
            }
            Err(IpError::Malformed | IpError::TooWide(_) | IpError::Forbidden(_) | IpError::Private(_) | IpError::Wrapped { .. }) => {}
        }
    }

    #[test]
    fn any_public_ipv4_host_is_accepted_and_canonical(a in any::<u32>()) {
        let addr = std::net::Ipv4Addr::from(a);
        if let Ok(c) = host_cidr(&addr.to_string(), false) {
            prop_assert_eq!(c.to_string(), format!("{addr}/32"));
            prop_assert!(!addr.is_private() && !addr.is_loopback() && !addr.is_link_local() && !addr.is_documentation());
        }
    }
}
