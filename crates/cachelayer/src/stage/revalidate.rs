//! Revalidation (RFC 9111 §4.3): conditional requests with the stored validators, and what a
//! 304 means for the stored response.

use cachelayer_policy::validators;
use cachelayer_store::StoredResponse;
use http::HeaderMap;

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
