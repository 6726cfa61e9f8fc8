//! Validators and conditional requests (RFC 9111 §4.3; RFC 9110 §8.8, §13).
//!
//! ```
//! use cachelayer_policy::validators::{self, ConditionalOutcome};
//! use http::{HeaderMap, StatusCode};
//!
//! let mut stored = HeaderMap::new();
//! stored.insert("etag", "\"v1\"".parse().unwrap());
//!
//! // The cache revalidates a stale response with the validators it stored.
//! let mut outgoing = HeaderMap::new();
//! assert!(validators::add_conditional_headers(&stored, &mut outgoing));
//! assert_eq!(outgoing["if-none-match"], "\"v1\"");
//!
//! // A client's own conditional request is answered from a fresh stored response.
//! let mut request = HeaderMap::new();
//! request.insert("if-none-match", "W/\"v1\"".parse().unwrap());
//! assert_eq!(
//!     validators::evaluate(&request, StatusCode::OK, &stored),
//!     ConditionalOutcome::NotModified,
//! );
//! ```

use http::{HeaderMap, StatusCode};
use std::time::SystemTime;

/// An entity tag (RFC 9110 §8.8.3): `"xyz"` or `W/"xyz"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EntityTag {
    /// `true` for a weak tag (`W/` prefix).
    pub weak: bool,
    /// The opaque tag, without quotes.
    pub tag: String,
}

impl EntityTag {
    /// Parses one entity tag; `None` when the value is not a valid entity-tag (unquoted tags, as
    /// some servers send, are accepted as strong tags).
    pub fn parse(value: &str) -> Option<EntityTag> {
        let _ = value;
        todo!()
    }

    /// Strong comparison (RFC 9110 §8.8.3.2): both strong, same tag.
    pub fn strong_eq(&self, other: &EntityTag) -> bool {
        let _ = other;
        todo!()
    }

    /// Weak comparison (RFC 9110 §8.8.3.2): same tag, weakness ignored.
    pub fn weak_eq(&self, other: &EntityTag) -> bool {
        let _ = other;
        todo!()
    }
}

/// `true` when the stored response has a validator (`ETag` or a valid `Last-Modified`), so that
/// it can be revalidated with a conditional request.
pub fn has_validator(stored: &HeaderMap) -> bool {
    let _ = stored;
    todo!()
}

/// Adds to an outgoing request the conditional headers that revalidate a stored response
/// (RFC 9111 §4.3.1): `If-None-Match` with the stored `ETag`, and `If-Modified-Since` with the
/// stored `Last-Modified`. Existing conditional headers of the request are replaced. Returns
/// `false` (and changes nothing) when the stored response has no validator.
pub fn add_conditional_headers(stored: &HeaderMap, request: &mut HeaderMap) -> bool {
    let _ = (stored, request);
    todo!()
}

/// `true` when a request carries a conditional header a cache evaluates (`If-None-Match`,
/// `If-Modified-Since`).
pub fn is_conditional(request: &HeaderMap) -> bool {
    let _ = request;
    todo!()
}

/// The result of evaluating a client's conditional request against a stored response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionalOutcome {
    /// The request has no `If-None-Match` or `If-Modified-Since`.
    NotConditional,
    /// The condition holds for the stored response: answer 304 Not Modified.
    NotModified,
    /// The condition fails: answer with the full stored response.
    Modified,
}

/// Evaluates `If-None-Match` (weak comparison, `*` matches any) and, only when it is absent,
/// `If-Modified-Since` (compared with the stored `Last-Modified`, else its `Date`) against a
/// stored response (RFC 9111 §4.3.2; RFC 9110 §13.1.2, §13.1.3, §13.2.2). Only a stored 200
/// response can be "not modified"; conditions on other statuses, and invalid dates, give
/// [`ConditionalOutcome::Modified`].
pub fn evaluate(request: &HeaderMap, stored_status: StatusCode, stored: &HeaderMap) -> ConditionalOutcome {
    let _ = (request, stored_status, stored);
    todo!()
}

/// Whether a 304 response can freshen a stored response (RFC 9111 §4.3.4): the 304's strong
/// `ETag` equals the stored one; or, without an `ETag` in the 304, its `Last-Modified` equals the
/// stored one; or the 304 carries neither validator. Weak ETags in the 304 match by weak
/// comparison when the stored response was validated with that ETag.
pub fn not_modified_matches(stored: &HeaderMap, not_modified: &HeaderMap) -> bool {
    let _ = (stored, not_modified);
    todo!()
}

/// Freshens stored header fields with those of a 304 response (RFC 9111 §3.2, §4.3.4): every
/// field in `not_modified` replaces the stored field of the same name, except `Content-Length`
/// (and the other framing fields `Transfer-Encoding`, `Content-Encoding`, `Content-Range`),
/// which the stored response keeps.
pub fn freshen_headers(stored: &mut HeaderMap, not_modified: &HeaderMap) {
    let _ = (stored, not_modified);
    todo!()
}

/// The header fields of a 304 answer built from a stored response (RFC 9110 §15.4.5): those of
/// `Cache-Control`, `Content-Location`, `Date`, `ETag`, `Expires`, `Last-Modified` and `Vary`
/// the stored response has.
pub fn not_modified_response_headers(stored: &HeaderMap) -> HeaderMap {
    let _ = stored;
    todo!()
}

/// The `Last-Modified` of a response, if present and a valid HTTP-date.
pub fn last_modified(headers: &HeaderMap) -> Option<SystemTime> {
    let _ = headers;
    todo!()
}
