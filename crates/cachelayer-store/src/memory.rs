use crate::inspect::{EntryFilter, EntryInfo, Matcher, dedup_keys};
use crate::{CacheKey, Clock, Store, StoreFuture, StoredResponse, SystemClock};
use moka::Expiry;
use moka::future::Cache;
use moka::ops::compute::{CompResult, Op};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The default [`MemoryStore`] capacity: 64 MiB of entries (bodies, header fields and URLs, as
/// [`StoredResponse::size`] estimates them).
pub const DEFAULT_MAX_CAPACITY: u64 = 64 * 1024 * 1024;

/// An in-process store on [`moka`]'s concurrent cache: the embedded default.
///
/// - Bounded by bytes: each entry weighs [`StoredResponse::size`]; when the total passes
///   [`max_capacity`](MemoryStoreBuilder::max_capacity), moka evicts the entries least likely to be
///   used again (TinyLFU admission, LRU eviction).
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
    cache: Cache<CacheKey, Arc<StoredResponse>>,
    clock: Arc<dyn Clock>,
    max_capacity: u64,
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
    /// The largest total weight of the entries, in bytes (see [`StoredResponse::size`]).
    /// Default: [`DEFAULT_MAX_CAPACITY`] (64 MiB). An entry heavier than the whole capacity is
    /// not kept.
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
            .weigher(|_key: &CacheKey, entry: &Arc<StoredResponse>| -> u32 {
                u32::try_from(entry.size()).unwrap_or(u32::MAX)
            })
            .expire_after(RetainUntil {
                clock: self.clock.clone(),
            })
            .build();
        MemoryStore {
            cache,
            clock: self.clock,
            max_capacity: self.max_capacity,
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

    /// The total weight of the entries, in bytes (approximate: moka applies pending writes in
    /// batches).
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

    fn put(&self, key: CacheKey, entry: Arc<StoredResponse>) -> StoreFuture<()> {
        let cache = self.cache.clone();
        Box::pin(async move {
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
