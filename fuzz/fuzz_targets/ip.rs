//! Any string through the IP validation: no panic, and nothing wider than one host admitted.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &str| {
    for allow_private in [false, true] {
        if let Ok(c) = ingress::ip::host_cidr(data, allow_private) {
            let text = c.to_string();
            assert!(text.ends_with("/32") || text.ends_with("/128"));
        }
    }
});
