//! Calls one policy function N times on the inputs of a cache miss, for instruction counts:
//!
//! ```text
//! cargo build --release -p cachelayer-policy --example policycount
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/pc.1000 \
//!     target/release/examples/policycount create_key 1000
//! ```
//!
//! Run it for two N and divide the difference of the totals by the difference of N: setup and
//! process start cancel out.

use cachelayer_policy::directives::ResponseDirectives;
use cachelayer_policy::freshness;
use cachelayer_policy::key::{self, KeyInput, KeyOptions};
use cachelayer_policy::validators::{self, EntityTag};
use http::{HeaderMap, HeaderValue, Method, Uri};
use std::hint::black_box;
use std::time::{Duration, UNIX_EPOCH};

const FUNCTIONS: &str = "create_key normalize_url from_headers has_validator etag_with_value \
                         parse_bytes corrected_initial_age corrected_initial_age_12";

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(function), Some(n)) = (args.next(), args.next()) else {
        eprintln!("usage: policycount <function> <N>\nfunctions: {FUNCTIONS}");
        std::process::exit(2);
    };
    let Ok(n) = n.parse::<u64>() else {
        eprintln!("N must be a number");
        std::process::exit(2);
    };

    let uri: Uri = "http://api.example.com/v1/items?page=123&sort=name"
        .parse()
        .unwrap_or_default();
    let mut request = HeaderMap::new();
    request.insert("accept", HeaderValue::from_static("application/json"));
    request.insert("user-agent", HeaderValue::from_static("bench/1.0"));
    let mut response = HeaderMap::new();
    response.insert("content-type", HeaderValue::from_static("application/json"));
    response.insert(
        "cache-control",
        HeaderValue::from_static("public, max-age=3600"),
    );
    response.insert(
        "etag",
        HeaderValue::from_static("\"33a64df551425fcc55e4d42a148795d9f25f89d4\""),
    );
    let options = KeyOptions::default();
    let request_time = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let response_time = request_time + Duration::from_millis(20);

    match function.as_str() {
        "create_key" => {
            for _ in 0..n {
                let input = KeyInput {
                    method: black_box(&Method::GET),
                    uri: black_box(&uri),
                    headers: black_box(&request),
                    body: None,
                };
                black_box(key::create_key(&input, black_box(&options)));
            }
        }
        "normalize_url" => {
            for _ in 0..n {
                black_box(key::normalize_url(
                    black_box(&uri),
                    black_box(&request),
                    black_box(&options.ignored_parameters),
                ));
            }
        }
        "from_headers" => {
            for _ in 0..n {
                black_box(ResponseDirectives::from_headers(black_box(&response)));
            }
        }
        "has_validator" => {
            for _ in 0..n {
                black_box(validators::has_validator(black_box(&response)));
            }
        }
        "etag_with_value" => {
            for _ in 0..n {
                black_box(validators::etag_with_value(black_box(&response)));
            }
        }
        "parse_bytes" => {
            let etag = response.get("etag").map_or(&b""[..], HeaderValue::as_bytes);
            for _ in 0..n {
                black_box(EntityTag::parse_bytes(black_box(etag)));
            }
        }
        "corrected_initial_age" => {
            for _ in 0..n {
                black_box(freshness::corrected_initial_age(
                    black_box(&response),
                    black_box(request_time),
                    black_box(response_time),
                ));
            }
        }
        "corrected_initial_age_12" => {
            // A response as origins send them: twelve fields, `Date` among them.
            let mut response = response.clone();
            for (name, value) in [
                ("date", "Tue, 14 Nov 2023 22:13:20 GMT"),
                ("server", "origin/1.0"),
                ("content-length", "1234"),
                ("vary", "accept-encoding"),
                ("x-request-id", "8f1c2a"),
                ("strict-transport-security", "max-age=63072000"),
                ("access-control-allow-origin", "*"),
                ("x-content-type-options", "nosniff"),
                ("last-modified", "Tue, 14 Nov 2023 20:00:00 GMT"),
            ] {
                response.insert(name, HeaderValue::from_static(value));
            }
            for _ in 0..n {
                black_box(freshness::corrected_initial_age(
                    black_box(&response),
                    black_box(request_time),
                    black_box(response_time),
                ));
            }
        }
        other => {
            eprintln!("unknown function {other}\nfunctions: {FUNCTIONS}");
            std::process::exit(2);
        }
    }
}
