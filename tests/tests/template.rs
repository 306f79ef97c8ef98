//! template.yaml's IAM: no wildcard action anywhere, a wildcard resource only where AWS
//! requires one (DescribeSecurityGroupRules), and each function allowed exactly the AWS calls
//! its code makes, read from the code itself.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use harness::{stack::repo_root, workspace::Workspace};
use serde_norway::Value;

/// The SDK calls the code makes, and the IAM action each needs.
const CALLS: [(&str, &str); 6] = [
    (".get_secret_value()", "secretsmanager:GetSecretValue"),
    (
        ".describe_security_group_rules()",
        "ec2:DescribeSecurityGroupRules",
    ),
    (
        ".authorize_security_group_ingress()",
        "ec2:AuthorizeSecurityGroupIngress",
    ),
    (
        ".modify_security_group_rules()",
        "ec2:ModifySecurityGroupRules",
    ),
    (
        ".revoke_security_group_ingress()",
        "ec2:RevokeSecurityGroupIngress",
    ),
    (".list_users()", "cognito-idp:ListUsers"),
];

/// Each function's resource, and the crate it is built from.
const FUNCTIONS: [(&str, &str); 3] = [
    ("PostConfirmationFunction", "post-confirmation"),
    ("SgIpUpdateFunction", "sg-ip-update"),
    ("DriftCheckFunction", "drift-check"),
];

/// The `src` folders of every workspace crate whose code runs in `krate`'s binary, as cargo
/// resolves them: the function's own, and each library it depends on.
fn source_dirs(ws: &Workspace, krate: &str) -> Vec<String> {
    let dirs: Vec<String> = ws
        .local_closure(krate)
        .iter()
        .filter_map(|c| ws.dir(c))
        .map(|d| format!("{}/src", d.display()))
        .collect();
    assert!(dirs.len() >= 2, "{krate} is built from {dirs:?}");
    dirs
}

fn template() -> Value {
    let text = std::fs::read_to_string(repo_root().join("template.yaml")).unwrap();
    serde_norway::from_str(&text).unwrap()
}

fn untag(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => untag(&t.value),
        other => other,
    }
}

fn strings(v: &Value) -> Vec<String> {
    match untag(v) {
        Value::String(s) => vec![s.clone()],
        Value::Sequence(items) => items.iter().flat_map(strings).collect(),
        other => vec![format!("{other:?}")],
    }
}

/// Every IAM statement under `v`, tagged with the resource that holds it.
fn statements(v: &Value, owner: &str, out: &mut Vec<(String, Value)>) {
    match untag(v) {
        Value::Mapping(m) => {
            if let Some(Value::Sequence(items)) = m.get("Statement").map(untag) {
                out.extend(items.iter().map(|i| (owner.to_owned(), untag(i).clone())));
            }
            m.values().for_each(|child| statements(child, owner, out));
        }
        Value::Sequence(items) => items.iter().for_each(|i| statements(i, owner, out)),
        _ => {}
    }
}

fn all_statements() -> Vec<(String, Value)> {
    let t = template();
    let mut out = Vec::new();
    if let Value::Mapping(resources) = &t["Resources"] {
        for (name, resource) in resources {
            statements(resource, name.as_str().unwrap(), &mut out);
        }
    }
    out
}

fn calls_in(dirs: &[String]) -> BTreeSet<String> {
    fn walk(dir: &Path, found: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs")
                && !path.ends_with("bin/migrate.rs")
            {
                let code = std::fs::read_to_string(&path).unwrap();
                for (call, action) in CALLS {
                    if code.contains(call) {
                        found.insert(action.to_owned());
                    }
                }
                // Every request the code sends must be one this test knows, or a new SDK call
                // would pass unnoticed.
                let known: usize = CALLS.iter().map(|(c, _)| code.matches(c).count()).sum();
                assert_eq!(
                    code.matches(".send()").count(),
                    known,
                    "{}: an SDK call the IAM test does not know",
                    path.display()
                );
            }
        }
    }
    let mut found = BTreeSet::new();
    for d in dirs {
        walk(&repo_root().join(d), &mut found);
    }
    found
}

#[test]
fn no_action_is_a_wildcard() {
    let all = all_statements();
    assert!(
        all.len() >= 10,
        "the template's statements were found: {}",
        all.len()
    );
    for (owner, s) in &all {
        for action in strings(&s["Action"]) {
            assert!(!action.contains('*'), "{owner}: wildcard action {action}");
        }
    }
}

#[test]
fn a_wildcard_resource_only_for_describe() {
    for (owner, s) in all_statements() {
        if strings(&s["Resource"]).iter().any(|r| r == "*") {
            assert_eq!(
                strings(&s["Action"]),
                ["ec2:DescribeSecurityGroupRules"],
                "{owner}: {s:?}"
            );
        }
    }
}

#[test]
fn each_function_may_make_exactly_the_calls_its_code_makes() {
    let all = all_statements();
    let ws = Workspace::load().unwrap();
    let mut granted: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (function, krate) in FUNCTIONS {
        let dirs = source_dirs(&ws, krate);
        let actions: BTreeSet<String> = all
            .iter()
            .filter(|(owner, _)| owner == function)
            .flat_map(|(_, s)| strings(&s["Action"]))
            // The failure queues are written by Lambda and EventBridge on the function's behalf.
            .filter(|a| !a.starts_with("sqs:"))
            .collect();
        let used = calls_in(&dirs);
        assert!(!used.is_empty());
        assert_eq!(actions, used, "{function}: granted vs called");
        granted.insert(function, actions);
    }
    assert_eq!(
        granted["PostConfirmationFunction"].len(),
        1,
        "the trigger only reads its secret"
    );
}

#[test]
fn every_function_is_built_by_cargo_lambda_from_its_crate() {
    let t = template();
    let ws = Workspace::load().unwrap();
    for (function, krate) in FUNCTIONS {
        let f = &t["Resources"][function];
        assert_eq!(
            f["Metadata"]["BuildMethod"].as_str(),
            Some("rust-cargolambda"),
            "{function}"
        );
        let code_uri = f["Properties"]["CodeUri"].as_str().unwrap();
        assert_eq!(Some(PathBuf::from(code_uri)), ws.dir(krate), "{function}");
        let binary = f["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap();
        assert!(repo_root().join(code_uri).join("Cargo.toml").exists());
        assert!(code_uri.ends_with(binary), "{function}: binary {binary}");
    }
}
