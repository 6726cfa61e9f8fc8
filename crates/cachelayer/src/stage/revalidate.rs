//! Revalidation (RFC 9111 §4.3): conditional requests with the stored validators, and what a
//! 304 means for the stored response.

use crate::stage::write::varied_request_headers;
use cachelayer_policy::validators;
use cachelayer_store::{StoredRequest, StoredResponse};
use http::{HeaderMap, Method};

/// How a request that found a stale stored response goes to the origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Forward {
    /// With the stored validators added: a 304 freshens the stored response.
    Conditional,
    /// As the client sent it, which is itself conditional: a 304 goes back to the client and
    /// freshens the stored response when its validators match.
    ClientConditional,
    /// Unconditionally: the stored response has no validator.
    Unconditional,
    /// With the strong `ETag` of the variant stored at the primary key, which the request does
    /// not select (RFC 9111 §4.3.1 lets a cache send the validators of every stored response):
    /// a 304 naming that `ETag` selects it for this request (§4.3.4).
    OtherVariant,
}

/// Prepares the outgoing request headers for revalidating `stored`.
pub(crate) fn prepare(stored: &StoredResponse, request: &mut HeaderMap) -> Forward {
    if validators::is_conditional(request) {
        return Forward::ClientConditional;
    }
    if validators::add_conditional_headers(&stored.headers, request) {
        Forward::Conditional
    } else {
        Forward::Unconditional
    }
}

/// Prepares the outgoing request headers of a GET that selects no stored variant while `other`,
/// another variant of the URL, is stored: `If-None-Match` with `other`'s strong `ETag`
/// ([`Forward::OtherVariant`]). Unconditional when the request is not a GET, carries its own
/// `If-None-Match` or `If-Modified-Since`, or `other` has no strong `ETag`: a weak tag may be
/// shared by representations that differ (another content coding), and a `Last-Modified` says
/// nothing about which representation the origin selected. In a shared cache, also when
/// `other` varies on anything but content negotiation fields (`Accept`, `Accept-Charset`,
/// `Accept-Encoding`, `Accept-Language`): a response that varies on `Cookie` or a credential
/// may carry fields for one user that a 304 for another would not replace.
pub(crate) fn prepare_other_variant(
    other: &StoredResponse,
    method: &Method,
    shared: bool,
    request: &mut HeaderMap,
) -> Forward {
    if method != Method::GET
        || validators::is_conditional(request)
        || (shared && !varies_on_negotiation_only(&other.headers))
    {
        return Forward::Unconditional;
    }
    match validators::etag_with_value(&other.headers) {
        Some((tag, value)) if !tag.weak => {
            request.insert(http::header::IF_NONE_MATCH, value.clone());
            Forward::OtherVariant
        }
        _ => Forward::Unconditional,
    }
}

/// Whether every field a response's `Vary` names is a content negotiation field.
fn varies_on_negotiation_only(response: &HeaderMap) -> bool {
    use http::header::{ACCEPT, ACCEPT_CHARSET, ACCEPT_ENCODING, ACCEPT_LANGUAGE};
    response.get_all(http::header::VARY).iter().all(|value| {
        value.to_str().is_ok_and(|value| {
            value
                .split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .all(|name| {
                    [ACCEPT, ACCEPT_CHARSET, ACCEPT_ENCODING, ACCEPT_LANGUAGE]
                        .iter()
                        .any(|field| name.eq_ignore_ascii_case(field.as_str()))
                })
        })
    })
}

/// The stored variant `other`, as the response to `request` (its selecting header fields kept,
/// so that it is stored under the request's secondary key), when a 304 to its `ETag` selects it
/// (RFC 9111 §4.3.4): the 304's `ETag` is that strong tag, or the 304 has no `ETag` (the origin
/// found the one tag it was sent matching; a `Last-Modified` it carries must then be the stored
/// one). `None` when the 304 names another tag, or a weak one.
pub(crate) fn adopt_other_variant(
    other: &StoredResponse,
    not_modified: &HeaderMap,
    request: &HeaderMap,
) -> Option<StoredResponse> {
    let weak = validators::etag(not_modified).is_some_and(|tag| tag.weak);
    if weak || !validators::not_modified_matches(&other.headers, not_modified) {
        return None;
    }
    let vary_from = if not_modified.contains_key(http::header::VARY) {
        not_modified
    } else {
        &other.headers
    };
    Some(StoredResponse {
        request: StoredRequest {
            headers: varied_request_headers(vary_from, request),
            ..other.request.clone()
        },
        ..other.clone()
    })
}

/// Whether a 200 response to a HEAD describes the stored GET response (RFC 9111 §4.3.5): the
/// validators agree (as for a 304, §4.3.4), and when neither response has one, their
/// `Content-Length` are present and equal. A HEAD response without a validator never matches a
/// stored response that has one.
pub(crate) fn head_applies(stored: &StoredResponse, head: &HeaderMap) -> bool {
    let validator = |h: &HeaderMap| {
        h.contains_key(http::header::ETAG) || h.contains_key(http::header::LAST_MODIFIED)
    };
    match (validator(&stored.headers), validator(head)) {
        (_, true) => validators::not_modified_matches(&stored.headers, head),
        (true, false) => false,
        (false, false) => {
            let length = |h: &HeaderMap| h.get(http::header::CONTENT_LENGTH).cloned();
            length(head).is_some() && length(head) == length(&stored.headers)
        }
    }
}

/// Whether a 304 answers for `stored` (RFC 9111 §4.3.4).
pub(crate) fn not_modified_applies(stored: &StoredResponse, not_modified: &HeaderMap) -> bool {
    validators::not_modified_matches(&stored.headers, not_modified)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use cachelayer_store::StalePolicy;
    use http::{HeaderValue, StatusCode, Version};
    use std::time::{Duration, SystemTime};

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    fn stored(response: &[(&'static str, &'static str)]) -> StoredResponse {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        StoredResponse {
            request: StoredRequest {
                method: Method::GET,
                url: "http://example.com/doc".to_owned(),
                headers: headers(&[("accept-language", "en")]),
            },
            status: StatusCode::OK,
            version: Version::HTTP_11,
            headers: headers(response),
            body: bytes::Bytes::from_static(b"hello"),
            request_time: now,
            created_at: now,
            initial_age: Duration::ZERO,
            expires: Some(now + Duration::from_secs(60)),
            stale: StalePolicy::default(),
            retain_until: None,
        }
    }

    #[test]
    fn other_variants_are_offered_by_their_strong_etag() {
        const LANG: &[(&str, &str)] = &[("etag", "\"en-1\""), ("vary", "Accept-Language")];
        // (name, stored, method, shared, request, forward, If-None-Match sent) — RFC 9111 §4.3.1
        type Case = (
            &'static str,
            &'static [(&'static str, &'static str)],
            Method,
            bool,
            &'static [(&'static str, &'static str)],
            Forward,
            Option<&'static str>,
        );
        let cases: &[Case] = &[
            (
                "strong tag",
                LANG,
                Method::GET,
                true,
                &[],
                Forward::OtherVariant,
                Some("\"en-1\""),
            ),
            (
                "private cache",
                LANG,
                Method::GET,
                false,
                &[],
                Forward::OtherVariant,
                Some("\"en-1\""),
            ),
            (
                "HEAD",
                LANG,
                Method::HEAD,
                true,
                &[],
                Forward::Unconditional,
                None,
            ),
            (
                "the client's own conditional",
                LANG,
                Method::GET,
                true,
                &[("if-modified-since", "Sun, 06 Nov 1994 08:49:37 GMT")],
                Forward::Unconditional,
                None,
            ),
            (
                "weak tag",
                &[("etag", "W/\"en-1\""), ("vary", "Accept-Language")],
                Method::GET,
                true,
                &[],
                Forward::Unconditional,
                None,
            ),
            (
                "Last-Modified only",
                &[
                    ("last-modified", "Sun, 06 Nov 1994 08:49:37 GMT"),
                    ("vary", "Accept"),
                ],
                Method::GET,
                true,
                &[],
                Forward::Unconditional,
                None,
            ),
            (
                "shared: Vary on Cookie",
                &[("etag", "\"a\""), ("vary", "Accept-Encoding, Cookie")],
                Method::GET,
                true,
                &[],
                Forward::Unconditional,
                None,
            ),
            (
                "private: Vary on Cookie",
                &[("etag", "\"a\""), ("vary", "Cookie")],
                Method::GET,
                false,
                &[],
                Forward::OtherVariant,
                Some("\"a\""),
            ),
            (
                "shared: negotiation fields in any case, over lines",
                &[
                    ("etag", "\"a\""),
                    ("vary", "ACCEPT-encoding"),
                    ("vary", "accept, Accept-Charset"),
                ],
                Method::GET,
                true,
                &[],
                Forward::OtherVariant,
                Some("\"a\""),
            ),
        ];
        for (name, response, method, shared, request, forward, sent) in cases {
            let mut outgoing = headers(request);
            assert_eq!(
                prepare_other_variant(&stored(response), method, *shared, &mut outgoing),
                *forward,
                "{name}"
            );
            if request.is_empty() {
                assert_eq!(
                    outgoing.get("if-none-match").map(|v| v.to_str().unwrap()),
                    *sent,
                    "{name}"
                );
            }
        }
    }

    #[test]
    fn a_304_adopts_the_other_variant_only_when_it_names_it() {
        const LM: &str = "Sun, 06 Nov 1994 08:49:37 GMT";
        let other = stored(&[
            ("etag", "\"en-1\""),
            ("last-modified", LM),
            ("vary", "Accept-Language"),
        ]);
        let request = headers(&[("accept-language", "DE, fr"), ("cookie", "x")]);
        // (name, 304 fields, adopted) — RFC 9111 §4.3.4
        type Case = (&'static str, &'static [(&'static str, &'static str)], bool);
        let cases: &[Case] = &[
            ("same strong tag", &[("etag", "\"en-1\"")], true),
            ("no validator", &[("date", LM)], true),
            (
                "no ETag, same Last-Modified",
                &[("last-modified", LM)],
                true,
            ),
            (
                "no ETag, other Last-Modified",
                &[("last-modified", "Mon, 07 Nov 1994 08:49:37 GMT")],
                false,
            ),
            ("other tag", &[("etag", "\"de-1\"")], false),
            ("weak form of the tag", &[("etag", "W/\"en-1\"")], false),
            ("invalid tag", &[("etag", "\"en-1")], false),
        ];
        for (name, not_modified, adopted) in cases {
            let got = adopt_other_variant(&other, &headers(not_modified), &request);
            assert_eq!(got.is_some(), *adopted, "{name}");
            if let Some(got) = got {
                assert_eq!(
                    got.request.headers,
                    headers(&[("accept-language", "de,fr")]),
                    "{name}: kept for this request's selecting fields"
                );
                assert_eq!(
                    (got.body, got.headers),
                    (other.body.clone(), other.headers.clone())
                );
            }
        }
        // The 304's own Vary decides which fields are kept.
        let got = adopt_other_variant(
            &other,
            &headers(&[("etag", "\"en-1\""), ("vary", "Cookie")]),
            &request,
        )
        .unwrap();
        assert!(got.request.headers.contains_key("cookie"));
        assert!(!got.request.headers.contains_key("accept-language"));
    }
}
