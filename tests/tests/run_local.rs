//! The README's first command, `scripts/run-local`, as a newcomer runs it, on a stack of its own
//! (a private STACK_DIR under the temp dir, stopped and removed at the end): every check of its
//! summary passes, each function with events in `events/` has its rows, the log it names holds
//! every step's output, and it exits 0. Then the same again on that stack (a second run must
//! pass as well, so only the planted check may fail) with `RUN_LOCAL_PLANT_FAILURE`: that
//! check's row shows ✗, every other row ✓, the log is still named, and the exit code is not 0.
//! One test for both runs: each run starts services and builds, on a shared 2-core machine.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use harness::stack::repo_root;

/// The check the second run plants a failure in, as the summary names it.
const PLANTED: &str = "post-confirmation: users row";

/// A private stack and log; the stack stopped and the folder removed when dropped.
struct Private {
    dir: PathBuf,
}

impl Private {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("run-local-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        Self { dir }
    }
    fn stack(&self) -> PathBuf {
        self.dir.join("stack")
    }
    fn log(&self) -> PathBuf {
        self.dir.join("run-local.log")
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        let _ = Command::new(repo_root().join("scripts/stack"))
            .arg("down")
            .env("STACK_DIR", self.stack())
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What one run printed.
struct Run {
    code: Option<i32>,
    printed: String,
    /// The summary's rows: (check, expected, got, mark).
    rows: Vec<[String; 4]>,
}

fn run_local(private: &Private, plant: Option<&str>) -> Run {
    let mut cmd = Command::new(repo_root().join("scripts/run-local"));
    cmd.env("STACK_DIR", private.stack())
        .env("RUN_LOCAL_LOG", private.log())
        .env_remove("RUN_LOCAL_PLANT_FAILURE");
    if let Some(check) = plant {
        cmd.env("RUN_LOCAL_PLANT_FAILURE", check);
    }
    let out = cmd.output().expect("scripts/run-local runs");
    let printed =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let rows = printed
        .lines()
        .filter(|l| l.contains(" | ") && (l.ends_with(" ✓") || l.ends_with(" ✗")))
        .map(|l| {
            let cells: Vec<String> = l.split(" | ").map(|c| c.trim().to_owned()).collect();
            assert_eq!(cells.len(), 4, "a summary row of 4 cells: {l}");
            [0, 1, 2, 3].map(|i| cells[i].clone())
        })
        .collect();
    Run {
        code: out.status.code(),
        printed,
        rows,
    }
}

/// The functions under `functions/` that have events in `events/`: run-local invokes each.
fn functions_with_events() -> Vec<String> {
    let names = |dir: &str| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(repo_root().join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let events = names("events");
    names("functions")
        .into_iter()
        .filter(|f| {
            events
                .iter()
                .any(|e| e.starts_with(&format!("{f}.")) || e.starts_with(&format!("{f}-")))
        })
        .collect()
}

fn log_path_named(run: &Run, log: &Path) {
    let log = log.display().to_string();
    assert!(
        run.printed
            .contains(&format!("run-local: the full output goes to {log}")),
        "{}",
        run.printed
    );
    assert!(
        run.printed
            .contains(&format!("run-local: the full output is in {log}")),
        "{}",
        run.printed
    );
}

#[test]
fn run_local_passes_every_check_and_a_planted_failure_fails_it() {
    let private = Private::new();

    let first = run_local(&private, None);
    let printed = &first.printed;
    assert_eq!(first.code, Some(0), "{printed}");
    assert!(first.rows.len() >= 12, "{printed}");
    for [check, expected, got, mark] in &first.rows {
        assert_eq!(
            mark, "✓",
            "{check}: expected {expected}, got {got}\n{printed}"
        );
        assert_eq!(expected, got, "{printed}");
    }
    let functions = functions_with_events();
    assert!(functions.len() >= 4, "{functions:?}");
    for function in &functions {
        assert!(
            first
                .rows
                .iter()
                .any(|[check, ..]| check.starts_with(function.as_str())),
            "no summary row for {function}: {printed}"
        );
    }
    assert!(
        printed.contains("run-local: every check passed"),
        "{printed}"
    );
    log_path_named(&first, &private.log());
    let log = std::fs::read_to_string(private.log()).expect("the log run-local named");
    assert!(log.contains("=== migrations"), "{log}");
    for function in &functions {
        assert!(
            log.contains(&format!("--- {function} <- ")),
            "{function}'s invocations are not in the log"
        );
    }
    // The long output is in the log, not on the terminal.
    assert!(!printed.contains("response: {"), "{printed}");

    let planted = run_local(&private, Some(PLANTED));
    let printed = &planted.printed;
    assert!(
        planted.code.is_some_and(|c| c != 0),
        "exit {:?}: {printed}",
        planted.code
    );
    assert_eq!(planted.rows.len(), first.rows.len(), "{printed}");
    let failed: Vec<&[String; 4]> = planted.rows.iter().filter(|r| r[3] == "✗").collect();
    assert_eq!(failed.len(), 1, "{printed}");
    let [check, expected, got, _] = failed[0];
    assert_eq!(check, PLANTED, "{printed}");
    assert!(expected.starts_with("(planted failure)"), "{printed}");
    assert!(got.starts_with("1 row"), "{printed}");
    assert!(printed.contains("run-local: FAILED"), "{printed}");
    log_path_named(&planted, &private.log());
    assert!(private.log().is_file());
}
