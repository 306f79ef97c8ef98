//! Any bytes that parse as JSON, through all three event parsers (`fuzz_targets::events`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::events(data));
