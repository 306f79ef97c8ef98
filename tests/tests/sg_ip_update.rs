//! sg-ip-update end to end, by EventBridge event and direct invocation: the real binary through
//! the Lambda Runtime API, real Postgres, EC2 served by moto. These requests prove no sender:
//! their rows are inserted with `allow_unverified` (by `add_owner`). The Function URL cases are
//! in `sg_ip_update_url.rs`; the shared fixture in `common/sg.rs`.

use std::time::Duration;

use futures_util::future::join_all;
use harness::{Function, Outcome, Stack, event, function_binary};
use serde_json::{Value, json};

#[path = "common/sg.rs"]
mod sg;
use sg::{Fixture, change, failure};

#[tokio::test]
async fn moves_a_known_rule_to_the_new_host() {
    let fx = Fixture::shared().await;
    let rule_id = fx.open("34.201.17.5/32").await;
    fx.add_owner("andrew", Some("34.201.17.5/32"), Some(&rule_id), false)
        .await;
    let f = fx.start().await;

    let inv = f.invoke(&change("andrew", "52.14.99.8")).await;
    let v = inv.response();
    assert_eq!(v["outcome"], "applied");
    assert_eq!(v["previous_cidr"], "34.201.17.5/32");
    assert_eq!(
        fx.ingress().await,
        vec![(rule_id.clone(), "52.14.99.8/32".into(), 5432, 5432)]
    );
    assert_eq!(
        fx.row("andrew").await,
        (
            Some("52.14.99.8/32".into()),
            Some(rule_id),
            "applied".into(),
            None
        )
    );
    assert_eq!(
        fx.audit().await,
        vec![(
            "andrew".into(),
            Some("34.201.17.5/32".into()),
            Some("52.14.99.8/32".into()),
            "applied".into()
        )]
    );
}

#[tokio::test]
async fn the_sample_event_and_a_direct_invocation_both_work() {
    let fx = Fixture::shared().await;
    fx.add_owner("andrew", None, None, false).await;
    let f = fx.start().await;
    assert_eq!(
        f.invoke(&event("sg-ip-update.json")).await.response()["cidr"],
        "34.201.17.5/32"
    );
    let direct = f
        .invoke(&json!({"owner": "andrew", "ip": "52.14.99.9"}))
        .await;
    assert_eq!(direct.response()["outcome"], "applied");
    let rules = fx.ingress().await;
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].1, "52.14.99.9/32");
}

#[tokio::test]
async fn creates_the_rule_when_there_is_none_and_stores_its_id() {
    let fx = Fixture::shared().await;
    fx.add_owner("bea", None, None, false).await;
    let f = fx.start().await;
    let v = f
        .invoke(&change("bea", "52.14.99.8/32"))
        .await
        .response()
        .clone();
    let rules = fx.ingress().await;
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].1, "52.14.99.8/32");
    assert_eq!(v["security_group_rule_id"], json!(rules[0].0));
    assert_eq!(fx.row("bea").await.1, Some(rules[0].0.clone()));
}

#[tokio::test]
async fn recreates_a_rule_deleted_behind_our_back() {
    let fx = Fixture::shared().await;
    let rule_id = fx.open("34.201.17.5/32").await;
    fx.add_owner("cy", Some("34.201.17.5/32"), Some(&rule_id), false)
        .await;
    fx.revoke_by_hand(&rule_id).await;
    let f = fx.start().await;
    f.invoke(&change("cy", "52.14.99.8")).await.response();
    let rules = fx.ingress().await;
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].1, "52.14.99.8/32");
    assert_ne!(rules[0].0, rule_id, "a new rule");
    assert_eq!(fx.row("cy").await.1, Some(rules[0].0.clone()));
}

#[tokio::test]
async fn ipv6_and_a_change_of_family() {
    let fx = Fixture::shared().await;
    fx.add_owner("dee", None, None, false).await;
    let f = fx.start().await;
    f.invoke(&change("dee", "2600:1f18:4a3:6900::7"))
        .await
        .response();
    assert_eq!(fx.ingress().await[0].1, "2600:1f18:4a3:6900::7/128");
    f.invoke(&change("dee", "52.14.99.8")).await.response();
    let rules = fx.ingress().await;
    assert_eq!(
        rules.len(),
        1,
        "the IPv6 rule was replaced, not kept: {rules:?}"
    );
    assert_eq!(rules[0].1, "52.14.99.8/32");
    assert_eq!(fx.row("dee").await.1, Some(rules[0].0.clone()));
}

#[tokio::test]
async fn unknown_owners_are_refused_and_nothing_changes() {
    let fx = Fixture::shared().await;
    let rule_id = fx.open("34.201.17.5/32").await;
    fx.add_owner("andrew", Some("34.201.17.5/32"), Some(&rule_id), false)
        .await;
    let before = fx.ingress().await;
    let row_before = fx.row("andrew").await;
    let f = fx.start().await;
    let inv = f.invoke(&change("mallory", "52.14.99.8")).await;
    let (t, m) = failure(&inv);
    assert_eq!(t, "Permanent.Unauthorized");
    assert!(
        m.contains("mallory") && m.contains("nothing was changed"),
        "{m}"
    );
    assert_eq!(fx.ingress().await, before);
    assert_eq!(fx.row("andrew").await, row_before);
    let rows: i64 = fx
        .db
        .connect_as_app()
        .await
        .unwrap()
        .query_one("SELECT count(*) FROM managed_ingress_rules", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 1, "no row for mallory");
    assert_eq!(fx.audit().await.last().unwrap().3, "refused_unknown_owner");
}

#[tokio::test]
async fn bad_addresses_are_refused_and_ec2_is_unchanged() {
    let fx = Fixture::shared().await;
    let rule_id = fx.open("34.201.17.5/32").await;
    fx.add_owner("andrew", Some("34.201.17.5/32"), Some(&rule_id), false)
        .await;
    let before = fx.ingress().await;
    let row_before = fx.row("andrew").await;
    let f = fx.start().await;
    let bad = [
        "0.0.0.0",
        "0.0.0.0/0",
        "::",
        "::/0",
        "34.201.17.0/24",
        "2600:1f18::/64",
        "127.0.0.1",
        "::1",
        "169.254.169.254",
        "fe80::1",
        "224.0.0.251",
        "ff02::1",
        "255.255.255.255",
        "192.0.2.10",
        "198.51.100.7",
        "203.0.113.7",
        "2001:db8::5",
        "10.0.0.8",
        "172.16.0.1",
        "192.168.0.10",
        "100.64.0.1",
        "fd00::1",
        "240.0.0.1",
        "::ffff:34.201.17.5",
        "034.201.17.5",
        "34.201.17",
        "34.201.17.5 ",
        "not an ip",
        "1.1.1.1; rm -rf /",
        "34.201.17.5/33",
        "8.8.8.8/032",
        "2002:c000:201::1",
        "2002:a00:1::1",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    ];
    assert_eq!(bad.len(), 34);
    for ip in bad {
        let inv = f.invoke(&change("andrew", ip)).await;
        let (t, m) = failure(&inv);
        assert_eq!(t, "Permanent.InvalidIp", "{ip:?}: {m}");
    }
    assert_eq!(fx.ingress().await, before);
    assert_eq!(fx.row("andrew").await, row_before, "the row untouched");
    let audit = fx.audit().await;
    assert_eq!(audit.len(), bad.len());
    assert!(audit.iter().all(|a| a.3 == "refused_invalid_ip"));
}

#[tokio::test]
async fn private_addresses_only_where_the_rule_allows_them() {
    let fx = Fixture::shared().await;
    fx.add_owner("vpn", None, None, true).await;
    let f = fx.start().await;
    assert_eq!(
        f.invoke(&change("vpn", "10.8.0.5")).await.response()["cidr"],
        "10.8.0.5/32"
    );
    assert_eq!(
        failure(&f.invoke(&change("vpn", "127.0.0.1")).await).0,
        "Permanent.InvalidIp"
    );
}

#[tokio::test]
async fn the_same_ip_twice_writes_to_aws_once() {
    let fx = Fixture::new(Stack::private("moto").unwrap()).await;
    fx.add_owner("andrew", None, None, false).await;
    let f = fx.start().await;
    fx.moto.start_recording();
    assert_eq!(
        f.invoke(&change("andrew", "52.14.99.8")).await.response()["outcome"],
        "applied"
    );
    assert_eq!(
        f.invoke(&change("andrew", "52.14.99.8")).await.response()["outcome"],
        "unchanged"
    );
    let actions = fx.moto.recorded_actions();
    let writes = actions
        .iter()
        .filter(|a| {
            [
                "AuthorizeSecurityGroupIngress",
                "ModifySecurityGroupRules",
                "RevokeSecurityGroupIngress",
            ]
            .contains(&a.as_str())
        })
        .count();
    assert_eq!(writes, 1, "{actions:?}");
    let outcomes: Vec<String> = fx.audit().await.into_iter().map(|a| a.3).collect();
    assert_eq!(outcomes, ["applied", "unchanged"]);
}

#[tokio::test]
async fn when_ec2_is_down_the_row_says_failed_and_a_later_event_converges() {
    let fx = Fixture::shared().await;
    let rule_id = fx.open("34.201.17.5/32").await;
    fx.add_owner("andrew", Some("34.201.17.5/32"), Some(&rule_id), false)
        .await;

    // EC2 unreachable: the per-service endpoint points at a closed port.
    let mut env = fx.env();
    env.push(("AWS_ENDPOINT_URL_EC2".into(), "http://127.0.0.1:9".into()));
    env.push(("AWS_CALL_TIMEOUT_MS".into(), "1000".into()));
    let down = Function::spawn(&function_binary("sg-ip-update"), &env)
        .await
        .unwrap();
    let inv = down
        .invoke_within(&change("andrew", "52.14.99.8"), Duration::from_secs(10))
        .await;
    let (t, m) = inv.error();
    assert_eq!(t, "Retryable.AwsApply", "{m}");
    let (cidr, id, status, last_error) = fx.row("andrew").await;
    assert_eq!(
        (cidr.as_deref(), id.as_deref(), status.as_str()),
        (Some("52.14.99.8/32"), Some(rule_id.as_str()), "failed")
    );
    assert!(last_error.unwrap().contains("EC2"), "the cause is recorded");
    assert_eq!(fx.ingress().await[0].1, "34.201.17.5/32", "AWS untouched");

    // EventBridge retries the same event once EC2 answers again.
    let up = fx.start().await;
    assert_eq!(
        up.invoke(&change("andrew", "52.14.99.8")).await.response()["outcome"],
        "applied"
    );
    assert_eq!(fx.ingress().await[0].1, "52.14.99.8/32");
    assert_eq!(fx.row("andrew").await.2, "applied");
    let outcomes: Vec<String> = fx.audit().await.into_iter().map(|a| a.3).collect();
    assert_eq!(outcomes, ["failed", "applied"]);
}

#[tokio::test]
async fn concurrent_updates_for_one_owner_leave_ec2_and_the_table_agreeing() {
    let fx = Fixture::shared().await;
    fx.add_owner("andrew", None, None, false).await;
    let (a, b) = (fx.start().await, fx.start().await);
    let (ea, eb) = (
        change("andrew", "52.14.99.8"),
        change("andrew", "18.204.3.77"),
    );
    for _ in 0..3 {
        let results = join_all([a.invoke(&ea), b.invoke(&eb)]).await;
        for r in &results {
            assert!(matches!(r.outcome, Outcome::Response(_)), "{:?}", r.outcome);
        }
        let rules = fx.ingress().await;
        let (cidr, id, status, _) = fx.row("andrew").await;
        assert_eq!(rules.len(), 1, "{rules:?}");
        assert_eq!(Some(rules[0].1.clone()), cidr, "EC2 and the table agree");
        assert_eq!(Some(rules[0].0.clone()), id);
        assert_eq!(status, "applied");
    }
    assert_eq!(
        fx.audit().await.len(),
        6,
        "every request is in the audit log"
    );
}

fn change_at(owner: &str, ip: &str, time: &str) -> Value {
    let mut e = change(owner, ip);
    e["time"] = json!(time);
    e
}

#[tokio::test]
async fn a_late_retry_of_an_older_event_does_not_move_the_rule_back() {
    let fx = Fixture::shared().await;
    fx.add_owner("andrew", None, None, false).await;
    let f = fx.start().await;
    let newer = f
        .invoke(&change_at("andrew", "52.14.99.8", "2026-11-23T10:00:05Z"))
        .await;
    assert_eq!(newer.response()["outcome"], "applied");
    // EventBridge retries the 10:00:00 event after the 10:00:05 one went through.
    let older = f
        .invoke(&change_at("andrew", "34.201.17.5", "2026-11-23T10:00:00Z"))
        .await;
    assert_eq!(older.response()["outcome"], "stale");
    assert_eq!(fx.ingress().await[0].1, "52.14.99.8/32");
    assert_eq!(fx.row("andrew").await.0.as_deref(), Some("52.14.99.8/32"));
    let outcomes: Vec<String> = fx.audit().await.into_iter().map(|a| a.3).collect();
    assert_eq!(outcomes, ["applied", "stale"]);
}

#[tokio::test]
async fn developers_behind_one_address_share_a_rule_and_moving_one_keeps_the_other() {
    let fx = Fixture::shared().await;
    fx.add_owner("ann", None, None, false).await;
    fx.add_owner("ben", None, None, false).await;
    let f = fx.start().await;
    f.invoke(&change("ann", "52.14.99.8")).await.response();
    f.invoke(&change("ben", "52.14.99.8")).await.response();
    let shared = fx.ingress().await;
    assert_eq!(
        shared.len(),
        1,
        "AWS holds one rule per address: {shared:?}"
    );
    assert_eq!(
        fx.row("ben").await.1,
        Some(shared[0].0.clone()),
        "ben shares ann's rule"
    );

    f.invoke(&change("ann", "18.204.3.77")).await.response();
    let cidrs: Vec<String> = fx.ingress().await.into_iter().map(|r| r.1).collect();
    assert_eq!(cidrs.len(), 2, "{cidrs:?}");
    assert!(
        cidrs.contains(&"52.14.99.8/32".to_owned()),
        "ben keeps his access: {cidrs:?}"
    );
    assert!(cidrs.contains(&"18.204.3.77/32".to_owned()));
    assert_eq!(fx.row("ben").await.1, Some(shared[0].0.clone()));
}

/// A group deleted behind our back: the error carries AWS's code and message, not the raw HTTP
/// response, so the log line and the row's last_error stay readable.
#[tokio::test]
async fn a_deleted_group_is_a_short_clear_error() {
    let fx = Fixture::shared().await;
    fx.add_owner("andrew", None, None, false).await;
    fx.ec2
        .delete_security_group()
        .group_id(&fx.group)
        .send()
        .await
        .unwrap();
    let f = fx.start().await;
    let inv = f.invoke(&change("andrew", "52.14.99.8")).await;
    let (error_type, message) = failure(&inv);
    // A missing group stays missing: EventBridge must not retry it for a day.
    assert_eq!(error_type, "Permanent.AwsApply", "{message}");
    assert!(
        message.contains("InvalidGroup.NotFound") && message.contains(&fx.group),
        "{message}"
    );
    assert!(
        message.len() < 300 && !message.contains("headers"),
        "{message}"
    );
    let last_error = fx.row("andrew").await.3.unwrap_or_default();
    assert!(last_error.contains("InvalidGroup.NotFound"), "{last_error}");
    assert!(last_error.len() < 300, "{last_error}");
}

/// Only the configured source and detail-type are IP changes: anyone else's event on the bus,
/// or AWS's own, is refused, audited, and changes nothing.
#[tokio::test]
async fn envelopes_from_another_source_or_detail_type_are_refused_and_audited() {
    let fx = Fixture::shared().await;
    let rule_id = fx.open("34.201.17.5/32").await;
    fx.add_owner("andrew", Some("34.201.17.5/32"), Some(&rule_id), false)
        .await;
    let before = fx.andrews_state().await;
    let f = fx.start().await;
    for (source, detail_type) in [
        ("evil.example", "Workspace IP Changed"),
        ("aws.ec2", "Workspace IP Changed"),
        ("dev.workspace", "Something Else"),
    ] {
        let mut e = change("andrew", "52.14.99.8");
        e["source"] = json!(source);
        e["detail-type"] = json!(detail_type);
        let inv = f.invoke(&e).await;
        let (t, m) = failure(&inv);
        assert_eq!(
            t, "Permanent.WrongEnvelope",
            "{source} / {detail_type}: {m}"
        );
        assert!(m.contains(source) && m.contains(detail_type), "{m}");
    }
    assert_eq!(fx.andrews_state().await, before);
    let audit = fx.audit().await;
    assert_eq!(audit.len(), 3, "{audit:?}");
    for (owner, _, new_cidr, outcome) in audit {
        assert_eq!(
            (owner.as_str(), new_cidr.as_deref(), outcome.as_str()),
            ("andrew", Some("52.14.99.8"), "refused_invalid_request")
        );
    }
    // The configured pair still works, as does the bare detail of a direct invocation.
    assert_eq!(
        f.invoke(&change("andrew", "52.14.99.8")).await.response()["outcome"],
        "applied"
    );
}

/// Requests refused before the owner is even looked up still land in the audit, with their
/// raw values cut short and made storable, and never crash the function.
#[tokio::test]
async fn malformed_requests_are_audited_too() {
    let fx = Fixture::shared().await;
    fx.add_owner("andrew", None, None, false).await;
    let f = fx.start().await;
    let long_owner = "o".repeat(500);
    let payloads = [
        json!({"owner": "andrew", "ip": null}),
        json!({"owner": "andrew", "ip": 5}),
        json!({"owner": "andrew", "ip": ["34.201.17.5"]}),
        json!({"owner": "andrew", "ip": {"v4": "34.201.17.5"}}),
        json!({"owner": "a b", "ip": "34.201.17.5"}),
        json!({"owner": "nul\u{0}owner", "ip": "34.201.17.5\u{0}"}),
        json!({"owner": long_owner, "ip": "34.201.17.5"}),
        json!({"owner": 7, "ip": "34.201.17.5"}),
    ];
    for p in &payloads {
        let inv = f.invoke(p).await;
        let (t, m) = failure(&inv);
        assert!(t.starts_with("Permanent."), "{p}: {t} {m}");
    }
    assert!(f.exit_status().is_none(), "the process lives on");
    let audit = fx.audit().await;
    assert_eq!(
        audit.len(),
        payloads.len(),
        "one audit row per request: {audit:?}"
    );
    assert!(
        audit.iter().all(|a| a.3 == "refused_invalid_request"),
        "{audit:?}"
    );
    let new: Vec<Option<&str>> = audit.iter().map(|a| a.2.as_deref()).collect();
    assert_eq!(
        &new[..4],
        [
            None,
            Some("5"),
            Some("[\"34.201.17.5\"]"),
            Some("{\"v4\":\"34.201.17.5\"}")
        ]
    );
    assert_eq!(audit[4].0, "a b");
    assert_eq!(audit[5].0, "nul\\0owner");
    assert_eq!(audit[5].2.as_deref(), Some("34.201.17.5\\0"));
    assert!(audit[6].0.chars().count() <= 65, "{}", audit[6].0);
    assert_eq!(audit[7].0, "7");
    assert_eq!(fx.row("andrew").await.0, None, "nothing was applied");
}

/// EventBridge stamps events to the second; a direct request is stamped on arrival to the
/// microsecond. An event from the same second as the newest request taken is newer, not stale.
#[tokio::test]
async fn an_event_stamped_in_the_same_second_as_a_direct_request_is_not_dropped() {
    let fx = Fixture::shared().await;
    fx.add_owner("andrew", None, None, false).await;
    let f = fx.start().await;
    let direct = f
        .invoke(&json!({"owner": "andrew", "ip": "34.201.17.5"}))
        .await;
    assert_eq!(direct.response()["outcome"], "applied");
    // The event EventBridge would stamp in that same second: its time is the direct
    // request's, cut to the whole second.
    let second: String = fx
        .db
        .connect_as_app()
        .await
        .unwrap()
        .query_one(
            "SELECT to_char(last_request_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') \
             FROM managed_ingress_rules WHERE owner = 'andrew'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let event = f.invoke(&change_at("andrew", "52.14.99.8", &second)).await;
    assert_eq!(event.response()["outcome"], "applied", "{second}");
    assert_eq!(fx.row("andrew").await.0.as_deref(), Some("52.14.99.8/32"));
    assert_eq!(fx.ingress().await[0].1, "52.14.99.8/32");
    // One from an earlier second still is stale.
    let older = f
        .invoke(&change_at("andrew", "18.204.3.77", "2026-01-01T00:00:00Z"))
        .await;
    assert_eq!(older.response()["outcome"], "stale");
}

/// A rule deleted by hand while its row says applied: the same address sent again must put it
/// back, not answer "unchanged" and leave the developer locked out until a remediate run.
#[tokio::test]
async fn the_same_address_after_its_rule_was_deleted_by_hand_puts_the_rule_back() {
    let fx = Fixture::shared().await;
    fx.add_owner("andrew", None, None, false).await;
    let f = fx.start().await;
    let first = f.invoke(&change("andrew", "52.14.99.8")).await;
    assert_eq!(first.response()["outcome"], "applied");
    let rule_id = fx.row("andrew").await.1.unwrap();
    fx.revoke_by_hand(&rule_id).await;
    assert!(fx.ingress().await.is_empty());

    let again = f.invoke(&change("andrew", "52.14.99.8")).await;
    assert_eq!(
        again.response()["outcome"],
        "applied",
        "{:?}",
        again.response()
    );
    let rules = fx.ingress().await;
    assert_eq!(rules.len(), 1, "{rules:?}");
    assert_eq!((rules[0].1.as_str(), rules[0].2), ("52.14.99.8/32", 5432));
    let row = fx.row("andrew").await;
    assert_eq!(
        (row.1.as_deref(), row.2.as_str()),
        (Some(rules[0].0.as_str()), "applied")
    );
    // And once it is there, the same address is unchanged again.
    let third = f.invoke(&change("andrew", "52.14.99.8")).await;
    assert_eq!(third.response()["outcome"], "unchanged");
}

/// A developer who asks for exactly the address (and port) of a rule made by hand gets no
/// hold on it: AWS answers "duplicate", the rule carries no tag of this stack, so the row does
/// not take it over, and the developer's next move leaves it as it was.
#[tokio::test]
async fn a_rule_made_by_hand_is_never_taken_over() {
    let fx = Fixture::shared().await;
    let bastion = fx.open("52.14.99.8/32").await;
    fx.add_owner("andrew", None, None, false).await;
    let f = fx.start().await;

    let inv = f.invoke(&change("andrew", "52.14.99.8")).await;
    let (t, m) = failure(&inv);
    assert_eq!(t, "Permanent.AwsApply", "{m}");
    assert!(m.contains(&bastion) && m.contains("not taken over"), "{m}");
    let row = fx.row("andrew").await;
    assert_eq!(
        (row.1, row.2.as_str()),
        (None, "failed"),
        "the row took no rule"
    );

    // His next address gets a rule of his own; the hand-made one is untouched.
    let moved = f.invoke(&change("andrew", "34.201.17.5")).await;
    assert_eq!(moved.response()["outcome"], "applied");
    let rules = fx.ingress().await;
    assert!(
        rules
            .iter()
            .any(|r| r.0 == bastion && r.1 == "52.14.99.8/32"),
        "{rules:?}"
    );
    assert!(
        rules
            .iter()
            .any(|r| r.0 != bastion && r.1 == "34.201.17.5/32"),
        "{rules:?}"
    );
}

/// EventBridge invokes asynchronously and Lambda retries every function error, whatever its
/// name: a refusal that no retry can change is answered as a success (`outcome: refused`), so
/// one refused event costs one invocation and one audit row. A failure a retry may fix (EC2
/// down) stays an error, and a direct invocation's refusal stays an error for its caller.
#[tokio::test]
async fn a_refused_bus_event_is_not_an_error_lambda_would_retry() {
    let fx = Fixture::shared().await;
    fx.add_owner("andrew", None, None, false).await;
    let f = fx.start().await;

    let refused = f.invoke(&change("mallory", "52.14.99.8")).await;
    let answer = refused.response();
    assert_eq!(answer["outcome"], "refused", "{answer}");
    assert_eq!(answer["error"], "Permanent.Unauthorized", "{answer}");
    assert_eq!(
        fx.audit().await.len(),
        1,
        "one refused event, one audit row"
    );

    let direct = f
        .invoke(&json!({"owner": "mallory", "ip": "52.14.99.8"}))
        .await;
    assert_eq!(direct.error().0, "Permanent.Unauthorized");
}

/// PutEvents lets the sender set `time`: an event stamped in the future must not pin the row
/// as "newer than everything", which would make every later request stale.
#[tokio::test]
async fn an_event_from_the_future_is_refused_and_pins_nothing() {
    let fx = Fixture::shared().await;
    fx.add_owner("andrew", None, None, false).await;
    let f = fx.start().await;
    let future = f
        .invoke(&change_at("andrew", "52.14.99.8", "2099-01-01T00:00:00Z"))
        .await;
    let (t, m) = failure(&future);
    assert_eq!(t, "Permanent.BadEvent", "{m}");
    assert!(m.contains("ahead of this function's clock"), "{m}");
    assert_eq!(fx.row("andrew").await.0, None, "nothing applied");

    // An ordinary event now is taken, not stale.
    let now = f.invoke(&change("andrew", "34.201.17.5")).await;
    assert_eq!(now.response()["outcome"], "applied");
}

/// Every request leaves a record: one that gives up waiting for the owner's lock (another
/// request holds it) is audited as `busy`, and stays an error a retry may fix.
#[tokio::test]
async fn a_request_that_waits_too_long_for_the_owner_is_audited_busy() {
    let fx = Fixture::shared().await;
    fx.add_owner("andrew", None, None, false).await;
    let holder = fx.db.connect_as_app().await.unwrap();
    holder
        .execute(
            "SELECT pg_advisory_lock(hashtextextended($1, 0))",
            &[&format!("managed-ingress/{}/andrew", fx.group)],
        )
        .await
        .unwrap();
    let f = fx.start_with(&[("OWNER_LOCK_WAIT_MS", "300")]).await;
    let inv = f.invoke(&change("andrew", "52.14.99.8")).await;
    assert_eq!(inv.error().0, "Retryable.Busy");
    let audit = fx.audit().await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].3, "busy");
    assert!(fx.ingress().await.is_empty());
}

/// The applied change and its audit row commit together: when the audit row cannot be
/// written, the row does not say `applied` (it stays pending for drift-check), and the error
/// line says the request was not audited.
#[tokio::test]
async fn an_applied_change_is_never_left_without_its_audit_row() {
    let fx = Fixture::shared().await;
    fx.add_owner("andrew", None, None, false).await;
    fx.db
        .connect_as_app()
        .await
        .unwrap()
        .batch_execute(
            "CREATE FUNCTION refuse_applied() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN IF NEW.outcome = 'applied' THEN RAISE EXCEPTION 'audit unavailable'; END IF; \
             RETURN NEW; END $$; \
             CREATE TRIGGER refuse_applied BEFORE INSERT ON ip_update_audit \
             FOR EACH ROW EXECUTE FUNCTION refuse_applied()",
        )
        .await
        .unwrap();
    let f = fx.start().await;
    let inv = f.invoke(&change("andrew", "52.14.99.8")).await;
    let (t, m) = failure(&inv);
    assert!(t.ends_with(".Database"), "{t}: {m}");
    let (cidr, _, status, _) = fx.row("andrew").await;
    assert_eq!(
        (cidr.as_deref(), status.as_str()),
        (Some("52.14.99.8/32"), "pending")
    );
    assert!(fx.audit().await.is_empty());
    let line = f.error_line(&inv).await;
    assert!(line.contains("\"audited\":false"), "{line}");
}
