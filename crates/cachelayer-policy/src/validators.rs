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

use crate::freshness::{date_header, http_date};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use std::time::SystemTime;

/// An entity tag (RFC 9110 §8.8.3): `"xyz"` or `W/"xyz"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EntityTag {
    /// `true` for a weak tag (`W/` prefix).
    pub weak: bool,
    /// The opaque tag, without quotes: the octets between them, compared octet by octet (they
    /// may include obs-text, 0x80-0xFF, which is not UTF-8).
    pub tag: Vec<u8>,
}

/// `etagc` (RFC 9110 §8.8.3): `!`, `#`-`~`, or obs-text (0x80-0xFF); that is, every octet
/// above space but `"` and DEL. Without branches, so that [`all_etagc`] runs as a vector loop.
fn is_etagc(b: u8) -> bool {
    (b > b' ') & (b != b'"') & (b != 0x7f)
}

/// Whether every octet of `tag` is an `etagc`.
fn all_etagc(tag: &[u8]) -> bool {
    tag.iter().fold(true, |all, &b| all & is_etagc(b))
}

/// Optional whitespace (RFC 9110 §5.6.3): space or horizontal tab.
fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim_ows(mut bytes: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = bytes {
        if !is_ows(*first) {
            break;
        }
        bytes = rest;
    }
    while let [rest @ .., last] = bytes {
        if !is_ows(*last) {
            break;
        }
        bytes = rest;
    }
    bytes
}

impl EntityTag {
    /// Parses one entity tag; `None` when the value is not a valid entity-tag (unquoted tags, as
    /// some servers send, are accepted as strong tags). Same as [`EntityTag::parse_bytes`].
    pub fn parse(value: &str) -> Option<EntityTag> {
        Self::parse_bytes(value.as_bytes())
    }

    /// Parses one entity tag from a field value's octets (RFC 9110 §8.8.3), surrounding
    /// whitespace ignored; `None` when it is not one.
    ///
    /// A quoted tag holds `etagc` octets only (`!`, `#`-`~`, obs-text 0x80-0xFF): commas and
    /// `W/` inside the quotes are part of the tag, `""` and `W/""` are valid (empty) tags. Two
    /// leniencies, each unambiguous: the weak prefix in either case (`W/`, `w/`), and an unquoted
    /// tag of `etagc` octets other than `,` (as some servers send), read as strong.
    pub fn parse_bytes(value: &[u8]) -> Option<EntityTag> {
        let (weak, tag) = entity_tag_parts(value)?;
        Some(EntityTag {
            weak,
            tag: tag.to_vec(),
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

/// The value of an `If-Match` or `If-None-Match` field (RFC 9110 §13.1.1, §13.1.2): `*`, or a
/// list of entity tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntityTagList {
    /// `*`: any current representation.
    Any,
    /// One or more entity tags, in the order sent.
    Tags(Vec<EntityTag>),
}

impl EntityTagList {
    /// Parses the field lines of one `If-Match` or `If-None-Match` as one list (RFC 9110
    /// §5.3, §5.6.1); `None` when the field is absent or malformed.
    ///
    /// Empty list elements and whitespace around commas are ignored (§5.6.1.2); a comma inside
    /// quotes is part of a tag; the weak prefix is read in either case. Malformed: a member that
    /// is not a quoted tag or `*` (the unquoted tags [`EntityTag::parse`] reads in an `ETag` are
    /// not accepted in a list, where they cannot be told from garbage), an unterminated quote, anything but whitespace or a
    /// comma after a closing quote, an octet a tag may not hold (control characters, whitespace
    /// inside an unquoted tag), a list without a member, or `*` together with other members
    /// (§13.1.1 calls that syntactically invalid). A caller fails closed on `None`: a malformed
    /// `If-None-Match` never yields a 304, a malformed `If-Match` never lets a stored response
    /// stand in for the origin's answer.
    pub fn parse<'a>(lines: impl IntoIterator<Item = &'a HeaderValue>) -> Option<EntityTagList> {
        let mut any = false;
        let mut tags = Vec::new();
        for line in lines {
            let mut rest = line.as_bytes();
            loop {
                rest = trim_leading_ows_and_commas(rest);
                if rest.is_empty() {
                    break;
                }
                let (member, after) = split_member(rest)?;
                match member {
                    b"*" => any = true,
                    [.., b'"'] => tags.push(EntityTag::parse_bytes(member)?),
                    _ => return None,
                }
                let after = trim_ows(after);
                match after {
                    [] => break,
                    [b',', more @ ..] => rest = more,
                    _ => return None,
                }
            }
        }
        match (any, tags.is_empty()) {
            (true, true) => Some(EntityTagList::Any),
            (false, false) => Some(EntityTagList::Tags(tags)),
            _ => None,
        }
    }

    /// Whether `etag` matches by `compare` (`*` matches any tag).
    fn matches(
        &self,
        etag: Option<&EntityTag>,
        compare: fn(&EntityTag, &EntityTag) -> bool,
    ) -> bool {
        match self {
            EntityTagList::Any => true,
            EntityTagList::Tags(tags) => {
                etag.is_some_and(|etag| tags.iter().any(|tag| compare(tag, etag)))
            }
        }
    }
}

/// [`EntityTag::parse_bytes`] without the copy: the weakness and the opaque octets.
fn entity_tag_parts(value: &[u8]) -> Option<(bool, &[u8])> {
    let value = trim_ows(value);
    let (weak, rest) = match value {
        [b'W' | b'w', b'/', rest @ ..] => (true, rest),
        _ => (false, value),
    };
    let tag = match rest {
        [b'"', inner @ .., b'"'] => inner,
        [b'"', ..] => return None,
        [] => return None,
        unquoted if unquoted.contains(&b',') => return None,
        unquoted => unquoted,
    };
    all_etagc(tag).then_some((weak, tag))
}

fn trim_leading_ows_and_commas(mut bytes: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = bytes {
        if !is_ows(*first) && *first != b',' {
            break;
        }
        bytes = rest;
    }
    bytes
}

/// One list member at the start of `bytes` (which starts with neither whitespace nor a comma)
/// and what follows it; `None` for an unterminated quote.
fn split_member(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let quote_at = match bytes {
        [b'W' | b'w', b'/', b'"', ..] => Some(2),
        [b'"', ..] => Some(0),
        _ => None,
    };
    let end = match quote_at {
        Some(open) => {
            let close = bytes[open + 1..].iter().position(|&b| b == b'"')?;
            open + 1 + close + 1
        }
        None => bytes
            .iter()
            .position(|&b| b == b',' || is_ows(b))
            .unwrap_or(bytes.len()),
    };
    Some(bytes.split_at(end))
}

/// `true` when the stored response has a validator (`ETag` or a valid `Last-Modified`), so that
/// it can be revalidated with a conditional request.
pub fn has_validator(stored: &HeaderMap) -> bool {
    // The `ETag` lines are checked in place: no tag is copied out to be dropped.
    stored
        .get_all(http::header::ETAG)
        .iter()
        .any(|value| entity_tag_parts(value.as_bytes()).is_some())
        || last_modified(stored).is_some()
}

/// The `ETag` of a response: the first line that is a valid entity-tag, with its raw value (to
/// send back verbatim, RFC 9110 §13.1.3).
pub fn etag_with_value(headers: &HeaderMap) -> Option<(EntityTag, &HeaderValue)> {
    headers
        .get_all(http::header::ETAG)
        .iter()
        .find_map(|value| Some((EntityTag::parse_bytes(value.as_bytes())?, value)))
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
/// `If-None-Match` lines are read as one list ([`EntityTagList::parse`]: commas inside quotes
/// do not split, obs-text is compared octet by octet). A malformed `If-None-Match` gives
/// [`ConditionalOutcome::Modified`] (fail closed: a full response, never a wrong 304), and
/// `If-Modified-Since` is not consulted.
pub fn evaluate(
    request: &HeaderMap,
    stored_status: StatusCode,
    stored: &HeaderMap,
) -> ConditionalOutcome {
    if request.contains_key(http::header::IF_NONE_MATCH) {
        if stored_status != StatusCode::OK {
            return ConditionalOutcome::Modified;
        }
        let matched = EntityTagList::parse(request.get_all(http::header::IF_NONE_MATCH))
            .is_some_and(|list| list.matches(etag(stored).as_ref(), EntityTag::weak_eq));
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

/// What a stored response can do for a request that carries the preconditions only an origin
/// server evaluates: `If-Match` and `If-Unmodified-Since`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// The request has neither `If-Match` nor `If-Unmodified-Since`.
    Absent,
    /// The stored response satisfies them: serving it is what ignoring them gives, which RFC
    /// 9110 §13.1.1 and §13.1.4 allow a cache.
    Satisfied,
    /// The stored response does not satisfy them, or the cache cannot tell: the request goes to
    /// the origin, which evaluates them (and may answer 412 Precondition Failed).
    ForOrigin,
}

/// Whether a stored response may answer a request carrying `If-Match` or `If-Unmodified-Since`
/// without the origin.
///
/// RFC 9110 §13.2.2 gives these two to the origin server only (steps 1 and 2 apply "when the
/// recipient is the origin server"), and RFC 9111 §4.3.2 says a cache MUST NOT evaluate
/// conditional header fields that only apply to an origin server: so the cache never answers
/// 412 itself. It may ignore them (§13.1.1, §13.1.4), which is harmless when the stored response
/// satisfies them; otherwise ignoring them would hand the client a representation it asked not
/// to get (a range to join to another representation's bytes, say), so the request is forwarded:
///
/// - `If-Match` (§13.1.1, strong comparison): satisfied by `*` or by a member strongly equal to
///   the stored `ETag`. A weak or missing stored `ETag`, or a malformed list
///   ([`EntityTagList::parse`]), gives [`Precondition::ForOrigin`].
/// - `If-Unmodified-Since` (§13.1.4), only without `If-Match` (§13.2.2): satisfied when the
///   stored `Last-Modified` is not after it; ignored (satisfied) when it is not one valid
///   HTTP-date, as the origin must ignore it too; [`Precondition::ForOrigin`] when the stored
///   response has no `Last-Modified`.
/// - A stored status other than 2xx satisfies both: an origin ignores preconditions when its
///   answer would not be 2xx or 412 (§13.2.1).
pub fn stored_precondition(
    request: &HeaderMap,
    stored_status: StatusCode,
    stored: &HeaderMap,
) -> Precondition {
    let if_match = request.contains_key(http::header::IF_MATCH);
    let if_unmodified_since = request.contains_key(http::header::IF_UNMODIFIED_SINCE);
    if !if_match && !if_unmodified_since {
        return Precondition::Absent;
    }
    if !stored_status.is_success() {
        return Precondition::Satisfied;
    }
    let satisfied = if if_match {
        EntityTagList::parse(request.get_all(http::header::IF_MATCH))
            .is_some_and(|list| list.matches(etag(stored).as_ref(), EntityTag::strong_eq))
    } else {
        let mut lines = request.get_all(http::header::IF_UNMODIFIED_SINCE).iter();
        let since = match (lines.next(), lines.next()) {
            (Some(line), None) => http_date(line),
            _ => None,
        };
        match since {
            None => true,
            Some(since) => last_modified(stored).is_some_and(|modified| modified <= since),
        }
    };
    if satisfied {
        Precondition::Satisfied
    } else {
        Precondition::ForOrigin
    }
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
            tag: tag.as_bytes().to_vec(),
        })
    }

    fn raw(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        headers
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
            ("§8.8.3 empty weak tag", "W/\"\"", tag(true, "")),
            ("§8.8.3 comma inside quotes", "\"a,b\"", tag(false, "a,b")),
            (
                "§8.8.3 W/ inside quotes is tag text",
                "\"W/x\"",
                tag(false, "W/x"),
            ),
            ("weak with W/ inside", "W/\"W/\"", tag(true, "W/")),
            ("§8.8.3 etagc edges", "\"!#~\"", tag(false, "!#~")),
            ("surrounding whitespace", "  \"x\" ", tag(false, "x")),
            ("surrounding tabs", "\t\"x\"\t", tag(false, "x")),
            ("lenient unquoted", "abc123", tag(false, "abc123")),
            ("lenient unquoted weak", "W/abc", tag(true, "abc")),
            ("empty", "", None),
            ("only W/", "W/", None),
            ("unterminated", "\"abc", None),
            ("weak unterminated", "W/\"abc", None),
            ("inner quote", "\"a\"b\"", None),
            ("inner space", "\"a b\"", None),
            ("inner tab", "\"a\tb\"", None),
            ("space between W/ and quote", "W/ \"a\"", None),
            ("unquoted with comma", "a,b", None),
            ("unquoted with space", "a b", None),
            ("unquoted with quote", "a\"b", None),
            ("lone quote", "\"", None),
        ];
        for (name, input, expected) in cases {
            assert_eq!(&EntityTag::parse(input), expected, "{name}");
        }
        // obs-text (0x80-0xFF) is etagc (§8.8.3): compared as octets, not as UTF-8.
        let obs = EntityTag::parse_bytes(b"\"caf\xe9\"").unwrap();
        assert_eq!((obs.weak, obs.tag.as_slice()), (false, &b"caf\xe9"[..]));
        let weak_obs = EntityTag::parse_bytes(b"W/\"\x80\xff\"").unwrap();
        assert_eq!(
            (weak_obs.weak, weak_obs.tag.as_slice()),
            (true, &b"\x80\xff"[..])
        );
        assert_eq!(
            EntityTag::parse("\"caf\u{e9}\"").unwrap().tag,
            "caf\u{e9}".as_bytes(),
            "UTF-8 text is obs-text octets too"
        );
        assert_eq!(
            EntityTag::parse_bytes(b"\"a\x7fb\""),
            None,
            "DEL is not etagc"
        );
        assert_eq!(
            EntityTag::parse_bytes(b"\"a\x01b\""),
            None,
            "controls are not"
        );
    }

    #[test]
    fn entity_tag_list_parse() {
        use EntityTagList::{Any, Tags};
        let tags = |list: &[(bool, &str)]| {
            Some(Tags(
                list.iter()
                    .map(|&(weak, t)| tag(weak, t).unwrap())
                    .collect(),
            ))
        };
        /// (name, field lines, expected)
        type Case<'a> = (&'a str, &'a [&'a [u8]], Option<EntityTagList>);
        let cases: &[Case<'_>] = &[
            ("§13.1.2 star", &[b"*"], Some(Any)),
            ("star with whitespace", &[b"  * "], Some(Any)),
            ("one tag", &[b"\"a\""], tags(&[(false, "a")])),
            (
                "§5.6.1 list",
                &[b"\"a\", W/\"b\""],
                tags(&[(false, "a"), (true, "b")]),
            ),
            (
                "no space after comma",
                &[b"\"a\",\"b\""],
                tags(&[(false, "a"), (false, "b")]),
            ),
            (
                "tabs and spaces around commas",
                &[b"\t\"a\" \t,\t W/\"b\"\t"],
                tags(&[(false, "a"), (true, "b")]),
            ),
            (
                "§5.6.1.2 empty elements ignored",
                &[b", ,\"a\",,  ,\"b\",", b","],
                tags(&[(false, "a"), (false, "b")]),
            ),
            (
                "§5.3 lines combine",
                &[b"\"a\"", b"W/\"b\""],
                tags(&[(false, "a"), (true, "b")]),
            ),
            (
                "comma inside quotes does not split",
                &[b"\"a,b\", \"c\""],
                tags(&[(false, "a,b"), (false, "c")]),
            ),
            (
                "W/ inside quotes",
                &[b"\"W/a\", W/\"W/\""],
                tags(&[(false, "W/a"), (true, "W/")]),
            ),
            (
                "empty tags",
                &[b"\"\", W/\"\""],
                tags(&[(false, ""), (true, "")]),
            ),
            ("unquoted members", &[b"abc"], None),
            ("unquoted weak member", &[b"\"a\", W/def"], None),
            ("empty field", &[b""], None),
            ("only commas", &[b" , ,"], None),
            ("§13.1.1 star with a tag", &[b"*, \"a\""], None),
            ("star across lines with a tag", &[b"\"a\"", b"*"], None),
            ("unterminated quote", &[b"\"a\", \"b"], None),
            ("text after a closing quote", &[b"\"a\"b"], None),
            ("two tags without a comma", &[b"\"a\" \"b\""], None),
            ("space inside a tag", &[b"\"a b\""], None),
            ("a valid tag then garbage", &[b"\"v1\", {garbage}"], None),
            ("a quote in an unquoted member", &[b"a\"b"], None),
        ];
        for (name, lines, expected) in cases {
            let headers: Vec<HeaderValue> = lines
                .iter()
                .map(|line| HeaderValue::from_bytes(line).unwrap())
                .collect();
            assert_eq!(&EntityTagList::parse(&headers), expected, "{name}");
        }
        let obs = [HeaderValue::from_bytes(b"\"\xe9\", W/\"\xff,\"").unwrap()];
        assert_eq!(
            EntityTagList::parse(&obs),
            Some(Tags(vec![
                EntityTag {
                    weak: false,
                    tag: vec![0xe9]
                },
                EntityTag {
                    weak: true,
                    tag: vec![0xff, b',']
                },
            ])),
            "obs-text"
        );
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

    /// Every octet inside quotes and unquoted, weak and strong: `etagc` as RFC 9110 spells it
    /// (`!`, `#`-`~`, obs-text), and `has_validator` agrees with `etag` on each.
    #[test]
    fn entity_tag_octets_and_has_validator_agree() {
        let etagc = |b: u8| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80;
        for b in 0..=u8::MAX {
            for prefix in [&b""[..], b"W/", b"w/"] {
                let quoted = [prefix, b"\"a", &[b], b"z\""].concat();
                let unquoted = [prefix, b"a", &[b], b"z"].concat();
                for (value, valid) in [(quoted, etagc(b)), (unquoted, etagc(b) && b != b',')] {
                    let parsed = EntityTag::parse_bytes(&value);
                    assert_eq!(parsed.is_some(), valid, "{value:?}");
                    if let Some(tag) = &parsed {
                        assert_eq!(tag.weak, !prefix.is_empty(), "{value:?}");
                        assert_eq!(tag.tag, [b'a', b, b'z'], "{value:?}");
                    }
                    let Ok(header) = HeaderValue::from_bytes(&value) else {
                        continue;
                    };
                    let mut headers = HeaderMap::new();
                    headers.insert(http::header::ETAG, header);
                    assert_eq!(has_validator(&headers), valid, "{value:?}");
                    assert_eq!(etag(&headers), parsed, "{value:?}");
                    assert_eq!(
                        etag_with_value(&headers).map(|(tag, value)| (tag, value.clone())),
                        parsed.map(|tag| (tag, headers[http::header::ETAG].clone())),
                        "{value:?}"
                    );
                }
            }
        }
        // A long tag (the vector loop and its tail), and lines after an invalid one.
        let long = format!("W/\"{}\"", "0123456789abcdef".repeat(5));
        assert_eq!(EntityTag::parse(&long).map(|t| t.tag.len()), Some(80));
        assert_eq!(EntityTag::parse(&format!("{long}\x7f")), None);
        let mut lines = HeaderMap::new();
        lines.append(http::header::ETAG, HeaderValue::from_static("\"a b\""));
        lines.append(http::header::ETAG, HeaderValue::from_static(" W/\"v2\"\t"));
        assert!(has_validator(&lines));
        let (tag, value) = etag_with_value(&lines).unwrap();
        assert_eq!(
            (tag.weak, &tag.tag[..], value.as_bytes()),
            (true, &b"v2"[..], &b" W/\"v2\"\t"[..])
        );
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
                "§8.8.3.2 W/\"\" weakly matches a stored \"\"",
                &[("if-none-match", "W/\"\"")],
                200,
                &[("etag", "\"\"")],
                NotModified,
            ),
            c(
                "§8.8.3 \"\" does not match \"v1\"",
                &[("if-none-match", "\"\"")],
                200,
                STORED,
                Modified,
            ),
            c(
                "§8.8.3 a tag with a comma",
                &[("if-none-match", "\"x\", \"a,b\"")],
                200,
                &[("etag", "\"a,b\"")],
                NotModified,
            ),
            c(
                "§8.8.3 a tag with a comma is not its halves",
                &[("if-none-match", "\"a,b\"")],
                200,
                &[("etag", "\"a\"")],
                Modified,
            ),
            c(
                "§8.8.3 W/ inside quotes is tag text",
                &[("if-none-match", "\"W/v1\"")],
                200,
                STORED,
                Modified,
            ),
            c(
                "§8.8.3 obs-text tags compare by octets",
                &[("if-none-match", "W/\"caf\u{e9}\"")],
                200,
                &[("etag", "\"caf\u{e9}\"")],
                NotModified,
            ),
            c(
                "obs-text tags that differ",
                &[("if-none-match", "\"caf\u{e8}\"")],
                200,
                &[("etag", "\"caf\u{e9}\"")],
                Modified,
            ),
            c(
                "odd whitespace in the list",
                &[("if-none-match", " ,\t\"x\" ,,\tW/\"v1\"\t, ")],
                200,
                STORED,
                NotModified,
            ),
            c(
                "fail closed: a matching tag next to garbage",
                &[("if-none-match", "\"v1\", garbage")],
                200,
                STORED,
                Modified,
            ),
            c(
                "fail closed: unterminated quote after a match",
                &[("if-none-match", "\"v1\", \"v2")],
                200,
                STORED,
                Modified,
            ),
            c(
                "fail closed: star with tags",
                &[("if-none-match", "*, \"v1\"")],
                200,
                STORED,
                Modified,
            ),
            c(
                "fail closed: a malformed line among good ones",
                &[("if-none-match", "\"v1\""), ("if-none-match", "\"a\"b")],
                200,
                STORED,
                Modified,
            ),
            c(
                "fail closed: a malformed If-None-Match does not fall back to IMS",
                &[("if-none-match", "\"v1"), ("if-modified-since", AFTER_LM)],
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
    fn stored_precondition_cases() {
        use Precondition::{Absent, ForOrigin, Satisfied};
        const STORED: Pairs = &[("etag", "\"v1\""), ("last-modified", LM)];
        // (name, request, stored status, stored, expected) — RFC 9110 §13.1.1, §13.1.4, §13.2
        let cases: &[(&str, Pairs, u16, Pairs, Precondition)] = &[
            ("none", &[("if-none-match", "\"v1\"")], 200, STORED, Absent),
            (
                "§13.1.1 strong match",
                &[("if-match", "\"v1\"")],
                200,
                STORED,
                Satisfied,
            ),
            (
                "§13.1.1 one of a list",
                &[("if-match", "\"x\", \"v1\"")],
                200,
                STORED,
                Satisfied,
            ),
            ("§13.1.1 star", &[("if-match", "*")], 200, STORED, Satisfied),
            (
                "§13.1.1 star without a stored ETag",
                &[("if-match", "*")],
                200,
                &[("last-modified", LM)],
                Satisfied,
            ),
            (
                "§13.1.1 no match",
                &[("if-match", "\"v2\"")],
                200,
                STORED,
                ForOrigin,
            ),
            (
                "§13.1.1 weak request tag never matches",
                &[("if-match", "W/\"v1\"")],
                200,
                STORED,
                ForOrigin,
            ),
            (
                "§13.1.1 weak stored tag never matches",
                &[("if-match", "\"v1\"")],
                200,
                &[("etag", "W/\"v1\"")],
                ForOrigin,
            ),
            (
                "§13.1.1 tag against no stored ETag",
                &[("if-match", "\"v1\"")],
                200,
                &[("last-modified", LM)],
                ForOrigin,
            ),
            (
                "§8.8.3 empty tags",
                &[("if-match", "\"\"")],
                200,
                &[("etag", "\"\"")],
                Satisfied,
            ),
            (
                "§8.8.3 comma inside the tag",
                &[("if-match", "\"a,b\"")],
                200,
                &[("etag", "\"a,b\"")],
                Satisfied,
            ),
            (
                "fail closed: malformed If-Match",
                &[("if-match", "\"v1\", junk")],
                200,
                STORED,
                ForOrigin,
            ),
            (
                "fail closed: star with a tag",
                &[("if-match", "*, \"v1\"")],
                200,
                STORED,
                ForOrigin,
            ),
            (
                "§13.1.4 not modified since",
                &[("if-unmodified-since", AFTER_LM)],
                200,
                STORED,
                Satisfied,
            ),
            (
                "§13.1.4 equal dates",
                &[("if-unmodified-since", LM)],
                200,
                STORED,
                Satisfied,
            ),
            (
                "§13.1.4 modified since",
                &[("if-unmodified-since", BEFORE_LM)],
                200,
                STORED,
                ForOrigin,
            ),
            (
                "§13.1.4 no stored Last-Modified",
                &[("if-unmodified-since", AFTER_LM)],
                200,
                &[("etag", "\"v1\"")],
                ForOrigin,
            ),
            (
                "§13.1.4 an invalid date is ignored",
                &[("if-unmodified-since", "yesterday")],
                200,
                STORED,
                Satisfied,
            ),
            (
                "§13.1.4 a list of dates is ignored",
                &[
                    ("if-unmodified-since", BEFORE_LM),
                    ("if-unmodified-since", BEFORE_LM),
                ],
                200,
                STORED,
                Satisfied,
            ),
            (
                "§13.2.2 If-Match first: IUS ignored",
                &[("if-match", "\"v1\""), ("if-unmodified-since", BEFORE_LM)],
                200,
                STORED,
                Satisfied,
            ),
            (
                "§13.2.2 If-Match first: failing",
                &[("if-match", "\"v2\""), ("if-unmodified-since", AFTER_LM)],
                200,
                STORED,
                ForOrigin,
            ),
            (
                "§13.2.1 not 2xx: preconditions ignored",
                &[("if-match", "\"v2\"")],
                404,
                STORED,
                Satisfied,
            ),
            (
                "2xx other than 200",
                &[("if-match", "\"v2\"")],
                203,
                STORED,
                ForOrigin,
            ),
        ];
        for (name, request, status, stored, expected) in cases {
            let status = StatusCode::from_u16(*status).unwrap();
            assert_eq!(
                stored_precondition(&map(request), status, &map(stored)),
                *expected,
                "{name}"
            );
        }
        let obs = raw(&[("if-match", b"\"\xe9\"")]);
        let stored = raw(&[("etag", b"\"\xe9\"")]);
        assert_eq!(
            stored_precondition(&obs, StatusCode::OK, &stored),
            Satisfied,
            "obs-text"
        );
        let other = raw(&[("etag", b"\"\xe8\"")]);
        assert_eq!(
            stored_precondition(&obs, StatusCode::OK, &other),
            ForOrigin,
            "obs-text differs"
        );
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
                HeaderValue::from_bytes(b"\xff\"\xfe").unwrap(),
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
