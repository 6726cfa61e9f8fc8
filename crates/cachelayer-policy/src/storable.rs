//! Whether a response may be stored (RFC 9111 §3, §3.5).
//!
//! ```
//! use cachelayer_policy::{storable, CacheKind, NotStorable, RequestDirectives, ResponseDirectives};
//! use http::{HeaderMap, Method, StatusCode};
//!
//! let mut request_headers = HeaderMap::new();
//! request_headers.insert("authorization", "Bearer secret".parse().unwrap());
//! let mut response_headers = HeaderMap::new();
//! response_headers.insert("cache-control", "max-age=60".parse().unwrap());
//! let check = |kind| storable::check(&storable::Exchange {
//!     method: &Method::GET,
//!     request_headers: &request_headers,
//!     request: &RequestDirectives::default(),
//!     status: StatusCode::OK,
//!     response_headers: &response_headers,
//!     response: &ResponseDirectives::from_headers(&response_headers),
//!     kind,
//! });
//! assert_eq!(check(CacheKind::Private), Ok(()));
//! assert_eq!(check(CacheKind::Shared), Err(NotStorable::AuthorizationInSharedCache));
//! ```

use crate::CacheKind;
use crate::directives::{RequestDirectives, ResponseDirectives};
use crate::freshness::is_heuristically_cacheable;
use http::{HeaderMap, Method, StatusCode};
use std::fmt;

/// A request and its response, as [`check`] sees them.
#[derive(Debug, Clone, Copy)]
pub struct Exchange<'a> {
    /// The request method.
    pub method: &'a Method,
    /// The request's header fields (for `Authorization`).
    pub request_headers: &'a HeaderMap,
    /// The request's parsed `Cache-Control` / `Pragma`.
    pub request: &'a RequestDirectives,
    /// The response status.
    pub status: StatusCode,
    /// The response's header fields (for `Expires`).
    pub response_headers: &'a HeaderMap,
    /// The response's parsed `Cache-Control`.
    pub response: &'a ResponseDirectives,
    /// Private or shared cache.
    pub kind: CacheKind,
}

/// Why a response may not be stored. Each variant names the RFC 9111 rule it comes from; the
/// [`Display`](fmt::Display) form is a short reason for logs and the `Cache-Status` `detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NotStorable {
    /// The method is not one a cache understands as cacheable: only GET and HEAD are (§3; RFC
    /// 9110 §9.2.3). (POST responses with explicit freshness are allowed by RFC 9110 but cannot be
    /// reused for a GET; cachelayer lets settings allow other methods.)
    MethodNotCacheable,
    /// The status is informational (1xx), or 206 / 304, which a cache does not store as a
    /// complete response (§3, §3.3).
    StatusNotStorable,
    /// The request carries `Cache-Control: no-store` (§5.2.1.5).
    RequestNoStore,
    /// The response carries `Cache-Control: no-store` (§5.2.2.5).
    ResponseNoStore,
    /// The response carries `must-understand` with a status the cache does not understand
    /// (§5.2.2.3).
    MustUnderstand,
    /// A shared cache may not store a response marked `private` (§5.2.2.7).
    PrivateInSharedCache,
    /// A shared cache may not store a response to a request with `Authorization` unless the
    /// response has `public`, `s-maxage` or `must-revalidate` (§3.5).
    AuthorizationInSharedCache,
    /// The response has none of: `public`, `private` (private cache), `Expires`, `max-age`,
    /// `s-maxage` (shared cache), or a heuristically cacheable status (§3).
    NoFreshnessInformation,
    /// 412 Precondition Failed: it answers the request's `If-Match` or `If-Unmodified-Since`
    /// (RFC 9110 §15.5.13), which no cache key holds; stored, it would answer requests without
    /// them.
    PreconditionFailed,
}

impl fmt::Display for NotStorable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NotStorable::MethodNotCacheable => "method-not-cacheable",
            NotStorable::StatusNotStorable => "status-not-storable",
            NotStorable::RequestNoStore => "request-no-store",
            NotStorable::ResponseNoStore => "response-no-store",
            NotStorable::MustUnderstand => "must-understand",
            NotStorable::PrivateInSharedCache => "private",
            NotStorable::AuthorizationInSharedCache => "authorization",
            NotStorable::NoFreshnessInformation => "no-freshness-information",
            NotStorable::PreconditionFailed => "precondition-failed",
        })
    }
}

impl std::error::Error for NotStorable {}

/// The storability rules of RFC 9111 §3 (with §3.5 for shared caches), in the order listed
/// there; the first rule broken is returned.
///
/// `must-understand` (§5.2.2.3) overrides `no-store` when the status is one the cache
/// understands (every status in RFC 9110 is).
pub fn check(exchange: &Exchange<'_>) -> Result<(), NotStorable> {
    let Exchange {
        method,
        request_headers,
        request,
        status,
        response_headers,
        response,
        kind,
    } = *exchange;
    if method != Method::GET && method != Method::HEAD {
        return Err(NotStorable::MethodNotCacheable);
    }
    let code = status.as_u16();
    if status.is_informational() || code == 206 || code == 304 {
        return Err(NotStorable::StatusNotStorable);
    }
    if code == 412 {
        return Err(NotStorable::PreconditionFailed);
    }
    if request.no_store {
        return Err(NotStorable::RequestNoStore);
    }
    if response.must_understand {
        if !is_understood_status(status) {
            return Err(NotStorable::MustUnderstand);
        }
        // An understood status with must-understand: no-store is ignored (§5.2.2.3).
    } else if response.no_store {
        return Err(NotStorable::ResponseNoStore);
    }
    if kind.is_shared() && response.private.is_all() {
        return Err(NotStorable::PrivateInSharedCache);
    }
    if kind.is_shared()
        && request_headers.contains_key(http::header::AUTHORIZATION)
        && !(response.public || response.s_maxage.is_some() || response.must_revalidate)
    {
        return Err(NotStorable::AuthorizationInSharedCache);
    }
    let has_freshness_information = response.public
        || (!kind.is_shared() && response.private.is_present())
        || response_headers.contains_key(http::header::EXPIRES)
        || response.max_age.is_some()
        || (kind.is_shared() && response.s_maxage.is_some())
        || is_heuristically_cacheable(status);
    if !has_freshness_information {
        return Err(NotStorable::NoFreshnessInformation);
    }
    Ok(())
}

/// Whether the cache understands a status code, for `must-understand` (RFC 9111 §5.2.2.3).
///
/// The understood codes are those defined in RFC 9110 §15 (100, 101, 200–206, 300–305, 307, 308,
/// 400–417, 421, 422, 426, 500–505) plus the other standard codes a cache may meet (428, 429,
/// 431 from RFC 6585, 451 from RFC 7725, 511 from RFC 6585). Any other code, such as 299 or 599,
/// is not understood.
pub fn is_understood_status(status: StatusCode) -> bool {
    matches!(
        status.as_u16(),
        100 | 101
            | 200..=206
            | 300..=305
            | 307
            | 308
            | 400..=417
            | 421
            | 422
            | 426
            | 428
            | 429
            | 431
            | 451
            | 500..=505
            | 511
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http::HeaderValue;

    struct Case {
        name: &'static str,
        method: Method,
        request: &'static [(&'static str, &'static str)],
        status: u16,
        response: &'static [(&'static str, &'static str)],
        kind: CacheKind,
        expected: Result<(), NotStorable>,
    }

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    #[test]
    fn rfc9111_section3_cases() {
        use CacheKind::{Private, Shared};
        use NotStorable::*;
        const MAX_AGE: &[(&str, &str)] = &[("cache-control", "max-age=60")];
        const AUTH: &[(&str, &str)] = &[("authorization", "Bearer x")];
        let c = |name, method, request, status, response, kind, expected| Case {
            name,
            method,
            request,
            status,
            response,
            kind,
            expected,
        };
        let cases = [
            c(
                "§3 GET 200 with max-age",
                Method::GET,
                &[],
                200,
                MAX_AGE,
                Private,
                Ok(()),
            ),
            c(
                "§3 HEAD is understood",
                Method::HEAD,
                &[],
                200,
                MAX_AGE,
                Private,
                Ok(()),
            ),
            c(
                "§3 POST not understood",
                Method::POST,
                &[],
                200,
                MAX_AGE,
                Private,
                Err(MethodNotCacheable),
            ),
            c(
                "§3 PUT not understood",
                Method::PUT,
                &[],
                200,
                MAX_AGE,
                Private,
                Err(MethodNotCacheable),
            ),
            c(
                "§3 method checked before status",
                Method::DELETE,
                &[],
                304,
                &[],
                Private,
                Err(MethodNotCacheable),
            ),
            c(
                "§3 1xx not storable",
                Method::GET,
                &[],
                100,
                MAX_AGE,
                Private,
                Err(StatusNotStorable),
            ),
            c(
                "§3 101 not storable",
                Method::GET,
                &[],
                101,
                MAX_AGE,
                Private,
                Err(StatusNotStorable),
            ),
            c(
                "§3.3 206 not storable",
                Method::GET,
                &[],
                206,
                MAX_AGE,
                Private,
                Err(StatusNotStorable),
            ),
            c(
                "RFC 9110 §15.5.13 412 answers preconditions no key holds",
                Method::GET,
                &[],
                412,
                MAX_AGE,
                Shared,
                Err(PreconditionFailed),
            ),
            c(
                "§3 304 not storable",
                Method::GET,
                &[],
                304,
                MAX_AGE,
                Private,
                Err(StatusNotStorable),
            ),
            c(
                "§5.2.1.5 request no-store",
                Method::GET,
                &[("cache-control", "no-store")],
                200,
                MAX_AGE,
                Private,
                Err(RequestNoStore),
            ),
            c(
                "§5.2.2.5 response no-store",
                Method::GET,
                &[],
                200,
                &[("cache-control", "no-store, max-age=60")],
                Private,
                Err(ResponseNoStore),
            ),
            c(
                "§5.2.2.3 must-understand with an understood status overrides no-store",
                Method::GET,
                &[],
                200,
                &[("cache-control", "must-understand, no-store, max-age=60")],
                Private,
                Ok(()),
            ),
            c(
                "§5.2.2.3 must-understand with an unknown status",
                Method::GET,
                &[],
                299,
                &[("cache-control", "must-understand, no-store, max-age=60")],
                Private,
                Err(MustUnderstand),
            ),
            c(
                "§5.2.2.3 must-understand with 599 and no no-store",
                Method::GET,
                &[],
                599,
                &[("cache-control", "must-understand, max-age=60")],
                Private,
                Err(MustUnderstand),
            ),
            c(
                "unknown status without must-understand is fine",
                Method::GET,
                &[],
                299,
                MAX_AGE,
                Private,
                Ok(()),
            ),
            c(
                "§5.2.2.7 private in a private cache",
                Method::GET,
                &[],
                200,
                &[("cache-control", "private")],
                Private,
                Ok(()),
            ),
            c(
                "§5.2.2.7 private in a shared cache",
                Method::GET,
                &[],
                200,
                &[("cache-control", "private, max-age=60")],
                Shared,
                Err(PrivateInSharedCache),
            ),
            c(
                "§5.2.2.7 qualified private is storable in a shared cache (fields stripped)",
                Method::GET,
                &[],
                200,
                &[("cache-control", "private=\"set-cookie\", max-age=60")],
                Shared,
                Ok(()),
            ),
            c(
                "§3.5 Authorization in a private cache",
                Method::GET,
                AUTH,
                200,
                MAX_AGE,
                Private,
                Ok(()),
            ),
            c(
                "§3.5 Authorization in a shared cache",
                Method::GET,
                AUTH,
                200,
                MAX_AGE,
                Shared,
                Err(AuthorizationInSharedCache),
            ),
            c(
                "§3.5 public allows Authorization",
                Method::GET,
                AUTH,
                200,
                &[("cache-control", "public, max-age=60")],
                Shared,
                Ok(()),
            ),
            c(
                "§3.5 s-maxage allows Authorization",
                Method::GET,
                AUTH,
                200,
                &[("cache-control", "s-maxage=60")],
                Shared,
                Ok(()),
            ),
            c(
                "§3.5 must-revalidate allows Authorization",
                Method::GET,
                AUTH,
                200,
                &[("cache-control", "must-revalidate, max-age=60")],
                Shared,
                Ok(()),
            ),
            c(
                "§3 heuristically cacheable status suffices",
                Method::GET,
                &[],
                200,
                &[],
                Private,
                Ok(()),
            ),
            c(
                "§3 404 heuristically cacheable",
                Method::GET,
                &[],
                404,
                &[],
                Shared,
                Ok(()),
            ),
            c(
                "§3 302 without freshness",
                Method::GET,
                &[],
                302,
                &[],
                Private,
                Err(NoFreshnessInformation),
            ),
            c(
                "§3 500 without freshness",
                Method::GET,
                &[],
                500,
                &[],
                Private,
                Err(NoFreshnessInformation),
            ),
            c(
                "§3 Expires suffices",
                Method::GET,
                &[],
                302,
                &[("expires", "0")],
                Private,
                Ok(()),
            ),
            c(
                "§3 max-age suffices",
                Method::GET,
                &[],
                302,
                MAX_AGE,
                Private,
                Ok(()),
            ),
            c(
                "§3 public suffices",
                Method::GET,
                &[],
                302,
                &[("cache-control", "public")],
                Shared,
                Ok(()),
            ),
            c(
                "§3 s-maxage suffices in a shared cache",
                Method::GET,
                &[],
                302,
                &[("cache-control", "s-maxage=5")],
                Shared,
                Ok(()),
            ),
            c(
                "§3 s-maxage does not count in a private cache",
                Method::GET,
                &[],
                302,
                &[("cache-control", "s-maxage=5")],
                Private,
                Err(NoFreshnessInformation),
            ),
            c(
                "§3 private counts in a private cache",
                Method::GET,
                &[],
                302,
                &[("cache-control", "private")],
                Private,
                Ok(()),
            ),
            c(
                "§3 qualified private does not count in a shared cache",
                Method::GET,
                &[],
                302,
                &[("cache-control", "private=\"x\"")],
                Shared,
                Err(NoFreshnessInformation),
            ),
            c(
                "§5.2.2.4 no-cache is storable",
                Method::GET,
                &[],
                200,
                &[("cache-control", "no-cache")],
                Shared,
                Ok(()),
            ),
        ];
        for case in cases {
            let request_headers = map(case.request);
            let response_headers = map(case.response);
            let exchange = Exchange {
                method: &case.method,
                request_headers: &request_headers,
                request: &RequestDirectives::from_headers(&request_headers),
                status: StatusCode::from_u16(case.status).unwrap(),
                response_headers: &response_headers,
                response: &ResponseDirectives::from_headers(&response_headers),
                kind: case.kind,
            };
            assert_eq!(check(&exchange), case.expected, "{}", case.name);
        }
    }

    #[test]
    fn understood_statuses() {
        for code in [
            200, 203, 204, 300, 301, 302, 303, 307, 308, 404, 405, 410, 414, 418, 429, 451, 501,
            511,
        ] {
            let status = StatusCode::from_u16(code).unwrap();
            assert_eq!(is_understood_status(status), code != 418, "{code}");
        }
        for code in [102, 103, 207, 226, 299, 306, 420, 499, 506, 599, 999] {
            assert!(
                !is_understood_status(StatusCode::from_u16(code).unwrap()),
                "{code}"
            );
        }
    }

    #[test]
    fn display() {
        assert_eq!(NotStorable::PrivateInSharedCache.to_string(), "private");
        assert_eq!(
            NotStorable::NoFreshnessInformation.to_string(),
            "no-freshness-information"
        );
    }
}
