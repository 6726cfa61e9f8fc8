//! `Cache-Control` and `Pragma` field lines, any bytes: directive parsing never panics.
//!
//! Input: field lines separated by `\n`; the first byte of a line picks its field
//! (`Cache-Control`, `Pragma`, `CDN-Cache-Control`), the rest is the value (lines that
//! `HeaderValue` rejects are left out).
#![no_main]

use cachelayer_policy::directives::{RequestDirectives, ResponseDirectives};
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

const FIELDS: [HeaderName; 3] = [
    http::header::CACHE_CONTROL,
    http::header::PRAGMA,
    HeaderName::from_static("cdn-cache-control"),
];

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    for line in data.split(|&b| b == b'\n') {
        let Some((&selector, value)) = line.split_first() else {
            continue;
        };
        let name = &FIELDS[usize::from(selector) % FIELDS.len()];
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(name.clone(), value);
        }
        // One value on its own, through the text parsers.
        let text = String::from_utf8_lossy(value);
        let _ = ResponseDirectives::parse(&text);
        let _ = RequestDirectives::parse(&text);
    }
    let response = ResponseDirectives::from_headers(&headers);
    let request = RequestDirectives::from_headers(&headers);
    // Reading every field of the results (Debug) must not panic either.
    let _ = format!("{response:?} {request:?}");
    // The whole input as one value.
    let text = String::from_utf8_lossy(data);
    let _ = ResponseDirectives::parse(&text);
    let _ = RequestDirectives::parse(&text);
});
