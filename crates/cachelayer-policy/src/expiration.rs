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
///
/// In code, from a [`Duration`] or a `u64` number of seconds (zero is
/// [`Immediately`](Self::Immediately)), or a [`SystemTime`] ([`At`](Self::At)); the setters
/// that take an expiration (`CacheSettings::expire_after`, `CacheOptions::expire_after`) take
/// any of these:
///
/// ```
/// use cachelayer_policy::ExpireAfter;
/// use std::time::{Duration, SystemTime};
///
/// assert_eq!(ExpireAfter::from(Duration::from_secs(90)), ExpireAfter::After(Duration::from_secs(90)));
/// assert_eq!(ExpireAfter::from(90u64), ExpireAfter::After(Duration::from_secs(90)));
/// assert_eq!(ExpireAfter::from(Duration::ZERO), ExpireAfter::Immediately);
/// assert_eq!(ExpireAfter::from(0u64), ExpireAfter::Immediately);
/// let noon = SystemTime::UNIX_EPOCH + Duration::from_secs(43_200);
/// assert_eq!(ExpireAfter::from(noon), ExpireAfter::At(noon));
/// ```
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

/// The accepted forms of a duration, for error messages.
const DURATION_FORMS: &str = "a number of seconds (360), or a duration such as \"90s\", \"5m\", \"1h 30m\", \"2days\" (units: ns, us, ms, s, m, h, d, w; \"months\" and \"years\" written out)";

/// The error of parsing a duration: the input and the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseDurationError {
    input: String,
    reason: Option<&'static str>,
}

impl fmt::Display for ParseDurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid duration {:?}", self.input)?;
        if let Some(reason) = self.reason {
            write!(f, " ({reason})")?;
        }
        write!(f, ": expected {DURATION_FORMS}")
    }
}

impl std::error::Error for ParseDurationError {}

/// The one duration grammar of every duration setting (`expire_after`, `stale_if_error`,
/// `coalesce_timeout`, ...): a whole number of seconds (`"360"`), or humantime text (`"90s"`,
/// `"5m"`, `"1h 30m"`, `"2days"`). The single-letter `M` (humantime's months, easily meant as
/// minutes) and `y` are rejected: write `"5m"` for minutes, `"5months"` or `"1year"` for those.
///
/// # Errors
/// [`ParseDurationError`], naming the input and the accepted forms.
///
/// ```
/// use cachelayer_policy::expiration::parse_duration;
/// use std::time::Duration;
///
/// assert_eq!(parse_duration("360"), Ok(Duration::from_secs(360)));
/// assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
/// assert!(parse_duration("5M").is_err());
/// assert!(parse_duration("five minutes").unwrap_err().to_string().contains("\"90s\""));
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, ParseDurationError> {
    let trimmed = text.trim();
    let error = |reason| ParseDurationError {
        input: text.to_owned(),
        reason,
    };
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return trimmed
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| error(Some("too large")));
    }
    let ambiguous = trimmed
        .split(|c: char| c.is_ascii_digit() || c.is_whitespace())
        .any(|unit| unit == "M" || unit == "y");
    if ambiguous {
        return Err(error(Some(
            "\"M\" and \"y\" are ambiguous: write \"m\" for minutes, \"months\" or \"years\"",
        )));
    }
    humantime::parse_duration(trimmed).map_err(|_| error(None))
}

/// Serde for a [`Duration`] in the one duration grammar ([`parse_duration`]), for
/// `#[serde(with = "cachelayer_policy::expiration::serde_duration")]`: reads an integer number
/// of seconds (`360`) or duration text (`"360"`, `"90s"`, `"1h 30m"`); writes humantime text
/// (`"1h 30m"`), which it reads back.
///
/// (`humantime-serde` reads text only, and reads `"5M"` as five months: not this grammar.)
///
/// ```
/// use std::time::Duration;
///
/// #[derive(serde::Deserialize)]
/// struct Config {
///     #[serde(with = "cachelayer_policy::expiration::serde_duration")]
///     timeout: Duration,
/// }
/// let config: Config = serde_json::from_str(r#"{ "timeout": 90 }"#).unwrap();
/// assert_eq!(config.timeout, Duration::from_secs(90));
/// let config: Config = serde_json::from_str(r#"{ "timeout": "1m 30s" }"#).unwrap();
/// assert_eq!(config.timeout, Duration::from_secs(90));
/// assert!(serde_json::from_str::<Config>(r#"{ "timeout": "5M" }"#).is_err());
/// ```
pub mod serde_duration {
    use serde::{Deserializer, Serializer};
    use std::time::Duration;

    /// Writes humantime text (`"1h 30m"`).
    ///
    /// # Errors
    /// The serializer's.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*d))
    }

    /// Reads a whole number of seconds, or duration text
    /// ([`parse_duration`](super::parse_duration)).
    ///
    /// # Errors
    /// A negative number, or text outside the grammar: the message lists the accepted forms.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_any(Visitor)
    }

    struct Visitor;

    impl serde::de::Visitor<'_> for Visitor {
        type Value = Duration;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{}", super::DURATION_FORMS)
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Duration, E> {
            Ok(Duration::from_secs(v))
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Duration, E> {
            u64::try_from(v)
                .map(Duration::from_secs)
                .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Duration, E> {
            super::parse_duration(v).map_err(E::custom)
        }
    }
}

/// The error of parsing an [`ExpireAfter`] from text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseExpireAfterError {
    input: String,
}

impl fmt::Display for ParseExpireAfterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid expiration {:?}: expected \"never\", \"immediately\", \"do-not-cache\", an RFC 3339 date-time, or {DURATION_FORMS}",
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
        let error = || ParseExpireAfterError {
            input: s.to_string(),
        };
        if let Ok(duration) = parse_duration(text) {
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
            ExpireAfter::At(t) => write!(
                f,
                "{}",
                humantime::format_rfc3339(clamp_to_rfc3339_range(*t))
            ),
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

impl From<u64> for ExpireAfter {
    /// A number of seconds (`0`: [`ExpireAfter::Immediately`]).
    fn from(secs: u64) -> Self {
        Duration::from_secs(secs).into()
    }
}

impl From<Duration> for ExpireAfter {
    fn from(d: Duration) -> Self {
        if d.is_zero() {
            ExpireAfter::Immediately
        } else {
            ExpireAfter::After(d)
        }
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
            ExpireAfter::At(t) => ResolvedExpirationKind::Lifetime(
                t.duration_since(inputs.response_time)
                    .unwrap_or(Duration::ZERO),
            ),
        };
        return ResolvedExpiration { kind, source };
    }
    if inputs.cache_control {
        return match inputs.heuristic {
            Some(h) => ResolvedExpiration {
                kind: ResolvedExpirationKind::Lifetime(h),
                source: ExpirationSource::Heuristic,
            },
            None => ResolvedExpiration {
                kind: ResolvedExpirationKind::Lifetime(Duration::ZERO),
                source: ExpirationSource::Default,
            },
        };
    }
    ResolvedExpiration {
        kind: ResolvedExpirationKind::Never,
        source: ExpirationSource::Default,
    }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn after(secs: u64) -> ExpireAfter {
        ExpireAfter::After(Duration::from_secs(secs))
    }

    #[test]
    fn from_str_cases() {
        use ExpireAfter::{DoNotCache, Immediately, Never};
        let cases: &[(&str, Option<ExpireAfter>)] = &[
            ("never", Some(Never)),
            (" NEVER ", Some(Never)),
            ("-1", Some(Never)),
            ("never_expire", Some(Never)),
            ("immediately", Some(Immediately)),
            ("0", Some(Immediately)),
            ("000", Some(Immediately)),
            ("expire_immediately", Some(Immediately)),
            ("do-not-cache", Some(DoNotCache)),
            ("DO_NOT_CACHE", Some(DoNotCache)),
            ("skip", Some(DoNotCache)),
            ("360", Some(after(360))),
            ("18446744073709551615", Some(after(u64::MAX))),
            ("5m", Some(after(300))),
            ("1h 30m", Some(after(5400))),
            ("30days", Some(after(30 * 86_400))),
            ("90s", Some(after(90))),
            ("0s", Some(Immediately)),
            (
                "1500ms",
                Some(ExpireAfter::After(Duration::from_millis(1500))),
            ),
            (
                "2030-01-01T00:00:00Z",
                Some(ExpireAfter::At(at(1_893_456_000))),
            ),
            (
                "2030-01-01 00:00:00",
                Some(ExpireAfter::At(at(1_893_456_000))),
            ),
            ("", None),
            ("   ", None),
            ("-5", None),
            ("-0", None),
            ("soon", None),
            ("5 parsecs", None),
            ("18446744073709551616", None),
            ("1969-12-31T23:59:59Z", None),
            ("2030-13-01T00:00:00Z", None),
            ("1.5", None),
        ];
        for (input, expected) in cases {
            assert_eq!(input.parse::<ExpireAfter>().ok(), *expected, "{input:?}");
        }
        let error = "soon".parse::<ExpireAfter>().unwrap_err();
        assert!(error.to_string().contains("\"soon\""));
    }

    #[test]
    fn display_round_trips() {
        let values = [
            ExpireAfter::Never,
            ExpireAfter::Immediately,
            ExpireAfter::DoNotCache,
            after(1),
            after(5400),
            after(30 * 86_400),
            ExpireAfter::After(Duration::from_millis(1500)),
            ExpireAfter::At(at(1_893_456_000)),
            ExpireAfter::At(at(1_893_456_000) + Duration::from_nanos(123_456_789)),
        ];
        for value in values {
            let text = value.to_string();
            assert_eq!(text.parse::<ExpireAfter>(), Ok(value), "{text}");
        }
        let cases = [
            (ExpireAfter::Never, "never"),
            (ExpireAfter::Immediately, "immediately"),
            (ExpireAfter::DoNotCache, "do-not-cache"),
            (after(5400), "1h 30m"),
            (ExpireAfter::At(at(1_893_456_000)), "2030-01-01T00:00:00Z"),
        ];
        for (value, text) in cases {
            assert_eq!(value.to_string(), text);
        }
    }

    #[test]
    fn display_never_panics_out_of_range() {
        let before_epoch = UNIX_EPOCH - Duration::from_secs(10);
        assert_eq!(
            ExpireAfter::At(before_epoch).to_string(),
            "1970-01-01T00:00:00Z"
        );
        let far = UNIX_EPOCH + Duration::from_secs(300_000_000_000);
        let text = ExpireAfter::At(far).to_string();
        assert!(text.starts_with("9999-12-31T23:59:59"), "{text}");
        assert!(text.parse::<ExpireAfter>().is_ok());
        assert_eq!(
            ExpireAfter::After(Duration::ZERO)
                .to_string()
                .parse::<ExpireAfter>(),
            Ok(ExpireAfter::Immediately)
        );
    }

    #[test]
    fn serde_cases() {
        let cases: &[(&str, Option<ExpireAfter>)] = &[
            ("\"never\"", Some(ExpireAfter::Never)),
            ("\"1h\"", Some(after(3600))),
            (
                "\"2030-01-01T00:00:00Z\"",
                Some(ExpireAfter::At(at(1_893_456_000))),
            ),
            ("-1", Some(ExpireAfter::Never)),
            ("0", Some(ExpireAfter::Immediately)),
            ("60", Some(after(60))),
            ("-2", None),
            ("1.5", None),
            ("null", None),
            ("true", None),
            ("\"bogus\"", None),
        ];
        for (json, expected) in cases {
            assert_eq!(
                serde_json::from_str::<ExpireAfter>(json).ok(),
                *expected,
                "{json}"
            );
        }
        for value in [
            ExpireAfter::Never,
            ExpireAfter::DoNotCache,
            after(90),
            ExpireAfter::At(at(1_893_456_000)),
        ] {
            let json = serde_json::to_string(&value).unwrap();
            assert_eq!(
                serde_json::from_str::<ExpireAfter>(&json).unwrap(),
                value,
                "{json}"
            );
        }
    }

    #[test]
    fn from_conversions() {
        assert_eq!(ExpireAfter::from(Duration::ZERO), ExpireAfter::Immediately);
        assert_eq!(ExpireAfter::from(Duration::from_secs(3)), after(3));
        assert_eq!(ExpireAfter::from(at(5)), ExpireAfter::At(at(5)));
    }

    struct Case {
        name: &'static str,
        inputs: ExpirationInputs,
        expected: (ResolvedExpirationKind, ExpirationSource),
    }

    #[test]
    fn resolve_precedence() {
        use ExpirationSource as S;
        use ResolvedExpirationKind as K;
        let now = at(1_000_000);
        let base = ExpirationInputs::new(now);
        let d = Duration::from_secs;
        let everything = ExpirationInputs {
            response: Some(d(1)),
            request: Some(after(2)),
            per_request: Some(after(3)),
            per_url: Some(after(4)),
            session: Some(after(5)),
            heuristic: Some(d(6)),
            ..base
        };
        let cases = [
            Case {
                name: "1. response headers first",
                inputs: everything,
                expected: (K::Lifetime(d(1)), S::ResponseHeaders),
            },
            Case {
                name: "response zero still wins",
                inputs: ExpirationInputs {
                    response: Some(Duration::ZERO),
                    ..everything
                },
                expected: (K::Lifetime(Duration::ZERO), S::ResponseHeaders),
            },
            Case {
                name: "cache_control off ignores response headers",
                inputs: ExpirationInputs {
                    cache_control: false,
                    ..everything
                },
                expected: (K::Lifetime(d(2)), S::RequestHeaders),
            },
            Case {
                name: "2. request headers",
                inputs: ExpirationInputs {
                    response: None,
                    ..everything
                },
                expected: (K::Lifetime(d(2)), S::RequestHeaders),
            },
            Case {
                name: "3. per request",
                inputs: ExpirationInputs {
                    response: None,
                    request: None,
                    ..everything
                },
                expected: (K::Lifetime(d(3)), S::PerRequest),
            },
            Case {
                name: "4. per URL",
                inputs: ExpirationInputs {
                    response: None,
                    request: None,
                    per_request: None,
                    ..everything
                },
                expected: (K::Lifetime(d(4)), S::PerUrl),
            },
            Case {
                name: "5. session",
                inputs: ExpirationInputs {
                    response: None,
                    request: None,
                    per_request: None,
                    per_url: None,
                    ..everything
                },
                expected: (K::Lifetime(d(5)), S::Session),
            },
            Case {
                name: "heuristic when nothing else",
                inputs: ExpirationInputs {
                    heuristic: Some(d(6)),
                    ..base
                },
                expected: (K::Lifetime(d(6)), S::Heuristic),
            },
            Case {
                name: "default with cache_control: stale at once",
                inputs: base,
                expected: (K::Lifetime(Duration::ZERO), S::Default),
            },
            Case {
                name: "default without cache_control: never",
                inputs: ExpirationInputs {
                    cache_control: false,
                    heuristic: Some(d(6)),
                    ..base
                },
                expected: (K::Never, S::Default),
            },
            Case {
                name: "Never",
                inputs: ExpirationInputs {
                    session: Some(ExpireAfter::Never),
                    ..base
                },
                expected: (K::Never, S::Session),
            },
            Case {
                name: "Immediately",
                inputs: ExpirationInputs {
                    per_url: Some(ExpireAfter::Immediately),
                    ..base
                },
                expected: (K::Lifetime(Duration::ZERO), S::PerUrl),
            },
            Case {
                name: "DoNotCache",
                inputs: ExpirationInputs {
                    per_request: Some(ExpireAfter::DoNotCache),
                    session: Some(after(5)),
                    ..base
                },
                expected: (K::DoNotCache, S::PerRequest),
            },
            Case {
                name: "At in the future",
                inputs: ExpirationInputs {
                    session: Some(ExpireAfter::At(at(1_000_060))),
                    ..base
                },
                expected: (K::Lifetime(d(60)), S::Session),
            },
            Case {
                name: "At in the past",
                inputs: ExpirationInputs {
                    session: Some(ExpireAfter::At(at(10))),
                    ..base
                },
                expected: (K::Lifetime(Duration::ZERO), S::Session),
            },
            Case {
                name: "a higher level beats a lower one even when DoNotCache is lower",
                inputs: ExpirationInputs {
                    per_url: Some(after(4)),
                    session: Some(ExpireAfter::DoNotCache),
                    ..base
                },
                expected: (K::Lifetime(d(4)), S::PerUrl),
            },
        ];
        for case in cases {
            let resolved = resolve(&case.inputs);
            assert_eq!(
                (resolved.kind, resolved.source),
                case.expected,
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn resolve_request_side_cases() {
        let base = ExpirationInputs::new(at(0));
        assert_eq!(resolve_request_side(&base), None);
        assert_eq!(
            resolve_request_side(&ExpirationInputs {
                response: Some(Duration::ZERO),
                ..base
            }),
            None,
            "response headers are not request-side"
        );
        assert_eq!(
            resolve_request_side(&ExpirationInputs {
                per_url: Some(ExpireAfter::DoNotCache),
                session: Some(after(1)),
                ..base
            }),
            Some((ExpireAfter::DoNotCache, ExpirationSource::PerUrl))
        );
        assert_eq!(
            resolve_request_side(&ExpirationInputs {
                request: Some(after(9)),
                per_request: Some(after(1)),
                ..base
            }),
            Some((after(9), ExpirationSource::RequestHeaders))
        );
    }
}
