//! The workspace's shape, as cargo resolves it: function crates are leaves (what two functions
//! share lives in a library beside them), and the sign-up trigger carries no SDK it never
//! calls. And the files' shape: no grab-bag source or test file.

use harness::workspace::{Workspace, feature_differences, resolved_features};

#[test]
fn no_function_crate_depends_on_another() {
    let ws = Workspace::load().unwrap();
    let functions = ws.functions();
    assert_eq!(
        functions,
        [
            "cfn-responder",
            "drift-check",
            "pool-trigger",
            "post-confirmation",
            "pre-sign-up",
            "schema-migrations",
            "sg-ip-update",
            "sign-in-guard"
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

/// The most lines a `.rs` file under a `src/` folder may have: past it, a file holds more than
/// one concept (issue 31).
const MAX_SOURCE_LINES: usize = 450;

/// The most lines a file under `tests/tests/` may have: past it, split it by topic.
const MAX_TEST_LINES: usize = 800;

/// The most lines `path` (relative to the repository) may have, or `None` for no limit.
fn line_limit(path: &str) -> Option<usize> {
    if path.starts_with("tests/tests/") {
        Some(MAX_TEST_LINES)
    } else if path.ends_with(".rs") && (path.starts_with("src/") || path.contains("/src/")) {
        Some(MAX_SOURCE_LINES)
    } else {
        None
    }
}

/// Each of `files` (path, line count) longer than its limit: "path: N lines, over M".
fn too_long(files: &[(String, usize)]) -> Vec<String> {
    files
        .iter()
        .filter_map(|(path, lines)| {
            let limit = line_limit(path)?;
            (*lines > limit).then(|| format!("{path}: {lines} lines, over {limit}"))
        })
        .collect()
}

/// Every file git knows of (tracked, or new and not ignored, so that a file not yet added is
/// held to the limit too) with a limit, and its line count. A tracked file deleted in the work
/// tree is left out.
fn line_counts() -> Vec<(String, usize)> {
    let root = harness::stack::repo_root();
    let out = std::process::Command::new("git")
        .args(["ls-files", "--cached", "--others", "--exclude-standard"])
        .current_dir(&root)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git ls-files: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|path| line_limit(path).is_some())
        .filter_map(|path| {
            let text = std::fs::read_to_string(root.join(path)).ok()?;
            Some((path.to_owned(), text.lines().count()))
        })
        .collect()
}

#[test]
fn no_source_file_is_over_450_lines_and_no_test_file_over_800() {
    let files = line_counts();
    for known in ["shared/src/lib.rs", "tests/tests/layout.rs"] {
        assert!(
            files.iter().any(|(path, _)| path == known),
            "{known} was not among the files read: {} read",
            files.len()
        );
    }
    assert_eq!(too_long(&files), Vec::<String>::new());
}

#[test]
fn the_length_check_names_each_file_over_its_limit_and_its_count() {
    let files: Vec<(String, usize)> = [
        ("shared/src/lib.rs", 450),
        ("functions/drift-check/src/rules_check.rs", 451),
        ("bench/src/bin/echo.rs", 900),
        ("tests/tests/common/sg.rs", 800),
        ("tests/tests/template.rs", 1428),
        ("fuzz/fuzz_targets/events.rs", 5000),
        ("README.md", 5000),
    ]
    .into_iter()
    .map(|(path, lines)| (path.to_owned(), lines))
    .collect();
    assert_eq!(
        too_long(&files),
        [
            "functions/drift-check/src/rules_check.rs: 451 lines, over 450",
            "bench/src/bin/echo.rs: 900 lines, over 450",
            "tests/tests/template.rs: 1428 lines, over 800",
        ]
    );
}
