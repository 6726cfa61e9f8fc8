//! Bytes on disk per entry (database file + `-wal` + `-shm`) while writing small entries, and
//! the largest the `-wal` file gets.
//!
//! `cargo run --release -p cachelayer-sqlite --example disk_usage -- [ENTRIES] [RECORD_BYTES] [WAL_SIZE_LIMIT]`
//! (defaults: 10000 entries of about 180-byte records, the default WAL bound).
#![allow(clippy::unwrap_used)]

use cachelayer_sqlite::SqliteStore;
use cachelayer_store::conformance::sample_entry;
use cachelayer_store::{CacheKey, Store};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

fn len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn sibling(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let entries: usize = args.next().map_or(10_000, |a| a.parse().unwrap());
    let record_bytes: usize = args.next().map_or(180, |a| a.parse().unwrap());
    let wal_size_limit: Option<u64> = args.next().map(|a| a.parse().unwrap());

    // A body that makes the encoded record about `record_bytes` long.
    let url = "http://api.example.com/v1/items/0000000";
    let overhead = sample_entry(url, Vec::new()).encode().len();
    let body = vec![b'x'; record_bytes.saturating_sub(overhead)];
    let record = sample_entry(url, body.clone()).encode().len();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.sqlite");
    let (wal, shm) = (sibling(&path, "-wal"), sibling(&path, "-shm"));
    let mut builder = SqliteStore::builder(&path);
    if let Some(limit) = wal_size_limit {
        builder = builder.wal_size_limit(limit);
    }
    let store = builder.build().unwrap();
    println!("WAL bound: {} bytes", store.wal_size_limit());
    let mut wal_peak = 0;
    let started = Instant::now();
    println!("{record}-byte records ({overhead} bytes without a body)");
    println!("entries\tfile\twal\tshm\tbytes/entry\twal peak");
    for n in 0..entries {
        let mut digest = [0u8; 16];
        digest[..8].copy_from_slice(&(n as u64).to_le_bytes());
        let url = format!("http://api.example.com/v1/items/{n:07}");
        let entry = sample_entry(&url, body.clone());
        store
            .put(CacheKey::from_digest(digest), Arc::new(entry))
            .await
            .unwrap();
        wal_peak = wal_peak.max(len(&wal));
        let done = n + 1;
        if done == entries || [10, 100, 104, 1000].contains(&done) || done % 10_000 == 0 {
            let (f, w, s) = (len(&path), len(&wal), len(&shm));
            println!(
                "{done}\t{f}\t{w}\t{s}\t{}\t{wal_peak}",
                (f + w + s) / done as u64
            );
        }
    }
    let elapsed = started.elapsed();
    println!(
        "{entries} puts in {elapsed:?}: {:.1} µs per put",
        elapsed.as_secs_f64() * 1e6 / entries as f64
    );
    drop(store);
    let (f, w, s) = (len(&path), len(&wal), len(&shm));
    println!(
        "closed:\t{f}\t{w}\t{s}\t{}",
        (f + w + s) / entries.max(1) as u64
    );
    // What the checks of `open_or_recover` (`quick_check`) cost over the strict open.
    for _ in 0..2 {
        let started = Instant::now();
        drop(SqliteStore::open(&path).unwrap());
        let strict = started.elapsed();
        let started = Instant::now();
        let store = SqliteStore::open_or_recover(&path).unwrap();
        let recovering = started.elapsed();
        assert!(store.recovery().is_none());
        println!("reopening a {f}-byte file: open {strict:?}, open_or_recover {recovering:?}");
    }
}
