//! Settings files: any bytes as JSON and, when UTF-8, as TOML, into `CacheSettings`. Never
//! panics; settings that parse make a working layer, and serialize without panicking.
#![no_main]

use cachelayer::{CacheLayer, CacheSettings};
use libfuzzer_sys::fuzz_target;

fn check(settings: CacheSettings) {
    let _ = serde_json::to_vec(&settings);
    let _ = settings.key_options();
    let _ = CacheLayer::new(settings);
}

fuzz_target!(|data: &[u8]| {
    if let Ok(settings) = serde_json::from_slice::<CacheSettings>(data) {
        check(settings);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(settings) = toml::from_str::<CacheSettings>(text) {
            check(settings);
        }
    }
});
