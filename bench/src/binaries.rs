//! Section 3's sizes: each function's binary as built, and zipped as Lambda takes it.

use std::{path::Path, process::Command};

pub struct BinarySize {
    pub name: &'static str,
    pub bytes: u64,
    /// 0 when the zip could not be made.
    pub zip_bytes: u64,
}

pub fn sizes(release: &Path) -> Vec<BinarySize> {
    ["post-confirmation", "sg-ip-update", "drift-check"]
        .into_iter()
        .map(|name| {
            let path = release.join(name);
            let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            let zip = std::env::temp_dir().join(format!("{name}.zip"));
            let _ = std::fs::remove_file(&zip);
            let zipped = bytes > 0
                && Command::new("python3")
                .args(["-c", "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED); z.write(sys.argv[2], 'bootstrap'); z.close()"])
                .arg(&zip)
                .arg(&path)
                .status()
                .is_ok_and(|st| st.success());
            let zip_bytes = if zipped {
                std::fs::metadata(&zip).map(|m| m.len()).unwrap_or(0)
            } else {
                0
            };
            BinarySize {
                name,
                bytes,
                zip_bytes,
            }
        })
        .collect()
}
