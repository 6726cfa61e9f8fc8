//! A shared [Redis](https://redis.io) store for cachelayer: one cache for every instance of a
//! service, as requests-cache's users scale out with its Redis backend.
//!
//! [`RedisStore`] keeps each entry under the Redis key `{namespace}:{cache key}` as its
//! [`StoredResponse::encode`] record, with a native expiry (`SET ... PX`) at its
//! [`retain_until`](StoredResponse::retain_until), so Redis drops entries the cache may no
//! longer use. Listing and clearing walk the namespace with `SCAN MATCH` (never `KEYS`), deleting
//! in pipelined batches, so they neither block Redis nor touch other namespaces.
//!
//! **Fails fast, recovers by itself.** Every operation is bounded by the
//! [operation timeout](RedisStoreBuilder::operation_timeout) (default 500 ms): when Redis is down,
//! unreachable or slow, operations return an error within it, never hang, and the cache layer
//! treats the error as a miss (it fails open). The connection is a multiplexed
//! [`redis::aio::ConnectionManager`], made on first use and re-made in the
//! background after Redis comes back. [`RedisStore::errors`] counts the failed operations.
//!
//! **Checks what it reads.** Every record carries a BLAKE3 digest of its bytes
//! ([`StoredResponse::encode`]); a record whose digest does not match (a changed byte, a
//! truncated value) is a miss, is deleted, and is counted
//! ([`Store::corrupt_records_dropped`]). The plain digest detects corruption, not forgery:
//! anyone who can write to the namespace can compute it too, and so make every instance serve a
//! response of their choosing. When clients other than the caches can write to this Redis, set
//! an [integrity key](RedisStoreBuilder::integrity_key): records then carry a keyed BLAKE3 MAC
//! that only holders of the key can compute, and any other record is dropped as corrupt.
//!
//! ```no_run
//! use cachelayer_redis::RedisStore;
//! use cachelayer_store::{IntegrityKey, Store};
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), cachelayer_store::StoreError> {
//! // `RedisStore::connect("redis://127.0.0.1:6379").await?` for the defaults.
//! # let secret_from_the_environment = b"a long random secret".to_vec();
//! let store = RedisStore::builder("redis://127.0.0.1:6379/0")
//!     .namespace("api-cache")
//!     .operation_timeout(Duration::from_millis(200))
//!     .integrity_key(IntegrityKey::derive(&secret_from_the_environment))
//!     .build()?; // connects on first use: the cache can start while Redis is down
//! store.ping().await?; // or fail at start-up when it does not answer
//! println!("{} entries", store.len().await?);
//! // Give it to the cache: `CacheLayer::with_store(store, settings)`.
//! # Ok(())
//! # }
//! ```

use cachelayer_store::{
    CacheKey, Clock, DecodeError, EntryFilter, EntryInfo, IntegrityKey, Store, StoreError,
    StoreFuture, StoredResponse, SystemClock, default_delete,
};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisResult};
use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};
use tokio::sync::OnceCell;

/// The default [namespace](RedisStoreBuilder::namespace): `"cachelayer"`, so keys are
/// `cachelayer:{cache key}`.
pub const DEFAULT_NAMESPACE: &str = "cachelayer";

/// The default [operation timeout](RedisStoreBuilder::operation_timeout): 500 milliseconds.
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_millis(500);

/// How many keys one `SCAN` round asks for, and how many deletions one pipeline carries.
const BATCH: usize = 500;

/// How many records one `MGET` reads when listing or filtering (records may be megabytes).
const MGET_BATCH: usize = 32;

/// Deletes `KEYS[1]` only while it still holds `ARGV[1]`: a record read as unusable is removed
/// unless another writer replaced it meanwhile.
const DELETE_IF_UNCHANGED: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

/// A store in Redis, shared by every process that uses the same server and namespace.
///
/// See the [crate documentation](crate). Make one with [`RedisStore::connect`] (connects and
/// checks) or [`RedisStore::builder`] (which, like every store builder of cachelayer, ends in
/// [`build`](RedisStoreBuilder::build), and does not connect). Cloning is cheap; clones share the connection and the error count.
///
/// [`Store::entries`] and [`Store::delete`] are overridden: they walk the namespace with `SCAN`,
/// read records with `MGET` (32 at a time) only when the filter needs them (not for
/// [`EntryFilter::All`] and [`EntryFilter::Keys`]), and delete with pipelined `UNLINK`s, whose
/// replies give the count.
///
/// Every operation must be awaited inside a Tokio runtime. Each returns within the operation
/// timeout (`keys`, `len` and `clear` within it per round trip: one `SCAN` page or one batch of
/// deletions), with [`StoreError::is_timeout`] when it ran out, or [`StoreError::is_backend`]
/// when Redis refused the connection or the command.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    config: ConnectionManagerConfig,
    manager: OnceCell<ConnectionManager>,
    /// `{namespace}:`
    prefix: String,
    timeout: Duration,
    clock: Arc<dyn Clock>,
    errors: AtomicU64,
    integrity_key: Option<IntegrityKey>,
    corrupt_dropped: AtomicU64,
}

/// Builds a [`RedisStore`]: see [`RedisStore::builder`].
#[must_use]
pub struct RedisStoreBuilder {
    url: String,
    namespace: String,
    timeout: Duration,
    clock: Arc<dyn Clock>,
    integrity_key: Option<IntegrityKey>,
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStoreBuilder")
            .field("url", &redact(&self.url))
            .field("namespace", &self.namespace)
            .field("timeout", &self.timeout)
            .field("clock", &self.clock)
            .field("integrity_key", &self.integrity_key.is_some())
            .finish()
    }
}

/// The URL without its password, for logs and `Debug`.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

impl RedisStoreBuilder {
    /// The prefix of every key: entries are stored under `{namespace}:{cache key}`, and `keys`,
    /// `len` and `clear` see only `{namespace}:*`. Caches that must not share entries use
    /// different namespaces. Default: [`DEFAULT_NAMESPACE`] (`"cachelayer"`).
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// The longest an operation may take, connecting included (for `keys`, `len` and `clear`:
    /// each round trip). Past it the operation fails with [`StoreError::is_timeout`] and the
    /// cache treats it as a miss. Default: [`DEFAULT_OPERATION_TIMEOUT`], 500 milliseconds.
    /// Keep it well under what a miss costs (a request to the origin); on a local network Redis
    /// answers in well under a millisecond.
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The clock that decides when entries are past their
    /// [`retain_until`](StoredResponse::retain_until): an entry is stored with a Redis expiry of
    /// `retain_until` minus this clock's now. Default: [`SystemClock`]. Use the same clock as the
    /// cache layer.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// A secret key that authenticates the records: each carries a keyed BLAKE3 hash (a MAC,
    /// [`StoredResponse::encode_keyed`]) instead of a plain BLAKE3 digest, and a record that does
    /// not carry the MAC of this key is a miss, deleted and counted as corrupt. Default: none
    /// (a plain digest, which detects corruption but not forgery).
    ///
    /// Set it when anything but the caches can write to the Redis namespace (a shared Redis,
    /// other services, a compromised client): without it, such a writer can store a response of
    /// their choosing that every instance serves. Every instance sharing the namespace must use
    /// the same key; changing it makes every stored entry a miss (each is deleted when read).
    /// Take 32 random bytes (`IntegrityKey::new`, or `[u8; 32]`), or derive them from a secret
    /// ([`IntegrityKey::derive`]); keep it with the other secrets, not in the Redis URL or
    /// source. `Debug` output shows only whether one is set.
    pub fn integrity_key(mut self, key: impl Into<IntegrityKey>) -> Self {
        self.integrity_key = Some(key.into());
        self
    }

    /// Builds the store without connecting: the connection is made by the first operation (and
    /// re-made by later ones while Redis is unreachable). A cache can start while Redis is down.
    /// To find out at start-up whether Redis answers, call [`RedisStore::ping`] next (what
    /// [`RedisStore::connect`] does).
    ///
    /// # Errors
    /// [`StoreError::is_backend`] when the URL is not a Redis URL this build supports:
    /// `redis://[[user]:password@]host[:port][/db]` or `redis+unix:///path/to/socket` (not
    /// `rediss://`: TLS is not enabled).
    pub fn build(self) -> Result<RedisStore, StoreError> {
        let client = Client::open(self.url.as_str()).map_err(StoreError::backend)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            // Few, quick retries: while Redis is down an operation should fail with the
            // connection error, not wait out its timeout behind a long backoff. The next
            // operation starts a new attempt.
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(self.timeout);
        Ok(RedisStore {
            inner: Arc::new(Inner {
                client,
                config,
                manager: OnceCell::new(),
                prefix: format!("{}:", self.namespace),
                timeout: self.timeout,
                clock: self.clock,
                errors: AtomicU64::new(0),
                integrity_key: self.integrity_key,
                corrupt_dropped: AtomicU64::new(0),
            }),
        })
    }
}

impl RedisStore {
    /// Connects to the Redis server at `url` (`redis://host:port/db`) with the default
    /// namespace (`"cachelayer"`), operation timeout (500 ms) and clock, and checks that it
    /// answers (`PING`, within the operation timeout): `RedisStore::builder(url).build()`, then
    /// [`ping`](Self::ping).
    ///
    /// # Errors
    /// As [`RedisStoreBuilder::build`]; and [`StoreError::is_backend`] or
    /// [`StoreError::is_timeout`] when Redis cannot be reached or does not answer within the
    /// operation timeout.
    pub async fn connect(url: impl Into<String>) -> Result<RedisStore, StoreError> {
        let store = Self::builder(url).build()?;
        store.ping().await?;
        Ok(store)
    }

    /// A builder for a store on the Redis server at `url`.
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: url.into(),
            namespace: DEFAULT_NAMESPACE.to_owned(),
            timeout: DEFAULT_OPERATION_TIMEOUT,
            clock: Arc::new(SystemClock),
            integrity_key: None,
        }
    }

    /// The namespace: keys are `{namespace}:{cache key}`.
    pub fn namespace(&self) -> &str {
        self.inner
            .prefix
            .strip_suffix(':')
            .unwrap_or(&self.inner.prefix)
    }

    /// The operation timeout.
    pub fn operation_timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// The Redis key an entry for `key` is stored under: `{namespace}:{key}`.
    pub fn redis_key(&self, key: &CacheKey) -> String {
        format!("{}{key}", self.inner.prefix)
    }

    /// How many operations of this store (and its clones) have failed since it was built:
    /// timeouts, refused connections, Redis errors. Records that could not be decoded are
    /// misses, not errors, and are not counted here (corrupt ones are counted by
    /// [`Store::corrupt_records_dropped`]).
    pub fn errors(&self) -> u64 {
        self.inner.errors.load(Ordering::Relaxed)
    }

    /// `true` when records are authenticated with an
    /// [integrity key](RedisStoreBuilder::integrity_key).
    pub fn has_integrity_key(&self) -> bool {
        self.inner.integrity_key.is_some()
    }

    /// The record stored for `entry`: [`StoredResponse::encode`], or
    /// [`encode_keyed`](StoredResponse::encode_keyed) with the store's integrity key.
    pub fn encode(&self, entry: &StoredResponse) -> Vec<u8> {
        self.inner.encode(entry)
    }

    /// Checks that Redis answers (`PING`) within the operation timeout.
    ///
    /// # Errors
    /// [`StoreError::is_timeout`] when it does not answer in time; [`StoreError::is_backend`]
    /// when the connection is refused or Redis answers with an error.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.inner.query::<()>(&redis::cmd("PING")).await
    }
}

impl Inner {
    fn encode(&self, entry: &StoredResponse) -> Vec<u8> {
        match &self.integrity_key {
            Some(key) => entry.encode_keyed(key),
            None => entry.encode(),
        }
    }

    fn decode(&self, record: &[u8]) -> Result<StoredResponse, DecodeError> {
        match &self.integrity_key {
            Some(key) => StoredResponse::decode_keyed(record, key),
            None => StoredResponse::decode(record),
        }
    }

    /// Drops a record that could not be decoded (unless it was replaced meanwhile), logging it,
    /// and counts it when it was corrupt and this call deleted it.
    async fn drop_unreadable(&self, redis_key: &str, record: &[u8], error: &DecodeError) {
        tracing::warn!(key = %redis_key, %error, "deleting an unreadable cache record");
        if self.delete_if_unchanged(redis_key, record).await && error.is_corrupt() {
            self.corrupt_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    async fn connection(&self) -> RedisResult<ConnectionManager> {
        self.manager
            .get_or_try_init(|| async {
                ConnectionManager::new_lazy_with_config(self.client.clone(), self.config.clone())
            })
            .await
            .cloned()
    }

    /// Sends one command within the operation timeout (connecting first when needed), counting a
    /// failure.
    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, StoreError> {
        let attempt = async {
            let mut conn = self.connection().await?;
            cmd.query_async::<T>(&mut conn).await
        };
        self.counted(tokio::time::timeout(self.timeout, attempt).await)
    }

    /// Sends one pipeline within the operation timeout, counting a failure.
    async fn query_pipeline<T: redis::FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
    ) -> Result<T, StoreError> {
        let attempt = async {
            let mut conn = self.connection().await?;
            pipe.query_async::<T>(&mut conn).await
        };
        self.counted(tokio::time::timeout(self.timeout, attempt).await)
    }

    fn counted<T>(
        &self,
        result: Result<RedisResult<T>, tokio::time::error::Elapsed>,
    ) -> Result<T, StoreError> {
        let error = match result {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) if e.is_timeout() => StoreError::timeout(),
            Ok(Err(e)) => StoreError::backend(e),
            Err(_elapsed) => StoreError::timeout(),
        };
        self.errors.fetch_add(1, Ordering::Relaxed);
        Err(error)
    }

    /// Deletes an unusable record unless it was replaced meanwhile; failures are logged.
    /// `true` when this call deleted it.
    async fn delete_if_unchanged(&self, redis_key: &str, record: &[u8]) -> bool {
        let mut eval = redis::cmd("EVAL");
        eval.arg(DELETE_IF_UNCHANGED)
            .arg(1)
            .arg(redis_key)
            .arg(record);
        match self.query::<i64>(&eval).await {
            Ok(deleted) => deleted > 0,
            Err(error) => {
                tracing::warn!(key = redis_key, %error, "could not delete a cache record");
                false
            }
        }
    }

    /// One `SCAN` round over the namespace: the next cursor (0 at the end) and a batch of
    /// keys (a key may come in more than one round).
    async fn scan(&self, cursor: u64) -> Result<(u64, Vec<Vec<u8>>), StoreError> {
        let mut scan = redis::cmd("SCAN");
        scan.arg(cursor)
            .arg("MATCH")
            .arg(format!("{}*", glob_escape(&self.prefix)))
            .arg("COUNT")
            .arg(BATCH);
        self.query(&scan).await
    }

    async fn keys(&self) -> Result<HashSet<CacheKey>, StoreError> {
        let mut found = HashSet::new();
        let prefix = self.prefix.as_bytes();
        let mut cursor = 0;
        loop {
            let (next, batch) = self.scan(cursor).await?;
            for raw in batch {
                let Some(rest) = raw.strip_prefix(prefix) else {
                    continue;
                };
                match std::str::from_utf8(rest) {
                    Ok(key) => {
                        found.insert(CacheKey::custom(key));
                    }
                    Err(_) => tracing::debug!("skipping a key that is not UTF-8"),
                }
            }
            if next == 0 {
                return Ok(found);
            }
            cursor = next;
        }
    }

    /// Unlinks `keys` (Redis keys) in pipelined batches; returns how many existed.
    async fn unlink(&self, keys: &[impl redis::ToRedisArgs + Sync]) -> Result<u64, StoreError> {
        let mut removed = 0;
        for chunk in keys.chunks(BATCH) {
            let mut pipe = redis::pipe();
            for key in chunk {
                pipe.cmd("UNLINK").arg(key);
            }
            removed += self
                .query_pipeline::<Vec<u64>>(&pipe)
                .await?
                .into_iter()
                .sum::<u64>();
        }
        Ok(removed)
    }

    /// The entries a `get` would return under `keys` (Redis keys from a `SCAN`), read with
    /// `MGET` in small batches: their Redis key, cache key and entry. Records that cannot be
    /// decoded are deleted (and counted when corrupt), as `get` does.
    async fn load(
        &self,
        keys: Vec<Vec<u8>>,
    ) -> Result<Vec<(Vec<u8>, CacheKey, StoredResponse)>, StoreError> {
        let now = self.clock.now();
        let prefix = self.prefix.as_bytes();
        let mut out = Vec::new();
        let mut keys = keys.into_iter().peekable();
        while keys.peek().is_some() {
            let chunk: Vec<Vec<u8>> = keys.by_ref().take(MGET_BATCH).collect();
            let mut mget = redis::cmd("MGET");
            mget.arg(&chunk);
            let records = self.query::<Vec<Option<Vec<u8>>>>(&mget).await?;
            for (redis_key, record) in chunk.into_iter().zip(records) {
                let Some(record) = record else { continue };
                let Some(key) = redis_key
                    .strip_prefix(prefix)
                    .and_then(|rest| std::str::from_utf8(rest).ok())
                    .map(CacheKey::custom)
                else {
                    continue;
                };
                match self.decode(&record) {
                    Ok(entry) if !entry.is_past_retention(now) => {
                        out.push((redis_key, key, entry));
                    }
                    Ok(_) => {}
                    Err(error) => {
                        let redis_key = String::from_utf8_lossy(&redis_key);
                        self.drop_unreadable(&redis_key, &record, &error).await;
                    }
                }
            }
        }
        Ok(out)
    }

    async fn entries(&self) -> Result<Vec<EntryInfo>, StoreError> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        let mut cursor = 0;
        loop {
            let (next, batch) = self.scan(cursor).await?;
            let batch = batch
                .into_iter()
                .filter(|key| seen.insert(key.clone()))
                .collect();
            for (_, key, entry) in self.load(batch).await? {
                out.push(EntryInfo::new(&key, &entry));
            }
            if next == 0 {
                return Ok(out);
            }
            cursor = next;
        }
    }

    /// Deletes the entries `filter` matches (all but `All` and `Keys`, which need no reading).
    async fn delete_matching(&self, filter: &EntryFilter) -> Result<u64, StoreError> {
        let urls: HashSet<&str> = match filter {
            EntryFilter::Urls(urls) => urls.iter().map(String::as_str).collect(),
            _ => HashSet::new(),
        };
        let mut removed = 0;
        let mut cursor = 0;
        loop {
            let (next, batch) = self.scan(cursor).await?;
            let victims: Vec<Vec<u8>> = self
                .load(batch)
                .await?
                .into_iter()
                .filter(|(_, key, entry)| match filter {
                    EntryFilter::Urls(_) => urls.contains(entry.request.url.as_str()),
                    filter => filter.matches(key, entry),
                })
                .map(|(redis_key, _, _)| redis_key)
                .collect();
            removed += self.unlink(&victims).await?;
            if next == 0 {
                return Ok(removed);
            }
            cursor = next;
        }
    }

    /// Unlinks every key of the namespace; returns how many there were.
    async fn clear(&self) -> Result<u64, StoreError> {
        let mut removed = 0;
        let mut cursor = 0;
        loop {
            let (next, batch) = self.scan(cursor).await?;
            removed += self.unlink(&batch).await?;
            if next == 0 {
                return Ok(removed);
            }
            cursor = next;
        }
    }
}

/// Escapes the glob characters of `text` for `SCAN MATCH`.
fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\' | '^' | '-') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Milliseconds from `now` to `until`, rounded up; `None` when `until` is not after `now`.
fn millis_left(until: SystemTime, now: SystemTime) -> Option<u64> {
    let left = until.duration_since(now).ok().filter(|d| !d.is_zero())?;
    let millis = left.as_millis() + u128::from(left.subsec_nanos() % 1_000_000 != 0);
    Some(u64::try_from(millis).unwrap_or(u64::MAX))
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("namespace", &self.namespace())
            .field("timeout", &self.inner.timeout)
            .field("connected", &self.inner.manager.initialized())
            .field("errors", &self.errors())
            .field("corrupt_records_dropped", &self.corrupt_records_dropped())
            .field("integrity_key", &self.has_integrity_key())
            .finish()
    }
}

fn boxed<T, F>(future: F) -> StoreFuture<T>
where
    F: Future<Output = Result<T, StoreError>> + Send + 'static,
{
    Box::pin(future)
}

impl Store for RedisStore {
    fn kind(&self) -> &'static str {
        "redis"
    }

    fn get(&self, key: &CacheKey) -> StoreFuture<Option<Arc<StoredResponse>>> {
        let inner = self.inner.clone();
        let redis_key = self.redis_key(key);
        boxed(async move {
            let mut get = redis::cmd("GET");
            get.arg(&redis_key);
            let Some(record) = inner.query::<Option<Vec<u8>>>(&get).await? else {
                return Ok(None);
            };
            match inner.decode(&record) {
                Ok(entry) if !entry.is_past_retention(inner.clock.now()) => {
                    Ok(Some(Arc::new(entry)))
                }
                Ok(_past_retention) => {
                    inner.delete_if_unchanged(&redis_key, &record).await;
                    Ok(None)
                }
                Err(error) => {
                    inner.drop_unreadable(&redis_key, &record, &error).await;
                    Ok(None)
                }
            }
        })
    }

    fn put(&self, key: CacheKey, entry: Arc<StoredResponse>) -> StoreFuture<()> {
        let inner = self.inner.clone();
        let redis_key = self.redis_key(&key);
        boxed(async move {
            let ttl = match entry.retain_until {
                None => None,
                Some(until) => match millis_left(until, inner.clock.now()) {
                    Some(ms) => Some(ms),
                    None => {
                        // Already past retention: not stored, and the previous entry goes.
                        let mut del = redis::cmd("DEL");
                        del.arg(&redis_key);
                        return inner.query::<()>(&del).await;
                    }
                },
            };
            let mut set = redis::cmd("SET");
            set.arg(&redis_key).arg(inner.encode(&entry));
            if let Some(ms) = ttl {
                set.arg("PX").arg(ms);
            }
            inner.query::<()>(&set).await
        })
    }

    fn remove(&self, key: &CacheKey) -> StoreFuture<bool> {
        let inner = self.inner.clone();
        let mut del = redis::cmd("DEL");
        del.arg(self.redis_key(key));
        boxed(async move { Ok(inner.query::<u64>(&del).await? > 0) })
    }

    fn clear(&self) -> StoreFuture<()> {
        let inner = self.inner.clone();
        boxed(async move { inner.clear().await.map(|_| ()) })
    }

    fn keys(&self) -> StoreFuture<Vec<CacheKey>> {
        let inner = self.inner.clone();
        boxed(async move { Ok(inner.keys().await?.into_iter().collect()) })
    }

    fn len(&self) -> StoreFuture<u64> {
        let inner = self.inner.clone();
        boxed(async move { Ok(inner.keys().await?.len() as u64) })
    }

    fn entries(self: Arc<Self>) -> StoreFuture<Vec<EntryInfo>> {
        boxed(async move { self.inner.entries().await })
    }

    fn delete(self: Arc<Self>, filter: EntryFilter) -> StoreFuture<u64> {
        boxed(async move {
            match filter {
                EntryFilter::All => self.inner.clear().await,
                EntryFilter::Keys(keys) => {
                    let keys: HashSet<String> =
                        keys.iter().map(|key| self.redis_key(key)).collect();
                    let keys: Vec<String> = keys.into_iter().collect();
                    self.inner.unlink(&keys).await
                }
                EntryFilter::Expired { .. }
                | EntryFilter::OlderThan(_)
                | EntryFilter::Urls(_)
                | EntryFilter::Custom(_) => self.inner.delete_matching(&filter).await,
                other => default_delete(&*self, other).await,
            }
        })
    }

    /// Records found corrupt (by `get`, `entries` and `delete`) and deleted by this store and
    /// its clones since it was built.
    fn corrupt_records_dropped(&self) -> u64 {
        self.inner.corrupt_dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_characters_are_escaped() {
        assert_eq!(glob_escape("cachelayer:"), "cachelayer:");
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }

    #[test]
    fn millis_left_rounds_up_and_is_none_when_past() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(millis_left(now + Duration::from_micros(1500), now), Some(2));
        assert_eq!(millis_left(now + Duration::from_secs(3), now), Some(3000));
        assert_eq!(millis_left(now, now), None);
        assert_eq!(millis_left(now - Duration::from_secs(1), now), None);
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("redis://user:secret@host:6379/0"),
            "redis://user:***@host:6379/0"
        );
        assert_eq!(redact("redis://host:6379"), "redis://host:6379");
    }
}
