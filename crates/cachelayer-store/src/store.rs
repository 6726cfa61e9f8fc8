use crate::inspect::{self, EntryFilter, EntryInfo};
use crate::{CacheKey, StoreError, StoredResponse};
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// The future a [`Store`] operation returns: boxed, `Send` and `'static`, so that a cache can hold
/// it across awaits without borrowing the store.
pub type StoreFuture<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'static>>;

/// What [`Store::put_now`] did.
#[derive(Debug)]
pub enum PutNow {
    /// The write is done: its outcome.
    Done(Result<(), StoreError>),
    /// The store writes only through [`Store::put`]'s future: the key and the entry, given back.
    Later(CacheKey, Arc<StoredResponse>),
}

/// A place to keep stored responses, by [`CacheKey`].
///
/// Object safe: a cache holds its store as `Arc<dyn Store>`, and several caches may share one.
/// Every operation returns a `'static` future; implementations clone the handles they need
/// (connection pools, cache handles) into it.
///
/// Contract (checked by the `conformance` suite):
/// - `get` returns what the last `put` for the key stored, until it is removed, cleared, evicted,
///   or past its [`retain_until`](StoredResponse::retain_until), after which it returns `None`;
/// - a record that cannot be decoded is a miss (`Ok(None)`) and is removed, never an error; one
///   that failed its integrity check is counted
///   ([`corrupt_records_dropped`](Store::corrupt_records_dropped));
/// - operations on different keys do not interfere; concurrent `put`s for one key leave one of
///   the entries whole.
///
/// Five methods are required (`get`, `put`, `remove`, `clear`, `keys`). The others have default
/// implementations built on them, correct for any store but one round trip per entry; a store
/// that can do better (one query, one scan) overrides them:
/// - [`len`](Store::len): counts `keys`;
/// - [`entries`](Store::entries): `keys`, then `get` for each (see
///   [`default_entries`](crate::default_entries));
/// - [`delete`](Store::delete): `keys`, `get` for each, `remove` for each match (see
///   [`default_delete`](crate::default_delete)).
///
/// `entries` and `delete` take the store as `Arc<Self>` (`store.clone().delete(filter)` on an
/// `Arc<dyn Store>`): their futures are `'static` and the default implementations call the store
/// again after `keys` answers, so they keep a handle to it.
#[allow(clippy::len_without_is_empty)] // `len` is a future; an `is_empty` would only repeat it.
pub trait Store: Send + Sync + Debug + 'static {
    /// The entry stored under `key`, if any.
    fn get(&self, key: &CacheKey) -> StoreFuture<Option<Arc<StoredResponse>>>;

    /// The entry stored under `key` when the store can tell at once, without a future (an
    /// in-memory store); `None` when it cannot, and the caller awaits [`get`](Self::get)
    /// instead. A cache hit on a store that answers here costs no allocation and no task
    /// machinery. Must agree with `get`. Default: `None`.
    fn get_now(&self, key: &CacheKey) -> Option<Result<Option<Arc<StoredResponse>>, StoreError>> {
        let _ = key;
        None
    }

    /// Stores `entry` under `key`, replacing any previous entry.
    fn put(&self, key: CacheKey, entry: Arc<StoredResponse>) -> StoreFuture<()>;

    /// [`put`](Self::put) done at once, without a future, when the store can (an in-memory
    /// store): [`PutNow::Done`] with the outcome; otherwise [`PutNow::Later`] gives the key and
    /// entry back, and the caller awaits `put` with them. A store write on a store that answers
    /// here costs no allocation and no task machinery. Must have the effect of `put`.
    /// Default: `Later`.
    fn put_now(&self, key: CacheKey, entry: Arc<StoredResponse>) -> PutNow {
        PutNow::Later(key, entry)
    }

    /// Removes the entry under `key`; `true` when there was one.
    fn remove(&self, key: &CacheKey) -> StoreFuture<bool>;

    /// Removes every entry.
    fn clear(&self) -> StoreFuture<()>;

    /// The keys of every entry (in no particular order).
    fn keys(&self) -> StoreFuture<Vec<CacheKey>>;

    /// The number of entries. The default counts [`keys`](Store::keys).
    fn len(&self) -> StoreFuture<u64> {
        let keys = self.keys();
        Box::pin(async move { Ok(keys.await?.len() as u64) })
    }

    /// A summary of every entry (requests-cache `filter()` / `responses`), in no particular order.
    /// Entries a `get` would not return (past retention, undecodable) are left out.
    ///
    /// The default calls [`keys`](Store::keys) and then [`get`](Store::get) for each key, in turn
    /// ([`default_entries`](crate::default_entries)); stores that can list entries in one pass
    /// override it.
    ///
    /// # Errors
    /// The store's error, when listing or reading fails.
    fn entries(self: Arc<Self>) -> StoreFuture<Vec<EntryInfo>> {
        Box::pin(async move { inspect::default_entries(&*self).await })
    }

    /// Removes the entries `filter` matches (requests-cache `delete(...)` / `clear()`), and
    /// returns how many it removed. Entries a `get` would not return (past retention,
    /// undecodable) are not counted.
    ///
    /// Entries stored while the deletion runs may or may not be removed.
    ///
    /// The default uses [`len`](Store::len) + [`clear`](Store::clear) for [`EntryFilter::All`],
    /// [`remove`](Store::remove) for [`EntryFilter::Keys`], and otherwise
    /// [`keys`](Store::keys), [`get`](Store::get) for each and `remove` for each match
    /// ([`default_delete`](crate::default_delete)); stores that can select and remove in one
    /// pass override it.
    ///
    /// # Errors
    /// The store's error, when listing, reading or removing fails; entries removed before the
    /// error stay removed.
    fn delete(self: Arc<Self>, filter: EntryFilter) -> StoreFuture<u64> {
        Box::pin(async move { inspect::default_delete(&*self, filter).await })
    }

    /// How many records this store (and its clones) found corrupt and removed since it was
    /// made: records that failed their integrity check ([`DecodeError::is_corrupt`]: changed,
    /// truncated, or written with another integrity key). Each is also logged
    /// (`tracing::warn!`). A count that grows means a failing disk, a broken writer, or someone
    /// else writing to the store's backend.
    ///
    /// Records of another format version, empty or malformed ones are removed too, but not
    /// counted. The default returns 0: right for stores that never decode records (memory);
    /// stores that do should count ([`TieredStore`](crate::TieredStore) adds its tiers' counts).
    ///
    /// [`DecodeError::is_corrupt`]: crate::DecodeError::is_corrupt
    fn corrupt_records_dropped(&self) -> u64 {
        0
    }

    /// A short lowercase name of the kind of store, for metric labels and log fields:
    /// `memory`, `sqlite`, `redis`, `tiered`. The default is `custom`.
    fn kind(&self) -> &'static str {
        "custom"
    }
}

// Compile-time check that `Store` stays object safe.
const _: Option<&dyn Store> = None;

impl<T: Store + ?Sized> Store for Arc<T> {
    fn get(&self, key: &CacheKey) -> StoreFuture<Option<Arc<StoredResponse>>> {
        (**self).get(key)
    }
    fn get_now(&self, key: &CacheKey) -> Option<Result<Option<Arc<StoredResponse>>, StoreError>> {
        (**self).get_now(key)
    }
    fn put(&self, key: CacheKey, entry: Arc<StoredResponse>) -> StoreFuture<()> {
        (**self).put(key, entry)
    }
    fn put_now(&self, key: CacheKey, entry: Arc<StoredResponse>) -> PutNow {
        (**self).put_now(key, entry)
    }
    fn remove(&self, key: &CacheKey) -> StoreFuture<bool> {
        (**self).remove(key)
    }
    fn clear(&self) -> StoreFuture<()> {
        (**self).clear()
    }
    fn keys(&self) -> StoreFuture<Vec<CacheKey>> {
        (**self).keys()
    }
    fn len(&self) -> StoreFuture<u64> {
        (**self).len()
    }
    fn entries(self: Arc<Self>) -> StoreFuture<Vec<EntryInfo>> {
        T::entries(Arc::clone(&*self))
    }
    fn delete(self: Arc<Self>, filter: EntryFilter) -> StoreFuture<u64> {
        T::delete(Arc::clone(&*self), filter)
    }
    fn corrupt_records_dropped(&self) -> u64 {
        (**self).corrupt_records_dropped()
    }
    fn kind(&self) -> &'static str {
        (**self).kind()
    }
}
