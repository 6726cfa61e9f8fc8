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

use crate::directives::split_outside_quotes;
use crate::freshness::{date_header, http_date};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
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
    ///
    /// The weak prefix is accepted in either case (`W/`, `w/`). A quoted tag may not contain
    /// `"`, whitespace or control characters; an unquoted one may not contain those nor `,`.
    pub fn parse(value: &str) -> Option<EntityTag> {
        let value = value.trim();
        let (weak, rest) = match value.strip_prefix("W/").or_else(|| value.strip_prefix("w/")) {
            Some(rest) => (true, rest),
            None => (false, value),
        };
        let valid_char = |c: char| c != '"' && !c.is_whitespace() && !c.is_control();
        if let Some(quoted) = rest.strip_prefix('"') {
            let tag = quoted.strip_suffix('"')?;
            if !tag.chars().all(valid_char) {
                return None;
            }
            return Some(EntityTag { weak, tag: tag.to_string() });
        }
        if rest.is_empty() || !rest.chars().all(|c| valid_char(c) && c != ',') {
            return None;
        }
        Some(EntityTag { weak, tag: rest.to_string() })
    }

    /// Strong comparison (RFC 9110 §8.8.3.2): both strong, same tag.
    pub fn strong_eq(&self, other: &EntityTag) -> bool {
        !self.weak && !other.weak && self.tag == other.tag
    }

    /// Weak comparison (RFC 9110 §8.8.3.2): same tag, weakness ignored.
    pub fn weak_eq(&self, other: &EntityTag) -> bool {
        self.tag == other.tag
    }
}

/// `true` when the stored response has a validator (`ETag` or a valid `Last-Modified`), so that
/// it can be revalidated with a conditional request.
pub fn has_validator(stored: &HeaderMap) -> bool {
    etag(stored).is_some() || last_modified(stored).is_some()
}

/// The `ETag` of a response: the first line that is a valid entity-tag, with its raw value.
fn etag_with_value(headers: &HeaderMap) -> Option<(EntityTag, &HeaderValue)> {
    headers.get_all(http::header::ETAG).iter().find_map(|value| {
        let tag = EntityTag::parse(value.to_str().ok()?)?;
        Some((tag, value))
    })
}

/// The `ETag` of a response, if it has a valid one.
pub fn etag(headers: &HeaderMap) -> Option<EntityTag> {
    etag_with_value(headers).map(|(tag, _)| tag)
}

/// Adds to an outgoing request the conditional headers that revalidate a stored response
/// (RFC 9111 §4.3.1): `If-None-Match` with the stored `ETag`, and `If-Modified-Since` with the
/// stored `Last-Modified`. Existing conditional headers of the request are replaced. Returns
/// `false` (and changes nothing) when the stored response has no validator.
///
/// Both values are copied verbatim (RFC 9110 §13.1.3: some servers only honour an exact match);
/// an `ETag` or `Last-Modified` that is invalid is not copied.
pub fn add_conditional_headers(stored: &HeaderMap, request: &mut HeaderMap) -> bool {
    let etag = etag_with_value(stored).map(|(_, value)| value.clone());
    let last_modified = stored
        .get_all(http::header::LAST_MODIFIED)
        .iter()
        .find(|value| http_date(value).is_some())
        .cloned();
    if etag.is_none() && last_modified.is_none() {
        return false;
    }
    request.remove(http::header::IF_NONE_MATCH);
    request.remove(http::header::IF_MODIFIED_SINCE);
    if let Some(etag) = etag {
        request.insert(http::header::IF_NONE_MATCH, etag);
    }
    if let Some(last_modified) = last_modified {
        request.insert(http::header::IF_MODIFIED_SINCE, last_modified);
    }
    true
}

/// `true` when a request carries a conditional header a cache evaluates (`If-None-Match`,
/// `If-Modified-Since`).
pub fn is_conditional(request: &HeaderMap) -> bool {
    request.contains_key(http::header::IF_NONE_MATCH) || request.contains_key(http::header::IF_MODIFIED_SINCE)
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
///
/// `If-None-Match` lines are read as one comma-separated list (commas inside quotes do not
/// split); members that are not entity-tags are skipped. An `If-None-Match` with no usable member
/// gives [`ConditionalOutcome::Modified`].
pub fn evaluate(request: &HeaderMap, stored_status: StatusCode, stored: &HeaderMap) -> ConditionalOutcome {
    if request.contains_key(http::header::IF_NONE_MATCH) {
        if stored_status != StatusCode::OK {
            return ConditionalOutcome::Modified;
        }
        let stored_etag = etag(stored);
        let matched = request
            .get_all(http::header::IF_NONE_MATCH)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|text| split_outside_quotes(text, ','))
            .any(|member| {
                member == "*"
                    || EntityTag::parse(member)
                        .zip(stored_etag.as_ref())
                        .is_some_and(|(tag, stored)| tag.weak_eq(stored))
            });
        return if matched { ConditionalOutcome::NotModified } else { ConditionalOutcome::Modified };
    }
    if request.contains_key(http::header::IF_MODIFIED_SINCE) {
        if stored_status != StatusCode::OK {
            return ConditionalOutcome::Modified;
        }
        let since = request.get(http::header::IF_MODIFIED_SINCE).and_then(http_date);
        let modified = last_modified(stored).or_else(|| date_header(stored));
        return match (since, modified) {
            (Some(since), Some(modified)) if modified <= since => ConditionalOutcome::NotModified,
            _ => ConditionalOutcome::Modified,
        };
    }
    ConditionalOutcome::NotConditional
}

/// Whether a 304 response can freshen a stored response (RFC 9111 §4.3.4): the 304's strong
/// `ETag` equals the stored one; or, without an `ETag` in the 304, its `Last-Modified` equals the
/// stored one; or the 304 carries neither validator. Weak ETags in the 304 match by weak
/// comparison when the stored response was validated with that ETag.
///
/// An `ETag` in the 304 that is not a valid entity-tag matches nothing; so does an invalid
/// `Last-Modified` (when the 304 has no `ETag`). A 304 without validators matches whatever the
/// stored response has, since the cache revalidated that one response.
pub fn not_modified_matches(stored: &HeaderMap, not_modified: &HeaderMap) -> bool {
    if not_modified.contains_key(http::header::ETAG) {
        let (Some(new), Some(old)) = (etag(not_modified), etag(stored)) else {
            return false;
        };
        return if new.weak { new.weak_eq(&old) } else { new.strong_eq(&old) };
    }
    if not_modified.contains_key(http::header::LAST_MODIFIED) {
        return match (last_modified(not_modified), last_modified(stored)) {
            (Some(new), Some(old)) => new == old,
            _ => false,
        };
    }
    true
}

/// Freshens stored header fields with those of a 304 response (RFC 9111 §3.2, §4.3.4): every
/// field in `not_modified` replaces the stored field of the same name, except `Content-Length`
/// (and the other framing fields `Transfer-Encoding`, `Content-Encoding`, `Content-Range`),
/// which the stored response keeps.
pub fn freshen_headers(stored: &mut HeaderMap, not_modified: &HeaderMap) {
    for name in not_modified.keys() {
        if FRAMING_FIELDS.contains(name) {
            continue;
        }
        stored.remove(name);
        for value in not_modified.get_all(name) {
            stored.append(name.clone(), value.clone());
        }
    }
}

/// The fields a 304 never replaces in a stored response.
const FRAMING_FIELDS: [HeaderName; 4] = [
    http::header::CONTENT_LENGTH,
    http::header::TRANSFER_ENCODING,
    http::header::CONTENT_ENCODING,
    http::header::CONTENT_RANGE,
];

/// The header fields of a 304 answer built from a stored response (RFC 9110 §15.4.5): those of
/// `Cache-Control`, `Content-Location`, `Date`, `ETag`, `Expires`, `Last-Modified` and `Vary`
/// the stored response has.
pub fn not_modified_response_headers(stored: &HeaderMap) -> HeaderMap {
    const NAMES: [HeaderName; 7] = [
        http::header::CACHE_CONTROL,
        http::header::CONTENT_LOCATION,
        http::header::DATE,
        http::header::ETAG,
        http::header::EXPIRES,
        http::header::LAST_MODIFIED,
        http::header::VARY,
    ];
    let mut out = HeaderMap::new();
    for name in NAMES {
        for value in stored.get_all(&name) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// The `Last-Modified` of a response, if present and a valid HTTP-date.
///
/// With several lines, the first valid one is used.
pub fn last_modified(headers: &HeaderMap) -> Option<SystemTime> {
    headers.get_all(http::header::LAST_MODIFIED).iter().find_map(http_date)
}
