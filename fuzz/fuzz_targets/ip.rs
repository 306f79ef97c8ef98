//! Any string through the IP validation (`fuzz_targets::ip`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_targets::ip(data));
