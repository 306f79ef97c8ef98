//! The README's first command, `scripts/run-local`, as a newcomer runs it: on a stack of its
//! own, every check of its summary passes and it exits 0; with one check planted to fail, the
//! summary shows that ✗ and it exits non-zero, the log still named.

use std::{path::Path, process::Command};

use harness::stack::repo_root;

/// Runs the script; its exit code and what it printed.
fn run_local(stack: &Path, log: &Path, plant: Option<&str>) -> (Option<i32>, String) {
    let mut cmd = Command::new(repo_root().join("scripts/run-local"));
    cmd.env("STACK_DIR", stack).env("RUN_LOCAL_LOG", log);
    if let Some(check) = plant {
        cmd.env("RUN_LOCAL_PLANT_FAILURE", check);
    }
    let out = cmd.output().expect("scripts/run-local runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), text)
}

/// The summary's rows: (check, mark).
fn rows(printed: &str) -> Vec<(String, String)> {
    printed
        .lines()
        .filter(|l| l.ends_with('✓') || l.ends_with('✗'))
        .filter(|l| l.contains(" | "))
        .map(|l| {
            let cells: Vec<&str> = l.split(" | ").map(str::trim).collect();
            (cells[0].to_owned(), cells[cells.len() - 1].to_owned())
        })
        .collect()
}

#[test]
fn run_local_passes_every_check_and_a_planted_failure_fails_it() {
    let dir = std::env::temp_dir().join(format!("run-local-{}", uuid::Uuid::new_v4().simple()));
    let (stack, log) = (dir.join("stack"), dir.join("run-local.log"));

    let (code, printed) = run_local(&stack, &log, None);
    let all = rows(&printed);
    let stop = |printed: &str| {
        let _ = Command::new(repo_root().join("scripts/stack"))
            .arg("down")
            .env("STACK_DIR", &stack)
            .output();
        printed.to_owned()
    };
    if code != Some(0) {
        panic!("run-local failed: {}", stop(&printed));
    }
    assert!(all.len() >= 11, "{printed}");
    assert!(all.iter().all(|(_, mark)| mark == "✓"), "{printed}");
    for function in [
        "post-confirmation",
        "pre-sign-up",
        "sg-ip-update",
        "drift-check",
    ] {
        assert!(
            all.iter().any(|(c, _)| c.starts_with(function)),
            "{function}: {printed}"
        );
    }
    assert!(printed.contains(&log.display().to_string()), "{printed}");
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("=== migrations")
    );

    let (code, printed) = run_local(&stack, &log, Some("sg-ip-update row"));
    let planted = rows(&printed);
    stop(&printed);
    assert_eq!(code, Some(1), "{printed}");
    let failed: Vec<&str> = planted
        .iter()
        .filter(|(_, mark)| mark == "✗")
        .map(|(c, _)| c.as_str())
        .collect();
    assert_eq!(failed, ["sg-ip-update row"], "{printed}");
    assert!(printed.contains("run-local: FAILED"), "{printed}");
    assert!(printed.contains(&log.display().to_string()), "{printed}");
    std::fs::remove_dir_all(&dir).ok();
}
