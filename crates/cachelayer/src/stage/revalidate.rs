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
