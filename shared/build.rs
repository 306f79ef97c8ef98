//! The migrations are embedded at compile time: rebuild when any of them changes. The newest
//! version is worked out here too, so a cold start that only checks the schema does not run
//! refinery's name parsing (a regex compiled at run time) to learn a number fixed at build.
use std::{env, fs, path::Path};

fn main() {
    println!("cargo:rerun-if-changed=../migrations");
    let mut latest = 0u32;
    walk(Path::new("../migrations"), &mut latest);
    let out = Path::new(&env::var("OUT_DIR").expect("OUT_DIR")).join("schema_version.rs");
    fs::write(
        out,
        format!("pub(super) const LATEST_VERSION: i32 = {latest};\n"),
    )
    .expect("write schema_version.rs");
}

/// Every migration below `dir`, as refinery finds them (it walks subfolders too): a name
/// `V<version>__<word characters>.sql` (or `.rs`). Any other file starting with `V` or `U` is
/// refused here, because refinery would skip it while this count would not, or the reverse.
fn walk(dir: &Path, latest: &mut u32) {
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let path = entry.expect("a migrations entry").path();
        if path.is_dir() {
            walk(&path, latest);
            continue;
        }
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if !name.starts_with(['V', 'U']) {
            continue;
        }
        let version = name
            .strip_prefix('V')
            .and_then(|rest| rest.split_once("__"))
            .and_then(|(version, rest)| {
                let (word, ext) = rest.rsplit_once('.')?;
                let word_ok =
                    !word.is_empty() && word.chars().all(|c| c.is_alphanumeric() || c == '_');
                (word_ok && matches!(ext, "sql" | "rs")).then_some(version)
            })
            .and_then(|version| version.parse::<u32>().ok())
            .unwrap_or_else(|| {
                panic!(
                    "{}: not a migration name this project uses (V<number>__<name>.sql)",
                    path.display()
                )
            });
        *latest = (*latest).max(version);
    }
}
