//! Cache keys: URL normalization and the key digest.
//!
//! A cache key identifies one stored response. By default it is derived from:
//!
//! 1. the request method, uppercase as sent (`GET`, `HEAD`, ...);
//! 2. the normalized URL ([`normalize_url`]):
//!    - scheme and host lowercase; the scheme defaults to `http` and the authority to the `Host`
//!      header when the request target is in origin form (`/path?query`, as a server receives it);
//!    - the default port dropped (`:80` for http, `:443` for https);
//!    - an empty path becomes `/`; percent-encodings are uppercased (`%2f` -> `%2F`) and
//!      percent-encoded unreserved characters are decoded (`%7E` -> `~`), RFC 3986 §6.2.2;
//!    - query parameters sorted by name, then value, with empty parameters and an empty query
//!      dropped; parameters named in `ignored_parameters` are left out;
//!    - no fragment;
//! 3. the request headers chosen by [`MatchHeaders`], by lowercase name, in name order, minus
//!    `ignored_parameters`;
//! 4. the request body, when the caller passes one (cacheable POST requests).
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

use http::{HeaderMap, HeaderName, Method, Uri};
use serde::{Deserialize, Serialize};
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

    /// The digest, for a digest key.
    pub fn digest(&self) -> Option<&[u8; 16]> {
        match &self.0 {
            Repr::Digest(d) => Some(d),
            Repr::Custom(_) => None,
        }
    }
}

fn parse_hex_digest(s: &str) -> Option<[u8; 16]> {
    let bytes = s.as_bytes();
    if bytes.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        if pair.iter().any(|b| b.is_ascii_uppercase()) {
            return None;
        }
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Digest(d) => d.iter().try_for_each(|b| write!(f, "{b:02x}")),
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
    /// case-insensitively, query parameters exactly). Default: [`DEFAULT_IGNORED_PARAMETERS`].
    pub ignored_parameters: Vec<String>,
}

impl Default for KeyOptions {
    fn default() -> Self {
        KeyOptions {
            match_headers: MatchHeaders::None,
            ignored_parameters: DEFAULT_IGNORED_PARAMETERS.iter().map(|s| s.to_string()).collect(),
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
/// port is written without leading zeros; a `%` that does not start a `%XX` escape is kept as is;
/// query parameters are compared with `ignored` after percent-normalization, by exact match.
/// Without a URI authority or a valid `Host` header the authority is empty (`http:///path`).
pub fn normalize_url(uri: &Uri, headers: &HeaderMap, ignored: &[String]) -> String {
    let scheme = uri.scheme_str().unwrap_or("http").to_ascii_lowercase();
    let raw_authority = match uri.authority() {
        Some(authority) => authority.as_str(),
        None => headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("").trim(),
    };
    let authority = normalize_authority(raw_authority, &scheme);
    let path = match uri.path() {
        "" => "/".to_string(),
        path => normalize_percent_encoding(path),
    };
    let mut url = format!("{scheme}://{authority}{path}");
    if let Some(query) = uri.query() {
        let mut params: Vec<(String, String)> = query
            .split('&')
            .filter(|piece| !piece.is_empty())
            .map(normalize_percent_encoding)
            .map(|piece| {
                let name = piece.split_once('=').map_or(piece.as_str(), |(name, _)| name).to_string();
                (name, piece)
            })
            .filter(|(name, _)| !ignored.iter().any(|i| i == name))
            .collect();
        params.sort();
        if !params.is_empty() {
            url.push('?');
            let pieces: Vec<&str> = params.iter().map(|(_, piece)| piece.as_str()).collect();
            url.push_str(&pieces.join("&"));
        }
    }
    url
}

/// Lowercases the host, drops user information and the default port of `scheme`.
fn normalize_authority(authority: &str, scheme: &str) -> String {
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, rest)| rest);
    let (host, port) = if host_port.starts_with('[') {
        // IPv6 literal: the port, if any, follows the closing bracket.
        match host_port.find(']') {
            Some(end) => {
                let (host, rest) = host_port.split_at(end + 1);
                (host, rest.strip_prefix(':'))
            }
            None => (host_port, None),
        }
    } else {
        match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    let mut out = host.to_ascii_lowercase();
    if let Some(port) = port.filter(|p| !p.is_empty()) {
        let default_port = match scheme {
            "http" | "ws" => Some(80),
            "https" | "wss" => Some(443),
            _ => None,
        };
        match port.parse::<u16>() {
            Ok(n) if Some(n) == default_port => {}
            Ok(n) => {
                out.push(':');
                out.push_str(&n.to_string());
            }
            Err(_) => {
                out.push(':');
                out.push_str(&port.to_ascii_lowercase());
            }
        }
    }
    out
}

/// RFC 3986 §6.2.2.1–2: uppercase the hex digits of percent-encodings, and decode those of
/// unreserved characters.
fn normalize_percent_encoding(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < bytes.len() {
        let escape = match bytes.get(i..i + 3) {
            Some(&[b'%', hi, lo]) => hex_value(hi).zip(hex_value(lo)).map(|(h, l)| h * 16 + l),
            _ => None,
        };
        match escape {
            Some(byte) => {
                if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
                    out.push(char::from(byte));
                } else {
                    out.push('%');
                    out.push(char::from(HEX_UPPER.get(usize::from(byte >> 4)).copied().unwrap_or(b'0')));
                    out.push(char::from(HEX_UPPER.get(usize::from(byte & 0x0f)).copied().unwrap_or(b'0')));
                }
                i += 3;
            }
            None => {
                // Copy one whole character (the input is a &str, so this stays valid UTF-8).
                let ch = s.get(i..).and_then(|rest| rest.chars().next());
                match ch {
                    Some(c) => {
                        out.push(c);
                        i += c.len_utf8();
                    }
                    None => i += 1,
                }
            }
        }
    }
    out
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The cache key of a request, as described in the module docs.
///
/// The digest input (version `cachelayer-key-v1`) is, in order:
///
/// ```text
/// cachelayer-key-v1\n
/// {METHOD}\n
/// {normalized URL}\n
/// {header name}:{value 1},{value 2}\n     (one line per matched header present, in name order)
/// \nbody:{body bytes}                      (only when a body is given, even an empty one)
/// ```
///
/// Header names are lowercase; the values of one header are joined with `,` in the order they
/// were sent. A header listed in [`MatchHeaders::List`] but absent from the request contributes
/// nothing, so absence and an empty value give different keys. The key is the first 128 bits of
/// the BLAKE3 digest.
pub fn create_key(input: &KeyInput<'_>, options: &KeyOptions) -> CacheKey {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"cachelayer-key-v1\n");
    hasher.update(input.method.as_str().as_bytes());
    hasher.update(b"\n");
    hasher.update(normalize_url(input.uri, input.headers, &options.ignored_parameters).as_bytes());
    hasher.update(b"\n");
    let is_ignored =
        |name: &HeaderName| options.ignored_parameters.iter().any(|i| i.eq_ignore_ascii_case(name.as_str()));
    let mut names: Vec<&HeaderName> = match &options.match_headers {
        MatchHeaders::None => Vec::new(),
        MatchHeaders::All => input.headers.keys().collect(),
        MatchHeaders::List(names) => names.iter().collect(),
    };
    names.retain(|name| !is_ignored(name));
    names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    names.dedup();
    for name in names {
        let mut values = input.headers.get_all(name).iter().peekable();
        if values.peek().is_none() {
            continue;
        }
        hasher.update(name.as_str().as_bytes());
        hasher.update(b":");
        for (i, value) in values.enumerate() {
            if i > 0 {
                hasher.update(b",");
            }
            hasher.update(value.as_bytes());
        }
        hasher.update(b"\n");
    }
    if let Some(body) = input.body {
        hasher.update(b"\nbody:");
        hasher.update(body);
    }
    let mut digest = [0u8; 16];
    hasher.finalize_xof().fill(&mut digest);
    CacheKey::from_digest(digest)
}
