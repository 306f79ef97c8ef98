//! The workspace's shape, as cargo resolves it: function crates are leaves (what two functions
//! share lives in a library beside them), and the sign-up trigger carries no SDK it never
//! calls.

use harness::workspace::Workspace;

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
