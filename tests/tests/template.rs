//! template.yaml's IAM: no wildcard action anywhere, a wildcard resource only where AWS
//! requires one (DescribeSecurityGroupRules), each function (every one the template declares,
//! none from a hand-kept list) allowed exactly the AWS calls its code makes, read from the code
//! itself, sg-ip-update's Function URL signed (AWS_IAM) and callable only by the developers the
//! template names, `rds-db:connect` and `iam:PassRole` only where an option asks for them, and
//! rule tags only as rules are made.
//! The stack's other resources and deploy settings are in `template_stack.rs`; its events,
//! queues, alarms and dashboard in `template_events.rs`.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

use harness::{stack::repo_root, workspace::Workspace};
use serde_norway::Value;

mod common;
use common::{
    iam::{
        CALLS, NO_DATABASE, PARTS, all_statements, functions, part_of, roles_missing_the_key,
        runs_part, statements_of,
    },
    is_ref_to, resolved, strings, tagged, template, untag,
};

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
        if dir.is_file() {
            let code = std::fs::read_to_string(dir).unwrap();
            found.extend(
                words
                    .iter()
                    .filter(|w| code.contains(*w))
                    .map(|w| format!("{}: {w}", dir.display())),
            );
            return;
        }
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
fn a_function_without_the_database_never_names_it() {
    let ws = Workspace::load().unwrap();
    for (function, words) in NO_DATABASE {
        let krate = functions(&ws)
            .into_iter()
            .find(|(f, _)| f == function)
            .unwrap()
            .1;
        // A part of a crate ([`PARTS`]) is its own files only.
        let dirs = match part_of(function) {
            Some(part) => part_paths(&ws, part),
            None => own_dirs(&ws, &krate),
        };
        assert!(dirs.len() >= 2, "{krate}: {dirs:?}");
        let found = mentions(&dirs, words);
        assert!(
            found.is_empty(),
            "{function} reaches the database: {found:?}"
        );
    }
    // The check can fire: schema-migrations' own code does use the database.
    assert!(!mentions(&own_dirs(&ws, "schema-migrations"), NO_DATABASE[0].1).is_empty());
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

/// The files and folders of `part`, relative to the repository.
fn part_paths(ws: &Workspace, part: &common::iam::Part) -> Vec<String> {
    let dir = ws.dir(part.krate).unwrap();
    part.files
        .iter()
        .map(|f| format!("{}/{f}", dir.display()))
        .collect()
}

/// The calls in `paths` (folders or files), leaving out any file under `skip`.
fn calls_in(paths: &[String], skip: &[String]) -> BTreeSet<String> {
    fn walk(dir: &Path, skip: &[std::path::PathBuf], found: &mut BTreeSet<String>) {
        let entries: Vec<std::path::PathBuf> = if dir.is_file() {
            vec![dir.to_owned()]
        } else {
            std::fs::read_dir(dir)
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .collect()
        };
        for path in entries {
            if skip.iter().any(|s| path.starts_with(s)) {
                continue;
            }
            if path.is_dir() {
                walk(&path, skip, found);
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
    let skip: Vec<std::path::PathBuf> = skip.iter().map(|s| repo_root().join(s)).collect();
    let mut found = BTreeSet::new();
    for p in paths {
        walk(&repo_root().join(p), &skip, &mut found);
    }
    found
}

/// The calls `function`, built from `krate`, makes as `t` deploys it: a part's own files, or
/// the crate less the parts the function does not run.
fn calls_of(t: &Value, ws: &Workspace, function: &str, krate: &str) -> BTreeSet<String> {
    if let Some(part) = part_of(function) {
        assert!(
            runs_part(t, function, part),
            "{function} does not choose its part"
        );
        return calls_in(&part_paths(ws, part), &[]);
    }
    let mut skip: Vec<String> = PARTS
        .iter()
        .filter(|p| p.krate == krate && !runs_part(t, function, p))
        .flat_map(|p| part_paths(ws, p))
        .collect();
    // A function whose own code may not name `secret::` (a_function_without_the_database_
    // never_names_it checks it) never runs shared's secret reader.
    if NO_DATABASE
        .iter()
        .any(|(f, words)| *f == function && words.contains(&"secret::"))
    {
        skip.push("shared/src/secret.rs".to_owned());
    }
    calls_in(&source_dirs(ws, krate), &skip)
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

/// The AWS actions `function` is granted in `statements` that stand for SDK calls.
fn granted_calls(statements: &[(String, Value)], function: &str) -> BTreeSet<String> {
    statements
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
        .collect()
}

/// Each function of template `t` whose grants are not exactly the calls its code makes:
/// `(granted, called)`.
type Mismatches = BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)>;

fn grant_mismatches(t: &Value, ws: &Workspace) -> Mismatches {
    let all = statements_of(t);
    let mut mismatches = BTreeMap::new();
    for (function, krate) in common::iam::functions_of(t, ws) {
        let granted = granted_calls(&all, &function);
        let used = calls_of(t, ws, &function, &krate);
        assert!(!used.is_empty(), "{function}");
        if granted != used {
            mismatches.insert(function, (granted, used));
        }
    }
    mismatches
}

#[test]
fn each_function_may_make_exactly_the_calls_its_code_makes() {
    let t = template();
    let ws = Workspace::load().unwrap();
    assert_eq!(
        grant_mismatches(&t, &ws),
        Mismatches::new(),
        "granted vs called"
    );
    assert!(
        functions(&ws).iter().any(|(f, _)| f == "PreSignUpFunction"),
        "every function of the template is checked"
    );
    assert_eq!(
        granted_calls(&statements_of(&t), "PostConfirmationFunction").len(),
        1,
        "the trigger only reads its secret"
    );
}

/// One binary, two functions ([`PARTS`]): the lister alone lists the pool and invokes
/// drift-check, from outside the VPC, and may invoke nothing but drift-check. drift-check as
/// deployed lists nothing itself (`DRIFT_USERS_FROM=lister`), so it runs none of the lister's
/// files and is granted neither call; without the split, its crate would ask for both.
#[test]
fn the_lister_alone_lists_the_pool_and_invokes_drift_check() {
    let t = template();
    let ws = Workspace::load().unwrap();
    let env = |f: &str| t["Resources"][f]["Properties"]["Environment"]["Variables"].clone();
    assert_eq!(
        env("DriftCheckFunction")["DRIFT_USERS_FROM"].as_str(),
        Some("lister")
    );
    assert!(env("DriftCheckFunction")["DRIFT_RUNS_AS"].is_null());
    let lister = calls_of(&t, &ws, "DriftCheckListerFunction", "drift-check");
    let expected: BTreeSet<String> = ["cognito-idp:ListUsers", "lambda:InvokeFunction"]
        .map(String::from)
        .into();
    // Besides the hand-over key, which signs what it invokes drift-check with.
    let mut with_key = expected.clone();
    with_key.insert("secretsmanager:GetSecretValue".into());
    assert_eq!(lister, with_key);
    let check = calls_of(&t, &ws, "DriftCheckFunction", "drift-check");
    assert!(check.is_disjoint(&expected), "{check:?}");
    // The split can fire: the crate as a whole makes both calls.
    let whole = calls_in(&source_dirs(&ws, "drift-check"), &[]);
    assert!(whole.is_superset(&expected), "{whole:?}");

    let f = &t["Resources"]["DriftCheckListerFunction"]["Properties"];
    assert!(f["VpcConfig"].is_null(), "the lister runs outside the VPC");
    let invoke: Vec<Value> = statements_of(&t)
        .into_iter()
        .filter(|(owner, s)| {
            owner == "DriftCheckListerFunction"
                && strings(&s["Action"]) == ["lambda:InvokeFunction"]
        })
        .map(|(_, s)| s["Resource"].clone())
        .collect();
    assert_eq!(invoke.len(), 1);
    assert_eq!(
        common::get_att_arn(&invoke[0]).as_deref(),
        Some("DriftCheckFunction")
    );
    // The schedule starts the lister, and drift-check has none of its own.
    assert!(f["Events"]["Schedule"]["Type"].as_str() == Some("ScheduleV2"));
    let check_events = &t["Resources"]["DriftCheckFunction"]["Properties"]["Events"];
    assert!(check_events["Schedule"].is_null());
}

/// The hand-over key (docs/security-model.md): a secret the stack generates with drift-check,
/// given to the lister and drift-check by ARN, and readable by their two roles only.
#[test]
fn only_the_lister_and_drift_check_read_the_hand_over_key() {
    let t = template();
    let key = &t["Resources"]["DriftHandOverKey"];
    assert_eq!(key["Type"].as_str(), Some("AWS::SecretsManager::Secret"));
    assert_eq!(key["Condition"].as_str(), Some("DriftCheck"));
    let generated = &key["Properties"]["GenerateSecretString"];
    assert!(
        generated["PasswordLength"].as_u64() >= Some(32),
        "{generated:?}"
    );
    assert!(generated.get("SecretStringTemplate").is_none());
    let mut readers: Vec<String> = all_statements()
        .into_iter()
        .filter(|(_, s)| is_ref_to(&s["Resource"], "DriftHandOverKey"))
        .inspect(|(owner, s)| {
            assert_eq!(
                strings(&s["Action"]),
                ["secretsmanager:GetSecretValue"],
                "{owner}"
            );
        })
        .map(|(owner, _)| owner)
        .collect();
    readers.sort();
    assert_eq!(readers, ["DriftCheckFunction", "DriftCheckListerFunction"]);
    for f in &readers {
        let env = &t["Resources"][f.as_str()]["Properties"]["Environment"]["Variables"];
        assert!(
            is_ref_to(&env["DRIFT_HANDOVER_KEY_SECRET_ARN"], "DriftHandOverKey"),
            "{f}"
        );
    }
    // Nothing names the key anywhere else (another role's statement, another function).
    let mentions = format!("{:?}", t["Resources"])
        .matches("DriftHandOverKey")
        .count();
    assert_eq!(mentions, 5, "the secret, two grants and two variables");
}

/// The checks read the functions from the template: one planted beside the others, reading the
/// secret but granted nothing (not its secret, not the key that decrypts it), is caught by both.
#[test]
fn a_function_planted_without_its_grants_is_caught() {
    let mut t = template();
    let ws = Workspace::load().unwrap();
    let mut planted = t["Resources"]["PreSignUpFunction"].clone();
    planted["Properties"]["Policies"] = Value::Sequence(Vec::new());
    let Value::Mapping(resources) = &mut t["Resources"] else {
        panic!("Resources")
    };
    resources.insert(Value::String("PlantedFunction".into()), planted);

    let mismatches = grant_mismatches(&t, &ws);
    assert_eq!(
        mismatches.keys().collect::<Vec<_>>(),
        ["PlantedFunction"],
        "{mismatches:?}"
    );
    let (granted, called) = &mismatches["PlantedFunction"];
    assert!(granted.is_empty());
    assert!(
        called.contains("secretsmanager:GetSecretValue"),
        "{called:?}"
    );
    assert_eq!(roles_missing_the_key(&t, &ws), ["PlantedFunctionRole"]);
}

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
        // A policy of a half (drift-check's rules half) sits in `!If [HALF, POLICY, NoValue]`.
        let policies: Vec<&Value> = policies
            .iter()
            .map(|p| match tagged(p) {
                Some((tag, Value::Sequence(branches))) if tag == "If" => &branches[1],
                _ => p,
            })
            .collect();
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
