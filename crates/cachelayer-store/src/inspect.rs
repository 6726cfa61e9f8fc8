//! Inspecting and removing stored entries: [`EntryInfo`] (what a listing shows of an entry) and
//! [`EntryFilter`] (which entries a [`Store::delete`] removes).
//!
//! These are the store-level half of requests-cache's `BaseCache.filter()` / `responses` and
//! `BaseCache.delete(...)`; the `cachelayer` crate's `Cache` handle builds on them.

use crate::{CacheKey, Store, StoreError, StoredResponse};
use http::{Method, StatusCode};
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

/// What a listing shows of one stored entry: its key, the request it answered, its status and
/// its timing, without the header fields and body (requests-cache `filter()` / `responses`, as a
/// summary).
///
/// Built from an entry with [`EntryInfo::new`]; a store that keeps these columns apart from the
/// record (SQL stores) may build it directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryInfo {
    /// The key the entry is stored under (requests-cache `cache_key`).
    pub key: CacheKey,
    /// The method of the request the response answered.
    pub method: Method,
    /// The normalized URL of that request (see `cachelayer_policy::key::normalize_url`), without
    /// ignored parameters: `http://example.com/a?a=2&b=1`.
    pub url: String,
    /// The response status. `206 Partial Content` for a partial entry: stored parts of one
    /// response (RFC 9111 §3.3), which the cache never serves as a complete response (see
    /// [`partial`](crate::partial)).
    pub status: StatusCode,
    /// When the response was received (requests-cache `created_at`).
    pub created_at: SystemTime,
    /// When the response becomes stale; `None`: never (requests-cache `expires`).
    pub expires: Option<SystemTime>,
    /// The memory the entry holds once compacted, in bytes: body, header fields, URL and their
    /// overheads ([`StoredResponse::size`]; a memory store weighs it with its own bookkeeping
    /// and the key on top, see [`MemoryStore`](crate::MemoryStore)).
    pub size: usize,
}

impl EntryInfo {
    /// The summary of `entry`, stored under `key`.
    pub fn new(key: &CacheKey, entry: &StoredResponse) -> Self {
        EntryInfo {
            key: key.clone(),
            method: entry.request.method.clone(),
            url: entry.request.url.clone(),
            status: entry.status,
            created_at: entry.created_at,
            expires: entry.expires,
            size: entry.size(),
        }
    }

    /// `true` when the response is stale at `now`: its `expires` is `now` or earlier
    /// (requests-cache `is_expired`; the same rule as [`StoredResponse::is_expired`]).
    pub fn is_expired(&self, now: SystemTime) -> bool {
        self.expires.is_some_and(|expires| now >= expires)
    }
}

/// A predicate over entries, for [`EntryFilter::Custom`].
pub type EntryPredicate = Arc<dyn Fn(&EntryInfo) -> bool + Send + Sync>;

/// Which entries a [`Store::delete`] removes (the arguments of requests-cache's
/// `BaseCache.delete()`).
///
/// One filter is one condition; to combine conditions, use [`EntryFilter::Custom`], or call
/// `delete` once per condition.
///
/// ```
/// use cachelayer_store::{EntryFilter, MemoryStore, Store};
/// use http::StatusCode;
/// use std::sync::Arc;
/// use std::time::{Duration, SystemTime};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), cachelayer_store::StoreError> {
/// let store = Arc::new(MemoryStore::new());
/// // ... responses are stored by a cache layer ...
///
/// // requests-cache: session.cache.delete(older_than=timedelta(days=7))
/// let week_ago = SystemTime::now() - Duration::from_secs(7 * 24 * 60 * 60);
/// let removed = store.clone().delete(EntryFilter::OlderThan(week_ago)).await?;
/// assert_eq!(removed, 0);
///
/// // Any condition on the listing: every stored error response.
/// store.clone().delete(EntryFilter::custom(|e| e.status != StatusCode::OK)).await?;
/// assert!(store.entries().await?.is_empty());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub enum EntryFilter {
    /// Every entry (requests-cache `clear()`).
    All,
    /// The entries that are stale at `now`: `expires <= now` (requests-cache
    /// `delete(expired=True)`). Entries that never expire are kept.
    Expired {
        /// The time to judge staleness at (usually the cache's clock).
        now: SystemTime,
    },
    /// The entries received before this instant: `created_at < t` (requests-cache
    /// `delete(older_than=...)`, with the duration already subtracted from now).
    OlderThan(SystemTime),
    /// The entries stored under these keys (requests-cache `delete(*keys)`).
    Keys(Vec<CacheKey>),
    /// The entries whose normalized URL is one of these, whatever the request method
    /// (requests-cache `delete(urls=[...])`). The URLs are compared exactly: normalize them first
    /// (`cachelayer_policy::key::normalize_url`; the `cachelayer` crate's `Cache::delete_urls`
    /// does).
    Urls(Vec<String>),
    /// The entries for which the predicate returns `true`. The predicate is called at most once
    /// per entry, and must not block.
    Custom(EntryPredicate),
}

impl EntryFilter {
    /// A [`Custom`](EntryFilter::Custom) filter from a closure.
    pub fn custom(predicate: impl Fn(&EntryInfo) -> bool + Send + Sync + 'static) -> Self {
        EntryFilter::Custom(Arc::new(predicate))
    }

    /// `true` when the entry `entry`, stored under `key`, is one this filter removes.
    ///
    /// [`Keys`](EntryFilter::Keys) and [`Urls`](EntryFilter::Urls) are searched linearly here;
    /// the store implementations in this crate index them first.
    pub fn matches(&self, key: &CacheKey, entry: &StoredResponse) -> bool {
        match self {
            EntryFilter::All => true,
            EntryFilter::Expired { now } => entry.is_expired(*now),
            EntryFilter::OlderThan(t) => entry.created_at < *t,
            EntryFilter::Keys(keys) => keys.contains(key),
            EntryFilter::Urls(urls) => urls.contains(&entry.request.url),
            EntryFilter::Custom(predicate) => predicate(&EntryInfo::new(key, entry)),
        }
    }

    /// `true` when the entry `info` summarizes is one this filter removes (the same decision as
    /// [`matches`](Self::matches), from a listing).
    pub fn matches_info(&self, info: &EntryInfo) -> bool {
        match self {
            EntryFilter::All => true,
            EntryFilter::Expired { now } => info.is_expired(*now),
            EntryFilter::OlderThan(t) => info.created_at < *t,
            EntryFilter::Keys(keys) => keys.contains(&info.key),
            EntryFilter::Urls(urls) => urls.contains(&info.url),
            EntryFilter::Custom(predicate) => predicate(info),
        }
    }
}

impl fmt::Debug for EntryFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntryFilter::All => f.write_str("All"),
            EntryFilter::Expired { now } => f.debug_struct("Expired").field("now", now).finish(),
            EntryFilter::OlderThan(t) => f.debug_tuple("OlderThan").field(t).finish(),
            EntryFilter::Keys(keys) => f.debug_tuple("Keys").field(keys).finish(),
            EntryFilter::Urls(urls) => f.debug_tuple("Urls").field(urls).finish(),
            EntryFilter::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// An [`EntryFilter`] with its key and URL lists indexed, for matching many entries.
pub(crate) struct Matcher<'a> {
    filter: &'a EntryFilter,
    keys: HashSet<&'a CacheKey>,
    urls: HashSet<&'a str>,
}

impl<'a> Matcher<'a> {
    pub(crate) fn new(filter: &'a EntryFilter) -> Self {
        let mut matcher = Matcher {
            filter,
            keys: HashSet::new(),
            urls: HashSet::new(),
        };
        match filter {
            EntryFilter::Keys(keys) => matcher.keys.extend(keys),
            EntryFilter::Urls(urls) => matcher.urls.extend(urls.iter().map(String::as_str)),
            _ => {}
        }
        matcher
    }

    pub(crate) fn matches(&self, key: &CacheKey, entry: &StoredResponse) -> bool {
        match self.filter {
            EntryFilter::Keys(_) => self.keys.contains(key),
            EntryFilter::Urls(_) => self.urls.contains(entry.request.url.as_str()),
            filter => filter.matches(key, entry),
        }
    }
}

/// The keys of `keys` without repeats, in their first order.
pub(crate) fn dedup_keys(keys: Vec<CacheKey>) -> Vec<CacheKey> {
    let mut seen = HashSet::with_capacity(keys.len());
    keys.into_iter()
        .filter(|key| seen.insert(key.clone()))
        .collect()
}

/// The default [`Store::entries`], on top of [`keys`](Store::keys) and [`get`](Store::get): one
/// `get` per key, in turn. Keys whose entry is gone by the time it is read, or whose record
/// cannot be decoded, are left out.
///
/// For stores that override `entries` for some cases and fall back to this for the others.
///
/// # Errors
/// The first error of `keys` or `get`, except decode errors (those records are left out).
pub async fn default_entries<S: Store + ?Sized>(store: &S) -> Result<Vec<EntryInfo>, StoreError> {
    let keys = store.keys().await?;
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        match store.get(&key).await {
            Ok(Some(entry)) => out.push(EntryInfo::new(&key, &entry)),
            Ok(None) => {}
            Err(error) if error.is_decode() => {}
            Err(error) => return Err(error),
        }
    }
    Ok(out)
}

/// The default [`Store::delete`], on top of the required methods:
///
/// - [`EntryFilter::All`]: [`len`](Store::len), then [`clear`](Store::clear); the count is the
///   number of entries just before clearing;
/// - [`EntryFilter::Keys`]: one [`remove`](Store::remove) per distinct key, counting those that
///   removed an entry;
/// - the others: [`keys`](Store::keys), then one [`get`](Store::get) per key, in turn, and one
///   `remove` per matching entry. Keys whose entry is gone by the time it is read, or whose
///   record cannot be decoded, are skipped.
///
/// Not atomic: an entry replaced between its `get` and its `remove` is removed even if the new
/// one does not match.
///
/// For stores that override `delete` for some filters and fall back to this for the others.
///
/// # Errors
/// The first error of the store operations, except decode errors on `get` (skipped). Entries
/// removed before the error stay removed.
pub async fn default_delete<S: Store + ?Sized>(
    store: &S,
    filter: EntryFilter,
) -> Result<u64, StoreError> {
    match filter {
        EntryFilter::All => {
            let count = store.len().await?;
            store.clear().await?;
            Ok(count)
        }
        EntryFilter::Keys(keys) => {
            let mut removed = 0;
            for key in dedup_keys(keys) {
                if store.remove(&key).await? {
                    removed += 1;
                }
            }
            Ok(removed)
        }
        filter => {
            let matcher = Matcher::new(&filter);
            let mut removed = 0;
            for key in store.keys().await? {
                let entry = match store.get(&key).await {
                    Ok(Some(entry)) => entry,
                    Ok(None) => continue,
                    Err(error) if error.is_decode() => continue,
                    Err(error) => return Err(error),
                };
                if matcher.matches(&key, &entry) && store.remove(&key).await? {
                    removed += 1;
                }
            }
            Ok(removed)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{MemoryStore, StalePolicy, StoreFuture, StoredRequest};
    use bytes::Bytes;
    use http::{HeaderMap, Version};
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::time::{Duration, UNIX_EPOCH};

    /// A store with only the required methods: every inspection goes through the defaults.
    #[derive(Debug, Default)]
    struct MapStore {
        map: Arc<Mutex<HashMap<CacheKey, Arc<StoredResponse>>>>,
    }

    impl Store for MapStore {
        fn get(&self, key: &CacheKey) -> StoreFuture<Option<Arc<StoredResponse>>> {
            let found = self.map.lock().unwrap().get(key).cloned();
            Box::pin(async move { Ok(found) })
        }
        fn put(&self, key: CacheKey, entry: Arc<StoredResponse>) -> StoreFuture<()> {
            self.map.lock().unwrap().insert(key, entry);
            Box::pin(async { Ok(()) })
        }
        fn remove(&self, key: &CacheKey) -> StoreFuture<bool> {
            let removed = self.map.lock().unwrap().remove(key).is_some();
            Box::pin(async move { Ok(removed) })
        }
        fn clear(&self) -> StoreFuture<()> {
            self.map.lock().unwrap().clear();
            Box::pin(async { Ok(()) })
        }
        fn keys(&self) -> StoreFuture<Vec<CacheKey>> {
            let keys = self.map.lock().unwrap().keys().cloned().collect();
            Box::pin(async move { Ok(keys) })
        }
    }

    fn t(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    fn entry(
        method: Method,
        url: &str,
        created_at: SystemTime,
        expires: Option<SystemTime>,
    ) -> StoredResponse {
        StoredResponse {
            request: StoredRequest {
                method,
                url: url.to_owned(),
                headers: HeaderMap::new(),
            },
            status: StatusCode::OK,
            version: Version::HTTP_11,
            headers: HeaderMap::new(),
            body: Bytes::from_static(b"body"),
            request_time: created_at,
            created_at,
            initial_age: Duration::ZERO,
            expires,
            stale: StalePolicy::default(),
            retain_until: None,
        }
    }

    fn key(n: u8) -> CacheKey {
        CacheKey::from_digest([n; 16])
    }

    /// Five entries: (key 1) GET /a created at 0, expired at 10; (2) HEAD /a created at 5,
    /// expires at 100; (3) GET /b created at 20, never expires; (4) GET /c created at 30, expires
    /// exactly at 50; (5) a 404 for GET /d created at 40, expires at 1000.
    fn fixture() -> Vec<(CacheKey, StoredResponse)> {
        let mut not_found = entry(Method::GET, "http://x.test/d", t(40), Some(t(1000)));
        not_found.status = StatusCode::NOT_FOUND;
        vec![
            (
                key(1),
                entry(Method::GET, "http://x.test/a", t(0), Some(t(10))),
            ),
            (
                key(2),
                entry(Method::HEAD, "http://x.test/a", t(5), Some(t(100))),
            ),
            (key(3), entry(Method::GET, "http://x.test/b", t(20), None)),
            (
                key(4),
                entry(Method::GET, "http://x.test/c", t(30), Some(t(50))),
            ),
            (key(5), not_found),
        ]
    }

    fn matching(filter: &EntryFilter) -> Vec<u8> {
        let mut out = Vec::new();
        for (key, entry) in fixture() {
            let by_entry = filter.matches(&key, &entry);
            let by_info = filter.matches_info(&EntryInfo::new(&key, &entry));
            let by_matcher = Matcher::new(filter).matches(&key, &entry);
            assert_eq!(by_entry, by_info, "{filter:?} on {key:?}");
            assert_eq!(by_entry, by_matcher, "{filter:?} on {key:?}");
            if by_entry {
                out.push(key.digest().unwrap()[0]);
            }
        }
        out
    }

    /// (filter, the fixture keys it matches).
    fn cases() -> Vec<(EntryFilter, Vec<u8>)> {
        vec![
            (EntryFilter::All, vec![1, 2, 3, 4, 5]),
            (EntryFilter::Expired { now: t(9) }, vec![]),
            (EntryFilter::Expired { now: t(10) }, vec![1]),
            (EntryFilter::Expired { now: t(50) }, vec![1, 4]),
            (EntryFilter::Expired { now: t(5000) }, vec![1, 2, 4, 5]),
            (EntryFilter::OlderThan(t(0)), vec![]),
            (EntryFilter::OlderThan(t(20)), vec![1, 2]),
            (EntryFilter::OlderThan(t(21)), vec![1, 2, 3]),
            (EntryFilter::Keys(vec![]), vec![]),
            (EntryFilter::Keys(vec![key(3), key(9), key(3)]), vec![3]),
            (
                EntryFilter::Urls(vec!["http://x.test/a".into()]),
                vec![1, 2],
            ),
            (
                EntryFilter::Urls(vec!["http://x.test/b".into(), "http://x.test/A".into()]),
                vec![3],
            ),
            (
                EntryFilter::custom(|info| info.status == StatusCode::NOT_FOUND),
                vec![5],
            ),
            (
                EntryFilter::custom(|info| info.method == Method::HEAD || info.expires.is_none()),
                vec![2, 3],
            ),
        ]
    }

    #[test]
    fn filters_match_the_entries_they_describe() {
        for (filter, expected) in cases() {
            assert_eq!(matching(&filter), expected, "{filter:?}");
        }
    }

    #[test]
    fn entry_info_summarizes_the_entry() {
        let (key, entry) = fixture().remove(0);
        let info = EntryInfo::new(&key, &entry);
        assert_eq!(info.key, key);
        assert_eq!(info.method, Method::GET);
        assert_eq!(info.url, "http://x.test/a");
        assert_eq!(info.status, StatusCode::OK);
        assert_eq!(info.created_at, t(0));
        assert_eq!(info.expires, Some(t(10)));
        assert_eq!(info.size, entry.size());
        assert!(!info.is_expired(t(9)));
        assert!(info.is_expired(t(10)));
        let never = EntryInfo {
            expires: None,
            ..info
        };
        assert!(!never.is_expired(t(u64::from(u32::MAX))));
    }

    #[test]
    fn debug_shows_the_filter_without_the_closure() {
        assert_eq!(format!("{:?}", EntryFilter::custom(|_| true)), "Custom(..)");
        assert_eq!(format!("{:?}", EntryFilter::All), "All");
        assert_eq!(
            format!("{:?}", EntryFilter::Urls(vec!["http://x.test/".into()])),
            "Urls([\"http://x.test/\"])"
        );
    }

    async fn filled<S: Store>(store: S) -> Arc<S> {
        for (key, entry) in fixture() {
            store.put(key, Arc::new(entry)).await.unwrap();
        }
        Arc::new(store)
    }

    async fn remaining(store: &dyn Store) -> Vec<u8> {
        let mut keys: Vec<u8> = store
            .keys()
            .await
            .unwrap()
            .iter()
            .map(|k| k.digest().unwrap()[0])
            .collect();
        keys.sort_unstable();
        keys
    }

    /// Runs every filter case on a fresh store from `new_store`: `delete` removes the matching
    /// entries, reports how many, and leaves the others.
    async fn delete_removes_what_the_filter_matches<S: Store>(new_store: impl Fn() -> S) {
        for (filter, expected) in cases() {
            let store = filled(new_store()).await;
            let removed = store.clone().delete(filter.clone()).await.unwrap();
            assert_eq!(removed, expected.len() as u64, "{filter:?}");
            let left: Vec<u8> = (1..=5).filter(|k| !expected.contains(k)).collect();
            assert_eq!(remaining(&*store).await, left, "{filter:?}");
            for k in &expected {
                assert!(store.get(&key(*k)).await.unwrap().is_none(), "{filter:?}");
            }
            // Deleting again finds nothing left to remove.
            assert_eq!(store.clone().delete(filter.clone()).await.unwrap(), 0);
        }
    }

    async fn entries_list_every_entry<S: Store>(new_store: impl Fn() -> S) {
        let store = filled(new_store()).await;
        let mut entries = store.clone().entries().await.unwrap();
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        let expected: Vec<EntryInfo> = fixture()
            .iter()
            .map(|(key, entry)| EntryInfo::new(key, entry))
            .collect();
        assert_eq!(entries, expected);
        let as_dyn: Arc<dyn Store> = store;
        assert_eq!(as_dyn.entries().await.unwrap().len(), 5);
    }

    #[tokio::test]
    async fn default_delete_on_a_store_with_only_the_required_methods() {
        delete_removes_what_the_filter_matches(MapStore::default).await;
    }

    #[tokio::test]
    async fn default_entries_on_a_store_with_only_the_required_methods() {
        entries_list_every_entry(MapStore::default).await;
    }

    #[tokio::test]
    async fn memory_store_delete_agrees_with_the_default() {
        delete_removes_what_the_filter_matches(MemoryStore::new).await;
    }

    #[tokio::test]
    async fn memory_store_entries_agree_with_the_default() {
        entries_list_every_entry(MemoryStore::new).await;
    }

    #[tokio::test]
    async fn delete_through_arc_and_dyn_forwards_to_the_store() {
        let store = filled(MemoryStore::new()).await;
        // Arc<Arc<MemoryStore>>: the `Store for Arc<T>` impl forwards to the MemoryStore override.
        let wrapped = Arc::new(store.clone());
        assert_eq!(
            wrapped
                .delete(EntryFilter::Keys(vec![key(1)]))
                .await
                .unwrap(),
            1
        );
        let as_dyn: Arc<dyn Store> = store.clone();
        assert_eq!(
            as_dyn
                .delete(EntryFilter::Expired { now: t(60) })
                .await
                .unwrap(),
            1,
            "key 4; key 1 is already gone"
        );
        assert_eq!(remaining(&*store).await, vec![2, 3, 5]);
    }

    #[tokio::test]
    async fn memory_store_leaves_out_entries_past_retention() {
        let clock = crate::ManualClock::new(t(0));
        let store = MemoryStore::builder()
            .clock(Arc::new(clock.clone()))
            .build();
        let mut retained = entry(Method::GET, "http://x.test/r", t(0), Some(t(10)));
        retained.retain_until = Some(t(20));
        store.put(key(1), Arc::new(retained)).await.unwrap();
        let store = Arc::new(store);
        clock.set(t(15));
        assert_eq!(store.clone().entries().await.unwrap().len(), 1);
        clock.set(t(20));
        assert!(store.clone().entries().await.unwrap().is_empty());
        assert_eq!(
            store.clone().delete(EntryFilter::All).await.unwrap(),
            0,
            "an entry past retention is already gone: not counted"
        );
    }

    #[tokio::test]
    async fn a_custom_predicate_is_called_once_per_entry() {
        for store in [
            Arc::new(MemoryStore::new()) as Arc<dyn Store>,
            Arc::new(MapStore::default()),
        ] {
            for (key, entry) in fixture() {
                store.put(key, Arc::new(entry)).await.unwrap();
            }
            let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let counter = calls.clone();
            let removed = store
                .clone()
                .delete(EntryFilter::custom(move |info| {
                    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    info.url.ends_with("/a")
                }))
                .await
                .unwrap();
            assert_eq!(removed, 2, "{store:?}");
            assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 5);
        }
    }
}
