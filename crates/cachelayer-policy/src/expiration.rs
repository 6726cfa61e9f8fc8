//! Expiration values and their order of precedence (requests-cache's "Expiration" settings).
//!
//! An [`ExpireAfter`] is what a user writes: in code, or in a settings file as text
//! (`"30s"`, `"1h 30m"`, `"never"`, `"immediately"`, `"do-not-cache"`, an RFC 3339 date-time, or a
//! number of seconds). [`resolve`] picks the one that applies to a response, in requests-cache's
//! order of precedence:
//!
//! 1. the response's `Cache-Control` / `Expires` headers, when `cache_control` is enabled;
//! 2. the request's `Cache-Control: max-age` header;
//! 3. the per-request expiration;
//! 4. the per-URL expiration (`urls_expire_after`);
//! 5. the per-session expiration (`expire_after`);
//!
//! and when none applies: heuristic freshness (RFC 9111 §4.2.2) if `cache_control` is enabled,
//! else [`ExpireAfter::Never`] (requests-cache's default: store indefinitely).
//!
//! ```
//! use cachelayer_policy::expiration::{self, ExpirationInputs, ExpirationSource, ExpireAfter, ResolvedExpirationKind};
//! use std::time::{Duration, SystemTime};
//!
//! let five_minutes: ExpireAfter = "5m".parse().unwrap();
//! let resolved = expiration::resolve(&ExpirationInputs {
//!     cache_control: true,
//!     response: None, // the origin sent no max-age / Expires
//!     per_url: Some(ExpireAfter::After(Duration::from_secs(60))),
//!     session: Some(five_minutes),
//!     ..ExpirationInputs::new(SystemTime::now())
//! });
//! assert_eq!(resolved.source, ExpirationSource::PerUrl);
//! assert_eq!(resolved.kind, ResolvedExpirationKind::Lifetime(Duration::from_secs(60)));
//! ```

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

/// How long a response stays fresh, as a setting (requests-cache `expire_after`).
///
/// Text form (for [`FromStr`], [`Display`](fmt::Display) and serde): `"never"` / `"-1"`,
/// `"immediately"` / `"0"`, `"do-not-cache"`, a humantime duration (`"90s"`, `"1h 30m"`,
/// `"30days"`), a bare number of seconds (`"360"`), or an RFC 3339 date-time
/// (`"2030-01-01T00:00:00Z"`). serde also accepts an integer number of seconds (`-1` = never,
/// `0` = immediately).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExpireAfter {
    /// Store indefinitely (requests-cache `NEVER_EXPIRE`).
    Never,
    /// Store, but consider stale at once: used only after revalidation, so only responses with a
    /// validator are stored (requests-cache `EXPIRE_IMMEDIATELY`, like `max-age=0`).
    Immediately,
    /// Neither read from nor write to the cache (requests-cache `DO_NOT_CACHE`).
    DoNotCache,
    /// Fresh for this long after the response is received. A zero duration is
    /// [`ExpireAfter::Immediately`].
    After(Duration),
    /// Fresh until this instant.
    At(SystemTime),
}

/// requests-cache's `NEVER_EXPIRE`.
pub const NEVER_EXPIRE: ExpireAfter = ExpireAfter::Never;
/// requests-cache's `EXPIRE_IMMEDIATELY`.
pub const EXPIRE_IMMEDIATELY: ExpireAfter = ExpireAfter::Immediately;
/// requests-cache's `DO_NOT_CACHE`.
pub const DO_NOT_CACHE: ExpireAfter = ExpireAfter::DoNotCache;

/// The error of parsing an [`ExpireAfter`] from text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseExpireAfterError {
    input: String,
}

impl fmt::Display for ParseExpireAfterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid expiration {:?}: expected \"never\", \"immediately\", \"do-not-cache\", a duration such as \"1h 30m\", a number of seconds, or an RFC 3339 date-time",
            self.input
        )
    }
}

impl std::error::Error for ParseExpireAfterError {}

impl FromStr for ExpireAfter {
    type Err = ParseExpireAfterError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let _ = s;
        todo!()
    }
}

impl fmt::Display for ExpireAfter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let _ = f;
        todo!()
    }
}

impl Serialize for ExpireAfter {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ExpireAfter {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let _ = deserializer;
        todo!()
    }
}

impl From<Duration> for ExpireAfter {
    fn from(d: Duration) -> Self {
        if d.is_zero() { ExpireAfter::Immediately } else { ExpireAfter::After(d) }
    }
}

impl From<SystemTime> for ExpireAfter {
    fn from(t: SystemTime) -> Self {
        ExpireAfter::At(t)
    }
}

/// Which level of the precedence order decided a response's expiration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExpirationSource {
    /// The response's `Cache-Control` / `Expires` (level 1).
    ResponseHeaders,
    /// The request's `Cache-Control` (level 2).
    RequestHeaders,
    /// The per-request option (level 3).
    PerRequest,
    /// `urls_expire_after` (level 4).
    PerUrl,
    /// `expire_after` (level 5).
    Session,
    /// Heuristic freshness (RFC 9111 §4.2.2).
    Heuristic,
    /// Nothing applied: stale at once with `cache_control`, never expiring without.
    Default,
}

/// The inputs of [`resolve`], one field per precedence level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExpirationInputs {
    /// Whether response headers decide (requests-cache `cache_control`). When `false`, `response`
    /// and `heuristic` are ignored.
    pub cache_control: bool,
    /// The explicit freshness lifetime of the response's headers (see
    /// [`freshness::explicit_lifetime`](crate::freshness::explicit_lifetime)).
    pub response: Option<Duration>,
    /// The expiration the request's headers ask for (`Cache-Control: max-age=N` on the request).
    pub request: Option<ExpireAfter>,
    /// The per-request option.
    pub per_request: Option<ExpireAfter>,
    /// The first matching `urls_expire_after` pattern's value.
    pub per_url: Option<ExpireAfter>,
    /// The session's `expire_after`.
    pub session: Option<ExpireAfter>,
    /// The heuristic freshness lifetime, if heuristic freshness applies to the response.
    pub heuristic: Option<Duration>,
    /// When the response was received; [`ExpireAfter::At`] is measured from it.
    pub response_time: SystemTime,
}

impl ExpirationInputs {
    /// Inputs with every level empty and `cache_control` enabled.
    pub fn new(response_time: SystemTime) -> Self {
        ExpirationInputs {
            cache_control: true,
            response: None,
            request: None,
            per_request: None,
            per_url: None,
            session: None,
            heuristic: None,
            response_time,
        }
    }
}

/// What [`resolve`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolvedExpiration {
    /// The expiration.
    pub kind: ResolvedExpirationKind,
    /// The level it came from.
    pub source: ExpirationSource,
}

/// A resolved expiration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolvedExpirationKind {
    /// Do not read or write the cache.
    DoNotCache,
    /// Never expires.
    Never,
    /// Fresh for this long after the response was received (zero: stale at once, usable only
    /// after revalidation). [`ExpireAfter::At`] resolves to the time left until that instant.
    Lifetime(Duration),
}

/// Resolves the expiration of a response by the order of precedence in the module docs.
pub fn resolve(inputs: &ExpirationInputs) -> ResolvedExpiration {
    let _ = inputs;
    todo!()
}

/// The request-side part of [`resolve`]: the first of `request`, `per_request`, `per_url` and
/// `session` that is set, before any response exists. The cache uses it to skip the read
/// entirely on [`ExpireAfter::DoNotCache`] (requests-cache skips both read and write).
pub fn resolve_request_side(inputs: &ExpirationInputs) -> Option<(ExpireAfter, ExpirationSource)> {
    let _ = inputs;
    todo!()
}
