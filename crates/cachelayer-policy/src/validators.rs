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
        let (weak, rest) = match value
            .strip_prefix("W/")
            .or_else(|| value.strip_prefix("w/"))
        {
            Some(rest) => (true, rest),
            None => (false, value),
        };
        let valid_char = |c: char| c != '"' && !c.is_whitespace() && !c.is_control();
        if let Some(quoted) = rest.strip_prefix('"') {
            let tag = quoted.strip_suffix('"')?;
            if !tag.chars().all(valid_char) {
                return None;
            }
            return Some(EntityTag {
                weak,
                tag: tag.to_string(),
            });
        }
        if rest.is_empty() || !rest.chars().all(|c| valid_char(c) && c != ',') {
            return None;
        }
        Some(EntityTag {
            weak,
            tag: rest.to_string(),
        })
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
    headers
        .get_all(http::header::ETAG)
        .iter()
        .find_map(|value| {
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
    request.contains_key(http::header::IF_NONE_MATCH)
        || request.contains_key(http::header::IF_MODIFIED_SINCE)
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
pub fn evaluate(
    request: &HeaderMap,
    stored_status: StatusCode,
    stored: &HeaderMap,
) -> ConditionalOutcome {
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
        return if matched {
            ConditionalOutcome::NotModified
        } else {
            ConditionalOutcome::Modified
        };
    }
    if request.contains_key(http::header::IF_MODIFIED_SINCE) {
        if stored_status != StatusCode::OK {
            return ConditionalOutcome::Modified;
        }
        let since = request
            .get(http::header::IF_MODIFIED_SINCE)
            .and_then(http_date);
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
        return if new.weak {
            new.weak_eq(&old)
        } else {
            new.strong_eq(&old)
        };
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
    headers
        .get_all(http::header::LAST_MODIFIED)
        .iter()
        .find_map(http_date)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Header (name, value) pairs.
    type Pairs = &'static [(&'static str, &'static str)];

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    fn tag(weak: bool, tag: &str) -> Option<EntityTag> {
        Some(EntityTag {
            weak,
            tag: tag.to_string(),
        })
    }

    const LM: &str = "Sun, 06 Nov 1994 08:49:37 GMT";
    const BEFORE_LM: &str = "Sun, 06 Nov 1994 08:00:00 GMT";
    const AFTER_LM: &str = "Mon, 07 Nov 1994 08:00:00 GMT";

    #[test]
    fn entity_tag_parse() {
        let cases: &[(&str, &str, Option<EntityTag>)] = &[
            ("RFC 9110 §8.8.3 strong", "\"abc\"", tag(false, "abc")),
            ("RFC 9110 §8.8.3 weak", "W/\"abc\"", tag(true, "abc")),
            ("lowercase weak prefix", "w/\"abc\"", tag(true, "abc")),
            ("empty tag is valid", "\"\"", tag(false, "")),
            ("surrounding whitespace", "  \"x\" ", tag(false, "x")),
            ("lenient unquoted", "abc123", tag(false, "abc123")),
            ("lenient unquoted weak", "W/abc", tag(true, "abc")),
            ("obs-text allowed", "\"caf\u{e9}\"", tag(false, "caf\u{e9}")),
            ("empty", "", None),
            ("only W/", "W/", None),
            ("unterminated", "\"abc", None),
            ("inner quote", "\"a\"b\"", None),
            ("inner space", "\"a b\"", None),
            ("unquoted with comma", "a,b", None),
            ("unquoted with space", "a b", None),
            ("lone quote", "\"", None),
        ];
        for (name, input, expected) in cases {
            assert_eq!(&EntityTag::parse(input), expected, "{name}");
        }
    }

    #[test]
    fn entity_tag_comparison() {
        // RFC 9110 §8.8.3.2 table.
        let cases = [
            ("W/\"1\"", "W/\"1\"", false, true),
            ("W/\"1\"", "W/\"2\"", false, false),
            ("W/\"1\"", "\"1\"", false, true),
            ("\"1\"", "\"1\"", true, true),
        ];
        for (a, b, strong, weak) in cases {
            let (a, b) = (EntityTag::parse(a).unwrap(), EntityTag::parse(b).unwrap());
            assert_eq!(a.strong_eq(&b), strong, "strong {a:?} {b:?}");
            assert_eq!(a.weak_eq(&b), weak, "weak {a:?} {b:?}");
            assert_eq!(b.strong_eq(&a), strong, "strong is symmetric");
            assert_eq!(b.weak_eq(&a), weak, "weak is symmetric");
        }
    }

    #[test]
    fn has_validator_and_last_modified() {
        let cases: &[(&str, Pairs, bool)] = &[
            ("none", &[], false),
            ("ETag", &[("etag", "\"x\"")], true),
            ("invalid ETag", &[("etag", "\"x")], false),
            ("Last-Modified", &[("last-modified", LM)], true),
            (
                "invalid Last-Modified",
                &[("last-modified", "yesterday")],
                false,
            ),
            ("Date is not a validator", &[("date", LM)], false),
        ];
        for (name, headers, expected) in cases {
            assert_eq!(has_validator(&map(headers)), *expected, "{name}");
        }
        let several = map(&[("last-modified", "bad"), ("last-modified", LM)]);
        assert_eq!(
            last_modified(&several),
            httpdate::parse_http_date(LM).ok(),
            "first valid line"
        );
    }

    struct AddCase {
        name: &'static str,
        stored: &'static [(&'static str, &'static str)],
        request: &'static [(&'static str, &'static str)],
        added: bool,
        inm: Option<&'static str>,
        ims: Option<&'static str>,
    }

    #[test]
    fn add_conditional_headers_cases() {
        let cases = [
            AddCase {
                name: "§4.3.1 ETag",
                stored: &[("etag", "W/\"v1\"")],
                request: &[],
                added: true,
                inm: Some("W/\"v1\""),
                ims: None,
            },
            AddCase {
                name: "§4.3.1 Last-Modified",
                stored: &[("last-modified", LM)],
                request: &[],
                added: true,
                inm: None,
                ims: Some(LM),
            },
            AddCase {
                name: "§4.3.1 both",
                stored: &[("etag", "\"v1\""), ("last-modified", LM)],
                request: &[],
                added: true,
                inm: Some("\"v1\""),
                ims: Some(LM),
            },
            AddCase {
                name: "§4.3.1 the client's own conditions are replaced",
                stored: &[("etag", "\"v1\"")],
                request: &[
                    ("if-none-match", "\"other\""),
                    ("if-modified-since", AFTER_LM),
                ],
                added: true,
                inm: Some("\"v1\""),
                ims: None,
            },
            AddCase {
                name: "no validator: nothing changes",
                stored: &[("date", LM)],
                request: &[("if-none-match", "\"mine\"")],
                added: false,
                inm: Some("\"mine\""),
                ims: None,
            },
            AddCase {
                name: "invalid ETag not copied",
                stored: &[("etag", "\"bad"), ("last-modified", LM)],
                request: &[],
                added: true,
                inm: None,
                ims: Some(LM),
            },
            AddCase {
                name: "invalid Last-Modified not copied",
                stored: &[("etag", "\"a\""), ("last-modified", "nope")],
                request: &[],
                added: true,
                inm: Some("\"a\""),
                ims: None,
            },
        ];
        for case in cases {
            let mut request = map(case.request);
            assert_eq!(
                add_conditional_headers(&map(case.stored), &mut request),
                case.added,
                "{}",
                case.name
            );
            assert_eq!(
                request
                    .get(http::header::IF_NONE_MATCH)
                    .map(|v| v.to_str().unwrap()),
                case.inm,
                "{}: If-None-Match",
                case.name
            );
            assert_eq!(
                request
                    .get(http::header::IF_MODIFIED_SINCE)
                    .map(|v| v.to_str().unwrap()),
                case.ims,
                "{}: If-Modified-Since",
                case.name
            );
            assert!(
                request.get_all(http::header::IF_NONE_MATCH).iter().count() <= 1,
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn is_conditional_cases() {
        assert!(!is_conditional(&map(&[])));
        assert!(is_conditional(&map(&[("if-none-match", "*")])));
        assert!(is_conditional(&map(&[("if-modified-since", LM)])));
        assert!(
            !is_conditional(&map(&[("if-match", "*")])),
            "If-Match is not evaluated by a cache"
        );
    }

    struct EvalCase {
        name: &'static str,
        request: &'static [(&'static str, &'static str)],
        status: u16,
        stored: &'static [(&'static str, &'static str)],
        expected: ConditionalOutcome,
    }

    #[test]
    fn evaluate_cases() {
        use ConditionalOutcome::{Modified, NotConditional, NotModified};
        const STORED: &[(&str, &str)] = &[
            ("etag", "\"v1\""),
            ("last-modified", LM),
            ("date", AFTER_LM),
        ];
        let c = |name, request, status, stored, expected| EvalCase {
            name,
            request,
            status,
            stored,
            expected,
        };
        let cases = [
            c("no conditions", &[], 200, STORED, NotConditional),
            c(
                "RFC 9110 §13.1.2 matching strong tag",
                &[("if-none-match", "\"v1\"")],
                200,
                STORED,
                NotModified,
            ),
            c(
                "§13.1.2 weak comparison",
                &[("if-none-match", "W/\"v1\"")],
                200,
                STORED,
                NotModified,
            ),
            c(
                "§13.1.2 non-matching tag",
                &[("if-none-match", "\"v2\"")],
                200,
                STORED,
                Modified,
            ),
            c(
                "§13.1.2 one of a list",
                &[("if-none-match", "\"a\", \"v1\"")],
                200,
                STORED,
                NotModified,
            ),
            c(
                "§13.1.2 list across lines",
                &[("if-none-match", "\"a\""), ("if-none-match", "\"v1\"")],
                200,
                STORED,
                NotModified,
            ),
            c(
                "§13.1.2 comma inside a tag does not split",
                &[("if-none-match", "\"a,\"v1\"\"")],
                200,
                STORED,
                Modified,
            ),
            c(
                "§13.1.2 star",
                &[("if-none-match", "*")],
                200,
                STORED,
                NotModified,
            ),
            c(
                "§13.1.2 star without ETag",
                &[("if-none-match", "*")],
                200,
                &[("date", LM)],
                NotModified,
            ),
            c(
                "§13.1.2 tag against a stored response without ETag",
                &[("if-none-match", "\"v1\"")],
                200,
                &[("last-modified", LM)],
                Modified,
            ),
            c(
                "§13.1.2 garbage list",
                &[("if-none-match", ",,,")],
                200,
                STORED,
                Modified,
            ),
            c(
                "only 200 can be not modified (INM)",
                &[("if-none-match", "\"v1\"")],
                404,
                STORED,
                Modified,
            ),
            c(
                "only 200 can be not modified (star)",
                &[("if-none-match", "*")],
                203,
                STORED,
                Modified,
            ),
            c(
                "§13.2.2 If-None-Match takes precedence over If-Modified-Since",
                &[("if-none-match", "\"v2\""), ("if-modified-since", AFTER_LM)],
                200,
                STORED,
                Modified,
            ),
            c(
                "§13.1.3 IMS equal to Last-Modified",
                &[("if-modified-since", LM)],
                200,
                STORED,
                NotModified,
            ),
            c(
                "§13.1.3 IMS after Last-Modified",
                &[("if-modified-since", AFTER_LM)],
                200,
                STORED,
                NotModified,
            ),
            c(
                "§13.1.3 IMS before Last-Modified",
                &[("if-modified-since", BEFORE_LM)],
                200,
                STORED,
                Modified,
            ),
            c(
                "§13.1.3 invalid IMS",
                &[("if-modified-since", "yesterday")],
                200,
                STORED,
                Modified,
            ),
            c(
                "§4.3.2 IMS against Date without Last-Modified",
                &[("if-modified-since", AFTER_LM)],
                200,
                &[("date", LM)],
                NotModified,
            ),
            c(
                "§4.3.2 IMS before Date",
                &[("if-modified-since", BEFORE_LM)],
                200,
                &[("date", LM)],
                Modified,
            ),
            c(
                "IMS with neither Last-Modified nor Date",
                &[("if-modified-since", AFTER_LM)],
                200,
                &[],
                Modified,
            ),
            c(
                "only 200 can be not modified (IMS)",
                &[("if-modified-since", AFTER_LM)],
                301,
                STORED,
                Modified,
            ),
        ];
        for case in cases {
            let status = StatusCode::from_u16(case.status).unwrap();
            assert_eq!(
                evaluate(&map(case.request), status, &map(case.stored)),
                case.expected,
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn not_modified_matches_cases() {
        let cases: &[(&str, Pairs, Pairs, bool)] = &[
            (
                "§4.3.4 same strong ETag",
                &[("etag", "\"a\"")],
                &[("etag", "\"a\"")],
                true,
            ),
            (
                "§4.3.4 different strong ETag",
                &[("etag", "\"a\"")],
                &[("etag", "\"b\"")],
                false,
            ),
            (
                "§4.3.4 weak ETag matches weakly",
                &[("etag", "\"a\"")],
                &[("etag", "W/\"a\"")],
                true,
            ),
            (
                "§4.3.4 weak to weak",
                &[("etag", "W/\"a\"")],
                &[("etag", "W/\"a\"")],
                true,
            ),
            (
                "§4.3.4 strong 304 against a weak stored tag",
                &[("etag", "W/\"a\"")],
                &[("etag", "\"a\"")],
                false,
            ),
            (
                "§4.3.4 ETag but stored has none",
                &[("last-modified", LM)],
                &[("etag", "\"a\"")],
                false,
            ),
            (
                "invalid ETag in the 304",
                &[("etag", "\"a\"")],
                &[("etag", "\"a")],
                false,
            ),
            (
                "§4.3.4 same Last-Modified",
                &[("last-modified", LM)],
                &[("last-modified", LM)],
                true,
            ),
            (
                "§4.3.4 different Last-Modified",
                &[("last-modified", LM)],
                &[("last-modified", AFTER_LM)],
                false,
            ),
            (
                "invalid Last-Modified in the 304",
                &[("last-modified", LM)],
                &[("last-modified", "x")],
                false,
            ),
            (
                "§4.3.4 ETag decides over Last-Modified",
                &[("etag", "\"a\""), ("last-modified", LM)],
                &[("etag", "\"a\""), ("last-modified", AFTER_LM)],
                true,
            ),
            (
                "§4.3.4 no validators in the 304",
                &[("etag", "\"a\"")],
                &[("date", LM)],
                true,
            ),
        ];
        for (name, stored, not_modified, expected) in cases {
            assert_eq!(
                not_modified_matches(&map(stored), &map(not_modified)),
                *expected,
                "{name}"
            );
        }
    }

    #[test]
    fn freshen_headers_replaces_by_name() {
        let mut stored = map(&[
            ("content-length", "100"),
            ("content-encoding", "gzip"),
            ("cache-control", "max-age=10"),
            ("x-multi", "a"),
            ("x-multi", "b"),
            ("x-kept", "k"),
            ("etag", "\"a\""),
        ]);
        let not_modified = map(&[
            ("content-length", "0"),
            ("content-encoding", "identity"),
            ("transfer-encoding", "chunked"),
            ("content-range", "bytes 0-1/2"),
            ("cache-control", "max-age=60"),
            ("x-multi", "c"),
            ("x-new", "1"),
            ("x-new", "2"),
            ("date", LM),
        ]);
        freshen_headers(&mut stored, &not_modified);
        let all = |name: &str| {
            stored
                .get_all(name)
                .iter()
                .map(|v| v.to_str().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        // (header, expected values) — RFC 9111 §3.2, §4.3.4
        let cases: &[(&str, &[&str])] = &[
            ("content-length", &["100"]),
            ("content-encoding", &["gzip"]),
            ("transfer-encoding", &[]),
            ("content-range", &[]),
            ("cache-control", &["max-age=60"]),
            ("x-multi", &["c"]),
            ("x-new", &["1", "2"]),
            ("x-kept", &["k"]),
            ("etag", &["\"a\""]),
            ("date", &[LM]),
        ];
        for (name, expected) in cases {
            assert_eq!(all(name), *expected, "{name}");
        }
    }

    #[test]
    fn not_modified_response_headers_selects_fields() {
        let stored = map(&[
            ("cache-control", "max-age=60"),
            ("content-location", "/a"),
            ("date", LM),
            ("etag", "\"a\""),
            ("expires", AFTER_LM),
            ("last-modified", LM),
            ("vary", "accept"),
            ("vary", "accept-encoding"),
            ("content-length", "100"),
            ("content-type", "text/plain"),
            ("set-cookie", "a=b"),
        ]);
        let out = not_modified_response_headers(&stored);
        assert_eq!(out.len(), 8);
        assert_eq!(out.get_all("vary").iter().count(), 2);
        for dropped in ["content-length", "content-type", "set-cookie"] {
            assert!(!out.contains_key(dropped), "{dropped}");
        }
        assert!(not_modified_response_headers(&HeaderMap::new()).is_empty());
    }

    #[test]
    fn non_utf8_values_do_not_panic() {
        let mut odd = HeaderMap::new();
        for name in [
            "etag",
            "last-modified",
            "if-none-match",
            "if-modified-since",
            "date",
        ] {
            odd.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(b"\xff\xfe").unwrap(),
            );
        }
        assert!(!has_validator(&odd));
        assert_eq!(
            evaluate(&odd, StatusCode::OK, &odd),
            ConditionalOutcome::Modified
        );
        assert!(!not_modified_matches(&odd, &odd));
        let mut request = HeaderMap::new();
        assert!(!add_conditional_headers(&odd, &mut request));
        let mut stored = odd.clone();
        freshen_headers(&mut stored, &odd);
        assert_eq!(stored, odd);
    }
}
