//! The cost of a `get` that hits, for a 1 KiB and a 64 KiB body, on the Redis at
//! `CACHELAYER_TEST_REDIS_URL` (default `redis://127.0.0.1:6379`): one round trip over loopback
//! and the decode.
//!
//! `cargo bench -p cachelayer-redis --bench hit -- --measurement-time 3`

use cachelayer_redis::RedisStore;
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
    let url = std::env::var("CACHELAYER_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let namespace = format!("cachelayer-bench:{}", std::process::id());
    let store = rt
        .block_on(async {
            let store = RedisStore::builder(url).namespace(namespace).build()?;
            store.ping().await.map(|()| store)
        })
        .expect("the benchmark needs Redis");
    let mut group = c.benchmark_group("redis_get_hit");
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
    rt.block_on(store.clear()).expect("clean up");
}

criterion_group!(benches, hit);
criterion_main!(benches);
