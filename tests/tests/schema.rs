//! The schema and the code speak one vocabulary: each column with a CHECK list of allowed
//! values admits exactly the variants of the enum the code writes into it, in the same order.

use drift_check::{
    listing::store::ListingStatus,
    pass::PassStatus,
    report::{Kind, RunStatus},
    request::Mode,
};
use harness::Stack;
use ingress::{
    principal::PrincipalPattern,
    rule::RuleStatus,
    store::{AuditOutcome, Via},
};

/// The quoted values of a `column = ANY (ARRAY['a'::text, …])` CHECK, as Postgres prints it.
fn allowed_values(constraint: &str, column: &str) -> Option<Vec<String>> {
    let start = constraint.find(&format!("({column} = ANY (ARRAY["))?;
    let list = &constraint[start..];
    let list = &list[..list.find("])")?];
    Some(
        list.split('\'')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect(),
    )
}

#[test]
fn the_check_reader_reads_what_postgres_prints() {
    let def = "CHECK ((status = ANY (ARRAY['running'::text, 'complete'::text])))";
    assert_eq!(
        allowed_values(def, "status"),
        Some(vec!["running".to_owned(), "complete".to_owned()])
    );
    assert_eq!(allowed_values(def, "mode"), None);
}

#[tokio::test]
async fn every_check_list_matches_its_enum() {
    let db = Stack::shared().fresh_database().await.unwrap();
    let client = db.admin().await.unwrap();
    let strs = |v: &[&'static str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let cases = [
        (
            "managed_ingress_rules",
            "status",
            strs(&RuleStatus::ALL.map(RuleStatus::as_str)),
        ),
        (
            "ip_update_audit",
            "outcome",
            strs(&AuditOutcome::ALL.map(AuditOutcome::as_str)),
        ),
        ("ip_update_audit", "via", strs(&Via::ALL.map(Via::as_str))),
        ("drift_runs", "mode", strs(&Mode::ALL.map(Mode::as_str))),
        (
            "drift_runs",
            "status",
            strs(&RunStatus::ALL.map(RunStatus::as_str)),
        ),
        ("drift_findings", "kind", strs(&Kind::ALL.map(Kind::as_str))),
        (
            "drift_user_passes",
            "status",
            strs(&PassStatus::ALL.map(PassStatus::as_str)),
        ),
        (
            "drift_listings",
            "status",
            strs(&ListingStatus::ALL.map(ListingStatus::as_str)),
        ),
    ];
    for (table, column, expected) in cases {
        let defs: Vec<String> = client
            .query(
                "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c \
                 JOIN pg_class t ON t.oid = c.conrelid \
                 WHERE t.relname = $1 AND c.contype = 'c'",
                &[&table],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let lists: Vec<Vec<String>> = defs
            .iter()
            .filter_map(|d| allowed_values(d, column))
            .collect();
        assert_eq!(
            lists.len(),
            1,
            "{table}.{column}: one CHECK list in {defs:?}"
        );
        assert_eq!(
            lists[0], expected,
            "{table}.{column}: the CHECK list and the enum"
        );
    }
}

/// `managed_ingress_rules.principal`'s CHECK and [`PrincipalPattern`]'s parser admit the same
/// patterns: exact ARNs and one role's sessions, never a wider wildcard.
#[tokio::test]
async fn the_principal_check_admits_exactly_what_the_matcher_parses() {
    let db = Stack::shared().fresh_database().await.unwrap();
    let client = db.admin().await.unwrap();
    let samples = [
        ("arn:aws:iam::123456789012:user/bea", true),
        ("arn:aws:iam::123456789012:user/team/dev/bea", true),
        ("arn:aws-us-gov:iam::123456789012:user/bea", true),
        (
            "arn:aws:sts::123456789012:assumed-role/dev-andrew/laptop",
            true,
        ),
        (
            "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Dev_0a1b/andrew@example.com",
            true,
        ),
        ("arn:aws:sts::123456789012:assumed-role/dev-andrew/*", true),
        ("arn:aws:sts::123456789012:assumed-role/*/laptop", false),
        ("arn:aws:sts::123456789012:assumed-role/dev-*/laptop", false),
        (
            "arn:aws:sts::123456789012:assumed-role/dev-andrew/lap*",
            false,
        ),
        ("arn:aws:sts::123456789012:assumed-role/dev-andrew/x", false),
        ("arn:aws:sts::123456789012:assumed-role/dev-andrew/", false),
        ("arn:aws:sts::123456789012:assumed-role/dev-andrew", false),
        ("arn:aws:sts::*:assumed-role/dev-andrew/*", false),
        ("arn:aws:iam::123456789012:user/*", false),
        ("arn:aws:iam::123456789012:user/bea/", false),
        ("arn:aws:iam::123456789012:user//bea", false),
        ("arn:aws:iam::123456789012:role/dev-andrew", false),
        ("arn:aws:iam::123456789012:root", false),
        ("arn:aws:iam:us-east-1:123456789012:user/bea", false),
        ("arn:aws:iam::12345678901:user/bea", false),
        ("arn:aws-iso:iam::123456789012:user/bea", false),
        ("arn:aws:iam::123456789012:user/bea ", false),
        ("arn:aws:iam::123456789012:user/bea\n", false),
        ("*", false),
        ("andrew", false),
    ];
    for (i, (principal, valid)) in samples.into_iter().enumerate() {
        assert_eq!(
            principal.parse::<PrincipalPattern>().is_ok(),
            valid,
            "parser: {principal:?}"
        );
        let stored = client
            .execute(
                "INSERT INTO managed_ingress_rules (security_group_id, owner, principal) \
                 VALUES ('sg-0123456789abcdef0', $1, $2)",
                &[&format!("owner{i}"), &principal],
            )
            .await;
        assert_eq!(stored.is_ok(), valid, "CHECK: {principal:?}: {stored:?}");
    }
}
