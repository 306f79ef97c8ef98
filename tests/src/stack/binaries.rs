//! What a test runs: the function binaries, built once per test process, and the sample
//! events in `events/`.

use std::{path::PathBuf, process::Command, sync::OnceLock};

use super::repo_root;

/// Every function crate under `functions/`, which [`function_binary`] builds
/// (`layout::every_function_crate_is_built_for_the_tests` keeps it complete).
pub const FUNCTION_PACKAGES: [&str; 8] = [
    "cfn-responder",
    "drift-check",
    "pool-trigger",
    "post-confirmation",
    "pre-sign-up",
    "schema-migrations",
    "sg-ip-update",
    "sign-in-guard",
];

/// The path of a function's debug binary, built (or found up to date) once per test process.
pub fn function_binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let status = Command::new(cargo)
            .current_dir(repo_root())
            .args(["build", "--quiet", "--bins"])
            .args(FUNCTION_PACKAGES.iter().flat_map(|p| ["-p", p]))
            .status()
            .map_err(|e| e.to_string())?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("cargo build failed: {status}"))
        }
    });
    if let Err(e) = built {
        panic!("could not build the function binaries: {e}");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| repo_root().join("target"), PathBuf::from);
    target.join("debug").join(name)
}

/// An event from `events/`, the same files `sam local invoke -e` uses.
pub fn event(file: &str) -> serde_json::Value {
    let path = repo_root().join("events").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
