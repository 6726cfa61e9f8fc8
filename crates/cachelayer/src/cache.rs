//! [`Cache`]: inspecting and removing stored responses (requests-cache's `session.cache`).
//!
//! Expired responses are not removed on their own: they stay stored (to be revalidated, or served
//! by `stale_if_error`) until they are replaced, evicted, or past their retention. A [`Cache`]
//! removes them, or any others, on demand, and lists what is stored.
//!
//! ```
//! use cachelayer::{CacheInfo, CacheLayer, CacheSettings};
//! use http_body_util::Full;
//! use std::convert::Infallible;
//! use tower::{Layer, Service, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), cachelayer::StoreError> {
//! let origin = service_fn(|_req: http::Request<Full<bytes::Bytes>>| async {
//!     let response = http::Response::builder()
//!         .header("cache-control", "max-age=3600")
//!         .body(Full::new(bytes::Bytes::from("hello")))
//!         .unwrap();
//!     Ok::<_, Infallible>(response)
//! });
//! let layer = CacheLayer::new(CacheSettings::default());
//! let mut client = layer.layer(origin);
//! let cache = layer.cache();
//!
//! let request = || http::Request::get("http://example.com/a?b=1&a=2").body(Full::default()).unwrap();
//! let response = client.ready().await.unwrap().call(request()).await.unwrap();
//! # use http_body_util::BodyExt;
//! response.into_body().collect().await.unwrap(); // stored once the body has been read
//!
//! assert_eq!(cache.urls().await?, ["http://example.com/a?a=2&b=1"]);
//! assert!(cache.contains_url("http://example.com/a?a=2&b=1").await?);
//!
//! // requests-cache: session.cache.delete(urls=['http://example.com/a?b=1&a=2'])
//! assert_eq!(cache.delete_urls(["HTTP://Example.com/a?b=1&a=2"]).await?, 1);
//! assert_eq!(cache.len().await?, 0);
//!
//! let response = client.ready().await.unwrap().call(request()).await.unwrap();
//! assert!(!response.extensions().get::<CacheInfo>().unwrap().from_cache);
//! # Ok(())
//! # }
//! ```

use crate::layer::Shared;
use crate::options::KeyBody;
use crate::settings::CacheSettings;
use crate::stage::request::derive_key;
use crate::stage::variant::{Fields, variant_key};
use crate::stage::write::retain_until;
use cachelayer_policy::clock::add_saturating;
use cachelayer_policy::key;
use cachelayer_policy::{CacheKey, ExpireAfter, validators};
use cachelayer_store::{Store, StoreError, StoredResponse};
use http::{HeaderMap, Method, Request, Uri};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub use cachelayer_store::{EntryFilter, EntryInfo};

/// A handle on a cache's stored responses, to list and remove them (requests-cache's
/// `session.cache`, a `BaseCache`).
///
/// Obtained from [`CacheLayer::cache`](crate::CacheLayer::cache): it reads the layer's store,
/// clock and current settings (the settings decide how URLs and requests turn into keys, and
/// [`set_settings`](crate::CacheLayer::set_settings) applies to the handle too). Or made with
/// [`Cache::new`] for a store on its own. Cloning is cheap; clones share everything.
///
/// Every operation is async and goes to the store; each returns the store's [`StoreError`]
/// when the store fails. Removals return how many entries they removed.
///
/// | requests-cache | cachelayer |
/// |---|---|
/// | `session.cache.clear()` | [`clear`](Self::clear) |
/// | `delete(expired=True)` | [`delete_expired`](Self::delete_expired) |
/// | `delete(older_than=timedelta(days=7))` | [`delete_older_than`](Self::delete_older_than) |
/// | `delete(urls=[...])` | [`delete_urls`](Self::delete_urls) |
/// | `delete(requests=[...])` | [`delete_requests`](Self::delete_requests) |
/// | `delete('e25f7e6326966e82')` | [`delete_keys`](Self::delete_keys) |
/// | `delete(invalid=True)` | [`delete_invalid`](Self::delete_invalid) |
/// | `reset_expiration(timedelta(days=30))` | [`reset_expiration`](Self::reset_expiration) |
/// | `contains(key=...)`, `contains(url=...)`, `contains(request=...)` | [`contains_key`](Self::contains_key), [`contains_url`](Self::contains_url), [`contains_request`](Self::contains_request) |
/// | `filter()`, `responses.values()` | [`entries`](Self::entries) |
/// | `urls()` | [`urls`](Self::urls) |
/// | `responses.keys()` | [`keys`](Self::keys) |
/// | `len(responses)` | [`len`](Self::len) |
/// | `create_key(request)` | [`create_key`](Self::create_key) |
///
/// ```
/// use cachelayer::{CacheKey, CacheLayer, CacheSettings, NEVER_EXPIRE};
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), cachelayer::StoreError> {
/// const DAY: Duration = Duration::from_secs(24 * 60 * 60);
/// let layer = CacheLayer::new(CacheSettings::default());
/// let cache = layer.cache();
/// // ... requests go through the services `layer` makes ...
///
/// cache.delete_expired().await?; // delete(expired=True)
/// cache.delete_older_than(7 * DAY).await?; // delete(older_than=timedelta(days=7))
/// cache.delete_urls(["https://httpbin.org/json"]).await?; // delete(urls=[...])
/// let request = http::Request::get("https://httpbin.org/get?key=value").body(()).unwrap();
/// cache.delete_requests([&request]).await?; // delete(requests=[...])
/// let key = CacheKey::custom("e25f7e6326966e82e25f7e6326966e82");
/// cache.delete_keys([key]).await?; // delete('e25f7e6326966e82e25f7e6326966e82')
/// cache.reset_expiration(30 * DAY).await?; // reset_expiration(timedelta(days=30))
/// cache.reset_expiration(NEVER_EXPIRE).await?;
/// for entry in cache.entries().await? {
///     println!("{} {} {} bytes, expires {:?}", entry.key, entry.url, entry.size, entry.expires);
/// }
/// cache.clear().await?; // clear()
/// assert!(cache.is_empty().await?);
/// # Ok(())
/// # }
/// ```
///
/// # Shared stores
///
/// The handle sees the store, not the layer: when several layers share one store
/// ([`CacheLayer::with_shared_store`](crate::CacheLayer::with_shared_store), requests-cache's
/// one backend for several sessions), the `Cache` of any of them lists, and removes, the
/// entries of all of them. Only key derivation (`delete_urls`, `delete_requests`,
/// `contains_url`, `contains_request`, `create_key`) follows the settings of the layer the
/// handle came from.
///
/// # Responses with `Vary`
///
/// A response with `Vary` is stored under two keys: the request's key (the latest variant of
/// the URL) and a secondary key for its variant (RFC 9111 §4.1). Listings, [`len`](Self::len)
/// and [`size_bytes`](Self::size_bytes) show both entries, and removals count both.
/// [`delete_keys`](Self::delete_keys) and [`delete_requests`](Self::delete_requests) remove both
/// copies of what they delete; [`delete_urls`](Self::delete_urls) removes every variant.
///
/// # Concurrency
///
/// Removals and [`reset_expiration`](Self::reset_expiration) run while requests go on: a
/// response stored while one runs may or may not be affected. None of them is atomic across
/// entries.
#[derive(Clone, Debug)]
pub struct Cache {
    shared: Arc<Shared>,
}

impl Cache {
    /// A handle on `store` used without a layer (a maintenance tool purging a shared store):
    /// keys are derived with the default settings ([`CacheSettings::default`]) and time read
    /// from the [`SystemClock`](crate::SystemClock).
    ///
    /// Prefer [`CacheLayer::cache`](crate::CacheLayer::cache) when there is a layer: its handle
    /// uses the layer's settings (`ignored_parameters`, `match_headers`, `key_fn`) and clock.
    pub fn new(store: Arc<dyn Store>) -> Self {
        crate::CacheLayer::with_shared_store(store, CacheSettings::default()).cache()
    }

    pub(crate) fn from_shared(shared: Arc<Shared>) -> Self {
        Cache { shared }
    }

    /// The store the handle works on.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.shared.store
    }

    fn now(&self) -> SystemTime {
        self.shared.clock.now()
    }

    // ===== removal =====

    /// Removes every stored response (requests-cache `session.cache.clear()`).
    ///
    /// # Errors
    /// The store's error.
    pub async fn clear(&self) -> Result<(), StoreError> {
        self.shared.store.clear().await
    }

    /// Removes the responses `filter` matches and returns how many it removed
    /// (requests-cache `session.cache.delete(...)`). The other `delete_*` methods are this with a
    /// filter built for them.
    ///
    /// # Errors
    /// The store's error; responses removed before it stay removed.
    pub async fn delete(&self, filter: EntryFilter) -> Result<u64, StoreError> {
        self.shared.store.clone().delete(filter).await
    }

    /// Removes the responses that are stale by the cache's clock (`expires` now or earlier) and
    /// returns how many (requests-cache `delete(expired=True)`). Responses that never expire are
    /// kept. A stale response with a validator could still have been revalidated; removing it
    /// means the next request fetches it in full.
    ///
    /// # Errors
    /// The store's error.
    pub async fn delete_expired(&self) -> Result<u64, StoreError> {
        self.delete(EntryFilter::Expired { now: self.now() }).await
    }

    /// Removes the responses received more than `age` ago by the cache's clock (their
    /// `created_at` is before now − `age`) and returns how many (requests-cache
    /// `delete(older_than=timedelta(...))`).
    ///
    /// # Errors
    /// The store's error.
    pub async fn delete_older_than(&self, age: Duration) -> Result<u64, StoreError> {
        let Some(cutoff) = self.now().checked_sub(age) else {
            return Ok(0);
        };
        self.delete(EntryFilter::OlderThan(cutoff)).await
    }

    /// Removes the responses stored under `keys` and returns how many entries it removed
    /// (requests-cache `delete('e25f7e6326966e82', ...)`). Keys come from
    /// [`CacheInfo::cache_key`](crate::CacheInfo::cache_key), from [`entries`](Self::entries),
    /// [`keys`](Self::keys) or [`create_key`](Self::create_key), or from their text form
    /// (`"…".parse::<CacheKey>()`, as `Cache-Status` and listings print them). Unknown keys are
    /// ignored.
    ///
    /// A response with `Vary` is stored twice: under the request's key and under a secondary
    /// key for its variant (RFC 9111 §4.1). Deleting the request's key removes both copies (two
    /// entries). Reads each entry before removing it (one `get` per key).
    ///
    /// # Errors
    /// The store's error.
    pub async fn delete_keys(
        &self,
        keys: impl IntoIterator<Item = CacheKey>,
    ) -> Result<u64, StoreError> {
        let store = &self.shared.store;
        let mut remove = Vec::new();
        for key in keys {
            if let Some(entry) = read(store, &key).await? {
                remove.extend(variant_key(
                    &key,
                    &entry.headers,
                    &entry.request.headers,
                    Fields::Kept,
                ));
            }
            remove.push(key);
        }
        if remove.is_empty() {
            return Ok(0);
        }
        self.delete(EntryFilter::Keys(remove)).await
    }

    /// Removes the responses to requests for these URLs, whatever the request method and header
    /// fields, and returns how many (requests-cache `delete(urls=[...])`).
    ///
    /// Each URL is normalized as the cache normalizes request URLs (lowercase scheme and host,
    /// default port dropped, query parameters sorted, the settings' `ignored_parameters` left
    /// out; see `cachelayer_policy::key::normalize_url`), so
    /// `"HTTP://Example.com:80/a?b=1&a=2"` removes the response stored for
    /// `http://example.com/a?a=2&b=1`. A URL that does not parse as a URI matches nothing.
    ///
    /// # Errors
    /// The store's error.
    pub async fn delete_urls(
        &self,
        urls: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> Result<u64, StoreError> {
        let settings = self.shared.settings.load();
        let urls: Vec<String> = urls
            .into_iter()
            .filter_map(|url| url.as_ref().parse::<Uri>().ok())
            .map(|uri| key::normalize_url(&uri, &HeaderMap::new(), &settings.ignored_parameters))
            .collect();
        if urls.is_empty() {
            return Ok(0);
        }
        self.delete(EntryFilter::Urls(urls)).await
    }

    /// Removes the responses stored for these requests and returns how many entries it removed
    /// (requests-cache `delete(requests=[...])`). Each request is keyed as the cache keys it (see
    /// [`create_key`](Self::create_key)): method, URL, the header fields `match_headers`
    /// selects, the [`KeyBody`](crate::KeyBody) extension when present, or the settings'
    /// `key_fn`. Only the request head is read; the body type does not matter
    /// (`Request<()>` will do).
    ///
    /// For a response with `Vary`, the variant the request's header fields select is removed
    /// (both its copies, when it is also the latest variant stored under the request's key);
    /// other variants stay.
    ///
    /// # Errors
    /// The store's error.
    pub async fn delete_requests<'a, B: 'a>(
        &self,
        requests: impl IntoIterator<Item = &'a Request<B>>,
    ) -> Result<u64, StoreError> {
        let mut remove = Vec::new();
        for request in requests {
            remove.extend(self.keys_answering(request).await?);
        }
        if remove.is_empty() {
            return Ok(0);
        }
        self.delete(EntryFilter::Keys(remove)).await
    }

    /// Removes the entries whose record cannot be read, and returns how many (requests-cache
    /// `delete(invalid=True)`): records written by another version of the entry format, or
    /// corrupted.
    ///
    /// Reads every entry, one [`get`](Store::get) per key: stores drop an undecodable record
    /// when it is read (a `get` that returns nothing for a listed key) or report a decode error
    /// (the record is then removed here). Both are counted; so are a listed entry the store no
    /// longer returns because it is past its retention (removed here too), and an entry removed
    /// by something else between the listing and its read.
    ///
    /// # Errors
    /// The store's error other than a decode error.
    pub async fn delete_invalid(&self) -> Result<u64, StoreError> {
        let store = &self.shared.store;
        let mut removed = 0;
        for key in store.keys().await? {
            match store.get(&key).await {
                Ok(Some(_)) => {}
                Ok(None) => {
                    store.remove(&key).await?;
                    removed += 1;
                }
                Err(error) if error.is_decode() => {
                    store.remove(&key).await?;
                    removed += 1;
                }
                Err(error) => return Err(error),
            }
        }
        Ok(removed)
    }

    /// Gives every stored response a new expiration, counted from now by the cache's clock, and
    /// returns how many responses it changed (requests-cache `reset_expiration(expire_after)`):
    ///
    /// - [`ExpireAfter::After(d)`](ExpireAfter::After) (or a [`Duration`]): fresh until now + `d`;
    /// - [`ExpireAfter::At(t)`](ExpireAfter::At): fresh until `t`;
    /// - [`ExpireAfter::Never`] ([`NEVER_EXPIRE`](crate::NEVER_EXPIRE)): fresh until removed;
    /// - [`ExpireAfter::Immediately`] ([`EXPIRE_IMMEDIATELY`](crate::EXPIRE_IMMEDIATELY)): stale
    ///   now, so revalidated at next use; a response without a validator (`ETag`,
    ///   `Last-Modified`) cannot be revalidated and is removed;
    /// - [`ExpireAfter::DoNotCache`] ([`DO_NOT_CACHE`](crate::DO_NOT_CACHE)): every response is
    ///   removed.
    ///
    /// How long the store keeps each response is recomputed as the cache does when it stores
    /// one: while it has a validator, until evicted; otherwise until its new expiration plus the
    /// longest window it may still be served stale in (`stale_if_error` setting, its own
    /// `stale-if-error` / `stale-while-revalidate`). The time it was received (`created_at`) and
    /// everything else are kept.
    ///
    /// Each response is read and written back (one `get` and one `put` per entry): a response
    /// stored meanwhile may be overwritten by the older one with its new expiration.
    ///
    /// # Errors
    /// The store's error; responses changed before it stay changed.
    pub async fn reset_expiration(
        &self,
        expire_after: impl Into<ExpireAfter>,
    ) -> Result<u64, StoreError> {
        let now = self.now();
        let expires = match expire_after.into() {
            ExpireAfter::DoNotCache => return self.delete(EntryFilter::All).await,
            ExpireAfter::Never => None,
            ExpireAfter::Immediately => Some(now),
            ExpireAfter::After(lifetime) => Some(add_saturating(now, lifetime)),
            ExpireAfter::At(at) => Some(at),
        };
        let settings = self.shared.settings.load();
        let store = &self.shared.store;
        let mut changed = 0;
        for key in store.keys().await? {
            let Some(entry) = read(store, &key).await? else {
                continue;
            };
            let has_validator = validators::has_validator(&entry.headers);
            let retain_until = retain_until(expires, has_validator, &entry.stale, &settings);
            if retain_until.is_some_and(|until| until <= now) {
                // Stale at once and nothing to revalidate with: it could never be used again.
                store.remove(&key).await?;
            } else {
                let mut updated = StoredResponse::clone(&entry);
                updated.expires = expires;
                updated.retain_until = retain_until;
                store.put(key, Arc::new(updated)).await?;
            }
            changed += 1;
        }
        Ok(changed)
    }

    // ===== inspection =====

    /// The key the cache stores the response to `request` under (requests-cache
    /// `create_key(request)`): the settings' `key_fn` when set, otherwise
    /// `cachelayer_policy::key::create_key` with the settings' `match_headers` and
    /// `ignored_parameters`, and the request's [`KeyBody`](crate::KeyBody) extension as the body.
    /// A `HEAD` request has the key of the `GET` (the cache answers it from the stored `GET`
    /// response). Only the request head is read.
    pub fn create_key<B>(&self, request: &Request<B>) -> CacheKey {
        let settings = self.shared.settings.load();
        let body = request.extensions().get::<KeyBody>().map(|b| &b.0[..]);
        derive_key(
            request.method(),
            request.uri(),
            request.headers(),
            body,
            &settings,
        )
    }

    /// `true` when a response is stored under `key` (requests-cache `contains(key=...)`).
    ///
    /// # Errors
    /// The store's error.
    pub async fn contains_key(&self, key: &CacheKey) -> Result<bool, StoreError> {
        Ok(self.shared.store.get(key).await?.is_some())
    }

    /// `true` when a response to a plain `GET` of `url` (no header fields) is stored
    /// (requests-cache `contains(url=...)`). The URL is normalized as the cache does; a URL that
    /// does not parse as a URI is never stored.
    ///
    /// # Errors
    /// The store's error.
    pub async fn contains_url(&self, url: impl AsRef<str>) -> Result<bool, StoreError> {
        let Ok(uri) = url.as_ref().parse::<Uri>() else {
            return Ok(false);
        };
        let key = derive_key(
            &Method::GET,
            &uri,
            &HeaderMap::new(),
            None,
            &self.shared.settings.load(),
        );
        self.contains_key(&key).await
    }

    /// `true` when a response to `request` is stored (requests-cache `contains(request=...)`):
    /// under its key (see [`create_key`](Self::create_key)) and, for a response with `Vary`, for
    /// the variant the request's header fields select. Whether it is fresh does not matter.
    ///
    /// # Errors
    /// The store's error.
    pub async fn contains_request<B>(&self, request: &Request<B>) -> Result<bool, StoreError> {
        for key in self.keys_answering(request).await? {
            if self.contains_key(&key).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The keys under which the response that would answer `request` is stored: the request's
    /// key, unless another variant is stored there, and the secondary key of the request's
    /// variant when the stored response varies.
    async fn keys_answering<B>(&self, request: &Request<B>) -> Result<Vec<CacheKey>, StoreError> {
        let primary = self.create_key(request);
        let Some(entry) = read(&self.shared.store, &primary).await? else {
            return Ok(vec![primary]);
        };
        let Some(own) = variant_key(&primary, &entry.headers, request.headers(), Fields::Sent)
        else {
            return Ok(vec![primary]);
        };
        if variant_key(
            &primary,
            &entry.headers,
            &entry.request.headers,
            Fields::Kept,
        )
        .as_ref()
            == Some(&own)
        {
            Ok(vec![primary, own])
        } else {
            Ok(vec![own])
        }
    }

    /// A summary of every stored response: key, method, normalized URL, status, `created_at`,
    /// `expires`, size (requests-cache `filter()` / `responses.values()`), in no particular
    /// order. Filter it with [`EntryInfo::is_expired`] and the fields; remove a selection with
    /// [`delete_keys`](Self::delete_keys) or [`delete`](Self::delete) and
    /// [`EntryFilter::custom`].
    ///
    /// # Errors
    /// The store's error.
    pub async fn entries(&self) -> Result<Vec<EntryInfo>, StoreError> {
        self.shared.store.clone().entries().await
    }

    /// The normalized URLs of the stored responses, sorted, each once (requests-cache `urls()`).
    ///
    /// # Errors
    /// The store's error.
    pub async fn urls(&self) -> Result<Vec<String>, StoreError> {
        let mut urls: Vec<String> = self.entries().await?.into_iter().map(|e| e.url).collect();
        urls.sort_unstable();
        urls.dedup();
        Ok(urls)
    }

    /// The keys of the stored responses, in no particular order (requests-cache
    /// `responses.keys()`).
    ///
    /// # Errors
    /// The store's error.
    pub async fn keys(&self) -> Result<Vec<CacheKey>, StoreError> {
        self.shared.store.keys().await
    }

    /// The number of stored responses, as the store counts them ([`Store::len`]).
    ///
    /// # Errors
    /// The store's error.
    pub async fn len(&self) -> Result<u64, StoreError> {
        self.shared.store.len().await
    }

    /// `true` when nothing is stored.
    ///
    /// # Errors
    /// The store's error.
    pub async fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len().await? == 0)
    }

    /// The total estimated size of the stored responses, in bytes: the sum of
    /// [`EntryInfo::size`] (bodies, header fields, URLs and a fixed overhead per entry).
    ///
    /// # Errors
    /// The store's error.
    pub async fn size_bytes(&self) -> Result<u64, StoreError> {
        Ok(self.entries().await?.iter().map(|e| e.size as u64).sum())
    }

    /// Sets the `cachelayer_store_entries` and `cachelayer_store_bytes` gauges (feature
    /// `metrics`, labelled with the store's [`kind`](Store::kind)) from [`len`](Self::len) and
    /// [`size_bytes`](Self::size_bytes). Both walk the store (`size_bytes` lists every entry),
    /// so call it every few seconds from a task, not per request:
    ///
    /// ```no_run
    /// # async fn run(layer: cachelayer::CacheLayer) {
    /// let cache = layer.cache();
    /// tokio::spawn(async move {
    ///     loop {
    ///         let _ = cache.record_store_size().await;
    ///         tokio::time::sleep(std::time::Duration::from_secs(10)).await;
    ///     }
    /// });
    /// # }
    /// ```
    ///
    /// # Errors
    /// The store's error; the gauges keep their last values.
    #[cfg(feature = "metrics")]
    pub async fn record_store_size(&self) -> Result<(), StoreError> {
        let entries = self.len().await?;
        let bytes = self.size_bytes().await?;
        crate::metrics::store_size(self.shared.health.store_kind(), entries, bytes);
        Ok(())
    }
}

/// The entry under `key`; `None` for an unreadable record (a decode error), like a miss.
async fn read(
    store: &Arc<dyn Store>,
    key: &CacheKey,
) -> Result<Option<Arc<StoredResponse>>, StoreError> {
    match store.get(key).await {
        Err(error) if error.is_decode() => Ok(None),
        other => other,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_settings() {
        let cache = Cache::new(Arc::new(cachelayer_store::MemoryStore::new()));
        let a = Request::get("HTTP://Example.com:80/a?b=1&a=2&api_key=s")
            .body(())
            .unwrap();
        let b = Request::get("http://example.com/a?a=2&b=1")
            .body(())
            .unwrap();
        assert_eq!(cache.create_key(&a), cache.create_key(&b));
        let mut with_body = Request::get("http://example.com/a?a=2&b=1")
            .body(())
            .unwrap();
        with_body
            .extensions_mut()
            .insert(KeyBody(bytes::Bytes::from_static(b"x")));
        assert_ne!(cache.create_key(&with_body), cache.create_key(&b));
        let head = Request::head("http://example.com/a?a=2&b=1")
            .body(())
            .unwrap();
        assert_eq!(
            cache.create_key(&head),
            cache.create_key(&b),
            "HEAD: the GET key"
        );
        let delete = Request::delete("http://example.com/a?a=2&b=1")
            .body(())
            .unwrap();
        assert_ne!(cache.create_key(&delete), cache.create_key(&b));
    }
}
