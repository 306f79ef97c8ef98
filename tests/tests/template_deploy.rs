//! Deploy day, read off `template.yaml`: the custom resources answer CloudFormation in every
//! network layout and within minutes, reservations can be left out in a young account, and
//! each job can read a database secret of its own.

use serde_norway::Value;

mod common;
use common::layout::Layout;
use common::{is_ref_to, tagged, template, untag};
use harness::stack::repo_root;

/// `(condition, when true, when false)` of an `!If`.
fn if_parts(v: &Value) -> Option<(&str, &Value, &Value)> {
    match tagged(v) {
        Some((tag, Value::Sequence(parts))) if tag == "If" && parts.len() == 3 => {
            Some((parts[0].as_str()?, &parts[1], &parts[2]))
        }
        _ => None,
    }
}

fn functions(t: &Value) -> Vec<(String, &Value)> {
    let Value::Mapping(resources) = &t["Resources"] else {
        panic!("Resources")
    };
    resources
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|(k, r)| (k.as_str().unwrap().to_owned(), r))
        .collect()
}

/// Every `!Ref` name anywhere under `v`.
fn refs(v: &Value, out: &mut Vec<String>) {
    if let Some((tag, inner)) = tagged(v)
        && tag == "Ref"
        && let Some(name) = inner.as_str()
    {
        out.push(name.to_owned());
    }
    match untag(v) {
        Value::Sequence(items) => items.iter().for_each(|i| refs(i, out)),
        Value::Mapping(m) => m.values().for_each(|i| refs(i, out)),
        _ => {}
    }
}

/// The functions CloudFormation sends custom-resource requests to (each `ServiceToken`).
fn service_tokens(t: &Value) -> Vec<String> {
    let Value::Mapping(resources) = &t["Resources"] else {
        panic!("Resources")
    };
    resources
        .values()
        .filter(|r| r["Type"].as_str().unwrap_or("").starts_with("Custom::"))
        .map(|r| match tagged(&r["Properties"]["ServiceToken"]) {
            Some((tag, v)) if tag == "GetAtt" => {
                v.as_str().unwrap().trim_end_matches(".Arn").to_owned()
            }
            other => panic!("{other:?}"),
        })
        .collect()
}

/// What would make a custom resource's answer depend on the VPC's routes: a `ServiceToken`
/// function in the VPC, an S3 endpoint or route tables for one, the migrations answered by
/// anything but the responder that invokes them.
fn answer_path_problems(t: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for f in service_tokens(t) {
        if t["Resources"][f.as_str()]["Properties"]
            .get("VpcConfig")
            .is_some()
        {
            problems.push(format!("{f} answers CloudFormation from inside the VPC"));
        }
    }
    for (name, r) in functions(t)
        .into_iter()
        .chain(resources_named(t, "AWS::EC2::VPCEndpoint"))
    {
        let service = format!("{:?}", r["Properties"]["ServiceName"]);
        if service.contains(".s3") || r["Properties"].get("RouteTableIds").is_some() {
            problems.push(format!("{name}: an S3 endpoint on route tables"));
        }
    }
    if t["Parameters"].get("RouteTableIds").is_some() {
        problems.push("the RouteTableIds parameter".to_owned());
    }
    let migrations = &t["Resources"]["SchemaMigrations"]["Properties"];
    let token = format!("{:?}", migrations["ServiceToken"]);
    let responder = &t["Resources"]["CfnResponderFunction"]["Properties"];
    let target = format!(
        "{:?}",
        responder["Environment"]["Variables"]["TARGET_FUNCTION_ARN"]
    );
    if !token.contains("CfnResponderFunction.Arn") || !target.contains("SchemaMigrationsFunction") {
        problems.push(format!(
            "the migrations are answered by {token}, which invokes {target}"
        ));
    }
    problems
}

fn resources_named<'t>(t: &'t Value, kind: &str) -> Vec<(String, &'t Value)> {
    let Value::Mapping(resources) = &t["Resources"] else {
        panic!("Resources")
    };
    resources
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(kind))
        .map(|(k, r)| (k.as_str().unwrap().to_owned(), r))
        .collect()
}

#[test]
fn the_custom_resources_answer_cloudformation_without_nat_and_within_minutes() {
    let t = template();
    assert!(
        t["Globals"]["Function"].get("VpcConfig").is_none(),
        "no function is put in the VPC by default"
    );
    let tokens = service_tokens(&t);
    assert!(
        functions(&t)
            .iter()
            .any(|(name, _)| name == "SchemaMigrationsFunction"),
        "the migrations' function"
    );
    assert!(
        t["Resources"]["SchemaMigrationsFunction"]["Properties"]
            .get("VpcConfig")
            .is_some(),
        "the migrations reach the database: in the VPC"
    );
    for (name, f) in functions(&t) {
        let vpc = f["Properties"].get("VpcConfig");
        if tokens.contains(&name) {
            // Custom resources' functions: outside the VPC, they always answer.
            assert!(vpc.is_none(), "{name}: {vpc:?}");
        } else if let Some(vpc) = vpc {
            assert!(is_ref_to(&vpc["SubnetIds"], "SubnetIds"), "{name}");
        }
    }
    assert!(
        tokens.len() >= 4,
        "the migrations, the existing pool's triggers and the created pool's clearing"
    );
    let Value::Mapping(resources) = &t["Resources"] else {
        panic!("Resources")
    };
    for (name, r) in resources
        .iter()
        .filter(|(_, r)| r["Type"].as_str().unwrap_or("").starts_with("Custom::"))
    {
        let wait = r["Properties"]["ServiceTimeout"].as_u64();
        assert!(
            wait.is_some_and(|w| w <= 600),
            "{name:?}: ServiceTimeout {wait:?} must be minutes (template_operations.rs checks it \
             covers the functions' time)"
        );
    }
    assert!(tokens.contains(&"CfnResponderFunction".to_owned()));
    assert!(!tokens.contains(&"SchemaMigrationsFunction".to_owned()));
    assert_eq!(answer_path_problems(&t), Vec::<String>::new());

    // The check fires: the responder put in the VPC, an S3 gateway endpoint brought back, the
    // migrations answered by themselves.
    let mut planted = t.clone();
    planted["Resources"]["CfnResponderFunction"]["Properties"]["VpcConfig"] =
        t["Resources"]["SchemaMigrationsFunction"]["Properties"]["VpcConfig"].clone();
    planted["Resources"]["S3GatewayEndpoint"] = serde_norway::from_str(
        "Type: AWS::EC2::VPCEndpoint\nProperties: {VpcEndpointType: Gateway, ServiceName: !Sub 'com.amazonaws.${AWS::Region}.s3', RouteTableIds: [rtb-1]}",
    )
    .unwrap();
    let found = answer_path_problems(&planted);
    assert!(
        found
            .iter()
            .any(|p| p.contains("CfnResponderFunction answers")),
        "{found:?}"
    );
    assert!(
        found.iter().any(|p| p.contains("S3GatewayEndpoint")),
        "{found:?}"
    );
    let mut planted = t.clone();
    planted["Resources"]["SchemaMigrations"]["Properties"]["ServiceToken"] =
        serde_norway::from_str("!GetAtt SchemaMigrationsFunction.Arn").unwrap();
    let found = answer_path_problems(&planted);
    assert!(
        found.iter().any(|p| p.contains("inside the VPC")),
        "{found:?}"
    );
    assert!(found.iter().any(|p| p.contains("answered by")), "{found:?}");

    // The responder may invoke the migrations and nothing else.
    let policies = format!(
        "{:?}",
        t["Resources"]["CfnResponderFunction"]["Properties"]["Policies"]
    );
    assert_eq!(policies.matches("Action").count(), 1, "{policies}");
    assert!(policies.contains("lambda:InvokeFunction"), "{policies}");
    assert!(
        policies.contains("SchemaMigrationsFunction.Arn"),
        "{policies}"
    );
    assert!(!policies.contains('*'), "{policies}");

    // The migrations' routes to the AWS APIs outlive their Delete (a reference in the
    // properties orders them: created before, deleted after).
    let mut named = Vec::new();
    refs(
        &t["Resources"]["SchemaMigrations"]["Properties"],
        &mut named,
    );
    assert!(
        named.contains(&"SecretsManagerEndpoint".to_owned()),
        "{named:?}"
    );
}

#[test]
fn reservations_are_optional_and_the_check_before_deploying_is_named() {
    let t = template();
    let p = &t["Parameters"]["ReserveConcurrency"];
    assert_eq!(p["Default"].as_str(), Some("true"));
    let text = p["Description"].as_str().unwrap();
    assert!(
        text.contains("aws lambda get-account-settings") && text.contains("\"false\""),
        "{text}"
    );
    let mut reserving = 0;
    for (name, f) in functions(&t) {
        let Some(v) = f["Properties"].get("ReservedConcurrentExecutions") else {
            continue;
        };
        reserving += 1;
        let (condition, on, off) =
            if_parts(v).unwrap_or_else(|| panic!("{name}: a reservation that cannot be left out"));
        assert_eq!(condition, "ReservesConcurrency", "{name}");
        assert!(is_ref_to(off, "AWS::NoValue"), "{name}: {off:?}");
        assert!(
            on.as_u64().is_some() || is_ref_to(on, "PostConfirmationMaxConcurrency"),
            "{name}: {on:?}"
        );
    }
    assert_eq!(
        reserving,
        functions(&t).len(),
        "every function reserves, or none"
    );
}

/// Every part deployed: the sign-up sync on a pool the stack creates (so pre-sign-up and
/// sign-in-guard too), developer access and both halves of drift-check.
const EVERY_PART: [(&str, &str); 5] = [
    ("DeploySignUpSync", "true"),
    ("DeployDeveloperAccess", "true"),
    ("DeployDriftCheck", "true"),
    ("DeploySignInGuard", "true"),
    ("DatabaseSecurityGroupId", "sg-0bbbbbbbbbbbbbbb2"),
];

/// `(reserved executions, most database connections)` of what `given` deploys: each
/// function's reservation, and that of each function in the VPC (those reach the database, one
/// connection per environment: no function sets `DB_POOL_SIZE`, whose default is 1).
fn reservations(t: &Value, given: &[(&str, &str)]) -> (u64, u64) {
    let l = Layout::new(t, given);
    let (mut reserved, mut connections) = (0, 0);
    for (name, f) in l.functions() {
        let env = l.environment(f);
        assert!(
            !env.contains_key("DB_POOL_SIZE"),
            "{name} sets DB_POOL_SIZE"
        );
        let Some(v) = l.value(&f["Properties"]["ReservedConcurrentExecutions"]) else {
            continue;
        };
        let n = v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .unwrap_or_else(|| panic!("{name}: {v}"));
        reserved += n;
        if f["Properties"].get("VpcConfig").is_some() {
            connections += n;
        }
    }
    (reserved, connections)
}

/// The number right after `before` in `text`.
fn number_after(text: &str, before: &str) -> Option<u64> {
    let rest = &text[text.find(before)? + before.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The totals the `ReserveConcurrency` description and docs/deploying.md state, against
/// `(every part, a default deploy)` as `(reserved, connections)`: what each says that is not
/// so.
fn stated_reservation_problems(
    description: &str,
    deploying: &str,
    every: (u64, u64),
    default: (u64, u64),
) -> Vec<String> {
    let flat = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let (description, deploying) = (flat(description), flat(deploying));
    let checks = [
        (
            "description",
            &description,
            "every part deployed reserves ",
            every.0,
        ),
        (
            "description",
            &description,
            "a default deploy reserves ",
            default.0,
        ),
        ("description", &description, "at least 100 + ", every.0),
        (
            "deploying.md",
            &deploying,
            "`ConcurrentExecutions` of at least 100 + ",
            every.0,
        ),
        (
            "deploying.md",
            &deploying,
            "a default deploy reserves ",
            default.0,
        ),
        (
            "deploying.md",
            &deploying,
            "a default deploy holds at most ",
            default.1,
        ),
        (
            "deploying.md",
            &deploying,
            "every part deployed at most ",
            every.1,
        ),
    ];
    checks
        .into_iter()
        .filter_map(
            |(doc, text, before, want)| match number_after(text, before) {
                Some(n) if n == want => None,
                got => Some(format!("{doc}: \"{before}\" {got:?}, is {want}")),
            },
        )
        .collect()
}

#[test]
fn the_stated_reservations_and_connections_are_what_the_functions_reserve() {
    let t = template();
    let every = reservations(&t, &EVERY_PART);
    let default = reservations(&t, &[]);
    let description = t["Parameters"]["ReserveConcurrency"]["Description"]
        .as_str()
        .unwrap();
    let deploying = std::fs::read_to_string(repo_root().join("docs/deploying.md")).unwrap();
    let problems = stated_reservation_problems(description, &deploying, every, default);
    assert!(problems.is_empty(), "{every:?} {default:?}: {problems:#?}");

    // The checker fires on a planted wrong number.
    let planted = description.replacen(&every.0.to_string(), &(every.0 - 1).to_string(), 1);
    assert!(
        !stated_reservation_problems(&planted, &deploying, every, default).is_empty(),
        "{planted}"
    );
}

#[test]
fn each_job_reads_the_secret_of_its_own_role_given_or_made_by_the_stack() {
    let t = template();
    assert!(
        t["Globals"]["Function"]["Environment"]["Variables"]
            .get("DB_SECRET_ARN")
            .is_none(),
        "no function is handed the owner's secret by default"
    );
    for (function, parameter, condition, made) in [
        (
            "PostConfirmationFunction",
            "PostConfirmationSecretArn",
            "HasPostConfirmationSecret",
            "PostConfirmationLoginSecret",
        ),
        (
            "PreSignUpFunction",
            "PreSignUpSecretArn",
            "HasPreSignUpSecret",
            "PreSignUpLoginSecret",
        ),
        (
            "SgIpUpdateFunction",
            "SgIpUpdateSecretArn",
            "HasSgIpUpdateSecret",
            "SgIpUpdateLoginSecret",
        ),
        (
            "SgIpUpdateBusFunction",
            "SgIpUpdateSecretArn",
            "HasSgIpUpdateSecret",
            "SgIpUpdateLoginSecret",
        ),
        (
            "DriftCheckFunction",
            "DriftCheckSecretArn",
            "HasDriftCheckSecret",
            "DriftCheckLoginSecret",
        ),
    ] {
        assert_eq!(t["Parameters"][parameter]["Default"].as_str(), Some(""));
        let f = &t["Resources"][function]["Properties"];
        let mut env = &f["Environment"]["Variables"]["DB_SECRET_ARN"];
        // Under IAM authentication post-confirmation has no secret at all.
        if let Some(("UsesIamAuth", none, password)) = if_parts(env) {
            assert!(is_ref_to(none, "AWS::NoValue"), "{function}");
            env = password;
        }
        let (c, given, otherwise) = if_parts(env).unwrap_or_else(|| panic!("{function}"));
        assert_eq!(c, condition);
        assert!(
            is_ref_to(given, parameter) && is_ref_to(otherwise, made),
            "{function}: {env:?}"
        );
        // The one secret it may read is the one it is told to.
        let policies = format!("{:?}", f["Policies"]);
        let reads: Vec<&str> = policies.matches("GetSecretValue").collect();
        // drift-check reads the hand-over key too (DriftHandOverKey), no database login.
        let handover = usize::from(function == "DriftCheckFunction");
        assert_eq!(
            policies.matches("DriftHandOverKey").count(),
            handover,
            "{function}: {policies}"
        );
        assert_eq!(reads.len(), 1 + handover, "{function}: {policies}");
        let statement_resource = format!("{env:?}");
        assert!(
            policies.contains(&statement_resource),
            "{function}: {policies}"
        );
        // The stack makes the secret exactly when none is given, and the migrations make its
        // login from it.
        let secret = &t["Resources"][made];
        assert_eq!(secret["Type"].as_str(), Some("AWS::SecretsManager::Secret"));
        let creates = secret["Condition"].as_str().unwrap();
        let migrations = &t["Resources"]["SchemaMigrationsFunction"]["Properties"];
        let logins = format!(
            "{:?}",
            migrations["Environment"]["Variables"]["DB_JOB_LOGINS"]
        );
        assert!(
            logins.contains(creates) && logins.contains(made),
            "{logins}"
        );
    }
}

/// Every function (read from the template) whose environment or policies name `DbSecretArn`.
fn readers_of_the_owners_secret(t: &Value) -> Vec<String> {
    functions(t)
        .into_iter()
        .filter(|(_, f)| {
            let mut named = Vec::new();
            refs(&f["Properties"]["Policies"], &mut named);
            refs(&f["Properties"]["Environment"], &mut named);
            named.iter().any(|n| n == "DbSecretArn")
        })
        .map(|(name, _)| name)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[test]
fn no_function_but_the_migrations_can_read_the_owners_secret() {
    let t = template();
    let mut globals = Vec::new();
    refs(&t["Globals"], &mut globals);
    assert!(!globals.contains(&"DbSecretArn".to_owned()), "{globals:?}");
    assert_eq!(
        readers_of_the_owners_secret(&t),
        ["SchemaMigrationsFunction"]
    );
    // The check fires on a function that is handed the owner's secret.
    let mut planted = t.clone();
    let leak: Value = serde_norway::from_str(
        "Version: '2012-10-17'\nStatement:\n  - Effect: Allow\n    Action: secretsmanager:GetSecretValue\n    Resource: !Ref DbSecretArn\n",
    )
    .unwrap();
    let Value::Sequence(policies) =
        &mut planted["Resources"]["DriftCheckFunction"]["Properties"]["Policies"]
    else {
        panic!("DriftCheckFunction's Policies")
    };
    policies.push(leak);
    assert_eq!(
        readers_of_the_owners_secret(&planted),
        ["DriftCheckFunction", "SchemaMigrationsFunction"]
    );
}
