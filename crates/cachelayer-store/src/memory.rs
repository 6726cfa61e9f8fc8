use crate::inspect::{EntryFilter, EntryInfo, Matcher, dedup_keys};
use crate::{CacheKey, Clock, PutNow, Store, StoreFuture, StoredResponse, SystemClock};
use quick_cache::sync::{Cache, DefaultLifecycle};
use quick_cache::{OptionsBuilder, Weighter};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, Weak};

/// The default [`MemoryStore`] capacity: 64 MiB of entries (as [`MemoryStore`] weighs them).
pub const DEFAULT_MAX_CAPACITY: u64 = 64 * 1024 * 1024;

/// The memory [`MemoryStore`] spends on each entry besides the entry and its key, in bytes:
/// quick_cache's bookkeeping (the entry's slot, with its key, value, weight and queue links; its
/// hash table index; the slot of the key it remembers after evicting it) and the allocator's
/// overhead of the entry's `Arc`. Part of an entry's weight.
pub const MEMORY_ENTRY_OVERHEAD: usize = 160;

/// Each shard of a [`MemoryStore`] holds at least this many bytes of entries (16 MiB), when
/// the capacity allows: an entry heavier than its shard's share of the capacity is not kept.
const MIN_SHARD_CAPACITY: u64 = 16 * 1024 * 1024;

/// The weight an entry is counted at, for sizing quick_cache's tables: 4 KiB.
const TYPICAL_ENTRY_WEIGHT: u64 = 4 * 1024;

/// An in-process store on [`quick_cache`]'s concurrent cache: the embedded default.
///
/// - Bounded by bytes, and the bound is the memory the entries use. Each entry weighs
///
///   ```text
///   weight = StoredResponse::size()  (body, URL, header names and values, with per-field
///                                     and per-entry overheads: see its documentation)
///          + key                     (0 for digest keys; 16 + length + 16 for custom keys)
///          + MEMORY_ENTRY_OVERHEAD       (160: quick_cache's per-entry structures)
///   ```
///
///   in bytes; when the total passes [`max_capacity`](MemoryStoreBuilder::max_capacity), the
///   store evicts at once, in the `put` that passed it, the entries least likely to be used
///   again (S3-FIFO: entries read since they were stored stay, entries never read go first, and
///   a key evicted recently is readmitted as a frequent one). Measured with glibc, a 16 MiB store
///   given a million puts of 100 B to 64 KiB bodies held 1.21 times its bound in resident memory
///   (the `memory_rss_mixed` test).
/// - The entries are spread over shards (a power of two, up to 4 per core, each holding at least
///   16 MiB when the capacity allows; one shard below 32 MiB), each with its own lock and its
///   share of the capacity: an entry heavier than 97% of its shard's share is not kept. With the
///   default 64 MiB, that is an entry of about 15.5 MiB; the cache layer's default
///   `max_body_size` is 8 MiB.
/// - Evicted entries are freed in the `put` that evicts them (after the shard's lock is
///   released), before the next body is allocated: a 64 MiB store given 2,000 puts of 1 MiB
///   bodies held 0.98 times its bound with glibc's default (dynamic) mmap threshold, 0.94 times
///   with a fixed one (`MALLOC_MMAP_THRESHOLD_=131072`; the `memory_rss_large` test).
/// - Entries are [compacted](StoredResponse::compact) on [`put`](Store::put): header values
///   and bodies up to 64 KiB are copied out of the (much larger) buffers they may be slices of,
///   so an entry keeps alive only what it weighs. An `Arc` that is put under several keys in a
///   row (a response stored under its variant key and its primary key) is compacted once and
///   its copy shared by the keys (each key still weighs it fully). A body over 64 KiB is kept
///   as given: when it is a slice of a larger buffer, the buffer stays allocated.
/// - An entry past its [`retain_until`](StoredResponse::retain_until) (the end of its freshness
///   plus any stale window it may still be served in) is gone for every operation; the `get`
///   that meets it removes it, and until then it counts toward the capacity like an entry never
///   read (it is among the first evicted). [`len`](Store::len), [`entries`](Store::entries) and
///   [`keys`](Store::keys) leave such entries out; [`delete`](Store::delete) removes the ones
///   it meets.
/// - Entries are kept as `Arc<StoredResponse>`, unserialized: a hit copies nothing, takes one
///   shard's read lock, and has no background work to feed.
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
    cache: Arc<Engine>,
    clock: Arc<dyn Clock>,
    max_capacity: u64,
    last_compacted: Arc<Mutex<Option<LastCompacted>>>,
}

type Engine = Cache<
    CacheKey,
    Weighed,
    EntryWeigher,
    foldhash::fast::RandomState,
    DefaultLifecycle<CacheKey, Weighed>,
>;

/// An entry with its weight, computed once when it is put (eviction reads weights often).
#[derive(Clone)]
struct Weighed {
    entry: Arc<StoredResponse>,
    weight: u64,
}

#[derive(Clone)]
struct EntryWeigher;

impl Weighter<CacheKey, Weighed> for EntryWeigher {
    fn weight(&self, _key: &CacheKey, value: &Weighed) -> u64 {
        value.weight
    }
}

/// The last shared entry `put` compacted, and its compact copy: the same `Arc` put again (under
/// another key) gets the same copy. Weak references, so that the memo keeps no entry alive (the
/// source's `Weak` keeps its allocation, so its address cannot be reused while it is held).
struct LastCompacted {
    source: Weak<StoredResponse>,
    compacted: Weak<StoredResponse>,
}

/// Stores `entry`, compacted, under `key`.
fn insert(
    cache: &Engine,
    last_compacted: &Mutex<Option<LastCompacted>>,
    key: CacheKey,
    entry: Arc<StoredResponse>,
) {
    let entry = compact_for_store(last_compacted, entry);
    let weight = weight(&key, &entry);
    cache.insert(key, Weighed { entry, weight });
}

/// `entry` compacted for storing (see [`MemoryStore`]).
fn compact_for_store(
    last: &Mutex<Option<LastCompacted>>,
    mut entry: Arc<StoredResponse>,
) -> Arc<StoredResponse> {
    let mut last = last.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(memo) = &*last {
        if std::ptr::eq(memo.source.as_ptr(), Arc::as_ptr(&entry)) {
            if let Some(compacted) = memo.compacted.upgrade() {
                return compacted;
            }
        }
    }
    if let Some(owned) = Arc::get_mut(&mut entry) {
        // Nobody else holds it: nobody can put it again.
        owned.compact_in_place();
        return entry;
    }
    match Arc::try_unwrap(entry) {
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
fn weight(key: &CacheKey, entry: &StoredResponse) -> u64 {
    let key_bytes = match key.digest() {
        Some(_) => 0,
        None => {
            // An `Arc<str>`: two counts, the text, and the allocator's overhead.
            let mut counter = ByteCounter(0);
            let _ = fmt::Write::write_fmt(&mut counter, format_args!("{key}"));
            16 + counter.0 + 16
        }
    };
    (entry.size() + key_bytes + MEMORY_ENTRY_OVERHEAD) as u64
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
    /// is weighed and how the capacity is shared by shards). Default: [`DEFAULT_MAX_CAPACITY`]
    /// (64 MiB). An entry heavier than its shard's share of the capacity is not kept.
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
        let cores = std::thread::available_parallelism().map_or(1, usize::from) as u64;
        // The largest power of two that gives every shard at least `MIN_SHARD_CAPACITY`, and
        // at most 4 shards per core.
        let by_capacity = (self.max_capacity / MIN_SHARD_CAPACITY).max(1);
        let shards = 1u64 << (u64::BITS - 1 - by_capacity.min(cores * 4).leading_zeros());
        let estimated_items = (self.max_capacity / TYPICAL_ENTRY_WEIGHT).clamp(32, 1 << 24);
        let options = OptionsBuilder::new()
            .weight_capacity(self.max_capacity)
            .estimated_items_capacity(estimated_items as usize)
            .shards(shards as usize)
            .build();
        // Every option is set and in range: `build` cannot fail. Should it, the defaults the
        // engine would pick anyway apply.
        let options = options.unwrap_or_else(|_| {
            OptionsBuilder::new()
                .weight_capacity(self.max_capacity)
                .estimated_items_capacity(estimated_items as usize)
                .build()
                .unwrap_or_else(|_| unreachable!("weight capacity and items are set"))
        });
        let cache = Cache::with_options(
            options,
            EntryWeigher,
            foldhash::fast::RandomState::default(),
            DefaultLifecycle::default(),
        );
        MemoryStore {
            cache: Arc::new(cache),
            clock: self.clock,
            max_capacity: self.max_capacity,
            last_compacted: Arc::new(Mutex::new(None)),
        }
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

    /// The total weight of the entries, in bytes (see [`MemoryStore`]). Entries past retention
    /// that no operation has met yet are counted.
    pub fn weighted_size(&self) -> u64 {
        self.cache.weight()
    }

    /// The entry under `key`, unless it is past retention (then it is removed).
    fn lookup(&self, key: &CacheKey) -> Option<Arc<StoredResponse>> {
        let found = self.cache.get(key)?.entry;
        // The clock is read only for entries with a retention limit.
        if found.retain_until.is_some() && found.is_past_retention(self.clock.now()) {
            self.cache
                .remove_if(key, |current| Arc::ptr_eq(&current.entry, &found));
            return None;
        }
        Some(found)
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
            .field("entries", &self.cache.len())
            .field("weighted_size", &self.cache.weight())
            .field("max_capacity", &self.max_capacity)
            .field("shards", &self.cache.num_shards())
            .finish()
    }
}

impl Store for MemoryStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn get(&self, key: &CacheKey) -> StoreFuture<Option<Arc<StoredResponse>>> {
        let found = self.lookup(key);
        Box::pin(std::future::ready(Ok(found)))
    }

    /// Answers at once: a lookup takes one shard's read lock and never waits on IO.
    fn get_now(
        &self,
        key: &CacheKey,
    ) -> Option<Result<Option<Arc<StoredResponse>>, crate::StoreError>> {
        Some(Ok(self.lookup(key)))
    }

    /// Stores a [compacted](StoredResponse::compact) copy of `entry` (see [`MemoryStore`]).
    fn put(&self, key: CacheKey, entry: Arc<StoredResponse>) -> StoreFuture<()> {
        let cache = self.cache.clone();
        let last_compacted = self.last_compacted.clone();
        Box::pin(async move {
            // Compacted when the write runs, not when it is made: by then the caller has often
            // dropped its other references, and the entry can be compacted in place.
            insert(&cache, &last_compacted, key, entry);
            Ok(())
        })
    }

    /// As [`put`](Store::put), at once: always [`PutNow::Done`].
    fn put_now(&self, key: CacheKey, entry: Arc<StoredResponse>) -> PutNow {
        insert(&self.cache, &self.last_compacted, key, entry);
        PutNow::Done(Ok(()))
    }

    // Operations that change the entries run when their future is polled, not when it is made.
    fn remove(&self, key: &CacheKey) -> StoreFuture<bool> {
        let cache = self.cache.clone();
        let key = key.clone();
        Box::pin(async move { Ok(cache.remove(&key).is_some()) })
    }

    fn clear(&self) -> StoreFuture<()> {
        let cache = self.cache.clone();
        Box::pin(async move {
            cache.clear();
            Ok(())
        })
    }

    fn keys(&self) -> StoreFuture<Vec<CacheKey>> {
        let now = self.clock.now();
        let keys = self
            .cache
            .iter()
            .filter(|(_, value)| !value.entry.is_past_retention(now))
            .map(|(key, _)| key)
            .collect();
        Box::pin(std::future::ready(Ok(keys)))
    }

    fn len(&self) -> StoreFuture<u64> {
        let now = self.clock.now();
        let len = self
            .cache
            .iter()
            .filter(|(_, value)| !value.entry.is_past_retention(now))
            .count() as u64;
        Box::pin(std::future::ready(Ok(len)))
    }

    fn entries(self: Arc<Self>) -> StoreFuture<Vec<EntryInfo>> {
        let now = self.clock.now();
        let entries = self
            .cache
            .iter()
            .filter(|(_, value)| !value.entry.is_past_retention(now))
            .map(|(key, value)| EntryInfo::new(&key, &value.entry))
            .collect();
        Box::pin(std::future::ready(Ok(entries)))
    }

    fn delete(self: Arc<Self>, filter: EntryFilter) -> StoreFuture<u64> {
        Box::pin(async move { Ok(self.delete_now(filter)) })
    }
}

impl MemoryStore {
    /// [`Store::delete`], at once.
    fn delete_now(&self, filter: EntryFilter) -> u64 {
        let now = self.clock.now();
        let mut removed = 0;
        match filter {
            EntryFilter::All => {
                removed = self
                    .cache
                    .iter()
                    .filter(|(_, value)| !value.entry.is_past_retention(now))
                    .count() as u64;
                self.cache.clear();
            }
            EntryFilter::Keys(keys) => {
                for key in dedup_keys(keys) {
                    if let Some((_, value)) = self.cache.remove(&key) {
                        if !value.entry.is_past_retention(now) {
                            removed += 1;
                        }
                    }
                }
            }
            filter => {
                // Entries past retention met on the way are dropped too (they are already
                // gone for `get`), but not counted.
                let matcher = Matcher::new(&filter);
                let matched: Vec<(CacheKey, Arc<StoredResponse>)> = self
                    .cache
                    .iter()
                    .filter(|(key, value)| {
                        value.entry.is_past_retention(now) || matcher.matches(key, &value.entry)
                    })
                    .map(|(key, value)| (key, value.entry))
                    .collect();
                for (key, seen) in matched {
                    // Removed only if it is still the entry that matched.
                    let gone = self
                        .cache
                        .remove_if(&key, |current| Arc::ptr_eq(&current.entry, &seen))
                        .is_some();
                    if gone && !seen.is_past_retention(now) {
                        removed += 1;
                    }
                }
            }
        }
        removed
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{StalePolicy, StoredRequest};
    use bytes::Bytes;
    use http::{HeaderMap, HeaderValue, Method, StatusCode, Version};
    use std::time::{Duration, SystemTime};

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
    async fn changes_happen_when_their_futures_run() {
        let buffer = Bytes::from(vec![b'x'; 1024]);
        let store = Arc::new(MemoryStore::new());
        let key = CacheKey::from_digest([1; 16]);
        drop(store.put(key.clone(), Arc::new(entry(&buffer))));
        assert!(store.get(&key).await.unwrap().is_none(), "a put never run");
        store
            .put(key.clone(), Arc::new(entry(&buffer)))
            .await
            .unwrap();
        drop(store.remove(&key));
        drop(store.clear());
        drop(store.clone().delete(EntryFilter::All));
        assert!(
            store.get(&key).await.unwrap().is_some(),
            "removals never run"
        );
        assert!(store.remove(&key).await.unwrap());
    }

    #[tokio::test]
    async fn extreme_capacities_build_and_bound() {
        let buffer = Bytes::from(vec![b'x'; 1024]);
        let key = CacheKey::from_digest([1; 16]);
        let none = MemoryStore::builder().max_capacity(0).build();
        none.put(key.clone(), Arc::new(entry(&buffer)))
            .await
            .unwrap();
        assert!(
            none.get(&key).await.unwrap().is_none(),
            "nothing fits in 0 bytes"
        );
        let huge = MemoryStore::builder().max_capacity(u64::MAX).build();
        huge.put(key.clone(), Arc::new(entry(&buffer)))
            .await
            .unwrap();
        assert!(huge.get(&key).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn an_entry_heavier_than_its_shard_is_not_kept_and_evicts_nothing() {
        let store = MemoryStore::builder().max_capacity(64 * 1024).build();
        let small = Bytes::from(vec![b's'; 1024]);
        let kept = CacheKey::from_digest([1; 16]);
        store
            .put(kept.clone(), Arc::new(entry(&small)))
            .await
            .unwrap();
        let mut heavy = entry(&small);
        heavy.body = Bytes::from(vec![b'h'; 128 * 1024]);
        let rejected = CacheKey::from_digest([2; 16]);
        store.put(rejected.clone(), Arc::new(heavy)).await.unwrap();
        assert!(store.get(&rejected).await.unwrap().is_none());
        assert!(store.get(&kept).await.unwrap().is_some());
        assert!(store.weighted_size() <= 64 * 1024);
    }

    #[tokio::test]
    async fn an_entry_past_retention_is_removed_by_the_get_that_meets_it() {
        let clock = Arc::new(crate::ManualClock::new(SystemTime::now()));
        let store = MemoryStore::builder().clock(clock.clone()).build();
        let buffer = Bytes::from(vec![b'x'; 1024]);
        let mut retained = entry(&buffer);
        retained.retain_until = Some(clock.now() + Duration::from_secs(60));
        let key = CacheKey::from_digest([1; 16]);
        store.put(key.clone(), Arc::new(retained)).await.unwrap();
        assert!(store.get(&key).await.unwrap().is_some());
        let weight = store.weighted_size();
        assert!(weight > 0);
        clock.advance(Duration::from_secs(61));
        assert_eq!(store.len().await.unwrap(), 0, "gone for len");
        assert!(store.get(&key).await.unwrap().is_none(), "gone for get");
        assert_eq!(store.weighted_size(), 0, "and its memory released");
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
