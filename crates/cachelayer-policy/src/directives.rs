//! `Cache-Control` and `Pragma` parsing (RFC 9111 §5.2, §5.4; RFC 5861; RFC 8246).
//!
//! Parsing never fails: unknown directives are ignored (§5.2.3), and malformed values are read
//! the way RFC 9111 tells a cache to read them, which is always the safer way:
//!
//! - a `max-age` / `s-maxage` whose value is not a valid delta-seconds (`max-age=abc`,
//!   `max-age=-1`), or that appears twice with different values, makes the response stale
//!   (a lifetime of zero, §4.2.1);
//! - a delta-seconds larger than 2^31 is read as 2^31 seconds (§1.2.2);
//! - a quoted value (`max-age="60"`) is accepted (§5.2);
//! - directive names are case-insensitive.
//!
//! ```
//! use cachelayer_policy::directives::{RequestDirectives, ResponseDirectives};
//! use http::HeaderMap;
//! use std::time::Duration;
//!
//! let mut response = HeaderMap::new();
//! response.insert("cache-control", "max-age=60, stale-if-error=300".parse().unwrap());
//! let cc = ResponseDirectives::from_headers(&response);
//! assert_eq!(cc.max_age, Some(Duration::from_secs(60)));
//! assert_eq!(cc.stale_if_error, Some(Duration::from_secs(300)));
//!
//! let mut request = HeaderMap::new();
//! request.insert("pragma", "no-cache".parse().unwrap());
//! assert!(RequestDirectives::from_headers(&request).no_cache);
//! ```

use http::{HeaderMap, HeaderName};
use std::time::Duration;

/// The largest delta-seconds value a cache must represent, 2^31 seconds (RFC 9111 §1.2.2).
pub const MAX_DELTA_SECONDS: u64 = 2_147_483_648;

/// The argument of `no-cache` and `private` in a response (RFC 9111 §5.2.2.4, §5.2.2.7).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum FieldList {
    /// The directive is absent.
    #[default]
    Absent,
    /// The directive is present without a list of fields: it applies to the whole response.
    All,
    /// The directive is present with a quoted list of field names: it applies to those header
    /// fields only. Names are lowercase.
    Fields(Vec<HeaderName>),
}

impl FieldList {
    /// `true` unless the directive is absent.
    pub fn is_present(&self) -> bool {
        !matches!(self, FieldList::Absent)
    }

    /// `true` when the directive applies to the whole response.
    pub fn is_all(&self) -> bool {
        matches!(self, FieldList::All)
    }
}

/// The argument of the request directive `max-stale` (RFC 9111 §5.2.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxStale {
    /// `max-stale` without a value: a stale response of any staleness is acceptable.
    Any,
    /// `max-stale=N`: a response stale by at most this long is acceptable.
    AtMost(Duration),
}

/// The directives of a response's `Cache-Control` (RFC 9111 §5.2.2), with the extensions
/// `immutable` (RFC 8246), `stale-while-revalidate` and `stale-if-error` (RFC 5861).
///
/// Durations are whole seconds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResponseDirectives {
    /// `max-age=N` (§5.2.2.1). Invalid or conflicting values read as zero.
    pub max_age: Option<Duration>,
    /// `s-maxage=N` (§5.2.2.10), used by shared caches only. Invalid or conflicting values read
    /// as zero.
    pub s_maxage: Option<Duration>,
    /// `no-cache` (§5.2.2.4), with or without field names.
    pub no_cache: FieldList,
    /// `private` (§5.2.2.7), with or without field names.
    pub private: FieldList,
    /// `no-store` (§5.2.2.5).
    pub no_store: bool,
    /// `no-transform` (§5.2.2.6).
    pub no_transform: bool,
    /// `must-revalidate` (§5.2.2.2).
    pub must_revalidate: bool,
    /// `proxy-revalidate` (§5.2.2.8), used by shared caches only.
    pub proxy_revalidate: bool,
    /// `must-understand` (§5.2.2.3).
    pub must_understand: bool,
    /// `public` (§5.2.2.9).
    pub public: bool,
    /// `immutable` (RFC 8246): the response will not change while fresh.
    pub immutable: bool,
    /// `stale-while-revalidate=N` (RFC 5861 §3).
    pub stale_while_revalidate: Option<Duration>,
    /// `stale-if-error=N` (RFC 5861 §4).
    pub stale_if_error: Option<Duration>,
}

impl ResponseDirectives {
    /// Parses every `Cache-Control` field line of a response. Never fails; see the module docs
    /// for how malformed input is read.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let _ = headers;
        todo!()
    }

    /// Parses one `Cache-Control` field value.
    pub fn parse(value: &str) -> Self {
        let _ = value;
        todo!()
    }
}

/// The directives of a request's `Cache-Control` (RFC 9111 §5.2.1), with `stale-if-error`
/// (RFC 5861 §4) and `Pragma: no-cache` (§5.4).
///
/// Durations are whole seconds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestDirectives {
    /// `max-age=N` (§5.2.1.1): the client does not accept a response older than this.
    /// An invalid value reads as zero.
    pub max_age: Option<Duration>,
    /// `max-stale[=N]` (§5.2.1.2).
    pub max_stale: Option<MaxStale>,
    /// `min-fresh=N` (§5.2.1.3).
    pub min_fresh: Option<Duration>,
    /// `no-cache` (§5.2.1.4), or `Pragma: no-cache` when the request has no `Cache-Control`
    /// (§5.4).
    pub no_cache: bool,
    /// `no-store` (§5.2.1.5).
    pub no_store: bool,
    /// `no-transform` (§5.2.1.6).
    pub no_transform: bool,
    /// `only-if-cached` (§5.2.1.7).
    pub only_if_cached: bool,
    /// `stale-if-error=N` (RFC 5861 §4).
    pub stale_if_error: Option<Duration>,
}

impl RequestDirectives {
    /// Parses every `Cache-Control` field line of a request; when there is none, reads
    /// `Pragma: no-cache` as `no-cache` (§5.4). Never fails.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let _ = headers;
        todo!()
    }

    /// Parses one `Cache-Control` field value.
    pub fn parse(value: &str) -> Self {
        let _ = value;
        todo!()
    }

    /// `true` when no directive is set (the request leaves every decision to the cache).
    pub fn is_empty(&self) -> bool {
        *self == RequestDirectives::default()
    }
}
