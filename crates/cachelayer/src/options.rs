//! Per-request options (requests-cache's request options), carried in the request's extensions.

use crate::settings::StaleWindow;
use bytes::Bytes;
use cachelayer_policy::ExpireAfter;

/// Cache options for one request (requests-cache's request options: `expire_after`, `refresh`,
/// `force_refresh`, `only_if_cached`, `stale_if_error`, `disabled`), put in the request's
/// [`http::Extensions`]. They never reach the wire.
///
/// ```
/// use cachelayer::{CacheOptions, ExpireAfter};
/// use std::time::Duration;
///
/// let mut request = http::Request::get("http://example.com/").body(()).unwrap();
/// request.extensions_mut().insert(CacheOptions {
///     expire_after: Some(ExpireAfter::After(Duration::from_secs(60))),
///     ..CacheOptions::default()
/// });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheOptions {
    /// The expiration of this request's response (precedence level 3: above `urls_expire_after`
    /// and `expire_after`, below request and response `Cache-Control`). `DoNotCache` bypasses the
    /// cache for this request.
    pub expire_after: Option<ExpireAfter>,
    /// Revalidate the stored response before using it, even if fresh; with no validator, fetch
    /// it again (requests-cache `refresh`, a browser's F5).
    pub refresh: bool,
    /// Skip the stored response and send an unconditional request; the new response replaces
    /// the stored one (requests-cache `force_refresh`, a browser's Ctrl-F5).
    pub force_refresh: bool,
    /// Never contact the origin: a 504 "Not Cached" when nothing usable is stored
    /// (requests-cache `only_if_cached`).
    pub only_if_cached: bool,
    /// Overrides the `stale_if_error` setting for this request.
    pub stale_if_error: Option<StaleWindow>,
    /// Overrides the `stale_while_revalidate` setting for this request.
    pub stale_while_revalidate: Option<StaleWindow>,
    /// Bypass the cache for this request: neither read nor write (requests-cache
    /// `cache_disabled()`).
    pub disabled: bool,
}

/// The request body as part of the cache key, put in the request's extensions by a layer that
/// buffers request bodies, such as [`KeyRequestBodyLayer`](crate::KeyRequestBodyLayer) (for
/// cached POST requests: requests-cache keys them by body). When
/// present, the cache key includes these bytes (see `cachelayer_policy::key::create_key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyBody(pub Bytes);
