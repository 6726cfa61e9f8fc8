//! Property tests: the invariants the fuzz targets in `fuzz/` check, on every `cargo test`.
//!
//! - directive parsing never panics, whatever the field lines;
//! - URL normalization is idempotent (its output is a fixed point) in private and shared caches;
//! - keys are deterministic, and equal for requests whose URLs normalize equally;
//! - a `Host` containing `/`, `?`, `#` or `@` is never valid, and never spells a path, a query
//!   or another host in the normalized URL.
#![allow(clippy::unwrap_used, missing_docs)]

use cachelayer_policy::directives::{RequestDirectives, ResponseDirectives};
use cachelayer_policy::key::{
    DEFAULT_IGNORED_PARAMETERS, KeyInput, KeyOptions, MatchHeaders, create_key, host_is_valid,
    normalize_url,
};
use cachelayer_policy::{CacheKey, CacheKind};
use http::{HeaderMap, HeaderValue, Method, Uri};
use proptest::prelude::*;

/// Few cases each: the whole file runs in well under a second. Failures are not persisted to
/// files: a failing case found here goes into `found_by_fuzzing` below.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn defaults() -> Vec<String> {
    DEFAULT_IGNORED_PARAMETERS
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// Arbitrary field values, including obs-text, control bytes and unbalanced quotes, plus
/// directive-shaped text.
fn field_value() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just("max-age".to_owned()),
        Just("s-maxage".to_owned()),
        Just("max-stale".to_owned()),
        Just("min-fresh".to_owned()),
        Just("no-cache".to_owned()),
        Just("no-store".to_owned()),
        Just("private".to_owned()),
        Just("public".to_owned()),
        Just("must-revalidate".to_owned()),
        Just("stale-if-error".to_owned()),
        Just("stale-while-revalidate".to_owned()),
        "[=,\" \t\\\\a-zA-Z0-9-]{0,6}",
        "[0-9]{1,25}",
    ];
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..40),
        proptest::collection::vec(token, 0..8).prop_map(|tokens| tokens.concat().into_bytes()),
        proptest::collection::vec(
            prop_oneof![
                Just(&b"max-age="[..]),
                Just(&b"no-cache=\""[..]),
                Just(&b"\""[..]),
                Just(&b", "[..]),
                Just(&b"\\"[..]),
                Just(&b"\xff"[..]),
                Just(&b"99999999999999999999"[..]),
                Just(&b"-1"[..]),
                Just(&b"private"[..]),
                Just(&b"NO-STORE"[..]),
            ],
            0..10
        )
        .prop_map(|parts| parts.concat()),
    ]
}

fn header_map(name: &'static str, values: &[Vec<u8>]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for value in values {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(name, value);
        }
    }
    headers
}

/// A host name as a client may send it (case, digits, dots, dashes), or an IP literal.
fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9][a-zA-Z0-9.-]{0,12}",
        Just("[::1]".to_owned()),
        Just("[2001:DB8::A]".to_owned()),
        Just("127.0.0.1".to_owned()),
    ]
}

fn port() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just(":".to_owned()),
        Just(":80".to_owned()),
        Just(":443".to_owned()),
        Just(":0080".to_owned()),
        Just(":8080".to_owned()),
        Just(":65535".to_owned()),
    ]
}

/// A piece of a path or query: characters an origin receives, with `%` escapes (valid, broken,
/// of unreserved characters and of hex digits) weighted up. `!`, `"`, `#` and `$` are left out:
/// [`shared_normal_form`] uses `!` as a stand-in for `%`.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-zA-Z0-9._~&'()*+,;=:@/-]{1,4}",
        2 => "%[0-9a-fA-F]{2}",
        // A lone `%` (with at most one hex digit), then escapes of hex digits: the pieces of
        // `%4%41`, which once decoded to `%4A`.
        2 => "%[0-9a-fA-Fg-z]?",
        2 => "%(3[0-9]|4[1-6]|6[1-6])",
        1 => Just("%25".to_owned()),
        1 => Just("api_key=k".to_owned()),
        1 => Just("&".to_owned()),
        1 => Just("=".to_owned()),
    ]
}

fn path() -> impl Strategy<Value = String> {
    proptest::collection::vec(piece(), 0..8)
        .prop_map(|pieces| format!("/{}", pieces.concat().replace('&', "/")))
}

fn query() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(
        proptest::collection::vec(
            prop_oneof![piece(), Just("?".to_owned()), Just("/".to_owned())],
            0..10,
        )
        .prop_map(|pieces| pieces.concat()),
    )
}

/// A request target and its `Host`: absolute form, or origin form with a `Host` field.
#[derive(Debug, Clone)]
struct Target {
    uri: Uri,
    headers: HeaderMap,
}

fn target() -> impl Strategy<Value = Target> {
    (
        prop_oneof![
            Just("http"),
            Just("https"),
            Just("HTTP"),
            Just("Https"),
            Just("ws")
        ],
        host(),
        port(),
        path(),
        query(),
        any::<bool>(),
    )
        .prop_filter_map(
            "a target http::Uri accepts",
            |(scheme, host, port, path, query, origin_form)| {
                let query = query.map(|q| format!("?{q}")).unwrap_or_default();
                let mut headers = HeaderMap::new();
                let uri = if origin_form {
                    headers.insert(
                        http::header::HOST,
                        HeaderValue::from_str(&format!("{host}{port}")).ok()?,
                    );
                    format!("{path}{query}")
                } else {
                    format!("{scheme}://{host}{port}{path}{query}")
                };
                Some(Target {
                    uri: uri.parse().ok()?,
                    headers,
                })
            },
        )
}

fn key(target: &Target, kind: CacheKind) -> CacheKey {
    create_key(
        &KeyInput {
            method: &Method::GET,
            uri: &target.uri,
            headers: &target.headers,
            body: None,
        },
        &KeyOptions {
            kind,
            ..KeyOptions::default()
        },
    )
}

/// Whether the target's query may hold a credential parameter (which a shared key hashes, and
/// the normalized URL leaves out).
fn has_credential(target: &Target) -> bool {
    target.uri.query().is_some_and(|q| {
        DEFAULT_IGNORED_PARAMETERS
            .iter()
            .any(|name| q.contains(name))
    })
}

/// A normalized URL as a request target again (absolute form: the `Host` is in it).
fn reparse(url: &str) -> Target {
    Target {
        uri: url
            .parse()
            .unwrap_or_else(|e| panic!("normalized URL {url:?} does not parse: {e}")),
        headers: HeaderMap::new(),
    }
}

/// The normal form a shared cache keys (path and query byte for byte): the private normal form
/// of the target with every `%` standing as `!`, so that no percent-normalization applies.
fn shared_normal_form(target: &Target) -> String {
    let uri: Uri = target.uri.to_string().replace('%', "!").parse().unwrap();
    normalize_url(&uri, &target.headers, &defaults()).replace('!', "%")
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn directive_parsing_never_panics(
        cache_control in proptest::collection::vec(field_value(), 0..4),
        pragma in proptest::collection::vec(field_value(), 0..3),
        text in any::<String>(),
    ) {
        let mut headers = header_map("cache-control", &cache_control);
        for value in header_map("pragma", &pragma).get_all("pragma") {
            headers.append("pragma", value.clone());
        }
        let _ = ResponseDirectives::from_headers(&headers);
        let _ = RequestDirectives::from_headers(&headers);
        let _ = RequestDirectives::from_headers(&header_map("pragma", &pragma));
        let _ = ResponseDirectives::parse(&text);
        let _ = RequestDirectives::parse(&text);
        for value in &cache_control {
            let text = String::from_utf8_lossy(value);
            let _ = ResponseDirectives::parse(&text);
            let _ = RequestDirectives::parse(&text);
        }
    }

    #[test]
    fn private_normalization_is_idempotent(target in target()) {
        let once = normalize_url(&target.uri, &target.headers, &defaults());
        let again = reparse(&once);
        prop_assert_eq!(&normalize_url(&again.uri, &again.headers, &defaults()), &once);
        // Equal normal forms, equal keys (a private key has no credentials in it).
        prop_assert_eq!(key(&target, CacheKind::Private), key(&again, CacheKind::Private));
    }

    #[test]
    fn shared_normalization_is_idempotent(target in target()) {
        let once = shared_normal_form(&target);
        let again = reparse(&once);
        prop_assert_eq!(&shared_normal_form(&again), &once);
        let has_credential = has_credential(&target);
        if !has_credential {
            prop_assert_eq!(key(&target, CacheKind::Shared), key(&again, CacheKind::Shared));
        }
    }

    #[test]
    fn shared_keys_keep_what_private_keys_merge(target in target()) {
        // The private normal form decodes escapes of unreserved characters; a shared key does not
        // merge a target with its private normal form unless they are the same bytes.
        let private = normalize_url(&target.uri, &target.headers, &defaults());
        let shared = shared_normal_form(&target);
        let has_credential = has_credential(&target);
        if !has_credential {
            prop_assert_eq!(
                private == shared,
                key(&target, CacheKind::Shared) == key(&reparse(&private), CacheKind::Shared),
                "private {} shared {}", private, shared
            );
        }
    }

    #[test]
    fn keys_are_deterministic(
        target in target(),
        shared in any::<bool>(),
        all_headers in any::<bool>(),
        body in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..16)),
    ) {
        let options = KeyOptions {
            kind: if shared { CacheKind::Shared } else { CacheKind::Private },
            match_headers: if all_headers { MatchHeaders::All } else { MatchHeaders::None },
            ..KeyOptions::default()
        };
        let input = KeyInput {
            method: &Method::GET,
            uri: &target.uri,
            headers: &target.headers,
            body: body.as_deref(),
        };
        let first = create_key(&input, &options);
        let copy = Target { uri: target.uri.to_string().parse().unwrap(), headers: target.headers.clone() };
        let second = create_key(
            &KeyInput { method: &Method::GET, uri: &copy.uri, headers: &copy.headers, body: body.as_deref() },
            &options,
        );
        prop_assert_eq!(&first, &second);
        prop_assert_eq!(first.to_string().len(), 32);
    }

    #[test]
    fn a_host_with_a_delimiter_is_invalid_and_never_spliced(
        before in "[ -~]{0,8}",
        delimiter in prop_oneof![Just('/'), Just('?'), Just('#'), Just('@')],
        after in "[ -~]{0,8}",
        path in path(),
    ) {
        let value = format!("{before}{delimiter}{after}");
        let mut headers = HeaderMap::new();
        headers.insert(http::header::HOST, HeaderValue::from_str(&value).unwrap());
        prop_assert!(!host_is_valid(&headers), "{:?}", value);
        // The URL of such a request keeps the whole value in its authority.
        let uri: Uri = path.parse().unwrap();
        let url = normalize_url(&uri, &headers, &[]);
        let without_host = normalize_url(&uri, &HeaderMap::new(), &[]);
        let path_and_query = without_host.strip_prefix("http://").unwrap();
        let authority = url
            .strip_prefix("http://")
            .and_then(|rest| rest.strip_suffix(path_and_query))
            .unwrap();
        prop_assert!(
            !authority.contains(['/', '?', '#', '@']),
            "Host {:?} gave URL {:?}", value, url
        );
        // And a second Host line makes any value invalid.
        headers.append(http::header::HOST, HeaderValue::from_static("example.com"));
        prop_assert!(!host_is_valid(&headers));
    }
}

/// Entity-tag-shaped field values: quotes, weak prefixes, commas, whitespace, `*`, obs-text
/// and control bytes in any order, or any bytes.
fn entity_tag_text() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..24),
        proptest::collection::vec(
            prop_oneof![
                Just(&b"\""[..]),
                Just(&b"\"x\""[..]),
                Just(&b"W/"[..]),
                Just(&b"w/"[..]),
                Just(&b","[..]),
                Just(&b" "[..]),
                Just(&b"\t"[..]),
                Just(&b"*"[..]),
                Just(&b"a"[..]),
                Just(&b"\xe9"[..]),
                Just(&b"\x7f"[..]),
            ],
            0..12
        )
        .prop_map(|parts| parts.concat()),
    ]
}

proptest! {
    #![proptest_config(config())]

    /// `If-None-Match` / `If-Match` lists (RFC 9110 §8.8.3, §13.1.1, §13.1.2) never panic; a
    /// malformed one never yields a 304 nor lets a stored response stand in for the origin
    /// (fail closed); a parsed list reads back the same from its own serialization.
    #[test]
    fn entity_tag_lists_fail_closed(value in entity_tag_text()) {
        use cachelayer_policy::validators::{self, ConditionalOutcome, EntityTagList, Precondition};
        let Ok(line) = HeaderValue::from_bytes(&value) else {
            return Ok(());
        };
        let parsed = EntityTagList::parse([&line]);
        let mut request = HeaderMap::new();
        request.insert("if-none-match", line.clone());
        request.insert("if-match", line.clone());
        let mut stored = HeaderMap::new();
        stored.insert("etag", HeaderValue::from_static("\"x\""));
        let ok = http::StatusCode::OK;
        match &parsed {
            None => {
                prop_assert_eq!(validators::evaluate(&request, ok, &stored), ConditionalOutcome::Modified);
                prop_assert_eq!(validators::stored_precondition(&request, ok, &stored), Precondition::ForOrigin);
            }
            Some(EntityTagList::Any) => {}
            Some(EntityTagList::Tags(tags)) => {
                let mut text = Vec::new();
                for (i, tag) in tags.iter().enumerate() {
                    if i > 0 {
                        text.extend_from_slice(b", ");
                    }
                    if tag.weak {
                        text.extend_from_slice(b"W/");
                    }
                    text.push(b'"');
                    text.extend_from_slice(&tag.tag);
                    text.push(b'"');
                }
                let again = HeaderValue::from_bytes(&text).unwrap();
                prop_assert_eq!(EntityTagList::parse([&again]), parsed.clone());
            }
        }
    }
}

/// Regression cases the fuzz targets found.
#[test]
fn found_by_fuzzing() {
    for url in [
        "http://h/p?a=%4%41",
        "http://h/%4%41",
        "http://h/%%414",
        "http://h/%%41%42",
        "http://h/?b=%4%61",
    ] {
        let once = normalize_url(&url.parse().unwrap(), &HeaderMap::new(), &[]);
        let again = normalize_url(&once.parse().unwrap(), &HeaderMap::new(), &[]);
        assert_eq!(again, once, "{url}");
    }
}
