//! Freshness lifetime, heuristic freshness and age (RFC 9111 §4.2).
//!
//! ```
//! use cachelayer_policy::freshness;
//! use http::HeaderMap;
//! use std::time::{Duration, UNIX_EPOCH};
//!
//! let request_time = UNIX_EPOCH + Duration::from_secs(1_000_000);
//! let response_time = request_time + Duration::from_secs(2);
//! let mut headers = HeaderMap::new();
//! headers.insert("age", "10".parse().unwrap());
//! // No Date: the age is the Age header plus the time the response spent in flight.
//! let age = freshness::corrected_initial_age(&headers, request_time, response_time);
//! assert_eq!(age, Duration::from_secs(12));
//! assert_eq!(
//!     freshness::current_age(age, response_time, response_time + Duration::from_secs(5)),
//!     Duration::from_secs(17),
//! );
//! ```

use crate::CacheKind;
use crate::directives::{RequestDirectives, ResponseDirectives};
use http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime};

/// Heuristic freshness for responses without explicit freshness (RFC 9111 §4.2.2).
///
/// A response that has a `Last-Modified` and whose status is heuristically cacheable (or that is
/// marked `public`) is fresh for `fraction` of the time since it was last modified (measured from
/// its `Date`, or from when it was received), at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HeuristicFreshness {
    /// Whether heuristic freshness is used at all. Default: `true`.
    pub enabled: bool,
    /// The fraction of the time since `Last-Modified`. Default: `0.1` (10%, as RFC 9111 §4.2.2
    /// suggests). Values outside 0.0..=1.0 are clamped.
    pub fraction: f64,
    /// The longest heuristic lifetime. Default: 24 hours.
    #[serde(with = "humantime_duration")]
    pub max: Duration,
}

impl Default for HeuristicFreshness {
    fn default() -> Self {
        HeuristicFreshness { enabled: true, fraction: 0.1, max: Duration::from_secs(24 * 60 * 60) }
    }
}

impl HeuristicFreshness {
    /// Heuristic freshness turned off: responses without explicit freshness are stale at once.
    pub fn disabled() -> Self {
        HeuristicFreshness { enabled: false, ..Default::default() }
    }
}

/// Whether a status code is heuristically cacheable (RFC 9110 §15.1): 200, 203, 204, 206, 300,
/// 301, 308, 404, 405, 410, 414 and 501.
pub fn is_heuristically_cacheable(status: StatusCode) -> bool {
    let _ = status;
    todo!()
}

/// The freshness lifetime that the response's own headers give (RFC 9111 §4.2.1), in order:
/// `s-maxage` (shared caches only), `max-age`, then `Expires` minus `Date`, where a missing or
/// invalid `Date` is replaced by `response_time` (RFC 9110 §6.6.1). `None` when the headers give
/// no explicit lifetime.
///
/// An `Expires` that is not a valid HTTP-date (`Expires: 0`) means "already expired"
/// (`Some(ZERO)`, §5.3); several `Expires` lines with different values are handled the same way.
/// A lifetime is never negative: an `Expires` before `Date` gives zero.
pub fn explicit_lifetime(
    directives: &ResponseDirectives,
    headers: &HeaderMap,
    kind: CacheKind,
    response_time: SystemTime,
) -> Option<Duration> {
    let _ = (directives, headers, kind, response_time);
    todo!()
}

/// The heuristic freshness lifetime of a response (RFC 9111 §4.2.2), or `None` when heuristic
/// freshness does not apply: it is disabled, the response has explicit freshness, no valid
/// `Last-Modified`, or a status that is not heuristically cacheable (unless `public`).
///
/// `response_time` stands in for a missing or invalid `Date`.
pub fn heuristic_lifetime(
    status: StatusCode,
    directives: &ResponseDirectives,
    headers: &HeaderMap,
    response_time: SystemTime,
    heuristic: &HeuristicFreshness,
) -> Option<Duration> {
    let _ = (status, directives, headers, response_time, heuristic);
    todo!()
}

/// The corrected initial age of a response (RFC 9111 §4.2.3): the larger of its apparent age
/// (`response_time - Date`, never negative) and its `Age` header plus the response delay
/// (`response_time - request_time`). A missing or invalid `Date` or `Age` counts as zero; an
/// `Age` larger than 2^31 seconds reads as 2^31.
pub fn corrected_initial_age(
    headers: &HeaderMap,
    request_time: SystemTime,
    response_time: SystemTime,
) -> Duration {
    let _ = (headers, request_time, response_time);
    todo!()
}

/// The current age of a stored response (RFC 9111 §4.2.3): the corrected initial age plus the
/// time it has been stored (`now - response_time`, zero if the clock went backwards).
pub fn current_age(corrected_initial_age: Duration, response_time: SystemTime, now: SystemTime) -> Duration {
    let _ = (corrected_initial_age, response_time, now);
    todo!()
}

/// How a stored response may be used for a request, as RFC 9111 §4 and §4.2.4 decide it from the
/// stored response's freshness and the request's directives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usability {
    /// Fresh, and acceptable to the request: serve it.
    Fresh,
    /// Stale (or unacceptable to the request) but it may be revalidated.
    Stale,
    /// Stale but the request's `max-stale` accepts it, and nothing forbids serving it stale
    /// (§4.2.4: not `must-revalidate`, not `no-cache`).
    StaleAcceptable,
}

/// What [`usability`] needs to know about a stored response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredFreshness {
    /// The freshness lifetime; `None` means it never expires.
    pub lifetime: Option<Duration>,
    /// The current age (see [`current_age`]).
    pub age: Duration,
    /// The response must not be served stale (`must-revalidate`, `no-cache`, or in a shared
    /// cache `proxy-revalidate` / `s-maxage`), RFC 9111 §4.2.4, §5.2.2.
    pub must_revalidate: bool,
}

/// Whether a stored response can serve a request (RFC 9111 §4.2, §4.2.4, §5.2.1): the request's
/// `max-age` (the age must not exceed it), `min-fresh` (the response must stay fresh that much
/// longer), `max-stale` (a stale response within the bound is acceptable unless it must be
/// revalidated) and `no-cache` (never [`Usability::Fresh`]).
pub fn usability(stored: &StoredFreshness, request: &RequestDirectives) -> Usability {
    let _ = (stored, request);
    todo!()
}

pub(crate) mod humantime_duration {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*d))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}
