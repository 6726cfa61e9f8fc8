//! Cache keys: any request target, `Host` and credential fields through `normalize_url` and
//! `create_key` (private and shared caches, with and without `match_headers`). Never panics, and:
//!
//! - the normal form is a fixed point: normalizing a normalized URL again gives it back;
//! - equal normal forms give equal keys (private cache; in a shared cache for targets without
//!   `%`, where both caches normalize alike, and without credentials, which only a shared key
//!   holds);
//! - a `Host` that is not valid never spells a path, a query or another host;
//! - `normalize_body`'s output (JSON and form bodies) is its own normal form.
#![no_main]

use arbitrary::Arbitrary;
use cachelayer_policy::key::{
    DEFAULT_IGNORED_PARAMETERS, KeyInput, KeyOptions, MatchHeaders, create_key, host_is_valid,
    normalize_body, normalize_url,
};
use cachelayer_policy::{CacheKey, CacheKind};
use http::{HeaderMap, HeaderValue, Method, Uri};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    target: &'a [u8],
    /// `Host` field lines.
    hosts: Vec<&'a [u8]>,
    /// An `X-API-Key` (a credential by default).
    api_key: Option<&'a [u8]>,
    /// A `HEAD` instead of a `GET`.
    head: bool,
    content_type: u8,
    body: &'a [u8],
}

const CONTENT_TYPES: [&str; 5] = [
    "application/json",
    "application/x-www-form-urlencoded",
    "application/vnd.api+json; charset=utf-8",
    "text/plain",
    "Application/X-WWW-Form-Urlencoded;charset=UTF-8",
];

fn ignored() -> Vec<String> {
    DEFAULT_IGNORED_PARAMETERS
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn key(method: &Method, uri: &Uri, headers: &HeaderMap, options: &KeyOptions) -> CacheKey {
    create_key(
        &KeyInput {
            method,
            uri,
            headers,
            body: None,
        },
        options,
    )
}

fuzz_target!(|input: Input<'_>| {
    let ignored = ignored();

    let content_type = HeaderValue::from_static(
        CONTENT_TYPES[usize::from(input.content_type) % CONTENT_TYPES.len()],
    );
    let body = normalize_body(Some(&content_type), input.body, &ignored);
    let again = normalize_body(Some(&content_type), &body, &ignored);
    assert_eq!(
        again.as_ref(),
        body.as_ref(),
        "normalize_body is not idempotent for {content_type:?}: {:?}",
        String::from_utf8_lossy(input.body)
    );

    let Ok(uri) = Uri::try_from(input.target) else {
        return;
    };
    let mut headers = HeaderMap::new();
    for host in &input.hosts {
        if let Ok(value) = HeaderValue::from_bytes(host) {
            headers.append(http::header::HOST, value);
        }
    }
    if let Some(Ok(value)) = input.api_key.map(HeaderValue::from_bytes) {
        headers.append("x-api-key", value);
    }
    let method = if input.head {
        Method::HEAD
    } else {
        Method::GET
    };
    let private = KeyOptions::default();
    let shared = KeyOptions {
        kind: CacheKind::Shared,
        ..KeyOptions::default()
    };
    let private_key = key(&method, &uri, &headers, &private);
    let shared_key = key(&method, &uri, &headers, &shared);
    for kind in [CacheKind::Private, CacheKind::Shared] {
        let all = KeyOptions {
            kind,
            match_headers: MatchHeaders::All,
            ..KeyOptions::default()
        };
        let _ = create_key(
            &KeyInput {
                method: &method,
                uri: &uri,
                headers: &headers,
                body: Some(input.body),
            },
            &all,
        );
    }
    assert_eq!(
        key(&method, &uri, &headers, &private),
        private_key,
        "keys are deterministic"
    );

    let url = normalize_url(&uri, &headers, &ignored);
    let _ = normalize_url(&uri, &headers, &[]);

    let host_from_field = uri.authority().is_none();
    if host_from_field && !host_is_valid(&headers) {
        // The value is percent-encoded into the authority: no delimiter of its own survives.
        let without_host = normalize_url(&uri, &HeaderMap::new(), &ignored);
        let rest = without_host
            .strip_prefix("http://")
            .unwrap_or(&without_host);
        let authority = url
            .strip_prefix("http://")
            .and_then(|u| u.strip_suffix(rest))
            .unwrap_or_else(|| panic!("{url:?} does not end with {rest:?}"));
        assert!(
            !authority.contains(['/', '?', '#', '@', ' ']),
            "invalid Host spliced into {url:?}"
        );
        return;
    }

    // The normal form is a fixed point. A normal form that is no request target (an empty
    // authority, `http:///p`) cannot be normalized again.
    let Ok(normal) = Uri::try_from(url.as_str()) else {
        return;
    };
    if uri.path() == "*" {
        // KNOWN (reported, not fixed here): the asterisk form (`OPTIONS *`) normalizes to
        // `http://host*`, which reads back as the host `host*` and the path `/`. OPTIONS is not
        // cached, and no other target normalizes to a URL without a `/` after the authority,
        // so no two requests share a key through it.
        return;
    }
    let empty = HeaderMap::new();
    let twice = normalize_url(&normal, &empty, &ignored);
    assert_eq!(twice, url, "normal form of {:?} is not a fixed point", uri);

    // Equal normal forms, equal keys.
    assert_eq!(
        key(&method, &normal, &empty, &private),
        private_key,
        "private key of {uri:?} differs from that of its normal form {url:?}"
    );
    let percent_free = !uri.path().contains('%') && !uri.query().is_some_and(|q| q.contains('%'));
    let credential_free = input.api_key.is_none()
        && !uri.query().is_some_and(|q| {
            q.split('&')
                .any(|p| ignored.iter().any(|i| p.split('=').next() == Some(i)))
        });
    if percent_free && credential_free {
        assert_eq!(
            key(&method, &normal, &empty, &shared),
            shared_key,
            "shared key of {uri:?} differs from that of its normal form {url:?}"
        );
    }
});
