//! The parts chosen at deploy (issue 36): the sign-up sync, developer access and drift-check
//! each deployed or left out, a parameter required only by the parts that use it. The
//! template's conditions and rules are evaluated for the four layouts of the issue (a new
//! account; an existing VPC with its own Secrets Manager endpoint; an existing pool with a
//! domain and its own PreSignUp; the sign-up sync alone, no security group given), and each
//! is checked for the resources it deploys, the parameters it must give, and what each of its
//! functions can reach. Each checker is also run on a planted bad copy, where it must fire.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value as J;
use serde_norway::Value;

mod common;
use common::layout::{Layout, references, required};
use common::template;

const GROUP: &str = "sg-0bbbbbbbbbbbbbbb2";
const POOL: &str = "eu-west-1_AbCdEf123";
const VPC: &str = "vpc-0aaaaaaaaaaaaaaa1";
const VPC_CIDR: &str = "10.0.0.0/16";

/// The parameters every layout must give: the database and the subnets its functions run in.
const ALWAYS_REQUIRED: [&str; 5] = [
    "DbHost",
    "DbName",
    "DbSecretArn",
    "FunctionSecurityGroupId",
    "SubnetIds",
];

/// Which parts a layout deploys, as the template's conditions must decide them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Parts {
    sign_up_sync: bool,
    developer_access: bool,
    drift_rules: bool,
    drift_users: bool,
}

/// A layout of the issue: its parameters beyond the required ones, the parts it deploys, and
/// the parameters it must give beyond [`ALWAYS_REQUIRED`].
struct Case {
    name: &'static str,
    given: Vec<(&'static str, &'static str)>,
    parts: Parts,
    required: &'static [&'static str],
}

/// The endpoint parameters of the network layouts; a name the template does not declare is
/// left out by [`Layout::new`].
fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "(a) a new account: new pool, NAT-less VPC, endpoints created, every part",
            given: vec![
                ("DeployDeveloperAccess", "true"),
                ("DatabaseSecurityGroupId", GROUP),
                ("SecretsManagerVpcEndpoint", "create"),
                ("Ec2VpcEndpoint", "create"),
                ("VpcId", VPC),
                ("EndpointClientCidrs", VPC_CIDR),
            ],
            parts: Parts {
                sign_up_sync: true,
                developer_access: true,
                drift_rules: true,
                drift_users: true,
            },
            required: &["DatabaseSecurityGroupId", "EndpointClientCidrs", "VpcId"],
        },
        Case {
            name: "(b) an existing VPC that has a Secrets Manager endpoint with private DNS",
            given: vec![
                ("SecretsManagerVpcEndpoint", "existing"),
                ("Ec2VpcEndpoint", "none"),
            ],
            parts: Parts {
                sign_up_sync: true,
                developer_access: false,
                drift_rules: false,
                drift_users: true,
            },
            required: &[],
        },
        Case {
            name: "(c) an existing pool with a domain and its own PreSignUp",
            given: vec![("UserPoolId", POOL), ("DatabaseSecurityGroupId", GROUP)],
            parts: Parts {
                sign_up_sync: true,
                developer_access: false,
                drift_rules: true,
                drift_users: true,
            },
            required: &[],
        },
        Case {
            name: "(d) the sign-up sync alone, no security group given",
            given: vec![
                ("DeploySignUpSync", "true"),
                ("DeployDeveloperAccess", "false"),
                ("DeployDriftCheck", "false"),
                ("DatabaseSecurityGroupId", ""),
            ],
            parts: Parts {
                sign_up_sync: true,
                developer_access: false,
                drift_rules: false,
                drift_users: false,
            },
            required: &[],
        },
    ]
}

/// The resources of each part, by logical id (SAM's generated resources follow their
/// function's condition).
const SIGN_UP_SYNC: [&str; 8] = [
    "PostConfirmationLogGroup",
    "PostConfirmationFunction",
    "PostConfirmationPermission",
    "PoolTriggerLogGroup",
    "PoolTriggerRecordKey",
    "PoolTriggerFunction",
    "PostConfirmationErrorsAlarm",
    "PostConfirmationThrottlesAlarm",
];
/// Pre-sign-up's, only where it is the pool's PreSignUp: a pool the stack creates, or an
/// existing one with `PreSignUpOnExistingPool=true`.
const PRE_SIGN_UP: [&str; 6] = [
    "PreSignUpLogGroup",
    "PreSignUpFunction",
    "PreSignUpPermission",
    "PreSignUpFailedOpenAlarm",
    "PreSignUpMisconfiguredAlarm",
    "PreSignUpThrottlesAlarm",
];
const DEVELOPER_ACCESS: [&str; 10] = [
    "SgIpUpdateLogGroup",
    "SgIpUpdateBusLogGroup",
    "SgIpUpdateFailures",
    "SgIpUpdateFailuresPolicy",
    "SgIpUpdateFunction",
    "SgIpUpdateBusFunction",
    "SgIpUpdateErrorsAlarm",
    "SgIpUpdateBusErrorsAlarm",
    "SgIpUpdateFailuresAlarm",
    "SgIpUpdateThrottlesAlarm",
];
const DRIFT_CHECK: [&str; 9] = [
    "DriftCheckLogGroup",
    "DriftHandOverKey",
    "DriftCheckFailures",
    "DriftCheckFailuresPolicy",
    "DriftCheckFunction",
    "DriftCheckErrorsAlarm",
    "DriftCheckFailuresAlarm",
    "DriftFoundAlarm",
    "DriftCheckMissedRunsAlarm",
];

/// Each deployed resource or output of `given` that names a resource the layout does not
/// deploy: CloudFormation would refuse the template ("Unresolved resource dependencies").
fn dangling(t: &Value, given: &[(&str, &str)]) -> Vec<String> {
    let l = Layout::new(t, given);
    let deployed: Vec<(&str, &Value)> = l.resources();
    let functions: Vec<&str> = l.functions().into_iter().map(|(n, _)| n).collect();
    let Value::Mapping(all) = &t["Resources"] else {
        panic!("Resources")
    };
    let declared: BTreeSet<String> = all
        .keys()
        .filter_map(|k| k.as_str().map(str::to_owned))
        .collect();
    let known = |name: &str| {
        name.starts_with("AWS::")
            || l.params.contains_key(name)
            || deployed.iter().any(|(n, _)| *n == name)
            // SAM's resources for a function (its role, URL, alias, event rules) share its
            // condition and start with its logical id.
            || functions.iter().any(|f| name.starts_with(f))
    };
    let mut found = Vec::new();
    let mut check = |owner: &str, body: &Value, loop_vars: &[String]| {
        let mut names = BTreeSet::new();
        references(&l, body, &mut names);
        for name in names {
            let is_resource = declared.contains(&name)
                || all
                    .keys()
                    .filter_map(|k| k.as_str())
                    .any(|k| !k.starts_with("Fn::") && name.starts_with(k) && name != k);
            if is_resource && !loop_vars.contains(&name) && !known(&name) {
                found.push(format!("{owner} names {name}"));
            }
        }
    };
    for (name, r) in &deployed {
        if let Some(each) = name.strip_prefix("Fn::ForEach::") {
            let Value::Sequence(parts) = r else {
                panic!("{name}")
            };
            let var = parts[0].as_str().unwrap().to_owned();
            let Value::Mapping(body) = &parts[2] else {
                panic!("{name}")
            };
            for (inner_name, inner) in body {
                let applies = inner["Condition"].as_str().is_none_or(|c| l.condition(c));
                if applies {
                    let owner = format!("{each}/{}", inner_name.as_str().unwrap());
                    check(&owner, inner, std::slice::from_ref(&var));
                }
            }
            continue;
        }
        check(name, r, &[]);
    }
    if let Value::Mapping(outputs) = &t["Outputs"] {
        for (name, o) in outputs {
            if o["Condition"].as_str().is_none_or(|c| l.condition(c)) {
                check(&format!("output {}", name.as_str().unwrap()), o, &[]);
            }
        }
    }
    found
}

/// Each IAM action a deployed function's own policies grant in this layout, with its
/// resources, by function.
fn grants(l: &Layout) -> BTreeMap<String, Vec<(String, J)>> {
    let mut by_function = BTreeMap::new();
    for (name, f) in l.functions() {
        let policies = l
            .value(&f["Properties"]["Policies"])
            .unwrap_or(J::Array(vec![]));
        let mut actions = Vec::new();
        for policy in policies.as_array().into_iter().flatten() {
            for s in policy["Statement"].as_array().into_iter().flatten() {
                let listed = match &s["Action"] {
                    J::String(a) => vec![a.clone()],
                    J::Array(a) => a
                        .iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect(),
                    _ => Vec::new(),
                };
                for action in listed {
                    actions.push((action, s["Resource"].clone()));
                }
            }
        }
        by_function.insert(name.to_owned(), actions);
    }
    by_function
}

/// How an in-VPC function reaches a service in this layout: through an endpoint the stack
/// creates, one the VPC has, or NAT.
fn route(l: &Layout, parameter: &str) -> &'static str {
    match l.params.get(parameter).map(String::as_str) {
        Some("create") => "an endpoint the stack creates",
        Some("existing") => "the VPC's own endpoint",
        _ => "NAT",
    }
}

/// What each deployed function can reach in this layout: the database (in the VPC), and
/// each AWS service its policies grant, with the route an in-VPC function takes there.
fn reach(l: &Layout) -> BTreeMap<String, BTreeSet<String>> {
    let grants = grants(l);
    let mut reach = BTreeMap::new();
    for (name, f) in l.functions() {
        let in_vpc = l.value(&f["Properties"]["VpcConfig"]).is_some();
        let mut can = BTreeSet::new();
        if in_vpc {
            can.insert("database".to_owned());
        }
        for (action, _) in &grants[name] {
            let service = action.split(':').next().unwrap_or("");
            let via = match service {
                "secretsmanager" if in_vpc => {
                    format!(" by {}", route(l, "SecretsManagerVpcEndpoint"))
                }
                "ec2" if in_vpc => format!(" by {}", route(l, "Ec2VpcEndpoint")),
                "cognito-idp" if in_vpc => format!(" by {}", route(l, "CognitoVpcEndpoint")),
                _ => String::new(),
            };
            can.insert(format!("{service}{via}"));
        }
        reach.insert(name.to_owned(), can);
    }
    reach
}

/// What is wrong with `case` in this template: a refusal, a parameter required or not, a part's
/// resource deployed or missing, a function of a part left out, or a reach it should not have.
fn layout_problems(t: &Value, case: &Case) -> Vec<String> {
    let l = Layout::new(t, &case.given);
    let mut problems: Vec<String> = l
        .refusals()
        .into_iter()
        .map(|r| format!("refused: {r}"))
        .collect();

    let wanted: BTreeSet<String> = ALWAYS_REQUIRED
        .iter()
        .chain(case.required)
        .map(|s| (*s).to_owned())
        .collect();
    let got = required(&l, &case.given);
    for p in got.difference(&wanted) {
        problems.push(format!("requires {p}"));
    }
    for p in wanted.difference(&got) {
        problems.push(format!("does not require {p}"));
    }

    let deployed: BTreeSet<&str> = l.resources().into_iter().map(|(n, _)| n).collect();
    let p = case.parts;
    let pre_sign_up = p.sign_up_sync
        && (l.params["UserPoolId"].is_empty() || l.params["PreSignUpOnExistingPool"] == "true");
    for (names, on) in [
        (&SIGN_UP_SYNC[..], p.sign_up_sync),
        (&PRE_SIGN_UP[..], pre_sign_up),
        (&DEVELOPER_ACCESS[..], p.developer_access),
        (&DRIFT_CHECK[..], p.drift_rules || p.drift_users),
    ] {
        for name in names {
            if deployed.contains(name) != on {
                problems.push(format!(
                    "{name} {}",
                    if on { "missing" } else { "deployed" }
                ));
            }
        }
    }
    // The pool: created for the sign-up sync unless one is named; never without it.
    let creates_pool = p.sign_up_sync && l.params["UserPoolId"].is_empty();
    if deployed.contains("UserPool") != creates_pool {
        problems.push(format!("UserPool deployed: {}", !creates_pool));
    }

    // Each function's crate belongs to the parts deployed.
    for (name, f) in l.functions() {
        let code = f["Properties"]["CodeUri"].as_str().unwrap_or("");
        let allowed = match code.trim_end_matches('/').rsplit('/').next() {
            Some("sg-ip-update") => p.developer_access,
            Some("drift-check") => p.drift_rules || p.drift_users,
            Some("pre-sign-up") => pre_sign_up,
            Some("post-confirmation" | "pool-trigger" | "sign-in-guard") => p.sign_up_sync,
            _ => true,
        };
        if !allowed {
            problems.push(format!("{name} ({code}) deployed"));
        }
    }

    // What the functions can reach: a security group only with a part that manages one, and
    // only the group given; the pool only where it is in play.
    let grants = grants(&l);
    for (function, actions) in &grants {
        for (action, resource) in actions {
            if action.starts_with("ec2:") && !(p.developer_access || p.drift_rules) {
                problems.push(format!("{function} may {action}"));
            }
            let changes_a_group = [
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:ModifySecurityGroupRules",
                "ec2:RevokeSecurityGroupIngress",
            ];
            if changes_a_group.contains(&action.as_str()) {
                let groups: Vec<String> = resource
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(J::as_str)
                    .filter(|r| r.contains(":security-group/"))
                    .map(|r| r.rsplit('/').next().unwrap_or("").to_owned())
                    .collect();
                if groups != [GROUP] {
                    problems.push(format!("{function} may {action} on {groups:?}"));
                }
            }
            if action == "cognito-idp:ListUsers" && !p.drift_users {
                problems.push(format!("{function} may {action}"));
            }
        }
    }
    for (name, f) in l.functions() {
        let env = l.environment(f);
        let set = |var: &str| {
            env.get(var)
                .cloned()
                .flatten()
                .and_then(|v| v.as_str().map(str::to_owned))
        };
        if name == "DriftCheckFunction" {
            let checks = set("DRIFT_CHECKS").unwrap_or_default();
            let wanted = match (p.drift_rules, p.drift_users) {
                (true, true) => "rules,users",
                (true, false) => "rules",
                _ => "users",
            };
            if checks != wanted {
                problems.push(format!("DriftCheckFunction DRIFT_CHECKS {checks:?}"));
            }
            if set("SECURITY_GROUP_IDS").is_some() != p.drift_rules {
                problems.push(format!(
                    "DriftCheckFunction SECURITY_GROUP_IDS {:?}",
                    set("SECURITY_GROUP_IDS")
                ));
            }
            if set("USER_POOL_ID").is_some() != p.drift_users {
                problems.push(format!(
                    "DriftCheckFunction USER_POOL_ID {:?}",
                    set("USER_POOL_ID")
                ));
            }
        }
        // The migrations make a login for each part deployed, and for no other.
        if name == "SchemaMigrationsFunction" {
            let logins = set("DB_JOB_LOGINS").unwrap_or_default();
            for (job, on) in [
                ("db_sync_post_confirmation=", p.sign_up_sync),
                ("db_sync_pre_sign_up=", pre_sign_up),
                ("db_sync_sg_ip_update=", p.developer_access),
                ("db_sync_drift_check=", p.drift_rules || p.drift_users),
            ] {
                if logins.contains(job) != on {
                    problems.push(format!("DB_JOB_LOGINS {logins:?} and {job}"));
                }
            }
        }
    }
    // The dashboard draws the parts deployed, and is JSON in every layout.
    let body = l.value(&t["Resources"]["Dashboard"]["Properties"]["DashboardBody"]);
    let body = body.as_ref().and_then(J::as_str).unwrap_or("");
    if serde_json::from_str::<J>(body).is_err() {
        problems.push(format!("the dashboard is not JSON: {body}"));
    }
    problems.extend(dangling(t, &case.given));
    problems
}

#[test]
fn each_layout_deploys_its_parts_and_requires_only_what_they_use() {
    let t = template();
    for case in cases() {
        assert_eq!(
            layout_problems(&t, &case),
            Vec::<String>::new(),
            "{}",
            case.name
        );
    }
}

/// The template as it was before the parts: every function always deployed, the managed
/// group required.
fn all_or_nothing(t: &Value) -> Value {
    let mut planted = t.clone();
    let Value::Mapping(resources) = &mut planted["Resources"] else {
        panic!("Resources")
    };
    for (_, r) in resources.iter_mut() {
        if let Value::Mapping(m) = r
            && matches!(
                m.get("Condition").and_then(Value::as_str),
                Some("SignUpSync" | "DeveloperAccess" | "DriftCheck")
            )
        {
            m.remove("Condition");
        }
    }
    planted["Parameters"]["DatabaseSecurityGroupId"]
        .as_mapping_mut()
        .unwrap()
        .remove("Default");
    planted
}

#[test]
fn the_sign_up_sync_alone_creates_nothing_of_the_other_parts() {
    let t = template();
    let alone = cases().pop().unwrap();
    assert!(alone.name.starts_with("(d)"));
    assert_eq!(layout_problems(&t, &alone), Vec::<String>::new());

    // Developer access without the group is refused before anything is made, naming it.
    let mut asked = alone.given.clone();
    asked.retain(|(n, _)| *n != "DeployDeveloperAccess");
    asked.push(("DeployDeveloperAccess", "true"));
    let refused = Layout::new(&t, &asked).refusals();
    assert!(
        refused.len() == 1 && refused[0].contains("DatabaseSecurityGroupId"),
        "{refused:?}"
    );
    // drift-check with nothing to check (no group, no pool) is refused too.
    let nothing = [
        ("DeploySignUpSync", "false"),
        ("DeployDeveloperAccess", "false"),
        ("DeployDriftCheck", "true"),
        ("DatabaseSecurityGroupId", ""),
    ];
    let refused = Layout::new(&t, &nothing).refusals();
    assert!(
        refused.len() == 1 && refused[0].starts_with("DriftCheckHasSomethingToCheck"),
        "{refused:?}"
    );

    // Planted: all or nothing, as before the parts. The sign-up sync alone then needs the
    // group and deploys sg-ip-update and drift-check's rules half.
    let found = layout_problems(&all_or_nothing(&t), &alone);
    for expected in [
        "requires DatabaseSecurityGroupId",
        "SgIpUpdateFunction deployed",
        "DriftCheckFunction deployed",
        "SgIpUpdateFunction (functions/sg-ip-update) deployed",
    ] {
        assert!(found.iter().any(|f| f == expected), "{expected}: {found:?}");
    }
}

#[test]
fn no_deployed_resource_names_one_a_layout_leaves_out() {
    let t = template();
    for case in cases() {
        assert_eq!(
            dangling(&t, &case.given),
            Vec::<String>::new(),
            "{}",
            case.name
        );
    }
    // And every choice of parts, pool and group the rules let deploy.
    let on_off = ["true", "false"];
    let mut deployable = 0;
    for sync in on_off {
        for developers in on_off {
            for drift in on_off {
                for pool in ["", POOL] {
                    for group in ["", GROUP] {
                        let given = [
                            ("DeploySignUpSync", sync),
                            ("DeployDeveloperAccess", developers),
                            ("DeployDriftCheck", drift),
                            ("UserPoolId", pool),
                            ("DatabaseSecurityGroupId", group),
                        ];
                        if !Layout::new(&t, &given).refusals().is_empty() {
                            continue;
                        }
                        deployable += 1;
                        assert_eq!(dangling(&t, &given), Vec::<String>::new(), "{given:?}");
                    }
                }
            }
        }
    }
    assert!(deployable >= 20, "{deployable} layouts deploy");
    let alone = cases().pop().unwrap();

    // Planted: an alarm of developer access that forgot its condition.
    let mut planted = t.clone();
    planted["Resources"]["SgIpUpdateErrorsAlarm"]
        .as_mapping_mut()
        .unwrap()
        .remove("Condition");
    assert_eq!(
        dangling(&planted, &alone.given),
        ["SgIpUpdateErrorsAlarm names SgIpUpdateFunction"]
    );

    // Planted: an output that forgot its condition.
    let mut planted = t.clone();
    planted["Outputs"]["DriftCheckFunctionArn"]
        .as_mapping_mut()
        .unwrap()
        .remove("Condition");
    assert_eq!(
        dangling(&planted, &alone.given),
        ["output DriftCheckFunctionArn names DriftCheckFunction"]
    );

    // Planted: the dashboard drawing every part's lines whatever is deployed.
    let text = serde_norway::to_string(&t["Resources"]["Dashboard"]).unwrap();
    let unconditional = text.replace("- DriftCheck\n", "- HasSecretKeyOrNot\n");
    assert_ne!(
        text, unconditional,
        "the dashboard has drift-check's widget"
    );
    let mut planted = t.clone();
    planted["Resources"]["Dashboard"] = serde_norway::from_str(&unconditional).unwrap();
    planted["Conditions"]["HasSecretKeyOrNot"] = serde_norway::from_str("!Equals [a, a]").unwrap();
    let found = dangling(&planted, &alone.given);
    assert!(
        found
            .iter()
            .any(|f| f == "Dashboard names DriftCheckFunction"),
        "{found:?}"
    );
}

/// What each function of each layout can reach, as a table an operator reads: checked whole,
/// so that a grant or a route that appears or disappears shows here.
#[test]
fn what_each_function_can_reach_in_each_layout() {
    let t = template();
    let [a, b, c, d] = &cases()[..] else {
        panic!("four layouts")
    };
    let reach_of = |case: &Case, function: &str| -> BTreeSet<String> {
        reach(&Layout::new(&t, &case.given))
            .remove(function)
            .unwrap_or_else(|| panic!("{}: no {function}", case.name))
    };
    let set =
        |items: &[&str]| -> BTreeSet<String> { items.iter().map(|s| (*s).to_owned()).collect() };

    // (a): the database and Secrets Manager through the endpoint the stack made; EC2 too,
    // for the two functions that change the group.
    let sm = "secretsmanager by an endpoint the stack creates";
    assert_eq!(
        reach_of(a, "PostConfirmationFunction"),
        set(&["database", sm])
    );
    for f in ["SgIpUpdateFunction", "SgIpUpdateBusFunction"] {
        let r = reach_of(a, f);
        assert!(
            r.contains("ec2 by an endpoint the stack creates") && r.contains(sm),
            "{f}: {r:?}"
        );
    }
    let drift = reach_of(a, "DriftCheckFunction");
    assert!(
        drift.contains("ec2 by an endpoint the stack creates"),
        "{drift:?}"
    );

    // (b): the VPC's own Secrets Manager endpoint, nothing created for it.
    let own = "secretsmanager by the VPC's own endpoint";
    assert_eq!(
        reach_of(b, "PostConfirmationFunction"),
        set(&["database", own])
    );
    let drift = reach_of(b, "DriftCheckFunction");
    assert!(!drift.iter().any(|r| r.starts_with("ec2")), "{drift:?}");
    let deployed: Vec<&str> = Layout::new(&t, &b.given)
        .resources()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(
        !deployed.contains(&"SecretsManagerEndpoint"),
        "{deployed:?}"
    );

    // (c): pool-trigger may touch the named pool only; the pool's PreSignUp stays its own.
    let l = Layout::new(&t, &c.given);
    let pool_trigger = &grants(&l)["PoolTriggerFunction"];
    for (action, resource) in pool_trigger
        .iter()
        .filter(|(a, _)| a.starts_with("cognito-idp:"))
    {
        assert!(
            resource
                .as_str()
                .is_some_and(|r| r.ends_with(&format!("userpool/{POOL}"))),
            "{action}: {resource:?}"
        );
    }
    let deployed: Vec<&str> = l.resources().into_iter().map(|(n, _)| n).collect();
    // Nor is there a pre-sign-up of ours at all (no function, login, alarms, reserve).
    for absent in [
        "PoolPreSignUpTrigger",
        "PreSignUpPermission",
        "PreSignUpFunction",
        "PreSignUpLoginSecret",
        "UserPool",
    ] {
        assert!(!deployed.contains(&absent), "{absent}: {deployed:?}");
    }
    assert!(
        deployed.contains(&"PoolPostConfirmationTrigger"),
        "{deployed:?}"
    );

    // (d): no function reaches EC2, and none may list the pool's users.
    for (function, r) in reach(&Layout::new(&t, &d.given)) {
        assert!(
            !r.iter()
                .any(|s| s.starts_with("ec2") || s.starts_with("sqs")),
            "{function}: {r:?}"
        );
    }
    let r = reach_of(d, "PostConfirmationFunction");
    assert_eq!(r, set(&["database", "secretsmanager by NAT"]));

    // Planted: the users half's grant (whichever drift-check function holds it) under
    // drift-check's condition instead of the half's fires where drift-check has no pool.
    let mut planted = t.clone();
    let mut moved = 0;
    if let Value::Mapping(resources) = &mut planted["Resources"] {
        for (_, r) in resources.iter_mut() {
            if r["Properties"].get("Policies").is_none() {
                continue;
            }
            let policies = &mut r["Properties"]["Policies"];
            let text = serde_norway::to_string(policies).unwrap();
            if text.contains("- DriftUsers\n") {
                *policies =
                    serde_norway::from_str(&text.replace("- DriftUsers\n", "- DriftCheck\n"))
                        .unwrap();
                moved += 1;
            }
        }
    }
    assert!(moved > 0, "a policy under DriftUsers");
    let rules_only = Case {
        name: "drift-check's rules half, no pool",
        given: vec![
            ("DeploySignUpSync", "false"),
            ("DeployDriftCheck", "true"),
            ("DatabaseSecurityGroupId", GROUP),
        ],
        parts: Parts {
            sign_up_sync: false,
            developer_access: false,
            drift_rules: true,
            drift_users: false,
        },
        // Without it drift-check would have nothing to check.
        required: &["DatabaseSecurityGroupId"],
    };
    assert_eq!(layout_problems(&t, &rules_only), Vec::<String>::new());
    let found = layout_problems(&planted, &rules_only);
    assert!(
        found
            .iter()
            .any(|f| f.ends_with(" may cognito-idp:ListUsers")),
        "{found:?}"
    );
}
