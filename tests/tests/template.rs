//! template.yaml's IAM: no wildcard action anywhere, a wildcard resource only where AWS
//! requires one (DescribeSecurityGroupRules), each function allowed exactly the AWS calls
//! its code makes, read from the code itself, and sg-ip-update's Function URL signed (AWS_IAM)
//! and callable only by the developers the template names. Also the deploy settings:
//! samconfig.toml never caches builds, two stacks of the template share no physical name, and
//! the user pool is retained and protected.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use harness::{stack::repo_root, workspace::Workspace};
use serde_norway::Value;

mod common;
use common::{is_ref_to, tagged, template, untag};

/// The SDK calls the code makes, and the IAM action each needs (tags sent with a create need
/// `ec2:CreateTags` as well).
const CALLS: [(&str, &str); 9] = [
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
    (".tag_specifications(", "ec2:CreateTags"),
    (".list_users()", "cognito-idp:ListUsers"),
    (".describe_user_pool()", "cognito-idp:DescribeUserPool"),
    (".update_user_pool()", "cognito-idp:UpdateUserPool"),
];

/// Each function's resource, and the crate it is built from.
const FUNCTIONS: [(&str, &str); 6] = [
    ("PostConfirmationFunction", "post-confirmation"),
    ("SgIpUpdateFunction", "sg-ip-update"),
    ("SgIpUpdateBusFunction", "sg-ip-update"),
    ("DriftCheckFunction", "drift-check"),
    ("PoolTriggerFunction", "pool-trigger"),
    ("SchemaMigrationsFunction", "schema-migrations"),
];

/// A call a function's binary carries (in `shared`) but its own code cannot reach, so it is
/// not granted; and the names its crates would have to use to reach it. pool-trigger uses
/// `shared` for logging and the SDK config, never the database or its secret.
const UNREACHED: [(&str, &str, &[&str]); 1] = [(
    "PoolTriggerFunction",
    "secretsmanager:GetSecretValue",
    &["Db", "DbConfig", "secret", "db::"],
)];

/// The `src` folders of `krate`'s closure outside `shared`.
fn own_dirs(ws: &Workspace, krate: &str) -> Vec<String> {
    source_dirs(ws, krate)
        .into_iter()
        .filter(|d| !d.starts_with("shared"))
        .collect()
}

/// Whether any `.rs` file under `dirs` mentions one of `words`.
fn mentions(dirs: &[String], words: &[&str]) -> Vec<String> {
    fn walk(dir: &Path, words: &[&str], found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, words, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let code = std::fs::read_to_string(&path).unwrap();
                for w in words {
                    if code.contains(w) {
                        found.push(format!("{}: {w}", path.display()));
                    }
                }
            }
        }
    }
    let mut found = Vec::new();
    for d in dirs {
        walk(&repo_root().join(d), words, &mut found);
    }
    found
}

#[test]
fn an_unreached_call_is_only_one_the_functions_own_code_cannot_reach() {
    let ws = Workspace::load().unwrap();
    for (function, _, words) in UNREACHED {
        let krate = FUNCTIONS.iter().find(|(f, _)| *f == function).unwrap().1;
        let dirs = own_dirs(&ws, krate);
        assert!(dirs.len() >= 2, "{krate}: {dirs:?}");
        let found = mentions(&dirs, words);
        assert!(
            found.is_empty(),
            "{function} reaches the database: {found:?}"
        );
    }
    // The check can fire: schema-migrations' own code does use the database.
    assert!(!mentions(&own_dirs(&ws, "schema-migrations"), UNREACHED[0].2).is_empty());
}

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

/// How many `.send()`s in `code` are not one of the calls in [`CALLS`].
fn unknown_sends(code: &str) -> usize {
    let known: usize = CALLS.iter().map(|(c, _)| code.matches(c).count()).sum();
    code.matches(".send()").count().saturating_sub(known)
}

#[test]
fn an_sdk_call_the_iam_test_does_not_know_is_caught() {
    let known = "client.list_users().user_pool_id(p).send().await";
    assert_eq!(unknown_sends(known), 0);
    let planted = "client.list_users().send().await; client.admin_delete_user().send().await";
    assert_eq!(unknown_sends(planted), 1);
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
                assert_eq!(
                    unknown_sends(&code),
                    0,
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
            // Not an SDK call: the permission behind an IAM database token (checked below).
            .filter(|a| a != "rds-db:connect")
            // Not an SDK call: what UpdateUserPool needs to hand Cognito a pool's SMS role
            // (checked in the_sms_role_is_passable_only_when_named_and_only_to_cognito).
            .filter(|a| a != "iam:PassRole")
            .collect();
        let mut used = calls_in(&dirs);
        for (_, action, _) in UNREACHED.iter().filter(|(f, _, _)| *f == function) {
            used.remove(*action);
        }
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

/// The `!Tag value` of a tagged YAML value (`!Ref X` gives `("Ref", "X")`).
#[test]
fn the_function_url_is_signed_and_only_the_named_developers_may_call_it() {
    let t = template();
    let f = &t["Resources"]["SgIpUpdateFunction"]["Properties"];
    assert_eq!(f["FunctionUrlConfig"]["AuthType"].as_str(), Some("AWS_IAM"));
    assert!(
        t["Outputs"]["SgIpUpdateFunctionUrl"]["Value"] != Value::Null,
        "the URL is an output"
    );
    // The callers are a parameter; left empty, nobody may call the URL.
    let callers = &t["Parameters"]["IpChangeCallerArns"];
    assert_eq!(callers["Type"].as_str(), Some("CommaDelimitedList"));
    assert_eq!(callers["Default"].as_str(), Some(""));

    // One pair of permissions per named caller, and no other permission on the function.
    let Value::Mapping(resources) = &t["Resources"] else {
        panic!("no Resources")
    };
    let mut pairs = Vec::new();
    for (name, resource) in resources {
        let name = name.as_str().unwrap();
        if let Some(loop_name) = name.strip_prefix("Fn::ForEach::") {
            let Value::Sequence(parts) = untag(resource) else {
                panic!("{name}")
            };
            let (var, collection, body) = (&parts[0], &parts[1], &parts[2]);
            let var = var.as_str().unwrap();
            assert!(
                is_ref_to(collection, "IpChangeCallerArns"),
                "{loop_name}: {collection:?}"
            );
            let Value::Mapping(body) = body else {
                panic!("{loop_name}")
            };
            for permission in body.values() {
                assert_eq!(permission["Type"].as_str(), Some("AWS::Lambda::Permission"));
                assert_eq!(
                    permission["Condition"].as_str(),
                    Some("HasIpChangeCallers"),
                    "no permission for an empty list's one empty principal"
                );
                let p = &permission["Properties"];
                assert!(is_ref_to(&p["FunctionName"], "SgIpUpdateFunction"), "{p:?}");
                assert!(
                    is_ref_to(&p["Principal"], var),
                    "one named caller each: {p:?}"
                );
                pairs.push(p.clone());
            }
        } else if resource["Type"].as_str() == Some("AWS::Lambda::Permission") {
            let p = &resource["Properties"];
            assert!(
                !format!("{:?}", p["FunctionName"]).contains("SgIpUpdateFunction"),
                "{name}: only the named callers may invoke sg-ip-update"
            );
            assert_ne!(p["Principal"].as_str(), Some("*"), "{name}");
        }
    }
    assert_eq!(pairs.len(), 2, "{pairs:?}");
    let action = |p: &Value| p["Action"].as_str().unwrap().to_owned();
    let url = pairs
        .iter()
        .find(|p| action(p) == "lambda:InvokeFunctionUrl")
        .expect("lambda:InvokeFunctionUrl");
    assert_eq!(url["FunctionUrlAuthType"].as_str(), Some("AWS_IAM"));
    let invoke = pairs
        .iter()
        .find(|p| action(p) == "lambda:InvokeFunction")
        .expect("lambda:InvokeFunction");
    assert_eq!(
        invoke["InvokedViaFunctionUrl"].as_bool(),
        Some(true),
        "InvokeFunction only through the URL, never a direct invocation"
    );
}

/// The settings of samconfig.toml, as `(key, value)` pairs with comments dropped (a line check:
/// the file is flat `key = value` tables, and the workspace has no TOML parser).
fn samconfig_settings(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// What a `sam build` setting would do wrong, if anything.
fn stale_build_setting(key: &str, value: &str) -> Option<&'static str> {
    match (key, value) {
        ("cached", "true") => Some(
            "SAM hashes only each function's CodeUri folder, so a change in shared/, another \
             crate or Cargo.lock would ship a stale bootstrap",
        ),
        ("beta_features", _) => Some("turns on every beta; rust-cargolambda no longer needs it"),
        _ => None,
    }
}

#[test]
fn samconfig_never_caches_builds_nor_turns_on_betas() {
    // The check must be able to fire.
    let bad = "[default.build.parameters]\nbeta_features = true\ncached = true # fast\n";
    let fired: Vec<_> = samconfig_settings(bad)
        .iter()
        .filter_map(|(k, v)| stale_build_setting(k, v))
        .collect();
    assert_eq!(fired.len(), 2, "{fired:?}");

    let text = std::fs::read_to_string(repo_root().join("samconfig.toml")).unwrap();
    let settings = samconfig_settings(&text);
    assert!(
        settings.iter().any(|(k, _)| k == "stack_name"),
        "samconfig.toml was read: {settings:?}"
    );
    for (key, value) in &settings {
        if let Some(why) = stale_build_setting(key, value) {
            panic!("samconfig.toml: `{key} = {value}`: {why}");
        }
    }
}

/// The physical names a stack of `template` named `stack` would create, from
/// `tests/physical_names.py` (the SAM CLI's language-extension expansion, then the SAM
/// translator): `(resource, type, name)`, the name `None` where CloudFormation makes one up.
fn physical_names(template: &Path, stack: &str) -> Vec<(String, String, Option<String>)> {
    let script = repo_root().join("tests/physical_names.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(template)
        .arg(stack)
        .env("SAM_CLI_TELEMETRY", "0")
        .output()
        .unwrap_or_else(|e| panic!("python3 {}: {e} (python3 is needed)", script.display()));
    assert!(
        out.status.success(),
        "{} failed; it needs python3 with the SAM CLI (pip install aws-sam-cli):\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let names: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    names
        .iter()
        .map(|n| {
            (
                n["resource"].as_str().unwrap().to_owned(),
                n["type"].as_str().unwrap().to_owned(),
                n["name"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

/// The physical names two stacks of `template` would both claim.
fn shared_names(template: &Path) -> Vec<String> {
    let staging = physical_names(template, "db-sync-staging");
    let prod = physical_names(template, "db-sync-prod");
    assert!(
        staging.len() >= 10,
        "the translated template's resources were read: {staging:?}"
    );
    let prod_names: BTreeSet<&String> = prod.iter().filter_map(|(_, _, n)| n.as_ref()).collect();
    staging
        .iter()
        .filter(|(_, _, n)| n.as_ref().is_some_and(|n| prod_names.contains(n)))
        .map(|(r, t, n)| format!("{r} ({t}): {}", n.as_deref().unwrap_or_default()))
        .collect()
}

#[test]
fn two_stacks_in_one_account_share_no_physical_name() {
    let template = repo_root().join("template.yaml");
    let shared = shared_names(&template);
    assert!(shared.is_empty(), "both stacks would claim {shared:?}");

    // The drift schedule is among the names checked, and CloudFormation names it.
    let names = physical_names(&template, "db-sync-staging");
    let schedule: Vec<_> = names
        .iter()
        .filter(|(_, t, _)| t == "AWS::Scheduler::Schedule")
        .collect();
    assert_eq!(schedule.len(), 1, "{names:?}");
    assert_eq!(schedule[0].2, None, "{schedule:?}");

    // The check fires: without OmitName, SAM names the schedule after its logical id.
    let text = std::fs::read_to_string(&template).unwrap();
    let fixed = text.replace("OmitName: true", "OmitName: false");
    assert_ne!(fixed, text);
    let dir = std::env::temp_dir().join(format!("template-names-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("template.yaml");
    std::fs::write(&bad, fixed).unwrap();
    let shared = shared_names(&bad);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        shared,
        ["DriftCheckFunctionSchedule (AWS::Scheduler::Schedule): DriftCheckFunctionSchedule"]
    );
}

/// Each resource of type `kind` in the template, by logical id.
fn resources_of_type<'t>(t: &'t Value, kind: &str) -> Vec<(&'t str, &'t Value)> {
    let Value::Mapping(resources) = &t["Resources"] else {
        panic!("no Resources")
    };
    resources
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(kind))
        .map(|(name, r)| (name.as_str().unwrap(), r))
        .collect()
}

#[test]
fn the_user_pool_survives_stack_deletion_and_replacement() {
    let t = template();
    let pools = resources_of_type(&t, "AWS::Cognito::UserPool");
    assert_eq!(pools.len(), 1, "{pools:?}");
    for (name, pool) in pools {
        assert_eq!(pool["DeletionPolicy"].as_str(), Some("Retain"), "{name}");
        assert_eq!(
            pool["UpdateReplacePolicy"].as_str(),
            Some("Retain"),
            "{name}"
        );
        assert_eq!(
            pool["Properties"]["DeletionProtection"].as_str(),
            Some("ACTIVE"),
            "{name}"
        );
    }
}

#[test]
fn log_groups_and_queues_say_what_happens_to_them() {
    // Deleted with the stack, by decision (template.yaml says why): never by default.
    let t = template();
    let mut seen = 0;
    for kind in ["AWS::Logs::LogGroup", "AWS::SQS::Queue"] {
        for (name, r) in resources_of_type(&t, kind) {
            assert_eq!(r["DeletionPolicy"].as_str(), Some("Delete"), "{name}");
            assert_eq!(r["UpdateReplacePolicy"].as_str(), Some("Delete"), "{name}");
            seen += 1;
        }
    }
    assert_eq!(seen, 9, "seven log groups (one a function) and two queues");
}

#[test]
fn concurrency_is_capped_per_function() {
    let t = template();
    // Each reservation is `!If [ReservesConcurrency, N, !Ref AWS::NoValue]` (template_deploy.rs
    // checks the shape); here, N.
    let reserved = |function: &str| {
        let v = &t["Resources"][function]["Properties"]["ReservedConcurrentExecutions"];
        &untag(v)[1]
    };
    assert_eq!(
        reserved("DriftCheckFunction").as_u64(),
        Some(1),
        "drift-check runs never overlap"
    );
    assert_eq!(reserved("SgIpUpdateFunction").as_u64(), Some(2));
    assert_eq!(reserved("SgIpUpdateBusFunction").as_u64(), Some(1));
    // CloudFormation invokes the custom resources' functions once per change.
    assert_eq!(reserved("SchemaMigrationsFunction").as_u64(), Some(1));
    assert_eq!(reserved("PoolTriggerFunction").as_u64(), Some(1));
    // post-confirmation: one connection per environment, so its concurrency is a parameter
    // sized against the database's max_connections.
    assert!(
        is_ref_to(
            reserved("PostConfirmationFunction"),
            "PostConfirmationMaxConcurrency"
        ),
        "{:?}",
        reserved("PostConfirmationFunction")
    );
    let p = &t["Parameters"]["PostConfirmationMaxConcurrency"];
    assert_eq!(p["Type"].as_str(), Some("Number"));
    let default = p["Default"].as_u64().unwrap();
    assert!(
        (1..=50).contains(&default),
        "{default}: well under a small RDS instance's ~80"
    );
    assert_eq!(p["MinValue"].as_u64(), Some(1));
    assert_eq!(reserved("PreSignUpFunction").as_u64(), Some(5));
    // Every connection the stack can open, with the defaults, fits the smallest instance.
    assert!(default + 5 + 1 + 2 + 1 + 1 < 80 - 3);
}

#[test]
fn the_drift_alarm_watches_the_namespace_drift_check_writes_to() {
    let t = template();
    let sub = |v: &Value| match tagged(v) {
        Some((tag, value)) if tag == "Sub" => value.as_str().map(str::to_owned),
        _ => None,
    };
    let env = &t["Resources"]["DriftCheckFunction"]["Properties"]["Environment"]["Variables"];
    let written = sub(&env["METRICS_NAMESPACE"]).expect("METRICS_NAMESPACE is a !Sub");
    assert!(
        written.contains("${AWS::StackName}"),
        "scoped per stack: {written}"
    );
    let alarm = &t["Resources"]["DriftFoundAlarm"]["Properties"];
    assert_eq!(sub(&alarm["Namespace"]).as_deref(), Some(written.as_str()));
    assert_eq!(alarm["MetricName"].as_str(), Some("Findings"));
}

/// `!GetAtt NAME.Arn` (either spelling) as `NAME`.
fn get_att_arn(v: &Value) -> Option<String> {
    let (tag, value) = tagged(v)?;
    if tag != "GetAtt" {
        return None;
    }
    match value {
        Value::String(s) => s.strip_suffix(".Arn").map(str::to_owned),
        Value::Sequence(parts) if parts.len() == 2 && parts[1].as_str() == Some("Arn") => {
            parts[0].as_str().map(str::to_owned)
        }
        _ => None,
    }
}

#[test]
fn dead_letter_queues_admit_only_this_stacks_rules() {
    let t = template();
    // Each queue, and the rules SAM generates (<function><event>) that dead-letter into it.
    let mut senders: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (function, f) in resources_of_type(&t, "AWS::Serverless::Function") {
        let Value::Mapping(events) = &f["Properties"]["Events"] else {
            continue;
        };
        for (name, e) in events {
            if e["Type"].as_str() != Some("EventBridgeRule") {
                continue;
            }
            if let Some(queue) = get_att_arn(&e["Properties"]["DeadLetterConfig"]["Arn"]) {
                let rule = format!("{function}{}", name.as_str().unwrap());
                senders.entry(queue).or_default().insert(rule);
            }
        }
    }
    assert_eq!(senders.len(), 2, "{senders:?}");

    let policies = resources_of_type(&t, "AWS::SQS::QueuePolicy");
    assert_eq!(policies.len(), 2);
    for (name, policy) in policies {
        let p = &policy["Properties"];
        let Value::Sequence(queues) = &p["Queues"] else {
            panic!("{name}: Queues")
        };
        assert_eq!(queues.len(), 1, "{name}");
        let (_, queue) = tagged(&queues[0]).expect("!Ref QUEUE");
        let queue = queue.as_str().unwrap();
        let Value::Sequence(statements) = &p["PolicyDocument"]["Statement"] else {
            panic!("{name}: Statement")
        };
        let mut admitted = BTreeSet::new();
        for s in statements {
            let principals = strings(&s["Principal"]["Service"]);
            assert_eq!(principals, ["events.amazonaws.com"], "{name}: {s:?}");
            let source = &s["Condition"]["ArnEquals"]["aws:SourceArn"];
            admitted.insert(get_att_arn(source).unwrap_or_else(|| {
                panic!("{name}: every statement names its rule in aws:SourceArn: {s:?}")
            }));
        }
        assert_eq!(Some(&admitted), senders.get(queue), "{name}");
    }
}

/// What each alarm watches: `(namespace, metric, dimension value)`.
fn alarms(t: &Value) -> Vec<(String, String, String)> {
    resources_of_type(t, "AWS::CloudWatch::Alarm")
        .into_iter()
        .map(|(_, a)| {
            let p = &a["Properties"];
            let dimension = match &p["Dimensions"] {
                Value::Sequence(d) if d.len() == 1 => match tagged(&d[0]["Value"]) {
                    Some((tag, v)) => format!("{tag} {}", v.as_str().unwrap_or_default()),
                    None => String::new(),
                },
                _ => String::new(),
            };
            (
                format!("{:?}", p["Namespace"]),
                p["MetricName"].as_str().unwrap_or_default().to_owned(),
                dimension,
            )
        })
        .collect()
}

#[test]
fn every_failures_queue_and_synchronous_function_has_an_alarm() {
    let t = template();
    let watched = alarms(&t);
    let has = |namespace: &str, metric: &str, dimension: &str| {
        watched.iter().any(|(n, m, d)| {
            n == &format!("{:?}", Value::String(namespace.into())) && m == metric && d == dimension
        })
    };
    let queues = resources_of_type(&t, "AWS::SQS::Queue");
    assert_eq!(queues.len(), 2);
    for (queue, _) in queues {
        assert!(
            has(
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
                &format!("GetAtt {queue}.QueueName")
            ),
            "{queue}: no depth alarm in {watched:?}"
        );
    }
    for function in ["PostConfirmationFunction", "SgIpUpdateFunction"] {
        assert!(
            has("AWS/Lambda", "Throttles", &format!("Ref {function}")),
            "{function}: no throttles alarm in {watched:?}"
        );
    }
}

/// A template value as JSON, with `!Ref` of a parameter replaced by `params`' value.
fn resolved(v: &Value, params: &BTreeMap<&str, &str>) -> serde_json::Value {
    if let Some((tag, inner)) = tagged(v) {
        let name = inner.as_str().unwrap_or_default();
        assert_eq!(tag, "Ref", "{v:?}");
        return serde_json::Value::String(params[name].to_owned());
    }
    match v {
        Value::Mapping(m) => serde_json::Value::Object(
            m.iter()
                .map(|(k, v)| (k.as_str().unwrap().to_owned(), resolved(v, params)))
                .collect(),
        ),
        Value::Sequence(items) => {
            serde_json::Value::Array(items.iter().map(|i| resolved(i, params)).collect())
        }
        other => serde_json::to_value(other).unwrap(),
    }
}

/// EventBridge matching, for the operators the template uses: exact values, `exists` and
/// `$or`.
fn matches(pattern: &serde_json::Value, event: &serde_json::Value) -> bool {
    let serde_json::Value::Object(fields) = pattern else {
        panic!("a pattern is an object: {pattern}")
    };
    fields.iter().all(|(key, p)| {
        if key == "$or" {
            return p.as_array().unwrap().iter().any(|alt| matches(alt, event));
        }
        let value = event.get(key);
        match p {
            serde_json::Value::Object(_) => value.is_some_and(|v| v.is_object() && matches(p, v)),
            serde_json::Value::Array(allowed) => allowed.iter().any(|a| match a.get("exists") {
                Some(exists) => exists.as_bool() == Some(value.is_some()),
                None => {
                    value.is_some_and(|v| v == a || v.as_array().is_some_and(|vs| vs.contains(a)))
                }
            }),
            other => panic!("{key}: {other}"),
        }
    })
}

#[test]
fn the_cloudtrail_rule_matches_only_successful_changes_to_the_managed_group() {
    let t = template();
    let group = "sg-0123456789abcdef0";
    let params = BTreeMap::from([("DatabaseSecurityGroupId", group)]);
    let pattern = resolved(
        &t["Resources"]["DriftCheckFunction"]["Properties"]["Events"]["SecurityGroupChanged"]["Properties"]
            ["Pattern"],
        &params,
    );
    let text =
        std::fs::read_to_string(repo_root().join("events/drift-check-cloudtrail.json")).unwrap();
    let authorize: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(authorize["detail"]["requestParameters"]["groupId"], group);
    assert!(matches(&pattern, &authorize), "{pattern:#}");

    let mut revoke = authorize.clone();
    revoke["detail"]["eventName"] = "RevokeSecurityGroupIngress".into();
    assert!(matches(&pattern, &revoke));

    let mut modify = authorize.clone();
    modify["detail"]["eventName"] = "ModifySecurityGroupRules".into();
    modify["detail"]["requestParameters"] = serde_json::json!({
        "ModifySecurityGroupRulesRequest": {"GroupId": group, "SecurityGroupRule": {}}
    });
    assert!(matches(&pattern, &modify));

    let mut other_group = authorize.clone();
    other_group["detail"]["requestParameters"]["groupId"] = "sg-0fffffffffffffff0".into();
    assert!(!matches(&pattern, &other_group), "another group");
    let mut other_modify = modify.clone();
    other_modify["detail"]["requestParameters"]["ModifySecurityGroupRulesRequest"]["GroupId"] =
        "sg-0fffffffffffffff0".into();
    assert!(!matches(&pattern, &other_modify), "another group, nested");

    let mut failed = authorize.clone();
    failed["detail"]["errorCode"] = "Client.UnauthorizedOperation".into();
    assert!(
        !matches(&pattern, &failed),
        "a call that failed changed nothing"
    );

    let mut other_call = authorize.clone();
    other_call["detail"]["eventName"] = "DescribeSecurityGroupRules".into();
    assert!(!matches(&pattern, &other_call));
}

#[test]
fn the_optional_trail_is_private_retained_and_writable_only_by_its_own_trail() {
    let t = template();
    let r = &t["Resources"];
    assert_eq!(
        t["Parameters"]["CreateTrail"]["Default"].as_str(),
        Some("false")
    );
    for name in ["TrailBucket", "TrailBucketPolicy", "ManagementEventsTrail"] {
        assert_eq!(
            r[name]["Condition"].as_str(),
            Some("CreatesTrail"),
            "{name}"
        );
    }
    let bucket = &r["TrailBucket"];
    assert_eq!(bucket["DeletionPolicy"].as_str(), Some("Retain"));
    assert_eq!(bucket["UpdateReplacePolicy"].as_str(), Some("Retain"));
    let block = &bucket["Properties"]["PublicAccessBlockConfiguration"];
    for setting in [
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ] {
        assert_eq!(block[setting].as_bool(), Some(true), "{setting}");
    }
    let trail = &r["ManagementEventsTrail"]["Properties"];
    assert_eq!(trail["IsLogging"].as_bool(), Some(true));
    let selector = &trail["EventSelectors"][0];
    assert_eq!(selector["IncludeManagementEvents"].as_bool(), Some(true));
    let trail_name = match tagged(&trail["TrailName"]) {
        Some((tag, v)) if tag == "Sub" => v.as_str().unwrap().to_owned(),
        other => panic!("TrailName: {other:?}"),
    };
    let Value::Sequence(statements) =
        &r["TrailBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    else {
        panic!("TrailBucketPolicy")
    };
    assert_eq!(statements.len(), 2);
    for s in statements {
        assert_eq!(
            strings(&s["Principal"]["Service"]),
            ["cloudtrail.amazonaws.com"]
        );
        let source = match tagged(&s["Condition"]["StringEquals"]["aws:SourceArn"]) {
            Some((tag, v)) if tag == "Sub" => v.as_str().unwrap().to_owned(),
            other => panic!("{s:?}: {other:?}"),
        };
        assert!(
            source.ends_with(&format!(":trail/{trail_name}")),
            "{source}"
        );
    }
}

#[test]
fn the_optional_endpoints_cover_every_api_the_code_calls() {
    let t = template();
    assert_eq!(
        t["Parameters"]["CreateVpcEndpoints"]["Default"].as_str(),
        Some("false")
    );
    let mut services = BTreeSet::new();
    for (name, e) in resources_of_type(&t, "AWS::EC2::VPCEndpoint") {
        // The S3 gateway the migrations answer CloudFormation through (template_deploy.rs).
        if name == "S3GatewayEndpoint" {
            continue;
        }
        assert_eq!(
            e["Condition"].as_str(),
            Some("CreatesVpcEndpoints"),
            "{name}"
        );
        let p = &e["Properties"];
        assert_eq!(p["VpcEndpointType"].as_str(), Some("Interface"), "{name}");
        assert_eq!(p["PrivateDnsEnabled"].as_bool(), Some(true), "{name}");
        let service = match tagged(&p["ServiceName"]) {
            Some((tag, v)) if tag == "Sub" => v.as_str().unwrap().to_owned(),
            other => panic!("{name}: {other:?}"),
        };
        services.insert(
            service
                .strip_prefix("com.amazonaws.${AWS::Region}.")
                .unwrap()
                .to_owned(),
        );
    }
    // Every service of an IAM action the code needs (CALLS) has its endpoint.
    let needed: BTreeSet<String> = CALLS
        .iter()
        .map(|(_, action)| action.split(':').next().unwrap().to_owned())
        .collect();
    assert_eq!(services, needed);

    let sg = &t["Resources"]["EndpointSecurityGroup"];
    assert_eq!(sg["Condition"].as_str(), Some("CreatesVpcEndpoints"));
    let Value::Sequence(ingress) = &sg["Properties"]["SecurityGroupIngress"] else {
        panic!("SecurityGroupIngress")
    };
    assert_eq!(ingress.len(), 1);
    assert_eq!(ingress[0]["FromPort"].as_u64(), Some(443));
    assert_eq!(ingress[0]["ToPort"].as_u64(), Some(443));
    assert!(is_ref_to(
        &ingress[0]["SourceSecurityGroupId"],
        "FunctionSecurityGroupId"
    ));
    // Without VpcId the deploy is refused before anything is created.
    let rule = &t["Rules"]["VpcIdWithEndpoints"];
    assert!(format!("{rule:?}").contains("VpcId"), "{rule:?}");
}

#[test]
fn the_dashboard_shows_sign_ups_ip_moves_every_drift_kind_and_durations() {
    let t = template();
    let body = match tagged(&t["Resources"]["Dashboard"]["Properties"]["DashboardBody"]) {
        Some((tag, v)) if tag == "Sub" => v.as_str().unwrap().to_owned(),
        other => panic!("DashboardBody: {other:?}"),
    };
    let dashboard: serde_json::Value = serde_json::from_str(&body).expect("the body is JSON");
    // Each metric as its line's strings: namespace, name, dimension name and value.
    let metrics: Vec<Vec<String>> = dashboard["widgets"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| w["properties"]["metrics"].as_array().unwrap().clone())
        .map(|m| {
            m.as_array()
                .unwrap()
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .collect();
    let shows = |line: &[&str]| metrics.iter().any(|m| m == line);
    for (function, what) in [
        (
            "PostConfirmationFunction",
            ["Invocations", "Errors", "Duration"].as_slice(),
        ),
        ("SgIpUpdateFunction", &["Invocations", "Errors", "Duration"]),
        ("DriftCheckFunction", &["Duration"]),
    ] {
        for metric in what {
            let dimension = format!("${{{function}}}");
            assert!(
                shows(&["AWS/Lambda", metric, "FunctionName", &dimension]),
                "{function} {metric}: {metrics:?}"
            );
        }
    }
    let env = &t["Resources"]["DriftCheckFunction"]["Properties"]["Environment"]["Variables"];
    let namespace = match tagged(&env["METRICS_NAMESPACE"]) {
        Some((_, v)) => v.as_str().unwrap().to_owned(),
        None => panic!("METRICS_NAMESPACE"),
    };
    for kind in drift_check::report::Kind::ALL {
        let kind = kind.to_string();
        assert!(
            shows(&[&namespace, "Findings", "Kind", &kind]),
            "findings of kind {kind}: {metrics:?}"
        );
    }
}

#[test]
fn secrets_without_a_host_and_secrets_under_a_customer_key_can_be_deployed() {
    let t = template();
    let env = &t["Globals"]["Function"]["Environment"]["Variables"];
    // DB_HOST: DbHost, else the secret's own host; for post-confirmation the proxy first.
    let host = format!("{:?}", env["DB_HOST"]);
    for part in ["HasDbHost", "DbHost"] {
        assert!(host.contains(part), "DB_HOST: {host}");
    }
    let trigger_env =
        &t["Resources"]["PostConfirmationFunction"]["Properties"]["Environment"]["Variables"];
    let trigger_host = format!("{:?}", trigger_env["DB_HOST"]);
    for part in ["HasProxy", "DbProxyEndpoint", "HasDbHost", "DbHost"] {
        assert!(trigger_host.contains(part), "DB_HOST: {trigger_host}");
    }
    // Session state only straight to the instance: behind the proxy the variable is dropped
    // and post-confirmation's default (transaction: nothing kept in the session) applies.
    let pooling = untag(&trigger_env["DB_POOLING"]);
    assert_eq!(
        strings(pooling),
        ["HasProxy", "AWS::NoValue", "session"],
        "DB_POOLING: {pooling:?}"
    );
    for (var, parameter) in [("DB_PORT", "DbPort"), ("DB_NAME", "DbName")] {
        let wiring = format!("{:?}", env[var]);
        assert!(wiring.contains(parameter), "{var}: {wiring}");
        assert_eq!(
            t["Parameters"][parameter]["Default"].as_str(),
            Some(""),
            "{parameter} is optional"
        );
    }

    let policy = &t["Resources"]["SecretKeyDecrypt"];
    assert_eq!(policy["Condition"].as_str(), Some("HasSecretKey"));
    let roles: BTreeSet<String> = match &policy["Properties"]["Roles"] {
        Value::Sequence(r) => r
            .iter()
            .map(|v| tagged(v).unwrap().1.as_str().unwrap().to_owned())
            .collect(),
        other => panic!("Roles: {other:?}"),
    };
    // Every function that reads the secret (pool-trigger does not: see UNREACHED).
    let functions: BTreeSet<String> = FUNCTIONS
        .iter()
        .filter(|(f, _)| {
            !UNREACHED
                .iter()
                .any(|(u, a, _)| u == f && a.starts_with("secretsmanager:"))
        })
        .map(|(f, _)| format!("{f}Role"))
        .collect();
    assert_eq!(roles, functions, "every function that reads the secret");
    let statement = &policy["Properties"]["PolicyDocument"]["Statement"][0];
    assert_eq!(strings(&statement["Action"]), ["kms:Decrypt"]);
    assert!(is_ref_to(&statement["Resource"], "SecretKmsKeyArn"));
    let via = format!(
        "{:?}",
        statement["Condition"]["StringEquals"]["kms:ViaService"]
    );
    assert!(
        via.contains("secretsmanager."),
        "only through Secrets Manager: {via}"
    );
}

/// A first deploy needs nothing published first: without the layer the functions trust the
/// compiled-in RDS and RDS Proxy CAs, still in verify-full, the only mode the template sets.
/// The layer, when given, replaces them with the bundle at CaBundlePath.
#[test]
fn a_first_deploy_needs_no_ca_layer_and_verify_full_stays() {
    let t = template();
    let env = &t["Globals"]["Function"]["Environment"]["Variables"];
    assert_eq!(env["DB_SSLMODE"].as_str(), Some("verify-full"));
    match tagged(&env["DB_CA_BUNDLE"]) {
        Some((tag, v)) if tag == "If" => {
            assert_eq!(v[0].as_str(), Some("HasCaLayer"));
            assert!(is_ref_to(&v[1], "CaBundlePath"), "{v:?}");
            assert!(is_ref_to(&v[2], "AWS::NoValue"), "{v:?}");
        }
        other => panic!("DB_CA_BUNDLE is set only with the layer: {other:?}"),
    }
    assert_eq!(
        t["Parameters"]["CaBundleLayerArn"]["Default"].as_str(),
        Some("")
    );
    let rules = format!("{:?}", t["Rules"]);
    assert!(
        !rules.contains("CaBundleLayerArn"),
        "no rule asks for the layer: {rules}"
    );
    let Value::Mapping(resources) = &t["Resources"] else {
        panic!("Resources")
    };
    for (name, r) in resources {
        let vars = &r["Properties"]["Environment"]["Variables"];
        assert!(
            vars.get("DB_SSLMODE").is_none(),
            "{name:?} overrides verify-full"
        );
    }
    let layers = format!("{:?}", t["Globals"]["Function"]["Layers"]);
    assert!(layers.contains("CaBundleLayerArn"), "{layers}");
}

/// The resources of a `DependsOn` (one name or a list).
fn depends_on(resource: &Value) -> Vec<String> {
    strings(&resource["DependsOn"])
        .into_iter()
        .filter(|s| !s.starts_with("Null"))
        .collect()
}

#[test]
fn the_functions_run_only_after_the_migrations_and_the_migrations_run_on_every_code_change() {
    let t = template();
    // The functions that use the database: all but the two custom resources.
    for (function, _) in &FUNCTIONS[..4] {
        assert!(
            depends_on(&t["Resources"][*function]).contains(&"SchemaMigrations".to_owned()),
            "{function} must depend on SchemaMigrations"
        );
    }
    let m = &t["Resources"]["SchemaMigrations"];
    assert_eq!(m["Type"].as_str(), Some("Custom::SchemaMigrations"));
    assert_eq!(
        get_att_arn(&m["Properties"]["ServiceToken"]).as_deref(),
        Some("SchemaMigrationsFunction")
    );
    // The version changes with the code, which embeds the migrations: the resource is
    // updated, and so migrates, whenever a deploy changes them.
    assert!(is_ref_to(
        &m["Properties"]["MigrationsVersion"],
        "SchemaMigrationsFunction.Version"
    ));
    let f = &t["Resources"]["SchemaMigrationsFunction"]["Properties"];
    assert_eq!(f["AutoPublishAlias"].as_str(), Some("live"));
    assert!(
        is_ref_to(&f["VpcConfig"]["SubnetIds"], "SubnetIds"),
        "in the VPC, like the others that reach the database"
    );
    // A migration outlasts a request's statement timeout, within the function's.
    let statement: u64 = f["Environment"]["Variables"]["DB_STATEMENT_TIMEOUT_MS"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(statement >= 60_000 && statement < f["Timeout"].as_u64().unwrap() * 1000 - 5000);
    // It reads the secret like the others, also when a customer key encrypts it.
    let roles = strings(&t["Resources"]["SecretKeyDecrypt"]["Properties"]["Roles"]);
    assert!(
        roles.contains(&"SchemaMigrationsFunctionRole".to_owned()),
        "{roles:?}"
    );
}

#[test]
fn an_existing_pool_is_wired_by_the_stack_on_that_pool_only() {
    let t = template();
    let r = &t["Resources"]["PoolPostConfirmationTrigger"];
    assert_eq!(r["Condition"].as_str(), Some("UseExistingPool"));
    assert_eq!(
        t["Resources"]["PoolTriggerFunction"]["Condition"].as_str(),
        Some("UseExistingPool")
    );
    let p = &r["Properties"];
    assert_eq!(
        get_att_arn(&p["ServiceToken"]).as_deref(),
        Some("PoolTriggerFunction")
    );
    assert!(is_ref_to(&p["UserPoolId"], "UserPoolId"));
    assert_eq!(
        get_att_arn(&p["FunctionArn"]).as_deref(),
        Some("PostConfirmationFunction")
    );
    assert!(is_ref_to(
        &p["ReplaceExistingTrigger"],
        "ReplaceExistingPostConfirmationTrigger"
    ));
    // The pool may invoke the function before it points at it.
    assert!(depends_on(r).contains(&"PostConfirmationPermission".to_owned()));
    // Replacing someone else's trigger is opt-in.
    let replace = &t["Parameters"]["ReplaceExistingPostConfirmationTrigger"];
    assert_eq!(replace["Default"].as_str(), Some("false"));
    // Describe and Update, on that one pool (and the optional PassRole grant, checked in
    // the_sms_role_is_passable_only_when_named_and_only_to_cognito).
    let statements: Vec<Value> = all_statements()
        .into_iter()
        .filter(|(owner, _)| owner == "PoolTriggerFunction")
        .filter(|(_, s)| strings(&s["Action"]) != ["iam:PassRole"])
        .map(|(_, s)| s)
        .collect();
    assert_eq!(statements.len(), 1, "{statements:?}");
    assert_eq!(
        strings(&statements[0]["Action"]),
        ["cognito-idp:DescribeUserPool", "cognito-idp:UpdateUserPool"]
    );
    assert_eq!(
        strings(&statements[0]["Resource"]),
        [
            "arn:${AWS::Partition}:cognito-idp:${AWS::Region}:${AWS::AccountId}:userpool/${UserPoolId}"
        ]
    );
    // The pool the stack creates names the trigger itself; the custom resource is not made.
    assert!(
        get_att_arn(&t["Resources"]["UserPool"]["Properties"]["LambdaConfig"]["PostConfirmation"])
            .is_some_and(|a| a == "PostConfirmationFunction")
    );
}

/// Only post-confirmation goes through RDS Proxy (the others keep session state and connect
/// directly), and with DbProxyIamAuth it may connect as the one database user on the one proxy:
/// `rds-db:connect` on `dbuser:<proxy id>/<user>`, granted only under the IAM condition, which
/// also sets DB_AUTH=iam and DB_USER.
#[test]
fn rds_db_connect_is_granted_only_to_the_trigger_for_its_one_user_under_the_iam_option() {
    let t = template();
    let grants: Vec<(String, Value)> = all_statements()
        .into_iter()
        .filter(|(_, s)| {
            strings(&s["Action"])
                .iter()
                .any(|a| a.starts_with("rds-db:"))
        })
        .collect();
    assert_eq!(grants.len(), 1, "{grants:?}");
    let (owner, statement) = &grants[0];
    assert_eq!(owner, "PostConfirmationFunction");
    assert_eq!(strings(&statement["Action"]), ["rds-db:connect"]);
    let resource = strings(&statement["Resource"]).join("");
    assert!(
        resource.ends_with(":dbuser:${DbProxyResourceId}/${DbIamUser}"),
        "one user on one proxy: {resource}"
    );
    assert!(!resource.contains('*'), "{resource}");

    // The policy holding it exists only under UsesIamAuth.
    let policies = &t["Resources"]["PostConfirmationFunction"]["Properties"]["Policies"];
    let conditional = match untag(policies) {
        Value::Sequence(items) => items
            .iter()
            .filter_map(tagged)
            .find(|(tag, v)| tag == "If" && format!("{v:?}").contains("rds-db:connect"))
            .map(|(_, v)| untag(&v[0]).as_str().map(str::to_owned)),
        other => panic!("Policies: {other:?}"),
    };
    assert_eq!(conditional, Some(Some("UsesIamAuth".to_owned())));
    // And the secret, which it no longer reads, is granted only without it: the If's second
    // branch (the first is NoValue).
    let secret_grant = match untag(policies) {
        Value::Sequence(items) => items
            .iter()
            .filter_map(tagged)
            .find(|(tag, v)| tag == "If" && format!("{v:?}").contains("GetSecretValue"))
            .map(|(_, v)| {
                (
                    untag(&v[0]).as_str().map(str::to_owned),
                    format!("{:?}", v[1]),
                    format!("{:?}", v[2]),
                )
            }),
        other => panic!("Policies: {other:?}"),
    };
    let (condition, with_iam, without) = secret_grant.expect("the secret grant is conditional");
    assert_eq!(condition.as_deref(), Some("UsesIamAuth"));
    assert!(
        with_iam.contains("AWS::NoValue") && !with_iam.contains("GetSecretValue"),
        "{with_iam}"
    );
    assert!(without.contains("GetSecretValue"), "{without}");
    let uses_iam = format!("{:?}", t["Conditions"]["UsesIamAuth"]);
    assert!(uses_iam.contains("HasProxy") && uses_iam.contains("DbProxyIamAuth"));

    let env = &t["Resources"]["PostConfirmationFunction"]["Properties"]["Environment"]["Variables"];
    for (var, wiring) in [("DB_AUTH", "iam"), ("DB_USER", "DbIamUser")] {
        let v = format!("{:?}", env[var]);
        assert!(
            v.contains("UsesIamAuth") && v.contains(wiring),
            "{var}: {v}"
        );
    }
    for function in ["SgIpUpdateFunction", "DriftCheckFunction"] {
        let env = format!(
            "{:?}",
            t["Resources"][function]["Properties"]["Environment"]
        );
        assert!(
            !env.contains("DbProxyEndpoint") && !env.contains("DB_AUTH"),
            "{function} connects directly: {env}"
        );
    }
    let rule = format!("{:?}", t["Rules"]["ProxyIamAuthIsComplete"]);
    for needed in ["DbProxyEndpoint", "DbProxyResourceId", "DbIamUser"] {
        assert!(
            rule.contains(needed),
            "the IAM option asserts {needed}: {rule}"
        );
    }
}

/// The functions that create rules tag them as they create them (how a rule proves this stack
/// made it): `ec2:CreateTags` on rules, and only inside `AuthorizeSecurityGroupIngress`.
#[test]
fn rules_are_tagged_only_as_they_are_created() {
    let t = template();
    let code = std::fs::read_to_string(repo_root().join("ingress/src/ec2.rs")).unwrap();
    assert!(code.contains(".tag_specifications(") && code.contains("OWNER_TAG"));
    for function in [
        "SgIpUpdateFunction",
        "SgIpUpdateBusFunction",
        "DriftCheckFunction",
    ] {
        let Value::Sequence(policies) = &t["Resources"][function]["Properties"]["Policies"] else {
            panic!("{function}: no policies")
        };
        let tagging: Vec<&Value> = policies
            .iter()
            .flat_map(|p| match &p["Statement"] {
                Value::Sequence(s) => s.iter().collect::<Vec<_>>(),
                _ => vec![],
            })
            .filter(|s| s["Action"].as_str() == Some("ec2:CreateTags"))
            .collect();
        assert_eq!(tagging.len(), 1, "{function}: {policies:?}");
        let statement = tagging[0];
        assert_eq!(
            statement["Condition"]["StringEquals"]["ec2:CreateAction"].as_str(),
            Some("AuthorizeSecurityGroupIngress"),
            "{function}"
        );
        let resource = format!("{:?}", untag(&statement["Resource"]));
        assert!(
            resource.contains(":security-group-rule/*"),
            "{function}: {resource}"
        );
    }
}

/// A flood on the bus cannot take the Function URL's executions: bus events go to a function of
/// their own (the same code) with one reserved execution, and the function behind the URL has
/// no bus rule.
#[test]
fn the_bus_and_the_function_url_never_share_executions() {
    let t = template();
    let events_of = |function: &str| -> Vec<String> {
        match &t["Resources"][function]["Properties"]["Events"] {
            Value::Mapping(m) => m
                .values()
                .filter_map(|e| e["Type"].as_str().map(str::to_owned))
                .collect(),
            _ => vec![],
        }
    };
    let url = &t["Resources"]["SgIpUpdateFunction"]["Properties"];
    assert!(url["FunctionUrlConfig"] != Value::Null);
    assert!(
        events_of("SgIpUpdateFunction").is_empty(),
        "{:?}",
        events_of("SgIpUpdateFunction")
    );
    let bus = &t["Resources"]["SgIpUpdateBusFunction"];
    assert_eq!(bus["Properties"]["FunctionUrlConfig"], Value::Null);
    assert_eq!(events_of("SgIpUpdateBusFunction"), ["EventBridgeRule"]);
    assert_eq!(
        bus["Metadata"], t["Resources"]["SgIpUpdateFunction"]["Metadata"],
        "the same binary"
    );
    assert_eq!(bus["Properties"]["CodeUri"], url["CodeUri"]);
    assert_eq!(
        untag(&bus["Properties"]["ReservedConcurrentExecutions"])[1].as_u64(),
        Some(1)
    );
}

/// Whether a condition of the template holds for `params` (the `Not`, `Equals` and `Ref` it
/// uses).
fn holds(condition: &Value, params: &BTreeMap<&str, &str>) -> bool {
    fn value(v: &Value, params: &BTreeMap<&str, &str>) -> String {
        match tagged(v) {
            Some((tag, name)) if tag == "Ref" => params[name.as_str().unwrap()].to_owned(),
            Some(other) => panic!("not a value: {other:?}"),
            None => v.as_str().unwrap().to_owned(),
        }
    }
    let (tag, args) = tagged(condition).expect("a condition is a function");
    match tag.as_str() {
        "Not" => !holds(&args[0], params),
        "Equals" => value(&args[0], params) == value(&args[1], params),
        other => panic!("{other}"),
    }
}

/// UpdateUserPool on a pool that sends SMS hands Cognito the pool's SMS role, which needs
/// `iam:PassRole` on it. pool-trigger gets that only when UserPoolSmsRoleArn names the role,
/// on that one role, and only for passing it to Cognito; no other statement passes a role.
#[test]
fn the_sms_role_is_passable_only_when_named_and_only_to_cognito() {
    const ROLE: &str = "arn:aws:iam::123456789012:role/app/sms-sender";
    let t = template();
    let parameter = &t["Parameters"]["UserPoolSmsRoleArn"];
    assert_eq!(parameter["Default"].as_str(), Some(""), "optional");
    // Empty, or one role's ARN: anchored, and no `*` among the role name's characters.
    let pattern = parameter["AllowedPattern"].as_str().unwrap();
    assert!(
        pattern.starts_with("^(") && pattern.ends_with(")?$"),
        "{pattern}"
    );
    let (_, name) = pattern
        .split_once(":iam::[0-9]{12}:role/")
        .unwrap_or_else(|| panic!("one account's role: {pattern}"));
    assert!(
        name.starts_with('[') && name.ends_with("]+)?$") && !name.contains('*'),
        "a role name's characters, no wildcard: {pattern}"
    );

    let passing: Vec<(String, Value)> = all_statements()
        .into_iter()
        .filter(|(_, s)| strings(&s["Action"]).iter().any(|a| a == "iam:PassRole"))
        .collect();
    assert_eq!(passing.len(), 1, "{passing:?}");
    assert_eq!(passing[0].0, "PoolTriggerFunction");

    // The policy that holds it is an If on HasUserPoolSmsRole, NoValue otherwise.
    let Value::Sequence(policies) =
        &t["Resources"]["PoolTriggerFunction"]["Properties"]["Policies"]
    else {
        panic!("PoolTriggerFunction: no policies")
    };
    let branches: Vec<&Value> = policies
        .iter()
        .filter_map(tagged)
        .filter(|(tag, v)| tag == "If" && format!("{v:?}").contains("iam:PassRole"))
        .map(|(_, v)| v)
        .collect();
    assert_eq!(branches.len(), 1, "{policies:?}");
    let branch = branches[0];
    let name = untag(&branch[0]).as_str().unwrap();
    assert_eq!(name, "HasUserPoolSmsRole");
    assert!(is_ref_to(&branch[2], "AWS::NoValue"), "{:?}", branch[2]);
    let condition = &t["Conditions"][name];

    for (value, granted) in [("", false), (ROLE, true)] {
        let params = BTreeMap::from([("UserPoolSmsRoleArn", value)]);
        let policy = if holds(condition, &params) {
            Some(resolved(&branch[1], &params))
        } else {
            None
        };
        assert_eq!(policy.is_some(), granted, "UserPoolSmsRoleArn={value:?}");
        let Some(policy) = policy else { continue };
        assert_eq!(
            policy["Statement"],
            serde_json::json!([{
                "Sid": "PassThePoolsSmsRoleToCognito",
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": ROLE,
                "Condition": {
                    "StringEquals": {"iam:PassedToService": "cognito-idp.amazonaws.com"}
                },
            }]),
            "exactly the named role, passed to Cognito only"
        );
    }
}
