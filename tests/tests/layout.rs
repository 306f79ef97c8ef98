//! The workspace's shape, as cargo resolves it: function crates are leaves (what two functions
//! share lives in a library beside them), and the sign-up trigger carries no SDK it never
//! calls.

use harness::workspace::{Workspace, feature_differences, resolved_features};

#[test]
fn no_function_crate_depends_on_another() {
    let ws = Workspace::load().unwrap();
    let functions = ws.functions();
    assert_eq!(
        functions,
        [
            "drift-check",
            "pool-trigger",
            "post-confirmation",
            "pre-sign-up",
            "schema-migrations",
            "sg-ip-update"
        ],
        "the function crates under functions/"
    );
    for f in &functions {
        // The closure is followed through libraries: each function is built from shared.
        assert!(ws.closure(f).contains("shared"), "{f}");
        let others: Vec<String> = ws
            .closure(f)
            .into_iter()
            .filter(|c| c != f && functions.contains(c))
            .collect();
        assert!(
            others.is_empty(),
            "{f} is built from other functions: {others:?}"
        );
    }
}

#[test]
fn the_ingress_library_is_shared_by_the_two_functions_that_move_rules() {
    let ws = Workspace::load().unwrap();
    for f in ["sg-ip-update", "drift-check"] {
        assert!(ws.direct_deps(f).contains("ingress"), "{f}");
    }
    assert!(!ws.closure("post-confirmation").contains("ingress"));
}

#[test]
fn post_confirmation_carries_no_ec2_or_cognito_sdk() {
    let ws = Workspace::load().unwrap();
    let built_from = ws.closure("post-confirmation");
    for sdk in ["aws-sdk-ec2", "aws-sdk-cognitoidentityprovider"] {
        assert!(
            !built_from.contains(sdk),
            "post-confirmation pulls in {sdk}"
        );
    }
    // The check itself must be able to fire: drift-check does carry both.
    let drift = ws.closure("drift-check");
    assert!(drift.contains("aws-sdk-ec2") && drift.contains("aws-sdk-cognitoidentityprovider"));
}

/// The targets the functions are deployed for (the template's `Architecture`).
const LAMBDA_TARGETS: [&str; 2] = ["aarch64-unknown-linux-gnu", "x86_64-unknown-linux-gnu"];

#[test]
fn every_function_resolves_the_same_features_for_what_they_share() {
    // `sam build` builds one function per cargo run; a crate that two functions compile with
    // different features compiles twice, with everything built on top of it (aws-sdk-ec2
    // included). feature-union/Cargo.toml turns on the union for all of them.
    let functions = Workspace::load().unwrap().functions();
    for target in LAMBDA_TARGETS {
        let resolved: Vec<_> = functions
            .iter()
            .map(|f| (f, resolved_features(f, target).unwrap()))
            .collect();
        let (first, first_features) = &resolved[0];
        for (f, features) in &resolved[1..] {
            let differences = feature_differences(first_features, features);
            assert!(
                differences.is_empty(),
                "{first} and {f} resolve different features for {target} (add the missing \
                 ones to feature-union/Cargo.toml):\n{}",
                differences.join("\n")
            );
        }
    }
}

#[test]
fn the_feature_check_names_a_crate_built_with_more_features() {
    // The check must be able to fire: the test harness turns on hyper's `server`, which no
    // function may.
    let target = LAMBDA_TARGETS[1];
    let function = resolved_features("post-confirmation", target).unwrap();
    let harness = resolved_features("harness", target).unwrap();
    let differences = feature_differences(&function, &harness);
    assert!(
        differences
            .iter()
            .any(|d| d.starts_with("hyper v1.") && d.contains("server")),
        "{differences:?}"
    );
}

/// Each row of `shared/certs/README.md`'s table that names a file in `dir` and a SHA-256,
/// whose SHA-256 is not the file's: "file: recorded X, actual Y".
fn recorded_sha256_mismatches(readme: &str, dir: &std::path::Path) -> Vec<String> {
    let mut rows = 0;
    let mut wrong = Vec::new();
    for line in readme.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (Some(file), Some(recorded)) = (
            cells.get(1).map(|c| c.trim_matches('`')),
            cells.iter().rev().find_map(|c| {
                let c = c.trim_matches('`');
                (c.len() == 64 && c.chars().all(|ch| ch.is_ascii_hexdigit())).then_some(c)
            }),
        ) else {
            continue;
        };
        rows += 1;
        let out = std::process::Command::new("sha256sum")
            .arg(dir.join(file))
            .output()
            .expect("sha256sum runs");
        let actual = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap_or("(unreadable)")
            .to_owned();
        if actual != recorded {
            wrong.push(format!("{file}: recorded {recorded}, actual {actual}"));
        }
    }
    assert!(rows > 0, "no file with a SHA-256 in the table");
    wrong
}

#[test]
fn the_recorded_sha256_of_each_compiled_in_bundle_is_the_files() {
    let dir = harness::stack::repo_root().join("shared/certs");
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert_eq!(
        recorded_sha256_mismatches(&readme, &dir),
        Vec::<String>::new()
    );
    // The check fires: a recorded value one digit off.
    let line = readme
        .lines()
        .find(|l| l.starts_with("| `rds-ca-bundle.pem`"))
        .unwrap();
    let tampered = readme.replace(line, &line.replace("d1ffeaa3", "d1ffeaa4"));
    let wrong = recorded_sha256_mismatches(&tampered, &dir);
    assert_eq!(wrong.len(), 1, "{wrong:?}");
    assert!(
        wrong[0].starts_with("rds-ca-bundle.pem: recorded d1ffeaa4"),
        "{wrong:?}"
    );
}

/// A function crate the harness does not build is found only on a machine where an earlier
/// build left its binary behind.
#[test]
fn every_function_crate_is_built_for_the_tests() {
    let ws = Workspace::load().unwrap();
    assert_eq!(ws.functions(), harness::stack::FUNCTION_PACKAGES);
}
