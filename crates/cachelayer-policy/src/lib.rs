//! RFC 9111 HTTP caching rules as pure functions.
//!
//! This crate holds the decisions of an HTTP cache, with no IO and no async: every function takes
//! the request and response metadata it needs, and the current time as an argument.
//!
//! | module | what it decides | source |
//! |---|---|---|
//! | [`directives`] | parsing `Cache-Control` (request and response), `Pragma` | RFC 9111 §5.2, §5.4; RFC 5861; RFC 8246 |
//! | [`storable`] | whether a response may be stored | RFC 9111 §3, §3.5 |
//! | [`freshness`] | freshness lifetime, heuristic freshness, age | RFC 9111 §4.2 |
//! | [`validators`] | ETag / Last-Modified, conditional requests, freshening with a 304 | RFC 9111 §4.3; RFC 9110 §8.8, §13 |
//! | [`expiration`] | `expire_after` values and their order of precedence | requests-cache "Expiration" |
//! | [`key`] | URL normalization and the cache key | requests-cache `create_key` |
//! | [`clock`] | the source of "now", injectable for tests | |
//!
//! ```
//! use cachelayer_policy::{directives::ResponseDirectives, freshness, CacheKind};
//! use http::HeaderMap;
//! use std::time::{Duration, SystemTime};
//!
//! let mut headers = HeaderMap::new();
//! headers.insert("cache-control", "public, max-age=60, s-maxage=600".parse().unwrap());
//! let directives = ResponseDirectives::from_headers(&headers);
//! assert_eq!(
//!     freshness::explicit_lifetime(&directives, &headers, CacheKind::Shared, SystemTime::now()),
//!     Some(Duration::from_secs(600)),
//! );
//! ```

pub mod clock;
pub mod directives;
pub mod expiration;
pub mod freshness;
pub mod key;
pub mod storable;
pub mod validators;

pub use clock::{Clock, ManualClock, SystemClock};
pub use directives::{FieldList, MaxStale, RequestDirectives, ResponseDirectives};
pub use expiration::{ExpirationSource, ExpireAfter, ResolvedExpiration, ResolvedExpirationKind};
pub use freshness::HeuristicFreshness;
pub use key::{CacheKey, KeyOptions, MatchHeaders};
pub use storable::NotStorable;
pub use validators::{ConditionalOutcome, EntityTag, EntityTagList, Precondition};

use serde::{Deserialize, Serialize};

/// Whether the cache is private (serves one user) or shared (serves many), RFC 9111 §1.
///
/// A private cache is the kind in a user agent or an API client: it may store responses marked
/// `private` and responses to requests with `Authorization`. A shared cache (a reverse proxy, a
/// CDN) may not, unless the response allows it (§3.5), and it honours `s-maxage` and
/// `proxy-revalidate`.
///
/// Default: [`CacheKind::Private`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheKind {
    /// A cache for a single user (an HTTP client).
    #[default]
    Private,
    /// A cache that serves many users (a reverse proxy).
    Shared,
}

impl CacheKind {
    /// `true` for [`CacheKind::Shared`].
    pub fn is_shared(self) -> bool {
        matches!(self, CacheKind::Shared)
    }
}
