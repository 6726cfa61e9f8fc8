//! A persistent [SQLite](https://sqlite.org) store for cachelayer: requests-cache's default
//! backend, for Rust.
//!
//! [`SqliteStore`] keeps every entry in one database file, in `PRAGMA journal_mode=WAL` with
//! `synchronous=NORMAL`: readers never wait for the writer, and several threads and several
//! processes can share the file at once (a write waits up to
//! [`busy_timeout`](SqliteStoreBuilder::busy_timeout) for another's to finish).
//!
//! - Blocking SQLite calls never run on async worker threads as such: every operation takes a
//!   connection from a small pool ([`pool_size`](SqliteStoreBuilder::pool_size)) and runs on
//!   Tokio's blocking threads ([`tokio::task::spawn_blocking`]), except a `get` awaited in a
//!   task of a multi-thread runtime, which runs on its worker thread inside
//!   [`tokio::task::block_in_place`] (the runtime moves the worker's other tasks to another
//!   thread meanwhile; see [`read_in_place`](SqliteStoreBuilder::read_in_place)): a hit takes
//!   about 10 µs instead of 40 to 60. Every operation must therefore be awaited inside a Tokio
//!   runtime.
//! - Entries are stored as [`StoredResponse::encode`] records, with their URL and times (unix
//!   milliseconds) in indexed columns, for housekeeping ([`delete_expired`](SqliteStore::delete_expired),
//!   [`delete_older_than`](SqliteStore::delete_older_than)) and listings.
//! - An entry past its [`retain_until`](StoredResponse::retain_until) (by the store's clock) and
//!   a record that cannot be decoded are misses, and are deleted when read.
//! - Optionally bounded ([`max_size`](SqliteStoreBuilder::max_size)): when the records take more
//!   bytes than that, the least recently used entries are deleted.
//! - The write-ahead log (the `-wal` file) is kept within
//!   [`wal_size_limit`](SqliteStoreBuilder::wal_size_limit) (default 1 MiB, a quarter of
//!   `max_size` at most): 10,000 entries of 180-byte records take about 540 bytes each on disk
//!   (database file, `-wal` and `-shm`; 430 once checkpointed). [`SqliteStore::disk_bytes`]
//!   tells the total.
//! - Two ways to open: [`SqliteStore::open`] is strict (a damaged or foreign file is an error,
//!   and is left alone); [`SqliteStore::open_or_recover`] (or
//!   [`recover_damaged`](SqliteStoreBuilder::recover_damaged) on the builder) sets a file that
//!   is not a usable cache database aside (`PATH.corrupt-SECS`), logs a warning and starts
//!   empty, for services whose cache is disposable. Both fail with a [`NotWritable`] source
//!   when the file or its directory cannot be written, so that the caller can run uncached.
//! - Like every store builder of cachelayer, [`SqliteStoreBuilder`] ends in
//!   [`build`](SqliteStoreBuilder::build).
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
//!     .build()?;
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

/// The default [`wal_size_limit`](SqliteStoreBuilder::wal_size_limit): 1 MiB.
pub const DEFAULT_WAL_SIZE_LIMIT: u64 = 1024 * 1024;

/// The smallest write-ahead log bound the store uses, whatever the settings: 64 KiB (16 pages
/// of 4 KiB), so that a checkpoint is not needed after every write.
pub const MIN_WAL_SIZE_LIMIT: u64 = 64 * 1024;

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
    /// The write-ahead log's path, and the size it is kept within (bytes).
    wal_path: PathBuf,
    wal_size_limit: u64,
    /// See [`SqliteStoreBuilder::read_in_place`].
    #[cfg_attr(not(feature = "read-in-place"), allow(dead_code))]
    read_in_place: bool,
    max_size: Option<u64>,
    busy_timeout: Duration,
    clock: Arc<dyn Clock>,
    /// Idle connections. At most `pool_size` exist at once: a permit of `permits` is held
    /// while one is in use.
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
    pool_size: usize,
    /// What [`SqliteStoreBuilder::recover_damaged`] set aside, if anything.
    recovery: Option<Recovery>,
    /// Corrupt records (failed integrity check) found by `get` and deleted.
    corrupt_dropped: std::sync::atomic::AtomicU64,
}

/// Builds a [`SqliteStore`]: see [`SqliteStore::builder`].
#[must_use]
pub struct SqliteStoreBuilder {
    path: PathBuf,
    max_size: Option<u64>,
    busy_timeout: Duration,
    pool_size: usize,
    wal_size_limit: u64,
    read_in_place: bool,
    clock: Arc<dyn Clock>,
    mode: Mode,
}

impl fmt::Debug for SqliteStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStoreBuilder")
            .field("path", &self.path)
            .field("max_size", &self.max_size)
            .field("busy_timeout", &self.busy_timeout)
            .field("pool_size", &self.pool_size)
            .field("wal_size_limit", &self.wal_size_limit)
            .field("read_in_place", &self.read_in_place)
            .field("clock", &self.clock)
            .field("recover_damaged", &(self.mode == Mode::Recover))
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
    /// the whole bound is not stored. Processes sharing a file should use the same bound: only
    /// a store with a bound records access times.
    ///
    /// On disk, the store takes more than its records: the database file holds the records,
    /// about 240 bytes of row and index data per entry, and free pages (the file keeps its
    /// largest size until [`vacuum`](SqliteStore::vacuum)); beside it, the `-wal` file (at most
    /// [`wal_size_limit`](Self::wal_size_limit), which a bound lowers to a quarter of it, plus
    /// the last write) and the 32 KiB `-shm` file. [`SqliteStore::disk_bytes`] adds them up.
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

    /// How large the write-ahead log (the `-wal` file beside the database) may grow, in bytes,
    /// before its pages are copied into the database file and it starts over. Default:
    /// [`DEFAULT_WAL_SIZE_LIMIT`] (1 MiB); at least [`MIN_WAL_SIZE_LIMIT`] (64 KiB); with a
    /// [`max_size`](Self::max_size), at most a quarter of it (and still at least 64 KiB), so
    /// that the log does not outgrow a small cache.
    ///
    /// Every write appends each page it changes (about 7 pages of 4 KiB for a small entry: the
    /// row, five index entries and the size total) to the log; a checkpoint copies the pages
    /// into the database file once the log holds this many bytes (`PRAGMA
    /// wal_autocheckpoint`), then the log is reused from its start and its file cut back to
    /// this size (`PRAGMA journal_size_limit`). A write that leaves the file larger than twice
    /// the limit (one very large entry, or readers that kept a checkpoint from completing)
    /// truncates it at once if no reader is using it (`PRAGMA wal_checkpoint(TRUNCATE)`,
    /// without waiting). So the `-wal` file stays within about this size plus the largest
    /// write. A smaller limit saves disk space and costs more checkpoints (each one `fsync`s
    /// the database file).
    pub fn wal_size_limit(mut self, bytes: u64) -> Self {
        self.wal_size_limit = bytes;
        self
    }

    /// Whether a [`get`](Store::get) awaited in a task of a multi-thread Tokio runtime runs its
    /// query on the task's own worker thread, inside [`tokio::task::block_in_place`] (the
    /// runtime moves its other tasks to another thread meanwhile), instead of handing it to a
    /// blocking thread with [`tokio::task::spawn_blocking`] and waiting for the answer.
    /// Default: `true`. Needs the crate's `read-in-place` feature (on by default; it turns on
    /// Tokio's `rt-multi-thread`); without it, this setting does nothing.
    ///
    /// In place, a hit takes a few microseconds instead of tens (the hand-off and the wake-up
    /// of two threads). Elsewhere (a current-thread runtime, the future given to
    /// `Runtime::block_on`, outside a runtime) and for every other operation, the query runs
    /// on a blocking thread either way.
    ///
    /// While a `get` runs in place, its task cannot be cancelled or timed out (the cache
    /// layer's `store_timeout` cannot interrupt it): reads in WAL mode do not wait for writers,
    /// so this matters only when a reader has to wait for another connection's lock (the
    /// recovery of a crashed process's log), up to [`busy_timeout`](Self::busy_timeout). Turn
    /// it off where that wait must be interruptible, or in a task of a current-thread runtime
    /// that has entered a multi-thread runtime's context (`Handle::enter`) across an `.await`
    /// (where `block_in_place` would panic).
    pub fn read_in_place(mut self, enabled: bool) -> Self {
        self.read_in_place = enabled;
        self
    }

    /// The clock that decides when entries are past their
    /// [`retain_until`](StoredResponse::retain_until), and the access times of the LRU bound.
    /// Default: [`SystemClock`]. Use the same clock as the cache layer.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Whether [`build`](Self::build) sets aside a file that is not a usable cache database and
    /// starts empty, instead of failing: for a service that treats its cache as disposable and
    /// must not stop because of it. Default: `false` (strict). [`SqliteStore::open_or_recover`]
    /// is `SqliteStore::builder(path).recover_damaged(true).build()`.
    ///
    /// The file is not usable when SQLite says it is not a database or is malformed, when
    /// `PRAGMA quick_check` finds damage, when it is an SQLite database of another application
    /// (tables other than the store's), or when its schema version is not this release's (a
    /// newer release's file too). Such a file is renamed to `PATH.corrupt-SECS` (`SECS`: unix
    /// seconds now; `PATH.corrupt-SECS.N` when that name is taken), its `-wal`, `-shm` and
    /// `-journal` files, when still there, to the same name with the same suffix (so that the
    /// set can still be opened for a look; SQLite itself deletes a `-wal` it cannot use when
    /// its last connection closes, and none is ever left beside the new file), one `WARN`
    /// event is logged through `tracing`, and a new, empty
    /// database is created at `PATH`. [`SqliteStore::recovery`] tells what was set aside. The
    /// store never deletes set-aside files.
    ///
    /// `quick_check` reads the whole file once: opening takes about as long as reading the
    /// file (measured: 10 ms for a 4.5 MB file, 70 to 140 ms for a 120 MB one, from the page
    /// cache; a strict `build` takes 3 and 20 ms), longer from a cold disk.
    ///
    /// Processes that have the damaged file open keep using it under its new name until they
    /// reopen. When two processes recover one file at the same time, the second notices (by
    /// the file's identity, on Unix) that the file was already replaced and opens the new one.
    ///
    /// A file or directory that cannot be written (a read-only file, directory or file
    /// system) is not set aside and not opened read-only (a read-only WAL database cannot
    /// always be opened, and a cache that can never store is better replaced by no cache): it
    /// is an error whose source is a [`NotWritable`], so that the caller can decide to run
    /// uncached (or with a [`MemoryStore`](cachelayer_store::MemoryStore)).
    ///
    /// ```
    /// use cachelayer_sqlite::{NotWritable, SqliteStore};
    ///
    /// # let dir = tempfile::tempdir().expect("a temporary directory");
    /// # let path = dir.path().join("http_cache.sqlite");
    /// match SqliteStore::builder(&path).recover_damaged(true).build() {
    ///     Ok(store) => {
    ///         if let Some(recovery) = store.recovery() {
    ///             eprintln!("started with an empty cache: {recovery}");
    ///         }
    ///         // CacheLayer::with_store(store, settings)
    ///     }
    ///     Err(error) if NotWritable::find(&error).is_some() => {
    ///         eprintln!("running uncached until the permissions are fixed: {error}");
    ///     }
    ///     Err(error) => eprintln!("running uncached: {error}"),
    /// }
    /// ```
    ///
    /// What [`build`](Self::build) then fails with:
    /// [`StoreError::is_unsupported`] for an empty path or `:memory:`;
    /// [`StoreError::is_backend`] with a [`NotWritable`] source when the file, its directory or
    /// the file system is read-only (or the damaged file cannot be renamed for lack of
    /// permission); [`StoreError::is_backend`] for other failures (the directory cannot be
    /// created, the disk is full, a new file is damaged again); [`StoreError::is_timeout`] when
    /// another connection holds the database locked for longer than the busy timeout (a locked
    /// file is in use, hence never set aside).
    pub fn recover_damaged(mut self, recover: bool) -> Self {
        self.mode = if recover { Mode::Recover } else { Mode::Strict };
        self
    }

    /// Opens (creating when missing) the database file and its parent directories, switches it
    /// to WAL mode and creates the schema. Strict by default: a file that is not a usable cache
    /// database is an error, and is left as it is. A service that should keep running whatever
    /// state the file is in sets [`recover_damaged`](Self::recover_damaged) first.
    ///
    /// This does blocking file IO: call it at start-up (or inside `spawn_blocking`).
    ///
    /// # Errors
    /// With [`recover_damaged`](Self::recover_damaged): see there.
    ///
    /// Strict: [`StoreError::is_unsupported`] for an empty path or `:memory:` (each pooled connection
    /// would see its own database: use a file in a temporary directory instead);
    /// [`StoreError::is_backend`] when the directory cannot be created or the file cannot be
    /// opened, is not an SQLite database (`file is not a database`), is damaged (`database
    /// disk image is malformed`), is an SQLite database of another application (tables other
    /// than the store's), or has a schema from a newer release; when the file or its directory
    /// cannot be written, the error's source is a [`NotWritable`] (see
    /// [`NotWritable::find`]); [`StoreError::is_timeout`] when another connection holds the
    /// database locked for longer than the busy timeout.
    pub fn build(self) -> Result<SqliteStore, StoreError> {
        let mode = self.mode;
        self.open_with(mode)
    }

    fn open_with(self, mode: Mode) -> Result<SqliteStore, StoreError> {
        let path_text = self.path.to_string_lossy();
        if path_text.is_empty() || path_text == ":memory:" || path_text.starts_with("file::memory:")
        {
            return Err(StoreError::unsupported(
                "an in-memory SQLite database: give SqliteStore a file path",
            ));
        }
        if let Some(parent) = self.path.parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| io_error(&self.path, "cannot create its directory", e))?;
            }
        }
        let wal_size_limit = self
            .max_size
            .map_or(self.wal_size_limit, |max| self.wal_size_limit.min(max / 4))
            .max(MIN_WAL_SIZE_LIMIT);
        let mut inner = Inner {
            read_in_place: self.read_in_place,
            wal_path: sibling(&self.path, "-wal"),
            wal_size_limit,
            path: self.path,
            max_size: self.max_size,
            busy_timeout: self.busy_timeout,
            clock: self.clock,
            idle: Mutex::new(Vec::with_capacity(self.pool_size)),
            permits: Arc::new(Semaphore::new(self.pool_size)),
            pool_size: self.pool_size,
            recovery: None,
            corrupt_dropped: std::sync::atomic::AtomicU64::new(0),
        };
        // At most three rounds: a file set aside, then maybe one another process put there
        // meanwhile; a third damaged file in a row is an error.
        for _ in 0..3 {
            let identity = file_identity(&inner.path);
            let problem = match inner.connect() {
                Ok(mut conn) => match prepare_database(&mut conn, &inner.path, mode) {
                    Ok(()) => {
                        inner.put_back(conn);
                        return Ok(SqliteStore {
                            inner: Arc::new(inner),
                        });
                    }
                    Err(problem) => problem,
                },
                Err(error) => classify(error, &inner.path),
            };
            match (problem, mode) {
                (OpenProblem::Failed(error), _) => return Err(error),
                (OpenProblem::Damaged(error), Mode::Strict) => {
                    return Err(StoreError::backend(error));
                }
                (OpenProblem::Damaged(error), Mode::Recover) => {
                    if let Some(recovery) = set_aside(&inner.path, identity, &error.to_string())? {
                        inner.recovery = Some(recovery);
                    }
                }
            }
        }
        Err(StoreError::backend(format!(
            "{}: damaged again after being set aside twice",
            inner.path.display()
        )))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Strict,
    Recover,
}

/// Why a file could not be opened as the store's database.
enum OpenProblem {
    /// Not a usable cache database: set aside by [`Mode::Recover`].
    Damaged(BoxError),
    /// Any other failure (not writable, locked, IO): never set aside.
    Failed(StoreError),
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The columns of the store's tables, sorted.
const RESPONSES_COLUMNS: [&str; 8] = [
    "accessed_at",
    "created_at",
    "expires",
    "key",
    "record",
    "retain_until",
    "size",
    "url",
];
const TOTALS_COLUMNS: [&str; 2] = ["id", "size"];

/// What the database file holds.
enum Schema {
    /// Nothing yet: a new file.
    Empty,
    /// The store's tables.
    Ours,
    /// Other tables: the description lists them.
    Foreign(String),
}

fn schema_of(conn: &Connection) -> rusqlite::Result<Schema> {
    let mut tables: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
        )?
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let objects: i64 = conn.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
        [],
        |row| row.get(0),
    )?;
    if objects == 0 {
        return Ok(Schema::Empty);
    }
    let columns = |table: &str| -> rusqlite::Result<Vec<String>> {
        let mut names: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info(?1)")?
            .query_map([table], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        names.sort();
        Ok(names)
    };
    tables.sort();
    if tables == ["responses", "totals"]
        && columns("responses")? == RESPONSES_COLUMNS
        && columns("totals")? == TOTALS_COLUMNS
    {
        return Ok(Schema::Ours);
    }
    let mut listed = tables
        .iter()
        .take(8)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if tables.len() > 8 {
        listed.push_str(", ...");
    }
    Ok(Schema::Foreign(listed))
}

/// Switches a freshly opened connection's database to WAL mode, checks it (thoroughly in
/// [`Mode::Recover`]) and creates or checks the schema.
fn prepare_database(conn: &mut Connection, path: &Path, mode: Mode) -> Result<(), OpenProblem> {
    let fail = |error| classify(error, path);
    // Read-only checks first: a file refused is left byte for byte as it was.
    let version = check_schema(conn).map_err(|problem| problem.or_classify(path))?;
    // SQLite opens the file at its first read: only now does it know it could not for writing.
    if conn.is_readonly(rusqlite::MAIN_DB).map_err(fail)? {
        return Err(OpenProblem::Failed(not_writable(
            path,
            "SQLite could only open it read-only",
        )));
    }
    if mode == Mode::Recover {
        let findings: Vec<String> = conn
            .prepare("PRAGMA quick_check(5)")
            .and_then(|mut stmt| {
                stmt.query_map([], |row| row.get::<_, String>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(fail)?;
        if findings.len() != 1 || findings[0] != "ok" {
            return Err(OpenProblem::Damaged(
                format!("quick_check found damage: {}", findings.join("; ")).into(),
            ));
        }
    }
    let mode_now: String = conn
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .map_err(fail)?;
    if !mode_now.eq_ignore_ascii_case("wal") {
        let mode_now: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))
            .map_err(fail)?;
        if !mode_now.eq_ignore_ascii_case("wal") {
            tracing::warn!(journal_mode = %mode_now, "SQLite cache database is not in WAL mode");
        }
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(fail)?;
    // Again under the write lock: another process may have created the schema meanwhile.
    let version = version.max(check_schema(&tx).map_err(|problem| problem.or_classify(path))?);
    tx.execute_batch(SCHEMA).map_err(fail)?;
    if version < SCHEMA_VERSION {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(fail)?;
    }
    tx.commit().map_err(fail)
}

/// A problem found by [`check_schema`]: a verdict, or an SQLite error still to classify.
enum SchemaProblem {
    Verdict(OpenProblem),
    Sql(rusqlite::Error),
}

impl SchemaProblem {
    fn or_classify(self, path: &Path) -> OpenProblem {
        match self {
            SchemaProblem::Verdict(problem) => problem,
            SchemaProblem::Sql(error) => classify(error, path),
        }
    }
}

impl From<rusqlite::Error> for SchemaProblem {
    fn from(error: rusqlite::Error) -> Self {
        SchemaProblem::Sql(error)
    }
}

/// The schema version, when the database is empty or holds the store's tables at a version
/// this release reads; [`OpenProblem::Damaged`] otherwise. Reads only.
fn check_schema(conn: &Connection) -> Result<i64, SchemaProblem> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(SchemaProblem::Verdict(OpenProblem::Damaged(
            format!(
                "the cache database has schema version {version}, newer than this release's {SCHEMA_VERSION}"
            )
            .into(),
        )));
    }
    match schema_of(conn)? {
        Schema::Empty | Schema::Ours => Ok(version),
        Schema::Foreign(tables) => Err(SchemaProblem::Verdict(OpenProblem::Damaged(
            format!(
                "an SQLite database that is not a cachelayer cache (schema version {version}, tables: {tables})"
            )
            .into(),
        ))),
    }
}

/// Sorts an SQLite error met while opening: damage, a file that cannot be written, or another
/// failure.
fn classify(error: rusqlite::Error, path: &Path) -> OpenProblem {
    match error.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
            OpenProblem::Damaged(Box::new(error))
        }
        Some(ErrorCode::ReadOnly | ErrorCode::PermissionDenied) => {
            OpenProblem::Failed(not_writable(path, &error.to_string()))
        }
        Some(ErrorCode::CannotOpen) => match unwritable(path) {
            Some(io) => OpenProblem::Failed(not_writable(path, &format!("{error}: {io}"))),
            None => OpenProblem::Failed(StoreError::backend(error)),
        },
        _ => OpenProblem::Failed(sql_error(error)),
    }
}

/// Whether the database file or its `-wal` file cannot be opened for writing for want of
/// permission (or on a read-only file system): the IO error if so. May create the database
/// file, and the `-wal` file beside an existing database file (both empty), as SQLite would.
fn unwritable(path: &Path) -> Option<std::io::Error> {
    let open = |file: &Path| {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(file)
            .err()
    };
    if let Some(error) = open(path) {
        return Some(error).filter(is_permission_error);
    }
    if !path.is_file() {
        return None;
    }
    open(&sibling(path, "-wal")).filter(is_permission_error)
}

fn is_permission_error(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
    )
}

/// A file system error about the store's file while doing `what`: [`NotWritable`] for a
/// permission error or a read-only file system.
fn io_error(path: &Path, what: &str, error: std::io::Error) -> StoreError {
    if is_permission_error(&error) {
        not_writable(path, &format!("{what}: {error}"))
    } else {
        StoreError::backend(format!("{}: {what}: {error}", path.display()))
    }
}

fn not_writable(path: &Path, detail: &str) -> StoreError {
    StoreError::backend(NotWritable {
        path: path.to_owned(),
        detail: detail.to_owned(),
    })
}

/// `path` with `suffix` appended to its file name (`cache.sqlite` + `-wal`).
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The SQLite files that belong with a database file, by suffix.
const COMPANIONS: [&str; 3] = ["-wal", "-shm", "-journal"];

/// What identifies a file across renames: device and inode on Unix.
#[cfg(unix)]
fn file_identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_identity(_path: &Path) -> Option<(u64, u64)> {
    None
}

/// Renames a damaged database file and its companions to `PATH.corrupt-SECS[.N]`, and logs it.
/// `Ok(None)` when the file at `path` is no longer the one found damaged (another process set
/// it aside first): nothing is renamed, and the caller opens the new file.
fn set_aside(
    path: &Path,
    identity: Option<(u64, u64)>,
    reason: &str,
) -> Result<Option<Recovery>, StoreError> {
    let now = file_identity(path);
    if identity.is_some() && now != identity {
        return Ok(None);
    }
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let base = sibling(path, &format!(".corrupt-{secs}"));
    let taken = |candidate: &Path| {
        candidate.exists()
            || COMPANIONS
                .iter()
                .any(|suffix| sibling(candidate, suffix).exists())
    };
    let moved_to = (0..1000)
        .map(|n| {
            if n == 0 {
                base.clone()
            } else {
                sibling(&base, &format!(".{n}"))
            }
        })
        .find(|candidate| !taken(candidate))
        .ok_or_else(|| {
            StoreError::backend(format!(
                "{}: no free name to set the damaged file aside",
                path.display()
            ))
        })?;
    match std::fs::rename(path, &moved_to) {
        Ok(()) => {}
        // Someone else moved it first.
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(io_error(path, "cannot set the damaged file aside", error)),
    }
    for suffix in COMPANIONS {
        let from = sibling(path, suffix);
        match std::fs::rename(&from, sibling(&moved_to, suffix)) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            // A stale `-wal` left beside the new file would be replayed into it: it must go.
            Err(error) => std::fs::remove_file(&from)
                .map_err(|_| io_error(&from, "cannot set the damaged file aside", error))?,
        }
    }
    tracing::warn!(
        path = %path.display(),
        moved_to = %moved_to.display(),
        reason,
        "the SQLite cache database is not usable: set it aside and started an empty cache"
    );
    Ok(Some(Recovery {
        moved_to,
        reason: reason.to_owned(),
    }))
}

/// What [`SqliteStoreBuilder::recover_damaged`] did with a file that was not a usable cache
/// database: see [`SqliteStore::recovery`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    moved_to: PathBuf,
    reason: String,
}

impl Recovery {
    /// Where the damaged file was moved (`PATH.corrupt-SECS`, `SECS` in unix seconds); its
    /// `-wal`, `-shm` and `-journal` files, if any, are beside it with the same suffixes.
    pub fn moved_to(&self) -> &Path {
        &self.moved_to
    }

    /// Why the file was not usable, as SQLite or the check put it (for example `file is not a
    /// database`, `database disk image is malformed`, `quick_check found damage: ...`).
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for Recovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the damaged cache database was moved to {} ({})",
            self.moved_to.display(),
            self.reason
        )
    }
}

/// The source of a [`StoreError`] from [`SqliteStoreBuilder::build`] (strict or
/// [`recover_damaged`](SqliteStoreBuilder::recover_damaged)) when the database file, its
/// directory or its file system cannot be written (read-only, or no permission): the store
/// cannot work there, and a caller that treats its cache as optional runs without it.
///
/// Find it with [`NotWritable::find`] (or `error.source()` and `downcast_ref`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotWritable {
    path: PathBuf,
    detail: String,
}

impl NotWritable {
    /// The `NotWritable` in `error`'s chain of sources, if there is one.
    pub fn find(error: &StoreError) -> Option<&NotWritable> {
        let mut source = std::error::Error::source(error);
        while let Some(error) = source {
            if let Some(found) = error.downcast_ref::<NotWritable>() {
                return Some(found);
            }
            source = error.source();
        }
        None
    }

    /// The database file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl fmt::Display for NotWritable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the SQLite cache database {} cannot be written ({}): give a writable path, or run uncached",
            self.path.display(),
            self.detail
        )
    }
}

impl std::error::Error for NotWritable {}

impl Inner {
    fn connect(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open(&self.path)?;
        conn.busy_timeout(self.busy_timeout)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let page_size: i64 = conn.query_row("PRAGMA page_size", [], |row| row.get(0))?;
        // A log frame is a page and its 24-byte header.
        let frame = u64::try_from(page_size).unwrap_or(4096).max(512) + 24;
        let pages = (self.wal_size_limit / frame).max(1);
        conn.pragma_update(
            None,
            "wal_autocheckpoint",
            i64::try_from(pages).unwrap_or(1000),
        )?;
        conn.pragma_update(
            None,
            "journal_size_limit",
            i64::try_from(self.wal_size_limit).unwrap_or(i64::MAX),
        )?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(conn)
    }

    /// After a write: when the `-wal` file is larger than twice its limit (a large write, or
    /// readers that kept checkpoints from completing), checkpoints and truncates it if no
    /// reader is using it, without waiting. Best effort: failures are logged at DEBUG.
    fn bound_wal(&self, conn: &Connection) {
        let Ok(meta) = std::fs::metadata(&self.wal_path) else {
            return;
        };
        if meta.len() <= self.wal_size_limit.saturating_mul(2) {
            return;
        }
        let result = conn.busy_timeout(Duration::ZERO).and_then(|()| {
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
                row.get::<_, i64>(0)
            })
        });
        match result {
            Ok(0) => {}
            Ok(_) => tracing::debug!("SQLite cache: the write-ahead log is in use, not truncated"),
            Err(error) => {
                tracing::debug!(%error, "SQLite cache: could not truncate the write-ahead log")
            }
        }
        if let Err(error) = conn.busy_timeout(self.busy_timeout) {
            tracing::debug!(%error, "SQLite cache: could not restore the busy timeout");
        }
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

/// Whether [`tokio::task::block_in_place`] may be called here without panicking: inside a task
/// of a multi-thread runtime. (It panics on a current-thread runtime; the main future of
/// `Runtime::block_on` is left out too, though it could, because a multi-thread runtime's
/// handle entered inside a current-thread runtime's `block_on` looks the same from here.)
#[cfg(feature = "read-in-place")]
fn can_block_in_place() -> bool {
    tokio::task::try_id().is_some()
        && tokio::runtime::Handle::try_current().is_ok_and(|handle| {
            handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
        })
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
    /// 5 s busy timeout, 4 connections, system clock; strict. The same as
    /// `SqliteStore::builder(path).build()`: see [`SqliteStoreBuilder::build`].
    ///
    /// # Errors
    /// As [`SqliteStoreBuilder::build`].
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        Self::builder(path).build()
    }

    /// Opens the store at `path` with the default settings, setting a file that is not a
    /// usable cache database aside and starting empty. See
    /// [`SqliteStoreBuilder::recover_damaged`]; the same as
    /// `SqliteStore::builder(path).recover_damaged(true).build()`.
    ///
    /// # Errors
    /// As [`SqliteStoreBuilder::recover_damaged`]: a [`NotWritable`] source when the file or its
    /// directory cannot be written.
    pub fn open_or_recover(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        Self::builder(path).recover_damaged(true).build()
    }

    /// A builder for a store at `path` (a file; created when missing, with its directories).
    pub fn builder(path: impl AsRef<Path>) -> SqliteStoreBuilder {
        SqliteStoreBuilder {
            path: path.as_ref().to_owned(),
            max_size: None,
            busy_timeout: DEFAULT_BUSY_TIMEOUT,
            pool_size: DEFAULT_POOL_SIZE,
            wal_size_limit: DEFAULT_WAL_SIZE_LIMIT,
            read_in_place: true,
            clock: Arc::new(SystemClock),
            mode: Mode::Strict,
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

    /// What [`SqliteStoreBuilder::recover_damaged`] (or [`SqliteStore::open_or_recover`]) set
    /// aside when it opened this store: `None` when the file was usable (and always after
    /// [`open`](SqliteStore::open)).
    pub fn recovery(&self) -> Option<&Recovery> {
        self.inner.recovery.as_ref()
    }

    /// Runs `f` on a pooled connection on a blocking thread.
    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &Inner) -> rusqlite::Result<T> + Send + 'static,
    {
        self.run_on_pool(f, false).await
    }

    /// [`run`](Self::run) for a short read: on the calling worker thread, in
    /// [`tokio::task::block_in_place`], when that is allowed (see
    /// [`SqliteStoreBuilder::read_in_place`]), saving the hand-off to a blocking thread.
    async fn run_read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &Inner) -> rusqlite::Result<T> + Send + 'static,
    {
        #[cfg(feature = "read-in-place")]
        if self.inner.read_in_place && can_block_in_place() {
            let _permit = self
                .inner
                .permits
                .acquire()
                .await
                .map_err(StoreError::backend)?;
            let inner = &*self.inner;
            return tokio::task::block_in_place(|| {
                let mut conn = inner.take().map_err(sql_error)?;
                let result = f(&mut conn, inner);
                inner.put_back(conn);
                result.map_err(sql_error)
            });
        }
        self.run(f).await
    }

    /// [`run`](Self::run) for an operation that writes: the write-ahead log is kept within its
    /// bound afterwards (see [`Inner::bound_wal`]).
    async fn run_write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &Inner) -> rusqlite::Result<T> + Send + 'static,
    {
        self.run_on_pool(f, true).await
    }

    async fn run_on_pool<T, F>(&self, f: F, writes: bool) -> Result<T, StoreError>
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
            if writes {
                inner.bound_wal(&conn);
            }
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
        self.run_write(move |conn, inner| delete_blocking(conn, inner, &filter))
            .await
    }

    /// Deletes every entry past its [`retain_until`](StoredResponse::retain_until) at `now`: the
    /// entries the store would no longer return anyway. Returns how many were deleted.
    ///
    /// # Errors
    /// As [`delete_expired`](Self::delete_expired).
    pub async fn delete_past_retention(&self, now: SystemTime) -> Result<u64, StoreError> {
        let now = millis_floor(now);
        self.run_write(move |conn, _| {
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
        self.run_write(move |conn, inner| delete_blocking(conn, inner, &filter))
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
    /// counted ([`disk_bytes`](Self::disk_bytes) counts it). Space of deleted entries is
    /// reused, and given back by [`vacuum`](Self::vacuum).
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

    /// The bytes the store takes on disk: the lengths of the database file, its `-wal` file
    /// and its `-shm` file (a missing file counts 0). The `-wal` file stays within about
    /// [`wal_size_limit`](SqliteStoreBuilder::wal_size_limit) plus the largest write; the
    /// database file keeps its largest size until [`vacuum`](Self::vacuum).
    ///
    /// # Errors
    /// [`StoreError::is_backend`] when the database file cannot be examined (it was removed, or
    /// its directory cannot be read).
    pub async fn disk_bytes(&self) -> Result<u64, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let main = std::fs::metadata(&inner.path)
                .map_err(|e| StoreError::backend(format!("{}: {e}", inner.path.display())))?
                .len();
            let beside = [inner.wal_path.clone(), sibling(&inner.path, "-shm")]
                .iter()
                .map(|file| std::fs::metadata(file).map_or(0, |m| m.len()))
                .sum::<u64>();
            Ok(main + beside)
        })
        .await
        .map_err(StoreError::backend)?
    }

    /// The bound on the `-wal` file in use, in bytes: the
    /// [`wal_size_limit`](SqliteStoreBuilder::wal_size_limit) setting, lowered to a quarter of
    /// [`max_size`](SqliteStoreBuilder::max_size) when there is one, and at least
    /// [`MIN_WAL_SIZE_LIMIT`].
    pub fn wal_size_limit(&self) -> u64 {
        self.inner.wal_size_limit
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
            .field("wal_size_limit", &self.inner.wal_size_limit)
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
    // The record is decoded where SQLite keeps it, without a copy; it is copied only when it
    // cannot be decoded (to delete exactly that record).
    let row = conn
        .prepare_cached("SELECT retain_until, accessed_at, record FROM responses WHERE key = ?1")?
        .query_row([key], |row| {
            let retain_until = row.get::<_, Option<i64>>(0)?;
            let accessed_at = row.get::<_, Option<i64>>(1)?;
            if retain_until.is_some_and(|until| until <= now_ms) {
                return Ok((Found::PastRetention, accessed_at));
            }
            let record = row.get_ref(2)?.as_blob()?;
            let found = match StoredResponse::decode(record) {
                Ok(entry) => Found::Entry(Arc::new(entry)),
                Err(error) => Found::Unreadable(record.to_vec(), error),
            };
            Ok((found, accessed_at))
        })
        .optional()?;
    let Some((found, accessed_at)) = row else {
        return Ok(None);
    };
    let entry = match found {
        Found::Entry(entry) => entry,
        Found::PastRetention => {
            delete_quietly(
                conn,
                inner,
                "DELETE FROM responses WHERE key = ?1 AND retain_until <= ?2",
                params![key, now_ms],
            );
            return Ok(None);
        }
        Found::Unreadable(record, error) => {
            tracing::warn!(key, %error, "deleting an unreadable cache record");
            let deleted = delete_quietly(
                conn,
                inner,
                "DELETE FROM responses WHERE key = ?1 AND record = ?2",
                params![key, record],
            );
            if deleted > 0 && error.is_corrupt() {
                inner
                    .corrupt_dropped
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
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
    Ok(Some(entry))
}

/// What a `get` found under its key.
enum Found {
    Entry(Arc<StoredResponse>),
    PastRetention,
    /// The record's bytes, and why they could not be decoded.
    Unreadable(Vec<u8>, cachelayer_store::DecodeError),
}

/// Runs a cleanup `DELETE` from a read, without waiting for the write lock (a read must not
/// wait for writers; the row is deleted by a later read, a write's eviction or
/// housekeeping): a failure is logged, not returned. The rows deleted (0 on failure).
fn delete_quietly(
    conn: &mut Connection,
    inner: &Inner,
    sql: &str,
    params: impl rusqlite::Params,
) -> usize {
    let result = conn.busy_timeout(Duration::ZERO).and_then(|()| {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let deleted = tx.prepare_cached(sql)?.execute(params)?;
        tx.commit()?;
        Ok(deleted)
    });
    if let Err(error) = conn.busy_timeout(inner.busy_timeout) {
        tracing::debug!(%error, "could not restore the busy timeout");
    }
    result.unwrap_or_else(|error| {
        tracing::debug!(%error, "could not delete a cache record from a read");
        0
    })
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
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    /// Records that failed their integrity check, found by `get` and deleted, by this store and
    /// its clones since it was opened.
    fn corrupt_records_dropped(&self) -> u64 {
        self.inner
            .corrupt_dropped
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn get(&self, key: &CacheKey) -> StoreFuture<Option<Arc<StoredResponse>>> {
        let store = self.clone();
        let key = key.to_string();
        Box::pin(async move {
            store
                .run_read(move |conn, inner| get_blocking(conn, inner, &key))
                .await
        })
    }

    fn put(&self, key: CacheKey, entry: Arc<StoredResponse>) -> StoreFuture<()> {
        let store = self.clone();
        Box::pin(async move {
            let key = key.to_string();
            store
                .run_write(move |conn, inner| put_blocking(conn, inner, &key, &entry))
                .await
        })
    }

    fn remove(&self, key: &CacheKey) -> StoreFuture<bool> {
        let store = self.clone();
        let key = key.to_string();
        Box::pin(async move {
            store
                .run_write(move |conn, _| {
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
                .run_write(|conn, _| {
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
                    self.run_write(move |conn, inner| delete_blocking(conn, inner, &filter))
                        .await
                }
                EntryFilter::Custom(predicate) => {
                    let victims = self
                        .run(move |conn, inner| custom_victims(conn, inner, &*predicate))
                        .await?;
                    self.run_write(move |conn, _| delete_victims(conn, &victims))
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
#[allow(clippy::unwrap_used)]
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

    #[test]
    fn set_aside_moves_the_file_and_its_companions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.sqlite");
        for (suffix, content) in [("", "main"), ("-wal", "wal"), ("-shm", "shm")] {
            std::fs::write(sibling(&path, suffix), content).unwrap();
        }
        let identity = file_identity(&path);
        let recovery = set_aside(&path, identity, "a test").unwrap().unwrap();
        assert_eq!(recovery.reason(), "a test");
        let moved = recovery.moved_to();
        assert!(
            moved
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("cache.sqlite.corrupt-")
        );
        for (suffix, content) in [("", "main"), ("-wal", "wal"), ("-shm", "shm")] {
            assert!(!sibling(&path, suffix).exists(), "{suffix} moved");
            assert_eq!(
                std::fs::read_to_string(sibling(moved, suffix)).unwrap(),
                content
            );
        }
        assert!(!sibling(moved, "-journal").exists());

        // A file that is no longer the one found damaged is left alone.
        std::fs::write(&path, "replaced by another process").unwrap();
        assert!(set_aside(&path, identity, "stale").unwrap().is_none());
        assert!(path.exists());

        // A name already taken is not overwritten.
        let again = set_aside(&path, file_identity(&path), "again")
            .unwrap()
            .unwrap();
        assert_ne!(again.moved_to(), moved);
        assert_eq!(std::fs::read_to_string(moved).unwrap(), "main");
    }
}
