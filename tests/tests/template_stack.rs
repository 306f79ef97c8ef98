//! template.yaml's resources and deploy settings: every function built by cargo-lambda from
//! its crate, samconfig.toml never caching builds, two stacks of the template sharing no
//! physical name, the user pool retained and protected, concurrency capped per function, the
//! optional VPC endpoints, secrets without a host or under a customer key, the CA layer
//! optional, the migrations first, and an existing pool wired on that pool only.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use harness::{stack::repo_root, workspace::Workspace};
use serde_norway::Value;

mod common;
use common::{
    get_att_arn,
    iam::{CALLS, all_statements, functions, key_roles, roles_missing_the_key, statements_of},
    is_ref_to, project_python, resources_of_type, strings, tagged, template, untag,
};

#[test]
fn every_function_is_built_by_cargo_lambda_from_its_crate() {
    let t = template();
    let ws = Workspace::load().unwrap();
    for (function, krate) in functions(&ws) {
        let f = &t["Resources"][&function];
        assert_eq!(
            f["Metadata"]["BuildMethod"].as_str(),
            Some("rust-cargolambda"),
            "{function}"
        );
        let code_uri = f["Properties"]["CodeUri"].as_str().unwrap();
        assert_eq!(Some(PathBuf::from(code_uri)), ws.dir(&krate), "{function}");
        let binary = f["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap();
        assert!(repo_root().join(code_uri).join("Cargo.toml").exists());
        assert!(code_uri.ends_with(binary), "{function}: binary {binary}");
    }
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
    let python = project_python();
    let out = std::process::Command::new(&python)
        .arg(&script)
        .arg(template)
        .arg(stack)
        .env("SAM_CLI_TELEMETRY", "0")
        .output()
        .unwrap_or_else(|e| panic!("{} {}: {e}", python.display(), script.display()));
    assert!(
        out.status.success(),
        "{} failed; it needs the SAM CLI in {} (scripts/python-env installs it):\n{}",
        script.display(),
        python.display(),
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
        [
            "DriftCheckListerFunctionSchedule (AWS::Scheduler::Schedule): DriftCheckListerFunctionSchedule"
        ]
    );
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
    // Ten log groups: one a function's (post-confirmation, pre-sign-up, sign-in-guard, the
    // migrations, cfn-responder, pool-trigger, sg-ip-update and its bus function, drift-check
    // and its lister); and two queues.
    assert_eq!(seen, 12, "ten log groups and two queues");
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
    assert_eq!(reserved("SignInGuardFunction").as_u64(), Some(5));
    // Every connection the stack can open, with the defaults, fits the smallest instance.
    assert!(default + 5 + 5 + 1 + 2 + 1 + 1 < 80 - 3);
}

#[test]
fn the_optional_endpoints_cover_every_api_the_code_calls() {
    let t = template();
    // Per service, and none by default (template_network checks what each choice creates).
    for parameter in ["SecretsManagerVpcEndpoint", "Ec2VpcEndpoint"] {
        assert_eq!(
            t["Parameters"][parameter]["Default"].as_str(),
            Some("none"),
            "{parameter}"
        );
    }
    let mut services = BTreeSet::new();
    for (name, e) in resources_of_type(&t, "AWS::EC2::VPCEndpoint") {
        assert_eq!(
            e["Condition"].as_str(),
            Some(format!("Creates{name}").as_str()),
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
    // Every service of an IAM action the code needs (CALLS) and a function in the VPC is
    // granted has its endpoint; a function outside the VPC needs none.
    let in_vpc: BTreeSet<&str> = resources_of_type(&t, "AWS::Serverless::Function")
        .into_iter()
        .filter(|(_, f)| f["Properties"].get("VpcConfig").is_some())
        .map(|(name, _)| name)
        .collect();
    let needed: BTreeSet<String> = statements_of(&t)
        .iter()
        .filter(|(holder, _)| in_vpc.contains(holder.as_str()))
        .flat_map(|(_, statement)| strings(&statement["Action"]))
        .filter(|action| CALLS.iter().any(|(_, call)| call == action))
        .map(|action| action.split(':').next().unwrap().to_owned())
        .collect();
    assert_eq!(services, needed);

    let sg = &t["Resources"]["EndpointSecurityGroup"];
    assert_eq!(sg["Condition"].as_str(), Some("CreatesVpcEndpoints"));
    let Value::Sequence(ingress) = &sg["Properties"]["SecurityGroupIngress"] else {
        panic!("SecurityGroupIngress")
    };
    // The functions first; the VPC's CIDRs after (template_network).
    assert_eq!(ingress[0]["FromPort"].as_u64(), Some(443));
    assert_eq!(ingress[0]["ToPort"].as_u64(), Some(443));
    assert!(is_ref_to(
        &ingress[0]["SourceSecurityGroupId"],
        "FunctionSecurityGroupId"
    ));
    // Without VpcId (or EndpointClientCidrs) the deploy is refused before anything is created.
    let rule = &t["Rules"]["VpcIdWithEndpoints"];
    assert!(format!("{rule:?}").contains("VpcId"), "{rule:?}");
}

#[test]
fn secrets_without_a_host_and_secrets_under_a_customer_key_can_be_deployed() {
    let t = template();
    let env = &t["Globals"]["Function"]["Environment"]["Variables"];
    // DB_HOST: DbHost, required (a secret RDS manages names no host); for post-confirmation
    // the proxy first. template_operations checks every function in every layout.
    assert!(
        is_ref_to(&env["DB_HOST"], "DbHost"),
        "DB_HOST: {:?}",
        env["DB_HOST"]
    );
    let trigger_env =
        &t["Resources"]["PostConfirmationFunction"]["Properties"]["Environment"]["Variables"];
    let trigger_host = format!("{:?}", trigger_env["DB_HOST"]);
    for part in ["HasProxy", "DbProxyEndpoint", "DbHost"] {
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
    // The port may come from the secret (5432 when neither says); the name never from the
    // user's: DbName is required, like DbHost.
    for (var, parameter, default) in [("DB_PORT", "DbPort", Some("")), ("DB_NAME", "DbName", None)]
    {
        let wiring = format!("{:?}", env[var]);
        assert!(wiring.contains(parameter), "{var}: {wiring}");
        assert_eq!(
            t["Parameters"][parameter]["Default"].as_str(),
            default,
            "{parameter}'s default"
        );
    }

    let policy = &t["Resources"]["SecretKeyDecrypt"];
    assert_eq!(policy["Condition"].as_str(), Some("HasSecretKey"));
    // Every function of the template that reads the secret (pool-trigger does not: see
    // NO_DATABASE; the one it reads is its own, under Secrets Manager's key), and no other role.
    let ws = Workspace::load().unwrap();
    assert_eq!(
        roles_missing_the_key(&t, &ws),
        Vec::<String>::new(),
        "every function that reads the secret"
    );
    let function_roles: BTreeSet<String> = functions(&ws)
        .into_iter()
        .map(|(f, _)| format!("{f}Role"))
        .collect();
    for role in key_roles(&t) {
        assert!(
            function_roles.contains(&role),
            "{role} is no function's role"
        );
    }
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
    // The functions that use the database: all but the custom resources' own, and the
    // migrations themselves (which cfn-responder invokes).
    let ws = Workspace::load().unwrap();
    let Value::Mapping(resources) = &t["Resources"] else {
        panic!("Resources")
    };
    let custom_resources: BTreeSet<String> = resources
        .values()
        .filter(|r| {
            r["Type"]
                .as_str()
                .is_some_and(|k| k.starts_with("Custom::"))
        })
        .filter_map(|r| get_att_arn(&r["Properties"]["ServiceToken"]))
        .collect();
    assert_eq!(
        custom_resources,
        BTreeSet::from(["CfnResponderFunction".into(), "PoolTriggerFunction".into()])
    );
    let database_functions: Vec<String> = functions(&ws)
        .into_iter()
        .map(|(f, _)| f)
        .filter(|f| !custom_resources.contains(f) && f != "SchemaMigrationsFunction")
        .collect();
    assert!(database_functions.len() >= 5, "{database_functions:?}");
    for function in &database_functions {
        assert!(
            depends_on(&t["Resources"][function]).contains(&"SchemaMigrations".to_owned()),
            "{function} must depend on SchemaMigrations"
        );
    }
    let m = &t["Resources"]["SchemaMigrations"];
    assert_eq!(m["Type"].as_str(), Some("Custom::SchemaMigrations"));
    assert_eq!(
        get_att_arn(&m["Properties"]["ServiceToken"]).as_deref(),
        Some("CfnResponderFunction")
    );
    let responder = &t["Resources"]["CfnResponderFunction"]["Properties"];
    assert_eq!(
        get_att_arn(&responder["Environment"]["Variables"]["TARGET_FUNCTION_ARN"]).as_deref(),
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
    // The function serves the created pool too (its CreatedPoolTriggers, see
    // template_pool_triggers.rs): it exists in both layouts, with the sign-up sync.
    assert_eq!(
        t["Resources"]["PoolTriggerFunction"]["Condition"].as_str(),
        Some("SignUpSync")
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
    // template::the_sms_role_is_passable_only_when_named_and_only_to_cognito).
    let (key, statements): (Vec<Value>, Vec<Value>) = all_statements()
        .into_iter()
        .filter(|(owner, _)| owner == "PoolTriggerFunction")
        .filter(|(_, s)| strings(&s["Action"]) != ["iam:PassRole"])
        .map(|(_, s)| s)
        .partition(|s| strings(&s["Action"]) == ["secretsmanager:GetSecretValue"]);
    assert_eq!(statements.len(), 1, "{statements:?}");
    // And its record key, which signs the physical ids (pool_trigger_planted.rs): the one
    // secret it may read, generated by the stack with the function, passed to it by ARN.
    assert_eq!(key.len(), 1, "{key:?}");
    assert!(is_ref_to(&key[0]["Resource"], "PoolTriggerRecordKey"));
    let secret = &t["Resources"]["PoolTriggerRecordKey"];
    assert_eq!(secret["Type"].as_str(), Some("AWS::SecretsManager::Secret"));
    assert_eq!(secret["Condition"].as_str(), Some("SignUpSync"));
    let generated = &secret["Properties"]["GenerateSecretString"];
    assert!(
        generated["PasswordLength"].as_u64() >= Some(32),
        "{generated:?}"
    );
    assert!(
        generated.get("SecretStringTemplate").is_none(),
        "the whole string is the key"
    );
    assert!(is_ref_to(
        &t["Resources"]["PoolTriggerFunction"]["Properties"]["Environment"]["Variables"]["RECORD_KEY_SECRET_ARN"],
        "PoolTriggerRecordKey"
    ));
    assert_eq!(
        strings(&statements[0]["Action"]),
        ["cognito-idp:DescribeUserPool", "cognito-idp:UpdateUserPool"]
    );
    // The one pool of the layout: the created pool, or the existing one named.
    let Some((tag, branches)) = tagged(&statements[0]["Resource"]) else {
        panic!("{:?}", statements[0]["Resource"])
    };
    assert_eq!(tag, "If");
    assert_eq!(untag(&branches[0]).as_str(), Some("CreatePool"));
    assert_eq!(get_att_arn(&branches[1]).as_deref(), Some("UserPool"));
    assert_eq!(
        strings(&branches[2]),
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
