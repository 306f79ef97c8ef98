//! The workspace as cargo resolves it (`cargo metadata`): which crates each function is built
//! from, for the tests that check the layout and derive IAM grants from the code.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    process::Command,
};

use serde_json::Value;

use crate::stack::repo_root;

/// The resolved dependency graph, normal (non-dev, non-build) dependencies only.
#[derive(Debug)]
pub struct Workspace {
    /// Package name to the names of its normal dependencies.
    deps: BTreeMap<String, BTreeSet<String>>,
    /// Workspace members: package name to the folder holding its Cargo.toml.
    members: BTreeMap<String, PathBuf>,
}

impl Workspace {
    /// Runs `cargo metadata` on the repository, for this machine's platform (the functions'
    /// Linux target resolves the same crates, and other platforms' crates need not be here).
    pub fn load() -> anyhow::Result<Self> {
        let rustc = Command::new("rustc").arg("-vV").output()?;
        let host = String::from_utf8_lossy(&rustc.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
            .ok_or_else(|| anyhow::anyhow!("rustc -vV names no host"))?;
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let out = Command::new(cargo)
            .args([
                "metadata",
                "--format-version",
                "1",
                "--filter-platform",
                &host,
            ])
            .current_dir(repo_root())
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "cargo metadata: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let meta: Value = serde_json::from_slice(&out.stdout)?;
        let name_of: BTreeMap<&str, &str> = meta["packages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| Some((p["id"].as_str()?, p["name"].as_str()?)))
            .collect();
        let member_ids: BTreeSet<&str> = meta["workspace_members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let members = meta["packages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["id"].as_str().is_some_and(|id| member_ids.contains(id)))
            .filter_map(|p| {
                let dir = PathBuf::from(p["manifest_path"].as_str()?)
                    .parent()?
                    .to_owned();
                Some((p["name"].as_str()?.to_owned(), dir))
            })
            .collect();
        let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for node in meta["resolve"]["nodes"].as_array().into_iter().flatten() {
            let Some(name) = node["id"].as_str().and_then(|id| name_of.get(id)) else {
                continue;
            };
            let normal = node["deps"].as_array().into_iter().flatten().filter(|d| {
                d["dep_kinds"]
                    .as_array()
                    .is_some_and(|kinds| kinds.iter().any(|k| k["kind"].is_null()))
            });
            let entry = deps.entry((*name).to_owned()).or_default();
            for d in normal {
                if let Some(dep) = d["pkg"].as_str().and_then(|id| name_of.get(id)) {
                    entry.insert((*dep).to_owned());
                }
            }
        }
        Ok(Self { deps, members })
    }

    /// Every package `name` is built from (itself included), following normal dependencies.
    pub fn closure(&self, name: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![name.to_owned()];
        while let Some(n) = todo.pop() {
            if seen.insert(n.clone()) {
                todo.extend(self.deps.get(&n).into_iter().flatten().cloned());
            }
        }
        seen
    }

    /// The workspace crates `name` is built from (itself included).
    pub fn local_closure(&self, name: &str) -> BTreeSet<String> {
        self.closure(name)
            .into_iter()
            .filter(|n| self.members.contains_key(n))
            .collect()
    }

    /// The direct normal dependencies of `name`.
    pub fn direct_deps(&self, name: &str) -> BTreeSet<String> {
        self.deps.get(name).cloned().unwrap_or_default()
    }

    /// The folder of a workspace crate, relative to the repository root.
    pub fn dir(&self, name: &str) -> Option<PathBuf> {
        let dir = self.members.get(name)?;
        Some(dir.strip_prefix(repo_root()).unwrap_or(dir).to_owned())
    }

    /// The workspace crates under `functions/`.
    pub fn functions(&self) -> Vec<String> {
        self.members
            .iter()
            .filter(|(_, dir)| dir.parent().is_some_and(|p| p.ends_with("functions")))
            .map(|(name, _)| name.clone())
            .collect()
    }
}

/// What one package's own build resolves for `target`, as `cargo build -p package` (and so
/// `cargo lambda build --bin` in its folder, and `sam build`) would: each dependency with the
/// sets of features it is compiled with (two sets when it is built for the host, as a build
/// script or proc-macro dependency, as well as for the target).
pub fn resolved_features(
    package: &str,
    target: &str,
) -> anyhow::Result<BTreeMap<String, BTreeSet<String>>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args(["tree", "--quiet", "--offline", "-p", package])
        .args(["-e", "normal,build", "--target", target])
        .args(["--prefix", "none", "--format", "{p}|{f}"])
        .current_dir(repo_root())
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "cargo tree -p {package}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut resolved: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some((pkg, features)) = line.split_once('|') else {
            continue;
        };
        // `{p}` is "name vX.Y.Z", with " (proc-macro)" or a path for some; the features of a
        // repeated entry (" (*)") are the same as its first.
        let pkg = pkg.split(" (").next().unwrap_or(pkg).trim();
        let features = features.trim_end_matches(" (*)").trim();
        resolved
            .entry(pkg.to_owned())
            .or_default()
            .insert(features.to_owned());
    }
    Ok(resolved)
}

/// The packages two resolutions share but compile with different features: each such
/// package, and every crate built on top of it, compiles once for each.
pub fn feature_differences(
    a: &BTreeMap<String, BTreeSet<String>>,
    b: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<String> {
    a.iter()
        .filter_map(|(pkg, fa)| {
            let fb = b.get(pkg)?;
            (fa != fb).then(|| format!("{pkg}: {fa:?} against {fb:?}"))
        })
        .collect()
}
