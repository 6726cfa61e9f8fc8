//! The cost of a `get` that hits, for a 1 KiB and a 64 KiB body, on a file in a temporary
//! directory: a pooled connection, a blocking-thread hop, the query and the decode.
//!
//! `cargo bench -p cachelayer-sqlite --bench hit -- --measurement-time 3`

use cachelayer_sqlite::SqliteStore;
use cachelayer_store::conformance::sample_entry;
use cachelayer_store::{CacheKey, Store};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Arc;

fn hit(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = SqliteStore::open(dir.path().join("bench.sqlite")).expect("open the store");
    let mut group = c.benchmark_group("sqlite_get_hit");
    for size in [1024usize, 64 * 1024] {
        let key = CacheKey::custom(format!("bench-{size}"));
        let entry = sample_entry("http://api.example.com/v1/items?page=2", vec![b'x'; size]);
        rt.block_on(store.put(key.clone(), Arc::new(entry)))
            .expect("store the entry");
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &key, |b, key| {
            b.to_async(&rt).iter(|| async {
                let found = store.get(black_box(key)).await.expect("get");
                assert!(found.is_some(), "a hit");
                found
            });
        });
    }
    group.finish();
}

criterion_group!(benches, hit);
criterion_main!(benches);
