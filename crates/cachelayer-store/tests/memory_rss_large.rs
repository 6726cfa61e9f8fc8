//! A `MemoryStore` of 1 MiB bodies (larger than `compact` copies, joined from the chunks of
//! 400 KiB read buffers as the cache layer joins them): resident memory against the bound, with
//! glibc's default (dynamic) mmap threshold and with a fixed one (`MALLOC_MMAP_THRESHOLD_`).
//!
//! Each case runs in a child process (this test binary, filtered to this test): resident memory
//! is a property of the whole process, and glibc reads its tunables at start.
#![allow(clippy::unwrap_used)]

mod rss;

use bytes::{Bytes, BytesMut};
use cachelayer_store::{CacheKey, MemoryStore, Store};
use rss::{Connection, entry, rss_bytes};
use std::sync::Arc;

const BOUND: u64 = 64 * 1024 * 1024;
const BODY: usize = 1024 * 1024;

fn key(n: u64) -> CacheKey {
    let mut digest = [0u8; 16];
    digest[..8].copy_from_slice(&n.to_le_bytes());
    CacheKey::from_digest(digest)
}

/// Fills the store with 2,000 puts of 1 MiB bodies under 200 keys; returns RSS / bound.
async fn fill() -> f64 {
    let store = MemoryStore::builder().max_capacity(BOUND).build();
    store.len().await.unwrap();
    let baseline = rss_bytes();
    let mut connection = Connection::new(400 * 1024);
    for n in 0..2_000u64 {
        let mut stored = entry(&mut connection, n, format!("http://x.test/{}", n % 200), 0);
        let mut chunks: Vec<Bytes> = Vec::new();
        let mut left = BODY;
        while left > 0 {
            let chunk = left.min(399 * 1024);
            chunks.push(connection.read_response(n, chunk).1);
            left -= chunk;
        }
        let mut body = BytesMut::with_capacity(BODY);
        for chunk in chunks {
            body.extend_from_slice(&chunk);
        }
        stored.body = body.freeze();
        store.put(key(n % 200), Arc::new(stored)).await.unwrap();
    }
    drop(connection);
    store.len().await.unwrap();
    rss_bytes().saturating_sub(baseline) as f64 / BOUND as f64
}

fn run_case(threshold: Option<&str>) -> f64 {
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", "large_bodies", "--nocapture"])
        .env("CACHELAYER_RSS_CASE", "1");
    match threshold {
        Some(bytes) => command.env("MALLOC_MMAP_THRESHOLD_", bytes),
        None => command.env_remove("MALLOC_MMAP_THRESHOLD_"),
    };
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("rss-result "))
        .and_then(|ratio| ratio.parse().ok())
        .unwrap_or_else(|| panic!("no result: {stdout}"))
}

#[test]
fn large_bodies() {
    if std::env::var_os("CACHELAYER_RSS_CASE").is_some() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        println!("rss-result {}", rt.block_on(fill()));
        return;
    }
    let dynamic = run_case(None);
    let fixed = run_case(Some("131072"));
    eprintln!(
        "1 MiB bodies in a 64 MiB store: RSS {dynamic:.2} x the bound with glibc's dynamic mmap \
         threshold, {fixed:.2} x with MALLOC_MMAP_THRESHOLD_=131072"
    );
    if cfg!(all(target_os = "linux", target_env = "gnu"))
        && std::env::var_os("CACHELAYER_RSS_REPORT_ONLY").is_none()
    {
        // Measured 0.98 x with the dynamic threshold and 0.94 x with the fixed one: an evicted
        // body is freed in the `put` that evicts it, before the next large allocation. The
        // bound here leaves room for the allocator's noise.
        assert!(
            fixed <= 1.5 && dynamic <= 1.5,
            "{fixed:.2} x the bound with a fixed mmap threshold, {dynamic:.2} x without"
        );
    }
}
