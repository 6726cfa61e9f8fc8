//! One in-process origin through cachelayer and the other tower HTTP caches, side by side.
//!
//! ```sh
//! cd benches/peers
//! CARGO_TARGET_DIR=/work/peers-target cargo bench --bench peers
//! ```
//!
//! The origin is a `tower::service_fn` that counts its calls and answers every request with a
//! 1 KiB or a 64 KiB body (by path), `Content-Type: application/json` (tower-http-cache streams
//! `application/octet-stream` through uncached) and `Cache-Control: max-age=3600`. Each cache keeps
//! [`CAPACITY`] entries in memory (the peers on moka, cachelayer on its `MemoryStore`, on
//! quick_cache) and is sent the same absolute-URI requests:
//!
//! - **hit**: one URL, already stored, again and again;
//! - **miss**: a new URL every iteration, into a store already full, so every miss stores a
//!   response and evicts (or refuses) one.
//!
//! A timed call builds the request, calls the service and reads the body to its end. Before
//! timing a cache, two identical requests must reach the origin once; a cache that fails this is
//! skipped with a line saying so. After timing, the origin's call count checks that hits did not
//! reach it and that misses all did.
//!
//! The last output is one table: criterion's median per request, its ratio to cachelayer, and
//! each cache's own cost (its median minus the origin alone's, same case).
//!
//! On a noisy machine, run several rounds: `PEERS_ROUNDS=5 cargo bench --bench peers` times
//! every cache in every case once per round (criterion groups `miss_1k_r2`, ...). The table then
//! gives each cell's median over the rounds, and each own cost as the median over the rounds of
//! that round's difference to the origin alone: a slow minute of the machine moves one round,
//! not the result.
//!
//! Peers (versions in `Cargo.lock`): tower-http-cache (`InMemoryBackend`, moka, counted in
//! entries; it does not read the response's `Cache-Control` for a TTL, so it is given 3600 s),
//! http-cache-tower (`MokaManager` over a moka cache of [`CAPACITY`] entries; RFC 9111 through
//! http-cache-semantics), hitbox-tower (`MokaBackend` with `max_entries` and its bincode value
//! format, much faster than its default JSON; keyed by method and path, TTL 3600 s from its
//! policy, no `Cache-Control`). cachelayer's `MemoryStore` is bounded in
//! bytes: it gets [`CAPACITY`] times the weight of one stored entry of the case's size.

use bytes::Bytes;
use criterion::Criterion;
use http::{Request, Response};
use http_body::Body;
use http_body_util::{BodyExt, Empty, Full};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt::Debug;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;
use tower::{Layer, Service, ServiceExt, service_fn};

/// Entries every cache holds.
const CAPACITY: u64 = 1_000;

/// The body sizes, as the first path segment names them.
const SIZES: [Size; 2] = [Size::OneKib, Size::SixtyFourKib];

static BODY_1K: [u8; 1024] = [b'x'; 1024];
static BODY_64K: [u8; 64 * 1024] = [b'x'; 64 * 1024];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Size {
    OneKib,
    SixtyFourKib,
}

impl Size {
    fn segment(self) -> &'static str {
        match self {
            Size::OneKib => "1k",
            Size::SixtyFourKib => "64k",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Size::OneKib => "1 KiB",
            Size::SixtyFourKib => "64 KiB",
        }
    }

    fn hot_uri(self) -> &'static str {
        match self {
            Size::OneKib => "http://origin.test/1k/hot?page=2&sort=name",
            Size::SixtyFourKib => "http://origin.test/64k/hot?page=2&sort=name",
        }
    }

    fn uri(self, kind: &str, n: u64) -> String {
        format!(
            "http://origin.test/{}/{kind}/{n}?page=2&sort=name",
            self.segment()
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Hit,
    Miss,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Hit => "hit",
            Kind::Miss => "miss",
        }
    }
}

type Case = (Kind, Size);

const CASES: [Case; 4] = [
    (Kind::Hit, Size::OneKib),
    (Kind::Hit, Size::SixtyFourKib),
    (Kind::Miss, Size::OneKib),
    (Kind::Miss, Size::SixtyFourKib),
];

/// The origin: counts calls, answers by the first path segment.
fn origin<B>(
    calls: Arc<AtomicU64>,
) -> impl Service<
    Request<B>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future: Send + 'static,
> + Clone
+ Send
+ Sync
+ 'static
where
    B: Send + 'static,
{
    service_fn(move |req: Request<B>| {
        calls.fetch_add(1, Ordering::Relaxed);
        let body: &'static [u8] = if req.uri().path().starts_with("/64k/") {
            &BODY_64K
        } else {
            &BODY_1K
        };
        async move {
            let response = Response::builder()
                .header("content-type", "application/json")
                .header("cache-control", "max-age=3600")
                .header(
                    "date",
                    httpdate::fmt_http_date(std::time::SystemTime::now()),
                )
                .body(Full::new(Bytes::from_static(body)))
                .expect("valid response");
            Ok::<_, Infallible>(response)
        }
    })
}

fn request(uri: &str) -> Request<Empty<Bytes>> {
    Request::get(uri)
        .header("accept", "*/*")
        .header("user-agent", "bench/1.0")
        .body(Empty::new())
        .expect("valid request")
}

/// One request through `service`, its body read to the end; the body's length.
async fn call<S, RB>(service: &mut S, uri: &str) -> usize
where
    S: Service<Request<Empty<Bytes>>, Response = Response<RB>>,
    S::Error: Debug,
    RB: Body,
    RB::Error: Debug,
{
    let response = service
        .ready()
        .await
        .expect("ready")
        .call(request(uri))
        .await
        .expect("response");
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    black_box(body.len())
}

/// Medians (ns per request) by peer and case, and the peers left out (with why).
#[derive(Default)]
struct Results {
    /// Criterion's median by peer and case, for each round that timed it.
    medians: BTreeMap<(&'static str, Case), BTreeMap<u32, f64>>,
    notes: Vec<String>,
}

struct Bench<'a> {
    criterion: &'a mut Criterion,
    runtime: Runtime,
    output: PathBuf,
    results: Results,
    /// The round being timed (from 1), and how many there are.
    round: u32,
    rounds: u32,
}

impl Bench<'_> {
    /// Checks, fills and times one cache (built by `make` for each size) in every case.
    fn peer<S, RB>(&mut self, peer: &'static str, make: impl Fn(Arc<AtomicU64>, Size) -> S)
    where
        S: Service<Request<Empty<Bytes>>, Response = Response<RB>>,
        S::Error: Debug,
        RB: Body,
        RB::Error: Debug,
    {
        for size in SIZES {
            let calls = Arc::new(AtomicU64::new(0));
            let mut service = make(calls.clone(), size);
            let is_origin = peer == ORIGIN;
            if !is_origin && !self.caches(&mut service, &calls, size) {
                let note = format!(
                    "SKIP {peer} {}: two identical requests reached the origin {} times (want 1)",
                    size.label(),
                    calls.load(Ordering::Relaxed)
                );
                println!("{note}");
                self.results.notes.push(note);
                continue;
            }
            // A full store: CAPACITY entries besides the hot one.
            self.runtime.block_on(async {
                for n in 0..CAPACITY {
                    call(&mut service, &size.uri("fill", n)).await;
                }
                call(&mut service, size.hot_uri()).await;
            });
            self.time(peer, (Kind::Hit, size), &mut service, &calls, is_origin);
            self.time(peer, (Kind::Miss, size), &mut service, &calls, is_origin);
        }
    }

    /// Whether two identical requests reached the origin once.
    fn caches<S, RB>(&self, service: &mut S, calls: &AtomicU64, size: Size) -> bool
    where
        S: Service<Request<Empty<Bytes>>, Response = Response<RB>>,
        S::Error: Debug,
        RB: Body,
        RB::Error: Debug,
    {
        let uri = size.uri("check", 0);
        self.runtime.block_on(async {
            call(service, &uri).await;
            call(service, &uri).await;
        });
        calls.load(Ordering::Relaxed) == 1
    }

    /// Times one case with criterion, then checks the origin's call count and reads the median.
    fn time<S, RB>(
        &mut self,
        peer: &'static str,
        case: Case,
        service: &mut S,
        calls: &AtomicU64,
        is_origin: bool,
    ) where
        S: Service<Request<Empty<Bytes>>, Response = Response<RB>>,
        S::Error: Debug,
        RB: Body,
        RB::Error: Debug,
    {
        let (kind, size) = case;
        let group_name = if self.rounds > 1 {
            format!("{}_{}_r{}", kind.label(), size.segment(), self.round)
        } else {
            format!("{}_{}", kind.label(), size.segment())
        };
        let before = calls.load(Ordering::Relaxed);
        let mut iterations = 0u64;
        let mut next_miss = 0u64;
        let runtime = &self.runtime;
        let mut group = self.criterion.benchmark_group(&group_name);
        group.bench_function(peer, |b| {
            b.iter_custom(|iters| {
                iterations += iters;
                runtime.block_on(async {
                    let start = Instant::now();
                    match kind {
                        Kind::Hit => {
                            for _ in 0..iters {
                                call(service, size.hot_uri()).await;
                            }
                        }
                        Kind::Miss => {
                            for _ in 0..iters {
                                next_miss += 1;
                                call(service, &size.uri("miss", next_miss)).await;
                            }
                        }
                    }
                    start.elapsed()
                })
            })
        });
        group.finish();
        if iterations == 0 {
            return; // filtered out on the command line
        }
        let reached = calls.load(Ordering::Relaxed) - before;
        let expected = match (kind, is_origin) {
            (Kind::Miss, _) | (Kind::Hit, true) => iterations,
            (Kind::Hit, false) => 0,
        };
        if reached != expected {
            let note = format!(
                "WARNING {peer} {group_name}: the origin was called {reached} times in {iterations} \
                 iterations (want {expected})"
            );
            println!("{note}");
            self.results.notes.push(note);
        }
        match read_median(&self.output.join(&group_name).join(peer)) {
            Some(median) => {
                self.results
                    .medians
                    .entry((peer, case))
                    .or_default()
                    .insert(self.round, median);
            }
            None => println!("no criterion estimate for {group_name}/{peer}"),
        }
    }
}

/// Criterion's median point estimate (ns per iteration) in `dir/new/estimates.json`.
fn read_median(dir: &std::path::Path) -> Option<f64> {
    let text = std::fs::read_to_string(dir.join("new").join("estimates.json")).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    value["median"]["point_estimate"].as_f64()
}

const ORIGIN: &str = "origin-alone";
const CACHELAYER: &str = "cachelayer";
const TOWER_HTTP_CACHE: &str = "tower-http-cache";
const HTTP_CACHE_TOWER: &str = "http-cache-tower";
const HITBOX_TOWER: &str = "hitbox-tower";

/// The weight (bytes) cachelayer's `MemoryStore` gives one stored response of `size`.
fn cachelayer_entry_weight(runtime: &Runtime, size: Size) -> u64 {
    use cachelayer::Store;
    let store = cachelayer::MemoryStore::new();
    let mut service =
        cachelayer::CacheLayer::with_store(store.clone(), cachelayer::CacheSettings::default())
            .layer(origin(Arc::new(AtomicU64::new(0))));
    runtime.block_on(async {
        call(&mut service, &size.uri("weigh", 0)).await;
        let len = store.len().await.expect("memory store len");
        assert_eq!(len, 1, "one stored entry");
    });
    store.weighted_size()
}

fn cachelayer_peer(
    weights: &BTreeMap<Size, u64>,
    calls: Arc<AtomicU64>,
    size: Size,
) -> cachelayer::CacheService<
    impl Service<
        Request<Empty<Bytes>>,
        Response = Response<Full<Bytes>>,
        Error = Infallible,
        Future: Send + 'static,
    > + Clone
    + Send
    + Sync
    + 'static,
> {
    let store = cachelayer::MemoryStore::builder()
        .max_capacity(CAPACITY * weights[&size])
        .build();
    cachelayer::CacheLayer::with_store(store, cachelayer::CacheSettings::default())
        .layer(origin(calls))
}

fn tower_http_cache_peer(
    calls: Arc<AtomicU64>,
) -> impl Service<
    Request<Empty<Bytes>>,
    Response = Response<impl Body<Error = impl Debug>>,
    Error = impl Debug,
> {
    use tower_http_cache::prelude::{CacheLayer, InMemoryBackend};
    CacheLayer::builder(InMemoryBackend::new(CAPACITY))
        .ttl(Duration::from_secs(3600))
        .build()
        .layer(origin(calls))
}

fn http_cache_tower_peer(
    calls: Arc<AtomicU64>,
) -> impl Service<
    Request<Empty<Bytes>>,
    Response = Response<impl Body<Error = impl Debug>>,
    Error = impl Debug,
> {
    let manager = http_cache::MokaManager::new(moka::future::Cache::new(CAPACITY));
    http_cache_tower::HttpCacheLayer::new(manager).layer(origin(calls))
}

fn hitbox_tower_peer(
    calls: Arc<AtomicU64>,
) -> impl Service<
    Request<Empty<Bytes>>,
    Response = Response<impl Body<Error = impl Debug>>,
    Error = impl Debug,
> {
    use hitbox_http::extractors::{Method, path::PathExtractor};
    use hitbox_http::predicates::{NeutralRequestPredicate, NeutralResponsePredicate};
    let backend = hitbox_moka::MokaBackend::builder()
        .max_entries(CAPACITY)
        .value_format(hitbox_backend::format::BincodeFormat)
        .build();
    let config = hitbox::Config::builder()
        .request_predicate(NeutralRequestPredicate::new())
        .response_predicate(NeutralResponsePredicate::new())
        .extractor(Method::new().path("/{path}*"))
        .policy(
            hitbox::policy::PolicyConfig::builder()
                .ttl(Duration::from_secs(3600))
                .build(),
        )
        .build();
    hitbox_tower::Cache::builder()
        .backend(backend)
        .config(config)
        .build()
        .layer(origin(calls))
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let output = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"))
        .join("criterion");
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
        .output_directory(&output)
        .configure_from_args();
    let weights: BTreeMap<Size, u64> = SIZES
        .iter()
        .map(|&size| (size, cachelayer_entry_weight(&runtime, size)))
        .collect();
    let rounds = std::env::var("PEERS_ROUNDS")
        .ok()
        .and_then(|rounds| rounds.parse::<u32>().ok())
        .unwrap_or(1)
        .max(1);
    let mut bench = Bench {
        criterion: &mut criterion,
        runtime,
        output,
        results: Results::default(),
        round: 1,
        rounds,
    };

    for round in 1..=rounds {
        bench.round = round;
        bench.peer(ORIGIN, |calls, _| origin::<Empty<Bytes>>(calls));
        bench.peer(CACHELAYER, |calls, size| {
            cachelayer_peer(&weights, calls, size)
        });
        bench.peer(TOWER_HTTP_CACHE, |calls, _| tower_http_cache_peer(calls));
        bench.peer(HTTP_CACHE_TOWER, |calls, _| http_cache_tower_peer(calls));
        bench.peer(HITBOX_TOWER, |calls, _| hitbox_tower_peer(calls));
    }

    let results = bench.results;
    criterion.final_summary();
    print_table(&results, rounds);
}

/// The median of `values` (the mean of the middle two for an even count); `None` when empty.
fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut values: Vec<f64> = values.into_iter().collect();
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

impl Results {
    /// The median over the rounds of `peer`'s median in `case`.
    fn median(&self, peer: &'static str, case: Case) -> Option<f64> {
        median(self.medians.get(&(peer, case))?.values().copied())
    }

    /// `peer`'s own cost in `case`: the median over the rounds of its median minus the origin
    /// alone's in the same round.
    fn own(&self, peer: &'static str, case: Case) -> Option<f64> {
        let ours = self.medians.get(&(peer, case))?;
        let bare = self.medians.get(&(ORIGIN, case))?;
        median(
            ours.iter()
                .filter_map(|(round, &median)| Some(median - bare.get(round)?)),
        )
    }
}

fn print_table(results: &Results, rounds: u32) {
    let peers = [
        ORIGIN,
        CACHELAYER,
        TOWER_HTTP_CACHE,
        HTTP_CACHE_TOWER,
        HITBOX_TOWER,
    ];
    println!();
    println!(
        "Median ns per request (request build + call + body read), ratio to cachelayer, and own \
         cost (median minus origin alone). {CAPACITY} entries per store; misses into a full store."
    );
    if rounds > 1 {
        println!(
            "{rounds} rounds: medians over the rounds; own costs are the medians of each round's \
             difference."
        );
    }
    println!();
    let mut header = String::from("| |");
    let mut rule = String::from("|---|");
    for (kind, size) in CASES {
        header.push_str(&format!(" {} {} |", kind.label(), size.label()));
        rule.push_str("---|");
    }
    println!("{header}");
    println!("{rule}");
    for peer in peers {
        let mut line = format!("| {peer} |");
        for case in CASES {
            let cell = match results.median(peer, case) {
                None => "-".to_string(),
                Some(median) => {
                    let ratio = results
                        .median(CACHELAYER, case)
                        .map(|ours| format!("{:.2}×", median / ours))
                        .unwrap_or_else(|| "?".into());
                    let own = match (peer, results.own(peer, case)) {
                        (ORIGIN, _) | (_, None) => String::new(),
                        (_, Some(own)) => format!(", own {}", thousands(own)),
                    };
                    format!("{} ({ratio}{own})", thousands(median))
                }
            };
            line.push_str(&format!(" {cell} |"));
        }
        println!("{line}");
    }
    if rounds > 1 {
        println!();
        for case in CASES {
            let (Some(ours), Some(bare)) = (
                results.medians.get(&(CACHELAYER, case)),
                results.medians.get(&(ORIGIN, case)),
            ) else {
                continue;
            };
            let per_round: Vec<String> = ours
                .iter()
                .filter_map(|(round, &median)| Some(thousands(median - bare.get(round)?)))
                .collect();
            println!(
                "cachelayer's own cost by round, {} {}: {}",
                case.0.label(),
                case.1.label(),
                per_round.join(", ")
            );
        }
    }
    for note in &results.notes {
        println!("{note}");
    }
}

/// `value` rounded to whole nanoseconds, with thousands separators.
fn thousands(value: f64) -> String {
    let rounded = value.round() as i64;
    let digits = rounded.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    if rounded < 0 { format!("-{out}") } else { out }
}
