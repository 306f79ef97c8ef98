//! Any bytes that parse as JSON, through every event parser (`fuzz_targets::events`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::events(data));
