//! A persistent [SQLite](https://sqlite.org) store for cachelayer: requests-cache's default
//! backend, for Rust.
//!
//! [`SqliteStore`] keeps every entry in one database file, in `PRAGMA journal_mode=WAL` with
//! `synchronous=NORMAL`: readers never wait for the writer, and several threads and several
//! processes can share the file at once (a write waits up to
//! [`busy_timeout`](SqliteStoreBuilder::busy_timeout) for another's to finish).
//!
//! - Blocking SQLite calls never run on async worker threads: every operation takes a
//!   connection from a small pool ([`pool_size`](SqliteStoreBuilder::pool_size)) and runs on
//!   Tokio's blocking threads ([`tokio::task::spawn_blocking`]). Every operation must therefore
//!   be awaited inside a Tokio runtime.
//! - Entries are stored as [`StoredResponse::encode`] records, with their URL and times (unix
//!   milliseconds) in indexed columns, for housekeeping ([`delete_expired`](SqliteStore::delete_expired),
//!   [`delete_older_than`](SqliteStore::delete_older_than)) and listings.
//! - An entry past its [`retain_until`](StoredResponse::retain_until) (by the store's clock) and
//!   a record that cannot be decoded are misses, and are deleted when read.
//! - Optionally bounded ([`max_size`](SqliteStoreBuilder::max_size)): when the records take more
//!   bytes than that, the least recently used entries are deleted.
//!
//! ```
//! use cachelayer_sqlite::SqliteStore;
//! use cachelayer_store::Store;
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), cachelayer_store::StoreError> {
//! # let dir = tempfile::tempdir().expect("a temporary directory");
//! # let path = dir.path().join("http_cache.sqlite");
//! // `SqliteStore::open(path)` for the defaults.
//! let store = SqliteStore::builder(&path)
//!     .max_size(512 * 1024 * 1024) // bytes of records, least recently used evicted first
//!     .busy_timeout(Duration::from_secs(5))
//!     .open()?;
//! assert_eq!(store.len().await?, 0);
//! // Give it to the cache: `CacheLayer::with_store(store, settings)`.
//! # Ok(())
//! # }
//! ```

use cachelayer_store::{
    CacheKey, Clock, EntryFilter, EntryInfo, Store, StoreError, StoreFuture, StoredResponse,
    SystemClock, default_delete,
};
use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};
use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Semaphore;

/// The default [`busy_timeout`](SqliteStoreBuilder::busy_timeout): 5 seconds.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The default [`pool_size`](SqliteStoreBuilder::pool_size): 4 connections.
pub const DEFAULT_POOL_SIZE: usize = 4;

/// The schema version this release writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;

/// With a [`max_size`](SqliteStoreBuilder::max_size), a hit records its access time at most
/// once per this many milliseconds per entry, to keep reads from turning into writes.
const ACCESS_RESOLUTION_MS: i64 = 1000;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    url TEXT,
    created_at INTEGER,
    expires INTEGER NULL,
    retain_until INTEGER NULL,
    size INTEGER,
    accessed_at INTEGER,
    record BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS responses_expires ON responses(expires);
CREATE INDEX IF NOT EXISTS responses_created_at ON responses(created_at);
CREATE INDEX IF NOT EXISTS responses_retain_until ON responses(retain_until);
CREATE INDEX IF NOT EXISTS responses_accessed_at ON responses(accessed_at);
CREATE TABLE IF NOT EXISTS totals (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    size INTEGER NOT NULL
);
INSERT OR IGNORE INTO totals (id, size) SELECT 0, COALESCE(SUM(size), 0) FROM responses;
CREATE TRIGGER IF NOT EXISTS responses_size_insert AFTER INSERT ON responses BEGIN
    UPDATE totals SET size = size + new.size WHERE id = 0;
END;
CREATE TRIGGER IF NOT EXISTS responses_size_delete AFTER DELETE ON responses BEGIN
    UPDATE totals SET size = size - old.size WHERE id = 0;
END;
CREATE TRIGGER IF NOT EXISTS responses_size_update AFTER UPDATE OF size ON responses BEGIN
    UPDATE totals SET size = size + new.size - old.size WHERE id = 0;
END;
";

/// A store in one SQLite database file, shared by threads and processes.
///
/// See the [crate documentation](crate) for the design. Open one with [`SqliteStore::open`] or
/// [`SqliteStore::builder`].
///
/// The database has one table, `responses(key TEXT PRIMARY KEY, url TEXT, created_at INTEGER,
/// expires INTEGER NULL, retain_until INTEGER NULL, size INTEGER, accessed_at INTEGER, record BLOB
/// NOT NULL)`, indexed on each time column; times are unix milliseconds (`expires` and
/// `retain_until` rounded up, `created_at` and `accessed_at` down), `size` is the record's length
/// in bytes. The record comes last so that reading the other columns never walks a large
/// record's overflow pages. A `totals` table, kept by triggers, holds the sum of `size`.
///
/// [`Store::entries`] and [`Store::delete`] are overridden: one query each (filters on the
/// URL, times and keys run in SQL; a [`EntryFilter::Custom`] predicate and the listing decode
/// each record once, outside the write lock).
///
/// Cloning is cheap and clones share the connection pool.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    max_size: Option<u64>,
    busy_timeout: Duration,
    clock: Arc<dyn Clock>,
    /// Idle connections. At most `pool_size` exist at once: a permit of `permits` is held
    /// while one is in use.
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
    pool_size: usize,
}

/// Builds a [`SqliteStore`]: see [`SqliteStore::builder`].
#[must_use]
pub struct SqliteStoreBuilder {
    path: PathBuf,
    max_size: Option<u64>,
    busy_timeout: Duration,
    pool_size: usize,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for SqliteStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStoreBuilder")
            .field("path", &self.path)
            .field("max_size", &self.max_size)
            .field("busy_timeout", &self.busy_timeout)
            .field("pool_size", &self.pool_size)
            .field("clock", &self.clock)
            .finish()
    }
}

impl SqliteStoreBuilder {
    /// The largest total size of the stored records, in bytes (the lengths of their
    /// [`StoredResponse::encode`] records). Default: unbounded.
    ///
    /// After a write takes the total past it, the entries past their
    /// [`retain_until`](StoredResponse::retain_until) are deleted, then the least recently used
    /// ones (by last `get` or `put`, to the second) until the total fits. An entry larger than
    /// the whole bound is not stored. The database file is somewhat larger than the records
    /// (indexes, free pages; the `-wal` file beside it). Processes sharing a file should use the
    /// same bound: only a store with a bound records access times.
    pub fn max_size(mut self, bytes: u64) -> Self {
        self.max_size = Some(bytes);
        self
    }

    /// How long an operation waits for another connection (thread or process) to release the
    /// database lock before failing with [`StoreError::is_timeout`]. Default:
    /// [`DEFAULT_BUSY_TIMEOUT`] (5 s).
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// The most connections the store opens, hence the most operations that run at once (each on
    /// one of Tokio's blocking threads); further operations wait for a free connection. At least
    /// 1. Default: [`DEFAULT_POOL_SIZE`] (4). Connections are opened as needed and kept.
    pub fn pool_size(mut self, connections: usize) -> Self {
        self.pool_size = connections.max(1);
        self
    }

    /// The clock that decides when entries are past their
    /// [`retain_until`](StoredResponse::retain_until), and the access times of the LRU bound.
    /// Default: [`SystemClock`]. Use the same clock as the cache layer.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Opens (creating when missing) the database file and its parent directories, switches it
    /// to WAL mode and creates the schema.
    ///
    /// This does blocking file IO: call it at start-up (or inside `spawn_blocking`).
    ///
    /// # Errors
    /// [`StoreError::is_unsupported`] for an empty path or `:memory:` (each pooled connection
    /// would see its own database: use a file in a temporary directory instead);
    /// [`StoreError::is_backend`] when the directory cannot be created or the file cannot be
    /// opened, is not an SQLite database, or has a schema from a newer release;
    /// [`StoreError::is_timeout`] when another connection holds the database locked for longer
    /// than the busy timeout.
    pub fn open(self) -> Result<SqliteStore, StoreError> {
        let path_text = self.path.to_string_lossy();
        if path_text.is_empty() || path_text == ":memory:" || path_text.starts_with("file::memory:")
        {
            return Err(StoreError::unsupported(
                "an in-memory SQLite database: give SqliteStore a file path",
            ));
        }
        if let Some(parent) = self.path.parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(StoreError::backend)?;
            }
        }
        let inner = Inner {
            path: self.path,
            max_size: self.max_size,
            busy_timeout: self.busy_timeout,
            clock: self.clock,
            idle: Mutex::new(Vec::with_capacity(self.pool_size)),
            permits: Arc::new(Semaphore::new(self.pool_size)),
            pool_size: self.pool_size,
        };
        let mut conn = inner.connect().map_err(sql_error)?;
        init_database(&mut conn)?;
        inner.put_back(conn);
        Ok(SqliteStore {
            inner: Arc::new(inner),
        })
    }
}

fn init_database(conn: &mut Connection) -> Result<(), StoreError> {
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .map_err(sql_error)?;
    if !mode.eq_ignore_ascii_case("wal") {
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))
            .map_err(sql_error)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(journal_mode = %mode, "SQLite cache database is not in WAL mode");
        }
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql_error)?;
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(sql_error)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::backend(format!(
            "the cache database has schema version {version}, newer than this release's {SCHEMA_VERSION}"
        )));
    }
    tx.execute_batch(SCHEMA).map_err(sql_error)?;
    if version < SCHEMA_VERSION {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(sql_error)?;
    }
    tx.commit().map_err(sql_error)
}

impl Inner {
    fn connect(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open(&self.path)?;
        conn.busy_timeout(self.busy_timeout)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(conn)
    }

    fn take(&self) -> rusqlite::Result<Connection> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        match idle {
            Some(conn) => Ok(conn),
            None => self.connect(),
        }
    }

    fn put_back(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.pool_size {
            idle.push(conn);
        }
    }

    fn now(&self) -> SystemTime {
        self.clock.now()
    }
}

/// Unix milliseconds, rounded down; 0 before the epoch.
fn millis_floor(t: SystemTime) -> i64 {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Unix milliseconds, rounded up; 0 before the epoch.
fn millis_ceil(t: SystemTime) -> i64 {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let ceil = d.as_millis() + u128::from(d.subsec_nanos() % 1_000_000 != 0);
    i64::try_from(ceil).unwrap_or(i64::MAX)
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn sql_error(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::timeout(),
        _ => StoreError::backend(e),
    }
}

impl SqliteStore {
    /// Opens (creating when missing) the store at `path` with the default settings: unbounded,
    /// 5 s busy timeout, 4 connections, system clock. See [`SqliteStoreBuilder::open`].
    ///
    /// # Errors
    /// As [`SqliteStoreBuilder::open`].
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        Self::builder(path).open()
    }

    /// A builder for a store at `path` (a file; created when missing, with its directories).
    pub fn builder(path: impl AsRef<Path>) -> SqliteStoreBuilder {
        SqliteStoreBuilder {
            path: path.as_ref().to_owned(),
            max_size: None,
            busy_timeout: DEFAULT_BUSY_TIMEOUT,
            pool_size: DEFAULT_POOL_SIZE,
            clock: Arc::new(SystemClock),
        }
    }

    /// The database file's path.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The bound on the records' total size, in bytes, if any (see
    /// [`SqliteStoreBuilder::max_size`]).
    pub fn max_size(&self) -> Option<u64> {
        self.inner.max_size
    }

    /// Runs `f` on a pooled connection on a blocking thread.
    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &Inner) -> rusqlite::Result<T> + Send + 'static,
    {
        let permit = self
            .inner
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(StoreError::backend)?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut conn = inner.take().map_err(sql_error)?;
            let result = f(&mut conn, &inner);
            inner.put_back(conn);
            result.map_err(sql_error)
        })
        .await
        .map_err(StoreError::backend)?
    }

    /// Deletes every entry that is stale at `now` (its `expires` is `now` or earlier) —
    /// requests-cache's `delete(expired=True)`, the same as
    /// `store.delete(EntryFilter::Expired { now })`. Stale entries that could still be
    /// revalidated or served stale go too; entries that never expire stay. Entries past their
    /// [`retain_until`](StoredResponse::retain_until) by the store's clock are deleted as well,
    /// uncounted. Returns how many entries were deleted.
    ///
    /// # Errors
    /// [`StoreError::is_backend`] on a database error; [`StoreError::is_timeout`] when the
    /// database stayed locked for the busy timeout.
    pub async fn delete_expired(&self, now: SystemTime) -> Result<u64, StoreError> {
        let filter = EntryFilter::Expired { now };
        self.run(move |conn, inner| delete_blocking(conn, inner, &filter))
            .await
    }

    /// Deletes every entry past its [`retain_until`](StoredResponse::retain_until) at `now`: the
    /// entries the store would no longer return anyway. Returns how many were deleted.
    ///
    /// # Errors
    /// As [`delete_expired`](Self::delete_expired).
    pub async fn delete_past_retention(&self, now: SystemTime) -> Result<u64, StoreError> {
        let now = millis_floor(now);
        self.run(move |conn, _| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let n = tx.execute("DELETE FROM responses WHERE retain_until <= ?1", [now])?;
            tx.commit()?;
            Ok(n as u64)
        })
        .await
    }

    /// Deletes every entry whose response was received
    /// ([`created_at`](StoredResponse::created_at)) before `time` — requests-cache's
    /// `delete(older_than=...)`, the same as `store.delete(EntryFilter::OlderThan(time))`.
    /// Entries past their retention are deleted as well, uncounted. Returns how many entries
    /// were deleted.
    ///
    /// # Errors
    /// As [`delete_expired`](Self::delete_expired).
    pub async fn delete_older_than(&self, time: SystemTime) -> Result<u64, StoreError> {
        let filter = EntryFilter::OlderThan(time);
        self.run(move |conn, inner| delete_blocking(conn, inner, &filter))
            .await
    }

    /// Rebuilds the database file to give the space of deleted entries back to the file system
    /// (`VACUUM`), then truncates the write-ahead log (`PRAGMA wal_checkpoint(TRUNCATE)`).
    ///
    /// Takes time proportional to the database size and needs as much free disk space again;
    /// other connections' writes wait for it (up to their busy timeout).
    ///
    /// # Errors
    /// As [`delete_expired`](Self::delete_expired).
    pub async fn vacuum(&self) -> Result<(), StoreError> {
        self.run(|conn, _| {
            conn.execute_batch("VACUUM")?;
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            Ok(())
        })
        .await
    }

    /// The size of the database, in bytes: its page count times its page size. This is the main
    /// file's size once the write-ahead log is checkpointed; the `-wal` file beside it is not
    /// counted. Space of deleted entries is reused, and given back by [`vacuum`](Self::vacuum).
    ///
    /// # Errors
    /// As [`delete_expired`](Self::delete_expired).
    pub async fn size_bytes(&self) -> Result<u64, StoreError> {
        self.run(|conn, _| {
            conn.query_row(
                "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
                [],
                |row| row.get::<_, i64>(0),
            )
            .map(to_u64)
        })
        .await
    }

    /// The total size of the stored records, in bytes: what
    /// [`max_size`](SqliteStoreBuilder::max_size) bounds.
    ///
    /// # Errors
    /// As [`delete_expired`](Self::delete_expired).
    pub async fn stored_bytes(&self) -> Result<u64, StoreError> {
        self.run(|conn, _| {
            conn.query_row("SELECT size FROM totals WHERE id = 0", [], |row| {
                row.get::<_, i64>(0)
            })
            .map(to_u64)
        })
        .await
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .field("max_size", &self.inner.max_size)
            .field("busy_timeout", &self.inner.busy_timeout)
            .field("pool_size", &self.inner.pool_size)
            .finish()
    }
}

fn get_blocking(
    conn: &mut Connection,
    inner: &Inner,
    key: &str,
) -> rusqlite::Result<Option<Arc<StoredResponse>>> {
    let now = inner.now();
    let now_ms = millis_floor(now);
    let row = conn
        .prepare_cached("SELECT record, retain_until, accessed_at FROM responses WHERE key = ?1")?
        .query_row([key], |row| {
            Ok((
                row.get::<_, Vec<u8>>(0)?,
                row.get::<_, Option<i64>>(1)?,
                row.get::<_, Option<i64>>(2)?,
            ))
        })
        .optional()?;
    let Some((record, retain_until, accessed_at)) = row else {
        return Ok(None);
    };
    if retain_until.is_some_and(|until| until <= now_ms) {
        delete_quietly(
            conn,
            "DELETE FROM responses WHERE key = ?1 AND retain_until <= ?2",
            params![key, now_ms],
        );
        return Ok(None);
    }
    let entry = match StoredResponse::decode(&record) {
        Ok(entry) => entry,
        Err(error) => {
            tracing::warn!(key, %error, "deleting an unreadable cache record");
            delete_quietly(
                conn,
                "DELETE FROM responses WHERE key = ?1 AND record = ?2",
                params![key, record],
            );
            return Ok(None);
        }
    };
    if entry.is_past_retention(now) {
        return Ok(None);
    }
    if inner.max_size.is_some()
        && accessed_at.is_none_or(|at| now_ms.saturating_sub(at) >= ACCESS_RESOLUTION_MS)
    {
        // Best effort, without waiting for the write lock: a busy database must neither slow
        // a hit down nor turn it into an error.
        let touched = conn.busy_timeout(Duration::ZERO).and_then(|()| {
            conn.prepare_cached("UPDATE responses SET accessed_at = ?2 WHERE key = ?1")?
                .execute(params![key, now_ms])
        });
        if let Err(error) = touched {
            tracing::debug!(key, %error, "could not record a cache entry's access time");
        }
        conn.busy_timeout(inner.busy_timeout)?;
    }
    Ok(Some(Arc::new(entry)))
}

/// Runs a cleanup `DELETE` from a read: a failure is logged, not returned.
fn delete_quietly(conn: &mut Connection, sql: &str, params: impl rusqlite::Params) {
    let result = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .and_then(|tx| {
            tx.prepare_cached(sql)?.execute(params)?;
            tx.commit()
        });
    if let Err(error) = result {
        tracing::warn!(%error, "could not delete a cache record");
    }
}

fn put_blocking(
    conn: &mut Connection,
    inner: &Inner,
    key: &str,
    entry: &StoredResponse,
) -> rusqlite::Result<()> {
    let now = inner.now();
    let record = if entry.is_past_retention(now) {
        None
    } else {
        Some(entry.encode())
    }
    .filter(|record| inner.max_size.is_none_or(|max| record.len() as u64 <= max));
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    match record {
        // Not kept: the previous entry for the key must not stay either.
        None => {
            tx.prepare_cached("DELETE FROM responses WHERE key = ?1")?
                .execute([key])?;
        }
        Some(record) => {
            let now_ms = millis_floor(now);
            tx.prepare_cached(
                "INSERT INTO responses
                    (key, record, url, created_at, expires, retain_until, size, accessed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (key) DO UPDATE SET
                    record = excluded.record, url = excluded.url,
                    created_at = excluded.created_at, expires = excluded.expires,
                    retain_until = excluded.retain_until, size = excluded.size,
                    accessed_at = excluded.accessed_at",
            )?
            .execute(params![
                key,
                record,
                entry.request.url,
                millis_floor(entry.created_at),
                entry.expires.map(millis_ceil),
                entry.retain_until.map(millis_ceil),
                i64::try_from(record.len()).unwrap_or(i64::MAX),
                now_ms,
            ])?;
            if let Some(max) = inner.max_size {
                evict(&tx, max, now_ms)?;
            }
        }
    }
    tx.commit()
}

/// Brings the records' total size within `max`: entries past retention first, then the least
/// recently used.
fn evict(tx: &rusqlite::Transaction<'_>, max: u64, now_ms: i64) -> rusqlite::Result<()> {
    let max = i64::try_from(max).unwrap_or(i64::MAX);
    let total = |tx: &rusqlite::Transaction<'_>| -> rusqlite::Result<i64> {
        tx.prepare_cached("SELECT size FROM totals WHERE id = 0")?
            .query_row([], |row| row.get(0))
    };
    if total(tx)? <= max {
        return Ok(());
    }
    tx.prepare_cached("DELETE FROM responses WHERE retain_until <= ?1")?
        .execute([now_ms])?;
    let excess = total(tx)? - max;
    if excess <= 0 {
        return Ok(());
    }
    let mut victims = Vec::new();
    {
        let mut stmt = tx.prepare_cached(
            "SELECT rowid, size FROM responses ORDER BY accessed_at ASC, rowid ASC",
        )?;
        let mut rows = stmt.query([])?;
        let mut freed = 0i64;
        while freed < excess {
            let Some(row) = rows.next()? else { break };
            victims.push(row.get::<_, i64>(0)?);
            freed = freed.saturating_add(row.get::<_, Option<i64>>(1)?.unwrap_or(0));
        }
    }
    let mut delete = tx.prepare_cached("DELETE FROM responses WHERE rowid = ?1")?;
    for rowid in victims {
        delete.execute([rowid])?;
    }
    Ok(())
}

impl Store for SqliteStore {
    fn get(&self, key: &CacheKey) -> StoreFuture<Option<Arc<StoredResponse>>> {
        let store = self.clone();
        let key = key.to_string();
        Box::pin(async move {
            store
                .run(move |conn, inner| get_blocking(conn, inner, &key))
                .await
        })
    }

    fn put(&self, key: CacheKey, entry: Arc<StoredResponse>) -> StoreFuture<()> {
        let store = self.clone();
        Box::pin(async move {
            let key = key.to_string();
            store
                .run(move |conn, inner| put_blocking(conn, inner, &key, &entry))
                .await
        })
    }

    fn remove(&self, key: &CacheKey) -> StoreFuture<bool> {
        let store = self.clone();
        let key = key.to_string();
        Box::pin(async move {
            store
                .run(move |conn, _| {
                    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                    let n = tx
                        .prepare_cached("DELETE FROM responses WHERE key = ?1")?
                        .execute([&key])?;
                    tx.commit()?;
                    Ok(n > 0)
                })
                .await
        })
    }

    fn clear(&self) -> StoreFuture<()> {
        let store = self.clone();
        Box::pin(async move {
            store
                .run(|conn, _| {
                    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                    tx.execute("DELETE FROM responses", [])?;
                    tx.commit()
                })
                .await
        })
    }

    fn keys(&self) -> StoreFuture<Vec<CacheKey>> {
        let store = self.clone();
        Box::pin(async move {
            store
                .run(|conn, inner| {
                    let now = millis_floor(inner.now());
                    let mut stmt = conn.prepare_cached(
                        "SELECT key FROM responses WHERE retain_until IS NULL OR retain_until > ?1",
                    )?;
                    let keys = stmt
                        .query_map([now], |row| row.get::<_, String>(0))?
                        .map(|key| key.map(CacheKey::custom))
                        .collect::<rusqlite::Result<Vec<_>>>()?;
                    Ok(keys)
                })
                .await
        })
    }

    fn len(&self) -> StoreFuture<u64> {
        let store = self.clone();
        Box::pin(async move {
            store
                .run(|conn, inner| {
                    let now = millis_floor(inner.now());
                    conn.prepare_cached(
                        "SELECT COUNT(*) FROM responses WHERE retain_until IS NULL OR retain_until > ?1",
                    )?
                    .query_row([now], |row| row.get::<_, i64>(0))
                    .map(to_u64)
                })
                .await
        })
    }

    fn entries(self: Arc<Self>) -> StoreFuture<Vec<EntryInfo>> {
        Box::pin(async move { self.run(entries_blocking).await })
    }

    fn delete(self: Arc<Self>, filter: EntryFilter) -> StoreFuture<u64> {
        Box::pin(async move {
            match filter {
                EntryFilter::All
                | EntryFilter::Keys(_)
                | EntryFilter::Expired { .. }
                | EntryFilter::OlderThan(_)
                | EntryFilter::Urls(_) => {
                    self.run(move |conn, inner| delete_blocking(conn, inner, &filter))
                        .await
                }
                EntryFilter::Custom(predicate) => {
                    let victims = self
                        .run(move |conn, inner| custom_victims(conn, inner, &*predicate))
                        .await?;
                    self.run(move |conn, _| delete_victims(conn, &victims))
                        .await
                }
                other => default_delete(&*self, other).await,
            }
        })
    }
}

/// The condition on a row that a `get` at `?1` (unix ms) would still return.
const LIVE: &str = "(retain_until IS NULL OR retain_until > ?1)";

fn entries_blocking(conn: &mut Connection, inner: &Inner) -> rusqlite::Result<Vec<EntryInfo>> {
    let now = inner.now();
    let mut stmt =
        conn.prepare_cached(&format!("SELECT key, record FROM responses WHERE {LIVE}"))?;
    let mut rows = stmt.query([millis_floor(now)])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let key = CacheKey::custom(row.get_ref(0)?.as_str()?);
        match StoredResponse::decode(row.get_ref(1)?.as_blob()?) {
            Ok(entry) if !entry.is_past_retention(now) => out.push(EntryInfo::new(&key, &entry)),
            Ok(_) => {}
            Err(error) => tracing::debug!(%key, %error, "leaving an unreadable record out"),
        }
    }
    Ok(out)
}

/// `delete` for the filters SQL can select by: in one write transaction. Rows past retention
/// are deleted too, without being counted. A time filter decodes only the rows within the
/// millisecond of its bound, to decide them exactly.
fn delete_blocking(
    conn: &mut Connection,
    inner: &Inner,
    filter: &EntryFilter,
) -> rusqlite::Result<u64> {
    let now_ms = millis_floor(inner.now());
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut removed = 0usize;
    match filter {
        EntryFilter::All => {
            removed += tx.execute(&format!("DELETE FROM responses WHERE {LIVE}"), [now_ms])?;
        }
        EntryFilter::Keys(keys) => {
            let keys: HashSet<String> = keys.iter().map(ToString::to_string).collect();
            let mut delete =
                tx.prepare_cached(&format!("DELETE FROM responses WHERE key = ?2 AND {LIVE}"))?;
            for key in &keys {
                removed += delete.execute(params![now_ms, key])?;
            }
        }
        EntryFilter::Expired { now } => {
            // `expires` is rounded up: `expires <= floor(now)` is surely stale, `floor(now) + 1`
            // may be either.
            let bound = millis_floor(*now);
            removed += tx.execute(
                &format!("DELETE FROM responses WHERE expires <= ?2 AND {LIVE}"),
                [now_ms, bound],
            )?;
            removed += delete_decided(&tx, "expires", now_ms, bound + 1, |entry| {
                entry.is_expired(*now)
            })?;
        }
        EntryFilter::OlderThan(time) => {
            // `created_at` is rounded down: `created_at < floor(t)` is surely older,
            // `floor(t)` may be either.
            let bound = millis_floor(*time);
            removed += tx.execute(
                &format!("DELETE FROM responses WHERE created_at < ?2 AND {LIVE}"),
                [now_ms, bound],
            )?;
            removed += delete_decided(&tx, "created_at", now_ms, bound, |entry| {
                entry.created_at < *time
            })?;
        }
        EntryFilter::Urls(urls) => {
            let urls: HashSet<&str> = urls.iter().map(String::as_str).collect();
            let mut victims = Vec::new();
            {
                let mut stmt =
                    tx.prepare_cached(&format!("SELECT rowid, url FROM responses WHERE {LIVE}"))?;
                let mut rows = stmt.query([now_ms])?;
                while let Some(row) = rows.next()? {
                    if row
                        .get_ref(1)?
                        .as_str_or_null()?
                        .is_some_and(|url| urls.contains(url))
                    {
                        victims.push(row.get::<_, i64>(0)?);
                    }
                }
            }
            let mut delete = tx.prepare_cached("DELETE FROM responses WHERE rowid = ?1")?;
            for rowid in victims {
                removed += delete.execute([rowid])?;
            }
        }
        _ => {}
    }
    tx.execute("DELETE FROM responses WHERE retain_until <= ?1", [now_ms])?;
    tx.commit()?;
    Ok(removed as u64)
}

/// Deletes the live rows whose `column` equals `value` and whose decoded entry `matches`.
fn delete_decided(
    tx: &rusqlite::Transaction<'_>,
    column: &str,
    now_ms: i64,
    value: i64,
    matches: impl Fn(&StoredResponse) -> bool,
) -> rusqlite::Result<usize> {
    let mut victims = Vec::new();
    {
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT rowid, record FROM responses WHERE {column} = ?2 AND {LIVE}"
        ))?;
        let mut rows = stmt.query([now_ms, value])?;
        while let Some(row) = rows.next()? {
            if StoredResponse::decode(row.get_ref(1)?.as_blob()?).is_ok_and(|entry| matches(&entry))
            {
                victims.push(row.get::<_, i64>(0)?);
            }
        }
    }
    let mut delete = tx.prepare_cached("DELETE FROM responses WHERE rowid = ?1")?;
    let mut removed = 0;
    for rowid in victims {
        removed += delete.execute([rowid])?;
    }
    Ok(removed)
}

/// A row chosen for deletion by a predicate: its rowid, and the columns that tell whether it
/// was replaced since.
struct Victim {
    rowid: i64,
    created_at: Option<i64>,
    size: Option<i64>,
}

/// The live rows a `Custom` predicate chooses, read without the write lock: each record is
/// decoded and the predicate called once.
fn custom_victims(
    conn: &mut Connection,
    inner: &Inner,
    predicate: &(dyn Fn(&EntryInfo) -> bool + Send + Sync),
) -> rusqlite::Result<Vec<Victim>> {
    let now = inner.now();
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT rowid, key, created_at, size, record FROM responses WHERE {LIVE}"
    ))?;
    let mut rows = stmt.query([millis_floor(now)])?;
    let mut victims = Vec::new();
    while let Some(row) = rows.next()? {
        let Ok(entry) = StoredResponse::decode(row.get_ref(4)?.as_blob()?) else {
            continue;
        };
        if entry.is_past_retention(now) {
            continue;
        }
        let key = CacheKey::custom(row.get_ref(1)?.as_str()?);
        if predicate(&EntryInfo::new(&key, &entry)) {
            victims.push(Victim {
                rowid: row.get(0)?,
                created_at: row.get(2)?,
                size: row.get(3)?,
            });
        }
    }
    Ok(victims)
}

/// Deletes the chosen rows that were not replaced meanwhile.
fn delete_victims(conn: &mut Connection, victims: &[Victim]) -> rusqlite::Result<u64> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut removed = 0;
    {
        let mut delete = tx.prepare_cached(
            "DELETE FROM responses WHERE rowid = ?1 AND created_at IS ?2 AND size IS ?3",
        )?;
        for victim in victims {
            removed += delete.execute(params![victim.rowid, victim.created_at, victim.size])?;
        }
    }
    tx.commit()?;
    Ok(removed as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_round_as_documented() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 1_500_000);
        assert_eq!(millis_floor(t), 1_700_000_000_001);
        assert_eq!(millis_ceil(t), 1_700_000_000_002);
        let exact = UNIX_EPOCH + Duration::from_millis(42);
        assert_eq!(millis_floor(exact), 42);
        assert_eq!(millis_ceil(exact), 42);
        assert_eq!(millis_ceil(UNIX_EPOCH - Duration::from_secs(1)), 0);
    }
}
