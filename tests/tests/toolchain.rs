//! The toolchain and the build settings around the code: one `Architecture` that `sam build`
//! and `sam deploy` both read (samconfig.toml), the tool versions stated once (toolchain.env)
//! and installed only into the project's virtual environment, the arm64 build's ELF check,
//! and the prerequisites check naming what is missing or too old.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
};

use harness::stack::repo_root;

mod common;
use common::{project_python, template};

/// samconfig.toml as `section -> [(key, value)]`, comments dropped (a line reader: the file
/// is flat tables of `key = value`, and the workspace has no TOML parser).
fn samconfig_sections(text: &str) -> BTreeMap<String, Vec<(String, String)>> {
    let mut sections = BTreeMap::<String, Vec<(String, String)>>::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.trim().to_owned();
            sections.entry(current.clone()).or_default();
        } else if let Some((k, v)) = line.split_once('=') {
            let v = v.trim().trim_matches('"').to_owned();
            sections
                .entry(current.clone())
                .or_default()
                .push((k.trim().to_owned(), v));
        }
    }
    sections
}

/// The architecture samconfig.toml's `default` environment builds and deploys, or what is
/// wrong. SAM reads `[default.global.parameters]` for every command but takes a key of the
/// command's own section instead, whole: a `parameter_overrides` in `[default.deploy.parameters]`
/// (where `sam deploy --guided` saves its answers) or `[default.build.parameters]` replaces
/// the global one for that command, its Architecture (or the lack of one) included.
fn one_architecture(text: &str) -> Result<String, String> {
    let sections = samconfig_sections(text);
    let shadowing: Vec<&String> = sections
        .iter()
        .filter(|(name, _)| name.starts_with("default.") && *name != "default.global.parameters")
        .filter(|(_, settings)| settings.iter().any(|(k, _)| k == "parameter_overrides"))
        .map(|(name, _)| name)
        .collect();
    if !shadowing.is_empty() {
        return Err(format!(
            "parameter_overrides in {shadowing:?}: that command would not read the global \
             Architecture; move the line to [default.global.parameters]"
        ));
    }
    let overrides: Vec<&String> = sections
        .get("default.global.parameters")
        .into_iter()
        .flatten()
        .filter(|(k, _)| k == "parameter_overrides")
        .map(|(_, v)| v)
        .collect();
    let [overrides] = overrides[..] else {
        return Err(format!(
            "[default.global.parameters] holds {} parameter_overrides, not one",
            overrides.len()
        ));
    };
    let architectures: Vec<&str> = overrides
        .split_whitespace()
        .filter_map(|p| p.strip_prefix("Architecture="))
        .map(|a| a.trim_matches(|c| c == '"' || c == '\''))
        .collect();
    match architectures[..] {
        [one] => Ok(one.to_owned()),
        _ => Err(format!(
            "Architecture is given {} times in `{overrides}`, not once",
            architectures.len()
        )),
    }
}

fn samconfig() -> String {
    std::fs::read_to_string(repo_root().join("samconfig.toml")).unwrap()
}

/// samconfig.toml with `lines` added to its `section`, as `sam deploy --guided` would.
fn planted(section: &str, lines: &str) -> String {
    let header = format!("[{section}]\n");
    let text = samconfig();
    assert!(text.contains(&header), "samconfig.toml has no {header}");
    text.replacen(&header, &format!("{header}{lines}\n"), 1)
}

#[test]
fn samconfig_sets_the_architecture_once_where_build_and_deploy_both_read_it() {
    let arch = one_architecture(&samconfig()).unwrap_or_else(|e| panic!("samconfig.toml: {e}"));
    let allowed = format!(
        "{:?}",
        template()["Parameters"]["Architecture"]["AllowedValues"]
    );
    assert!(
        allowed.contains(&format!("\"{arch}\"")),
        "{arch} not in {allowed}"
    );
    assert_eq!(arch, "arm64", "what AWS runs by default (Graviton)");

    // The check fires on what `sam deploy --guided` saves: a deploy-only Architecture ...
    let guided = planted(
        "default.deploy.parameters",
        "parameter_overrides = \"Architecture=\\\"x86_64\\\" DbName=\\\"app\\\"\"",
    );
    let err = one_architecture(&guided).unwrap_err();
    assert!(err.contains("default.deploy.parameters"), "{err}");
    // ... on a deploy-only list without one (deploy would take the template's default) ...
    let silent = planted(
        "default.deploy.parameters",
        "parameter_overrides = \"DbName=app\"",
    );
    assert!(one_architecture(&silent).is_err());
    // ... and on a global list without it, or with it twice.
    for bad in ["DbName=app", "Architecture=arm64 Architecture=x86_64"] {
        let text = samconfig().replace("Architecture=arm64", bad);
        assert!(one_architecture(&text).is_err(), "{bad}");
    }
}

/// The `parameter_overrides` the SAM CLI's own samconfig reader gives `command` (`build`,
/// `deploy`) for the `default` environment of `samconfig`.
fn sam_reads(samconfig: &Path, command: &str) -> String {
    let out = Command::new(project_python())
        .args(["-c", SAM_READS, command])
        .arg(samconfig)
        .env("SAM_CLI_TELEMETRY", "0")
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "the SAM CLI's samconfig reader (scripts/python-env installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

const SAM_READS: &str = "
import os, sys
from samcli.lib.config.samconfig import SamConfig
path = sys.argv[2]
config = SamConfig(os.path.dirname(path), os.path.basename(path))
print(config.get_all([sys.argv[1]], 'parameters', 'default').get('parameter_overrides', ''))
";

#[test]
fn the_sam_cli_reads_one_architecture_for_build_and_deploy() {
    let real = repo_root().join("samconfig.toml");
    let (build, deploy) = (sam_reads(&real, "build"), sam_reads(&real, "deploy"));
    assert_eq!(build, deploy);
    assert!(build.contains("Architecture=arm64"), "{build}");

    // What the line check above assumes of SAM: a deploy-only list wins, whole, for deploy.
    let dir = std::env::temp_dir().join(format!("samconfig-arch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("samconfig.toml");
    let text = planted(
        "default.deploy.parameters",
        "parameter_overrides = \"Architecture=x86_64\"",
    );
    std::fs::write(&bad, text).unwrap();
    let (build, deploy) = (sam_reads(&bad, "build"), sam_reads(&bad, "deploy"));
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        (build.as_str(), deploy.as_str()),
        ("Architecture=arm64", "Architecture=x86_64")
    );
}

/// toolchain.env's `KEY=VALUE` lines.
fn toolchain() -> BTreeMap<String, String> {
    std::fs::read_to_string(repo_root().join("toolchain.env"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// Each line of `text` (named `file`) that runs a pip install into anything but the project's
/// virtual environment.
fn pip_outside_the_venv(file: &str, text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter(|l| l.contains("-m pip install") && !l.contains("\"$venv/bin/python\" -m pip"))
        .map(|l| format!("{file}: {}", l.trim()))
        .collect()
}

#[test]
fn the_python_tools_are_pinned_once_and_installed_only_into_the_projects_venv() {
    let pins = toolchain();
    for key in [
        "CARGO_LAMBDA_VERSION",
        "ZIGLANG_VERSION",
        "SAM_CLI_VERSION",
        "CFN_LINT_VERSION",
        "MOTO_VERSION",
    ] {
        let v = pins
            .get(key)
            .unwrap_or_else(|| panic!("toolchain.env has no {key}"));
        assert!(
            v.split('.').count() >= 2 && v.split('.').all(|n| n.parse::<u32>().is_ok()),
            "{key}={v}: an exact version"
        );
    }
    let python_env = std::fs::read_to_string(repo_root().join("scripts/python-env")).unwrap();
    for pin in [
        "==$CARGO_LAMBDA_VERSION",
        "==$ZIGLANG_VERSION",
        "==$SAM_CLI_VERSION",
    ] {
        assert!(
            python_env.contains(pin),
            "scripts/python-env installs {pin}"
        );
    }

    let mut found = Vec::new();
    let scripts = std::fs::read_dir(repo_root().join("scripts")).unwrap();
    let mut files: Vec<PathBuf> = scripts.map(|e| e.unwrap().path()).collect();
    files.push(repo_root().join(".ci/run"));
    for path in files {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let name = path
            .strip_prefix(repo_root())
            .unwrap()
            .display()
            .to_string();
        found.extend(pip_outside_the_venv(&name, &text));
    }
    assert_eq!(
        found,
        Vec::<String>::new(),
        "pip outside the project's venv"
    );
    // The check fires on what .ci/run did before.
    let old =
        "if ! command -v cfn-lint >/dev/null; then\n    python3 -m pip install -q cfn-lint\nfi";
    assert_eq!(pip_outside_the_venv(".ci/run", old).len(), 1);
}

/// `scripts/build-arm64 --check-elf` on `files`: whether it accepted them, and its stderr.
fn check_elf(files: &[&Path]) -> (bool, String) {
    let out = Command::new(repo_root().join("scripts/build-arm64"))
        .arg("--check-elf")
        .args(files)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The first 64 bytes of a 64-bit little-endian ELF executable for `machine`.
fn elf_header(machine: u16) -> Vec<u8> {
    let mut head = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
    head.resize(16, 0);
    head.extend_from_slice(&2u16.to_le_bytes());
    head.extend_from_slice(&machine.to_le_bytes());
    head.resize(64, 0);
    head
}

#[test]
fn the_arm64_build_check_accepts_only_aarch64_binaries() {
    let dir = std::env::temp_dir().join(format!("elf-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (arm, x86, text) = (dir.join("arm"), dir.join("x86"), dir.join("text"));
    std::fs::write(&arm, elf_header(183)).unwrap();
    std::fs::write(&x86, elf_header(62)).unwrap();
    std::fs::write(&text, "#!/bin/sh\n").unwrap();

    let (ok, stderr) = check_elf(&[&arm]);
    assert!(ok, "{stderr}");
    let (ok, stderr) = check_elf(&[&arm, &x86, &text]);
    assert!(!ok);
    assert!(
        stderr.contains("x86: e_machine 62 (x86_64), not 183 (aarch64)"),
        "{stderr}"
    );
    assert!(stderr.contains("text: not an ELF file"), "{stderr}");
    assert!(!stderr.contains("arm:"), "{stderr}");
    // A real binary of this machine: this test, as cargo built it.
    let me = std::env::current_exe().unwrap();
    assert_eq!(check_elf(&[&me]).0, cfg!(target_arch = "aarch64"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_prerequisites_check_names_a_sam_cli_older_than_the_floor() {
    let dir = std::env::temp_dir().join(format!("prereq-{}", std::process::id()));
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let sam = bin.join("sam");
    std::fs::write(&sam, "#!/bin/sh\necho 'SAM CLI, version 1.150.0'\n").unwrap();
    std::fs::set_permissions(&sam, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(repo_root().join("scripts/check-prerequisites"))
        .env("PATH", path)
        // No project venv: the stand-in is the SAM CLI it finds.
        .env("DB_SYNC_VENV", dir.join("no-venv"))
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    let floor = &toolchain()["SAM_CLI_MIN"];
    let line = stdout
        .lines()
        .find(|l| l.starts_with("SAM CLI"))
        .unwrap_or_else(|| panic!("no SAM CLI line: {stdout}"));
    assert!(
        line.contains("1.150.0")
            && line.contains(&format!(">= {floor}"))
            && line.contains("too old"),
        "{line}"
    );
    let rustc = stdout.lines().find(|l| l.starts_with("rustc")).unwrap();
    assert!(rustc.ends_with(" ok"), "{rustc}");
}
