//! The cost of a `get` that hits, for a 1 KiB and a 64 KiB body, on a file in a temporary
//! directory: a pooled connection, the query and the decode, awaited in a task of a 2-worker
//! multi-thread runtime (as a server's request handling is):
//!
//! - `sqlite_get_hit`: the default, the query in `block_in_place` on the task's worker thread;
//! - `sqlite_get_hit_spawn_blocking`: `read_in_place(false)`, the query on a blocking thread
//!   (`spawn_blocking`), as every operation did before.
//!
//! `cargo bench -p cachelayer-sqlite --bench hit -- --measurement-time 3`

use cachelayer_sqlite::SqliteStore;
use cachelayer_store::conformance::sample_entry;
use cachelayer_store::{CacheKey, Store};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

fn hit(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("bench.sqlite");
    for (group_name, in_place) in [
        ("sqlite_get_hit", true),
        ("sqlite_get_hit_spawn_blocking", false),
    ] {
        let store = SqliteStore::builder(&path)
            .read_in_place(in_place)
            .build()
            .expect("open the store");
        let mut group = c.benchmark_group(group_name);
        for size in [1024usize, 64 * 1024] {
            let key = CacheKey::custom(format!("bench-{size}"));
            let entry = sample_entry("http://api.example.com/v1/items?page=2", vec![b'x'; size]);
            rt.block_on(store.put(key.clone(), Arc::new(entry)))
                .expect("store the entry");
            group.throughput(Throughput::Bytes(size as u64));
            group.bench_with_input(BenchmarkId::from_parameter(size), &key, |b, key| {
                b.iter_custom(|iters| {
                    let (store, key) = (store.clone(), key.clone());
                    // Timed inside a spawned task: `block_in_place` is used in tasks only.
                    rt.block_on(async move {
                        tokio::spawn(async move {
                            let started = Instant::now();
                            for _ in 0..iters {
                                let found = store.get(black_box(&key)).await.expect("get");
                                assert!(found.is_some(), "a hit");
                                black_box(found);
                            }
                            started.elapsed()
                        })
                        .await
                        .expect("the timing task")
                    })
                });
            });
        }
        group.finish();
    }
}

criterion_group!(benches, hit);
criterion_main!(benches);
