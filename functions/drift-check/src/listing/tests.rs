//! What a hand-over must be before drift-check reads it.

use serde_json::json;

use super::*;

const ID: &str = "0b5e7a51-dead-4bee-8a0a-000000000000";
const NOW: i64 = 1_800_000_000;

fn key(byte: u8) -> SigningKey {
    SigningKey::new(vec![byte; 64]).unwrap()
}

/// `payload` as the lister sends it, read back as drift-check reads it.
fn parse(payload: &Value) -> Option<Result<HandOver, HandOverError>> {
    let sealed = if payload.get("hand_over").is_some() {
        let mut sealed = seal(&key(1), payload);
        for (k, v) in payload.as_object().into_iter().flatten() {
            if k != "hand_over" {
                sealed[k] = v.clone();
            }
        }
        sealed
    } else {
        payload.clone()
    };
    envelope(&sealed).map(|s| s.and_then(|s| s.open(&key(1), NOW)))
}

#[test]
fn an_unsigned_forged_or_stale_hand_over_is_refused() {
    let begin = json!({"hand_over": {"op": "begin", "pool": "p", "issued_at": NOW}});
    assert!(matches!(parse(&begin), Some(Ok(HandOver::Begin { .. }))));
    let unsigned = [
        begin.clone(),
        json!({"hand_over": begin["hand_over"].to_string()}),
        json!({"hand_over": begin["hand_over"].to_string(), "signature": 1}),
    ];
    for u in unsigned {
        let opened = envelope(&u).unwrap().and_then(|s| s.open(&key(1), NOW));
        assert_eq!(opened, Err(HandOverError::BadSignature), "{u}");
    }
    // Signed with another key, or the signed text changed after signing.
    let other = seal(&key(2), &begin);
    let opened = envelope(&other).unwrap().and_then(|s| s.open(&key(1), NOW));
    assert_eq!(opened, Err(HandOverError::BadSignature));
    let mut changed = seal(&key(1), &begin);
    changed["hand_over"] = json!(begin["hand_over"].to_string().replace("\"p\"", "\"q\""));
    let opened = envelope(&changed)
        .unwrap()
        .and_then(|s| s.open(&key(1), NOW));
    assert_eq!(opened, Err(HandOverError::BadSignature));
    // A begin signed long ago (or far ahead) is a replay.
    for issued in [NOW - BEGIN_FRESH_SECS - 1, NOW + BEGIN_FRESH_SECS + 1] {
        let old = json!({"hand_over": {"op": "begin", "pool": "p", "issued_at": issued}});
        assert!(matches!(parse(&old), Some(Err(HandOverError::Stale(_)))));
    }
    let edge =
        json!({"hand_over": {"op": "begin", "pool": "p", "issued_at": NOW - BEGIN_FRESH_SECS}});
    assert!(matches!(parse(&edge), Some(Ok(_))));
}

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
        json!({"hand_over": {"op": "begin", "pool": "p", "issued_at": NOW}, "mode": "remediate"}),
        json!({"hand_over": {"op": "chunk", "listing": ID, "seq": 0, "users": [
            {"username": "u", "status": null, "attributes": {}, "extra": 1}]}}),
    ];
    for m in malformed {
        assert!(matches!(parse(&m), Some(Err(_))), "{m}");
    }
}
