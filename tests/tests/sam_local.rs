//! What `sam local invoke` needs from the repository: `env.json` sets only variables the
//! template declares (SAM drops the others without a word), the CA layer is written in a form
//! SAM local can read, the architecture is a parameter (arm64 for deploys, x86_64 for local
//! runs), and the raw EventBridge Scheduler sample is what the schedule delivers.
//! `scripts/sam-local` runs the functions themselves under SAM.

use std::collections::{BTreeMap, BTreeSet};

use harness::stack::repo_root;
use serde_norway::Value;

mod common;
use common::{template, untag};

fn variable_names(v: &Value) -> BTreeSet<String> {
    match untag(&v["Environment"]["Variables"]) {
        Value::Mapping(m) => m
            .keys()
            .filter_map(|k| k.as_str().map(str::to_owned))
            .collect(),
        _ => BTreeSet::new(),
    }
}

/// Each function of the template and the variables it declares (its own and the globals).
fn declared(t: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let globals = variable_names(&t["Globals"]["Function"]);
    let Value::Mapping(resources) = &t["Resources"] else {
        panic!("no Resources")
    };
    resources
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|(name, r)| {
            let mut vars = globals.clone();
            vars.extend(variable_names(&r["Properties"]));
            (name.as_str().unwrap_or_default().to_owned(), vars)
        })
        .collect()
}

/// What in `env` SAM would drop: functions the template does not have, and variables the
/// function does not declare.
fn undeclared(
    env: &serde_json::Value,
    declared: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (function, vars) in env.as_object().into_iter().flatten() {
        // SAM's "Parameters" key sets variables of every function.
        if function == "Parameters" {
            continue;
        }
        let Some(known) = declared.get(function) else {
            out.push(format!("{function}: no such function in template.yaml"));
            continue;
        };
        for var in vars.as_object().into_iter().flatten().map(|(k, _)| k) {
            if !known.contains(var) {
                out.push(format!("{function}: {var}"));
            }
        }
    }
    out
}

fn env_json() -> serde_json::Value {
    let text = std::fs::read_to_string(repo_root().join("env.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn env_json_sets_only_variables_the_template_declares() {
    let declared = declared(&template());
    assert!(declared.len() >= 3, "the functions were read: {declared:?}");
    let env = env_json();
    assert!(
        env.as_object().is_some_and(|o| o.len() >= 3),
        "env.json names the functions: {env}"
    );
    assert_eq!(undeclared(&env, &declared), Vec::<String>::new());

    // The check fires on what SAM would drop: a DATABASE_URL no function declares, and a
    // function the template does not have.
    let mut planted = env.clone();
    planted["PostConfirmationFunction"]["DATABASE_URL"] = "postgres://app@db/app".into();
    planted["RenamedFunction"] = serde_json::json!({"DB_SSLMODE": "require"});
    assert_eq!(
        undeclared(&planted, &declared),
        [
            "PostConfirmationFunction: DATABASE_URL",
            "RenamedFunction: no such function in template.yaml"
        ]
    );
}

/// `sam local invoke` stops at a `Layers` that is a whole `!If` ("Fn::If is an Invalid Layer
/// Arn") and skips a list item it cannot resolve; CloudFormation takes both.
#[test]
fn the_ca_layer_is_a_list_sam_local_can_read() {
    let t = template();
    let layers = &t["Globals"]["Function"]["Layers"];
    assert!(
        matches!(layers, Value::Sequence(_)),
        "Layers is a list, not an intrinsic: {layers:?}"
    );
    assert!(
        format!("{layers:?}").contains("CaBundleLayerArn"),
        "{layers:?}"
    );
}

#[test]
fn deploys_build_arm64_and_local_runs_may_choose_x86_64() {
    let t = template();
    let p = &t["Parameters"]["Architecture"];
    assert_eq!(p["Default"].as_str(), Some("arm64"));
    let allowed: Vec<&str> = p["AllowedValues"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(allowed, ["arm64", "x86_64"]);
    let arch = format!("{:?}", t["Globals"]["Function"]["Architectures"]);
    assert!(
        arch.contains("Ref") && arch.contains("Architecture"),
        "{arch}"
    );
}

/// EventBridge Scheduler delivers the schedule's `Input` as it is: the sample in `events/` is
/// that input for `DriftMode=report`. The schedule starts drift-check's lister, which passes
/// the mode and the trigger on to drift-check's run.
#[test]
fn the_scheduler_sample_is_what_the_schedule_delivers() {
    let t = template();
    let input = &t["Resources"]["DriftCheckListerFunction"]["Properties"]["Events"]["Schedule"];
    assert_eq!(input["Type"].as_str(), Some("ScheduleV2"));
    let Some(text) = untag(&input["Properties"]["Input"]).as_str() else {
        panic!("the schedule's Input is a string: {input:?}")
    };
    let delivered: serde_json::Value =
        serde_json::from_str(&text.replace("${DriftMode}", "report")).unwrap();
    assert_eq!(delivered, harness::event("drift-check-schedule-v2.json"));
}

/// Runs `scripts/require-sam` with a stand-in `sam` that reports `version`, and, when given,
/// an `aws_lambda_builders` of `builders` first on python3's path. Its exit status and stderr.
fn require_sam(version: &str, builders: Option<&str>) -> (bool, String) {
    let dir = std::env::temp_dir().join(format!(
        "require-sam-{}-{version}-{}",
        std::process::id(),
        builders.unwrap_or("real")
    ));
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let sam = bin.join("sam");
    std::fs::write(
        &sam,
        format!("#!/usr/bin/env bash\necho 'SAM CLI, version {version}'\n"),
    )
    .unwrap();
    std::fs::set_permissions(&sam, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut cmd = std::process::Command::new(repo_root().join("scripts/require-sam"));
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    cmd.env("PATH", path);
    if let Some(v) = builders {
        let module = dir.join("py/aws_lambda_builders");
        std::fs::create_dir_all(&module).unwrap();
        std::fs::write(module.join("__init__.py"), format!("__version__ = '{v}'\n")).unwrap();
        cmd.env("PYTHONPATH", dir.join("py"));
    }
    let out = cmd.output().unwrap();
    std::fs::remove_dir_all(&dir).ok();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn scripts_refuse_a_sam_cli_older_than_the_template_needs_and_say_what_to_install() {
    // 1.159.1 cannot expand the template's Fn::ForEach locally; 1.165.0 builds each function
    // in a target dir of its own.
    for old in ["1.159.1", "1.165.0"] {
        let (ok, stderr) = require_sam(old, None);
        assert!(!ok, "SAM CLI {old} was accepted");
        assert!(
            stderr.contains(&format!("SAM CLI {old} is too old"))
                && stderr.contains("pip install --upgrade 'aws-sam-cli>=1.166.0'"),
            "{stderr}"
        );
    }
    let (ok, stderr) = require_sam("1.170.0", Some("1.64.0"));
    assert!(!ok, "aws-lambda-builders 1.64.0 was accepted");
    assert!(
        stderr.contains("aws-lambda-builders 1.64.0 is too old"),
        "{stderr}"
    );
    for new in ["1.166.0", "1.170.0", "1.200.3"] {
        let (ok, stderr) = require_sam(new, Some("1.67.0"));
        assert!(ok, "SAM CLI {new} was refused: {stderr}");
    }
}
