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
use crate::directives::{MaxStale, RequestDirectives, ResponseDirectives, parse_delta_seconds};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};
use std::cell::Cell;
use std::time::{Duration, SystemTime};

/// Heuristic freshness for responses without explicit freshness (RFC 9111 §4.2.2).
///
/// A response that has a `Last-Modified` and whose status is heuristically cacheable (or that is
/// marked `public`) is fresh for `fraction` of the time since it was last modified (measured from
/// its `Date`, or from when it was received), at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HeuristicFreshness {
    /// Whether heuristic freshness is used at all. Default: `true`.
    pub enabled: bool,
    /// The fraction of the time since `Last-Modified`. Default: `0.1` (10%, as RFC 9111 §4.2.2
    /// suggests). Values outside 0.0..=1.0 are clamped.
    pub fraction: f64,
    /// The longest heuristic lifetime. Default: 24 hours.
    #[serde(with = "crate::expiration::serde_duration")]
    pub max: Duration,
}

impl Default for HeuristicFreshness {
    fn default() -> Self {
        HeuristicFreshness {
            enabled: true,
            fraction: 0.1,
            max: Duration::from_secs(24 * 60 * 60),
        }
    }
}

impl HeuristicFreshness {
    /// Heuristic freshness turned off: responses without explicit freshness are stale at once.
    pub fn disabled() -> Self {
        HeuristicFreshness {
            enabled: false,
            ..Default::default()
        }
    }
}

/// Whether a status code is heuristically cacheable (RFC 9110 §15.1): 200, 203, 204, 206, 300,
/// 301, 308, 404, 405, 410, 414 and 501.
pub fn is_heuristically_cacheable(status: StatusCode) -> bool {
    matches!(
        status.as_u16(),
        200 | 203 | 204 | 206 | 300 | 301 | 308 | 404 | 405 | 410 | 414 | 501
    )
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
    if kind.is_shared() {
        if let Some(s_maxage) = directives.s_maxage {
            return Some(s_maxage);
        }
    }
    if let Some(max_age) = directives.max_age {
        return Some(max_age);
    }
    let mut expires: Option<SystemTime> = None;
    for value in headers.get_all(http::header::EXPIRES) {
        // An invalid Expires means "already expired" (§5.3), and so do conflicting ones.
        let Some(parsed) = http_date(value) else {
            return Some(Duration::ZERO);
        };
        match expires {
            Some(earlier) if earlier != parsed => return Some(Duration::ZERO),
            _ => expires = Some(parsed),
        }
    }
    let expires = expires?;
    let date = date_header(headers).unwrap_or(response_time);
    Some(expires.duration_since(date).unwrap_or(Duration::ZERO))
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
    if !heuristic.enabled
        || directives.max_age.is_some()
        || directives.s_maxage.is_some()
        || headers.contains_key(http::header::EXPIRES)
        || !(is_heuristically_cacheable(status) || directives.public)
    {
        return None;
    }
    let last_modified = crate::validators::last_modified(headers)?;
    let base = date_header(headers).unwrap_or(response_time);
    let since = base.duration_since(last_modified).unwrap_or(Duration::ZERO);
    let fraction = if heuristic.fraction.is_nan() {
        0.0
    } else {
        heuristic.fraction.clamp(0.0, 1.0)
    };
    let lifetime =
        Duration::try_from_secs_f64(since.as_secs_f64() * fraction).unwrap_or(Duration::ZERO);
    // Whole seconds, like every other lifetime.
    Some(Duration::from_secs(lifetime.as_secs()).min(heuristic.max))
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
    // One pass over the (few) field names tells which of `Date` and `Age` to look up: cheaper
    // than hashing both names, and many responses lack one of them.
    let (mut has_date, mut has_age) = (false, false);
    for name in headers.keys() {
        has_date |= name == http::header::DATE;
        has_age |= name == http::header::AGE;
    }
    let apparent_age = has_date
        .then(|| date_header(headers))
        .flatten()
        .and_then(|date| response_time.duration_since(date).ok())
        .unwrap_or(Duration::ZERO);
    let response_delay = response_time
        .duration_since(request_time)
        .unwrap_or(Duration::ZERO);
    let age = if has_age {
        age_header(headers)
    } else {
        Duration::ZERO
    };
    apparent_age.max(age.saturating_add(response_delay))
}

/// The current age of a stored response (RFC 9111 §4.2.3): the corrected initial age plus the
/// time it has been stored (`now - response_time`, zero if the clock went backwards).
pub fn current_age(
    corrected_initial_age: Duration,
    response_time: SystemTime,
    now: SystemTime,
) -> Duration {
    let resident_time = now.duration_since(response_time).unwrap_or(Duration::ZERO);
    corrected_initial_age.saturating_add(resident_time)
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
    let age = stored.age;
    // `None`: the response never becomes stale.
    let remaining = stored.lifetime.map(|lifetime| lifetime.saturating_sub(age));
    let stale = stored.lifetime.is_some_and(|lifetime| age >= lifetime);
    // `max-age=0` always asks for revalidation (as browsers and requests-cache read it), even
    // of a response received this very second.
    let max_age_ok = request
        .max_age
        .is_none_or(|max_age| !max_age.is_zero() && age <= max_age);
    let min_fresh_ok = match (request.min_fresh, remaining) {
        (Some(min_fresh), Some(remaining)) => remaining >= min_fresh,
        _ => true,
    };
    if !stale && max_age_ok && min_fresh_ok && !request.no_cache {
        return Usability::Fresh;
    }
    // Only staleness itself can be excused by max-stale: a failed request max-age, min-fresh on
    // a still-fresh response, or no-cache always sends the request to the origin.
    if stale && max_age_ok && !request.no_cache && !stored.must_revalidate {
        let staleness = stored
            .lifetime
            .map_or(Duration::ZERO, |lifetime| age.saturating_sub(lifetime));
        let accepted = match request.max_stale {
            Some(MaxStale::Any) => true,
            Some(MaxStale::AtMost(bound)) => staleness <= bound,
            None => false,
        };
        if accepted {
            return Usability::StaleAcceptable;
        }
    }
    Usability::Stale
}

/// An HTTP-date header value, read by [`parse_http_date_leniently`].
pub(crate) fn http_date(value: &HeaderValue) -> Option<SystemTime> {
    parse_http_date_leniently(value.to_str().ok()?)
}

/// An HTTP-date (RFC 9110 §5.6.7) in any of its three formats (IMF-fixdate, RFC 850, asctime),
/// read as a recipient must: surrounding whitespace allowed, day and month names in any case,
/// and a weekday that does not match the date ignored (the date decides). `None` for anything
/// else (an `Expires` that is `None` here means "already expired", RFC 9111 §5.3).
///
/// ```
/// use cachelayer_policy::freshness::parse_http_date_leniently;
///
/// let strict = parse_http_date_leniently("Sun, 06 Nov 1994 08:49:37 GMT");
/// assert!(strict.is_some());
/// assert_eq!(parse_http_date_leniently("mon, 06 NOV 1994 08:49:37 gmt"), strict);
/// assert_eq!(parse_http_date_leniently("0"), None);
/// ```
pub fn parse_http_date_leniently(text: &str) -> Option<SystemTime> {
    const SHORT: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const LONG: [&str; 7] = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    let text = text.trim();
    if let Ok(time) = httpdate::parse_http_date(text) {
        return Some(time);
    }
    if text.len() > 64 || !text.is_ascii() {
        return None;
    }
    // Names in their canonical case: `Sun`, `Nov`, `GMT`.
    let mut canonical = String::with_capacity(text.len());
    let mut run_start = true;
    for c in text.chars() {
        if c.is_ascii_alphabetic() {
            canonical.push(if run_start {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            });
            run_start = false;
        } else {
            canonical.push(c);
            run_start = true;
        }
    }
    let canonical = canonical.replace("Gmt", "GMT");
    if let Ok(time) = httpdate::parse_http_date(&canonical) {
        return Some(time);
    }
    // The weekday is redundant: let the date decide it.
    let weekday_end = canonical.find(|c: char| !c.is_ascii_alphabetic())?;
    let (weekday, rest) = canonical.split_at(weekday_end);
    let names: &[&str] = if weekday.len() == 3 { &SHORT } else { &LONG };
    names
        .iter()
        .find_map(|name| httpdate::parse_http_date(&format!("{name}{rest}")).ok())
}

/// The response's `Date`: the first line, if it is a valid HTTP-date; `None` when missing,
/// invalid, or when several lines disagree.
pub(crate) fn date_header(headers: &HeaderMap) -> Option<SystemTime> {
    let mut values = headers.get_all(http::header::DATE).iter();
    let first = date_value(values.next()?)?;
    if values.any(|other| date_value(other) != Some(first)) {
        return None;
    }
    Some(first)
}

/// The longest `Date` value [`date_value`] remembers (an IMF-fixdate has 29 bytes).
const REMEMBERED_DATE: usize = 32;

/// [`http_date`] of a `Date` value, remembering the last one parsed on this thread: an origin
/// gives the same `Date` to all its responses within a second, and parsing one costs more
/// than comparing its bytes.
fn date_value(value: &HeaderValue) -> Option<SystemTime> {
    type Last = ([u8; REMEMBERED_DATE], usize, Option<SystemTime>);
    thread_local! {
        static LAST: Cell<Last> = const { Cell::new(([0; REMEMBERED_DATE], usize::MAX, None)) };
    }
    let bytes = value.as_bytes();
    if bytes.len() > REMEMBERED_DATE {
        return http_date(value);
    }
    if let Ok((text, len, parsed)) = LAST.try_with(Cell::get) {
        if text.get(..len) == Some(bytes) {
            return parsed;
        }
    }
    let parsed = http_date(value);
    let mut text = [0; REMEMBERED_DATE];
    if let Some(start) = text.get_mut(..bytes.len()) {
        start.copy_from_slice(bytes);
        let _ = LAST.try_with(|last| last.set((text, bytes.len(), parsed)));
    }
    parsed
}

/// The `Age` header (RFC 9111 §5.1): the first valid non-negative integer among its lines (and
/// comma-separated members), at most 2^31 seconds; zero when there is none.
fn age_header(headers: &HeaderMap) -> Duration {
    for value in headers.get_all(http::header::AGE) {
        let Ok(text) = value.to_str() else {
            continue;
        };
        // A member is valid when it is one or more digits once trimmed: a delta-seconds.
        if let Some(age) = text
            .split(',')
            .find_map(|member| parse_delta_seconds(Some(member)))
        {
            return age;
        }
    }
    Duration::ZERO
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::directives::MAX_DELTA_SECONDS;
    use http::HeaderName;
    use std::time::UNIX_EPOCH;

    /// Sun, 06 Nov 1994 08:49:37 GMT
    const T0: u64 = 784_111_777;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn date(secs: u64) -> String {
        httpdate::fmt_http_date(at(secs))
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    const fn secs(n: u64) -> Option<Duration> {
        Some(Duration::from_secs(n))
    }

    #[test]
    fn heuristically_cacheable_statuses() {
        // RFC 9110 §15.1
        for code in [200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501] {
            assert!(
                is_heuristically_cacheable(StatusCode::from_u16(code).unwrap()),
                "{code}"
            );
        }
        for code in [
            100, 201, 202, 205, 302, 303, 304, 307, 400, 401, 403, 500, 502, 503, 599,
        ] {
            assert!(
                !is_heuristically_cacheable(StatusCode::from_u16(code).unwrap()),
                "{code}"
            );
        }
    }

    struct LifetimeCase {
        name: &'static str,
        headers: Vec<(&'static str, String)>,
        kind: CacheKind,
        expected: Option<Duration>,
    }

    #[test]
    fn explicit_lifetime_cases() {
        use CacheKind::{Private, Shared};
        let response_time = at(T0 + 5);
        let cc = |v: &str| ("cache-control", v.to_string());
        let cases = vec![
            LifetimeCase {
                name: "nothing",
                headers: vec![],
                kind: Private,
                expected: None,
            },
            LifetimeCase {
                name: "§4.2.1 max-age",
                headers: vec![cc("max-age=60")],
                kind: Private,
                expected: secs(60),
            },
            LifetimeCase {
                name: "§4.2.1 s-maxage ignored by private",
                headers: vec![cc("s-maxage=600")],
                kind: Private,
                expected: None,
            },
            LifetimeCase {
                name: "§4.2.1 s-maxage first in shared",
                headers: vec![cc("max-age=60, s-maxage=600")],
                kind: Shared,
                expected: secs(600),
            },
            LifetimeCase {
                name: "§4.2.1 max-age in private despite s-maxage",
                headers: vec![cc("max-age=60, s-maxage=600")],
                kind: Private,
                expected: secs(60),
            },
            LifetimeCase {
                name: "§4.2.1 max-age beats Expires",
                headers: vec![
                    cc("max-age=60"),
                    ("expires", date(T0 + 1000)),
                    ("date", date(T0)),
                ],
                kind: Private,
                expected: secs(60),
            },
            LifetimeCase {
                name: "§4.2.1 Expires minus Date",
                headers: vec![("expires", date(T0 + 100)), ("date", date(T0))],
                kind: Private,
                expected: secs(100),
            },
            LifetimeCase {
                name: "§4.2.1 missing Date: response_time stands in",
                headers: vec![("expires", date(T0 + 100))],
                kind: Private,
                expected: secs(95),
            },
            LifetimeCase {
                name: "invalid Date: response_time stands in",
                headers: vec![("expires", date(T0 + 100)), ("date", "yesterday".into())],
                kind: Private,
                expected: secs(95),
            },
            LifetimeCase {
                name: "§5.3 Expires before Date is zero",
                headers: vec![("expires", date(T0 - 100)), ("date", date(T0))],
                kind: Private,
                expected: secs(0),
            },
            LifetimeCase {
                name: "§5.3 Expires: 0 is already expired",
                headers: vec![("expires", "0".into())],
                kind: Private,
                expected: secs(0),
            },
            LifetimeCase {
                name: "§5.3 Expires: -1 is already expired",
                headers: vec![("expires", "-1".into())],
                kind: Private,
                expected: secs(0),
            },
            LifetimeCase {
                name: "§5.3 garbage Expires",
                headers: vec![("expires", "tomorrow".into())],
                kind: Private,
                expected: secs(0),
            },
            LifetimeCase {
                name: "§5.3 empty Expires",
                headers: vec![("expires", "".into())],
                kind: Private,
                expected: secs(0),
            },
            LifetimeCase {
                name: "§5.3 conflicting Expires lines",
                headers: vec![
                    ("expires", date(T0 + 100)),
                    ("expires", date(T0 + 200)),
                    ("date", date(T0)),
                ],
                kind: Private,
                expected: secs(0),
            },
            LifetimeCase {
                name: "identical Expires lines",
                headers: vec![
                    ("expires", date(T0 + 100)),
                    ("expires", date(T0 + 100)),
                    ("date", date(T0)),
                ],
                kind: Private,
                expected: secs(100),
            },
            LifetimeCase {
                name: "RFC 9110 §5.6.7 obsolete date formats accepted",
                headers: vec![
                    ("expires", "Sunday, 06-Nov-94 08:51:17 GMT".into()),
                    ("date", "Sun Nov  6 08:49:37 1994".into()),
                ],
                kind: Private,
                expected: secs(100),
            },
            LifetimeCase {
                name: "§4.2.1 invalid max-age is zero",
                headers: vec![cc("max-age=x")],
                kind: Private,
                expected: secs(0),
            },
        ];
        for case in cases {
            let map = headers(
                &case
                    .headers
                    .iter()
                    .map(|(n, v)| (*n, v.as_str()))
                    .collect::<Vec<_>>(),
            );
            let directives = ResponseDirectives::from_headers(&map);
            assert_eq!(
                explicit_lifetime(&directives, &map, case.kind, response_time),
                case.expected,
                "{}",
                case.name
            );
        }
    }

    struct HeuristicCase {
        name: &'static str,
        status: u16,
        headers: Vec<(&'static str, String)>,
        heuristic: HeuristicFreshness,
        expected: Option<Duration>,
    }

    #[test]
    fn heuristic_lifetime_cases() {
        let response_time = at(T0 + 50);
        let default = HeuristicFreshness::default;
        let lm = |ago: u64| ("last-modified", date(T0 - ago));
        let date_t0 = || ("date", date(T0));
        let cases = vec![
            HeuristicCase {
                name: "§4.2.2 10% of age since Last-Modified",
                status: 200,
                headers: vec![lm(1000), date_t0()],
                heuristic: default(),
                expected: secs(100),
            },
            HeuristicCase {
                name: "§4.2.2 measured from response_time without Date",
                status: 200,
                headers: vec![lm(1000)],
                heuristic: default(),
                expected: secs(105),
            },
            HeuristicCase {
                name: "§4.2.2 capped by max",
                status: 200,
                headers: vec![lm(100 * 86_400), date_t0()],
                heuristic: default(),
                expected: secs(86_400),
            },
            HeuristicCase {
                name: "disabled",
                status: 200,
                headers: vec![lm(1000), date_t0()],
                heuristic: HeuristicFreshness::disabled(),
                expected: None,
            },
            HeuristicCase {
                name: "no Last-Modified",
                status: 200,
                headers: vec![date_t0()],
                heuristic: default(),
                expected: None,
            },
            HeuristicCase {
                name: "invalid Last-Modified",
                status: 200,
                headers: vec![("last-modified", "last week".into())],
                heuristic: default(),
                expected: None,
            },
            HeuristicCase {
                name: "RFC 9110 §15.1 status not heuristically cacheable",
                status: 302,
                headers: vec![lm(1000), date_t0()],
                heuristic: default(),
                expected: None,
            },
            HeuristicCase {
                name: "§4.2.2 public makes any status eligible",
                status: 302,
                headers: vec![lm(1000), date_t0(), ("cache-control", "public".into())],
                heuristic: default(),
                expected: secs(100),
            },
            HeuristicCase {
                name: "§4.2.2 explicit max-age: no heuristic",
                status: 200,
                headers: vec![lm(1000), date_t0(), ("cache-control", "max-age=5".into())],
                heuristic: default(),
                expected: None,
            },
            HeuristicCase {
                name: "§4.2.2 s-maxage counts as explicit",
                status: 200,
                headers: vec![lm(1000), date_t0(), ("cache-control", "s-maxage=5".into())],
                heuristic: default(),
                expected: None,
            },
            HeuristicCase {
                name: "§4.2.2 Expires (even invalid) is explicit",
                status: 200,
                headers: vec![lm(1000), ("expires", "0".into())],
                heuristic: default(),
                expected: None,
            },
            HeuristicCase {
                name: "Last-Modified in the future gives zero",
                status: 200,
                headers: vec![("last-modified", date(T0 + 1000)), date_t0()],
                heuristic: default(),
                expected: secs(0),
            },
            HeuristicCase {
                name: "fraction above 1 clamped",
                status: 200,
                headers: vec![lm(1000), date_t0()],
                heuristic: HeuristicFreshness {
                    fraction: 7.0,
                    ..default()
                },
                expected: secs(1000),
            },
            HeuristicCase {
                name: "negative fraction clamped",
                status: 200,
                headers: vec![lm(1000), date_t0()],
                heuristic: HeuristicFreshness {
                    fraction: -1.0,
                    ..default()
                },
                expected: secs(0),
            },
            HeuristicCase {
                name: "NaN fraction is zero",
                status: 200,
                headers: vec![lm(1000), date_t0()],
                heuristic: HeuristicFreshness {
                    fraction: f64::NAN,
                    ..default()
                },
                expected: secs(0),
            },
            HeuristicCase {
                name: "whole seconds",
                status: 200,
                headers: vec![lm(15), date_t0()],
                heuristic: default(),
                expected: secs(1),
            },
        ];
        for case in cases {
            let map = headers(
                &case
                    .headers
                    .iter()
                    .map(|(n, v)| (*n, v.as_str()))
                    .collect::<Vec<_>>(),
            );
            let directives = ResponseDirectives::from_headers(&map);
            let status = StatusCode::from_u16(case.status).unwrap();
            assert_eq!(
                heuristic_lifetime(status, &directives, &map, response_time, &case.heuristic),
                case.expected,
                "{}",
                case.name
            );
        }
    }

    struct AgeCase {
        name: &'static str,
        headers: Vec<(&'static str, String)>,
        request_time: u64,
        response_time: u64,
        expected: u64,
    }

    #[test]
    fn corrected_initial_age_cases() {
        let cases = vec![
            AgeCase {
                name: "nothing, instant response",
                headers: vec![],
                request_time: T0,
                response_time: T0,
                expected: 0,
            },
            AgeCase {
                name: "§4.2.3 response delay alone",
                headers: vec![],
                request_time: T0,
                response_time: T0 + 3,
                expected: 3,
            },
            AgeCase {
                name: "§4.2.3 Age plus delay",
                headers: vec![("age", "10".into())],
                request_time: T0,
                response_time: T0 + 2,
                expected: 12,
            },
            AgeCase {
                name: "§4.2.3 apparent age wins",
                headers: vec![("date", date(T0 - 100)), ("age", "10".into())],
                request_time: T0,
                response_time: T0 + 2,
                expected: 102,
            },
            AgeCase {
                name: "§4.2.3 corrected age wins",
                headers: vec![("date", date(T0 - 5)), ("age", "60".into())],
                request_time: T0,
                response_time: T0 + 1,
                expected: 61,
            },
            AgeCase {
                name: "§4.2.3 Date in the future: apparent age zero",
                headers: vec![("date", date(T0 + 100))],
                request_time: T0,
                response_time: T0,
                expected: 0,
            },
            AgeCase {
                name: "§5.1 invalid Age is zero",
                headers: vec![("age", "ten".into())],
                request_time: T0,
                response_time: T0,
                expected: 0,
            },
            AgeCase {
                name: "§5.1 negative Age is zero",
                headers: vec![("age", "-10".into())],
                request_time: T0,
                response_time: T0,
                expected: 0,
            },
            AgeCase {
                name: "§5.1 fractional Age is zero",
                headers: vec![("age", "1.5".into())],
                request_time: T0,
                response_time: T0,
                expected: 0,
            },
            AgeCase {
                name: "§1.2.2 huge Age clamped to 2^31",
                headers: vec![("age", "999999999999999999999999".into())],
                request_time: T0,
                response_time: T0,
                expected: MAX_DELTA_SECONDS,
            },
            AgeCase {
                name: "§5.1 first valid of several lines",
                headers: vec![
                    ("age", "x".into()),
                    ("age", "7".into()),
                    ("age", "9".into()),
                ],
                request_time: T0,
                response_time: T0,
                expected: 7,
            },
            AgeCase {
                name: "§5.1 first valid list member",
                headers: vec![("age", "5, 9".into())],
                request_time: T0,
                response_time: T0,
                expected: 5,
            },
            AgeCase {
                name: "whitespace trimmed",
                headers: vec![("age", " 4 ".into())],
                request_time: T0,
                response_time: T0,
                expected: 4,
            },
            AgeCase {
                name: "clock went backwards: no negative delay",
                headers: vec![("age", "4".into())],
                request_time: T0 + 10,
                response_time: T0,
                expected: 4,
            },
            AgeCase {
                name: "invalid Date ignored",
                headers: vec![("date", "then".into()), ("age", "4".into())],
                request_time: T0,
                response_time: T0,
                expected: 4,
            },
        ];
        for case in cases {
            let map = headers(
                &case
                    .headers
                    .iter()
                    .map(|(n, v)| (*n, v.as_str()))
                    .collect::<Vec<_>>(),
            );
            assert_eq!(
                corrected_initial_age(&map, at(case.request_time), at(case.response_time)),
                Duration::from_secs(case.expected),
                "{}",
                case.name
            );
        }
    }

    /// `Date` and `Age` found among other fields (one pass over the names decides which to look
    /// up), with several lines, empty list members and lines that are not text.
    #[test]
    fn corrected_initial_age_among_other_fields() {
        let others: [(&str, &[u8]); 4] = [
            ("content-type", b"application/json"),
            ("cache-control", b"public, max-age=3600"),
            ("etag", b"\"33a64df5\""),
            ("x-age", b"99"),
        ];
        let old = date(T0 - 30);
        /// Header (name, value) pairs.
        type Fields<'a> = &'a [(&'a str, &'a [u8])];
        // (fields, expected age with a 2 s response delay)
        let cases: &[(Fields<'_>, u64)] = &[
            (&[], 2),
            (&[("age", b"10")], 12),
            (&[("age", b", 5")], 7),
            (&[("age", b"\xff"), ("age", b"3")], 5),
            (&[("age", b"x"), ("age", b" 4 ,9")], 6),
            (&[("date", old.as_bytes())], 32),
            (&[("date", old.as_bytes()), ("age", b"60")], 62),
            (&[("date", old.as_bytes()), ("date", old.as_bytes())], 32),
            (&[("date", old.as_bytes()), ("date", b"then")], 2),
            (&[("date", b"then"), ("date", old.as_bytes())], 2),
            (&[("date", b"\xff")], 2),
        ];
        for (fields, expected) in cases {
            for with_others in [false, true] {
                let mut map = HeaderMap::new();
                let extra: Fields<'_> = if with_others { &others } else { &[] };
                for (name, value) in extra.iter().chain(fields.iter()) {
                    map.append(
                        HeaderName::from_bytes(name.as_bytes()).unwrap(),
                        HeaderValue::from_bytes(value).unwrap(),
                    );
                }
                assert_eq!(
                    corrected_initial_age(&map, at(T0), at(T0 + 2)),
                    Duration::from_secs(*expected),
                    "{fields:?} {with_others}"
                );
            }
        }
    }

    #[test]
    fn current_age_cases() {
        let d = Duration::from_secs;
        // (name, initial, response_time, now, expected)
        let cases = [
            ("§4.2.3 resident time added", d(10), T0, T0 + 5, d(15)),
            ("now equals response_time", d(10), T0, T0, d(10)),
            ("clock went backwards", d(10), T0, T0 - 100, d(10)),
            ("saturates", Duration::MAX, T0, T0 + 5, Duration::MAX),
        ];
        for (name, initial, response_time, now, expected) in cases {
            assert_eq!(
                current_age(initial, at(response_time), at(now)),
                expected,
                "{name}"
            );
        }
    }

    struct UsabilityCase {
        name: &'static str,
        lifetime: Option<u64>,
        age: u64,
        must_revalidate: bool,
        request: &'static str,
        expected: Usability,
    }

    #[test]
    fn usability_cases() {
        use Usability::{Fresh, Stale, StaleAcceptable};
        let c = |name, lifetime, age, must_revalidate, request, expected| UsabilityCase {
            name,
            lifetime,
            age,
            must_revalidate,
            request,
            expected,
        };
        let cases = [
            c("§4.2 fresh", Some(60), 10, false, "", Fresh),
            c(
                "§4.2 age equal to lifetime is stale",
                Some(60),
                60,
                false,
                "",
                Stale,
            ),
            c("§4.2 stale", Some(60), 61, false, "", Stale),
            c(
                "lifetime zero is stale at once",
                Some(0),
                0,
                false,
                "",
                Stale,
            ),
            c(
                "no lifetime never expires",
                None,
                1_000_000,
                false,
                "",
                Fresh,
            ),
            c(
                "§5.2.1.1 request max-age satisfied (age equal)",
                Some(60),
                10,
                false,
                "max-age=10",
                Fresh,
            ),
            c(
                "§5.2.1.1 request max-age exceeded",
                Some(60),
                11,
                false,
                "max-age=10",
                Stale,
            ),
            c(
                "§5.2.1.1 max-age=0 forces revalidation",
                Some(60),
                1,
                false,
                "max-age=0",
                Stale,
            ),
            c(
                "§5.2.1.1 max-age failure not excused by max-stale",
                Some(60),
                11,
                false,
                "max-age=10, max-stale",
                Stale,
            ),
            c(
                "§5.2.1.3 min-fresh satisfied (remaining equal)",
                Some(60),
                40,
                false,
                "min-fresh=20",
                Fresh,
            ),
            c(
                "§5.2.1.3 min-fresh not satisfied",
                Some(60),
                41,
                false,
                "min-fresh=20",
                Stale,
            ),
            c(
                "§5.2.1.3 min-fresh on a fresh response not excused by max-stale",
                Some(60),
                41,
                false,
                "min-fresh=20, max-stale",
                Stale,
            ),
            c(
                "§5.2.1.3 min-fresh with no lifetime",
                None,
                41,
                false,
                "min-fresh=20",
                Fresh,
            ),
            c(
                "§5.2.1.4 request no-cache never fresh",
                Some(60),
                0,
                false,
                "no-cache",
                Stale,
            ),
            c(
                "§5.2.1.4 no-cache beats max-stale",
                Some(60),
                100,
                false,
                "no-cache, max-stale",
                Stale,
            ),
            c(
                "§5.2.1.2 max-stale any",
                Some(60),
                10_000,
                false,
                "max-stale",
                StaleAcceptable,
            ),
            c(
                "§5.2.1.2 max-stale bound not exceeded",
                Some(60),
                90,
                false,
                "max-stale=30",
                StaleAcceptable,
            ),
            c(
                "§5.2.1.2 max-stale bound exceeded",
                Some(60),
                91,
                false,
                "max-stale=30",
                Stale,
            ),
            c(
                "§5.2.1.2 max-stale=0 accepts exactly-expired",
                Some(60),
                60,
                false,
                "max-stale=0",
                StaleAcceptable,
            ),
            c(
                "§4.2.4 must-revalidate forbids stale",
                Some(60),
                70,
                true,
                "max-stale",
                Stale,
            ),
            c(
                "max-stale on a fresh response is still fresh",
                Some(60),
                10,
                false,
                "max-stale",
                Fresh,
            ),
            c(
                "max-stale with max-age satisfied",
                Some(60),
                70,
                false,
                "max-stale, max-age=100",
                StaleAcceptable,
            ),
            c(
                "must-revalidate does not affect fresh",
                Some(60),
                10,
                true,
                "",
                Fresh,
            ),
        ];
        for case in cases {
            let stored = StoredFreshness {
                lifetime: case.lifetime.map(Duration::from_secs),
                age: Duration::from_secs(case.age),
                must_revalidate: case.must_revalidate,
            };
            assert_eq!(
                usability(&stored, &RequestDirectives::parse(case.request)),
                case.expected,
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn heuristic_freshness_serde() {
        let h: HeuristicFreshness =
            serde_json::from_str(r#"{"fraction": 0.2, "max": "1h"}"#).unwrap();
        assert_eq!(
            h,
            HeuristicFreshness {
                fraction: 0.2,
                max: Duration::from_secs(3600),
                ..HeuristicFreshness::default()
            }
        );
        let back: HeuristicFreshness =
            serde_json::from_str(&serde_json::to_string(&h).unwrap()).unwrap();
        assert_eq!(back, h);
    }

    #[test]
    fn http_dates_are_read_as_recipients_must() {
        let sunday = UNIX_EPOCH + Duration::from_secs(784_111_777);
        let cases: &[(&str, Option<SystemTime>)] = &[
            ("Sun, 06 Nov 1994 08:49:37 GMT", Some(sunday)),
            ("  Sun, 06 Nov 1994 08:49:37 GMT ", Some(sunday)),
            ("Sunday, 06-Nov-94 08:49:37 GMT", Some(sunday)),
            ("Sun Nov  6 08:49:37 1994", Some(sunday)),
            ("sun, 06 nov 1994 08:49:37 gmt", Some(sunday)),
            ("SUN, 06 NOV 1994 08:49:37 GMT", Some(sunday)),
            ("Mon, 06 Nov 1994 08:49:37 GMT", Some(sunday)),
            ("Monday, 06-Nov-94 08:49:37 GMT", Some(sunday)),
            ("Fri Nov  6 08:49:37 1994", Some(sunday)),
            ("Sun, 31 Nov 1994 08:49:37 GMT", None),
            ("Sun, 06 Nov 1994 25:49:37 GMT", None),
            ("0", None),
            ("", None),
            ("tomorrow", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_http_date_leniently(text), *expected, "{text:?}");
        }
    }

    #[test]
    fn a_remembered_date_is_only_ever_its_own() {
        // Repeats, alternations, prefixes of one another, invalid and over-long values: each
        // read through the memo gives what parsing it gives.
        let long = format!("Sun, 06 Nov 1994 08:49:37 GMT{}", " ".repeat(40));
        let texts = [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:38 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:3",
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "tomorrow",
            "tomorrow",
            "",
            "Sun, 06 Nov 1994 08:49:38 GMT",
            &long,
            "Sun, 06 Nov 1994 08:49:37 GMT",
        ];
        for text in texts {
            let value = HeaderValue::from_str(text).unwrap();
            assert_eq!(date_value(&value), http_date(&value), "{text:?}");
        }
        assert_eq!(
            date_value(&HeaderValue::from_static("Sun, 06 Nov 1994 08:49:38 GMT")),
            Some(UNIX_EPOCH + Duration::from_secs(784_111_778))
        );
    }
}
