//! Partial content (RFC 9111 §3.3 "Storing Incomplete Responses", §3.4 "Combining Partial
//! Content"): a `206` from the origin is stored as a partial entry
//! ([`cachelayer_store::partial`]), ranges its parts hold are served from it, and later `206`s of
//! the same representation are combined with it, into the complete `200` once the parts join.
//!
//! What is stored: a `206` to a `GET` with one byte range, carrying one
//! `Content-Range: bytes first-last/complete-length` (a known complete length) that agrees with
//! its `Content-Length` and body, and a **strong entity tag** (RFC 9110 §8.8.3: only a strong
//! validator says that two responses carry bytes of one representation, so that their parts may
//! be joined, §8.8.2.2). It must be storable as its `200` would be: every rule of the write stage
//! applies (`no-store`, `private` and `Authorization` in a shared cache, `Vary`, freshness,
//! `max_body_size`, `allowable_codes` as for a 200, `filter_fn`, ...). Not stored, passed through
//! untouched:
//!
//! - `multipart/byteranges` (several ranges in one response): a cache that asks for one range
//!   never gets one, and splitting it would mean parsing a body the client reads anyway;
//! - `Content-Range: bytes first-last/*` (unknown complete length): the parts could never be
//!   known to make the whole response, nor to belong to one length;
//! - a `Content-Range` that is invalid, that ends past the complete length, or whose length
//!   differs from `Content-Length` or from the body received;
//! - a `206` with only a weak entity tag or only `Last-Modified` (a date is a weak validator
//!   unless clock conditions the cache cannot check hold, RFC 9110 §8.8.2.2).
//!
//! Combining (at the end of the new part's body, with what the store holds then): when the
//! stored entry has the same strong entity tag, the parts are joined (overlapping and touching
//! ranges merge) and the header fields of the new response replace the stored ones of the same
//! name (§3.4); once they cover every byte the entry becomes the complete `200` (with
//! `Content-Length`), served to full requests like any stored response. A stored entry with
//! another (or no) strong entity tag is replaced by the new part. Parts stay within
//! `max_body_size` in total and [`MAX_PARTS`](cachelayer_store::partial::MAX_PARTS) in number:
//! a part that would take them past either replaces them. A complete stored response of the same
//! entity tag is kept as it is.
//!
//! Serving: a fresh partial entry answers a `GET` with one byte range that one stored part holds
//! (`206` with its own `Content-Range`, `Content-Length`, `Age`), without the origin. Everything
//! else goes to the origin as if nothing were stored, and the stored parts are never a complete
//! response: a full request (its `200` then replaces the partial entry), `HEAD`, a range not
//! stored, several ranges, conditional requests (`If-Range`, `If-None-Match`,
//! `If-Modified-Since`, `If-Match`, `If-Unmodified-Since`: the origin evaluates them), a stale
//! partial entry (not revalidated: the origin's answer replaces or joins it), `no-cache`.
//! Neither stale-if-error nor `only-if-cached` serves a partial entry as a response.

use crate::info::Detail;
use crate::settings::CacheSettings;
use crate::stage::lookup::{Lookup, Unusable};
use crate::stage::range::{self, Requested};
use crate::stage::request::RequestPlan;
use crate::stage::variant::{Fields, put_entry, variant_key};
use crate::stage::write::{self, RequestSnapshot, ResponseHead};
use bytes::Bytes;
use cachelayer_policy::CacheKey;
use cachelayer_policy::validators::EntityTag;
use cachelayer_store::partial::{ContentRange, Parts};
use cachelayer_store::{Store, StoreFuture, StoredResponse};
use http::header::{
    CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH,
    IF_RANGE, IF_UNMODIFIED_SINCE, RANGE,
};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use std::sync::Arc;
use std::time::SystemTime;

/// Why a `206` from the origin is not stored as a partial entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NotStoredPart {
    /// The request was not a `GET` with one `Range` field line.
    NotAskedFor,
    /// `multipart/byteranges`, or several `Content-Range` lines.
    Multipart,
    /// `Content-Range: bytes first-last/*`.
    UnknownLength,
    /// No `Content-Range`, or one that is invalid or ends past the complete length.
    BadContentRange,
    /// `Content-Length` is not the length `Content-Range` gives.
    LengthMismatch,
    /// No strong entity tag.
    NoStrongValidator,
}

impl NotStoredPart {
    /// The token of [`CacheInfo::detail`](crate::CacheInfo::detail).
    fn detail(self) -> Detail {
        match self {
            NotStoredPart::NotAskedFor => Detail::PartialNotRequested,
            NotStoredPart::Multipart => Detail::PartialMultipart,
            NotStoredPart::UnknownLength => Detail::PartialUnknownLength,
            NotStoredPart::BadContentRange => Detail::PartialBadContentRange,
            NotStoredPart::LengthMismatch => Detail::PartialLengthMismatch,
            NotStoredPart::NoStrongValidator => Detail::PartialWeakValidator,
        }
    }
}

/// Decides whether a `206` from the origin is stored; when it is, its entry (status 206, its one
/// `Content-Range`, an empty body filled in when the body has been read), to be written with
/// [`put_part`]. The storability rules are those of its `200` ([`write::prepare_new`]).
pub(crate) fn prepare(
    request: &RequestSnapshot,
    plan: &mut RequestPlan,
    response: ResponseHead<'_>,
    settings: &CacheSettings,
    request_time: SystemTime,
    response_time: SystemTime,
) -> Result<StoredResponse, Detail> {
    check_part(request, response.headers).map_err(NotStoredPart::detail)?;
    let as_complete = ResponseHead {
        status: StatusCode::OK,
        ..response
    };
    let mut entry = write::prepare_new(
        request,
        plan,
        as_complete,
        settings,
        request_time,
        response_time,
    )?;
    entry.status = StatusCode::PARTIAL_CONTENT;
    Ok(entry)
}

/// The checks of a `206` itself: see the module documentation.
fn check_part(request: &RequestSnapshot, headers: &HeaderMap) -> Result<(), NotStoredPart> {
    if request.method != Method::GET || request.headers.get_all(RANGE).iter().count() != 1 {
        return Err(NotStoredPart::NotAskedFor);
    }
    let multipart = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .get(..20)
                .is_some_and(|t| t.eq_ignore_ascii_case("multipart/byteranges"))
        });
    let mut lines = headers.get_all(CONTENT_RANGE).iter();
    let (line, more) = (lines.next(), lines.next());
    if multipart || more.is_some() {
        return Err(NotStoredPart::Multipart);
    }
    let range = match line.and_then(|v| ContentRange::parse(v.as_bytes())) {
        Some(ContentRange::Bytes { range, .. }) => range,
        Some(ContentRange::UnknownLength(_)) => return Err(NotStoredPart::UnknownLength),
        Some(ContentRange::Unsatisfied { .. }) | None => {
            return Err(NotStoredPart::BadContentRange);
        }
    };
    let mut lengths = headers.get_all(CONTENT_LENGTH).iter();
    if let Some(length) = lengths.next() {
        let agrees = length
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            == Some(range.len());
        if !agrees || lengths.next().is_some() {
            return Err(NotStoredPart::LengthMismatch);
        }
    }
    if strong_etag(headers).is_none() {
        return Err(NotStoredPart::NoStrongValidator);
    }
    Ok(())
}

/// The strong entity tag of a response: exactly one `ETag` field line, a quoted strong tag
/// (the lenient reading of an unquoted tag is not enough to join bytes on).
fn strong_etag(headers: &HeaderMap) -> Option<EntityTag> {
    let mut lines = headers.get_all(ETAG).iter();
    let (Some(value), None) = (lines.next(), lines.next()) else {
        return None;
    };
    if !value.as_bytes().trim_ascii_start().starts_with(b"\"") {
        return None;
    }
    EntityTag::parse_bytes(value.as_bytes()).filter(|tag| !tag.weak)
}

/// `true` when both responses carry the same strong entity tag (RFC 9110 §8.8.3.2): bytes of
/// one representation.
fn same_representation(a: &HeaderMap, b: &HeaderMap) -> bool {
    match (strong_etag(a), strong_etag(b)) {
        (Some(a), Some(b)) => a.strong_eq(&b),
        _ => false,
    }
}

/// A range served from a partial entry: its bytes and the header fields of its `206` (without
/// `Age`).
#[derive(Debug)]
pub(crate) struct Part {
    pub(crate) body: Bytes,
    pub(crate) headers: HeaderMap,
}

/// What a partial entry does for a request.
#[derive(Debug)]
pub(crate) enum PartialLookup {
    /// One stored part holds the range the request asks for: serve it.
    Serve(Part),
    /// The entry is another variant (`Vary`): look up the one the request selects.
    OtherVariant,
    /// The origin answers, as if nothing were stored (the detail is `partial`).
    Forward,
}

/// What the partial entry `entry` does for a request, given the lookup stage's `verdict` on it
/// and whether the request may read the cache (`read`).
pub(crate) fn lookup(
    entry: &StoredResponse,
    verdict: Lookup,
    read: bool,
    method: &Method,
    request: &HeaderMap,
) -> PartialLookup {
    match verdict {
        Lookup::Unusable(Unusable::VaryMismatch) => PartialLookup::OtherVariant,
        Lookup::Fresh | Lookup::StaleAcceptable if read => {
            covered(entry, method, request).map_or(PartialLookup::Forward, PartialLookup::Serve)
        }
        _ => PartialLookup::Forward,
    }
}

/// The part of `entry` a plain single-range `GET` asks for, when one stored part holds it.
fn covered(entry: &StoredResponse, method: &Method, request: &HeaderMap) -> Option<Part> {
    if method != Method::GET {
        return None;
    }
    let conditional = [
        IF_RANGE,
        IF_MATCH,
        IF_NONE_MATCH,
        IF_MODIFIED_SINCE,
        IF_UNMODIFIED_SINCE,
    ];
    if conditional.iter().any(|name| request.contains_key(name)) {
        return None;
    }
    let mut lines = request.get_all(RANGE).iter();
    let (Some(range), None) = (lines.next(), lines.next()) else {
        return None;
    };
    let parts = Parts::of(entry)?;
    let complete_length = parts.complete_length();
    let Requested::Range(wanted) = range::requested(range.to_str().ok()?, complete_length) else {
        return None;
    };
    let offsets = parts.body_offsets(&wanted)?;
    let body = entry
        .body
        .get(offsets.clone())
        .map(|_| entry.body.slice(offsets))?;
    let mut headers = HeaderMap::with_capacity(entry.headers.len() + 3);
    for (name, value) in &entry.headers {
        if name != CONTENT_RANGE && name != CONTENT_LENGTH {
            headers.append(name.clone(), value.clone());
        }
    }
    let content_range = ContentRange::Bytes {
        range: wanted,
        complete_length,
    };
    headers.insert(CONTENT_RANGE, content_range.to_header_value());
    headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    Some(Part { body, headers })
}

/// Writes a `206` whose body has been read (`part`, from [`prepare`]), combined with what the
/// store holds for its variant (RFC 9111 §3.4), under `primary` (and its secondary key when it
/// varies). `max_bytes` bounds the stored parts (`max_body_size`). Nothing is written when the
/// body does not match its `Content-Range`, or when the complete response of the same
/// representation is stored already. A failed read writes the part alone.
pub(crate) fn put_part(
    store: &Arc<dyn Store>,
    primary: CacheKey,
    part: StoredResponse,
    max_bytes: usize,
) -> StoreFuture<()> {
    let store = store.clone();
    Box::pin(async move {
        let Some(parts) = Parts::of(&part) else {
            tracing::debug!("206 not stored: its body does not match its Content-Range");
            return Ok(());
        };
        let read_key = variant_key(&primary, &part.headers, &part.request.headers, Fields::Kept)
            .unwrap_or_else(|| primary.clone());
        let stored = store.get(&read_key).await.ok().flatten();
        match combine(stored.as_deref(), part, parts, max_bytes) {
            Some(entry) => put_entry(&store, primary, None, Arc::new(entry)).await,
            None => Ok(()),
        }
    })
}

/// The entry to write for the new `part` (with its `parts`), given what is `stored`; `None` to
/// keep the stored entry (the complete response of the same representation).
fn combine(
    stored: Option<&StoredResponse>,
    part: StoredResponse,
    parts: Parts,
    max_bytes: usize,
) -> Option<StoredResponse> {
    let Some(stored) = stored.filter(|s| same_representation(&s.headers, &part.headers)) else {
        return Some(alone(part, parts));
    };
    if !stored.is_partial() {
        return None;
    }
    let joined = Parts::of(stored).and_then(|ours| ours.combine(&stored.body, &parts, &part.body));
    match joined {
        Some((joined, body)) if joined.stored_bytes() <= max_bytes as u64 => {
            tracing::debug!(
                stored_bytes = joined.stored_bytes(),
                complete = joined.is_complete(),
                "206 combined with the stored parts"
            );
            Some(joined.into_entry(updated(stored, part), body))
        }
        _ => Some(alone(part, parts)),
    }
}

/// The new part on its own (a part that covers every byte is the complete response).
fn alone(part: StoredResponse, parts: Parts) -> StoredResponse {
    let body = part.body.clone();
    parts.into_entry(part, body)
}

/// `part` with the stored header fields it does not have: the fields of the new response
/// replace the stored fields of the same name (RFC 9111 §3.4); its request and times are kept.
fn updated(stored: &StoredResponse, part: StoredResponse) -> StoredResponse {
    let mut headers = stored.headers.clone();
    for name in part.headers.keys() {
        headers.remove(name);
    }
    for (name, value) in &part.headers {
        headers.append(name.clone(), value.clone());
    }
    StoredResponse { headers, ..part }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use cachelayer_store::{StalePolicy, StoredRequest};
    use http::{Uri, Version};
    use std::time::{Duration, UNIX_EPOCH};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn request(pairs: &[(&str, &str)]) -> RequestSnapshot {
        RequestSnapshot {
            method: Method::GET,
            uri: Uri::from_static("http://x/f"),
            headers: headers(pairs),
        }
    }

    #[test]
    fn which_206s_are_parts() {
        let ranged = request(&[("range", "bytes=0-3")]);
        let good = [("content-range", "bytes 0-3/10"), ("etag", "\"v1\"")];
        assert_eq!(check_part(&ranged, &headers(&good)), Ok(()));
        let with_length = [
            ("content-range", "bytes 0-3/10"),
            ("etag", "\"v1\""),
            ("content-length", "4"),
        ];
        assert_eq!(check_part(&ranged, &headers(&with_length)), Ok(()));
        let cases: &[(&[(&str, &str)], NotStoredPart)] = &[
            (
                &[("content-range", "bytes 0-3/*"), ("etag", "\"v1\"")],
                NotStoredPart::UnknownLength,
            ),
            (
                &[("content-range", "bytes 0-10/10"), ("etag", "\"v1\"")],
                NotStoredPart::BadContentRange,
            ),
            (&[("etag", "\"v1\"")], NotStoredPart::BadContentRange),
            (
                &[
                    ("content-type", "multipart/byteranges; boundary=x"),
                    ("etag", "\"v1\""),
                ],
                NotStoredPart::Multipart,
            ),
            (
                &[
                    ("content-range", "bytes 0-3/10"),
                    ("content-range", "bytes 5-6/10"),
                    ("etag", "\"v1\""),
                ],
                NotStoredPart::Multipart,
            ),
            (
                &[
                    ("content-range", "bytes 0-3/10"),
                    ("etag", "\"v1\""),
                    ("content-length", "3"),
                ],
                NotStoredPart::LengthMismatch,
            ),
            (
                &[("content-range", "bytes 0-3/10"), ("etag", "W/\"v1\"")],
                NotStoredPart::NoStrongValidator,
            ),
            (
                &[("content-range", "bytes 0-3/10"), ("etag", "v1")],
                NotStoredPart::NoStrongValidator,
            ),
            (
                &[
                    ("content-range", "bytes 0-3/10"),
                    ("last-modified", "Tue, 14 Nov 2023 22:13:20 GMT"),
                ],
                NotStoredPart::NoStrongValidator,
            ),
        ];
        for (fields, expected) in cases {
            assert_eq!(
                check_part(&ranged, &headers(fields)),
                Err(*expected),
                "{fields:?}"
            );
        }
        assert_eq!(
            check_part(&request(&[]), &headers(&good)),
            Err(NotStoredPart::NotAskedFor)
        );
    }

    fn entry(fields: &[(&str, &str)], body: &'static str) -> StoredResponse {
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        StoredResponse {
            request: StoredRequest {
                method: Method::GET,
                url: "http://x/f".into(),
                headers: HeaderMap::new(),
            },
            status: StatusCode::PARTIAL_CONTENT,
            version: Version::HTTP_11,
            headers: headers(fields),
            body: Bytes::from_static(body.as_bytes()),
            request_time: t,
            created_at: t,
            initial_age: Duration::ZERO,
            expires: None,
            stale: StalePolicy::default(),
            retain_until: None,
        }
    }

    fn new_part(etag: &str, content_range: &str, body: &'static str) -> (StoredResponse, Parts) {
        let part = entry(
            &[
                ("etag", etag),
                ("content-range", content_range),
                ("x-seen", "new"),
            ],
            body,
        );
        let parts = Parts::of(&part).unwrap();
        (part, parts)
    }

    #[test]
    fn parts_of_one_representation_join_into_the_complete_response() {
        let stored = entry(
            &[
                ("etag", "\"v1\""),
                ("content-range", "bytes 0-3/10"),
                ("x-seen", "old"),
                ("x-kept", "yes"),
            ],
            "0123",
        );
        let (part, parts) = new_part("\"v1\"", "bytes 6-9/10", "6789");
        let joined = combine(Some(&stored), part, parts, 1024).unwrap();
        assert!(joined.is_partial());
        assert_eq!(joined.body, "01236789");
        let lines: Vec<_> = joined.headers.get_all(CONTENT_RANGE).iter().collect();
        assert_eq!(lines, ["bytes 0-3/10", "bytes 6-9/10"]);
        assert_eq!(
            joined.headers["x-seen"], "new",
            "the new response's fields win"
        );
        assert_eq!(joined.headers["x-kept"], "yes", "fields it lacks are kept");

        let (part, parts) = new_part("\"v1\"", "bytes 3-6/10", "3456");
        let complete = combine(Some(&joined), part, parts, 1024).unwrap();
        assert_eq!(complete.status, StatusCode::OK);
        assert_eq!(complete.body, "0123456789");
        assert_eq!(complete.headers[CONTENT_LENGTH], "10");
        assert!(complete.headers.get(CONTENT_RANGE).is_none());
    }

    #[test]
    fn another_representation_or_too_many_bytes_replace_the_stored_parts() {
        let stored = entry(
            &[("etag", "\"v1\""), ("content-range", "bytes 0-3/10")],
            "0123",
        );
        let (part, parts) = new_part("\"v2\"", "bytes 4-5/10", "45");
        let replaced = combine(Some(&stored), part, parts, 1024).unwrap();
        assert_eq!(replaced.body, "45");
        assert_eq!(replaced.headers[ETAG], "\"v2\"");

        let (part, parts) = new_part("\"v1\"", "bytes 4-5/10", "45");
        let bounded = combine(Some(&stored), part, parts, 5).unwrap();
        assert_eq!(bounded.body, "45", "6 bytes would pass the bound of 5");

        let mut complete = entry(&[("etag", "\"v1\"")], "0123456789");
        complete.status = StatusCode::OK;
        let (part, parts) = new_part("\"v1\"", "bytes 4-5/10", "45");
        assert_eq!(combine(Some(&complete), part, parts, 1024), None);

        let (part, parts) = new_part("\"v1\"", "bytes 0-9/10", "0123456789");
        let whole = combine(None, part, parts, 1024).unwrap();
        assert_eq!(whole.status, StatusCode::OK, "one part of every byte");
    }

    #[test]
    fn only_plain_single_ranges_that_a_part_holds_are_served() {
        let stored = entry(
            &[
                ("etag", "\"v1\""),
                ("content-range", "bytes 0-3/10"),
                ("content-range", "bytes 6-9/10"),
            ],
            "01236789",
        );
        let ask = |pairs: &[(&str, &str)]| covered(&stored, &Method::GET, &headers(pairs));
        let part = ask(&[("range", "bytes=7-8")]).unwrap();
        assert_eq!(part.body, "78");
        assert_eq!(part.headers[CONTENT_RANGE], "bytes 7-8/10");
        assert_eq!(part.headers[CONTENT_LENGTH], "2");
        assert_eq!(part.headers.get_all(CONTENT_RANGE).iter().count(), 1);
        assert_eq!(ask(&[("range", "bytes=-2")]).unwrap().body, "89");
        assert!(ask(&[("range", "bytes=2-7")]).is_none(), "a gap");
        assert!(ask(&[]).is_none(), "the full response is not stored");
        assert!(ask(&[("range", "bytes=0-1,6-7")]).is_none());
        assert!(ask(&[("range", "bytes=0-1"), ("if-range", "\"v1\"")]).is_none());
        assert!(ask(&[("range", "bytes=0-1"), ("if-none-match", "\"v0\"")]).is_none());
        assert!(ask(&[("range", "bytes=20-")]).is_none());
        assert!(covered(&stored, &Method::HEAD, &headers(&[("range", "bytes=0-1")])).is_none());
    }
}
