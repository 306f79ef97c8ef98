//! How the template deploys sg-ip-update's two functions, and the policy that closes what
//! their code cannot: each function takes only its own kind of request
//! (`SG_IP_UPDATE_SOURCE`), and the service control policy in `docs/policies/` denies direct
//! invocation of every function that could be handed a forged identity. The policy is checked
//! against IAM's policy grammar here, and by cfn-lint's IAM policy schema where cfn-lint is
//! installed (`.ci/run` installs it).

use std::collections::BTreeMap;

use harness::stack::repo_root;
use serde_json::Value as Json;
use serde_norway::Value;

mod common;
use common::{resources_of_type, template};

const POLICY: &str = "docs/policies/deny-direct-invoke.json";

/// Every function the template builds from sg-ip-update's binary, by logical id.
fn sg_ip_update_functions(t: &Value) -> BTreeMap<&str, &Value> {
    resources_of_type(t, "AWS::Serverless::Function")
        .into_iter()
        .filter(|(_, r)| {
            r["Metadata"]["BuildProperties"]["Binary"].as_str() == Some("sg-ip-update")
        })
        .collect()
}

#[test]
fn each_sg_ip_update_function_takes_only_its_own_kind_of_request() {
    let t = template();
    let functions = sg_ip_update_functions(&t);
    assert_eq!(
        functions.keys().copied().collect::<Vec<_>>(),
        ["SgIpUpdateBusFunction", "SgIpUpdateFunction"]
    );
    for (name, f) in functions {
        let p = &f["Properties"];
        let source = p["Environment"]["Variables"]["SG_IP_UPDATE_SOURCE"].as_str();
        // What the function is wired to, which the source must agree with.
        let has_url = !p["FunctionUrlConfig"].is_null();
        let Value::Mapping(events) = &p["Events"] else {
            assert!(has_url, "{name}: neither a Function URL nor events");
            assert_eq!(source, Some("function_url"), "{name}");
            continue;
        };
        let bus = events
            .values()
            .all(|e| e["Type"].as_str() == Some("EventBridgeRule"));
        assert!(bus && !has_url, "{name}: bus events only, no URL");
        assert_eq!(source, Some("eventbridge"), "{name}");
    }
    // The value the function parses: a plain literal, one the code knows.
    for source in ["function_url", "eventbridge"] {
        assert!(source.parse::<sg_ip_update::Source>().is_ok(), "{source}");
    }
}

/// IAM's condition operators (the policy grammar of the IAM User Guide's JSON policy
/// reference): each may end in `IfExists` (but `Null`), and take a `ForAnyValue:` or
/// `ForAllValues:` prefix.
fn is_condition_operator(op: &str) -> bool {
    const BASE: [&str; 27] = [
        "StringEquals",
        "StringNotEquals",
        "StringEqualsIgnoreCase",
        "StringNotEqualsIgnoreCase",
        "StringLike",
        "StringNotLike",
        "NumericEquals",
        "NumericNotEquals",
        "NumericLessThan",
        "NumericLessThanEquals",
        "NumericGreaterThan",
        "NumericGreaterThanEquals",
        "DateEquals",
        "DateNotEquals",
        "DateLessThan",
        "DateLessThanEquals",
        "DateGreaterThan",
        "DateGreaterThanEquals",
        "Bool",
        "BinaryEquals",
        "IpAddress",
        "NotIpAddress",
        "ArnEquals",
        "ArnLike",
        "ArnNotEquals",
        "ArnNotLike",
        "Null",
    ];
    let op = op
        .strip_prefix("ForAnyValue:")
        .or_else(|| op.strip_prefix("ForAllValues:"))
        .unwrap_or(op);
    let base = match op.strip_suffix("IfExists") {
        Some("Null") => return false,
        Some(base) => base,
        None => op,
    };
    BASE.contains(&base)
}

/// What IAM's grammar refuses in `policy`, each as a sentence.
fn grammar_errors(policy: &Json) -> Vec<String> {
    let mut errors = Vec::new();
    let strings = |v: &Json| -> Option<Vec<String>> {
        match v {
            Json::String(s) => Some(vec![s.clone()]),
            Json::Array(items) if !items.is_empty() => items
                .iter()
                .map(|i| i.as_str().map(str::to_owned))
                .collect(),
            _ => None,
        }
    };
    let Json::Object(top) = policy else {
        return vec!["the policy is not a JSON object".into()];
    };
    if top.get("Version") != Some(&Json::from("2012-10-17")) {
        errors.push("Version must be 2012-10-17".into());
    }
    for key in top.keys() {
        if !["Version", "Id", "Statement"].contains(&key.as_str()) {
            errors.push(format!("unknown top-level element {key}"));
        }
    }
    let statements = match &top.get("Statement") {
        Some(Json::Array(s)) if !s.is_empty() => s.clone(),
        Some(s @ Json::Object(_)) => vec![(*s).clone()],
        _ => return [errors, vec!["no Statement".into()]].concat(),
    };
    for (i, s) in statements.iter().enumerate() {
        let Json::Object(s) = s else {
            errors.push(format!("statement {i} is not an object"));
            continue;
        };
        for key in s.keys() {
            let known = [
                "Sid",
                "Effect",
                "Principal",
                "NotPrincipal",
                "Action",
                "NotAction",
                "Resource",
                "NotResource",
                "Condition",
            ];
            if !known.contains(&key.as_str()) {
                errors.push(format!("statement {i}: unknown element {key}"));
            }
        }
        if !matches!(
            s.get("Effect").and_then(Json::as_str),
            Some("Allow" | "Deny")
        ) {
            errors.push(format!("statement {i}: Effect must be Allow or Deny"));
        }
        match s.get("Action").and_then(strings) {
            Some(actions) => {
                for a in actions {
                    let ok = a == "*"
                        || a.split_once(':').is_some_and(|(service, name)| {
                            !service.is_empty()
                                && service.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
                                && !name.is_empty()
                                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'*')
                        });
                    if !ok {
                        errors.push(format!("statement {i}: bad action {a:?}"));
                    }
                }
            }
            None => errors.push(format!("statement {i}: no Action")),
        }
        match s.get("Resource").and_then(strings) {
            Some(resources) => {
                for r in resources {
                    if r != "*" && !(r.starts_with("arn:") && r.split(':').count() >= 6) {
                        errors.push(format!("statement {i}: bad resource {r:?}"));
                    }
                }
            }
            None => errors.push(format!("statement {i}: no Resource")),
        }
        match s.get("Condition") {
            None => {}
            Some(Json::Object(ops)) => {
                for (op, keys) in ops {
                    if !is_condition_operator(op) {
                        errors.push(format!("statement {i}: unknown condition operator {op}"));
                    }
                    let Json::Object(keys) = keys else {
                        errors.push(format!("statement {i}: {op} is not an object"));
                        continue;
                    };
                    for (key, value) in keys {
                        if !key.contains(':') || strings(value).is_none() {
                            errors.push(format!("statement {i}: {op} {key}: {value}"));
                        }
                    }
                }
            }
            Some(_) => errors.push(format!("statement {i}: Condition is not an object")),
        }
    }
    errors
}

/// Whether the IAM wildcard pattern `pattern` (`*` any run, `?` one character) matches `s`.
fn wildcard_match(pattern: &str, s: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), s.chars().collect());
    let mut reach = vec![false; s.len() + 1];
    reach[0] = true;
    for c in p {
        let mut next = vec![false; s.len() + 1];
        for i in 0..=s.len() {
            if !reach[i] {
                continue;
            }
            match c {
                '*' => next[i..].iter_mut().for_each(|n| *n = true),
                '?' if i < s.len() => next[i + 1] = true,
                c if i < s.len() && s[i] == c => next[i + 1] = true,
                _ => {}
            }
        }
        reach = next;
    }
    reach[s.len()]
}

/// The policy file, parsed.
fn policy() -> Json {
    let text = std::fs::read_to_string(repo_root().join(POLICY)).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{POLICY} is not JSON: {e}"))
}

#[test]
fn the_grammar_check_fires_on_what_iam_would_refuse() {
    assert!(
        grammar_errors(&policy()).is_empty(),
        "{:?}",
        grammar_errors(&policy())
    );
    let mut bad = policy();
    let s = &mut bad["Statement"][0];
    s["Condition"]["BoolIfExist"] = serde_json::json!({"lambda:InvokedViaFunctionUrl": "false"});
    s["Effect"] = "Block".into();
    s["Action"] = serde_json::json!(["lambda InvokeFunction"]);
    s["Resource"] = "SgIpUpdateFunction".into();
    bad["Version"] = "2008-10-17".into();
    assert_eq!(grammar_errors(&bad).len(), 5, "{:?}", grammar_errors(&bad));
    assert!(!is_condition_operator("NullIfExists"));
    assert!(is_condition_operator("ForAnyValue:StringLikeIfExists"));
    assert!(wildcard_match("a*-B-*", "a-stack-B-x1") && !wildcard_match("a*-B-*", "a-B"));
}

/// The documented service control policy: valid IAM, a Deny of direct invocation that applies
/// when `lambda:InvokedViaFunctionUrl` is missing (`BoolIfExists`, not `Bool`, which a direct
/// invocation without the key would slip past), covering the Function URL's function (names
/// CloudFormation makes from the logical id, versions and aliases too) and not the bus
/// function, which refuses a forged identity by itself. The security model shows this file.
#[test]
fn the_direct_invoke_policy_is_valid_iam_and_covers_every_function_a_forged_identity_reaches() {
    let p = policy();
    assert_eq!(grammar_errors(&p), Vec::<String>::new());
    let s = &p["Statement"][0];
    assert_eq!(s["Effect"], "Deny");
    assert_eq!(
        s["Condition"]["BoolIfExists"]["lambda:InvokedViaFunctionUrl"],
        "false"
    );
    assert!(
        s["Condition"].get("Bool").is_none(),
        "a missing key must still deny"
    );
    let actions: Vec<&str> = s["Action"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(actions.contains(&"lambda:InvokeFunction"), "{actions:?}");
    let resources: Vec<&str> = s["Resource"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    let covered = |name: &str| resources.iter().any(|r| wildcard_match(r, name));

    let t = template();
    for (logical, f) in sg_ip_update_functions(&t) {
        let takes_identity = f["Properties"]["Environment"]["Variables"]["SG_IP_UPDATE_SOURCE"]
            .as_str()
            == Some("function_url");
        for suffix in ["", ":live", ":7"] {
            let arn = format!(
                "arn:aws:lambda:eu-west-1:123456789012:function:db-sync-{logical}-Ab12Cd34Ef56{suffix}"
            );
            assert_eq!(covered(&arn), takes_identity, "{arn} against {resources:?}");
        }
    }

    let doc = std::fs::read_to_string(repo_root().join("docs/security-model.md")).unwrap();
    assert!(
        doc.contains("policies/deny-direct-invoke.json"),
        "docs/security-model.md links the policy"
    );
}

/// cfn-lint's IAM policy schema, where cfn-lint is installed: the policy as a managed policy's
/// document in a template of its own.
#[test]
fn cfn_lint_accepts_the_direct_invoke_policy() {
    let check = |policy: &Json| -> Option<(bool, String)> {
        let dir = std::env::temp_dir().join(harness::fixtures::unique("policy"));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("policy.json");
        let doc = serde_json::json!({
            "AWSTemplateFormatVersion": "2010-09-09",
            "Resources": {"DenyDirectInvoke": {
                "Type": "AWS::IAM::ManagedPolicy",
                "Properties": {"PolicyDocument": policy},
            }},
        });
        std::fs::write(&file, doc.to_string()).unwrap();
        let out = std::process::Command::new("cfn-lint")
            .args(["--regions", "us-east-1", "--"])
            .arg(&file)
            .output()
            .ok()?;
        std::fs::remove_dir_all(&dir).ok();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        Some((out.status.success(), text))
    };
    let Some((ok, text)) = check(&policy()) else {
        eprintln!("cfn-lint is not installed: the Rust grammar check above stands alone");
        return;
    };
    assert!(ok, "{text}");
    // The check fires: an operator IAM does not know.
    let mut bad = policy();
    bad["Statement"][0]["Condition"]["BoolIfExist"] =
        serde_json::json!({"lambda:InvokedViaFunctionUrl": "false"});
    let (ok, text) = check(&bad).unwrap();
    assert!(!ok, "cfn-lint accepted an unknown operator: {text}");
}
