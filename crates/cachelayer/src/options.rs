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
/// // The same, with the setters (which take what converts into the field's type):
/// let options = CacheOptions::default().expire_after(Duration::from_secs(60));
/// assert_eq!(request.extensions().get::<CacheOptions>(), Some(&options));
/// assert_eq!(CacheOptions::default().expire_after(60u64), options);
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

/// Builder-style setters, one per field, named after it.
impl CacheOptions {
    /// Sets [`expire_after`](CacheOptions#structfield.expire_after): an [`ExpireAfter`], a
    /// [`Duration`](std::time::Duration) or a `u64` number of seconds (requests-cache's
    /// per-request `expire_after`). Default: none (the settings decide).
    #[must_use]
    pub fn expire_after(mut self, expire_after: impl Into<ExpireAfter>) -> Self {
        self.expire_after = Some(expire_after.into());
        self
    }

    /// Sets [`refresh`](CacheOptions#structfield.refresh) (requests-cache `refresh`).
    /// Default: `false`.
    #[must_use]
    pub fn refresh(mut self, refresh: bool) -> Self {
        self.refresh = refresh;
        self
    }

    /// Sets [`force_refresh`](CacheOptions#structfield.force_refresh) (requests-cache
    /// `force_refresh`). Default: `false`.
    #[must_use]
    pub fn force_refresh(mut self, force_refresh: bool) -> Self {
        self.force_refresh = force_refresh;
        self
    }

    /// Sets [`only_if_cached`](CacheOptions#structfield.only_if_cached) (requests-cache
    /// `only_if_cached`; RFC 9111 §5.2.1.7). Default: `false`.
    #[must_use]
    pub fn only_if_cached(mut self, only_if_cached: bool) -> Self {
        self.only_if_cached = only_if_cached;
        self
    }

    /// Overrides `stale_if_error` for this request (requests-cache `stale_if_error`; RFC 5861
    /// §4): a [`StaleWindow`], `bool` or [`Duration`](std::time::Duration). Default: none (the
    /// setting applies).
    #[must_use]
    pub fn stale_if_error(mut self, window: impl Into<StaleWindow>) -> Self {
        self.stale_if_error = Some(window.into());
        self
    }

    /// Overrides `stale_while_revalidate` for this request (RFC 5861 §3): a [`StaleWindow`],
    /// `bool` or [`Duration`](std::time::Duration). Default: none (the setting applies).
    #[must_use]
    pub fn stale_while_revalidate(mut self, window: impl Into<StaleWindow>) -> Self {
        self.stale_while_revalidate = Some(window.into());
        self
    }

    /// Sets [`disabled`](CacheOptions#structfield.disabled) (requests-cache
    /// `cache_disabled()`). Default: `false`.
    #[must_use]
    pub fn disabled(mut self, disabled: bool) -> Self {
        self.disabled = disabled;
        self
    }
}

/// The request body as part of the cache key, put in the request's extensions by a layer that
/// buffers request bodies, such as [`KeyRequestBodyLayer`](crate::KeyRequestBodyLayer) (for
/// cached POST requests: requests-cache keys them by body). When
/// present, the cache key includes these bytes (see `cachelayer_policy::key::create_key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyBody(pub Bytes);

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Every field has a setter: the destructuring names every field (no `..`), so a new field
    /// fails to compile here until it gets a setter and a line in this test.
    #[test]
    fn every_field_has_a_setter() {
        let CacheOptions {
            expire_after,
            refresh,
            force_refresh,
            only_if_cached,
            stale_if_error,
            stale_while_revalidate,
            disabled,
        } = CacheOptions::default()
            .expire_after(Duration::from_secs(60))
            .refresh(true)
            .force_refresh(true)
            .only_if_cached(true)
            .stale_if_error(Duration::from_secs(30))
            .stale_while_revalidate(false)
            .disabled(true);
        assert_eq!(
            expire_after,
            Some(ExpireAfter::After(Duration::from_secs(60)))
        );
        assert!(refresh && force_refresh && only_if_cached && disabled);
        assert_eq!(
            stale_if_error,
            Some(StaleWindow::AtMost(Duration::from_secs(30)))
        );
        assert_eq!(stale_while_revalidate, Some(StaleWindow::Off));
    }
}
