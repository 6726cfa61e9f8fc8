//! Cache keys: URL normalization and the key digest.
//!
//! A cache key identifies one stored response. By default it is derived from:
//!
//! 1. the request method, uppercase as sent (`GET`, `HEAD`, ...);
//! 2. the normalized URL ([`normalize_url`]):
//!    - scheme and host lowercase; the scheme defaults to `http` and the authority to the `Host`
//!      header when the request target is in origin form (`/path?query`, as a server receives it);
//!    - the default port dropped (`:80` for http, `:443` for https);
//!    - an empty path becomes `/`; a private cache uppercases percent-encodings (`%2f` -> `%2F`)
//!      and decodes percent-encoded unreserved characters (`%7E` -> `~`), RFC 3986 §6.2.2; a
//!      shared cache keeps path and query byte for byte, since an origin may read `/%62` and
//!      `/b` differently and any client can send either;
//!    - query parameters sorted by name, parameters of the same name kept in the order they were
//!      sent (servers read the first or the last of them), with empty parameters and an empty
//!      query dropped; parameters named in `ignored_parameters` are left out;
//!    - no fragment;
//! 3. the request headers chosen by [`MatchHeaders`], by lowercase name, in name order, minus
//!    `ignored_parameters`;
//! 4. in a shared cache only, the credentials the request carries: the values of the query
//!    parameters and header fields named in `ignored_parameters`. They are hashed into the key,
//!    never written anywhere, so a response is only reused for requests with the same
//!    credentials (and one without credentials never gets one made for a credential);
//! 5. the request body, when the caller passes one (cacheable POST requests), hashed as given:
//!    callers normalize it first with [`normalize_body`] (JSON member order and whitespace, form
//!    parameter order, `ignored_parameters` removed).
//!
//! A `Host` field that is not a valid `uri-host [":" port]` (RFC 9110 §7.2), or a request with
//! several `Host` field lines, cannot be keyed safely: [`host_is_valid`] tells the cache to pass
//! such a request through, and the URL of such a request percent-encodes the delimiters in the
//! value, so that `Host: victim/b` can never stand for the path `/b` of `victim`.
//!
//! These parts are hashed with BLAKE3 and the first 128 bits are the key, written as 32
//! lowercase hex digits. The derivation is versioned and pinned by golden-vector tests: a key
//! computed by one release of cachelayer is the same in the next.
//!
//! ```
//! use cachelayer_policy::key::{self, KeyInput, KeyOptions};
//! use http::{HeaderMap, Method, Uri};
//!
//! let a: Uri = "HTTP://Example.COM:80/items?b=2&a=1".parse().unwrap();
//! let b: Uri = "http://example.com/items?a=1&b=2".parse().unwrap();
//! let headers = HeaderMap::new();
//! assert_eq!(key::normalize_url(&a, &headers, &[]), "http://example.com/items?a=1&b=2");
//! let options = KeyOptions::default();
//! let key_a = key::create_key(&KeyInput { method: &Method::GET, uri: &a, headers: &headers, body: None }, &options);
//! let key_b = key::create_key(&KeyInput { method: &Method::GET, uri: &b, headers: &headers, body: None }, &options);
//! assert_eq!(key_a, key_b);
//! assert_eq!(key_a.to_string().len(), 32);
//! ```

use crate::CacheKind;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// The parameters and headers left out of cache keys by default (requests-cache
/// `ignored_parameters`): credentials, so that keys do not depend on them and they are never
/// written to a store.
pub const DEFAULT_IGNORED_PARAMETERS: &[&str] = &[
    "Authorization",
    "Proxy-Authorization",
    "X-API-Key",
    "X-Auth-Token",
    "X-API-Token",
    "X-Access-Token",
    "access_token",
    "api_key",
    "apikey",
];

/// The key of a stored response: a 128-bit digest (shown as 32 lowercase hex digits), or a
/// custom string from a user's key function.
///
/// Parsing (`"e25f...".parse()`, [`CacheKey::custom`]) turns 32 hex digits into a digest key, so
/// a key printed by a listing can be given back to delete it. Cloning is cheap.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey(Repr);

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Repr {
    Digest([u8; 16]),
    Custom(Arc<str>),
}

impl CacheKey {
    /// A key from a 128-bit digest.
    pub fn from_digest(digest: [u8; 16]) -> Self {
        CacheKey(Repr::Digest(digest))
    }

    /// A key from any string (as a user's key function returns). 32 hex digits give the same key
    /// as the digest they spell.
    pub fn custom(key: impl AsRef<str>) -> Self {
        let key = key.as_ref();
        match parse_hex_digest(key) {
            Some(digest) => CacheKey(Repr::Digest(digest)),
            None => CacheKey(Repr::Custom(Arc::from(key))),
        }
    }

    /// Appends the key's text form (as [`Display`](fmt::Display) writes it) to `out`, without
    /// the formatting machinery.
    pub fn push_to(&self, out: &mut String) {
        match &self.0 {
            Repr::Digest(d) => out.push_str(hex_digest(d).as_str()),
            Repr::Custom(s) => out.push_str(s),
        }
    }

    /// The digest, for a digest key.
    pub fn digest(&self) -> Option<&[u8; 16]> {
        match &self.0 {
            Repr::Digest(d) => Some(d),
            Repr::Custom(_) => None,
        }
    }
}

/// The 32 lowercase hex digits of a digest (on the hit path: every `Cache-Status` key), as text
/// without a UTF-8 check.
fn hex_digest(d: &[u8; 16]) -> const_hex::Buffer<16> {
    let mut buf = const_hex::Buffer::new();
    buf.format(d);
    buf
}

/// The digest that 32 lowercase hex digits spell. Uppercase digits make a custom key (the text
/// form of a digest key is lowercase, and a key must read back as the one that wrote it).
fn parse_hex_digest(s: &str) -> Option<[u8; 16]> {
    // The length check also rules out const-hex's optional `0x` prefix (34 bytes).
    if s.len() != 32 || s.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    const_hex::decode_to_array(s).ok()
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Digest(d) => f.write_str(hex_digest(d).as_str()),
            Repr::Custom(s) => f.write_str(s),
        }
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CacheKey({self})")
    }
}

impl FromStr for CacheKey {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(CacheKey::custom(s))
    }
}

impl Serialize for CacheKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for CacheKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(CacheKey::custom(text))
    }
}

/// Which request headers are part of the key (requests-cache `match_headers`).
///
/// Serde form: `false` / `"none"`, `true` / `"all"`, or a list of header names.
/// Default: [`MatchHeaders::None`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum MatchHeaders {
    /// No request header is part of the key (requests-cache `match_headers=False`). Responses
    /// that vary by request headers are still told apart by `Vary`.
    #[default]
    None,
    /// Every request header except the ignored ones (requests-cache `match_headers=True`).
    All,
    /// These headers (requests-cache `match_headers=[...]`).
    List(Vec<HeaderName>),
}

/// How keys are derived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOptions {
    /// The request headers that are part of the key. Default: none.
    pub match_headers: MatchHeaders,
    /// Query parameters and request headers left out of the key (headers compared
    /// case-insensitively, query parameters exactly). In a shared cache their values are hashed
    /// into the key instead (see the module docs). Default: [`DEFAULT_IGNORED_PARAMETERS`].
    pub ignored_parameters: Vec<String>,
    /// The kind of cache the key is for: a shared cache keys the exact path and query bytes and
    /// the request's credentials (see the module docs). Default: [`CacheKind::Private`].
    pub kind: CacheKind,
}

impl Default for KeyOptions {
    fn default() -> Self {
        KeyOptions {
            kind: CacheKind::Private,
            match_headers: MatchHeaders::None,
            ignored_parameters: DEFAULT_IGNORED_PARAMETERS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

/// The parts of a request a key is derived from.
#[derive(Debug, Clone, Copy)]
pub struct KeyInput<'a> {
    /// The request method.
    pub method: &'a Method,
    /// The request target, absolute (`http://host/path`) or origin form (`/path`).
    pub uri: &'a Uri,
    /// The request headers (for `Host` and [`MatchHeaders`]).
    pub headers: &'a HeaderMap,
    /// The request body, for methods whose body is part of the key.
    pub body: Option<&'a [u8]>,
}

/// The normalized URL of a request, as described in the module docs. `ignored` lists query
/// parameters to leave out.
///
/// Details: user information (`user:pass@`) is dropped; an empty port (`host:`) is dropped; a
/// port is written without leading zeros; a `%` that does not start a `%XX` escape is kept as is,
/// and an escape that would spell a new escape with it once decoded stays encoded (`%4%41`);
/// query parameters are compared with `ignored` after percent-normalization, by exact match.
/// Without a URI authority or a valid `Host` header the authority is empty (`http:///path`).
pub fn normalize_url(uri: &Uri, headers: &HeaderMap, ignored: &[String]) -> String {
    let mut url = String::with_capacity(uri.path().len() + uri.query().map_or(0, str::len) + 40);
    push_normalized_url(&mut url, uri, headers, ignored, CacheKind::Private);
    url
}

/// Whether the request's `Host` can be keyed: no `Host` field, or exactly one field line whose
/// value is a valid `uri-host [":" port]` (RFC 9110 §7.2, RFC 3986 §3.2.2): a registered name
/// (letters, digits, `-._~`, sub-delimiters, percent-encodings) or a bracketed IP literal,
/// optionally followed by `:` and digits. `/`, `?`, `#`, `@`, `\\`, whitespace and anything
/// outside visible ASCII make it invalid. A cache passes a request with an invalid `Host`
/// through to the origin, unkeyed and unstored (RFC 9112 §3.2 has servers answer it 400).
///
/// ```
/// use cachelayer_policy::key::host_is_valid;
/// use http::HeaderMap;
///
/// let mut headers = HeaderMap::new();
/// assert!(host_is_valid(&headers));
/// headers.insert("host", "example.com:8080".parse().unwrap());
/// assert!(host_is_valid(&headers));
/// headers.insert("host", "victim/b".parse().unwrap());
/// assert!(!host_is_valid(&headers));
/// ```
pub fn host_is_valid(headers: &HeaderMap) -> bool {
    let mut hosts = headers.get_all(http::header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (None, _) => true,
        (Some(host), None) => valid_host_value(host.as_bytes()),
        (Some(_), Some(_)) => false,
    }
}

/// `uri-host [":" port]`, leniently on surrounding whitespace (a field value's optional
/// whitespace is not part of it).
fn valid_host_value(value: &[u8]) -> bool {
    let value = value.trim_ascii();
    let (host, port) = if value.first() == Some(&b'[') {
        let Some(end) = value.iter().position(|&b| b == b']') else {
            return false;
        };
        let (literal, rest) = value.split_at(end + 1);
        let inside = literal.get(1..literal.len() - 1).unwrap_or_default();
        if inside.is_empty()
            || !inside
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || matches!(b, b':' | b'.' | b'v' | b'V'))
        {
            return false;
        }
        match rest {
            [] => return true,
            [b':', port @ ..] => (&b""[..], port),
            _ => return false,
        }
    } else {
        match value.iter().rposition(|&b| b == b':') {
            Some(at) => (
                value.get(..at).unwrap_or_default(),
                value.get(at + 1..).unwrap_or_default(),
            ),
            None => (value, &b""[..]),
        }
    };
    let host_ok = host.iter().copied().all(is_reg_name_byte);
    host_ok && port.len() <= 5 && port.iter().all(u8::is_ascii_digit)
}

/// Whether `b` may stand in a registered name (RFC 3986 §3.2.2): an unreserved character, a
/// sub-delimiter, or the `%` of a percent-encoding.
pub fn is_reg_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'%'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
        )
}

fn push_normalized_url(
    out: &mut String,
    uri: &Uri,
    headers: &HeaderMap,
    ignored: &[String],
    kind: CacheKind,
) {
    // `http` and `https` are the schemes `Uri` reads into its standard (lowercase) ones: pushed
    // as they are, without the lowercase pass and the look-up of the default port.
    let default_port = match uri.scheme_str().unwrap_or("http") {
        "http" => {
            out.push_str("http://");
            Some(80)
        }
        "https" => {
            out.push_str("https://");
            Some(443)
        }
        scheme => {
            let scheme_start = out.len();
            push_lowercase(out, scheme);
            let default_port = match out.get(scheme_start..) {
                Some("http" | "ws") => Some(80),
                Some("https" | "wss") => Some(443),
                _ => None,
            };
            out.push_str("://");
            default_port
        }
    };
    match uri.authority() {
        Some(authority) => push_normalized_authority(out, authority.as_str(), default_port),
        None => push_host(out, headers, default_port),
    }
    let exact = kind.is_shared();
    match uri.path() {
        "" => out.push('/'),
        path if exact => out.push_str(path),
        path => push_percent_normalized(out, path),
    }
    if let Some(query) = uri.query() {
        push_normalized_query(out, query, ignored, exact);
    }
}

/// The authority of an origin-form request: its `Host`, normalized when valid (see
/// [`host_is_valid`]), else encoded by [`push_invalid_host`]. One look-up of the field.
fn push_host(out: &mut String, headers: &HeaderMap, default_port: Option<u16>) {
    let mut hosts = headers.get_all(http::header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (None, _) => {}
        (Some(host), None) if valid_host_value(host.as_bytes()) => {
            // A valid host is visible ASCII, so `to_str` cannot fail; `trim` drops the
            // surrounding whitespace `valid_host_value` allows.
            let host = host.to_str().unwrap_or("").trim();
            push_normalized_authority(out, host, default_port);
        }
        _ => push_invalid_host(out, headers),
    }
}

/// An invalid `Host` (see [`host_is_valid`]) in a URL: every field line, with every byte that
/// is not a letter, digit, `-` or `.` percent-encoded, so no value can spell a path, a query or
/// another host.
fn push_invalid_host(out: &mut String, headers: &HeaderMap) {
    /// Every byte but letters, digits, `-` and `.`.
    const ENCODED: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.');
    for (i, host) in headers.get_all(http::header::HOST).iter().enumerate() {
        if i > 0 {
            out.push_str("%2C");
        }
        // The chunks are runs of bytes left as they are (which never start with `%`: it is
        // encoded) and `%XX` escapes (uppercase hex), which must keep their case.
        for chunk in percent_encoding::percent_encode(host.as_bytes(), ENCODED) {
            if chunk.starts_with('%') {
                out.push_str(chunk);
            } else {
                push_lowercase(out, chunk);
            }
        }
    }
}

/// Appends `?` and the query's parameters, sorted by name (parameters of one name in the order
/// they came), without empty and ignored parameters; nothing when no parameter is left. With
/// `exact`, percent-encodings are kept as they are; otherwise they are normalized.
fn push_normalized_query(out: &mut String, query: &str, ignored: &[String], exact: bool) {
    let is_ignored = |piece: &str| {
        let name = param_name(piece);
        ignored.iter().any(|i| i == name)
    };
    // Fast path: a query already in normal form (sorted, nothing to drop or re-encode) is
    // copied as it is. One pass over the bytes, no allocation.
    let already_normal = !query.is_empty() && query_is_normal(query.as_bytes(), ignored, exact);
    if already_normal {
        if !query.is_empty() {
            out.push('?');
            out.push_str(query);
        }
        return;
    }
    let mut params: Vec<Cow<'_, str>> = query
        .split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            if exact {
                Cow::Borrowed(piece)
            } else {
                percent_normalized(piece)
            }
        })
        .filter(|piece| !is_ignored(piece))
        .collect();
    // A stable sort by name: parameters of one name keep their order.
    params.sort_by(|a, b| param_name(a).cmp(param_name(b)));
    for (i, piece) in params.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(piece);
    }
}

/// Whether a (non-empty) query is in normal form: no empty parameter, no `%` unless `exact`,
/// names in order, none of them ignored.
fn query_is_normal(query: &[u8], ignored: &[String], exact: bool) -> bool {
    if !exact && query.contains(&b'%') {
        return false;
    }
    let mut previous: Option<&[u8]> = None;
    for piece in query.split(|&b| b == b'&') {
        let name = match piece.iter().position(|&b| b == b'=') {
            Some(at) => piece.get(..at).unwrap_or(piece),
            None => piece,
        };
        if piece.is_empty()
            || previous.is_some_and(|previous| previous > name)
            || ignored
                .iter()
                .any(|i| i.len() == name.len() && i.as_bytes() == name)
        {
            return false;
        }
        previous = Some(name);
    }
    true
}

/// The name of a query parameter: what precedes the first `=`.
fn param_name(piece: &str) -> &str {
    piece.split_once('=').map_or(piece, |(name, _)| name)
}

fn push_lowercase(out: &mut String, s: &str) {
    let start = out.len();
    out.push_str(s);
    if let Some(pushed) = out.get_mut(start..) {
        pushed.make_ascii_lowercase();
    }
}

/// [`AUTHORITY_CLASS`] of an uppercase letter.
const UPPER: u8 = 1;
/// [`AUTHORITY_CLASS`] of `@`.
const AT: u8 = 2;
/// [`AUTHORITY_CLASS`] of `:`.
const COLON: u8 = 4;
/// [`AUTHORITY_CLASS`] of `[`, which starts an IP literal.
const BRACKET: u8 = 8;
/// The bytes that [`push_normalized_authority`] changes or splits at; 0 for the others.
static AUTHORITY_CLASS: [u8; 256] = {
    let mut table = [0; 256];
    let mut b = b'A';
    while b <= b'Z' {
        table[b as usize] = UPPER;
        b += 1;
    }
    table[b'@' as usize] = AT;
    table[b':' as usize] = COLON;
    table[b'[' as usize] = BRACKET;
    table
};

/// Lowercases the host, drops user information and the default port of `scheme`.
fn push_normalized_authority(out: &mut String, authority: &str, default_port: Option<u16>) {
    // The common authority, a lowercase name without user information or port, is found in
    // one pass that reads each byte's class from a table, and copied as it is.
    let bytes = authority.as_bytes();
    let classes = bytes
        .iter()
        .fold(0, |classes, &b| classes | AUTHORITY_CLASS[usize::from(b)]);
    if classes == 0 {
        out.push_str(authority);
        return;
    }
    // The last `@` (user information ends there) and the last `:` after it (the port of a name
    // or IPv4 address starts there).
    let mut host_start = 0;
    let mut last_colon = None;
    if classes & (AT | COLON) != 0 {
        for (i, &b) in bytes.iter().enumerate() {
            if b == b'@' {
                host_start = i + 1;
                last_colon = None;
            } else if b == b':' {
                last_colon = Some(i);
            }
        }
    }
    let host_port = authority.get(host_start..).unwrap_or("");
    let (host, port) = if host_port.starts_with('[') {
        // IPv6 literal: the port, if any, follows the closing bracket.
        match host_port.bytes().position(|b| b == b']') {
            Some(end) => {
                let (host, rest) = host_port.split_at(end + 1);
                (host, rest.strip_prefix(':'))
            }
            None => (host_port, None),
        }
    } else {
        match last_colon {
            Some(at) => (
                authority.get(host_start..at).unwrap_or(""),
                authority.get(at + 1..),
            ),
            None => (host_port, None),
        }
    };
    push_lowercase(out, host);
    if let Some(port) = port.filter(|p| !p.is_empty()) {
        match port.parse::<u16>() {
            Ok(n) if Some(n) == default_port => {}
            Ok(n) => {
                out.push(':');
                out.push_str(itoa::Buffer::new().format(n));
            }
            Err(_) => {
                out.push(':');
                push_lowercase(out, port);
            }
        }
    }
}

/// RFC 3986 §6.2.2.1–2: uppercase the hex digits of percent-encodings, and decode those of
/// unreserved characters.
///
/// Hand-written, not `percent_encoding::percent_decode`: that decodes every escape (`%2F`
/// would become a `/`, a different target), and decoding all then re-encoding would change the
/// bytes left unencoded (`!`, `:`, `@`, ...) and so every existing key. Escapes are found and
/// read here; the ones kept are written by `percent_encoding::percent_encode_byte`.
fn percent_normalized(s: &str) -> Cow<'_, str> {
    if s.contains('%') {
        let mut out = String::with_capacity(s.len());
        push_percent_normalized(&mut out, s);
        Cow::Owned(out)
    } else {
        Cow::Borrowed(s)
    }
}

fn push_percent_normalized(out: &mut String, s: &str) {
    let bytes = s.as_bytes();
    // `s[copied..]` is still to be written; escapes are searched for from `from`. Runs without
    // a (valid) escape are written at once: a `%` is ASCII, so every cut stays on a character
    // boundary.
    let mut copied = 0;
    let mut from = 0;
    while let Some(offset) = bytes
        .get(from..)
        .and_then(|rest| rest.iter().position(|&b| b == b'%'))
    {
        let at = from + offset;
        let escape = match bytes.get(at..at + 3) {
            Some(&[b'%', hi, lo]) => hex_value(hi).zip(hex_value(lo)).map(|(h, l)| h * 16 + l),
            _ => None,
        };
        let Some(byte) = escape else {
            // A `%` that starts no escape is kept as it is.
            from = at + 1;
            continue;
        };
        out.push_str(s.get(copied..at).unwrap_or(""));
        // A decoded hex digit right after a lone `%` (or a lone `%` and one hex digit) would
        // spell a new escape with it (`%4%41` -> `%4A`, which a second pass reads as `J`;
        // `%%414` -> `%A4`, the key of another target): such an escape stays encoded, so the
        // normal form is a fixed point.
        let spells_escape = byte.is_ascii_hexdigit()
            && matches!(
                out.as_bytes(),
                [.., b'%'] | [.., b'%', b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F']
            );
        if !spells_escape
            && (byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~'))
        {
            out.push(char::from(byte));
        } else {
            out.push_str(percent_encoding::percent_encode_byte(byte));
        }
        copied = at + 3;
        from = copied;
    }
    out.push_str(s.get(copied..).unwrap_or(""));
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// A request body in normal form, for the cache key (requests-cache's body normalization): two
/// bodies a server reads the same way give the same bytes, and the credentials named in
/// `ignored` are left out.
///
/// By the media type of `content_type` (compared case-insensitively, parameters such as
/// `charset` aside):
///
/// - `application/json` and every `+json` type (`application/vnd.api+json`, ...): object
///   members named in `ignored` are removed at every depth (in objects inside arrays too); the
///   value is written compactly (no whitespace) with object members sorted by name (byte order,
///   whatever serde_json's `preserve_order` feature says), arrays in their order, and strings
///   and numbers as serde_json writes them (`"\u00e9"` becomes `"é"`, `1e2` becomes `100.0`).
///   The body is returned unchanged when it is not valid JSON, when an object has a duplicate
///   member name (servers disagree on which one wins), or when a number would not read back as
///   the same decimal value once parsed into an `f64` and written again (an integer beyond 64
///   bits, more significant digits than an `f64` holds, an underflow to zero): normalizing those
///   could give two different requests one key.
/// - `application/x-www-form-urlencoded`: the `&`-separated parameters get the treatment of a
///   URL's query parameters ([`normalize_url`]): percent-encodings normalized, empty parameters
///   and those whose name is in `ignored` dropped, the rest sorted by name, then value, and
///   joined with `&`. A body that is not UTF-8 is returned unchanged.
/// - anything else, or no `Content-Type`: unchanged.
///
/// Names in `ignored` are matched exactly (case-sensitively), as query parameters are. The
/// result borrows `body` when nothing changes. Never fails and never panics; the work is linear
/// in the size of the body.
///
/// [`create_key`] hashes the body it is given as it is: callers apply this function first.
///
/// ```
/// use cachelayer_policy::key::{normalize_body, DEFAULT_IGNORED_PARAMETERS};
/// use http::HeaderValue;
///
/// let ignored: Vec<String> = DEFAULT_IGNORED_PARAMETERS.iter().map(|s| s.to_string()).collect();
/// let json = HeaderValue::from_static("application/json; charset=utf-8");
/// let body = br#"{ "q": "rust", "api_key": "secret", "page": 2 }"#;
/// assert_eq!(&*normalize_body(Some(&json), body, &ignored), br#"{"page":2,"q":"rust"}"#);
///
/// let form = HeaderValue::from_static("application/x-www-form-urlencoded");
/// let body = b"q=rust&api_key=secret&page=2";
/// assert_eq!(&*normalize_body(Some(&form), body, &ignored), b"page=2&q=rust");
///
/// let text = HeaderValue::from_static("text/plain");
/// assert_eq!(&*normalize_body(Some(&text), b"b a", &ignored), b"b a");
/// ```
pub fn normalize_body<'a>(
    content_type: Option<&HeaderValue>,
    body: &'a [u8],
    ignored: &[String],
) -> Cow<'a, [u8]> {
    let normalized = match body_kind(content_type) {
        BodyKind::Json => normalize_json(body, ignored),
        BodyKind::Form => normalize_form(body, ignored),
        BodyKind::Other => None,
    };
    match normalized {
        Some(out) if out != body => Cow::Owned(out),
        _ => Cow::Borrowed(body),
    }
}

/// How [`normalize_body`] treats a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    Json,
    Form,
    Other,
}

/// Hand-written rather than `mime`'s parser, which rejects media types that RFC 9110 §8.3.1
/// allows and servers read: whitespace before `;` (`application/json ;charset=utf-8`), and
/// parameters it cannot read (`; charset` without a value, an unterminated quoted value).
/// Only the essence (`type/subtype`) decides here, whatever the parameters, and a body that
/// stopped being normalized would change the key of every such request.
fn body_kind(content_type: Option<&HeaderValue>) -> BodyKind {
    let Some(value) = content_type.and_then(|v| v.to_str().ok()) else {
        return BodyKind::Other;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return BodyKind::Other;
    };
    let subtype = subtype.to_ascii_lowercase();
    if kind.eq_ignore_ascii_case("application") && subtype == "json"
        || !kind.is_empty() && subtype.len() > "+json".len() && subtype.ends_with("+json")
    {
        BodyKind::Json
    } else if kind.eq_ignore_ascii_case("application") && subtype == "x-www-form-urlencoded" {
        BodyKind::Form
    } else {
        BodyKind::Other
    }
}

/// The normal form of a form body, or `None` to keep it as it is.
///
/// The query's normalization, not `form_urlencoded`'s parse and serialize: those decode every
/// escape and `+`, and write the pairs back in their own encoding (`~` as `%7E`, a space as
/// `+`), so keys of stored POST responses would change; and the parameters are left encoded
/// here, so that no decoded `&` or `=` can change where a parameter ends.
fn normalize_form(body: &[u8], ignored: &[String]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(body).ok()?;
    let mut out = String::with_capacity(text.len() + 1);
    push_normalized_query(&mut out, text, ignored, false);
    let params = out.strip_prefix('?').unwrap_or(&out);
    Some(params.as_bytes().to_vec())
}

/// The normal form of a JSON body, or `None` to keep it as it is.
fn normalize_json(body: &[u8], ignored: &[String]) -> Option<Vec<u8>> {
    let mut value: Json = serde_json::from_slice(body).ok()?;
    if !numbers_read_back(body) {
        return None;
    }
    value.remove_members(ignored);
    let mut out = Vec::with_capacity(body.len());
    value.write(&mut out).ok()?;
    Some(out)
}

/// A JSON value as body normalization sees it: object members sorted by name in a `BTreeMap`
/// (independent of serde_json's `preserve_order` feature), and a duplicate member name is an
/// error instead of "the last one wins".
#[derive(Debug)]
enum Json {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Json>),
    Object(BTreeMap<String, Json>),
}

impl Json {
    /// Removes the object members named in `ignored`, at every depth.
    fn remove_members(&mut self, ignored: &[String]) {
        match self {
            Json::Array(items) => {
                for item in items {
                    item.remove_members(ignored);
                }
            }
            Json::Object(members) => {
                members.retain(|name, _| !ignored.iter().any(|i| i == name));
                for member in members.values_mut() {
                    member.remove_members(ignored);
                }
            }
            Json::Null | Json::Bool(_) | Json::Number(_) | Json::String(_) => {}
        }
    }

    /// Writes the value compactly, object members in name order.
    fn write(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        match self {
            Json::Null => out.extend_from_slice(b"null"),
            Json::Bool(true) => out.extend_from_slice(b"true"),
            Json::Bool(false) => out.extend_from_slice(b"false"),
            Json::Number(n) => serde_json::to_writer(&mut *out, n)?,
            Json::String(s) => serde_json::to_writer(&mut *out, s)?,
            Json::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    item.write(out)?;
                }
                out.push(b']');
            }
            Json::Object(members) => {
                out.push(b'{');
                for (i, (name, member)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    serde_json::to_writer(&mut *out, name)?;
                    out.push(b':');
                    member.write(out)?;
                }
                out.push(b'}');
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> serde::de::Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Json, E> {
        serde_json::Number::from_f64(v)
            .map(Json::Number)
            .ok_or_else(|| E::custom("not a finite number"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut members = BTreeMap::new();
        while let Some(name) = map.next_key::<String>()? {
            let value = map.next_value()?;
            if members.insert(name, value).is_some() {
                return Err(serde::de::Error::custom("duplicate member name"));
            }
        }
        Ok(Json::Object(members))
    }
}

/// Whether every number of `json` (valid JSON) reads back as the same decimal value once
/// parsed by serde_json and written again. If so, equal normalized bodies had equal numbers.
fn numbers_read_back(json: &[u8]) -> bool {
    let mut i = 0;
    let mut in_string = false;
    while let Some(&b) = json.get(i) {
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
        } else if b == b'"' {
            in_string = true;
            i += 1;
        } else if b == b'-' || b.is_ascii_digit() {
            let start = i;
            while json
                .get(i)
                .is_some_and(|c| matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
            {
                i += 1;
            }
            let token = json
                .get(start..i)
                .and_then(|t| std::str::from_utf8(t).ok())
                .unwrap_or("");
            if !number_reads_back(token) {
                return false;
            }
        } else {
            i += 1;
        }
    }
    true
}

fn number_reads_back(token: &str) -> bool {
    let Ok(number) = serde_json::from_str::<serde_json::Number>(token) else {
        return false;
    };
    match (decimal_value(token), decimal_value(&number.to_string())) {
        (Some(written), Some(read)) => written == read,
        _ => false,
    }
}

/// A JSON number's exact decimal value as (negative, significant digits without leading or
/// trailing zeros, power of ten of the last digit); every zero is `(false, "", 0)`.
fn decimal_value(text: &str) -> Option<(bool, String, i64)> {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match rest.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa, exponent.parse::<i64>().ok()?),
        None => (rest, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits: String = int.chars().chain(frac.chars()).collect();
    let significant = digits.trim_start_matches('0');
    if significant.is_empty() {
        return Some((false, String::new(), 0));
    }
    let trimmed = significant.trim_end_matches('0');
    let exponent = exponent
        .checked_sub(i64::try_from(frac.len()).ok()?)?
        .checked_add(i64::try_from(significant.len() - trimmed.len()).ok()?)?;
    Some((negative, trimmed.to_owned(), exponent))
}

/// The cache key of a request, as described in the module docs.
///
/// The digest input (version `cachelayer-key-v2`) is, in order:
///
/// ```text
/// cachelayer-key-v2\n
/// {METHOD}\n
/// {normalized URL}\n
/// {header name}:{value 1},{value 2}\n     (one line per matched header present, in name order)
/// credential:{name}={value}\n             (shared cache: one line per credential, see below)
/// \nbody:{body bytes}                      (only when a body is given, even an empty one)
/// ```
///
/// Credentials (shared cache only) are the query parameters named in `ignored_parameters`, as
/// sent (`api_key=abc`) in the order sent, then the header fields named there, by lowercase name
/// in the order of `ignored_parameters`, one line per field line.
///
/// Header names are lowercase; the values of one header are joined with `,` in the order they
/// were sent. A header listed in [`MatchHeaders::List`] but absent from the request contributes
/// nothing, so absence and an empty value give different keys. The key is the first 128 bits of
/// the BLAKE3 digest.
pub fn create_key(input: &KeyInput<'_>, options: &KeyOptions) -> CacheKey {
    key_with_url(input, options, false).0
}

/// [`create_key`], and the request's URL as [`normalize_url`] gives it (with
/// `options.ignored_parameters`) when the key was derived from that text: in a private cache
/// ([`CacheKind::Private`]). A cache that stores the URL of a new response then needs not
/// normalize it again. `None` in a shared cache, whose key keeps percent-encodings exactly.
///
/// ```
/// use cachelayer_policy::key::{KeyInput, KeyOptions, create_key, create_key_and_url, normalize_url};
/// use http::{HeaderMap, Method, Uri};
///
/// let uri: Uri = "http://Example.com:80/a?b=2&a=1".parse().unwrap();
/// let headers = HeaderMap::new();
/// let input = KeyInput { method: &Method::GET, uri: &uri, headers: &headers, body: None };
/// let options = KeyOptions::default();
/// let (key, url) = create_key_and_url(&input, &options);
/// assert_eq!(key, create_key(&input, &options));
/// assert_eq!(url.unwrap(), normalize_url(&uri, &headers, &options.ignored_parameters));
/// ```
pub fn create_key_and_url(
    input: &KeyInput<'_>,
    options: &KeyOptions,
) -> (CacheKey, Option<String>) {
    key_with_url(input, options, !options.kind.is_shared())
}

fn key_with_url(
    input: &KeyInput<'_>,
    options: &KeyOptions,
    want_url: bool,
) -> (CacheKey, Option<String>) {
    // Everything but the body is written to one buffer and hashed in one call: BLAKE3's one-shot
    // hash is much cheaper than many small updates, and gives the same digest.
    const PREFIX: &str = "cachelayer-key-v2\n";
    let method = input.method.as_str();
    // The thread's scratch buffer (its allocation reused from key to key), or a new one.
    let kept = KEY_TEXT.try_with(RefCell::take).unwrap_or_default();
    let mut text = String::from_utf8(kept).unwrap_or_default();
    text.clear();
    text.reserve(
        PREFIX.len()
            + method.len()
            + input.uri.path().len()
            + input.uri.query().map_or(0, str::len)
            + 48,
    );
    text.push_str(PREFIX);
    text.push_str(method);
    text.push('\n');
    let url_start = text.len();
    push_normalized_url(
        &mut text,
        input.uri,
        input.headers,
        &options.ignored_parameters,
        options.kind,
    );
    let url = want_url.then(|| text[url_start..].to_owned());
    text.push('\n');
    let mut buf = text.into_bytes();
    if options.match_headers != MatchHeaders::None {
        push_matched_headers(&mut buf, input.headers, options);
    }
    if options.kind.is_shared() {
        push_credentials(
            &mut buf,
            input.uri,
            input.headers,
            &options.ignored_parameters,
        );
    }
    let hash = match input.body {
        None => blake3::hash(&buf),
        Some(body) => {
            let mut hasher = blake3::Hasher::new();
            hasher.update(&buf);
            hasher.update(b"\nbody:");
            hasher.update(body);
            hasher.finalize()
        }
    };
    // Kept for the next key unless it grew large (a huge URL or header); zeroed first, as it
    // may hold credentials (shared caches key them) or matched header values.
    if buf.capacity() <= KEY_TEXT_KEPT {
        buf.fill(0);
        buf.clear();
        let _ = KEY_TEXT.try_with(|kept| kept.replace(buf));
    }
    let mut digest = [0u8; 16];
    digest.copy_from_slice(&hash.as_bytes()[..16]);
    (CacheKey::from_digest(digest), url)
}

/// The longest key text buffer (bytes) a thread keeps for its next key.
const KEY_TEXT_KEPT: usize = 4096;

thread_local! {
    /// A buffer for the text a key hashes, reused by the thread's next key.
    static KEY_TEXT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Whether a request carries a header field named in `ignored` (compared case-insensitively):
/// a credential that a shared cache keys.
pub fn has_credential_header(headers: &HeaderMap, ignored: &[String]) -> bool {
    // One pass over the request's (few) field names, comparing bytes: cheaper than parsing
    // each ignored name into a `HeaderName` and hashing it.
    headers.keys().any(|field| {
        let field = field.as_str();
        ignored
            .iter()
            .any(|name| name.len() == field.len() && name.eq_ignore_ascii_case(field))
    })
}

/// Appends the credentials of a request: `credential:{param}\n` per ignored query parameter,
/// then `credential:{name}:{value}\n` per ignored header field line.
fn push_credentials(buf: &mut Vec<u8>, uri: &Uri, headers: &HeaderMap, ignored: &[String]) {
    if let Some(query) = uri.query() {
        for piece in query.split('&') {
            let name = param_name(piece);
            if ignored.iter().any(|i| i == name) {
                buf.extend_from_slice(b"credential:");
                buf.extend_from_slice(piece.as_bytes());
                buf.push(b'\n');
            }
        }
    }
    if headers.is_empty() {
        return;
    }
    for name in ignored {
        for (header, value) in headers.iter() {
            if header.as_str().eq_ignore_ascii_case(name) {
                buf.extend_from_slice(b"credential:");
                buf.extend_from_slice(header.as_str().as_bytes());
                buf.push(b':');
                buf.extend_from_slice(value.as_bytes());
                buf.push(b'\n');
            }
        }
    }
}

/// Appends the headers `options.match_headers` selects, in name order: `name:v1,v2\n` each.
fn push_matched_headers(buf: &mut Vec<u8>, headers: &HeaderMap, options: &KeyOptions) {
    let is_ignored = |name: &HeaderName| {
        options
            .ignored_parameters
            .iter()
            .any(|i| i.eq_ignore_ascii_case(name.as_str()))
    };
    let mut names: Vec<&HeaderName> = match &options.match_headers {
        MatchHeaders::None => Vec::new(),
        MatchHeaders::All => headers.keys().collect(),
        MatchHeaders::List(names) => names.iter().collect(),
    };
    names.retain(|name| !is_ignored(name));
    names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    names.dedup();
    for name in names {
        let mut values = headers.get_all(name).iter().peekable();
        if values.peek().is_none() {
            continue;
        }
        buf.extend_from_slice(name.as_str().as_bytes());
        buf.push(b':');
        for (i, value) in values.enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            buf.extend_from_slice(value.as_bytes());
        }
        buf.push(b'\n');
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {

    /// Queries already in normal form take a copy-through path; these pin it to the output of
    /// the sorting path (by name only; parameters of one name keep their order).
    #[test]
    fn normal_form_queries_are_copied_and_others_sorted_the_same_way() {
        let cases: &[(&str, &str)] = &[
            ("a=1&a-b=2", "a=1&a-b=2"),
            ("a-b=2&a=1", "a=1&a-b=2"),
            ("a&a=1", "a&a=1"),
            ("a=1&a", "a=1&a"),
            ("a=evil&a=good", "a=evil&a=good"),
            ("a=good&a=evil", "a=good&a=evil"),
            ("b=1&a=2&a=1", "a=2&a=1&b=1"),
            ("a=1&a=1", "a=1&a=1"),
            ("b=1&&a=2", "a=2&b=1"),
            ("a=%7e&b=2", "a=~&b=2"),
            ("a=1&api_key=x&b=2", "a=1&b=2"),
            ("api_key=x", ""),
        ];
        let ignored: Vec<String> = DEFAULT_IGNORED_PARAMETERS
            .iter()
            .map(|s| s.to_string())
            .collect();
        for (query, expected) in cases {
            let uri: Uri = format!("http://h/p?{query}").parse().unwrap();
            let url = normalize_url(&uri, &HeaderMap::new(), &ignored);
            let expected = if expected.is_empty() {
                "http://h/p".to_owned()
            } else {
                format!("http://h/p?{expected}")
            };
            assert_eq!(url, expected, "{query}");
        }
    }

    use super::*;

    /// Header (name, value) pairs.
    type Pairs = &'static [(&'static str, &'static str)];
    use http::HeaderValue;

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

    fn key(
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        options: &KeyOptions,
    ) -> CacheKey {
        let uri: Uri = uri.parse().unwrap();
        let headers = map(headers);
        create_key(
            &KeyInput {
                method: &method,
                uri: &uri,
                headers: &headers,
                body,
            },
            options,
        )
    }

    fn ignored(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn normalize_url_cases() {
        // (name, uri, headers, ignored, expected)
        let cases: &[(&str, &str, Pairs, &[&str], &str)] = &[
            (
                "plain",
                "http://example.com/",
                &[],
                &[],
                "http://example.com/",
            ),
            (
                "RFC 3986 §6.2.2.1 scheme and host lowercase",
                "HTTP://Example.COM/Path",
                &[],
                &[],
                "http://example.com/Path",
            ),
            (
                "RFC 3986 §6.2.3 empty path",
                "http://example.com",
                &[],
                &[],
                "http://example.com/",
            ),
            (
                "RFC 3986 §6.2.3 default http port",
                "http://example.com:80/a",
                &[],
                &[],
                "http://example.com/a",
            ),
            (
                "RFC 3986 §6.2.3 default https port",
                "https://example.com:443/a",
                &[],
                &[],
                "https://example.com/a",
            ),
            (
                "non-default port kept",
                "http://example.com:8080/a",
                &[],
                &[],
                "http://example.com:8080/a",
            ),
            (
                "https port on http kept",
                "http://example.com:443/a",
                &[],
                &[],
                "http://example.com:443/a",
            ),
            (
                "port leading zeros",
                "http://example.com:0080/a",
                &[],
                &[],
                "http://example.com/a",
            ),
            (
                "userinfo dropped",
                "http://user:pw@example.com/a",
                &[],
                &[],
                "http://example.com/a",
            ),
            (
                "IPv6 with default port",
                "http://[::1]:80/a",
                &[],
                &[],
                "http://[::1]/a",
            ),
            (
                "IPv6 with port",
                "http://[2001:DB8::1]:8080/a",
                &[],
                &[],
                "http://[2001:db8::1]:8080/a",
            ),
            (
                "IPv6 without port",
                "http://[::1]/a",
                &[],
                &[],
                "http://[::1]/a",
            ),
            (
                "origin form uses Host",
                "/items?b=2&a=1",
                &[("host", "API.Example.com")],
                &[],
                "http://api.example.com/items?a=1&b=2",
            ),
            (
                "Host with default port",
                "/",
                &[("host", "example.com:80")],
                &[],
                "http://example.com/",
            ),
            ("origin form without Host", "/x", &[], &[], "http:///x"),
            (
                "URI authority beats Host",
                "http://a.example/x",
                &[("host", "b.example")],
                &[],
                "http://a.example/x",
            ),
            (
                "RFC 3986 §6.2.2.1 hex uppercased",
                "http://e.com/a%2fb",
                &[],
                &[],
                "http://e.com/a%2Fb",
            ),
            (
                "RFC 3986 §6.2.2.2 unreserved decoded",
                "http://e.com/%7Euser/%41%2D%5f%2e",
                &[],
                &[],
                "http://e.com/~user/A-_.",
            ),
            (
                "reserved stays encoded",
                "http://e.com/a%20b%3F",
                &[],
                &[],
                "http://e.com/a%20b%3F",
            ),
            (
                "broken escape kept",
                "http://e.com/a%zz%4",
                &[],
                &[],
                "http://e.com/a%zz%4",
            ),
            (
                "an escape never decoded into a new escape with a lone %",
                "http://e.com/%4%41/%%41%42/%%414/%z%41?a=%4%41&b=%4%61&c=%%31",
                &[],
                &[],
                "http://e.com/%4%41/%%41B/%%414/%zA?a=%4%41&b=%4%61&c=%%31",
            ),
            (
                "query sorted by name, one name's parameters in the order sent",
                "http://e.com/?b=2&a=2&a=1",
                &[],
                &[],
                "http://e.com/?a=2&a=1&b=2",
            ),
            (
                "empty pieces dropped",
                "http://e.com/?&&a=1&&",
                &[],
                &[],
                "http://e.com/?a=1",
            ),
            (
                "empty query dropped",
                "http://e.com/p?",
                &[],
                &[],
                "http://e.com/p",
            ),
            (
                "flag parameters kept",
                "http://e.com/?z&a=",
                &[],
                &[],
                "http://e.com/?a=&z",
            ),
            (
                "query escapes normalized",
                "http://e.com/?q=%7e%2c",
                &[],
                &[],
                "http://e.com/?q=~%2C",
            ),
            (
                "ignored parameter dropped",
                "http://e.com/?api_key=s&a=1",
                &[],
                &["api_key"],
                "http://e.com/?a=1",
            ),
            (
                "ignored is exact",
                "http://e.com/?API_KEY=s",
                &[],
                &["api_key"],
                "http://e.com/?API_KEY=s",
            ),
            (
                "ignored matched after normalization",
                "http://e.com/?api%5Fkey=s",
                &[],
                &["api_key"],
                "http://e.com/",
            ),
            (
                "only ignored: no question mark",
                "http://e.com/p?token=1",
                &[],
                &["token"],
                "http://e.com/p",
            ),
        ];
        for (name, uri, headers, ignore, expected) in cases {
            let uri: Uri = uri.parse().unwrap();
            assert_eq!(
                normalize_url(&uri, &map(headers), &ignored(ignore)),
                *expected,
                "{name}"
            );
        }
    }

    /// The authority, path and query edges of the byte-level scans (the common lowercase host
    /// without user information or port is copied as it is).
    #[test]
    fn normalize_url_authority_path_and_query_edges() {
        // (uri, headers, expected)
        let cases: &[(&str, Pairs, &str)] = &[
            ("http://a.example/", &[], "http://a.example/"),
            ("http://A.Example:80/", &[], "http://a.example/"),
            ("HTTP://A.EXAMPLE:0080/", &[], "http://a.example/"),
            ("https://a.example:443/", &[], "https://a.example/"),
            ("https://a.example:80/", &[], "https://a.example:80/"),
            ("WS://A.example:80/", &[], "ws://a.example/"),
            ("wss://a.example:443/", &[], "wss://a.example/"),
            ("ftp://A.example:21/", &[], "ftp://a.example:21/"),
            ("http://a.example:/", &[], "http://a.example/"),
            ("http://u:p@a.example:8080/", &[], "http://a.example:8080/"),
            ("http://u:p@a.example/", &[], "http://a.example/"),
            ("http://u@v@A.example:80/", &[], "http://a.example/"),
            ("http://[::1]/", &[], "http://[::1]/"),
            ("http://[FE80::A]:080/", &[], "http://[fe80::a]/"),
            ("https://u@[::1]:8443/", &[], "https://[::1]:8443/"),
            ("http://127.0.0.1:8080/", &[], "http://127.0.0.1:8080/"),
            ("/", &[("host", "[::1]:80")], "http://[::1]/"),
            ("/", &[("host", "[::A]:8080")], "http://[::a]:8080/"),
            ("/", &[("host", " A.example:0080\t")], "http://a.example/"),
            ("/", &[("host", "a.example:")], "http://a.example/"),
            ("/", &[("host", "")], "http:///"),
            ("/", &[("host", "A@b")], "http://a%40b/"),
            ("http://h/%", &[], "http://h/%"),
            ("http://h/a%", &[], "http://h/a%"),
            ("http://h/%4", &[], "http://h/%4"),
            ("http://h/%41%", &[], "http://h/A%"),
            ("http://h/%%41", &[], "http://h/%%41"),
            ("http://h/%7e%7E%2f%2F", &[], "http://h/~~%2F%2F"),
            ("http://h/%C3%A9", &[], "http://h/%C3%A9"),
            ("http://h/%c3%a9", &[], "http://h/%C3%A9"),
            ("http://h/p?a=1&b=2", &[], "http://h/p?a=1&b=2"),
            ("http://h/p?a=1&b", &[], "http://h/p?a=1&b"),
            ("http://h/p?a=b=c&a", &[], "http://h/p?a=b=c&a"),
            ("http://h/p?b=1&a", &[], "http://h/p?a&b=1"),
            ("http://h/p?ab=1&a=2", &[], "http://h/p?a=2&ab=1"),
            ("http://h/p?a=%41", &[], "http://h/p?a=A"),
            ("http://h/p?a=1&", &[], "http://h/p?a=1"),
            ("http://h/p?&a=1", &[], "http://h/p?a=1"),
            ("http://h/p?apikey=1", &[], "http://h/p"),
            ("http://h/p?apikey", &[], "http://h/p"),
            ("http://h/p?apikeys=1&apikey=2", &[], "http://h/p?apikeys=1"),
            ("http://h/p?=1&a", &[], "http://h/p?=1&a"),
        ];
        let options = KeyOptions::default();
        let ignored = &options.ignored_parameters;
        for (uri, headers, expected) in cases {
            let parsed: Uri = uri.parse().unwrap();
            let headers = map(headers);
            assert_eq!(
                normalize_url(&parsed, &headers, ignored),
                *expected,
                "{uri} {headers:?}"
            );
            // The key of a private cache is derived from the same text, and hands it back.
            let input = KeyInput {
                method: &Method::GET,
                uri: &parsed,
                headers: &headers,
                body: None,
            };
            let (key, url) = create_key_and_url(&input, &options);
            assert_eq!(url.as_deref(), Some(*expected), "{uri}");
            assert_eq!(key, create_key(&input, &options), "{uri}");
        }
        let shared = KeyOptions {
            kind: CacheKind::Shared,
            ..KeyOptions::default()
        };
        let uri: Uri = "http://a.example/%7e".parse().unwrap();
        let headers = HeaderMap::new();
        let input = KeyInput {
            method: &Method::GET,
            uri: &uri,
            headers: &headers,
            body: None,
        };
        assert_eq!(
            create_key_and_url(&input, &shared),
            (create_key(&input, &shared), None),
            "a shared key keeps escapes exactly: its text is not the stored URL"
        );
    }

    #[test]
    fn equivalent_urls_share_a_key() {
        let options = KeyOptions::default();
        let groups: &[&[&str]] = &[
            &[
                "http://example.com/",
                "HTTP://EXAMPLE.COM:80",
                "http://example.com:80/",
                "http://u@example.com/",
            ],
            &[
                "http://e.com/a?x=1&y=2",
                "http://e.com/a?y=2&x=1",
                "http://e.com/a?&x=1&&y=2&",
                "http://e.com/a?x=1&y=2&api_key=k",
            ],
            &["http://e.com/~a", "http://e.com/%7Ea", "http://e.com/%7ea"],
        ];
        for group in groups {
            let first = key(Method::GET, group[0], &[], None, &options);
            for uri in &group[1..] {
                assert_eq!(
                    key(Method::GET, uri, &[], None, &options),
                    first,
                    "{uri} vs {}",
                    group[0]
                );
            }
        }
        let origin = key(
            Method::GET,
            "/a?y=2&x=1",
            &[("host", "e.com")],
            None,
            &options,
        );
        assert_eq!(
            origin,
            key(Method::GET, "http://e.com/a?x=1&y=2", &[], None, &options),
            "origin form + Host"
        );
    }

    #[test]
    fn different_requests_differ() {
        let options = KeyOptions::default();
        let keys = [
            key(Method::GET, "http://e.com/a", &[], None, &options),
            key(Method::HEAD, "http://e.com/a", &[], None, &options),
            key(Method::GET, "https://e.com/a", &[], None, &options),
            key(Method::GET, "http://e.com:8080/a", &[], None, &options),
            key(Method::GET, "http://e.com/A", &[], None, &options),
            key(Method::GET, "http://e.com/a?x=1", &[], None, &options),
            key(Method::GET, "http://e.com/a?x=2", &[], None, &options),
            key(Method::GET, "http://e.com/a?x", &[], None, &options),
            key(Method::GET, "http://e.com/a?x=", &[], None, &options),
            key(Method::GET, "http://f.com/a", &[], None, &options),
            key(Method::GET, "http://e.com/a/", &[], None, &options),
            key(Method::GET, "http://e.com/a%2F", &[], None, &options),
            key(Method::POST, "http://e.com/a", &[], Some(b""), &options),
            key(Method::POST, "http://e.com/a", &[], Some(b"x"), &options),
            key(Method::POST, "http://e.com/a", &[], None, &options),
        ];
        for (i, a) in keys.iter().enumerate() {
            for (j, b) in keys.iter().enumerate() {
                if i != j {
                    assert_ne!(a, b, "cases {i} and {j}");
                }
            }
        }
    }

    #[test]
    fn match_headers() {
        let accept = HeaderName::from_static("accept");
        let language = HeaderName::from_static("accept-language");
        let list = |names: &[&HeaderName]| KeyOptions {
            match_headers: MatchHeaders::List(names.iter().map(|n| (*n).clone()).collect()),
            ..KeyOptions::default()
        };
        let all = KeyOptions {
            match_headers: MatchHeaders::All,
            ..KeyOptions::default()
        };
        let none = KeyOptions::default();
        let uri = "http://e.com/";
        let k = |headers: &[(&str, &str)], options: &KeyOptions| {
            key(Method::GET, uri, headers, None, options)
        };

        // (name, a, b, equal)
        let cases: Vec<(&str, CacheKey, CacheKey, bool)> = vec![
            (
                "None ignores headers",
                k(&[("accept", "a")], &none),
                k(&[("accept", "b")], &none),
                true,
            ),
            (
                "List: listed header counts",
                k(&[("accept", "a")], &list(&[&accept])),
                k(&[("accept", "b")], &list(&[&accept])),
                false,
            ),
            (
                "List: other headers ignored",
                k(&[("x-other", "a")], &list(&[&accept])),
                k(&[("x-other", "b")], &list(&[&accept])),
                true,
            ),
            (
                "List: order of names irrelevant",
                k(&[("accept", "a")], &list(&[&accept, &language])),
                k(&[("accept", "a")], &list(&[&language, &accept])),
                true,
            ),
            (
                "List: duplicates irrelevant",
                k(&[("accept", "a")], &list(&[&accept, &accept])),
                k(&[("accept", "a")], &list(&[&accept])),
                true,
            ),
            (
                "List: absent differs from empty",
                k(&[], &list(&[&accept])),
                k(&[("accept", "")], &list(&[&accept])),
                false,
            ),
            (
                "List: value order matters",
                k(&[("accept", "a"), ("accept", "b")], &list(&[&accept])),
                k(&[("accept", "b"), ("accept", "a")], &list(&[&accept])),
                false,
            ),
            (
                "All: every header counts",
                k(&[("x-other", "a")], &all),
                k(&[("x-other", "b")], &all),
                false,
            ),
            (
                "All: header order irrelevant",
                k(&[("a", "1"), ("b", "2")], &all),
                k(&[("b", "2"), ("a", "1")], &all),
                true,
            ),
            (
                "All: Authorization ignored by default",
                k(&[("authorization", "x")], &all),
                k(&[("authorization", "y")], &all),
                true,
            ),
            (
                "All: X-API-Key ignored case-insensitively",
                k(&[("x-api-key", "x")], &all),
                k(&[], &all),
                true,
            ),
            (
                "List: ignored header not used even when listed",
                k(
                    &[("authorization", "x")],
                    &list(&[&HeaderName::from_static("authorization")]),
                ),
                k(
                    &[("authorization", "y")],
                    &list(&[&HeaderName::from_static("authorization")]),
                ),
                true,
            ),
        ];
        for (name, a, b, equal) in cases {
            assert_eq!(a == b, equal, "{name}");
        }
    }

    #[test]
    fn key_display_and_parse() {
        let k = key(
            Method::GET,
            "http://example.com/",
            &[],
            None,
            &KeyOptions::default(),
        );
        let text = k.to_string();
        assert_eq!(text.len(), 32);
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(text.parse::<CacheKey>().unwrap(), k);
        assert!(k.digest().is_some());
        assert_eq!(
            CacheKey::custom(text.to_ascii_uppercase()).digest(),
            None,
            "uppercase hex is a custom key"
        );
        assert_eq!(CacheKey::custom("my-key").to_string(), "my-key");
        let json = serde_json::to_string(&k).unwrap();
        assert_eq!(serde_json::from_str::<CacheKey>(&json).unwrap(), k);
    }

    #[test]
    fn never_panics_on_odd_input() {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::HOST,
            HeaderValue::from_bytes(b"\xff:bad").unwrap(),
        );
        headers.insert("x-bin", HeaderValue::from_bytes(b"\xfe\xff").unwrap());
        let options = KeyOptions {
            match_headers: MatchHeaders::All,
            ..KeyOptions::default()
        };
        for uri in ["/", "*", "/%", "/%%%", "/%e9", "/?%", "/?=&=", "/?a=%zz"] {
            let uri: Uri = uri.parse().unwrap();
            let _ = normalize_url(&uri, &headers, &[]);
            let _ = create_key(
                &KeyInput {
                    method: &Method::GET,
                    uri: &uri,
                    headers: &headers,
                    body: Some(b"\0"),
                },
                &options,
            );
        }
        let uri: Uri = "/p".parse().unwrap();
        assert_eq!(
            normalize_url(&uri, &headers, &[]),
            "http://%FF%3Abad/p",
            "an unreadable Host is percent-encoded, never spliced"
        );
        assert_eq!(
            normalize_url(&uri, &map(&[("host", "e.com:")]), &[]),
            "http://e.com/p",
            "empty port dropped"
        );
    }

    /// (name, content type, body, ignored, expected)
    type BodyCase = (
        &'static str,
        Option<&'static str>,
        &'static str,
        &'static [&'static str],
        &'static str,
    );

    const JSON: &str = "application/json";
    const FORM: &str = "application/x-www-form-urlencoded";

    fn normalized(content_type: Option<&str>, body: &[u8], ignore: &[&str]) -> Vec<u8> {
        let content_type = content_type.map(|v| HeaderValue::from_str(v).unwrap());
        normalize_body(content_type.as_ref(), body, &ignored(ignore)).into_owned()
    }

    #[test]
    fn normalize_body_cases() {
        // (name, content type, body, ignored, expected)
        let cases: &[BodyCase] = &[
            (
                "JSON keys sorted",
                Some(JSON),
                r#"{"b":1,"a":2}"#,
                &[],
                r#"{"a":2,"b":1}"#,
            ),
            (
                "JSON nested objects sorted",
                Some(JSON),
                r#"{"z":{"y":1,"x":{"d":0,"c":0}},"a":null}"#,
                &[],
                r#"{"a":null,"z":{"x":{"c":0,"d":0},"y":1}}"#,
            ),
            (
                "JSON arrays keep order",
                Some(JSON),
                "[3,1,2]",
                &[],
                "[3,1,2]",
            ),
            (
                "JSON whitespace dropped",
                Some(JSON),
                " {\n\t\"a\" : [ 1 , true , \"x y\" ] }\r\n",
                &[],
                r#"{"a":[1,true,"x y"]}"#,
            ),
            (
                "JSON ignored key removed",
                Some(JSON),
                r#"{"api_key":"x","q":1}"#,
                &["api_key"],
                r#"{"q":1}"#,
            ),
            (
                "JSON ignored key removed at every depth, in arrays too",
                Some(JSON),
                r#"{"a":{"api_key":1,"b":[{"api_key":2,"c":3}]}}"#,
                &["api_key"],
                r#"{"a":{"b":[{"c":3}]}}"#,
            ),
            (
                "JSON ignored names are exact",
                Some(JSON),
                r#"{"API_KEY":1}"#,
                &["api_key"],
                r#"{"API_KEY":1}"#,
            ),
            (
                "JSON ignored name as a value is kept",
                Some(JSON),
                r#"["api_key",{"k":"api_key"}]"#,
                &["api_key"],
                r#"["api_key",{"k":"api_key"}]"#,
            ),
            (
                "JSON string escapes canonical",
                Some(JSON),
                r#"{"s":"\u00e9\/\t\""}"#,
                &[],
                "{\"s\":\"\u{e9}/\\t\\\"\"}",
            ),
            (
                "JSON sorting is by bytes, inside strings with escapes",
                Some(JSON),
                r#"{"b\"":1,"b":2,"a\\":3}"#,
                &[],
                r#"{"a\\":3,"b":2,"b\"":1}"#,
            ),
            ("JSON scalars", Some(JSON), " -12 ", &[], "-12"),
            (
                "JSON exact float",
                Some(JSON),
                "[1.5,1e2,-0.25E1]",
                &[],
                "[1.5,100.0,-2.5]",
            ),
            (
                "JSON u64 kept",
                Some(JSON),
                "18446744073709551615",
                &[],
                "18446744073709551615",
            ),
            (
                "JSON negative zero",
                Some(JSON),
                "[-0,-0.0,0]",
                &[],
                "[-0.0,-0.0,0]",
            ),
            (
                "JSON beyond 64 bits unchanged",
                Some(JSON),
                r#"{"b":1, "id":123456789012345678901234567890}"#,
                &[],
                r#"{"b":1, "id":123456789012345678901234567890}"#,
            ),
            (
                "JSON more digits than f64 unchanged",
                Some(JSON),
                r#"{"b":1, "x":0.10000000000000000000001}"#,
                &[],
                r#"{"b":1, "x":0.10000000000000000000001}"#,
            ),
            (
                "JSON underflow unchanged",
                Some(JSON),
                r#"{"b":1, "x":1e-400}"#,
                &[],
                r#"{"b":1, "x":1e-400}"#,
            ),
            (
                "JSON numbers inside strings are text",
                Some(JSON),
                r#"{"b":"0.10000000000000000000001","a":"1e-400"}"#,
                &[],
                r#"{"a":"1e-400","b":"0.10000000000000000000001"}"#,
            ),
            (
                "JSON duplicate member unchanged",
                Some(JSON),
                r#"{"b":1,"a":1,"a":2}"#,
                &[],
                r#"{"b":1,"a":1,"a":2}"#,
            ),
            (
                "invalid JSON unchanged",
                Some(JSON),
                r#"{"b":1,"a":"#,
                &[],
                r#"{"b":1,"a":"#,
            ),
            (
                "trailing garbage unchanged",
                Some(JSON),
                r#"{"b":1} x"#,
                &[],
                r#"{"b":1} x"#,
            ),
            ("empty JSON body unchanged", Some(JSON), "", &[], ""),
            (
                "JSON with parameters and case",
                Some("Application/JSON; charset=UTF-8"),
                r#"{"b":1,"a":2}"#,
                &[],
                r#"{"a":2,"b":1}"#,
            ),
            (
                "+json types",
                Some("application/vnd.api+json"),
                r#"{"b":1,"a":2}"#,
                &[],
                r#"{"a":2,"b":1}"#,
            ),
            (
                "json-like text unchanged",
                Some("application/jsonx"),
                r#"{"b":1,"a":2}"#,
                &[],
                r#"{"b":1,"a":2}"#,
            ),
            (
                "form sorted by name, one name's parameters in the order sent",
                Some(FORM),
                "b=2&a=2&a=1",
                &[],
                "a=2&a=1&b=2",
            ),
            (
                "form empty pieces dropped",
                Some(FORM),
                "&&b=1&&a=&",
                &[],
                "a=&b=1",
            ),
            (
                "form ignored dropped",
                Some(FORM),
                "q=rust&api_key=secret&access_token=t",
                &["api_key", "access_token"],
                "q=rust",
            ),
            (
                "form ignored matched after percent-normalization",
                Some(FORM),
                "api%5Fkey=s&q=%7e",
                &["api_key"],
                "q=~",
            ),
            (
                "form charset parameter",
                Some("application/x-www-form-urlencoded;charset=UTF-8"),
                "b=1&a=1",
                &[],
                "a=1&b=1",
            ),
            (
                "form only ignored",
                Some(FORM),
                "api_key=1",
                &["api_key"],
                "",
            ),
            (
                "other type unchanged",
                Some("text/plain"),
                r#"{"b":1,"a":2}"#,
                &["b"],
                r#"{"b":1,"a":2}"#,
            ),
            (
                "no content type unchanged",
                None,
                "b=1&a=1",
                &["b"],
                "b=1&a=1",
            ),
            (
                "no subtype unchanged",
                Some("json"),
                r#"{"b":1,"a":2}"#,
                &[],
                r#"{"b":1,"a":2}"#,
            ),
        ];
        for (name, content_type, body, ignore, expected) in cases {
            let actual = normalized(*content_type, body.as_bytes(), ignore);
            assert_eq!(
                String::from_utf8_lossy(&actual),
                *expected,
                "{name}: {body}"
            );
        }
    }

    #[test]
    fn normalize_body_equivalences() {
        let defaults: Vec<&str> = DEFAULT_IGNORED_PARAMETERS.to_vec();
        // (content type, bodies normalizing to one form)
        let groups: &[(&str, &[&str])] = &[
            (
                JSON,
                &[
                    r#"{"b":1,"a":2}"#,
                    r#"{"a":2,"b":1}"#,
                    "{ \"a\": 2,\n \"b\": 1 }",
                ],
            ),
            (
                JSON,
                &[
                    r#"{"api_key":"x","q":1}"#,
                    r#"{"q":1}"#,
                    r#"{"q":1,"access_token":"t"}"#,
                ],
            ),
            (
                JSON,
                &[
                    r#"{"x":{"b":[1,{"d":1,"c":2}],"a":0}}"#,
                    r#"{"x":{"a":0,"b":[1,{"c":2,"d":1}]}}"#,
                ],
            ),
            (FORM, &["a=1&b=2", "b=2&a=1", "b=2&apikey=k&a=1&"]),
        ];
        for (content_type, group) in groups {
            let first = normalized(Some(content_type), group[0].as_bytes(), &defaults);
            for body in &group[1..] {
                assert_eq!(
                    normalized(Some(content_type), body.as_bytes(), &defaults),
                    first,
                    "{body} vs {}",
                    group[0]
                );
            }
        }
        // (content type, bodies that must stay apart)
        let apart: &[(&str, &str, &str)] = &[
            (JSON, "[1,2]", "[2,1]"),
            (JSON, r#"{"a":1}"#, r#"{"a":"1"}"#),
            (JSON, r#"{"a":1}"#, r#"{"a":1.0}"#),
            (JSON, r#"{"a":0.1}"#, r#"{"a":0.10000000000000000000001}"#),
            (JSON, r#"{"a":0}"#, r#"{"a":1e-400}"#),
            (JSON, r#"{"a":1,"a":2}"#, r#"{"a":2}"#),
            (JSON, r#"{"a":{"q":1}}"#, r#"{"a":{"q":2}}"#),
            (FORM, "a=1&a=2", "a=1"),
            (FORM, "a=1", "a=2"),
        ];
        for (content_type, a, b) in apart {
            assert_ne!(
                normalized(Some(content_type), a.as_bytes(), &defaults),
                normalized(Some(content_type), b.as_bytes(), &defaults),
                "{a} vs {b}"
            );
        }
    }

    #[test]
    fn normalize_body_borrows_when_unchanged() {
        let json = HeaderValue::from_static(JSON);
        let text = HeaderValue::from_static("text/plain");
        for (content_type, body) in [
            (Some(&json), &br#"{"a":1,"b":[2]}"#[..]),
            (Some(&json), b"not json"),
            (Some(&text), b"b=1&a=2"),
            (None, b"b=1&a=2"),
        ] {
            assert!(
                matches!(normalize_body(content_type, body, &[]), Cow::Borrowed(_)),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn normalize_body_never_panics_on_odd_input() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let long_exponent = format!("[1e{}]", "9".repeat(40));
        let inputs: [&[u8]; 12] = [
            b"\xff\xfe",
            b"\"\\",
            b"\"\\u12",
            b"[1e]",
            b"[-]",
            b"[1e999]",
            b"[01]",
            b"{\"a\":NaN}",
            deep.as_bytes(),
            long_exponent.as_bytes(),
            b"=&=&%&%zz=%",
            b"\0",
        ];
        for content_type in [JSON, FORM, "application/+json", "/", ";", ""] {
            let content_type = HeaderValue::from_str(content_type).unwrap();
            for body in inputs {
                let _ = normalize_body(Some(&content_type), body, &ignored(&["a"]));
            }
        }
        let binary = HeaderValue::from_bytes(b"application/json\xff").unwrap();
        assert_eq!(&*normalize_body(Some(&binary), b"{ }", &[]), b"{ }");
    }

    #[test]
    fn decimal_values() {
        assert_eq!(decimal_value("1.50e1"), Some((false, "15".into(), 0)));
        assert_eq!(decimal_value("-0.0"), Some((false, String::new(), 0)));
        assert_eq!(decimal_value("1200"), Some((false, "12".into(), 2)));
        assert_eq!(decimal_value("-1.2E-3"), Some((true, "12".into(), -4)));
        assert_eq!(decimal_value("1e+2"), decimal_value("100.0"));
        assert_eq!(decimal_value("1e"), None);
        assert_eq!(decimal_value("1x"), None);
    }

    #[test]
    fn golden_body_is_already_normal() {
        // The golden POST body is its own normal form: keys made by the body-keying layer for it
        // are the golden key.
        let json = HeaderValue::from_static(JSON);
        let body = b"{\"query\":\"{ a }\"}";
        let normal = normalize_body(Some(&json), body, &KeyOptions::default().ignored_parameters);
        assert!(matches!(normal, Cow::Borrowed(_)));
    }

    /// These vectors pin the key format (`cachelayer-key-v2`) across releases: stores written by
    /// one version are read by the next with the same keys. Changing any of them is a breaking
    /// change: bump the version prefix in `create_key` and say so in the changelog.
    #[test]
    fn golden_keys_are_stable() {
        let expected = [
            // GET http://example.com/, default options
            "76119ed2349af16385d788667dcccba9",
            // GET https://example.com/search?q=rust&page=2
            "3f3bece394b03155e0aed5c8aafb622c",
            // the same with the query reordered
            "3f3bece394b03155e0aed5c8aafb622c",
            // HEAD http://example.com/
            "ac4b954fcad5280da9a03b237df09474",
            // GET http://example.com/ with match_headers = [accept, accept-language]
            "3b247f05d77cdb6c8883d8db0b150900",
            // POST http://example.com/graphql with a body
            "a65c0976bfd0e3214d1221297d4ca33d",
            // shared: GET https://example.com/raw/%62?api_key=alice&x=1 with X-API-Key: alice
            "02495d4495bed8bc862ae281259fa753",
        ];
        let actual: Vec<String> = golden_inputs().iter().map(CacheKey::to_string).collect();
        assert_eq!(actual, expected);
    }

    /// Keys through the pieces written by libraries (a port by `itoa`, escapes by
    /// `percent-encoding`, the digest by `const-hex`), pinned at what the hand-written code
    /// gave before them.
    #[test]
    fn golden_keys_through_escapes_ports_and_invalid_hosts() {
        let private = KeyOptions::default();
        let shared = KeyOptions {
            kind: CacheKind::Shared,
            ..KeyOptions::default()
        };
        /// The request target, its header fields, the options, the URL and the key.
        type Case<'a> = (
            &'a str,
            &'a [(&'a str, &'a str)],
            &'a KeyOptions,
            &'a str,
            &'a str,
        );
        let cases: [Case<'_>; 4] = [
            (
                "http://Example.com:8080/a%2fb%7E%41?x=%41%2f&b=%7e&a=1",
                &[],
                &private,
                "http://example.com:8080/a%2Fb~A?a=1&b=~&x=A%2F",
                "a736450b526f5a359db0f94e30e9b443",
            ),
            (
                "/p?q=1",
                &[("host", "victim/b")],
                &private,
                "http://victim%2Fb/p?q=1",
                "057906b94fb1f833a62e34b77371775d",
            ),
            (
                "/p",
                &[("host", "a b"), ("host", "c")],
                &shared,
                "http://a%20b%2Cc/p",
                "3c37b2b16551035ebaedd08f184d3ba1",
            ),
            (
                "https://example.com:8443/%4%41?%%414=1",
                &[],
                &private,
                "https://example.com:8443/%4%41?%%414=1",
                "5268dca6834c0539725e53e185832b64",
            ),
        ];
        for (uri, headers, options, url, digest) in cases {
            let parsed: Uri = uri.parse().unwrap();
            assert_eq!(
                normalize_url(&parsed, &map(headers), &options.ignored_parameters),
                url,
                "{uri}"
            );
            assert_eq!(
                key(Method::GET, uri, headers, None, options).to_string(),
                digest,
                "{uri}"
            );
        }
        let form = HeaderValue::from_static("application/x-www-form-urlencoded");
        assert_eq!(
            &*normalize_body(
                Some(&form),
                b"q=a%7eb&api_key=s&b=%2f+x&a=1",
                &private.ignored_parameters
            ),
            b"a=1&b=%2F+x&q=a~b"
        );
    }

    fn golden_inputs() -> Vec<CacheKey> {
        let default = KeyOptions::default();
        let shared = KeyOptions {
            kind: CacheKind::Shared,
            ..KeyOptions::default()
        };
        let with_list = KeyOptions {
            match_headers: MatchHeaders::List(vec![
                HeaderName::from_static("accept"),
                HeaderName::from_static("accept-language"),
            ]),
            ..KeyOptions::default()
        };
        vec![
            key(Method::GET, "http://example.com/", &[], None, &default),
            key(
                Method::GET,
                "https://example.com/search?q=rust&page=2",
                &[],
                None,
                &default,
            ),
            key(
                Method::GET,
                "https://example.com/search?page=2&q=rust",
                &[],
                None,
                &default,
            ),
            key(Method::HEAD, "http://example.com/", &[], None, &default),
            key(
                Method::GET,
                "http://example.com/",
                &[("accept", "application/json"), ("accept-language", "en")],
                None,
                &with_list,
            ),
            key(
                Method::POST,
                "http://example.com/graphql",
                &[],
                Some(b"{\"query\":\"{ a }\"}"),
                &default,
            ),
            key(
                Method::GET,
                "https://example.com/raw/%62?api_key=alice&x=1",
                &[("x-api-key", "alice")],
                None,
                &shared,
            ),
        ]
    }

    /// What a shared cache keys that a private one does not, and what both key alike.
    #[test]
    fn shared_keys_are_as_specific_as_what_the_origin_receives() {
        let private = KeyOptions::default();
        let shared = KeyOptions {
            kind: CacheKind::Shared,
            ..KeyOptions::default()
        };
        let get = |uri: &str, headers: &[(&str, &str)], options: &KeyOptions| {
            key(Method::GET, uri, headers, None, options)
        };
        // (a, b, same key in a private cache, same key in a shared cache)
        type Request<'a> = (&'a str, &'a [(&'a str, &'a str)]);
        let cases: &[(&str, Request<'_>, Request<'_>, bool, bool)] = &[
            (
                "percent-encoded unreserved character",
                ("http://h/raw/%62", &[]),
                ("http://h/raw/b", &[]),
                true,
                false,
            ),
            (
                "percent-encoded dots",
                ("http://h/raw/%2e%2e/x", &[]),
                ("http://h/raw/../x", &[]),
                true,
                false,
            ),
            (
                "hex digit case",
                ("http://h/a%2fb", &[]),
                ("http://h/a%2Fb", &[]),
                true,
                false,
            ),
            (
                "a query credential of another user",
                ("http://h/p?api_key=ALICE&x=1", &[]),
                ("http://h/p?api_key=BOB&x=1", &[]),
                true,
                false,
            ),
            (
                "a query credential and none",
                ("http://h/p?api_key=ALICE&x=1", &[]),
                ("http://h/p?x=1", &[]),
                true,
                false,
            ),
            (
                "a header credential of another user",
                ("http://h/p", &[("x-api-key", "alice")]),
                ("http://h/p", &[("x-api-key", "bob")]),
                true,
                false,
            ),
            (
                "Authorization and none",
                ("http://h/p", &[("authorization", "Bearer a")]),
                ("http://h/p", &[]),
                true,
                false,
            ),
            (
                "the same credential",
                ("http://h/p?x=1&api_key=A", &[("x-api-key", "k")]),
                ("http://h/p?api_key=A&x=1", &[("x-api-key", "k")]),
                true,
                true,
            ),
            (
                "parameters of one name in another order",
                ("http://h/p?a=evil&a=good", &[]),
                ("http://h/p?a=good&a=evil", &[]),
                false,
                false,
            ),
            (
                "parameters of different names in another order",
                ("http://h/p?b=1&a=2", &[]),
                ("http://h/p?a=2&b=1", &[]),
                true,
                true,
            ),
            (
                "a Host that spells a path",
                ("/c", &[("host", "victim/b")]),
                ("/b/c", &[("host", "victim")]),
                false,
                false,
            ),
            (
                "a Host with user information",
                ("/c", &[("host", "evil@victim")]),
                ("/c", &[("host", "victim")]),
                false,
                false,
            ),
            (
                "a Host and its case",
                ("/c", &[("host", "Victim.Example")]),
                ("/c", &[("host", "victim.example")]),
                true,
                true,
            ),
        ];
        for (name, (uri_a, headers_a), (uri_b, headers_b), same_private, same_shared) in cases {
            assert_eq!(
                get(uri_a, headers_a, &private) == get(uri_b, headers_b, &private),
                *same_private,
                "private: {name}"
            );
            assert_eq!(
                get(uri_a, headers_a, &shared) == get(uri_b, headers_b, &shared),
                *same_shared,
                "shared: {name}"
            );
        }
        // Credentials never reach the URL a store keeps.
        let uri: Uri = "http://h/p?api_key=ALICE&x=1".parse().unwrap();
        let url = normalize_url(&uri, &HeaderMap::new(), &private.ignored_parameters);
        assert_eq!(url, "http://h/p?x=1");
    }

    #[test]
    fn host_validity() {
        let cases: &[(&[&[u8]], bool)] = &[
            (&[], true),
            (&[b"example.com"], true),
            (&[b"example.com:8080"], true),
            (&[b" example.com "], true),
            (&[b"[::1]:8080"], true),
            (&[b"[::1]"], true),
            (&[b"127.0.0.1:80"], true),
            (&[b"xn--bcher-kva.example"], true),
            (&[b""], true),
            (&[b"victim/b"], false),
            (&[b"victim?x"], false),
            (&[b"victim#x"], false),
            (&[b"evil@victim"], false),
            (&[b"a b"], false),
            (&[b"a\\b"], false),
            (&[b"a:port"], false),
            (&[b"a:123456"], false),
            (&[b"[::1"], false),
            (&[b"[::1]x"], false),
            (&[b"caf\xe9"], false),
            (&[b"a.example", b"a.example"], false),
            (&[b"a.example", b"b.example"], false),
        ];
        for (values, valid) in cases {
            let mut headers = HeaderMap::new();
            for value in *values {
                headers.append(http::header::HOST, HeaderValue::from_bytes(value).unwrap());
            }
            assert_eq!(host_is_valid(&headers), *valid, "{values:?}");
        }
    }

    #[test]
    fn credential_headers_are_found_whatever_their_case() {
        let ignored: Vec<String> = DEFAULT_IGNORED_PARAMETERS
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(!has_credential_header(&HeaderMap::new(), &ignored));
        assert!(!has_credential_header(&map(&[("accept", "*/*")]), &ignored));
        assert!(has_credential_header(&map(&[("x-api-key", "k")]), &ignored));
        assert!(has_credential_header(
            &map(&[("authorization", "Basic x")]),
            &ignored
        ));
        assert!(has_credential_header(
            &map(&[("x-token", "k")]),
            &["X-Token".to_owned()]
        ));
    }
}
