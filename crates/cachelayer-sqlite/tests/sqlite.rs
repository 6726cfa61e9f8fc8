//! SqliteStore's own behaviour: the file and its schema, retention by the store's clock, the LRU
//! size bound, housekeeping, lock timeouts, and two OS processes sharing one file.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use cachelayer_sqlite::SqliteStore;
use cachelayer_store::conformance::sample_entry;
use cachelayer_store::{CacheKey, Clock, ManualClock, Store, StoredResponse};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.sqlite");
    (dir, path)
}

fn raw(path: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn
}

fn raw_count(path: &Path) -> i64 {
    raw(path)
        .query_row("SELECT COUNT(*) FROM responses", [], |row| row.get(0))
        .unwrap()
}

fn entry_at(now: SystemTime, url: &str, body: impl Into<Bytes>) -> StoredResponse {
    let mut entry = sample_entry(url, body);
    entry.request_time = now;
    entry.created_at = now;
    entry.expires = Some(now + Duration::from_secs(60));
    entry.retain_until = Some(now + Duration::from_secs(600));
    entry
}

/// Now, to the millisecond: the store keeps times in unix milliseconds.
fn now_ms() -> SystemTime {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    UNIX_EPOCH + Duration::from_millis(since.as_millis() as u64)
}

fn k(name: &str) -> CacheKey {
    CacheKey::custom(name)
}

#[tokio::test]
async fn entries_survive_reopening() {
    let (_dir, path) = temp_db();
    let entry = sample_entry("http://example.com/persist", &b"persisted"[..]);
    {
        let store = SqliteStore::open(&path).unwrap();
        store
            .put(k("persist"), Arc::new(entry.clone()))
            .await
            .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let found = store.get(&k("persist")).await.unwrap().unwrap();
    assert_eq!(*found, entry);
}

#[tokio::test]
async fn file_is_in_wal_mode_with_the_documented_schema() {
    let (_dir, path) = temp_db();
    let _store = SqliteStore::open(&path).unwrap();
    let conn = raw(&path);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(version, 1);
    let mut stmt = conn
        .prepare("SELECT name, type, pk FROM pragma_table_info('responses') ORDER BY cid")
        .unwrap();
    let columns: Vec<(String, String, i64)> = stmt
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let expected = [
        ("key", "TEXT", 1),
        ("url", "TEXT", 0),
        ("created_at", "INTEGER", 0),
        ("expires", "INTEGER", 0),
        ("retain_until", "INTEGER", 0),
        ("size", "INTEGER", 0),
        ("accessed_at", "INTEGER", 0),
        ("record", "BLOB", 0),
    ];
    let columns: Vec<(&str, &str, i64)> = columns
        .iter()
        .map(|(n, t, pk)| (n.as_str(), t.as_str(), *pk))
        .collect();
    assert_eq!(columns, expected);
    let mut stmt = conn
        .prepare("SELECT name FROM pragma_index_list('responses')")
        .unwrap();
    let indexes: HashSet<String> = stmt
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for column in ["expires", "created_at", "retain_until", "accessed_at"] {
        assert!(
            indexes.contains(&format!("responses_{column}")),
            "index on {column}: {indexes:?}"
        );
    }
}

#[tokio::test]
async fn columns_hold_url_size_and_unix_millisecond_times() {
    let (_dir, path) = temp_db();
    let now = UNIX_EPOCH + Duration::new(1_700_000_000, 500_000);
    let clock = ManualClock::new(now);
    let store = SqliteStore::builder(&path)
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let entry = entry_at(now, "http://example.com/cols?a=1", &b"columns"[..]);
    store.put(k("cols"), Arc::new(entry.clone())).await.unwrap();
    let row: (String, i64, i64, i64, i64, i64, String) = raw(&path)
        .query_row(
            "SELECT url, created_at, expires, retain_until, size, accessed_at, key FROM responses",
            [],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            },
        )
        .unwrap();
    let ms = 1_700_000_000_000i64;
    assert_eq!(row.0, "http://example.com/cols?a=1");
    assert_eq!(row.1, ms, "created_at rounds down");
    assert_eq!(row.2, ms + 60_001, "expires rounds up");
    assert_eq!(row.3, ms + 600_001, "retain_until rounds up");
    assert_eq!(row.4, entry.encode().len() as i64);
    assert_eq!(row.5, ms, "accessed_at is the store clock's");
    assert_eq!(row.6, "cols");
    assert_eq!(store.stored_bytes().await.unwrap(), row.4 as u64);
}

#[tokio::test]
async fn digest_and_custom_keys_list_as_stored() {
    let (_dir, path) = temp_db();
    let store = SqliteStore::open(&path).unwrap();
    let keys = [
        CacheKey::from_digest([0xab; 16]),
        CacheKey::custom("custom key with spaces / and ünïcode"),
        CacheKey::custom(""),
    ];
    for (n, key) in keys.iter().enumerate() {
        let entry = sample_entry("http://example.com/", vec![n as u8; 3]);
        store.put(key.clone(), Arc::new(entry)).await.unwrap();
    }
    let listed: HashSet<CacheKey> = store.keys().await.unwrap().into_iter().collect();
    assert_eq!(listed, keys.iter().cloned().collect());
    for (n, key) in keys.iter().enumerate() {
        assert_eq!(
            store.get(key).await.unwrap().unwrap().body[..],
            [n as u8; 3]
        );
    }
}

#[tokio::test]
async fn past_retention_by_the_store_clock_is_a_miss_and_deleted() {
    let (_dir, path) = temp_db();
    let clock = ManualClock::new(now_ms());
    let store = SqliteStore::builder(&path)
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let entry = entry_at(clock.now(), "http://example.com/r", &b"r"[..]);
    store.put(k("r"), Arc::new(entry)).await.unwrap();
    clock.advance(Duration::from_secs(599));
    assert!(
        store.get(&k("r")).await.unwrap().is_some(),
        "still retained"
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(store.len().await.unwrap(), 0, "not counted once past");
    assert!(
        store.keys().await.unwrap().is_empty(),
        "not listed once past"
    );
    assert_eq!(raw_count(&path), 1, "still in the file until read");
    assert!(store.get(&k("r")).await.unwrap().is_none());
    assert_eq!(raw_count(&path), 0, "deleted when read");

    // Already past retention when written: not stored.
    let mut late = entry_at(clock.now(), "http://example.com/late", &b"late"[..]);
    late.retain_until = Some(clock.now());
    store.put(k("late"), Arc::new(late)).await.unwrap();
    assert_eq!(raw_count(&path), 0);
}

#[tokio::test]
async fn max_size_evicts_the_least_recently_used() {
    let (_dir, path) = temp_db();
    let clock = ManualClock::new(now_ms());
    let body = vec![7u8; 10_000];
    let one = entry_at(clock.now(), "http://example.com/x", body.clone())
        .encode()
        .len() as u64;
    let store = SqliteStore::builder(&path)
        .clock(Arc::new(clock.clone()))
        .max_size(3 * one + one / 2)
        .build()
        .unwrap();
    for name in ["a", "b", "c"] {
        let entry = entry_at(clock.now(), "http://example.com/x", body.clone());
        store.put(k(name), Arc::new(entry)).await.unwrap();
        clock.advance(Duration::from_secs(2));
    }
    assert!(
        store.get(&k("a")).await.unwrap().is_some(),
        "a is used again"
    );
    clock.advance(Duration::from_secs(2));
    let entry = entry_at(clock.now(), "http://example.com/x", body.clone());
    store.put(k("d"), Arc::new(entry)).await.unwrap();
    let left: HashSet<CacheKey> = store.keys().await.unwrap().into_iter().collect();
    assert_eq!(left, [k("a"), k("c"), k("d")].into_iter().collect());
    assert_eq!(store.stored_bytes().await.unwrap(), 3 * one);

    // Larger than the whole bound: not stored, and the key's previous entry is gone too.
    let huge = entry_at(clock.now(), "http://example.com/x", vec![0u8; 40_000]);
    store.put(k("a"), Arc::new(huge)).await.unwrap();
    assert!(store.get(&k("a")).await.unwrap().is_none());
    assert_eq!(store.len().await.unwrap(), 2);

    // Entries past retention go before any live entry.
    let mut short = entry_at(clock.now(), "http://example.com/x", body.clone());
    short.retain_until = Some(clock.now() + Duration::from_secs(1));
    store.put(k("short"), Arc::new(short)).await.unwrap();
    clock.advance(Duration::from_secs(5));
    for name in ["e", "f"] {
        let entry = entry_at(clock.now(), "http://example.com/x", body.clone());
        store.put(k(name), Arc::new(entry)).await.unwrap();
    }
    let left: HashSet<CacheKey> = store.keys().await.unwrap().into_iter().collect();
    assert_eq!(left, [k("d"), k("e"), k("f")].into_iter().collect());
    assert_eq!(raw_count(&path), 3);
}

#[tokio::test]
async fn delete_expired_and_delete_older_than() {
    let (_dir, path) = temp_db();
    let t0 = now_ms();
    let store = SqliteStore::open(&path).unwrap();
    // old: created at t0 - 1 h, expired at t0 - 30 min, retained for a day.
    let mut old = entry_at(
        t0 - Duration::from_secs(3600),
        "http://example.com/old",
        "o",
    );
    old.expires = Some(t0 - Duration::from_secs(1800));
    old.retain_until = Some(t0 + Duration::from_secs(86_400));
    // fresh: created at t0, expires in a minute.
    let fresh = entry_at(t0, "http://example.com/fresh", "f");
    // forever: created at t0 - 2 h, never expires.
    let mut forever = entry_at(
        t0 - Duration::from_secs(7200),
        "http://example.com/forever",
        "v",
    );
    forever.expires = None;
    forever.retain_until = None;
    store.put(k("old"), Arc::new(old)).await.unwrap();
    store.put(k("fresh"), Arc::new(fresh)).await.unwrap();
    store.put(k("forever"), Arc::new(forever)).await.unwrap();

    assert_eq!(store.delete_expired(t0).await.unwrap(), 1);
    assert!(store.get(&k("old")).await.unwrap().is_none());
    assert_eq!(store.len().await.unwrap(), 2);
    assert_eq!(
        store
            .delete_older_than(t0 - Duration::from_secs(60))
            .await
            .unwrap(),
        1,
        "created two hours ago"
    );
    assert!(store.get(&k("forever")).await.unwrap().is_none());
    assert!(store.get(&k("fresh")).await.unwrap().is_some());
    assert_eq!(
        store
            .delete_past_retention(t0 + Duration::from_secs(600))
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.len().await.unwrap(), 0);
}

#[tokio::test]
async fn vacuum_gives_space_back() {
    let (_dir, path) = temp_db();
    let store = SqliteStore::open(&path).unwrap();
    for n in 0..100 {
        let entry = sample_entry("http://example.com/big", vec![n as u8; 32 * 1024]);
        store
            .put(k(&format!("big-{n}")), Arc::new(entry))
            .await
            .unwrap();
    }
    let full = store.size_bytes().await.unwrap();
    assert!(full > 3 * 1024 * 1024, "100 × 32 KiB: {full} bytes");
    store.clear().await.unwrap();
    assert_eq!(store.stored_bytes().await.unwrap(), 0);
    store.vacuum().await.unwrap();
    let empty = store.size_bytes().await.unwrap();
    assert!(empty < 256 * 1024, "after vacuum: {empty} bytes");
    let on_disk = std::fs::metadata(&path).unwrap().len();
    assert_eq!(on_disk, empty, "the file itself shrank");
}

#[tokio::test]
async fn in_memory_databases_are_refused() {
    for path in [":memory:", ""] {
        let error = SqliteStore::open(path).unwrap_err();
        assert!(error.is_unsupported(), "{path:?}: {error}");
    }
}

#[tokio::test]
async fn unopenable_file_is_a_backend_error() {
    let (dir, _) = temp_db();
    let not_a_db = dir.path().join("not.sqlite");
    std::fs::write(&not_a_db, vec![b'x'; 4096]).unwrap();
    let error = SqliteStore::open(&not_a_db).unwrap_err();
    assert!(error.is_backend(), "{error}");
}

/// While another connection holds the write lock, a write waits for the busy timeout and fails
/// with a timeout error, on a blocking thread: the (single-threaded) runtime keeps running other
/// tasks meanwhile.
#[tokio::test(flavor = "current_thread")]
async fn locked_database_times_out_without_blocking_the_runtime() {
    let (_dir, path) = temp_db();
    let store = SqliteStore::builder(&path)
        .busy_timeout(Duration::from_millis(400))
        .build()
        .unwrap();
    let locker = raw(&path);
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();

    let ticks = Arc::new(AtomicU64::new(0));
    let ticker = tokio::spawn({
        let ticks = ticks.clone();
        async move {
            loop {
                tokio::time::sleep(Duration::from_millis(10)).await;
                ticks.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let started = Instant::now();
    let entry = sample_entry("http://example.com/locked", &b"x"[..]);
    let error = store.put(k("locked"), Arc::new(entry)).await.unwrap_err();
    let waited = started.elapsed();
    ticker.abort();
    assert!(error.is_timeout(), "{error}");
    assert!(
        waited >= Duration::from_millis(350) && waited < Duration::from_secs(3),
        "waited {waited:?}"
    );
    let ticks = ticks.load(Ordering::Relaxed);
    assert!(
        ticks >= 15,
        "the runtime ran other tasks while SQLite waited: {ticks} ticks"
    );
    // Readers are not blocked by a writer in WAL mode.
    assert!(store.get(&k("locked")).await.unwrap().is_none());
    locker.execute_batch("COMMIT").unwrap();
    let entry = sample_entry("http://example.com/locked", &b"x"[..]);
    store.put(k("locked"), Arc::new(entry)).await.unwrap();
}

// ===== Reads in place (block_in_place) on a multi-thread runtime =====

/// Gets awaited in tasks of a multi-thread runtime (run in place) and on a blocking thread
/// (`read_in_place(false)`) return the same entries, with puts from other tasks at the same
/// time, and from the `block_on` future (never in place).
#[test]
fn reads_in_place_and_on_blocking_threads_agree() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (_dir, path) = temp_db();
    for in_place in [true, false] {
        let store = SqliteStore::builder(&path)
            .read_in_place(in_place)
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut tasks = Vec::new();
            for task in 0..8usize {
                let store = store.clone();
                tasks.push(tokio::spawn(async move {
                    for n in 0..50usize {
                        let name = format!("{in_place}-{task}-{n}");
                        let entry =
                            sample_entry("http://example.com/mt", name.clone().into_bytes());
                        store.put(k(&name), Arc::new(entry)).await.unwrap();
                        let found = store.get(&k(&name)).await.unwrap().unwrap();
                        assert_eq!(found.body[..], *name.as_bytes());
                        assert!(store.get(&k("missing")).await.unwrap().is_none());
                    }
                }));
            }
            for task in tasks {
                task.await.unwrap();
            }
            // From the `block_on` future itself.
            let found = store.get(&k(&format!("{in_place}-0-0"))).await.unwrap();
            assert!(found.is_some());
        });
    }
}

/// A clock that takes `delay` to answer while `slow` is set: a stand-in for a read that waits
/// (on the disk, or on another process's lock).
#[derive(Debug)]
struct SlowClock {
    slow: std::sync::atomic::AtomicBool,
    delay: Duration,
}

impl Clock for SlowClock {
    fn now(&self) -> SystemTime {
        if self.slow.load(Ordering::SeqCst) {
            std::thread::sleep(self.delay);
        }
        SystemTime::now()
    }
}

/// Gets that block in place (here for 300 ms each, on both workers of a 2-worker runtime) do
/// not stall the runtime: `block_in_place` hands each worker's other tasks to another thread,
/// so the other tasks keep running.
#[test]
fn reads_blocking_in_place_do_not_stall_the_runtime() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (_dir, path) = temp_db();
    let clock = Arc::new(SlowClock {
        slow: false.into(),
        delay: Duration::from_millis(300),
    });
    let store = SqliteStore::builder(&path)
        .clock(clock.clone())
        .build()
        .unwrap();
    runtime
        .block_on(store.put(
            k("slow"),
            Arc::new(sample_entry("http://example.com/", &b"x"[..])),
        ))
        .unwrap();
    clock.slow.store(true, Ordering::SeqCst);
    runtime.block_on(async {
        let ticks = Arc::new(AtomicU64::new(0));
        let ticker = tokio::spawn({
            let ticks = ticks.clone();
            async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    ticks.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        let started = Instant::now();
        let reads: Vec<_> = (0..2)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.get(&k("slow")).await })
            })
            .collect();
        for read in reads {
            assert!(read.await.unwrap().unwrap().is_some());
        }
        let waited = started.elapsed();
        ticker.abort();
        let ticks = ticks.load(Ordering::Relaxed);
        eprintln!("{ticks} ticks in {waited:?}");
        assert!(waited >= Duration::from_millis(290), "waited {waited:?}");
        assert!(
            ticks >= 20,
            "the ticker ran while both workers' reads blocked: {ticks} ticks in {waited:?}"
        );
    });
}

// ===== Two processes on one file =====

const CHILD_ENV: &str = "CACHELAYER_SQLITE_TEST_CHILD_DIR";
const ENTRIES_PER_PROCESS: usize = 400;

fn body_for(role: &str, n: usize) -> Vec<u8> {
    let seed = role
        .bytes()
        .fold(n, |acc, b| acc.wrapping_mul(31) + b as usize);
    (0..(200 + (n * 37) % 8000))
        .map(|i| (seed.wrapping_add(i) % 251) as u8)
        .collect()
}

fn wait_for(file: &Path, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !file.exists() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// One process's part: open the shared file, write its entries from 4 tasks while reading the
/// other process's, then check every one of the other's entries.
fn run_role(dir: &Path, me: &str, other: &str) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = SqliteStore::open(dir.join("shared.sqlite")).unwrap();
        std::fs::write(dir.join(format!("{me}.ready")), b"").unwrap();
        wait_for(
            &dir.join(format!("{other}.ready")),
            "the other process to open",
        );

        let mut tasks = Vec::new();
        for task in 0..4usize {
            let store = store.clone();
            let (me, other) = (me.to_owned(), other.to_owned());
            tasks.push(tokio::spawn(async move {
                let mut seen = 0usize;
                for n in (task..ENTRIES_PER_PROCESS).step_by(4) {
                    let entry = sample_entry("http://example.com/mp", body_for(&me, n));
                    store
                        .put(k(&format!("{me}-{n}")), Arc::new(entry))
                        .await
                        .unwrap();
                    if let Some(found) = store.get(&k(&format!("{other}-{n}"))).await.unwrap() {
                        assert_eq!(found.body[..], body_for(&other, n)[..]);
                        seen += 1;
                    }
                }
                seen
            }));
        }
        let mut seen_while_writing = 0;
        for task in tasks {
            seen_while_writing += task.await.unwrap();
        }
        eprintln!("{me}: saw {seen_while_writing} of {other}'s entries while writing");
        std::fs::write(dir.join(format!("{me}.done")), b"").unwrap();
        wait_for(
            &dir.join(format!("{other}.done")),
            "the other process to write",
        );

        for n in 0..ENTRIES_PER_PROCESS {
            let found = store
                .get(&k(&format!("{other}-{n}")))
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("{me}: {other}-{n} is lost"));
            assert_eq!(found.body[..], body_for(other, n)[..], "{other}-{n}");
        }
        assert_eq!(store.len().await.unwrap(), 2 * ENTRIES_PER_PROCESS as u64);
    });
}

/// The child half of [`two_processes_share_one_file`]; does nothing unless started by it.
#[test]
fn child_process_writer() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        run_role(Path::new(&dir), "child", "parent");
    }
}

/// Two OS processes (this test binary, and itself re-run as `child_process_writer`) open one
/// file, write 400 entries each at the same time and read each other's: no errors, none lost.
#[test]
fn two_processes_share_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let parent = std::panic::catch_unwind(|| run_role(dir.path(), "parent", "child"));
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let output = child.wait_with_output().unwrap();
    let child_log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("child process:\n{child_log}");
    assert!(output.status.success(), "the child process failed");
    assert!(child_log.contains("1 passed"), "the child ran its test");
    if let Err(panic) = parent {
        std::panic::resume_unwind(panic);
    }
}
