//! sg-ip-update end to end: the real binary through the Lambda Runtime API, real Postgres,
//! EC2 served by moto.
//!
//! Most cases here send EventBridge events or bare direct invocations, which prove no sender:
//! their rows are inserted with `allow_unverified` (by `add_owner`). The Function URL cases,
//! with the identity AWS hands the function, insert rows naming a principal (`add_principal`).

use std::time::Duration;

use futures_util::future::join_all;
use harness::{
    Function, Outcome, Stack, TestDb, aws, event,
    fixtures::{RuleRow, add_managed_rule, function_env},
    function_binary,
};
use serde_json::{Value, json};

/// A row as the tests read it: (cidr, aws rule id, status, last error).
type RowState = (Option<String>, Option<String>, String, Option<String>);

struct Fixture {
    db: TestDb,
    ec2: aws_sdk_ec2::Client,
    group: String,
    moto: Stack,
}

impl Fixture {
    async fn new(moto: Stack) -> Fixture {
        let db = Stack::shared().fresh_database().await.unwrap();
        let ec2 = aws_sdk_ec2::Client::new(&moto.sdk_config().await);
        let group = aws::create_group(&ec2).await;
        Fixture {
            db,
            ec2,
            group,
            moto,
        }
    }

    async fn shared() -> Fixture {
        Fixture::new(Stack::shared().clone()).await
    }

    fn env(&self) -> Vec<(String, String)> {
        function_env(&self.db, &self.moto, &[("SECURITY_GROUP_ID", &self.group)])
    }

    async fn start(&self) -> Function {
        Function::spawn(&function_binary("sg-ip-update"), &self.env())
            .await
            .unwrap()
    }

    async fn open(&self, cidr: &str) -> String {
        aws::open_port(&self.ec2, &self.group, cidr, 5432).await
    }

    /// A row that unverified requests (bus events, bare direct invocations) may move.
    async fn add_owner(
        &self,
        owner: &str,
        cidr: Option<&str>,
        rule_id: Option<&str>,
        allow_private: bool,
    ) {
        // These tests send bus events and bare invocations: rows that allow unverified moves.
        let row = RuleRow {
            owner,
            cidr,
            aws_rule_id: rule_id,
            allow_private,
            allow_unverified: true,
            ..RuleRow::default()
        };
        add_managed_rule(&self.db, &self.group, row).await;
    }

    /// Andrew's row as AWS already has it (34.201.17.5/32), movable by his principal only
    /// (and by unverified requests when `allow_unverified`).
    async fn andrews_applied_rule(&self, allow_unverified: bool) {
        let rule_id = self.open("34.201.17.5/32").await;
        self.add_principal(
            "andrew",
            Some(ANDREW),
            allow_unverified,
            Some(("34.201.17.5/32", &rule_id)),
        )
        .await;
    }

    /// What a refused request must leave as it was: the group's rules and andrew's row.
    async fn andrews_state(&self) -> (Vec<(String, String, i32, i32)>, RowState) {
        (self.ingress().await, self.row("andrew").await)
    }

    /// A row only `principal` may move (unless `allow_unverified`), at `cidr` with AWS rule
    /// `rule_id`.
    async fn add_principal(
        &self,
        owner: &str,
        principal: Option<&str>,
        allow_unverified: bool,
        at: Option<(&str, &str)>,
    ) {
        let row = RuleRow {
            owner,
            cidr: at.map(|a| a.0),
            aws_rule_id: at.map(|a| a.1),
            principal,
            allow_unverified,
            ..RuleRow::default()
        };
        add_managed_rule(&self.db, &self.group, row).await;
    }

    /// The audit's who-and-how: (owner, outcome, via, caller ARN, caller account, detail).
    async fn audit_callers(&self) -> Vec<AuditCaller> {
        self.db
            .connect_as_app()
            .await
            .unwrap()
            .query(
                "SELECT owner, outcome, via, caller_arn, caller_account_id, detail FROM ip_update_audit ORDER BY id",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| AuditCaller {
                owner: r.get(0),
                outcome: r.get(1),
                via: r.get(2),
                caller_arn: r.get(3),
                caller_account_id: r.get(4),
                detail: r.get(5),
            })
            .collect()
    }

    /// The group's ingress rules in EC2: (rule id, CIDR, ports).
    async fn ingress(&self) -> Vec<(String, String, i32, i32)> {
        aws::ingress(&self.ec2, &self.group).await
    }

    /// The owner's row: (cidr, aws rule id, status, last error).
    async fn row(&self, owner: &str) -> RowState {
        let r = self
            .db
            .connect_as_app()
            .await
            .unwrap()
            .query_one(
                "SELECT cidr::text, aws_rule_id, status, last_error FROM managed_ingress_rules WHERE owner = $1",
                &[&owner],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1), r.get(2), r.get(3))
    }

    async fn audit(&self) -> Vec<(String, Option<String>, Option<String>, String)> {
        self.db
            .connect_as_app()
            .await
            .unwrap()
            .query(
                "SELECT owner, old_cidr, new_cidr, outcome FROM ip_update_audit ORDER BY id",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect()
    }
}

#[derive(Debug)]
struct AuditCaller {
    owner: String,
    outcome: String,
    via: Option<String>,
    caller_arn: Option<String>,
    caller_account_id: Option<String>,
    detail: Option<String>,
}

fn change(owner: &str, ip: &str) -> Value {
    let mut e = event("sg-ip-update.json");
    e["detail"] = json!({"owner": owner, "ip": ip});
    e
}

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
    fx.ec2
        .revoke_security_group_ingress()
        .group_id(&fx.group)
        .security_group_rule_ids(&rule_id)
        .send()
        .await
        .unwrap();
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
    let (t, m) = inv.error();
    assert_eq!(t, "Permanent.UnknownOwner");
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
        let (t, m) = inv.error();
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
        f.invoke(&change("vpn", "127.0.0.1")).await.error().0,
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
    let (error_type, message) = inv.error();
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
        let (t, m) = inv.error();
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
        let (t, m) = inv.error();
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

const ANDREW: &str = "arn:aws:iam::123456789012:user/andrew";
const BEA: &str = "arn:aws:iam::123456789012:user/bea";

/// A Function URL request as AWS hands it over (`events/sg-ip-update-function-url.json`),
/// signed by `caller` (`None`: no identity, as with AuthType NONE), asking to move `owner`.
fn url_change(caller: Option<&str>, owner: &str, ip: &str) -> Value {
    let mut e = event("sg-ip-update-function-url.json");
    e["body"] = json!(json!({"owner": owner, "ip": ip}).to_string());
    match caller {
        Some(arn) => {
            let iam = &mut e["requestContext"]["authorizer"]["iam"];
            iam["userArn"] = json!(arn);
            iam["accountId"] = json!(arn.split(':').nth(4).unwrap());
            iam["callerId"] = json!(format!("AIDA{}", arn.len()));
        }
        None => e["requestContext"]["authorizer"] = Value::Null,
    }
    e
}

/// A Function URL answer: its status and its JSON body. A Function URL request is always
/// answered this way, never with a runtime error (Lambda would turn that into a bare 502).
fn http(inv: &harness::Invocation) -> (i64, Value) {
    let r = inv.response();
    assert_eq!(r["headers"]["content-type"], "application/json", "{r}");
    assert_eq!(r["isBase64Encoded"], false, "{r}");
    let body = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
    (r["statusCode"].as_i64().unwrap(), body)
}

#[tokio::test]
async fn the_rows_own_principal_moves_it_through_the_function_url() {
    let fx = Fixture::shared().await;
    let rule_id = fx.open("18.204.3.77/32").await;
    fx.add_principal(
        "andrew",
        Some(ANDREW),
        false,
        Some(("18.204.3.77/32", &rule_id)),
    )
    .await;
    let f = fx.start().await;

    // The sample event as it is: andrew's own signed request.
    let (status, body) = http(&f.invoke(&event("sg-ip-update-function-url.json")).await);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outcome"], "applied");
    assert_eq!(body["previous_cidr"], "18.204.3.77/32");
    assert_eq!(
        fx.ingress().await,
        vec![(rule_id, "34.201.17.5/32".into(), 5432, 5432)]
    );
    let audit = fx.audit_callers().await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(
        (
            audit[0].outcome.as_str(),
            audit[0].via.as_deref(),
            audit[0].caller_arn.as_deref(),
            audit[0].caller_account_id.as_deref()
        ),
        (
            "applied",
            Some("function_url"),
            Some(ANDREW),
            Some("123456789012")
        )
    );
}

#[tokio::test]
async fn another_developers_principal_naming_andrew_is_refused_and_audited_with_both_identities() {
    let fx = Fixture::shared().await;
    fx.andrews_applied_rule(false).await;
    fx.add_principal("bea", Some(BEA), false, None).await;
    let before = fx.andrews_state().await;
    let f = fx.start().await;

    let (status, body) = http(
        &f.invoke(&url_change(Some(BEA), "andrew", "52.14.99.8"))
            .await,
    );
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "Permanent.Unauthorized");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains(BEA)
            && message.contains("andrew")
            && message.contains("nothing was changed"),
        "{message}"
    );
    assert!(
        !message.contains(ANDREW),
        "the answer does not reveal andrew's principal: {message}"
    );
    assert_eq!(
        fx.andrews_state().await,
        before,
        "EC2 and the row unchanged"
    );

    let audit = fx.audit_callers().await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    let a = &audit[0];
    assert_eq!(
        (
            a.owner.as_str(),
            a.outcome.as_str(),
            a.via.as_deref(),
            a.caller_arn.as_deref()
        ),
        (
            "andrew",
            "refused_unauthorized",
            Some("function_url"),
            Some(BEA)
        )
    );
    let detail = a.detail.as_deref().unwrap();
    assert!(
        detail.contains(BEA) && detail.contains(ANDREW),
        "both identities: {detail}"
    );

    // Bea's own rule is hers to move.
    let (status, body) = http(&f.invoke(&url_change(Some(BEA), "bea", "52.14.99.8")).await);
    assert_eq!(
        (status, &body["outcome"]),
        (200, &json!("applied")),
        "{body}"
    );
}

#[tokio::test]
async fn an_unknown_principal_and_a_missing_identity_are_refused() {
    let fx = Fixture::shared().await;
    fx.andrews_applied_rule(true).await;
    // A row that names nobody: no signed request moves it.
    fx.add_principal("cy", None, false, None).await;
    let before = fx.andrews_state().await;
    let f = fx.start().await;

    let strangers = [
        "arn:aws:iam::999999999999:user/andrew",
        "arn:aws:iam::123456789012:user/Andrew",
        "arn:aws:sts::123456789012:assumed-role/andrew/andrew",
        "arn:aws:iam::123456789012:user/andrew/",
    ];
    for stranger in strangers {
        let (status, body) = http(
            &f.invoke(&url_change(Some(stranger), "andrew", "52.14.99.8"))
                .await,
        );
        assert_eq!(
            (status, &body["error"]),
            (403, &json!("Permanent.Unauthorized")),
            "{stranger}: {body}"
        );
    }
    let (status, body) = http(
        &f.invoke(&url_change(Some(ANDREW), "cy", "52.14.99.8"))
            .await,
    );
    assert_eq!(
        (status, &body["error"]),
        (403, &json!("Permanent.Unauthorized")),
        "{body}"
    );
    // No identity at all (a URL with AuthType NONE): refused, even for a row that takes
    // unverified requests, since a Function URL request must be signed.
    let (status, body) = http(&f.invoke(&url_change(None, "andrew", "52.14.99.8")).await);
    assert_eq!(
        (status, &body["error"]),
        (403, &json!("Permanent.NoIdentity")),
        "{body}"
    );

    assert_eq!(
        fx.andrews_state().await,
        before,
        "EC2 and the row unchanged"
    );
    assert_eq!(fx.row("cy").await.0, None);
    let audit = fx.audit_callers().await;
    assert_eq!(audit.len(), strangers.len() + 2, "{audit:?}");
    assert!(
        audit.iter().all(
            |a| a.outcome == "refused_unauthorized" && a.via.as_deref() == Some("function_url")
        ),
        "{audit:?}"
    );
    let callers: Vec<Option<&str>> = audit.iter().map(|a| a.caller_arn.as_deref()).collect();
    assert_eq!(&callers[..strangers.len()], strangers.map(Some));
    assert_eq!(callers.last().unwrap(), &None, "no identity, none recorded");
    assert_eq!(audit.last().unwrap().owner, "andrew");
}

#[tokio::test]
async fn a_role_session_matching_the_rows_pattern_moves_it() {
    let fx = Fixture::shared().await;
    fx.add_principal(
        "andrew",
        Some("arn:aws:sts::123456789012:assumed-role/dev-andrew/*"),
        false,
        None,
    )
    .await;
    let f = fx.start().await;
    let session = "arn:aws:sts::123456789012:assumed-role/dev-andrew/andrew-laptop";
    let (status, body) = http(
        &f.invoke(&url_change(Some(session), "andrew", "52.14.99.8"))
            .await,
    );
    assert_eq!(
        (status, &body["outcome"]),
        (200, &json!("applied")),
        "{body}"
    );
    assert_eq!(fx.ingress().await[0].1, "52.14.99.8/32");

    for near_miss in [
        "arn:aws:sts::123456789012:assumed-role/dev-andrew-x/andrew-laptop",
        "arn:aws:sts::123456789012:assumed-role/dev-bea/andrew-laptop",
        "arn:aws:sts::999999999999:assumed-role/dev-andrew/andrew-laptop",
        "arn:aws:iam::123456789012:role/dev-andrew",
    ] {
        let (status, _) = http(
            &f.invoke(&url_change(Some(near_miss), "andrew", "18.204.3.77"))
                .await,
        );
        assert_eq!(status, 403, "{near_miss}");
    }
    assert_eq!(fx.ingress().await[0].1, "52.14.99.8/32");
}

/// The bus and bare direct invocations prove no sender: they move only rows with
/// `allow_unverified`, and are refused (permanently, so EventBridge does not retry) and
/// audited for the rest.
#[tokio::test]
async fn bus_events_and_direct_invocations_move_only_rows_that_allow_unverified() {
    let fx = Fixture::shared().await;
    fx.andrews_applied_rule(false).await;
    fx.add_principal("bea", Some(BEA), true, None).await;
    let before = fx.andrews_state().await;
    let f = fx.start().await;

    for request in [
        change("andrew", "52.14.99.8"),
        json!({"owner": "andrew", "ip": "52.14.99.8"}),
    ] {
        let inv = f.invoke(&request).await;
        let (t, m) = inv.error();
        assert_eq!(t, "Permanent.Unverified", "{m}");
        assert!(
            m.contains("andrew") && m.contains("nothing was changed"),
            "{m}"
        );
    }
    assert_eq!(fx.andrews_state().await, before);
    let audit = fx.audit_callers().await;
    let seen: Vec<(&str, Option<&str>, Option<&str>)> = audit
        .iter()
        .map(|a| {
            (
                a.outcome.as_str(),
                a.via.as_deref(),
                a.caller_arn.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("refused_unauthorized", Some("eventbridge"), None),
            ("refused_unauthorized", Some("direct"), None)
        ]
    );

    // A row that allows it moves by bus and by direct invocation.
    assert_eq!(
        f.invoke(&change("bea", "52.14.99.8")).await.response()["outcome"],
        "applied"
    );
    assert_eq!(
        f.invoke(&json!({"owner": "bea", "ip": "18.204.3.77"}))
            .await
            .response()["outcome"],
        "applied"
    );
    assert_eq!(fx.row("bea").await.0.as_deref(), Some("18.204.3.77/32"));
}

/// Every Function URL refusal or failure is an HTTP answer with a short JSON body: a bad
/// request 400, a refusal 403, a failure that may pass 503.
#[tokio::test]
async fn function_url_errors_are_answered_with_their_status() {
    let fx = Fixture::shared().await;
    fx.add_principal("andrew", Some(ANDREW), false, None).await;
    let f = fx.start().await;

    let (status, body) = http(
        &f.invoke(&url_change(Some(ANDREW), "andrew", "10.0.0.8"))
            .await,
    );
    assert_eq!(
        (status, &body["error"]),
        (400, &json!("Permanent.InvalidIp")),
        "{body}"
    );
    let mut not_json = url_change(Some(ANDREW), "andrew", "52.14.99.8");
    not_json["body"] = json!("owner=andrew&ip=52.14.99.8");
    let (status, body) = http(&f.invoke(&not_json).await);
    assert_eq!(
        (status, &body["error"]),
        (400, &json!("Permanent.BadEvent")),
        "{body}"
    );
    let (status, body) = http(
        &f.invoke(&url_change(Some(ANDREW), "mallory", "52.14.99.8"))
            .await,
    );
    assert_eq!(
        (status, &body["error"]),
        (403, &json!("Permanent.UnknownOwner")),
        "{body}"
    );
    assert_eq!(fx.row("andrew").await.0, None);

    let mut env = fx.env();
    env.push(("AWS_ENDPOINT_URL_EC2".into(), "http://127.0.0.1:9".into()));
    env.push(("AWS_CALL_TIMEOUT_MS".into(), "1000".into()));
    let down = Function::spawn(&function_binary("sg-ip-update"), &env)
        .await
        .unwrap();
    let inv = down
        .invoke_within(
            &url_change(Some(ANDREW), "andrew", "52.14.99.8"),
            Duration::from_secs(10),
        )
        .await;
    let (status, body) = http(&inv);
    assert_eq!(
        (status, &body["error"]),
        (503, &json!("Retryable.AwsApply")),
        "{body}"
    );
    let outcomes: Vec<String> = fx.audit().await.into_iter().map(|a| a.3).collect();
    assert_eq!(
        outcomes,
        [
            "refused_invalid_ip",
            "refused_invalid_request",
            "refused_unknown_owner",
            "failed"
        ]
    );
}

/// Odd Function URL requests (as a direct invoker could forge them, or a client could send):
/// each gets a 4xx answer, the process lives on, EC2 and the row are unchanged, and each is
/// audited with storable values.
#[tokio::test]
async fn odd_function_url_requests_get_a_4xx_and_change_nothing() {
    let fx = Fixture::shared().await;
    fx.andrews_applied_rule(true).await;
    let before = fx.andrews_state().await;
    let f = fx.start().await;
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut e = url_change(Some(ANDREW), "andrew", "52.14.99.8");
        edit(&mut e);
        e
    };
    let cases = [
        (with(&|e| e["requestContext"] = Value::Null), 400),
        (with(&|e| e["body"] = Value::Null), 400),
        (with(&|e| e["body"] = json!("x".repeat(100_000))), 400),
        (
            with(&|e| e["body"] = json!(r#"{"owner":"andrew","ip":"52.14.99.8","extra":1}"#)),
            400,
        ),
        (with(&|e| e["isBase64Encoded"] = json!(true)), 400),
        (
            with(&|e| {
                e["isBase64Encoded"] = json!(true);
                e["body"] = json!("//79AA==");
            }),
            400,
        ),
        (
            with(&|e| e["requestContext"]["http"]["method"] = json!("PUT")),
            400,
        ),
        (
            with(&|e| e["requestContext"]["authorizer"]["iam"] = json!({})),
            403,
        ),
        (
            with(&|e| {
                e["requestContext"]["authorizer"]["iam"]["userArn"] =
                    json!(format!("{ANDREW}\u{0}"))
            }),
            403,
        ),
        (
            with(&|e| {
                e["requestContext"]["authorizer"]["iam"]["userArn"] =
                    json!(format!("{ANDREW}{}", "x".repeat(5000)))
            }),
            403,
        ),
        (
            with(&|e| e["requestContext"]["authorizer"]["iam"]["userArn"] = json!(7)),
            400,
        ),
    ];
    for (i, (request, expected)) in cases.iter().enumerate() {
        let (status, body) = http(&f.invoke(request).await);
        assert_eq!(status, *expected, "case {i}: {body}");
        assert!(
            body["message"].as_str().unwrap().len() < 1000,
            "case {i}: {body}"
        );
        assert!(f.exit_status().is_none(), "case {i} killed the process");
    }
    assert_eq!(fx.andrews_state().await, before);
    let audit = fx.audit_callers().await;
    assert_eq!(audit.len(), cases.len(), "{audit:?}");
    assert!(
        audit
            .iter()
            .all(|a| a.via.as_deref() == Some("function_url")),
        "{audit:?}"
    );
    assert!(
        audit
            .iter()
            .filter_map(|a| a.caller_arn.as_deref())
            .all(|c| c.chars().count() <= 301),
        "{audit:?}"
    );
}
