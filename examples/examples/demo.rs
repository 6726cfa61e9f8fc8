//! A tour of cachelayer over real TCP: an origin server, a cached hyper client, and a table of
//! what the cache did for each request.
//!
//! ```text
//! cargo run -p examples --example demo
//! ```
//!
//! The demo starts an origin (a hyper server on `127.0.0.1`, on a free port) whose resources
//! carry the usual caching headers, and counts how often each path is requested:
//!
//! | path             | response headers                                  | what the cache does            |
//! |------------------|---------------------------------------------------|--------------------------------|
//! | `/max-age`       | `Cache-Control: max-age=60`                       | serves it for 60 s: hits       |
//! | `/etag`          | `ETag: "v1"`, `Cache-Control: no-cache`           | revalidates with If-None-Match |
//! | `/last-modified` | `Last-Modified: ...`, `Cache-Control: max-age=0`  | revalidates with If-Modified-Since |
//! | `/no-store`      | `Cache-Control: no-store`                         | never stores it                |
//! | `/vary`          | `Vary: Accept-Language`, `max-age=60`             | reuses it for the same language only |
//!
//! It then sends requests through a hyper-util client wrapped in [`CacheLayer`], reads every
//! body to the end (the cache stores a response once its body has been read), and prints what
//! happened: the [`CacheInfo`] extension every response carries says whether it came from the
//! cache, and how.
//!
//! The demo checks the outcomes, bodies and origin hit counts it expects, and exits with an
//! error when one differs, so it doubles as a smoke test.

use bytes::Bytes;
use cachelayer::{CacheInfo, CacheLayer, CacheOutcome, CacheSettings};
use examples::proxy::error_chain;
use http::header::{
    ACCEPT_LANGUAGE, CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH,
    LAST_MODIFIED, VARY,
};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::error::Error;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::net::TcpListener;
use tower::{ServiceBuilder, ServiceExt};

type BoxError = Box<dyn Error + Send + Sync>;

/// When the origin's `/last-modified` resource last changed.
const LAST_MODIFIED_AT: &str = "Tue, 01 Apr 2025 12:00:00 GMT";

/// One request of the demo, and what the cache is expected to do with it.
struct Step {
    path: &'static str,
    language: Option<&'static str>,
    /// Expected cache column: what [`outcome_label`] says.
    expect: &'static str,
    /// Expected response body.
    body: &'static str,
}

const fn step(path: &'static str, expect: &'static str, body: &'static str) -> Step {
    Step {
        path,
        language: None,
        expect,
        body,
    }
}

const fn step_lang(
    path: &'static str,
    language: &'static str,
    expect: &'static str,
    body: &'static str,
) -> Step {
    Step {
        path,
        language: Some(language),
        expect,
        body,
    }
}

const STEPS: &[Step] = &[
    // Fresh for 60 seconds: fetched once, then served by the cache alone.
    step("/max-age", "MISS", "fresh for a minute\n"),
    step("/max-age", "HIT", "fresh for a minute\n"),
    step("/max-age", "HIT", "fresh for a minute\n"),
    // Stored, but checked with the origin before each use: the origin answers
    // 304 Not Modified (no body), and the cache serves its stored copy.
    step("/etag", "MISS", "tagged \"v1\"\n"),
    step("/etag", "REVALIDATED", "tagged \"v1\"\n"),
    step("/etag", "REVALIDATED", "tagged \"v1\"\n"),
    step("/last-modified", "MISS", "unchanged since April\n"),
    step("/last-modified", "REVALIDATED", "unchanged since April\n"),
    // Never stored.
    step("/no-store", "MISS", "secret\n"),
    step("/no-store", "MISS", "secret\n"),
    // Stored with the request's Accept-Language, and reused only for the same language:
    // the cache keeps one response per language (RFC 9111 §4.1).
    step_lang("/vary", "en", "MISS", "Hello!\n"),
    step_lang("/vary", "en", "HIT", "Hello!\n"),
    step_lang("/vary", "fr", "MISS", "Bonjour !\n"),
    step_lang("/vary", "fr", "HIT", "Bonjour !\n"),
    step_lang("/vary", "en", "HIT", "Hello!\n"),
];

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", error_chain(&*error));
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), BoxError> {
    let hits = HitCounter::default();
    let origin = start_origin(hits.clone()).await?;
    println!("origin listening on http://{origin}\n");

    // The cached client: a hyper-util client with a CacheLayer in front.
    let client = ServiceBuilder::new()
        .layer(CacheLayer::new(CacheSettings::default()))
        .service(Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>());

    println!(
        "{:>2}  {:<28}  {:>6}  {:<12}  {:>11}  {:>9}  note",
        "#", "request", "status", "cache", "origin hits", "latency"
    );
    println!("{}", "-".repeat(92));

    let mut problems = Vec::new();
    let (mut from_cache_alone, mut revalidated, mut stored) = (0, 0, 0);
    // The first Cache-Status header of each kind of outcome, shown after the table.
    let mut samples = Vec::new();
    for (n, step) in STEPS.iter().enumerate() {
        let n = n + 1;
        let mut request = Request::get(format!("http://{origin}{}", step.path));
        if let Some(language) = step.language {
            request = request.header(ACCEPT_LANGUAGE, language);
        }
        let request = request.body(Empty::new())?;

        let started = Instant::now();
        let response = client.clone().oneshot(request).await?;
        let status = response.status();
        let cache_status = response
            .headers()
            .get("cache-status")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_owned();
        let info = response
            .extensions()
            .get::<CacheInfo>()
            .cloned()
            .ok_or("the response has no CacheInfo extension")?;
        // Read the body to the end: that is when a response being stored is written to the
        // store.
        let body = response.into_body().collect().await?.to_bytes();
        let latency = started.elapsed();

        if info.revalidated {
            revalidated += 1;
        } else if info.from_cache {
            from_cache_alone += 1;
        } else if info.stored {
            stored += 1;
        }
        let request_label = match step.language {
            Some(language) => format!("GET {} [{language}]", step.path),
            None => format!("GET {}", step.path),
        };
        let kind = (info.outcome, info.stored);
        if !samples.iter().any(|(_, k, _)| *k == kind) {
            samples.push((n, kind, cache_status));
        }
        let line = format!(
            "{n:>2}  {request_label:<28}  {:>6}  {:<12}  {:>11}  {:>9}  {}",
            status.as_u16(),
            outcome_label(&info),
            hits.get(step.path),
            format_latency(latency),
            note(&info),
        );
        println!("{}", line.trim_end());

        if outcome_label(&info) != step.expect {
            problems.push(format!(
                "request {n} ({request_label}): expected {}, got {} ({:?})",
                step.expect,
                outcome_label(&info),
                info.outcome
            ));
        }
        if status != StatusCode::OK || body != step.body.as_bytes() {
            problems.push(format!(
                "request {n} ({request_label}): expected 200 {:?}, got {} {:?}",
                step.body,
                status.as_u16(),
                String::from_utf8_lossy(&body)
            ));
        }
    }

    let expected_hits = [
        ("/max-age", 1),
        ("/etag", 3),
        ("/last-modified", 2),
        ("/no-store", 2),
        ("/vary", 2),
    ];
    for (path, expected) in expected_hits {
        let got = hits.get(path);
        if got != expected {
            problems.push(format!(
                "origin hits for {path}: expected {expected}, got {got}"
            ));
        }
    }

    println!("{}", "-".repeat(92));
    let fetched = STEPS.len() - from_cache_alone - revalidated;
    println!("{:>3} requests sent", STEPS.len());
    println!("{from_cache_alone:>3} served by the cache without contacting the origin");
    println!("{revalidated:>3} served by the cache after the origin answered 304 Not Modified");
    println!("{fetched:>3} fetched from the origin ({stored} of them stored)");
    println!("{:>3} requests reached the origin", hits.total());

    println!("\nThe Cache-Status header (RFC 9211) says the same:");
    for (n, _, cache_status) in &samples {
        println!("{n:>3}  Cache-Status: {cache_status}");
    }

    if problems.is_empty() {
        println!("\nall {} requests behaved as expected", STEPS.len());
        Ok(())
    } else {
        for problem in &problems {
            eprintln!("unexpected: {problem}");
        }
        Err(format!("{} unexpected result(s)", problems.len()).into())
    }
}

/// The table's label for what the cache did. A `Refreshed` response (a stored one could not be
/// used: another `Vary` variant, or stale with no validator) is a miss to the reader.
fn outcome_label(info: &CacheInfo) -> String {
    match info.outcome {
        CacheOutcome::Refreshed => "MISS".to_owned(),
        outcome => outcome.as_str().to_uppercase().replace('-', " "),
    }
}

/// Why: how long a hit stays fresh, or whether the response was stored (and if not, why).
fn note(info: &CacheInfo) -> String {
    match info.outcome {
        CacheOutcome::Hit => match info.expires.map(|e| e.duration_since(SystemTime::now())) {
            Some(Ok(left)) => format!("fresh for {} s more", left.as_secs()),
            _ => "fresh".to_owned(),
        },
        CacheOutcome::Revalidated => "origin said 304 Not Modified".to_owned(),
        _ if info.stored => "stored".to_owned(),
        _ => match info.detail {
            Some(reason) => format!("not stored: {reason}"),
            None => "not stored".to_owned(),
        },
    }
}

fn format_latency(latency: Duration) -> String {
    if latency < Duration::from_millis(1) {
        format!("{} µs", latency.as_micros())
    } else {
        format!("{:.1} ms", latency.as_secs_f64() * 1000.0)
    }
}

/// How many requests the origin received, per path.
#[derive(Clone, Debug, Default)]
struct HitCounter {
    inner: Arc<Mutex<BTreeMap<String, u32>>>,
}

impl HitCounter {
    fn record(&self, path: &str) {
        let mut counts = self.inner.lock().expect("hit counter lock poisoned");
        *counts.entry(path.to_owned()).or_default() += 1;
    }

    fn get(&self, path: &str) -> u32 {
        let counts = self.inner.lock().expect("hit counter lock poisoned");
        counts.get(path).copied().unwrap_or(0)
    }

    fn total(&self) -> u32 {
        let counts = self.inner.lock().expect("hit counter lock poisoned");
        counts.values().sum()
    }
}

/// Starts the origin on a free port of 127.0.0.1 and returns its address.
async fn start_origin(hits: HitCounter) -> Result<SocketAddr, BoxError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    eprintln!("origin: accept failed: {error}");
                    continue;
                }
            };
            let hits = hits.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let hits = hits.clone();
                    async move { Ok::<_, Infallible>(origin(&request, &hits)) }
                });
                if let Err(error) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    eprintln!("origin: connection error: {error}");
                }
            });
        }
    });
    Ok(addr)
}

/// The origin's resources.
fn origin(request: &Request<Incoming>, hits: &HitCounter) -> Response<Full<Bytes>> {
    let path = request.uri().path();
    let headers = request.headers();
    let response = Response::builder().header(CONTENT_TYPE, "text/plain; charset=utf-8");
    let response = match path {
        "/max-age" => response
            .header(CACHE_CONTROL, "max-age=60")
            .body(Full::from("fresh for a minute\n")),
        "/etag" => {
            let response = response
                .header(ETAG, "\"v1\"")
                .header(CACHE_CONTROL, "no-cache");
            if if_none_match(headers, "\"v1\"") {
                response
                    .status(StatusCode::NOT_MODIFIED)
                    .body(Full::default())
            } else {
                response.body(Full::from("tagged \"v1\"\n"))
            }
        }
        "/last-modified" => {
            let response = response
                .header(LAST_MODIFIED, LAST_MODIFIED_AT)
                .header(CACHE_CONTROL, "max-age=0");
            if not_modified_since(headers, LAST_MODIFIED_AT) {
                response
                    .status(StatusCode::NOT_MODIFIED)
                    .body(Full::default())
            } else {
                response.body(Full::from("unchanged since April\n"))
            }
        }
        "/no-store" => response
            .header(CACHE_CONTROL, "no-store")
            .body(Full::from("secret\n")),
        "/vary" => {
            let french = headers
                .get(ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim_start().starts_with("fr"));
            response
                .header(CACHE_CONTROL, "max-age=60")
                .header(VARY, "Accept-Language")
                .header("content-language", if french { "fr" } else { "en" })
                .body(Full::from(if french { "Bonjour !\n" } else { "Hello!\n" }))
        }
        _ => response
            .status(StatusCode::NOT_FOUND)
            .body(Full::from("not found\n")),
    };
    // The builder only fails on invalid header values, and these are all static and valid.
    let response = response.expect("the origin's responses are valid");
    hits.record(path);
    response
}

/// `If-None-Match` lists `etag` (or `*`).
fn if_none_match(headers: &http::HeaderMap, etag: &str) -> bool {
    headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == etag || tag == "*")
}

/// `If-Modified-Since` is at or after `last_modified`.
fn not_modified_since(headers: &http::HeaderMap, last_modified: &str) -> bool {
    let parse = |text: &str| httpdate::parse_http_date(text).ok();
    let since: Option<SystemTime> = headers
        .get(IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(parse);
    match (since, parse(last_modified)) {
        (Some(since), Some(modified)) => since >= modified,
        _ => false,
    }
}
