//! The migrations are embedded at compile time: rebuild when any of them changes. The newest
//! version is worked out here too, so a cold start that only checks the schema does not run
//! refinery's name parsing (a regex compiled at run time) to learn a number fixed at build.
use std::{env, fs, path::Path};

fn main() {
    println!("cargo:rerun-if-changed=../migrations");
    let mut latest = 0u32;
    for entry in fs::read_dir("../migrations").expect("read ../migrations") {
        let name = entry.expect("a migrations entry").file_name();
        let name = name.to_string_lossy();
        // refinery's naming: V<version>__<name>.sql (U for unversioned, not used here).
        let Some(rest) = name.strip_prefix('V') else {
            continue;
        };
        let Some((version, _)) = rest.split_once("__") else {
            continue;
        };
        let version: u32 = version
            .parse()
            .unwrap_or_else(|_| panic!("migration {name}: version is not a number"));
        latest = latest.max(version);
    }
    let out = Path::new(&env::var("OUT_DIR").expect("OUT_DIR")).join("schema_version.rs");
    fs::write(
        out,
        format!("pub(super) const LATEST_VERSION: i32 = {latest};\n"),
    )
    .expect("write schema_version.rs");
}
