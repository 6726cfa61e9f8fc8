//! How a `MemoryStore`-backed cache scales with its number of entries: resident memory per
//! entry, and the cost of a hit on one hot key and on a key picked at random, with 1,000,
//! 100,000 and 1,000,000 stored responses of 100-byte bodies.
//!
//! ```sh
//! cargo bench -p cachelayer --bench scaling
//! ```
//!
//! Each size gets its own cache, filled through the layer (a request per URL, body read to its
//! end) from a `tower::service_fn` origin answering `Content-Type`, `Cache-Control: public,
//! max-age=3600`, `ETag` and `Date` with a 100-byte body. The store's capacity leaves room for
//! every entry (nothing is evicted). Resident memory (`/proc/self/statm`, Linux) is read before
//! and after the fill; the caches stay alive until the end, so a later fill cannot reuse memory
//! freed by an earlier one. Bytes per entry therefore include everything an entry costs: the
//! stored response, the store's bookkeeping and what the allocator keeps around them.
//!
//! A timed call builds its request (formatting its URL: `http://api.example.com/items/{n}?page=2`),
//! calls the layer and reads the body. "hot" asks for the same key every time; "random" for a
//! key drawn uniformly (xorshift) from the stored ones, so its lookups mostly miss the CPU
//! caches at the larger sizes. The last output is a table of the medians and the memory.
//!
//! The largest case takes a few seconds to fill on a 2-core machine; `SCALING_MAX=100000` stops
//! before it.

use bytes::Bytes;
use cachelayer::{CacheLayer, CacheSettings, MemoryStore, Store};
use criterion::Criterion;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty, Full};
use std::convert::Infallible;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tower::{Layer, Service, ServiceExt, service_fn};

/// The numbers of entries measured.
const SIZES: [u64; 3] = [1_000, 100_000, 1_000_000];

/// Body bytes of every stored response.
const BODY_LEN: usize = 100;

/// Capacity per entry given to the store: far above an entry's weight, so nothing is evicted.
const CAPACITY_PER_ENTRY: u64 = 4096;

/// The page size `/proc/self/statm` counts in (4 KiB on x86-64 and most aarch64 Linux systems).
const PAGE_SIZE: u64 = 4096;

static BODY: [u8; BODY_LEN] = [b'x'; BODY_LEN];

fn uri(n: u64) -> String {
    format!("http://api.example.com/items/{n}?page=2")
}

fn request(n: u64) -> Request<Empty<Bytes>> {
    Request::get(uri(n))
        .header("accept", "application/json")
        .header("user-agent", "bench/1.0")
        .body(Empty::new())
        .expect("valid request")
}

/// Resident memory of this process, in bytes (`/proc/self/statm`'s second field, in pages).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * PAGE_SIZE)
}

/// One request through `service` for entry `n`, its body read to the end.
async fn call<S, RB>(service: &mut S, n: u64)
where
    S: Service<Request<Empty<Bytes>>, Response = Response<RB>>,
    S::Error: std::fmt::Debug,
    RB: http_body::Body,
    RB::Error: std::fmt::Debug,
{
    let response = service
        .ready()
        .await
        .expect("ready")
        .call(request(n))
        .await
        .expect("response");
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    black_box(body.len());
}

/// A small xorshift generator: uniform enough to spread lookups, cheap enough not to matter.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

/// What one size measured.
struct Row {
    entries: u64,
    rss_per_entry: Option<f64>,
    weight_per_entry: f64,
    fill: Duration,
    hot_ns: Option<f64>,
    random_ns: Option<f64>,
}

/// Criterion's median point estimate (ns per iteration) in `dir/new/estimates.json`.
fn read_median(dir: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(dir.join("new").join("estimates.json")).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    value["median"]["point_estimate"].as_f64()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let output = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
        .join("criterion");
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
        .output_directory(&output)
        .configure_from_args();
    let max_entries: u64 = std::env::var("SCALING_MAX")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(u64::MAX);

    let origin = service_fn(|_req: Request<Empty<Bytes>>| async {
        let response = Response::builder()
            .header("content-type", "application/json")
            .header("cache-control", "public, max-age=3600")
            .header("etag", "\"33a64df551425fcc55e4d42a148795d9f25f89d4\"")
            .header(
                "date",
                httpdate::fmt_http_date(std::time::SystemTime::now()),
            )
            .body(Full::new(Bytes::from_static(&BODY)))
            .expect("valid response");
        Ok::<_, Infallible>(response)
    });

    let mut rows = Vec::new();
    // Kept alive to the end: a later fill must not reuse memory an earlier cache freed.
    let mut keep = Vec::new();
    for entries in SIZES.into_iter().filter(|&entries| entries <= max_entries) {
        let store = MemoryStore::builder()
            .max_capacity(entries * CAPACITY_PER_ENTRY)
            .build();
        let mut service =
            CacheLayer::with_store(store.clone(), CacheSettings::default()).layer(origin);
        let before = resident_bytes();
        let start = Instant::now();
        let stored = runtime.block_on(async {
            for n in 0..entries {
                call(&mut service, n).await;
            }
            store.len().await.expect("memory store len")
        });
        let fill = start.elapsed();
        assert_eq!(stored, entries, "every response stored, none evicted");
        let after = resident_bytes();
        let rss_per_entry = before
            .zip(after)
            .map(|(before, after)| after.saturating_sub(before) as f64 / entries as f64);
        let weight_per_entry = store.weighted_size() as f64 / entries as f64;

        let group_name = format!("scaling_{entries}");
        let mut group = criterion.benchmark_group(&group_name);
        let hot = entries / 2;
        group.bench_function("hot", |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        call(&mut service, hot).await;
                    }
                    start.elapsed()
                })
            })
        });
        let mut random = XorShift(0x9e37_79b9_7f4a_7c15);
        group.bench_function("random", |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        call(&mut service, random.below(entries)).await;
                    }
                    start.elapsed()
                })
            })
        });
        group.finish();
        let still = runtime.block_on(store.len()).expect("memory store len");
        assert_eq!(still, entries, "hits evict nothing");

        let dir = output.join(&group_name);
        rows.push(Row {
            entries,
            rss_per_entry,
            weight_per_entry,
            fill,
            hot_ns: read_median(&dir.join("hot")),
            random_ns: read_median(&dir.join("random")),
        });
        keep.push((store, service));
    }
    criterion.final_summary();
    print_table(&rows);
}

fn print_table(rows: &[Row]) {
    let cell = |value: Option<f64>| value.map_or_else(|| "-".to_string(), |v| format!("{v:.0}"));
    println!();
    println!(
        "MemoryStore, {BODY_LEN}-byte bodies: resident bytes per entry, the store's own weight \
         per entry, fill time, and median ns per hit (request build + call + body read)."
    );
    println!();
    println!(
        "| entries | RSS bytes/entry | weight bytes/entry | fill | hot-key hit ns | random-key hit ns |"
    );
    println!("|---|---|---|---|---|---|");
    for row in rows {
        println!(
            "| {} | {} | {:.0} | {:.1} s | {} | {} |",
            row.entries,
            cell(row.rss_per_entry),
            row.weight_per_entry,
            row.fill.as_secs_f64(),
            cell(row.hot_ns),
            cell(row.random_ns),
        );
    }
}
