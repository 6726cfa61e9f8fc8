//! The memory a `MemoryStore` uses for small entries (100-byte bodies) whose header values and
//! bodies arrive as slices of hyper's read buffers, against the weight it counts for them: on a
//! kept-alive connection (responses share 64 KiB buffers) and one connection per response (an
//! 8 KiB buffer each, as behind a reverse proxy that opens a connection per request).
//!
//! One test per file: resident memory is a property of the whole process.
#![allow(clippy::unwrap_used)]

mod rss;

use cachelayer_store::{CacheKey, MemoryStore, Store};
use rss::{Connection, entry, rss_bytes, serve};
use std::sync::Arc;

const ENTRIES: u64 = 20_000;

fn key(n: u64) -> CacheKey {
    let mut digest = [0u8; 16];
    digest[..8].copy_from_slice(&n.to_le_bytes());
    CacheKey::from_digest(digest)
}

/// Fills a store with `ENTRIES` entries of 100-byte bodies; returns (RSS per entry after the
/// fill, weight per entry, RSS per entry once each entry was served once).
async fn fill(one_connection_per_response: bool) -> (f64, f64, f64) {
    // Larger than the entries: nothing is evicted.
    let store = MemoryStore::builder().max_capacity(1 << 30).build();
    let mut connection = Connection::new(64 * 1024);
    store.len().await.unwrap();
    let before = rss_bytes();
    for n in 0..ENTRIES {
        if one_connection_per_response {
            connection = Connection::new(8 * 1024);
        }
        let url = format!("http://api.example.com/v1/items/{n}?page=2");
        let entry = entry(&mut connection, n, url, 100);
        store.put(key(n), Arc::new(entry)).await.unwrap();
    }
    drop(connection);
    assert_eq!(store.len().await.unwrap(), ENTRIES, "nothing evicted");
    let filled = rss_bytes();
    let weight = store.weighted_size();
    for n in 0..ENTRIES {
        let entry = store.get(&key(n)).await.unwrap().unwrap();
        drop(serve(&entry));
    }
    let served = rss_bytes();
    let per_entry = |rss: u64| (rss.saturating_sub(before)) as f64 / ENTRIES as f64;
    (
        per_entry(filled),
        weight as f64 / ENTRIES as f64,
        per_entry(served),
    )
}

/// Runs one case in a child process (this test binary, filtered to this test, with
/// `CACHELAYER_RSS_CASE` set), so that each measures a fresh heap; returns what it printed.
fn run_case(case: &str) -> (f64, f64, f64) {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "small_entries_use_about_what_they_weigh",
            "--nocapture",
        ])
        .env("CACHELAYER_RSS_CASE", case)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "case {case}: {stdout}");
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix("rss-result "))
        .unwrap_or_else(|| panic!("case {case} printed no result: {stdout}"));
    let numbers: Vec<f64> = line.split(' ').map(|n| n.parse().unwrap()).collect();
    (numbers[0], numbers[1], numbers[2])
}

#[test]
fn small_entries_use_about_what_they_weigh() {
    if let Ok(case) = std::env::var("CACHELAYER_RSS_CASE") {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (rss, weight, served) = rt.block_on(fill(case == "per-response"));
        println!("rss-result {rss} {weight} {served}");
        return;
    }
    for (case, how) in [
        ("kept-alive", "kept-alive connection (64 KiB buffers)"),
        ("per-response", "one connection (8 KiB buffer) per response"),
    ] {
        let (rss, weight, served) = run_case(case);
        eprintln!(
            "{how}: {ENTRIES} entries of 100-byte bodies: RSS {rss:.0} B/entry after the fill, \
             {served:.0} B/entry once served; weight {weight:.0} B/entry"
        );
        if std::env::var_os("CACHELAYER_RSS_REPORT_ONLY").is_none() {
            assert!(
                served <= weight * 1.3,
                "{how}: {served:.0} bytes of RSS per entry, weighed {weight:.0}"
            );
        }
    }
}
