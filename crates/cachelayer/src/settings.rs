//! [`CacheSettings`]: every setting of the cache, with requests-cache's names.

use crate::rules::{FilterFn, KeyFn, UrlPattern, serde_url_rules};
use crate::stage::key_memo::KeyMemo;
use cachelayer_policy::expiration::parse_duration;
use cachelayer_policy::key::{DEFAULT_IGNORED_PARAMETERS, KeyOptions, MatchHeaders};
use cachelayer_policy::{CacheKind, ExpireAfter, HeuristicFreshness};
use http::{HeaderName, Method, StatusCode};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The default [`CacheSettings::stale_retention`]: 1 day.
pub const DEFAULT_STALE_RETENTION: Duration = Duration::from_secs(86_400);

/// The default [`CacheSettings::max_body_size`]: 8 MiB.
pub const DEFAULT_MAX_BODY_SIZE: usize = 8 * 1024 * 1024;

/// How the cache behaves. `CacheSettings::default()` follows HTTP (RFC 9111): response headers
/// decide what is stored and for how long, as a private cache.
///
/// To get requests-cache's default model instead (the settings decide, every response is stored
/// and reused for `expire_after`), turn `cache_control` off:
///
/// ```
/// use cachelayer::{CacheSettings, ExpireAfter};
/// use std::time::Duration;
///
/// let settings = CacheSettings {
///     cache_control: false,
///     expire_after: Some(ExpireAfter::After(Duration::from_secs(360))),
///     ..CacheSettings::default()
/// };
/// ```
///
/// Settings deserialize with serde, from JSON, TOML or any serde format. Every field is
/// optional; a field the settings do not have (a typo such as `expire_afer`) is an error naming
/// it. Every duration reads one grammar
/// ([`parse_duration`](cachelayer_policy::expiration::parse_duration)): a whole number of
/// seconds (`360`, `"360"`), or text such as `"90s"`, `"5m"`, `"1h 30m"`; expirations also
/// `"never"`, `"immediately"`, `"do-not-cache"` or an RFC 3339 date-time:
///
/// ```
/// # use cachelayer::CacheSettings;
/// let settings: CacheSettings = serde_json::from_str(r#"{
///     "shared": true,
///     "expire_after": "5m",
///     "stale_if_error": "1h",
///     "max_body_size": 1048576
/// }"#).unwrap();
/// assert!(settings.shared);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheSettings {
    /// A shared cache (a reverse proxy serving many users) instead of a private one (an HTTP
    /// client). Default: `false` (private). What a shared cache does differently:
    ///
    /// - it does not store `private` responses, or responses to requests with `Authorization`
    ///   unless allowed (RFC 9111 §3.5); it honours `s-maxage`, `proxy-revalidate` and targeted
    ///   fields such as `CDN-Cache-Control` (RFC 9213);
    /// - a request's `Cache-Control: max-age` never sets the expiration of the response it gets
    ///   (requests-cache's private-client convenience; RFC 9111 §5.2.1.1);
    /// - responses with `Set-Cookie` are not stored ([`set_cookie`](Self::set_cookie)), and
    ///   responses to requests with `Cookie` only with explicit freshness from the origin, a
    ///   `urls_expire_after` rule or a per-request `expire_after`;
    /// - keys keep the path and query byte for byte, and hash the values of the credentials
    ///   named in `ignored_parameters` (see `cachelayer_policy::key`).
    pub shared: bool,

    /// Use response `Cache-Control` / `Expires` headers to decide expiration, above every
    /// setting (requests-cache `cache_control`). When `false`, the settings decide and a response
    /// without any expiration setting never expires (requests-cache's default). `no-store` is
    /// honoured either way. Default: `true`.
    pub cache_control: bool,

    /// The expiration of responses whose headers (with `cache_control`) and per-URL rules give
    /// none (requests-cache `expire_after`). `None`: with `cache_control`, heuristic freshness
    /// then "stale at once" (revalidate each use, stored only with a validator); without,
    /// never expire. Default: `None`.
    pub expire_after: Option<ExpireAfter>,

    /// Per-URL expiration (requests-cache `urls_expire_after`): `(pattern, expiration)` rules in
    /// order; the first pattern that matches the request URL gives the expiration (precedence
    /// level 4, above `expire_after`). See [`UrlPattern`] for glob and regex matching. In settings
    /// files: a map `{"*.site_1.com": "30s", "regex:site_2\\.com/resource_\\d": "7days"}` (document
    /// order) or a list of `[pattern, expiration]` pairs. Default: none.
    #[serde(with = "serde_url_rules")]
    pub urls_expire_after: Vec<(UrlPattern, ExpireAfter)>,

    /// Heuristic freshness for responses with `Last-Modified` and no explicit freshness
    /// (RFC 9111 §4.2.2), used only with `cache_control`. Default: 10% of the time since
    /// `Last-Modified`, at most 24 hours.
    pub heuristic_freshness: HeuristicFreshness,

    /// The request methods whose responses are cached (requests-cache `allowable_methods`);
    /// others pass through to the inner service. Default: `GET`, `HEAD`.
    #[serde(with = "serde_methods")]
    pub allowable_methods: Vec<Method>,

    /// The response statuses that are stored (requests-cache `allowable_codes`). `None`: every
    /// status RFC 9111 lets a cache store (any final status except 206 and 304, when the response
    /// is otherwise storable). A list restricts storage to those statuses. Default: `None`.
    pub allowable_codes: Option<Vec<u16>>,

    /// Which request headers are part of the cache key (requests-cache `match_headers`): `false`
    /// (none), `true` (all but `ignored_parameters`), or a list of names. Default: none.
    #[serde(with = "serde_match_headers")]
    pub match_headers: MatchHeaders,

    /// Query parameters and request headers left out of cache keys and never stored
    /// (requests-cache `ignored_parameters`). Default: `Authorization`, `Proxy-Authorization`,
    /// `X-API-Key`, `X-Auth-Token`, `X-API-Token`, `X-Access-Token`, `access_token`, `api_key`,
    /// `apikey`.
    pub ignored_parameters: Vec<String>,

    /// Serve a stale stored response when the origin fails: the inner service returns an error,
    /// or a 5xx status (requests-cache `stale_if_error`; RFC 5861 §4). `false`: only when the
    /// response's own `stale-if-error` allows it; `true`: any staleness; a duration: at most
    /// that stale. Default: `false`.
    pub stale_if_error: StaleWindow,

    /// Serve a stale stored response when the origin cannot be reached at all (the inner
    /// service returns an error: no connection, a timeout below the cache), whatever its
    /// staleness, as RFC 9111 §4.2.4 allows a disconnected cache. Never for a response that
    /// must be revalidated (`must-revalidate`, `no-cache`, and in a shared cache
    /// `proxy-revalidate` and `s-maxage`). Unlike [`stale_if_error`](Self::stale_if_error), a
    /// 5xx answer is not "unreachable". Default: `false`; [`CacheSettings::shared`]: `true`
    /// (a reverse proxy keeps serving what it has while its origin is down).
    pub stale_if_unreachable: bool,

    /// How long a response that became stale is kept, in case something allows serving it
    /// stale (a request's `max-stale`, `stale_if_error`, `stale_if_unreachable`) or lists it
    /// ([`Cache::delete_expired`](crate::Cache::delete_expired) finds it), when it has no
    /// validator to be revalidated with (responses with one are kept until evicted). The store's
    /// own bound still evicts it earlier under memory pressure. requests-cache keeps expired
    /// responses until they are replaced or deleted; this bounds that. Default: 1 day.
    #[serde(with = "cachelayer_policy::expiration::serde_duration")]
    pub stale_retention: Duration,

    /// Serve a stale stored response at once and revalidate it in the background (requests-cache
    /// `stale_while_revalidate`; RFC 5861 §3). `false`: only when the response's own
    /// `stale-while-revalidate` allows it; `true`: any staleness; a duration: at most that stale.
    /// At most one background revalidation runs per key at a time; its failure keeps the stale
    /// response. Needs a tokio runtime (without one, the request revalidates in the foreground).
    /// Default: `false`.
    pub stale_while_revalidate: StaleWindow,

    /// Coalesce concurrent requests for one key that must go to the origin (nginx
    /// `proxy_cache_lock`): one request goes, the others wait for its response to be stored and
    /// are answered from the cache. A response that turns out not storable is not shared: the
    /// waiting requests then go to the origin themselves. Needs a tokio runtime with timers.
    /// Default: `true`.
    pub coalesce_requests: bool,

    /// How long a coalesced request waits for the request it follows before going to the origin
    /// itself (nginx `proxy_cache_lock_timeout`). Default: 5 seconds.
    #[serde(with = "cachelayer_policy::expiration::serde_duration")]
    pub coalesce_timeout: Duration,

    /// How long the cache waits for its store on one operation: a read that takes longer is a
    /// miss (the request goes to the origin), a write that takes longer leaves the response
    /// unstored. Stores that answer at once (the memory store) never start the timer.
    /// Default: 1 second.
    #[serde(with = "cachelayer_policy::expiration::serde_duration")]
    pub store_timeout: Duration,

    /// The largest response body stored, in bytes. A larger body (by `Content-Length`, or once
    /// streaming passes the limit) streams through to the caller and is not stored. The stored
    /// parts of a partial entry (RFC 9111 §3.3) are bounded together: a `206` that would take
    /// them past it replaces them. Default: [`DEFAULT_MAX_BODY_SIZE`] (8 MiB).
    pub max_body_size: usize,

    /// Add an RFC 9211 `Cache-Status` header to every response (`hit`, `fwd=miss`, `stored`,
    /// `ttl`, `key`, ...). Default: `true`.
    pub cache_status: bool,

    /// The cache's name in `Cache-Status` (RFC 9211 §2). Default: `"cachelayer"`.
    pub cache_status_name: String,

    /// Attach a [`CacheInfo`](crate::CacheInfo) extension to every response (requests-cache's
    /// `from_cache`, `created_at`, `expires`, ... attributes). Default: `true`. Off, a response
    /// costs three allocations fewer (`http::Extensions`' map, its table and the value): for a
    /// service that never reads it, such as a reverse proxy that writes no access log. Metrics,
    /// spans and `Cache-Status` do not depend on it.
    pub cache_info: bool,

    /// Targeted cache-control fields (RFC 9213), used by a shared cache only: the first of these
    /// response fields with a valid value replaces `Cache-Control` and `Expires` for this cache's
    /// decisions (the fields are still stored and forwarded). Default: `["CDN-Cache-Control"]`.
    pub targeted_cache_control: Vec<String>,

    /// Revalidate every stored response that has a validator before using it, even when fresh
    /// (requests-cache `always_revalidate`). Responses without a validator are used while
    /// fresh. Default: `false`.
    pub always_revalidate: bool,

    /// Never contact the origin: a request with nothing usable stored gets a 504 "Not Cached"
    /// (requests-cache `only_if_cached`; RFC 9111 §5.2.1.7). A stale response is still served
    /// when `stale_if_error` allows it. Default: `false`.
    pub only_if_cached: bool,

    /// A predicate on responses (requests-cache `filter_fn`): `false` keeps a response out of
    /// the cache, and a stored response out of use. Not (de)serialized. Default: none.
    #[serde(skip)]
    pub filter_fn: Option<FilterFn>,

    /// A custom cache key function (requests-cache `key_fn`). Not (de)serialized. Default: none
    /// (`cachelayer_policy::key::create_key`).
    #[serde(skip)]
    pub key_fn: Option<KeyFn>,

    /// Shared caches only: what happens to a response that carries `Set-Cookie`. Storing it
    /// would replay one user's cookie (a session id) to everyone who gets the stored response,
    /// so by default such a response is passed to its requester and not stored, as nginx (since
    /// 0.8.44) and Varnish's built-in VCL do. [`SetCookie::StoredWithout`] stores it without
    /// its `Set-Cookie` fields (the requester still gets them). A private cache stores
    /// `Set-Cookie` as it came, as requests-cache does. `private="set-cookie"` in the response
    /// (RFC 9111 §5.2.2.7) removes the field in a shared cache whatever this says.
    /// Default: [`SetCookie::NotStored`].
    pub set_cookie: SetCookie,

    /// Ignore the request directives that send a request to the origin or loosen what it
    /// accepts: `Cache-Control: no-cache`, `max-age`, `min-fresh`, `max-stale` and
    /// `Pragma: no-cache`. `no-store` and `only-if-cached` still apply. nginx and Varnish ignore
    /// client `Cache-Control` by default: it keeps any client from making every request an
    /// origin request (the cache is then the origin's shield), at the price of a client never
    /// forcing an end-to-end reload through this cache. Requests that must reach the origin
    /// anyway (`no-cache` with this off) are coalesced: concurrent ones for one key share one
    /// origin request. Default: `false`.
    pub ignore_request_cache_control: bool,

    /// Read from the cache but never write to it (requests-cache backend `read_only`).
    /// Default: `false`.
    pub read_only: bool,

    /// Bypass the cache entirely: every request goes to the inner service and nothing is stored
    /// (requests-cache `disabled` / `cache_disabled()`). Default: `false`.
    pub disabled: bool,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            shared: false,
            cache_control: true,
            expire_after: None,
            urls_expire_after: Vec::new(),
            heuristic_freshness: HeuristicFreshness::default(),
            allowable_methods: vec![Method::GET, Method::HEAD],
            allowable_codes: None,
            match_headers: MatchHeaders::None,
            ignored_parameters: DEFAULT_IGNORED_PARAMETERS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            stale_if_error: StaleWindow::Off,
            stale_while_revalidate: StaleWindow::Off,
            stale_if_unreachable: false,
            stale_retention: DEFAULT_STALE_RETENTION,
            coalesce_requests: true,
            coalesce_timeout: Duration::from_secs(5),
            store_timeout: Duration::from_secs(1),
            max_body_size: DEFAULT_MAX_BODY_SIZE,
            cache_status: true,
            cache_status_name: "cachelayer".to_owned(),
            cache_info: true,
            targeted_cache_control: vec!["CDN-Cache-Control".to_owned()],
            always_revalidate: false,
            only_if_cached: false,
            filter_fn: None,
            key_fn: None,
            set_cookie: SetCookie::NotStored,
            ignore_request_cache_control: false,
            read_only: false,
            disabled: false,
        }
    }
}

impl CacheSettings {
    /// Settings for a shared cache (a reverse proxy): the defaults with `shared: true` and
    /// `stale_if_unreachable: true`.
    pub fn shared() -> Self {
        CacheSettings {
            shared: true,
            stale_if_unreachable: true,
            ..Default::default()
        }
    }

    /// requests-cache's defaults: the settings decide, not response headers (`cache_control`
    /// off), every response is kept until replaced or deleted (`expire_after` never),
    /// only `200` responses are stored (`allowable_codes = [200]`), `GET` and `HEAD` are cached.
    /// A private cache.
    ///
    /// ```
    /// use cachelayer::{CacheSettings, ExpireAfter};
    ///
    /// let settings = CacheSettings::requests_cache();
    /// assert!(!settings.cache_control);
    /// assert_eq!(settings.expire_after, Some(ExpireAfter::Never));
    /// assert_eq!(settings.allowable_codes, Some(vec![200]));
    /// ```
    pub fn requests_cache() -> Self {
        CacheSettings {
            cache_control: false,
            expire_after: Some(ExpireAfter::Never),
            allowable_codes: Some(vec![200]),
            ..Default::default()
        }
    }

    /// The cache kind the `shared` setting selects.
    pub fn cache_kind(&self) -> CacheKind {
        if self.shared {
            CacheKind::Shared
        } else {
            CacheKind::Private
        }
    }

    /// The key derivation options these settings select.
    pub fn key_options(&self) -> KeyOptions {
        KeyOptions {
            match_headers: self.match_headers.clone(),
            ignored_parameters: self.ignored_parameters.clone(),
            kind: self.cache_kind(),
        }
    }

    pub(crate) fn allows_method(&self, method: &Method) -> bool {
        self.allowable_methods.iter().any(|m| m == method)
    }

    pub(crate) fn allows_status(&self, status: StatusCode) -> bool {
        match &self.allowable_codes {
            None => true,
            Some(codes) => codes.contains(&status.as_u16()),
        }
    }
}

/// Builder-style setters: one per field, named after it, each taking `self` and returning the
/// changed settings, so that settings read as one expression:
///
/// ```
/// use cachelayer::{CacheSettings, ExpireAfter, StaleWindow};
/// use std::time::Duration;
///
/// let settings = CacheSettings::default()
///     .expire_after(Duration::from_secs(3600)) // or 3600u64, or ExpireAfter::Never
///     .stale_if_error(true)                    // or a Duration, or StaleWindow::Off
///     .stale_while_revalidate(Duration::from_secs(60))
///     .allowable_codes([200, 404])
///     .max_body_size(1 << 20);
/// assert_eq!(settings.expire_after, Some(ExpireAfter::After(Duration::from_secs(3600))));
/// assert_eq!(settings.stale_if_error, StaleWindow::Any);
/// assert_eq!(settings.allowable_codes, Some(vec![200, 404]));
/// ```
///
/// The setter of [`shared`](CacheSettings#structfield.shared) is
/// [`shared_cache`](Self::shared_cache), because [`CacheSettings::shared`] already names the
/// settings of a shared cache.
impl CacheSettings {
    /// Sets [`shared`](CacheSettings#structfield.shared): `true` for a shared cache (a reverse
    /// proxy, RFC 9111 §3.5, §5.2.2.7), `false` for a private one (an HTTP client). Default:
    /// `false`. [`CacheSettings::shared`] also turns on `stale_if_unreachable`; this does not.
    #[must_use]
    pub fn shared_cache(mut self, shared: bool) -> Self {
        self.shared = shared;
        self
    }

    /// Sets [`cache_control`](CacheSettings#structfield.cache_control) (requests-cache
    /// `cache_control`): whether response `Cache-Control` / `Expires` decide expiration above
    /// every setting. Default: `true`.
    #[must_use]
    pub fn cache_control(mut self, enabled: bool) -> Self {
        self.cache_control = enabled;
        self
    }

    /// Sets [`expire_after`](CacheSettings#structfield.expire_after) (requests-cache
    /// `expire_after`): an [`ExpireAfter`], a [`Duration`], or a `u64` number of seconds (`0`:
    /// [`ExpireAfter::Immediately`]). Default: none.
    #[must_use]
    pub fn expire_after(mut self, expire_after: impl Into<ExpireAfter>) -> Self {
        self.expire_after = Some(expire_after.into());
        self
    }

    /// Replaces [`urls_expire_after`](CacheSettings#structfield.urls_expire_after)
    /// (requests-cache `urls_expire_after`): `(pattern, expiration)` rules, the first match
    /// wins. Default: none. [`url_expire_after`](Self::url_expire_after) appends one rule from
    /// pattern text.
    #[must_use]
    pub fn urls_expire_after<E: Into<ExpireAfter>>(
        mut self,
        rules: impl IntoIterator<Item = (UrlPattern, E)>,
    ) -> Self {
        self.urls_expire_after = rules
            .into_iter()
            .map(|(pattern, expire_after)| (pattern, expire_after.into()))
            .collect();
        self
    }

    /// Appends a `urls_expire_after` rule (after the existing ones, so it matches last;
    /// requests-cache `urls_expire_after`).
    ///
    /// # Errors
    /// [`PatternError`](crate::PatternError) when the pattern (a glob, or a regex prefixed
    /// `regex:`) does not compile.
    pub fn url_expire_after(
        mut self,
        pattern: &str,
        expire_after: impl Into<ExpireAfter>,
    ) -> Result<Self, crate::PatternError> {
        self.urls_expire_after
            .push((pattern.parse()?, expire_after.into()));
        Ok(self)
    }

    /// Sets [`heuristic_freshness`](CacheSettings#structfield.heuristic_freshness)
    /// (RFC 9111 §4.2.2). Default: 10% of the time since `Last-Modified`, at most 24 hours.
    #[must_use]
    pub fn heuristic_freshness(mut self, heuristic: HeuristicFreshness) -> Self {
        self.heuristic_freshness = heuristic;
        self
    }

    /// Sets [`allowable_methods`](CacheSettings#structfield.allowable_methods) (requests-cache
    /// `allowable_methods`). Default: `GET`, `HEAD`. A method with a body (`POST`) is cached
    /// only with [`KeyRequestBodyLayer`](crate::KeyRequestBodyLayer) below the cache.
    #[must_use]
    pub fn allowable_methods(mut self, methods: impl IntoIterator<Item = Method>) -> Self {
        self.allowable_methods = methods.into_iter().collect();
        self
    }

    /// Restricts storage to these statuses
    /// ([`allowable_codes`](CacheSettings#structfield.allowable_codes), requests-cache
    /// `allowable_codes`). Default: every status RFC 9111 lets a cache store (the field is
    /// `None`).
    #[must_use]
    pub fn allowable_codes(mut self, codes: impl IntoIterator<Item = u16>) -> Self {
        self.allowable_codes = Some(codes.into_iter().collect());
        self
    }

    /// Sets [`match_headers`](CacheSettings#structfield.match_headers) (requests-cache
    /// `match_headers`). Default: [`MatchHeaders::None`].
    #[must_use]
    pub fn match_headers(mut self, match_headers: MatchHeaders) -> Self {
        self.match_headers = match_headers;
        self
    }

    /// Replaces [`ignored_parameters`](CacheSettings#structfield.ignored_parameters)
    /// (requests-cache `ignored_parameters`): query parameter and header names. Default:
    /// [`DEFAULT_IGNORED_PARAMETERS`] (credentials); replacing the list drops them unless
    /// listed again.
    #[must_use]
    pub fn ignored_parameters<S: Into<String>>(
        mut self,
        names: impl IntoIterator<Item = S>,
    ) -> Self {
        self.ignored_parameters = names.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`stale_if_error`](CacheSettings#structfield.stale_if_error) (requests-cache
    /// `stale_if_error`; RFC 5861 §4): a [`StaleWindow`], `bool` (`true`: any staleness) or
    /// [`Duration`] (at most that stale). Default: [`StaleWindow::Off`].
    #[must_use]
    pub fn stale_if_error(mut self, window: impl Into<StaleWindow>) -> Self {
        self.stale_if_error = window.into();
        self
    }

    /// Sets [`stale_if_unreachable`](CacheSettings#structfield.stale_if_unreachable)
    /// (RFC 9111 §4.2.4, a disconnected cache). Default: `false`; `true` in
    /// [`CacheSettings::shared`].
    #[must_use]
    pub fn stale_if_unreachable(mut self, enabled: bool) -> Self {
        self.stale_if_unreachable = enabled;
        self
    }

    /// Sets [`stale_retention`](CacheSettings#structfield.stale_retention): how long a stale
    /// response without a validator is kept. Default: [`DEFAULT_STALE_RETENTION`] (1 day).
    #[must_use]
    pub fn stale_retention(mut self, retention: Duration) -> Self {
        self.stale_retention = retention;
        self
    }

    /// Sets [`stale_while_revalidate`](CacheSettings#structfield.stale_while_revalidate)
    /// (requests-cache `stale_while_revalidate`; RFC 5861 §3): a [`StaleWindow`], `bool` or
    /// [`Duration`]. Default: [`StaleWindow::Off`].
    #[must_use]
    pub fn stale_while_revalidate(mut self, window: impl Into<StaleWindow>) -> Self {
        self.stale_while_revalidate = window.into();
        self
    }

    /// Sets [`coalesce_requests`](CacheSettings#structfield.coalesce_requests) (nginx
    /// `proxy_cache_lock`). Default: `true`.
    #[must_use]
    pub fn coalesce_requests(mut self, enabled: bool) -> Self {
        self.coalesce_requests = enabled;
        self
    }

    /// Sets [`coalesce_timeout`](CacheSettings#structfield.coalesce_timeout) (nginx
    /// `proxy_cache_lock_timeout`). Default: 5 seconds.
    #[must_use]
    pub fn coalesce_timeout(mut self, timeout: Duration) -> Self {
        self.coalesce_timeout = timeout;
        self
    }

    /// Sets [`store_timeout`](CacheSettings#structfield.store_timeout): the longest one store
    /// operation may take before a read is a miss and a write is dropped. Default: 1 second.
    #[must_use]
    pub fn store_timeout(mut self, timeout: Duration) -> Self {
        self.store_timeout = timeout;
        self
    }

    /// Sets [`max_body_size`](CacheSettings#structfield.max_body_size): the largest body
    /// stored, in bytes. Default: [`DEFAULT_MAX_BODY_SIZE`] (8 MiB).
    #[must_use]
    pub fn max_body_size(mut self, bytes: usize) -> Self {
        self.max_body_size = bytes;
        self
    }

    /// Sets [`cache_status`](CacheSettings#structfield.cache_status): whether responses carry
    /// an RFC 9211 `Cache-Status` field. Default: `true`.
    #[must_use]
    pub fn cache_status(mut self, enabled: bool) -> Self {
        self.cache_status = enabled;
        self
    }

    /// Sets [`cache_status_name`](CacheSettings#structfield.cache_status_name), the cache's
    /// name in `Cache-Status` (RFC 9211 §2). Default: `"cachelayer"`.
    #[must_use]
    pub fn cache_status_name(mut self, name: impl Into<String>) -> Self {
        self.cache_status_name = name.into();
        self
    }

    /// Sets [`cache_info`](CacheSettings#structfield.cache_info): whether responses carry the
    /// [`CacheInfo`](crate::CacheInfo) extension. Default: `true`.
    #[must_use]
    pub fn cache_info(mut self, enabled: bool) -> Self {
        self.cache_info = enabled;
        self
    }

    /// Replaces [`targeted_cache_control`](CacheSettings#structfield.targeted_cache_control):
    /// the RFC 9213 targeted fields a shared cache obeys, first valid one wins. Default:
    /// `["CDN-Cache-Control"]`; an empty list turns targeted fields off.
    #[must_use]
    pub fn targeted_cache_control<S: Into<String>>(
        mut self,
        field_names: impl IntoIterator<Item = S>,
    ) -> Self {
        self.targeted_cache_control = field_names.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`always_revalidate`](CacheSettings#structfield.always_revalidate) (requests-cache
    /// `always_revalidate`). Default: `false`.
    #[must_use]
    pub fn always_revalidate(mut self, enabled: bool) -> Self {
        self.always_revalidate = enabled;
        self
    }

    /// Sets [`only_if_cached`](CacheSettings#structfield.only_if_cached) (requests-cache
    /// `only_if_cached`; RFC 9111 §5.2.1.7). Default: `false`.
    #[must_use]
    pub fn only_if_cached(mut self, enabled: bool) -> Self {
        self.only_if_cached = enabled;
        self
    }

    /// Sets [`filter_fn`](CacheSettings#structfield.filter_fn) (requests-cache `filter_fn`):
    /// `false` keeps a response out of the cache. Default: none.
    #[must_use]
    pub fn filter_fn(
        mut self,
        filter: impl Fn(&crate::ResponseView<'_>) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.filter_fn = Some(FilterFn::new(filter));
        self
    }

    /// Sets [`key_fn`](CacheSettings#structfield.key_fn) (requests-cache `key_fn`). Default:
    /// none (`cachelayer_policy::key::create_key`).
    #[must_use]
    pub fn key_fn(
        mut self,
        key: impl Fn(&cachelayer_policy::key::KeyInput<'_>, &KeyOptions) -> cachelayer_policy::CacheKey
        + Send
        + Sync
        + 'static,
    ) -> Self {
        self.key_fn = Some(KeyFn::new(key));
        self
    }

    /// Sets [`set_cookie`](CacheSettings#structfield.set_cookie): what a shared cache does with
    /// a response that carries `Set-Cookie`. Default: [`SetCookie::NotStored`].
    #[must_use]
    pub fn set_cookie(mut self, set_cookie: SetCookie) -> Self {
        self.set_cookie = set_cookie;
        self
    }

    /// Sets
    /// [`ignore_request_cache_control`](CacheSettings#structfield.ignore_request_cache_control):
    /// ignore request `no-cache`, `max-age`, `min-fresh`, `max-stale` (RFC 9111 §5.2.1), as
    /// nginx and Varnish do. Default: `false`.
    #[must_use]
    pub fn ignore_request_cache_control(mut self, enabled: bool) -> Self {
        self.ignore_request_cache_control = enabled;
        self
    }

    /// Sets [`read_only`](CacheSettings#structfield.read_only) (requests-cache backend
    /// `read_only`). Default: `false`.
    #[must_use]
    pub fn read_only(mut self, enabled: bool) -> Self {
        self.read_only = enabled;
        self
    }

    /// Sets [`disabled`](CacheSettings#structfield.disabled) (requests-cache `disabled`).
    /// Default: `false`.
    #[must_use]
    pub fn disabled(mut self, disabled: bool) -> Self {
        self.disabled = disabled;
        self
    }
}

/// Settings in force, with what derives from them computed once per change rather than once per
/// request.
#[derive(Debug)]
pub(crate) struct ActiveSettings {
    settings: CacheSettings,
    pub(crate) key_options: KeyOptions,
    /// Recent keys, when keys depend on the request target only.
    pub(crate) key_memo: Option<KeyMemo>,
    /// `cache_status_name` as `Cache-Status` shows it.
    pub(crate) status_name: crate::info::StatusName,
}

impl ActiveSettings {
    pub(crate) fn new(settings: CacheSettings) -> Self {
        let memoizable = settings.key_fn.is_none() && settings.match_headers == MatchHeaders::None;
        ActiveSettings {
            key_options: settings.key_options(),
            key_memo: memoizable.then(KeyMemo::new),
            status_name: crate::info::StatusName::new(&settings.cache_status_name),
            settings,
        }
    }

    pub(crate) fn settings(&self) -> &CacheSettings {
        &self.settings
    }
}

impl std::ops::Deref for ActiveSettings {
    type Target = CacheSettings;

    fn deref(&self) -> &CacheSettings {
        &self.settings
    }
}

/// What a shared cache does with a response that carries `Set-Cookie`
/// ([`CacheSettings::set_cookie`]). Serde form: `"not_stored"`, `"stored_without"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SetCookie {
    /// Passed to its requester, not stored (nginx's and Varnish's default).
    #[default]
    NotStored,
    /// Stored without its `Set-Cookie` fields; the requester still gets them.
    StoredWithout,
}

/// How stale a response may be and still be served in some situation (requests-cache
/// `stale_if_error` / `stale_while_revalidate`: `False`, `True` or a `timedelta`).
///
/// From a `bool` (`true`: [`Any`](Self::Any), `false`: [`Off`](Self::Off)) or a [`Duration`]
/// ([`AtMost`](Self::AtMost)), wherever a window is taken: the setters of [`CacheSettings`] and
/// [`CacheOptions`](crate::CacheOptions).
///
/// ```
/// use cachelayer::{CacheOptions, CacheSettings, StaleWindow};
/// use std::time::Duration;
///
/// assert_eq!(StaleWindow::from(true), StaleWindow::Any);
/// assert_eq!(StaleWindow::from(false), StaleWindow::Off);
/// assert_eq!(StaleWindow::from(Duration::from_secs(300)), StaleWindow::AtMost(Duration::from_secs(300)));
///
/// let settings = CacheSettings::default().stale_if_error(Duration::from_secs(300));
/// assert_eq!(settings.stale_if_error, StaleWindow::AtMost(Duration::from_secs(300)));
/// let options = CacheOptions::default().stale_while_revalidate(true);
/// assert_eq!(options.stale_while_revalidate, Some(StaleWindow::Any));
/// ```
///
/// Serde form: `false`, `true`, or a duration in the one grammar of every duration setting
/// ([`parse_duration`]): a number of seconds (`300`) or text (`"5m"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StaleWindow {
    /// Not by this setting (the response's own directive may still allow it).
    #[default]
    Off,
    /// At any staleness.
    Any,
    /// At most this stale.
    AtMost(Duration),
}

impl StaleWindow {
    /// Whether a response stale by `staleness` is within the window. A window of `d` covers
    /// staleness from zero up to, not including, `d` (the moment a store may drop the entry).
    pub fn allows(self, staleness: Duration) -> bool {
        match self {
            StaleWindow::Off => false,
            StaleWindow::Any => true,
            StaleWindow::AtMost(max) => staleness < max,
        }
    }
}

impl From<bool> for StaleWindow {
    fn from(on: bool) -> Self {
        if on {
            StaleWindow::Any
        } else {
            StaleWindow::Off
        }
    }
}

impl From<Duration> for StaleWindow {
    fn from(max: Duration) -> Self {
        StaleWindow::AtMost(max)
    }
}

impl Serialize for StaleWindow {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            StaleWindow::Off => s.serialize_bool(false),
            StaleWindow::Any => s.serialize_bool(true),
            StaleWindow::AtMost(d) => s.collect_str(&humantime::format_duration(*d)),
        }
    }
}

impl<'de> Deserialize<'de> for StaleWindow {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = StaleWindow;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("true, false, or a duration such as \"5m\"")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<StaleWindow, E> {
                Ok(v.into())
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<StaleWindow, E> {
                Ok(StaleWindow::AtMost(Duration::from_secs(v)))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<StaleWindow, E> {
                u64::try_from(v)
                    .map(|v| StaleWindow::AtMost(Duration::from_secs(v)))
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<StaleWindow, E> {
                parse_duration(v)
                    .map(StaleWindow::AtMost)
                    .map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}

mod serde_methods {
    use http::Method;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(methods: &[Method], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(methods.iter().map(Method::as_str))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Method>, D::Error> {
        Vec::<String>::deserialize(d)?
            .into_iter()
            .map(|m| {
                Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                    .map_err(serde::de::Error::custom)
            })
            .collect()
    }
}

mod serde_match_headers {
    use super::{HeaderName, MatchHeaders};
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(m: &MatchHeaders, s: S) -> Result<S::Ok, S::Error> {
        match m {
            MatchHeaders::None => s.serialize_bool(false),
            MatchHeaders::All => s.serialize_bool(true),
            MatchHeaders::List(names) => s.collect_seq(names.iter().map(HeaderName::as_str)),
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Wire {
        Bool(bool),
        List(Vec<String>),
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<MatchHeaders, D::Error> {
        Ok(match Wire::deserialize(d)? {
            Wire::Bool(false) => MatchHeaders::None,
            Wire::Bool(true) => MatchHeaders::All,
            Wire::List(names) => MatchHeaders::List(
                names
                    .iter()
                    .map(|n| {
                        HeaderName::from_bytes(n.to_ascii_lowercase().as_bytes())
                            .map_err(serde::de::Error::custom)
                    })
                    .collect::<Result<_, _>>()?,
            ),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_errors_that_name_the_field() {
        let json = serde_json::from_str::<CacheSettings>(r#"{ "expire_afer": "5m" }"#);
        assert!(json.unwrap_err().to_string().contains("expire_afer"));
        let toml = toml::from_str::<CacheSettings>("expire_afer = \"5m\"\n");
        assert!(toml.unwrap_err().to_string().contains("expire_afer"));
    }

    #[test]
    fn every_duration_reads_one_grammar() {
        let settings: CacheSettings = toml::from_str(
            "expire_after = 360\nstale_if_error = 60\nstale_while_revalidate = \"1h 30m\"\n\
             coalesce_timeout = 5\nstore_timeout = \"250ms\"\n",
        )
        .unwrap();
        assert_eq!(
            settings.expire_after,
            Some(ExpireAfter::After(Duration::from_secs(360)))
        );
        assert_eq!(
            settings.stale_if_error,
            StaleWindow::AtMost(Duration::from_secs(60))
        );
        assert_eq!(
            settings.stale_while_revalidate,
            StaleWindow::AtMost(Duration::from_secs(5400))
        );
        assert_eq!(settings.coalesce_timeout, Duration::from_secs(5));
        assert_eq!(settings.store_timeout, Duration::from_millis(250));
        let json: CacheSettings =
            serde_json::from_str(r#"{ "coalesce_timeout": 5, "store_timeout": "2" }"#).unwrap();
        assert_eq!(json.coalesce_timeout, Duration::from_secs(5));
        assert_eq!(json.store_timeout, Duration::from_secs(2));
        let heuristic: CacheSettings =
            toml::from_str("[heuristic_freshness]\nmax = 3600\n").unwrap();
        assert_eq!(heuristic.heuristic_freshness.max, Duration::from_secs(3600));
        let error = toml::from_str::<CacheSettings>("[heuristic_freshness]\nfracton = 0.2\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("fracton"), "{error}");
        for bad in [
            r#"{ "stale_if_error": "five minutes" }"#,
            r#"{ "coalesce_timeout": "5M" }"#,
            r#"{ "expire_after": "5M" }"#,
            r#"{ "heuristic_freshness": { "max": "5M" } }"#,
        ] {
            let error = serde_json::from_str::<CacheSettings>(bad)
                .unwrap_err()
                .to_string();
            assert!(error.contains("\"90s\""), "{bad}: {error}");
        }
    }

    #[test]
    fn url_rules_keep_document_order_in_toml_tables() {
        let settings: CacheSettings = toml::from_str(
            "[urls_expire_after]\n\
             \"site_2.com/resource_1\" = \"2m\"\n\
             \"regex:site_2\\\\.com/resource_\\\\d\" = \"7days\"\n\
             \"*.site_1.com\" = 30\n",
        )
        .unwrap();
        let expirations: Vec<ExpireAfter> = settings
            .urls_expire_after
            .iter()
            .map(|(_, expire_after)| *expire_after)
            .collect();
        assert_eq!(
            expirations,
            [
                ExpireAfter::After(Duration::from_secs(120)),
                ExpireAfter::After(Duration::from_secs(7 * 86_400)),
                ExpireAfter::After(Duration::from_secs(30)),
            ]
        );
        assert_eq!(
            crate::rules::url_expiration(
                &settings.urls_expire_after,
                "http://site_2.com/resource_1"
            ),
            Some(ExpireAfter::After(Duration::from_secs(120)))
        );
    }

    /// Every field has a setter: the destructuring below names every field (no `..`), so a
    /// new field fails to compile here until it gets a setter and a line in this test.
    #[test]
    fn every_field_has_a_setter() {
        let pattern: UrlPattern = "example.com/api".parse().unwrap();
        let heuristic = HeuristicFreshness {
            enabled: false,
            fraction: 0.5,
            max: Duration::from_secs(60),
        };
        let match_headers = MatchHeaders::List(vec![HeaderName::from_static("accept")]);
        let settings = CacheSettings::default()
            .shared_cache(true)
            .cache_control(false)
            .expire_after(Duration::from_secs(360))
            .urls_expire_after([(pattern.clone(), 60u64)])
            .heuristic_freshness(heuristic)
            .allowable_methods([Method::GET, Method::POST])
            .allowable_codes([200, 404])
            .match_headers(match_headers.clone())
            .ignored_parameters(["token"])
            .stale_if_error(true)
            .stale_if_unreachable(true)
            .stale_retention(Duration::from_secs(7))
            .stale_while_revalidate(Duration::from_secs(30))
            .coalesce_requests(false)
            .coalesce_timeout(Duration::from_secs(2))
            .store_timeout(Duration::from_millis(20))
            .max_body_size(1024)
            .cache_status(false)
            .cache_status_name("edge")
            .cache_info(false)
            .targeted_cache_control(["Edge-Cache-Control"])
            .always_revalidate(true)
            .only_if_cached(true)
            .filter_fn(|response| response.status == StatusCode::OK)
            .key_fn(cachelayer_policy::key::create_key)
            .set_cookie(SetCookie::StoredWithout)
            .ignore_request_cache_control(true)
            .read_only(true)
            .disabled(true);
        let CacheSettings {
            shared,
            cache_control,
            expire_after,
            urls_expire_after,
            heuristic_freshness,
            allowable_methods,
            allowable_codes,
            match_headers: matched,
            ignored_parameters,
            stale_if_error,
            stale_if_unreachable,
            stale_retention,
            stale_while_revalidate,
            coalesce_requests,
            coalesce_timeout,
            store_timeout,
            max_body_size,
            cache_status,
            cache_status_name,
            cache_info,
            targeted_cache_control,
            always_revalidate,
            only_if_cached,
            filter_fn,
            key_fn,
            set_cookie,
            ignore_request_cache_control,
            read_only,
            disabled,
        } = settings;
        assert!(shared);
        assert!(!cache_control);
        assert_eq!(
            expire_after,
            Some(ExpireAfter::After(Duration::from_secs(360)))
        );
        assert_eq!(
            urls_expire_after,
            [(pattern, ExpireAfter::After(Duration::from_secs(60)))]
        );
        assert_eq!(heuristic_freshness, heuristic);
        assert_eq!(allowable_methods, [Method::GET, Method::POST]);
        assert_eq!(allowable_codes, Some(vec![200, 404]));
        assert_eq!(matched, match_headers);
        assert_eq!(ignored_parameters, ["token"]);
        assert_eq!(stale_if_error, StaleWindow::Any);
        assert!(stale_if_unreachable);
        assert_eq!(stale_retention, Duration::from_secs(7));
        assert_eq!(
            stale_while_revalidate,
            StaleWindow::AtMost(Duration::from_secs(30))
        );
        assert!(!coalesce_requests);
        assert_eq!(coalesce_timeout, Duration::from_secs(2));
        assert_eq!(store_timeout, Duration::from_millis(20));
        assert_eq!(max_body_size, 1024);
        assert!(!cache_status);
        assert_eq!(cache_status_name, "edge");
        assert!(!cache_info);
        assert_eq!(targeted_cache_control, ["Edge-Cache-Control"]);
        assert!(always_revalidate);
        assert!(only_if_cached);
        assert!(filter_fn.is_some());
        assert!(key_fn.is_some());
        assert_eq!(set_cookie, SetCookie::StoredWithout);
        assert!(ignore_request_cache_control);
        assert!(read_only);
        assert!(disabled);
    }

    #[test]
    fn requests_cache_defaults_store_only_200() {
        let settings = CacheSettings::requests_cache();
        assert!(settings.allows_status(StatusCode::OK));
        assert!(!settings.allows_status(StatusCode::NOT_FOUND));
        assert!(!settings.allows_status(StatusCode::INTERNAL_SERVER_ERROR));
        assert_eq!(
            ExpireAfter::from(60u64),
            ExpireAfter::After(Duration::from_secs(60))
        );
    }
}
