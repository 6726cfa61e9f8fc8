use crate::inspect::{EntryFilter, EntryInfo, Matcher, dedup_keys};
use crate::{CacheKey, Clock, Store, StoreFuture, StoredResponse, SystemClock};
use moka::Expiry;
use moka::future::Cache;
use moka::ops::compute::{CompResult, Op};
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

/// The default [`MemoryStore`] capacity: 64 MiB of entries (as [`MemoryStore`] weighs them).
pub const DEFAULT_MAX_CAPACITY: u64 = 64 * 1024 * 1024;

/// The memory [`MemoryStore`] spends on each entry besides the entry and its key, in bytes:
/// moka's bookkeeping (the key's `Arc`, the value entry and its metadata, the access-order and
/// timer-wheel nodes, the hash table bucket and slot) and the entry's `Arc`. Part of an entry's
/// weight.
pub const MEMORY_ENTRY_OVERHEAD: usize = 480;

/// An in-process store on [`moka`]'s concurrent cache: the embedded default.
///
/// - Bounded by bytes, and the bound is the memory the entries use. Each entry weighs
///
///   ```text
///   weight = StoredResponse::size()  (body, URL, header names and values, with per-field
///                                     and per-entry overheads: see its documentation)
///          + key                     (0 for digest keys; 16 + length + 16 for custom keys)
///          + MEMORY_ENTRY_OVERHEAD       (480: moka's per-entry structures)
///   ```
///
///   in bytes; when the total passes [`max_capacity`](MemoryStoreBuilder::max_capacity), moka
///   evicts the entries least likely to be used again (TinyLFU admission, LRU eviction). Up to
///   64 recent writes wait to be applied in a batch, and the allocator keeps some freed memory:
///   measured with glibc, a 16 MiB store given a million puts of 100 B to 64 KiB bodies held
///   1.23 times its bound in resident memory (the `memory_rss_mixed` test; 4.2 times before
///   entries were compacted and weighed as they are).
/// - Large bodies and glibc: after the first large allocations (128 KiB and more) are freed,
///   glibc raises its mmap threshold and serves later ones from a heap that does not shrink: a
///   64 MiB store of 1 MiB bodies held 2.6 times its bound. A fixed threshold
///   (`MALLOC_MMAP_THRESHOLD_=131072` or `GLIBC_TUNABLES=glibc.malloc.mmap_threshold=131072` in
///   the process's environment) gives such bodies back when they are evicted: 1.1 times (the
///   `memory_rss_large` test).
/// - Entries are [compacted](StoredResponse::compact) on [`put`](Store::put): header values
///   and bodies up to 64 KiB are copied out of the (much larger) buffers they may be slices of,
///   so an entry keeps alive only what it weighs. An `Arc` that is put under several keys in a
///   row (a response stored under its variant key and its primary key) is compacted once and
///   its copy shared by the keys (each key still weighs it fully). A body over 64 KiB is kept
///   as given: when it is a slice of a larger buffer, the buffer stays allocated.
/// - Entries expire on their own at their [`retain_until`](StoredResponse::retain_until) (the end of
///   their freshness plus any stale window they may still be served in).
/// - Entries are kept as `Arc<StoredResponse>`, unserialized: a hit copies nothing.
/// - Eviction and expiry work is amortized over cache operations in small batches; no request
///   waits for a full sweep.
/// - [`entries`](Store::entries) and [`delete`](Store::delete) scan the entries in place, in one
///   pass, without copying them; `delete` removes an entry only if it is still the one that
///   matched (an entry replaced during the scan is kept), and drops the entries past retention
///   it meets (without counting them).
///
/// Cloning is cheap and clones share the same entries.
#[derive(Clone)]
pub struct MemoryStore {
    /// Keys are digests of the request (uniform, not chosen by clients): a fast seeded hash
    /// (foldhash) instead of SipHash.
    cache: Cache<CacheKey, Arc<StoredResponse>, foldhash::fast::RandomState>,
    clock: Arc<dyn Clock>,
    max_capacity: u64,
    last_compacted: Arc<Mutex<Option<LastCompacted>>>,
}

/// The last shared entry `put` compacted, and its compact copy: the same `Arc` put again (under
/// another key) gets the same copy. Weak references, so that the memo keeps no entry alive (the
/// source's `Weak` keeps its allocation, so its address cannot be reused while it is held).
struct LastCompacted {
    source: Weak<StoredResponse>,
    compacted: Weak<StoredResponse>,
}

/// `entry` compacted for storing (see [`MemoryStore`]).
fn compact_for_store(
    last: &Mutex<Option<LastCompacted>>,
    entry: Arc<StoredResponse>,
) -> Arc<StoredResponse> {
    let mut last = last.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(memo) = &*last {
        if std::ptr::eq(memo.source.as_ptr(), Arc::as_ptr(&entry)) {
            if let Some(compacted) = memo.compacted.upgrade() {
                return compacted;
            }
        }
    }
    match Arc::try_unwrap(entry) {
        // Nobody else holds it: nobody can put it again.
        Ok(owned) => Arc::new(owned.compact()),
        Err(shared) => {
            let compacted = Arc::new(shared.compact_copy());
            *last = Some(LastCompacted {
                source: Arc::downgrade(&shared),
                compacted: Arc::downgrade(&compacted),
            });
            compacted
        }
    }
}

/// The weight of an entry in a [`MemoryStore`], in bytes (see there).
fn weight(key: &CacheKey, entry: &StoredResponse) -> u32 {
    let key_bytes = match key.digest() {
        Some(_) => 0,
        None => {
            // An `Arc<str>`: two counts, the text, and the allocator's overhead.
            let mut counter = ByteCounter(0);
            let _ = fmt::Write::write_fmt(&mut counter, format_args!("{key}"));
            16 + counter.0 + 16
        }
    };
    u32::try_from(entry.size() + key_bytes + MEMORY_ENTRY_OVERHEAD).unwrap_or(u32::MAX)
}

/// Counts the bytes written to it.
struct ByteCounter(usize);

impl fmt::Write for ByteCounter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

/// Builds a [`MemoryStore`].
#[derive(Debug)]
#[must_use]
pub struct MemoryStoreBuilder {
    max_capacity: u64,
    clock: Arc<dyn Clock>,
}

impl Default for MemoryStoreBuilder {
    fn default() -> Self {
        MemoryStoreBuilder {
            max_capacity: DEFAULT_MAX_CAPACITY,
            clock: Arc::new(SystemClock),
        }
    }
}

impl MemoryStoreBuilder {
    /// The largest total weight of the entries, in bytes (see [`MemoryStore`] for how an entry
    /// is weighed). Default: [`DEFAULT_MAX_CAPACITY`] (64 MiB). An entry heavier than the whole
    /// capacity is not kept.
    pub fn max_capacity(mut self, bytes: u64) -> Self {
        self.max_capacity = bytes;
        self
    }

    /// The clock that decides when entries are past their
    /// [`retain_until`](StoredResponse::retain_until). Default: [`SystemClock`].
    /// Use the same clock as the cache layer.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Builds the store.
    pub fn build(self) -> MemoryStore {
        let cache = Cache::builder()
            .max_capacity(self.max_capacity)
            .weigher(|key: &CacheKey, entry: &Arc<StoredResponse>| -> u32 { weight(key, entry) })
            .expire_after(RetainUntil {
                clock: self.clock.clone(),
            })
            .build_with_hasher(foldhash::fast::RandomState::default());
        MemoryStore {
            cache,
            clock: self.clock,
            max_capacity: self.max_capacity,
            last_compacted: Arc::new(Mutex::new(None)),
        }
    }
}

struct RetainUntil {
    clock: Arc<dyn Clock>,
}

impl RetainUntil {
    fn remaining(&self, entry: &StoredResponse) -> Option<Duration> {
        let until = entry.retain_until?;
        Some(
            until
                .duration_since(self.clock.now())
                .unwrap_or(Duration::ZERO),
        )
    }
}

impl Expiry<CacheKey, Arc<StoredResponse>> for RetainUntil {
    fn expire_after_create(
        &self,
        _key: &CacheKey,
        entry: &Arc<StoredResponse>,
        _created_at: Instant,
    ) -> Option<Duration> {
        self.remaining(entry)
    }

    fn expire_after_update(
        &self,
        _key: &CacheKey,
        entry: &Arc<StoredResponse>,
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        self.remaining(entry)
    }
}

impl MemoryStore {
    /// A store with the default settings (64 MiB, system clock).
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder to set the capacity and clock.
    pub fn builder() -> MemoryStoreBuilder {
        MemoryStoreBuilder::default()
    }

    /// The total weight of the entries, in bytes (see [`MemoryStore`]; approximate: moka applies
    /// pending writes in batches, which [`len`](Store::len) applies first).
    pub fn weighted_size(&self) -> u64 {
        self.cache.weighted_size()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("entries", &self.cache.entry_count())
            .field("weighted_size", &self.cache.weighted_size())
            .field("max_capacity", &self.max_capacity)
            .finish()
    }
}

impl Store for MemoryStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn get(&self, key: &CacheKey) -> StoreFuture<Option<Arc<StoredResponse>>> {
        let cache = self.cache.clone();
        let clock = self.clock.clone();
        let key = key.clone();
        Box::pin(async move {
            Ok(cache
                .get(&key)
                .await
                // The clock is read only for entries with a retention limit.
                .filter(|entry| {
                    entry.retain_until.is_none() || !entry.is_past_retention(clock.now())
                }))
        })
    }

    /// Answers at once: moka's lookup never waits.
    fn get_now(
        &self,
        key: &CacheKey,
    ) -> Option<Result<Option<Arc<StoredResponse>>, crate::StoreError>> {
        let lookup = std::pin::pin!(self.cache.get(key));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match lookup.poll(&mut cx) {
            std::task::Poll::Ready(found) => Some(Ok(found.filter(|entry| {
                entry.retain_until.is_none() || !entry.is_past_retention(self.clock.now())
            }))),
            std::task::Poll::Pending => None,
        }
    }

    /// Stores a [compacted](StoredResponse::compact) copy of `entry` (see [`MemoryStore`]).
    fn put(&self, key: CacheKey, entry: Arc<StoredResponse>) -> StoreFuture<()> {
        let cache = self.cache.clone();
        let last_compacted = self.last_compacted.clone();
        Box::pin(async move {
            // Compacted when the write runs, not when it is made: by then the caller has often
            // dropped its other references, and the entry can be compacted in place.
            let entry = compact_for_store(&last_compacted, entry);
            cache.insert(key, entry).await;
            Ok(())
        })
    }

    fn remove(&self, key: &CacheKey) -> StoreFuture<bool> {
        let cache = self.cache.clone();
        let key = key.clone();
        Box::pin(async move { Ok(cache.remove(&key).await.is_some()) })
    }

    fn clear(&self) -> StoreFuture<()> {
        let cache = self.cache.clone();
        Box::pin(async move {
            cache.invalidate_all();
            cache.run_pending_tasks().await;
            Ok(())
        })
    }

    fn keys(&self) -> StoreFuture<Vec<CacheKey>> {
        let cache = self.cache.clone();
        let now = self.clock.now();
        Box::pin(async move {
            Ok(cache
                .iter()
                .filter(|(_, entry)| !entry.is_past_retention(now))
                .map(|(key, _)| (*key).clone())
                .collect())
        })
    }

    fn len(&self) -> StoreFuture<u64> {
        let cache = self.cache.clone();
        Box::pin(async move {
            cache.run_pending_tasks().await;
            Ok(cache.entry_count())
        })
    }

    fn entries(self: Arc<Self>) -> StoreFuture<Vec<EntryInfo>> {
        Box::pin(async move {
            let now = self.clock.now();
            Ok(self
                .cache
                .iter()
                .filter(|(_, entry)| !entry.is_past_retention(now))
                .map(|(key, entry)| EntryInfo::new(&key, &entry))
                .collect())
        })
    }

    fn delete(self: Arc<Self>, filter: EntryFilter) -> StoreFuture<u64> {
        Box::pin(async move {
            let now = self.clock.now();
            let mut removed = 0;
            match filter {
                EntryFilter::All => {
                    removed = self
                        .cache
                        .iter()
                        .filter(|(_, entry)| !entry.is_past_retention(now))
                        .count() as u64;
                    self.cache.invalidate_all();
                }
                EntryFilter::Keys(keys) => {
                    for key in dedup_keys(keys) {
                        if let Some(entry) = self.cache.remove(&key).await {
                            if !entry.is_past_retention(now) {
                                removed += 1;
                            }
                        }
                    }
                }
                filter => {
                    // Entries past retention met on the way are dropped too (they are already
                    // gone for `get`), but not counted.
                    let matcher = Matcher::new(&filter);
                    let matched: Vec<(Arc<CacheKey>, Arc<StoredResponse>)> = self
                        .cache
                        .iter()
                        .filter(|(key, entry)| {
                            entry.is_past_retention(now) || matcher.matches(key, entry)
                        })
                        .collect();
                    for (key, seen) in matched {
                        // Removed only if it is still the entry that matched.
                        let result = self
                            .cache
                            .entry_by_ref(&*key)
                            .and_compute_with(|current| {
                                let same = current.is_some_and(|c| Arc::ptr_eq(c.value(), &seen));
                                std::future::ready(if same { Op::Remove } else { Op::Nop })
                            })
                            .await;
                        if matches!(result, CompResult::Removed(_)) && !seen.is_past_retention(now)
                        {
                            removed += 1;
                        }
                    }
                }
            }
            // Apply the removals to the entry count and weighted size now.
            self.cache.run_pending_tasks().await;
            Ok(removed)
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{StalePolicy, StoredRequest};
    use bytes::Bytes;
    use http::{HeaderMap, HeaderValue, Method, StatusCode, Version};
    use std::time::SystemTime;

    fn entry(buffer: &Bytes) -> StoredResponse {
        let mut headers = HeaderMap::new();
        headers.insert(
            "etag",
            HeaderValue::from_maybe_shared(buffer.slice(0..8)).unwrap(),
        );
        let now = SystemTime::now();
        StoredResponse {
            request: StoredRequest {
                method: Method::GET,
                url: "http://example.com/a".into(),
                headers: HeaderMap::new(),
            },
            status: StatusCode::OK,
            version: Version::HTTP_11,
            headers,
            body: buffer.slice(100..200),
            request_time: now,
            created_at: now,
            initial_age: Duration::ZERO,
            expires: None,
            stale: StalePolicy::default(),
            retain_until: None,
        }
    }

    fn within(inner: &[u8], outer: &[u8]) -> bool {
        outer.as_ptr_range().contains(&inner.as_ptr())
    }

    #[tokio::test]
    async fn put_stores_a_compact_copy() {
        let buffer = Bytes::from(vec![b'x'; 64 * 1024]);
        let store = MemoryStore::new();
        let original = entry(&buffer);
        let key = CacheKey::from_digest([1; 16]);
        store
            .put(key.clone(), Arc::new(original.clone()))
            .await
            .unwrap();
        let stored = store.get(&key).await.unwrap().unwrap();
        assert_eq!(*stored, original);
        assert!(!within(&stored.body, &buffer), "the body was copied");
        assert!(!within(stored.headers["etag"].as_bytes(), &buffer));
    }

    #[tokio::test]
    async fn one_entry_put_under_several_keys_is_compacted_once() {
        let buffer = Bytes::from(vec![b'x'; 64 * 1024]);
        let store = MemoryStore::new();
        let shared = Arc::new(entry(&buffer));
        let (variant, primary) = (CacheKey::custom("variant"), CacheKey::custom("primary"));
        // As the cache layer does: both writes made, then run in turn.
        let first = store.put(variant.clone(), shared.clone());
        let second = store.put(primary.clone(), shared);
        first.await.unwrap();
        second.await.unwrap();
        let a = store.get(&variant).await.unwrap().unwrap();
        let b = store.get(&primary).await.unwrap().unwrap();
        assert!(Arc::ptr_eq(&a, &b), "one compact copy, shared by the keys");
        assert!(!within(&a.body, &buffer));
    }

    #[tokio::test]
    async fn an_entry_weighs_its_size_bookkeeping_and_key() {
        let buffer = Bytes::from(vec![b'x'; 1024]);
        let store = MemoryStore::new();
        let entry = entry(&buffer);
        let size = entry.size();
        store
            .put(CacheKey::from_digest([1; 16]), Arc::new(entry.clone()))
            .await
            .unwrap();
        store.len().await.unwrap();
        assert_eq!(
            store.weighted_size(),
            (size + MEMORY_ENTRY_OVERHEAD) as u64,
            "a digest key is inline"
        );
        store
            .put(CacheKey::custom("twelve chars"), Arc::new(entry))
            .await
            .unwrap();
        store.len().await.unwrap();
        assert_eq!(
            store.weighted_size(),
            (2 * (size + MEMORY_ENTRY_OVERHEAD) + 16 + 12 + 16) as u64,
            "a custom key is an Arc<str>"
        );
    }
}
