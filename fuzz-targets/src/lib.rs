//! The fuzz targets, written once and run two ways: by libFuzzer through the cargo-fuzz
//! crate in `fuzz/` (nightly, coverage-guided, for long runs), and on stable by
//! `fuzz-stable`, which feeds them the committed corpus plus generated inputs in CI.
//!
//! | module | concept |
//! |---|---|
//! | [`events`](mod@events) | any bytes through every event parser (post-confirmation, pre-sign-up, sign-in-guard, sg-ip-update, drift-check): no panic, and what is accepted is storable |
//! | [`ip`](mod@ip) | any string through the address validation: nothing wider than one public host |
//! | [`inputs`] | inputs made from a corpus without coverage feedback: libFuzzer's byte mutations (`inputs::bytes`), JSON-aware changes (`inputs::json`), generated addresses (`inputs::address`), from a seedable [`inputs::Rng`] |
//! | [`runner`] | runs a target over the corpus and generated inputs, catching the first panic |
//!
//! A body signals a finding by panicking, as a libFuzzer target does.
#![forbid(unsafe_code)]
#![warn(unreachable_pub)]

use std::path::PathBuf;

pub mod events;
pub mod inputs;
pub mod ip;
pub mod runner;

pub use events::events;
pub use ip::ip;

/// What the generator knows of a target's inputs, beyond its corpus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// JSON documents: values are also changed as JSON, not only as bytes.
    Json,
    /// Address text: addresses are also made from the networks the validation tells apart.
    Address,
}

/// A fuzz target: its name (the cargo-fuzz binary's and the corpus folder's), its body, and
/// what its inputs look like.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub name: &'static str,
    pub body: fn(&[u8]),
    pub shape: Shape,
    /// Tokens worth inserting, beyond those found in the corpus (a libFuzzer dictionary).
    pub tokens: &'static [&'static str],
}

impl Target {
    /// The committed corpus: seeds, and every input that once found a bug.
    pub fn corpus_dir(&self) -> PathBuf {
        repo_root().join("fuzz/corpus").join(self.name)
    }

    /// Where a crashing input is written, as cargo-fuzz does (`fuzz/artifacts/<target>`).
    pub fn artifact_dir(&self) -> PathBuf {
        repo_root().join("fuzz/artifacts").join(self.name)
    }
}

/// Every target, in the order CI runs them.
pub const TARGETS: [Target; 2] = [
    Target {
        name: "events",
        body: events,
        shape: Shape::Json,
        tokens: events::TOKENS,
    },
    Target {
        name: "ip",
        body: ip,
        shape: Shape::Address,
        tokens: ip::TOKENS,
    },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// The repository's root: this crate's parent folder.
pub fn repo_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}
