//! The cost of a cache hit on the memory store, against calling the inner service directly and
//! against building the request alone (which every call includes).
//!
//! `cargo bench -p cachelayer --bench hit_path`

use bytes::Bytes;
use cachelayer::{CacheLayer, CacheSettings};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use http_body_util::{Empty, Full};
use std::convert::Infallible;
use std::hint::black_box;
use std::time::{Duration, Instant};
use tower::{Layer, Service, ServiceExt, service_fn};

fn request() -> Request<Empty<Bytes>> {
    Request::get("http://api.example.com/v1/items?page=2&sort=name")
        .header("accept", "application/json")
        .header("user-agent", "bench/1.0")
        .body(Empty::new())
        .expect("valid request")
}

/// Calls `service` `iters` times with [`request`], and how long that took.
async fn time_calls<S, RB>(service: &mut S, iters: u64) -> Duration
where
    S: Service<Request<Empty<Bytes>>, Response = Response<RB>>,
    S::Error: std::fmt::Debug,
{
    let start = Instant::now();
    for _ in 0..iters {
        let response = service
            .ready()
            .await
            .expect("ready")
            .call(request())
            .await
            .expect("response");
        black_box(response);
    }
    start.elapsed()
}

fn hit_path(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("hit_path");
    group.measurement_time(Duration::from_secs(4));
    // What every measured call below also pays: building its request.
    group.bench_function("request_only", |b| b.iter(|| black_box(request())));
    for size in [1024usize, 64 * 1024] {
        let body = Bytes::from(vec![b'x'; size]);
        let origin = service_fn(move |_req: Request<Empty<Bytes>>| {
            let body = body.clone();
            async move {
                let response = Response::builder()
                    .header("content-type", "application/json")
                    .header("cache-control", "public, max-age=3600")
                    .header("etag", "\"33a64df551425fcc55e4d42a148795d9f25f89d4\"")
                    .header(
                        "date",
                        httpdate::fmt_http_date(std::time::SystemTime::now()),
                    )
                    .body(Full::new(body))
                    .expect("valid response");
                Ok::<_, Infallible>(response)
            }
        });

        let mut bare = origin.clone();
        group.bench_function(BenchmarkId::new("inner_service", size), |b| {
            b.iter_custom(|iters| rt.block_on(time_calls(&mut bare, iters)))
        });

        let mut cached = CacheLayer::new(CacheSettings::default()).layer(origin);
        // Warm the cache: read the first response to its end so it is stored.
        rt.block_on(async {
            use http_body_util::BodyExt;
            let response = cached
                .ready()
                .await
                .expect("ready")
                .call(request())
                .await
                .expect("response");
            response.into_body().collect().await.expect("body");
        });
        group.bench_function(BenchmarkId::new("cache_hit", size), |b| {
            b.iter_custom(|iters| rt.block_on(time_calls(&mut cached, iters)))
        });
    }
    group.finish();
}

criterion_group!(benches, hit_path);
criterion_main!(benches);
