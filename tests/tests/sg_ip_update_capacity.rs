//! A thousand developers fit: sg-ip-update spreads developers' rules over the managed groups
//! (`SECURITY_GROUP_ID` and `ADDITIONAL_SECURITY_GROUP_IDS`), each rule staying in its group
//! while it lives; when every group is full it refuses plainly, audited, without a retry and
//! without marking the row; a lapsed rule's slot goes to the next developer; drift-check
//! reports each group's use against the quota. moto enforces the 60 rules a group holds.
//!
//! Where a test is not about the request path, the groups are filled through moto directly
//! (one call adds up to 60 rules) and the rows through SQL.

use aws_sdk_ec2::types::{IpPermission, IpRange};
use harness::{Function, aws, fixtures::function_env, function_binary};
use serde_json::{Value, json};

#[path = "common/sg.rs"]
mod sg;
use sg::{Fixture, change, failure};

/// The groups' default quota, as moto enforces it.
const QUOTA: usize = 60;

/// A public address of its own for developer `i`.
fn address(i: usize) -> String {
    format!("52.14.{}.{}", i / 200, i % 200 + 1)
}

fn owner(i: usize) -> String {
    format!("dev{i:03}")
}

/// The fixture's group and two more: the three managed groups, the fixture's first.
async fn three_groups(fx: &Fixture) -> [String; 3] {
    [
        fx.group.clone(),
        aws::create_group(&fx.ec2).await,
        aws::create_group(&fx.ec2).await,
    ]
}

fn additional(groups: &[String]) -> String {
    groups[1..].join(",")
}

/// Rows for developers `from..to` under the fixture's group, never applied, movable by bare
/// requests and bus events.
async fn developers(fx: &Fixture, from: usize, to: usize) {
    fx.db
        .connect_as_app()
        .await
        .unwrap()
        .execute(
            "INSERT INTO managed_ingress_rules (security_group_id, owner, allow_unverified) \
             SELECT $1, format('dev%s', lpad(i::text, 3, '0')), true \
             FROM generate_series($2::int, $3::int - 1) i",
            &[&fx.group, &(from as i32), &(to as i32)],
        )
        .await
        .unwrap();
}

/// Opens `n` rules by hand in `group` (not this stack's: they carry no owner tag), in one call;
/// their addresses start at 18.`block`.0.1.
async fn fill(fx: &Fixture, group: &str, block: u8, n: usize) {
    let mut permission = IpPermission::builder()
        .ip_protocol("tcp")
        .from_port(5432)
        .to_port(5432);
    for i in 0..n {
        permission = permission.ip_ranges(
            IpRange::builder()
                .cidr_ip(format!("18.{block}.{}.{}/32", i / 200, i % 200 + 1))
                .build(),
        );
    }
    fx.ec2
        .authorize_security_group_ingress()
        .group_id(group)
        .ip_permissions(permission.build())
        .send()
        .await
        .unwrap();
}

/// (aws rule id, placed group, status) of `owner`'s row.
async fn placement(fx: &Fixture, owner: &str) -> (Option<String>, Option<String>, String) {
    let r = fx
        .db
        .connect_as_app()
        .await
        .unwrap()
        .query_one(
            "SELECT aws_rule_id, placed_group_id, status FROM managed_ingress_rules \
             WHERE owner = $1",
            &[&owner],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1), r.get(2))
}

async fn rule_ids(fx: &Fixture, group: &str) -> Vec<String> {
    aws::ingress(&fx.ec2, group)
        .await
        .into_iter()
        .map(|r| r.0)
        .collect()
}

/// The two columns of each row `sql` (with one text parameter, `key`) returns.
async fn pairs<A, B>(fx: &Fixture, sql: &str, key: &str) -> Vec<(A, B)>
where
    A: for<'a> tokio_postgres::types::FromSql<'a>,
    B: for<'a> tokio_postgres::types::FromSql<'a>,
{
    fx.db
        .connect_as_app()
        .await
        .unwrap()
        .query(sql, &[&key])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// The audit rows of `owner`: (outcome, detail).
async fn audit_of(fx: &Fixture, owner: &str) -> Vec<(String, Option<String>)> {
    let sql = "SELECT outcome, detail FROM ip_update_audit WHERE owner = $1 ORDER BY id";
    pairs(fx, sql, owner).await
}

#[tokio::test]
async fn a_hundred_and_fifty_developers_are_all_applied_over_three_groups() {
    let fx = Fixture::shared().await;
    let groups = three_groups(&fx).await;
    developers(&fx, 0, 150).await;
    let f = fx
        .start_with(&[("ADDITIONAL_SECURITY_GROUP_IDS", &additional(&groups))])
        .await;
    for i in 0..150 {
        let v = f.invoke(&change(&owner(i), &address(i))).await;
        assert_eq!(v.response()["outcome"], "applied", "{i}: {}", v.response());
    }
    let mut placed = 0;
    for g in &groups {
        let ids = rule_ids(&fx, g).await;
        assert!(ids.len() <= QUOTA, "{g}: {}", ids.len());
        placed += ids.len();
    }
    assert_eq!(placed, 150);
    // Each row names the group that holds its rule, and keeps it on its next move.
    for i in [0, 59, 60, 149] {
        let (id, group, status) = placement(&fx, &owner(i)).await;
        let group = group.expect("the row records its group");
        assert_eq!(status, "applied");
        assert!(rule_ids(&fx, &group).await.contains(&id.clone().unwrap()));
        let moved = f.invoke(&change(&owner(i), &address(i + 500))).await;
        assert_eq!(moved.response()["outcome"], "applied");
        assert_eq!(placement(&fx, &owner(i)).await, (id, Some(group), status));
    }
}

#[tokio::test]
async fn the_181st_developer_is_refused_plainly_audited_and_not_retried() {
    let fx = Fixture::shared().await;
    let groups = three_groups(&fx).await;
    // 180 rules: 60 per group, by hand (they count as AWS reports them, not only our rows).
    for (block, g) in groups.iter().enumerate() {
        fill(&fx, g, block as u8, QUOTA).await;
    }
    developers(&fx, 180, 181).await;
    let f = fx
        .start_with(&[("ADDITIONAL_SECURITY_GROUP_IDS", &additional(&groups))])
        .await;

    let inv = f.invoke(&change(&owner(180), &address(180))).await;
    // An EventBridge event refused for good is answered, not failed: Lambda does not retry it.
    let (error, message) = failure(&inv);
    assert_eq!(error, "Permanent.NoRoom", "{message}");
    for says in [
        "180 rules",
        "3 managed security groups",
        "Inbound or outbound rules per security group",
        "AdditionalDatabaseSecurityGroupIds",
    ] {
        assert!(message.contains(says), "{says:?} in {message}");
    }
    let audit = audit_of(&fx, &owner(180)).await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].0, "refused_no_room");
    assert!(audit[0].1.as_deref().unwrap().contains("180 rules"));
    // The row promises nothing: no address, not failed, nothing for drift-check to chase.
    assert_eq!(
        fx.row(&owner(180)).await,
        (None, None, "pending".into(), None)
    );
    for g in &groups {
        assert_eq!(rule_ids(&fx, g).await.len(), QUOTA);
    }
}

/// drift-check against the fixture's world: its database, moto, a user pool of its own.
async fn drift_check(fx: &Fixture, groups: &[String]) -> Function {
    let cognito = aws_sdk_cognitoidentityprovider::Client::new(&fx.moto.sdk_config().await);
    let pool = aws::create_pool(&cognito).await;
    let ids = groups.join(",");
    let env = function_env(
        &fx.db,
        &fx.moto,
        &[("USER_POOL_ID", &pool), ("SECURITY_GROUP_IDS", &ids)],
    );
    Function::spawn(&function_binary("drift-check"), &env)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_lapsed_rules_slot_is_taken_by_the_next_developer() {
    let fx = Fixture::shared().await;
    let groups = three_groups(&fx).await;
    fill(&fx, &groups[0], 0, QUOTA).await;
    fill(&fx, &groups[1], 1, QUOTA - 1).await;
    fill(&fx, &groups[2], 2, QUOTA).await;
    developers(&fx, 0, 2).await;
    let f = fx
        .start_with(&[("ADDITIONAL_SECURITY_GROUP_IDS", &additional(&groups))])
        .await;
    // dev000 takes the last slot, in the second group; dev001 finds none.
    assert_eq!(
        f.invoke(&change(&owner(0), &address(0))).await.response()["outcome"],
        "applied"
    );
    assert_eq!(placement(&fx, &owner(0)).await.1, Some(groups[1].clone()));
    assert_eq!(
        failure(&f.invoke(&change(&owner(1), &address(1))).await).0,
        "Permanent.NoRoom"
    );

    // dev000's lifetime runs out: drift-check revokes the rule (DRIFT_LAPSE=revoke, also in
    // report mode), freeing the slot.
    fx.db
        .connect_as_app()
        .await
        .unwrap()
        .execute(
            "UPDATE managed_ingress_rules SET expires_at = now() - interval '1 minute' \
             WHERE owner = 'dev000'",
            &[],
        )
        .await
        .unwrap();
    let drift = drift_check(&fx, &groups).await;
    let summary = drift.invoke(&json!({})).await.response().clone();
    assert_eq!(summary["counts"]["expired"], 1, "{summary:#}");
    assert_eq!(placement(&fx, &owner(0)).await.2, "expired");
    assert_eq!(rule_ids(&fx, &groups[1]).await.len(), QUOTA - 1);

    let next = f.invoke(&change(&owner(1), &address(1))).await;
    assert_eq!(next.response()["outcome"], "applied", "{}", next.response());
    let (id, group, _) = placement(&fx, &owner(1)).await;
    assert_eq!(group.as_deref(), Some(groups[1].as_str()));
    assert!(rule_ids(&fx, &groups[1]).await.contains(&id.unwrap()));

    // dev000 comes back to full groups: refused, not failed.
    assert_eq!(
        failure(&f.invoke(&change(&owner(0), &address(0))).await).0,
        "Permanent.NoRoom"
    );
    assert_eq!(placement(&fx, &owner(0)).await.2, "expired");
}

/// drift-check's findings of `kind`: each one's resource and what it found.
async fn findings(fx: &Fixture, kind: &str) -> Vec<(String, Value)> {
    let sql = "SELECT resource, actual FROM drift_findings WHERE kind = $1";
    pairs(fx, sql, kind).await
}

#[tokio::test]
async fn drift_check_reports_a_group_at_80_percent_of_the_quota() {
    let fx = Fixture::shared().await;
    let groups = three_groups(&fx).await;
    // 48 of 60 is 80 %; 47 is not; the third group is empty.
    fill(&fx, &groups[0], 0, 48).await;
    fill(&fx, &groups[1], 1, 47).await;
    let drift = drift_check(&fx, &groups).await;
    let inv = drift.invoke(&json!({})).await;
    let summary = inv.response().clone();
    assert_eq!(summary["counts"]["group_capacity"], 1, "{summary:#}");
    let found = findings(&fx, "group_capacity").await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, groups[0]);
    assert_eq!(found[0].1["ipv4_rules"], 48, "{:?}", found[0].1);
    assert_eq!(found[0].1["quota"], 60, "{:?}", found[0].1);
    assert_eq!(
        found[0].1["percent"].as_f64(),
        Some(80.0),
        "{:?}",
        found[0].1
    );

    // A metric line per group, and the managed groups' use as a whole (the alarm's).
    let logs = sg_drift_logs(&drift, &inv).await;
    let per_group: Vec<(String, f64)> = logs
        .iter()
        .filter(|l| l.contains("\"GroupRulesUsedPercent\""))
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|v| {
            let percent = v["GroupRulesUsedPercent"].as_f64().unwrap();
            (v["SecurityGroupId"].as_str().unwrap().to_owned(), percent)
        })
        .collect();
    assert_eq!(
        per_group,
        [
            (groups[0].clone(), 80.0),
            (groups[1].clone(), 78.33),
            (groups[2].clone(), 0.0)
        ],
        "{logs:#?}"
    );
    let whole: Vec<Value> = logs
        .iter()
        .filter(|l| l.contains("\"ManagedRulesUsedPercent\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(whole.len(), 1, "{logs:#?}");
    // 95 of 180.
    let percent = whole[0]["ManagedRulesUsedPercent"].as_f64().unwrap();
    assert!((percent - 52.78).abs() < 0.01, "{percent}");
}

async fn sg_drift_logs(f: &Function, inv: &harness::Invocation) -> Vec<String> {
    f.logs_when(
        |logs| {
            logs.iter()
                .any(|l| l.contains(&inv.request_id) && l.contains("\"message\":\"drift-check\""))
        },
        std::time::Duration::from_secs(5),
    )
    .await
}

/// An operator removed a group from `AdditionalDatabaseSecurityGroupIds` while rules were still
/// placed in it: the function has no grant there any more. A developer's next address is placed
/// again in a managed group (not modified in the removed one), the old rule revoked where the
/// call is allowed (moto allows it; AWS without the grant refuses, and the rule is left for the
/// operator); drift-check, which visits only the managed groups, reports the rows still
/// placed outside them.
#[tokio::test]
async fn a_rule_placed_in_a_group_no_longer_managed_is_placed_again_and_reported() {
    let fx = Fixture::shared().await;
    let groups = three_groups(&fx).await;
    fill(&fx, &groups[0], 0, QUOTA).await;
    fill(&fx, &groups[1], 1, QUOTA).await;
    developers(&fx, 0, 2).await;
    let all = fx
        .start_with(&[("ADDITIONAL_SECURITY_GROUP_IDS", &additional(&groups))])
        .await;
    for i in 0..2 {
        let v = all.invoke(&change(&owner(i), &address(i))).await;
        assert_eq!(v.response()["outcome"], "applied", "{}", v.response());
        assert_eq!(placement(&fx, &owner(i)).await.1, Some(groups[2].clone()));
    }
    let (old_id, ..) = placement(&fx, &owner(0)).await;

    // groups[2] is removed from the parameter; groups[1] gets room.
    let kept = &groups[..2];
    let first = rule_ids(&fx, &groups[1]).await[0].clone();
    fx.ec2
        .revoke_security_group_ingress()
        .group_id(&groups[1])
        .security_group_rule_ids(first)
        .send()
        .await
        .unwrap();
    let f = fx
        .start_with(&[("ADDITIONAL_SECURITY_GROUP_IDS", &additional(kept))])
        .await;
    let v = f.invoke(&change(&owner(0), "52.14.9.9")).await;
    assert_eq!(v.response()["outcome"], "applied", "{}", v.response());
    let (id, group, status) = placement(&fx, &owner(0)).await;
    assert_eq!(group.as_deref(), Some(groups[1].as_str()));
    assert_eq!(status, "applied");
    assert_ne!(id, old_id);
    assert!(rule_ids(&fx, &groups[1]).await.contains(&id.unwrap()));
    assert!(!rule_ids(&fx, &groups[2]).await.contains(&old_id.unwrap()));

    // dev001 is still placed in the removed group: drift-check reports it.
    let drift = drift_check(&fx, kept).await;
    let summary = drift.invoke(&json!({})).await.response().clone();
    assert_eq!(summary["counts"]["placed_outside"], 1, "{summary:#}");
    let found = findings(&fx, "placed_outside").await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, format!("{}/owner:{}", groups[2], owner(1)));
}
