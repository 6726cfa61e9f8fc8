//! A cached HTTP client: fetches a URL several times through a [`CacheLayer`] and shows what
//! the cache did for each request.
//!
//! ```text
//! cargo run -p examples --example client -- http://127.0.0.1:8080/ -n 3
//! cargo run -p examples --example client -- http://127.0.0.1:8080/ --expire-after 5m
//! ```
//!
//! For each request it prints the status, what the cache did (the [`CacheInfo`] extension),
//! the `Cache-Status` and `Age` header fields, the body size and the latency.
//!
//! By default the response headers decide (RFC 9111): a response without freshness
//! information is not reused. `--expire-after` gives such responses a lifetime (requests-cache
//! `expire_after`: `"90s"`, `"5m"`, `"1h 30m"`, `"never"`, `"immediately"`, `"do-not-cache"`);
//! the response's own `Cache-Control` / `Expires` still take precedence.
//!
//! Plain `http://` only, to keep the example free of TLS setup: for HTTPS, wrap a client
//! built with an HTTPS connector (for example `hyper-rustls`) the same way.

use bytes::Bytes;
use cachelayer::{CacheInfo, CacheLayer, CacheSettings, ExpireAfter};
use clap::Parser;
use examples::proxy::error_chain;
use http::header::AGE;
use http::{Request, Uri};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::error::Error;
use std::process::ExitCode;
use std::time::Instant;
use tower::{ServiceBuilder, ServiceExt};

type BoxError = Box<dyn Error + Send + Sync>;

/// Fetch a URL several times through cachelayer and show what the cache did.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The URL to fetch (http:// only).
    url: Uri,

    /// How many times to fetch it.
    #[arg(short = 'n', long = "count", default_value_t = 3)]
    count: usize,

    /// Lifetime of responses whose headers give none: "5m", "1h 30m", "never", "immediately",
    /// "do-not-cache", a number of seconds, or an RFC 3339 date-time.
    #[arg(long)]
    expire_after: Option<ExpireAfter>,

    /// Behave as a shared cache (a proxy) rather than a private one.
    #[arg(long)]
    shared: bool,
}

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
    let args = Args::parse();
    if args.url.scheme_str() != Some("http") {
        return Err(format!("{}: this example speaks plain http:// only", args.url).into());
    }

    let settings = CacheSettings {
        shared: args.shared,
        expire_after: args.expire_after,
        ..CacheSettings::default()
    };
    let client = ServiceBuilder::new()
        .layer(CacheLayer::new(settings))
        .service(Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>());

    for n in 1..=args.count {
        let request = Request::get(args.url.clone()).body(Empty::new())?;
        let started = Instant::now();
        let response = client.clone().oneshot(request).await?;

        let status = response.status();
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_owned()
        };
        let cache_status = header("cache-status");
        let age = header(AGE.as_str());
        let outcome = response
            .extensions()
            .get::<CacheInfo>()
            .map_or_else(|| "-".to_owned(), outcome_label);
        // Read the body to the end: a response being stored is written to the cache then.
        let body = response.into_body().collect().await?.to_bytes();
        let latency = started.elapsed();

        println!(
            "#{n:<3} {status}  cache: {outcome:<12} age: {age:<5} {:>8} bytes  {latency:.2?}",
            body.len(),
        );
        println!("      Cache-Status: {cache_status}");
    }
    Ok(())
}

/// What the cache did, in a word or two.
fn outcome_label(info: &CacheInfo) -> String {
    info.outcome.as_str().to_uppercase().replace('-', " ")
}
