//! Bytes on disk: the write-ahead log stays within its bound while small entries are written,
//! so that the store's footprint per entry is the database file's, and a small cache fits on a
//! small disk.
//!
//! Before the bound (SQLite's defaults: a checkpoint every 1000 pages, the `-wal` file never
//! cut back), 10,000 writes of 189-byte records left a 4.2 MB `-wal` beside a 4.3 MB database
//! file, and 104 entries took 3.1 MB (30 KB each, nearly all `-wal`).
#![allow(clippy::unwrap_used)]

use cachelayer_sqlite::{DEFAULT_WAL_SIZE_LIMIT, MIN_WAL_SIZE_LIMIT, SqliteStore};
use cachelayer_store::conformance::sample_entry;
use cachelayer_store::{CacheKey, Store, StoredResponse};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

fn len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// An entry whose record is about `record_bytes` long (a short body, few header fields).
fn small_entry(n: usize, record_bytes: usize) -> StoredResponse {
    let url = format!("http://api.example.com/v1/items/{n:07}");
    let mut entry = sample_entry(&url, Vec::new());
    entry.headers.remove("set-cookie");
    entry.headers.remove("etag");
    let bare = entry.encode().len();
    entry.body = vec![b'x'; record_bytes.saturating_sub(bare)].into();
    entry
}

fn key(n: usize) -> CacheKey {
    let mut digest = [0u8; 16];
    digest[..8].copy_from_slice(&(n as u64).to_le_bytes());
    CacheKey::from_digest(digest)
}

/// 10,000 entries of 180-byte records: the `-wal` file never exceeds its bound by more than a
/// few writes, and the whole store (file, `-wal`, `-shm`) takes under 1 KiB per entry while
/// open, and under 640 bytes per entry once checkpointed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_small_entries_take_under_1_kib_each() {
    const ENTRIES: usize = 10_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.sqlite");
    let wal = sibling(&path, "-wal");
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.wal_size_limit(), DEFAULT_WAL_SIZE_LIMIT);
    let record = small_entry(0, 180).encode().len();
    assert!((170..=200).contains(&record), "{record}-byte records");

    let mut wal_peak = 0;
    for n in 0..ENTRIES {
        store
            .put(key(n), Arc::new(small_entry(n, 180)))
            .await
            .unwrap();
        wal_peak = wal_peak.max(len(&wal));
        if n + 1 == 1000 {
            let per_entry = store.disk_bytes().await.unwrap() / 1000;
            eprintln!("1,000 entries: {per_entry} bytes each on disk");
            // The bounded log still dominates at this size; unbounded, it was 4.6 KB.
            assert!(per_entry < 2048, "{per_entry} bytes per entry");
        }
    }
    let open = store.disk_bytes().await.unwrap();
    let (file, wal_now) = (len(&path), len(&wal));
    eprintln!(
        "{ENTRIES} entries of {record}-byte records: file {file}, wal {wal_now} (peak {wal_peak}), \
         {} bytes per entry on disk",
        open / ENTRIES as u64
    );
    assert!(
        wal_peak <= DEFAULT_WAL_SIZE_LIMIT + 128 * 1024,
        "the -wal file reached {wal_peak} bytes"
    );
    assert!(
        open / (ENTRIES as u64) < 1024,
        "{open} bytes on disk for {ENTRIES} entries"
    );
    assert_eq!(store.len().await.unwrap(), ENTRIES as u64);

    // Checkpointed and closed: the database file alone.
    drop(store);
    let closed = len(&path) + len(&wal) + len(&sibling(&path, "-shm"));
    eprintln!("closed: {} bytes per entry", closed / ENTRIES as u64);
    assert!(
        closed / (ENTRIES as u64) < 640,
        "{closed} bytes on disk for {ENTRIES} entries once checkpointed"
    );
}

/// The small disk: a store bounded to 1 MiB of records stays within 3 MiB on disk
/// (file, `-wal`, `-shm`) however many entries are written. Unbounded, the `-wal` alone filled
/// 3 MiB after 104 entries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounded_store_fits_a_small_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.sqlite");
    let store = SqliteStore::builder(&path)
        .max_size(1024 * 1024)
        .build()
        .unwrap();
    assert_eq!(store.wal_size_limit(), 256 * 1024, "a quarter of the bound");
    let mut peak = 0;
    // About 5,800 entries fit: the last 700 writes each evict.
    for n in 0..6_500 {
        store
            .put(key(n), Arc::new(small_entry(n, 180)))
            .await
            .unwrap();
        if n % 50 == 0 {
            peak = peak.max(store.disk_bytes().await.unwrap());
        }
    }
    let kept = store.len().await.unwrap();
    eprintln!("{kept} entries kept; at most {peak} bytes on disk");
    assert!(kept > 4000, "{kept} entries kept");
    assert!(peak <= 3 * 1024 * 1024, "{peak} bytes on disk");
}

/// One write larger than the log's bound leaves it larger only until it is truncated, at the
/// end of that write.
#[tokio::test]
async fn a_large_write_does_not_leave_a_large_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.sqlite");
    let store = SqliteStore::open(&path).unwrap();
    let big = sample_entry("http://example.com/big", vec![7u8; 6 * 1024 * 1024]);
    store
        .put(CacheKey::custom("big"), Arc::new(big))
        .await
        .unwrap();
    let wal = len(&sibling(&path, "-wal"));
    assert!(
        wal <= 2 * DEFAULT_WAL_SIZE_LIMIT,
        "{wal} bytes of -wal after a 6 MiB write"
    );
    let found = store.get(&CacheKey::custom("big")).await.unwrap().unwrap();
    assert_eq!(found.body.len(), 6 * 1024 * 1024);
}

#[test]
fn the_wal_bound_follows_the_settings() {
    let dir = tempfile::tempdir().unwrap();
    let open = |builder: cachelayer_sqlite::SqliteStoreBuilder| builder.build().unwrap();
    let path = dir.path().join("cache.sqlite");
    let limit = |store: SqliteStore| store.wal_size_limit();
    assert_eq!(
        limit(open(SqliteStore::builder(&path))),
        DEFAULT_WAL_SIZE_LIMIT
    );
    assert_eq!(
        limit(open(SqliteStore::builder(&path).wal_size_limit(300_000))),
        300_000
    );
    assert_eq!(
        limit(open(SqliteStore::builder(&path).wal_size_limit(0))),
        MIN_WAL_SIZE_LIMIT
    );
    assert_eq!(
        limit(open(SqliteStore::builder(&path).max_size(2 << 20))),
        512 * 1024
    );
    assert_eq!(
        limit(open(SqliteStore::builder(&path).max_size(10_000))),
        MIN_WAL_SIZE_LIMIT
    );
    assert_eq!(
        limit(open(
            SqliteStore::builder(&path)
                .max_size(1 << 30)
                .wal_size_limit(4 << 20)
        )),
        4 << 20
    );
}
