//! A caching reverse proxy: a hyper server that forwards every request to one upstream server
//! through a [`CacheLayer`], and answers from the cache when it can.
//!
//! ```text
//! cargo run -p examples --example reverse_proxy -- \
//!     --listen 127.0.0.1:3000 --upstream http://127.0.0.1:8080 --shared
//! ```
//!
//! Then `curl -i http://127.0.0.1:3000/some/path` twice: the second response is served from the
//! cache when the upstream's headers allow it (`Cache-Control: max-age`, `Expires`, or heuristic
//! freshness from `Last-Modified`), and says so in its `Cache-Status` header:
//!
//! ```text
//! Cache-Status: cachelayer; hit; ttl=17279; key="..."
//! ```
//!
//! A proxy in front of a server is a *shared* cache: it serves many users, so it must not
//! store `Cache-Control: private` responses or responses to requests with `Authorization`,
//! and it honours `s-maxage`. Pass `--shared` for that ([`CacheSettings::shared`]). Without it the
//! cache behaves as a private (single-user, browser-like) cache, which is only right when
//! the proxy serves a single user.
//!
//! What the proxy does for each request:
//!
//! 1. builds the upstream URI: the upstream's scheme and authority (and path prefix, if any),
//!    then the incoming path and query;
//! 2. drops the hop-by-hop header fields ([`strip_hop_by_hop`]) and `Host` (the client sets
//!    the upstream's), and adds `X-Forwarded-For`, `X-Forwarded-Host` and `Via`;
//! 3. forwards the method, header fields and streaming body through the cache to the upstream
//!    (HTTP/1.1, plain `http://` only; connections are pooled);
//! 4. drops hop-by-hop fields from the response and streams it back; when the upstream cannot
//!    be reached, answers `502 Bad Gateway`.
//!
//! It logs one line per request (method, path, status, what the cache did, latency);
//! `RUST_LOG=info,cachelayer=debug` shows the cache's reasoning as well. Ctrl-C stops
//! accepting connections and waits (up to 10 seconds) for the open ones to finish.
//!
//! Not handled, to keep the example short: HTTPS upstreams, protocol upgrades (WebSocket),
//! `CONNECT`.

use bytes::Bytes;
use cachelayer::store::TieredStore;
use cachelayer::{
    CacheBody, CacheInfo, CacheLayer, CacheSettings, MemoryStore, Store, strip_hop_by_hop,
};
use cachelayer_redis::RedisStore;
use cachelayer_sqlite::SqliteStore;
use clap::Parser;
use http::header::{HOST, HeaderValue, VIA};
use http::uri::{PathAndQuery, Scheme};
use http::{HeaderMap, Request, Response, StatusCode, Uri};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::error::Error;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tower::{ServiceBuilder, ServiceExt};

type BoxError = Box<dyn Error + Send + Sync>;

/// The cached upstream client: a pooled hyper-util client with a cache in front.
type CachedClient = cachelayer::CacheService<Client<HttpConnector, Incoming>>;

/// A response of the proxy: the upstream's (or the cache's), or one the proxy made itself.
type ProxyBody = Either<CacheBody<Incoming>, Full<Bytes>>;

/// How long Ctrl-C waits for open connections to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A caching reverse proxy built on cachelayer.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,

    /// The server to forward requests to (`http://host:port`, optionally with a path prefix).
    #[arg(long)]
    upstream: Uri,

    /// Act as a shared cache (RFC 9111): do not store `private` responses or responses to
    /// requests with `Authorization`; honour `s-maxage`. A reverse proxy should use it.
    #[arg(long)]
    shared: bool,

    /// Where the cache keeps responses: `memory` (the default, in this process), `sqlite:PATH`
    /// (a file: kept across restarts, shared by processes on this machine), or a Redis URL such
    /// as `redis://127.0.0.1:6379` (shared by proxies on many machines; when Redis is down,
    /// requests still go through, uncached).
    #[arg(long, default_value = "memory")]
    store: String,

    /// With a SQLite or Redis store: keep hot responses in memory in front of it.
    #[arg(long)]
    tiered: bool,
}

/// Opens the store that `--store` names.
fn open_store(spec: &str, tiered: bool) -> Result<Arc<dyn Store>, BoxError> {
    let back: Arc<dyn Store> = if spec == "memory" {
        return Ok(Arc::new(MemoryStore::new()));
    } else if let Some(path) = spec.strip_prefix("sqlite:") {
        Arc::new(
            SqliteStore::open(path).map_err(|e| format!("cannot open SQLite store {path}: {e}"))?,
        )
    } else if spec.starts_with("redis://") || spec.starts_with("rediss://") {
        Arc::new(
            RedisStore::builder(spec)
                .build()
                .map_err(|e| format!("bad Redis URL {spec}: {e}"))?,
        )
    } else {
        return Err(format!(
            "unknown --store {spec:?}: use memory, sqlite:PATH or redis://HOST:PORT"
        )
        .into());
    };
    Ok(if tiered {
        Arc::new(TieredStore::new(Arc::new(MemoryStore::new()), back))
    } else {
        back
    })
}

/// Where requests go.
#[derive(Debug)]
struct Upstream {
    scheme: Scheme,
    authority: http::uri::Authority,
    /// The upstream URI's path without its trailing `/`: prepended to every request's path.
    prefix: String,
}

impl Upstream {
    fn from_uri(uri: &Uri) -> Result<Self, BoxError> {
        if uri.scheme() != Some(&Scheme::HTTP) {
            return Err(format!("--upstream {uri}: only http:// upstreams are supported").into());
        }
        let authority = uri
            .authority()
            .ok_or_else(|| format!("--upstream {uri}: missing host"))?
            .clone();
        if uri.query().is_some() {
            return Err(format!("--upstream {uri}: must not have a query").into());
        }
        Ok(Upstream {
            scheme: Scheme::HTTP,
            authority,
            prefix: uri.path().trim_end_matches('/').to_owned(),
        })
    }

    /// The upstream URI for an incoming request URI: upstream scheme, authority and prefix, then
    /// the incoming path and query.
    fn uri_for(&self, incoming: &Uri) -> Result<Uri, http::Error> {
        let path_and_query = incoming.path_and_query().map_or("/", PathAndQuery::as_str);
        let path_and_query = if self.prefix.is_empty() {
            PathAndQuery::try_from(path_and_query)?
        } else {
            PathAndQuery::try_from(format!("{}{path_and_query}", self.prefix))?
        };
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path_and_query)
            .build()
    }
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
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_target(false)
        .with_ansi(std::io::stdout().is_terminal())
        .init();
    let args = Args::parse();
    let upstream = Arc::new(Upstream::from_uri(&args.upstream)?);

    let store = open_store(&args.store, args.tiered)?;
    tracing::info!(store = %args.store, tiered = args.tiered, "cache store");
    let settings = if args.shared {
        CacheSettings::shared()
    } else {
        CacheSettings::default()
    };
    // One client (one connection pool) and one cache for all connections; cloning either is
    // cheap and shares them.
    let client: CachedClient = ServiceBuilder::new()
        .layer(CacheLayer::with_shared_store(store, settings))
        .service(Client::builder(TokioExecutor::new()).build_http());

    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|error| format!("cannot listen on {}: {error}", args.listen))?;
    tracing::info!(
        "listening on http://{}, forwarding to {} ({} cache)",
        listener.local_addr()?,
        args.upstream,
        if args.shared { "shared" } else { "private" },
    );

    let server = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // For example too many open files: wait a little rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut ctrl_c => break,
        };

        let client = client.clone();
        let upstream = upstream.clone();
        let service =
            service_fn(move |request| proxy(client.clone(), upstream.clone(), peer, request));
        let connection = server.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection.into_owned());
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }

    tracing::info!(
        "shutting down: waiting for {} open connection(s)",
        graceful.count()
    );
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!("connections still open after {SHUTDOWN_GRACE:?}; exiting anyway");
        }
    }
    Ok(())
}

/// Forwards one request through the cache, and logs it.
async fn proxy(
    client: CachedClient,
    upstream: Arc<Upstream>,
    peer: SocketAddr,
    request: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_owned(), ToString::to_string);

    let response = match forward(client, &upstream, peer, request).await {
        Ok(response) => response,
        Err(error) => {
            tracing::warn!(%method, %path, error = error_chain(&*error), "upstream request failed");
            bad_gateway()
        }
    };

    let cache = response
        .extensions()
        .get::<CacheInfo>()
        .map_or_else(|| "-".to_owned(), outcome_label);
    tracing::info!(
        "{peer} {method} {path} -> {} {cache} {:.1?}",
        response.status().as_u16(),
        started.elapsed(),
    );
    Ok(response)
}

/// Rewrites the request for the upstream, sends it through the cache and prepares the response
/// for the client.
async fn forward(
    client: CachedClient,
    upstream: &Upstream,
    peer: SocketAddr,
    request: Request<Incoming>,
) -> Result<Response<ProxyBody>, BoxError> {
    let (mut parts, body) = request.into_parts();
    let client_version = parts.version;
    // The host the client asked for: `Host`, or for HTTP/2 the URI's authority.
    let original_host = parts.headers.get(HOST).cloned().or_else(|| {
        let authority = parts.uri.authority()?;
        HeaderValue::from_str(authority.as_str()).ok()
    });
    parts.uri = upstream.uri_for(&parts.uri)?;

    // Connection-specific fields are for this hop only (RFC 9110 §7.6.1). Host is removed so
    // the client sets the upstream's from the URI.
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.remove(HOST);
    append_forwarding_headers(&mut parts.headers, peer, original_host, parts.version);
    // The upstream connection is HTTP/1.1 whatever the client spoke.
    parts.version = http::Version::HTTP_11;

    let mut response = client.oneshot(Request::from_parts(parts, body)).await?;

    strip_hop_by_hop(response.headers_mut());
    let upstream_version = response.version();
    append_via(response.headers_mut(), upstream_version);
    // Answer in the client's protocol version, not the upstream's (which may be HTTP/1.0).
    *response.version_mut() = client_version;
    Ok(response.map(Either::Left))
}

/// `X-Forwarded-For` (appended to any the client sent), `X-Forwarded-Host`, `Via`.
fn append_forwarding_headers(
    headers: &mut HeaderMap,
    peer: SocketAddr,
    original_host: Option<HeaderValue>,
    version: http::Version,
) {
    let forwarded_for = match headers.get("x-forwarded-for").map(HeaderValue::to_str) {
        Some(Ok(previous)) => format!("{previous}, {}", peer.ip()),
        _ => peer.ip().to_string(),
    };
    if let Ok(value) = HeaderValue::try_from(forwarded_for) {
        headers.insert("x-forwarded-for", value);
    }
    if let Some(host) = original_host {
        headers.insert("x-forwarded-host", host);
    }
    append_via(headers, version);
}

/// Adds this proxy to `Via` (RFC 9110 §7.6.3), for the protocol version of the hop received.
fn append_via(headers: &mut HeaderMap, version: http::Version) {
    let received = match version {
        http::Version::HTTP_10 => "1.0",
        http::Version::HTTP_2 => "2",
        http::Version::HTTP_3 => "3",
        _ => "1.1",
    };
    if let Ok(value) = HeaderValue::try_from(format!("{received} cachelayer-proxy")) {
        headers.append(VIA, value);
    }
}

fn bad_gateway() -> Response<ProxyBody> {
    let mut response = Response::new(Either::Right(Full::from(
        "502 Bad Gateway: the upstream server could not be reached\n",
    )));
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// The log's label for what the cache did, with whether the response is being stored.
fn outcome_label(info: &CacheInfo) -> String {
    if info.stored {
        format!("{} (stored)", info.outcome)
    } else {
        info.outcome.to_string()
    }
}

/// An error and its sources on one line: `client error (Connect): tcp connect error: ...`.
fn error_chain(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
