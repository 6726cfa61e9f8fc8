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
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
        let text = s.trim();
        let lower = text.to_ascii_lowercase();
        match lower.as_str() {
            "never" | "-1" | "never_expire" | "never-expire" => return Ok(ExpireAfter::Never),
            "immediately" | "0" | "expire_immediately" | "expire-immediately" => {
                return Ok(ExpireAfter::Immediately);
            }
            "do-not-cache" | "do_not_cache" | "skip" => return Ok(ExpireAfter::DoNotCache),
            _ => {}
        }
        let error = || ParseExpireAfterError { input: s.to_string() };
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            let secs = text.parse::<u64>().map_err(|_| error())?;
            return Ok(Duration::from_secs(secs).into());
        }
        // Durations are case-sensitive in humantime ("5m" is minutes, "5M" months).
        if let Ok(duration) = humantime::parse_duration(text) {
            return Ok(duration.into());
        }
        if let Ok(time) = humantime::parse_rfc3339_weak(text) {
            return Ok(ExpireAfter::At(time));
        }
        Err(error())
    }
}

impl fmt::Display for ExpireAfter {
    /// Writes a form [`FromStr`] reads back. An [`ExpireAfter::At`] outside the years 1970–9999
    /// (which RFC 3339 text cannot hold) is written as the nearest instant inside them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpireAfter::Never => f.write_str("never"),
            ExpireAfter::Immediately => f.write_str("immediately"),
            ExpireAfter::DoNotCache => f.write_str("do-not-cache"),
            ExpireAfter::After(d) => write!(f, "{}", humantime::format_duration(*d)),
            ExpireAfter::At(t) => write!(f, "{}", humantime::format_rfc3339(clamp_to_rfc3339_range(*t))),
        }
    }
}

impl Serialize for ExpireAfter {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ExpireAfter {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ExpireAfterVisitor)
    }
}

struct ExpireAfterVisitor;

impl serde::de::Visitor<'_> for ExpireAfterVisitor {
    type Value = ExpireAfter;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"never\", \"immediately\", \"do-not-cache\", a duration, an RFC 3339 date-time, or a number of seconds (-1 = never)")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ExpireAfter, E> {
        v.parse().map_err(E::custom)
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ExpireAfter, E> {
        match v {
            -1 => Ok(ExpireAfter::Never),
            v if v < 0 => Err(E::invalid_value(serde::de::Unexpected::Signed(v), &self)),
            v => Ok(Duration::from_secs(v.unsigned_abs()).into()),
        }
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ExpireAfter, E> {
        Ok(Duration::from_secs(v).into())
    }
}

/// Clamps to the instants RFC 3339 text (and humantime) can write: from the Unix epoch to
/// 9999-12-31T23:59:59.999999999Z.
fn clamp_to_rfc3339_range(t: SystemTime) -> SystemTime {
    let max = UNIX_EPOCH + Duration::new(253_402_300_799, 999_999_999);
    if t < UNIX_EPOCH {
        UNIX_EPOCH
    } else if t > max {
        max
    } else {
        t
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
    if inputs.cache_control {
        if let Some(lifetime) = inputs.response {
            return ResolvedExpiration {
                kind: ResolvedExpirationKind::Lifetime(lifetime),
                source: ExpirationSource::ResponseHeaders,
            };
        }
    }
    if let Some((value, source)) = resolve_request_side(inputs) {
        let kind = match value {
            ExpireAfter::Never => ResolvedExpirationKind::Never,
            ExpireAfter::Immediately => ResolvedExpirationKind::Lifetime(Duration::ZERO),
            ExpireAfter::DoNotCache => ResolvedExpirationKind::DoNotCache,
            ExpireAfter::After(d) => ResolvedExpirationKind::Lifetime(d),
            ExpireAfter::At(t) => {
                ResolvedExpirationKind::Lifetime(t.duration_since(inputs.response_time).unwrap_or(Duration::ZERO))
            }
        };
        return ResolvedExpiration { kind, source };
    }
    if inputs.cache_control {
        return match inputs.heuristic {
            Some(h) => {
                ResolvedExpiration { kind: ResolvedExpirationKind::Lifetime(h), source: ExpirationSource::Heuristic }
            }
            None => ResolvedExpiration {
                kind: ResolvedExpirationKind::Lifetime(Duration::ZERO),
                source: ExpirationSource::Default,
            },
        };
    }
    ResolvedExpiration { kind: ResolvedExpirationKind::Never, source: ExpirationSource::Default }
}

/// The request-side part of [`resolve`]: the first of `request`, `per_request`, `per_url` and
/// `session` that is set, before any response exists. The cache uses it to skip the read
/// entirely on [`ExpireAfter::DoNotCache`] (requests-cache skips both read and write).
pub fn resolve_request_side(inputs: &ExpirationInputs) -> Option<(ExpireAfter, ExpirationSource)> {
    [
        (inputs.request, ExpirationSource::RequestHeaders),
        (inputs.per_request, ExpirationSource::PerRequest),
        (inputs.per_url, ExpirationSource::PerUrl),
        (inputs.session, ExpirationSource::Session),
    ]
    .into_iter()
    .find_map(|(value, source)| value.map(|v| (v, source)))
}
