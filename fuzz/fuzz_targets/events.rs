//! Any bytes that parse as JSON, through all three event parsers: no panic, ever.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::users::AttributeMapping;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = post_confirmation::parse_event(&v, &AttributeMapping::default());
        let _ = sg_ip_update::parse_event(&v, &sg_ip_update::Envelope::default());
        let _ = drift_check::request::parse(&v);
    }
});
