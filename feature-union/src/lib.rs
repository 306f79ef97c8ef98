//! Nothing to call: this crate exists for its `Cargo.toml`, which gives every function the
//! same resolved features for the crates they share (see the manifest for why).
#![forbid(unsafe_code)]
