//! HTTP-dates and the arithmetic on them: arbitrary `Date`, `Expires`, `Last-Modified`, `Age`
//! and `If-Modified-Since` values through the policy crate's date parsing
//! (`freshness::parse_http_date_leniently`, on `httpdate`), its freshness, age and
//! conditional-request functions. Never panics; the lenient parser reads every date `httpdate`
//! reads, as `httpdate` does, and reads back what it parsed once formatted.
#![no_main]

use arbitrary::Arbitrary;
use cachelayer_policy::directives::ResponseDirectives;
use cachelayer_policy::{CacheKind, HeuristicFreshness, freshness, validators};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    /// (field, value) lines; the field is picked by index.
    fields: Vec<(u8, &'a [u8])>,
    /// Text through `httpdate` directly, as the crate calls it.
    text: &'a str,
    request_time: u64,
    response_delay: u32,
    fraction: f64,
    max_secs: u64,
    status: u16,
}

const FIELDS: [HeaderName; 6] = [
    http::header::DATE,
    http::header::EXPIRES,
    http::header::LAST_MODIFIED,
    http::header::AGE,
    http::header::IF_MODIFIED_SINCE,
    http::header::CACHE_CONTROL,
];

/// Any time `SystemTime` can hold, saturating (the fuzzer's own arithmetic must not panic).
fn time(secs: u64) -> SystemTime {
    UNIX_EPOCH
        .checked_add(Duration::from_secs(secs))
        .unwrap_or_else(|| UNIX_EPOCH + Duration::from_secs(i64::MAX as u64 / 2))
}

fuzz_target!(|input: Input<'_>| {
    let lenient = freshness::parse_http_date_leniently(input.text);
    if let Ok(strict) = httpdate::parse_http_date(input.text.trim()) {
        assert_eq!(lenient, Some(strict), "{:?}", input.text);
    }
    if let Some(time) = lenient {
        let formatted = httpdate::fmt_http_date(time);
        assert_eq!(
            freshness::parse_http_date_leniently(&formatted),
            Some(time),
            "{:?} read as {formatted:?}",
            input.text
        );
    }

    let mut headers = HeaderMap::new();
    for (selector, value) in &input.fields {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(FIELDS[usize::from(*selector) % FIELDS.len()].clone(), value);
        }
    }
    let request_time = time(input.request_time);
    let response_time = request_time
        .checked_add(Duration::from_secs(u64::from(input.response_delay)))
        .unwrap_or(request_time);
    let directives = ResponseDirectives::from_headers(&headers);
    for kind in [CacheKind::Private, CacheKind::Shared] {
        let _ = freshness::explicit_lifetime(&directives, &headers, kind, response_time);
    }
    let status = StatusCode::from_u16(input.status).unwrap_or(StatusCode::OK);
    let heuristic = HeuristicFreshness {
        enabled: true,
        fraction: input.fraction,
        max: Duration::from_secs(input.max_secs),
    };
    let _ = freshness::heuristic_lifetime(status, &directives, &headers, response_time, &heuristic);
    let age = freshness::corrected_initial_age(&headers, request_time, response_time);
    let _ = freshness::current_age(age, response_time, time(u64::MAX));
    let _ = freshness::current_age(age, response_time, UNIX_EPOCH);
    let _ = validators::last_modified(&headers);
    let _ = validators::has_validator(&headers);
    let mut request = HeaderMap::new();
    let _ = validators::add_conditional_headers(&headers, &mut request);
    // The stored response's own fields as a client's conditional request, and back.
    let _ = validators::evaluate(&headers, status, &headers);
    let _ = validators::evaluate(&request, StatusCode::OK, &headers);
    let _ = validators::not_modified_matches(&headers, &request);
    let _ = validators::stored_precondition(&headers, status, &headers);
    let _ = validators::EntityTagList::parse(headers.get_all(http::header::ETAG));
    let mut stored = headers.clone();
    validators::freshen_headers(&mut stored, &request);
    let _ = validators::not_modified_response_headers(&stored);
});
