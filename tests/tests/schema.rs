//! The schema and the code speak one vocabulary: each column with a CHECK list of allowed
//! values admits exactly the variants of the enum the code writes into it, in the same order.

use drift_check::{
    report::{Kind, RunStatus},
    request::Mode,
};
use harness::Stack;
use ingress::{rule::RuleStatus, store::AuditOutcome};

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
        ("drift_runs", "mode", strs(&Mode::ALL.map(Mode::as_str))),
        (
            "drift_runs",
            "status",
            strs(&RunStatus::ALL.map(RunStatus::as_str)),
        ),
        ("drift_findings", "kind", strs(&Kind::ALL.map(Kind::as_str))),
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
