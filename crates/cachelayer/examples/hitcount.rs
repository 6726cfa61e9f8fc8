//! Counts the work of cache hits, for profilers that count instructions rather than time
//! (repeatable on a busy machine):
//!
//! ```sh
//! cargo build --release -p cachelayer --example hitcount
//! valgrind --tool=callgrind target/release/examples/hitcount cache 11000
//! valgrind --tool=callgrind target/release/examples/hitcount cache 1000
//! ```
//!
//! The difference of the two totals, divided by 10,000, is the cost of one hit plus building its
//! request; `request N` counts the request building alone and `inner N` a call of the bare inner
//! service (`HITCOUNT_BODY` sets the body size in bytes, 1 KiB by default). `miss N` sends N
//! requests for distinct URLs through a cache whose store holds about 1,000 of them
//! (`HITCOUNT_ENTRIES`), so that every store evicts one, reading each body to its end;
//! `inner-miss N` sends the same requests to the bare inner service. `HITCOUNT_CACHE_INFO=0`
//! runs the cache with `cache_info(false)` (no `CacheInfo` extension). Timings are measured by
//! the criterion bench `hit_path`.
#![allow(clippy::unwrap_used)]
use bytes::Bytes;
use cachelayer::MemoryStore;
use cachelayer::{CacheLayer, CacheSettings};
use http::{Request, Response};
use http_body::Frame;
use http_body_util::{BodyExt, Either, Empty, Full};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use tower::{Layer, Service, ServiceExt, service_fn};

fn distinct_request(n: usize) -> Request<Empty<Bytes>> {
    Request::get(format!(
        "http://api.example.com/v1/items?page={n}&sort=name"
    ))
    .header("accept", "application/json")
    .header("user-agent", "bench/1.0")
    .body(Empty::new())
    .unwrap()
}

/// Sends `n` requests for distinct URLs, reading every body to its end.
async fn send_distinct<S, B>(mut svc: S, n: usize)
where
    S: Service<Request<Empty<Bytes>>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    for i in 0..n {
        let response = svc
            .ready()
            .await
            .unwrap()
            .call(distinct_request(i))
            .await
            .unwrap();
        std::hint::black_box(response.into_body().collect().await.unwrap());
    }
}

fn request() -> Request<Empty<Bytes>> {
    Request::get("http://api.example.com/v1/items?page=2&sort=name")
        .header("accept", "application/json")
        .header("user-agent", "bench/1.0")
        .body(Empty::new())
        .unwrap()
}

/// A body sent as frames of at most `piece` bytes.
struct Pieces(VecDeque<Bytes>);

impl Pieces {
    fn new(body: &Bytes, pieces: usize) -> Self {
        let piece = body.len().div_ceil(pieces.max(1)).max(1);
        Pieces(
            (0..body.len())
                .step_by(piece)
                .map(|start| body.slice(start..(start + piece).min(body.len())))
                .collect(),
        )
    }
}

impl http_body::Body for Pieces {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|piece| Ok(Frame::data(piece))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_empty()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.0.iter().map(|piece| piece.len() as u64).sum())
    }
}

fn main() {
    let mode = std::env::args().nth(1).unwrap();
    let n: usize = std::env::args().nth(2).unwrap().parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The body size in bytes: `HITCOUNT_BODY`, 1 KiB when unset.
    let body_size: usize = std::env::var("HITCOUNT_BODY")
        .ok()
        .and_then(|size| size.parse().ok())
        .unwrap_or(1024);
    let body = Bytes::from(vec![b'x'; body_size]);
    // The frames the origin sends the body in: `HITCOUNT_PIECES`, 1 when unset.
    let pieces: usize = std::env::var("HITCOUNT_PIECES")
        .ok()
        .and_then(|pieces| pieces.parse().ok())
        .unwrap_or(1);
    // The cache's settings: `HITCOUNT_CACHE_INFO=0` leaves the `CacheInfo` extension out.
    let settings = CacheSettings::default()
        .cache_info(std::env::var("HITCOUNT_CACHE_INFO").map_or(true, |value| value != "0"));
    let origin = service_fn(move |_req: Request<Empty<Bytes>>| {
        let body = body.clone();
        // Origins send `Date` (RFC 9110 §6.6.1).
        let date = httpdate::fmt_http_date(std::time::SystemTime::now());
        async move {
            Ok::<_, Infallible>(
                Response::builder()
                    .header("date", date)
                    .header("content-type", "application/json")
                    .header("cache-control", "public, max-age=3600")
                    .header("etag", "\"33a64df551425fcc55e4d42a148795d9f25f89d4\"")
                    .body(if pieces > 1 {
                        Either::Right(Pieces::new(&body, pieces))
                    } else {
                        Either::Left(Full::new(body))
                    })
                    .unwrap(),
            )
        }
    });
    rt.block_on(async {
        match mode.as_str() {
            "request" => {
                for _ in 0..n {
                    std::hint::black_box(request());
                }
            }
            "inner" => {
                let mut svc = origin;
                for _ in 0..n {
                    std::hint::black_box(svc.ready().await.unwrap().call(request()).await.unwrap());
                }
            }
            "inner-miss" => send_distinct(origin, n).await,
            "miss" => {
                // About 1,000 entries (`HITCOUNT_ENTRIES`): the store is full after the first
                // thousand requests, and every later one evicts.
                let entries: u64 = std::env::var("HITCOUNT_ENTRIES")
                    .ok()
                    .and_then(|entries| entries.parse().ok())
                    .unwrap_or(1000);
                let capacity = entries * (body_size as u64 + 2048);
                let store = MemoryStore::builder().max_capacity(capacity).build();
                send_distinct(CacheLayer::with_store(store, settings).layer(origin), n).await;
            }
            _ => {
                let mut svc = CacheLayer::new(settings).layer(origin);
                let r = svc.ready().await.unwrap().call(request()).await.unwrap();
                r.into_body().collect().await.unwrap();
                for _ in 0..n {
                    std::hint::black_box(svc.ready().await.unwrap().call(request()).await.unwrap());
                }
            }
        }
    });
}
