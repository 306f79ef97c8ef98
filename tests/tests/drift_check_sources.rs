//! drift-check end to end, rules whose source is not a CIDR: a rule on a managed group whose
//! source is a customer-managed prefix list or another security group is a finding like any
//! other unexpected rule, revoked in remediate mode and kept only when an allowlist entry pins
//! it; a change to a prefix list starts a check of the managed groups.

use harness::event;
use serde_json::{Value, json};

#[path = "common/drift.rs"]
mod drift;
use drift::World;

/// A managed group with andrew's rule, and beside it, by hand, a rule from a prefix list (one
/// host in it for now) and one from another security group. Returns (group, prefix list,
/// other group).
async fn rules_from_a_list_and_a_group(w: &World) -> (String, String, String) {
    let group = w.group().await;
    let id = w.open(&group, "34.201.17.5/32", 5432).await;
    w.manage(&group, "andrew", "34.201.17.5/32", Some(&id))
        .await;
    let list = w
        .ec2
        .create_managed_prefix_list()
        .prefix_list_name(format!("office-{}", &group[3..]))
        .address_family("IPv4")
        .max_entries(5)
        .entries(
            aws_sdk_ec2::types::AddPrefixListEntry::builder()
                .cidr("52.0.0.9/32")
                .build(),
        )
        .send()
        .await
        .unwrap()
        .prefix_list()
        .and_then(|p| p.prefix_list_id())
        .unwrap()
        .to_owned();
    let other = w.group().await;
    use aws_sdk_ec2::types::{IpPermission, PrefixListId, UserIdGroupPair};
    for permission in [
        IpPermission::builder()
            .prefix_list_ids(PrefixListId::builder().prefix_list_id(&list).build()),
        IpPermission::builder()
            .user_id_group_pairs(UserIdGroupPair::builder().group_id(&other).build()),
    ] {
        w.ec2
            .authorize_security_group_ingress()
            .group_id(&group)
            .ip_permissions(
                permission
                    .ip_protocol("tcp")
                    .from_port(5432)
                    .to_port(5432)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
    (group, list, other)
}

/// The sources of the unexpected findings, sorted.
fn unexpected_sources(summary: &Value) -> Vec<String> {
    let mut found: Vec<String> = summary["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "unexpected")
        .map(|f| f["actual"]["source"].as_str().unwrap_or("?").to_owned())
        .collect();
    found.sort();
    found
}

/// Issue 37, item 8: before, rules from a prefix list or a group were not looked at, so the
/// list could later be widened to 0.0.0.0/0 unseen. Now both are unexpected: reported, then
/// revoked in remediate mode; andrew's rule stays.
#[tokio::test]
async fn rules_from_a_prefix_list_or_another_group_are_found_and_revoked() {
    let w = World::shared().await;
    let (group, list, other) = rules_from_a_list_and_a_group(&w).await;
    let report = w.start(&[("SECURITY_GROUP_IDS", &group)]).await;
    let summary = report.invoke(&json!({})).await.response().clone();
    assert_eq!(summary["counts"]["unexpected"], 2, "{summary:#}");
    let mut expected = vec![list.clone(), other.clone()];
    expected.sort();
    assert_eq!(unexpected_sources(&summary), expected, "{summary:#}");
    assert_eq!(
        w.ingress(&group).await.len(),
        3,
        "report mode changes nothing"
    );

    let f = w
        .start(&[("DRIFT_MODE", "remediate"), ("SECURITY_GROUP_IDS", &group)])
        .await;
    let summary = f.invoke(&json!({})).await.response().clone();
    assert_eq!(summary["actions"]["revoked"], 2, "{summary:#}");
    assert_eq!(
        w.ingress(&group).await,
        [("34.201.17.5/32".to_owned(), 5432)],
        "only andrew's rule is left"
    );
}

/// An allowlist entry may name a prefix list or a group as the source (`source_ref`), pinned
/// to its protocol and ports like any entry: the rule it names is kept; the other group's rule,
/// which no entry names, is revoked. An entry naming both a CIDR and a source is refused.
#[tokio::test]
async fn a_prefix_list_rule_an_entry_pins_is_kept() {
    let w = World::shared().await;
    let (group, list, other) = rules_from_a_list_and_a_group(&w).await;
    let admin = w.db.connect_as_app().await.unwrap();
    admin
        .execute(
            "INSERT INTO drift_allowed_rules \
             (security_group_id, source_ref, ip_protocol, from_port, to_port, reason, added_by) \
             VALUES ($1, $2, 'tcp', 5432, 5432, 'office list', 'ops@example.com')",
            &[&group, &list],
        )
        .await
        .unwrap();
    let both = admin
        .execute(
            "INSERT INTO drift_allowed_rules \
             (security_group_id, cidr, source_ref, ip_protocol, from_port, to_port, reason, added_by) \
             VALUES ($1, '10.0.0.0/8', $2, 'tcp', 5432, 5432, 'both', 'ops@example.com')",
            &[&group, &other],
        )
        .await;
    assert!(both.is_err(), "an entry naming a CIDR and a source");
    let f = w
        .start(&[("DRIFT_MODE", "remediate"), ("SECURITY_GROUP_IDS", &group)])
        .await;
    let summary = f.invoke(&json!({})).await.response().clone();
    assert_eq!(summary["counts"]["allowed"], 1, "{summary:#}");
    assert_eq!(summary["counts"]["unexpected"], 1, "{summary:#}");
    assert_eq!(unexpected_sources(&summary), [other], "{summary:#}");
    assert_eq!(summary["actions"]["kept"], 1, "{summary:#}");
    assert_eq!(summary["actions"]["revoked"], 1, "{summary:#}");
    assert_eq!(w.ingress(&group).await.len(), 2, "andrew's and the list's");
}

/// A change to a prefix list (CloudTrail's ModifyManagedPrefixList, which names no group)
/// starts a check of every managed group; the rule from that list is found.
#[tokio::test]
async fn a_change_to_a_prefix_list_starts_a_check_of_the_managed_groups() {
    let w = World::shared().await;
    let (group, list, _) = rules_from_a_list_and_a_group(&w).await;
    let mut trail = event("drift-check-cloudtrail-prefix-list.json");
    trail["detail"]["requestParameters"]["ModifyManagedPrefixListRequest"]["PrefixListId"] =
        json!(list);
    let f = w.start(&[("SECURITY_GROUP_IDS", &group)]).await;
    let summary = f.invoke(&trail).await.response().clone();
    assert_eq!(summary["trigger"], "cloudtrail:ModifyManagedPrefixList");
    assert_eq!(summary["scope"], format!("prefix-list:{list}"));
    assert_eq!(summary["counts"]["unexpected"], 2, "{summary:#}");
    assert!(summary["pass"].is_null(), "no users checked: {summary:#}");
}

/// The stack reaches the database through a rule on the managed group whose source is the
/// functions' own security group (docs/deploying.md): the template names that group to
/// drift-check (`FUNCTION_SECURITY_GROUP_ID`), and a rule from it is kept as `allowed`, never
/// revoked, while a rule from the prefix list beside it is.
#[tokio::test]
async fn a_rule_from_the_functions_own_group_is_kept() {
    let w = World::shared().await;
    let (group, list, functions) = rules_from_a_list_and_a_group(&w).await;
    let f = w
        .start(&[
            ("DRIFT_MODE", "remediate"),
            ("SECURITY_GROUP_IDS", &group),
            ("FUNCTION_SECURITY_GROUP_ID", &functions),
        ])
        .await;
    let summary = f.invoke(&json!({})).await.response().clone();
    assert_eq!(summary["counts"]["allowed"], 1, "{summary:#}");
    assert_eq!(unexpected_sources(&summary), [list], "{summary:#}");
    assert_eq!(summary["actions"]["revoked"], 1, "{summary:#}");
    let kept = summary["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "allowed")
        .unwrap();
    assert_eq!(kept["actual"]["source"], functions.as_str(), "{kept:#}");
    assert_eq!(
        w.ingress(&group).await.len(),
        2,
        "andrew's and the functions'"
    );
}
