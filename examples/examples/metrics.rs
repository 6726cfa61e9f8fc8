//! The cache's metrics through a Prometheus exporter: a few requests through a cache in front of
//! a real origin on 127.0.0.1, then the scrape Prometheus would get.
//!
//! ```sh
//! cargo run -p examples --example metrics
//! ```
//!
//! `reverse_proxy --metrics 127.0.0.1:9000` serves the same at `http://127.0.0.1:9000/metrics`.

use bytes::Bytes;
use cachelayer::{CacheInfo, CacheLayer, CacheSettings};
use examples::proxy::error_chain;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::process::ExitCode;
use tokio::net::TcpListener;
use tower::{Service, ServiceBuilder, ServiceExt};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main(flavor = "current_thread")]
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
    // Any `metrics` recorder works; this one renders Prometheus' text format on demand.
    let prometheus = examples::metrics::prometheus_builder()?.install_recorder()?;

    let origin = start_origin().await?;
    let layer = CacheLayer::new(CacheSettings::default());
    let mut client = ServiceBuilder::new()
        .layer(layer.clone())
        .service(Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>());

    for path in ["/a", "/a", "/a", "/b", "/private"] {
        let request = Request::get(format!("http://{origin}{path}")).body(Full::default())?;
        let response = client.ready().await?.call(request).await?;
        let outcome = response
            .extensions()
            .get::<CacheInfo>()
            .map_or("?", |info| info.outcome.as_str());
        response.into_body().collect().await?;
        println!("GET {path}: {outcome}");
    }
    // The store size gauges are read on demand (a proxy does it every few seconds).
    layer.cache().record_store_size().await?;

    println!("\n--- scrape ---\n{}", prometheus.render());
    Ok(())
}

/// An origin on 127.0.0.1 that answers `max-age=60` (`no-store` on `/private`); its address.
async fn start_origin() -> Result<std::net::SocketAddr, BoxError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = hyper::service::service_fn(|request: Request<hyper::body::Incoming>| {
                let cache_control = if request.uri().path() == "/private" {
                    "no-store"
                } else {
                    "max-age=60"
                };
                let response = Response::builder()
                    .header("cache-control", cache_control)
                    .body(Full::new(Bytes::from_static(b"hello from the origin")));
                async move { Ok::<_, Infallible>(response.unwrap_or_default()) }
            });
            tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
        }
    });
    Ok(addr)
}
