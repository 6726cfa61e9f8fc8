//! A caching reverse proxy: a hyper server that forwards every request to one upstream server
//! through a [`CacheLayer`](cachelayer::CacheLayer), and answers from the cache when it can.
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
//! The proxy itself is a library, [`examples::proxy`], so that the integration tests start real
//! ones; this program adds the command line, the stores and Ctrl-C. What it does for each
//! request:
//!
//! 1. checks the host the client asked for (RFC 9112 §3.2): `400 Bad Request`, with nothing
//!    forwarded and the cache not involved, to an HTTP/1.1 request without `Host`, to a request
//!    with two `Host` lines, or to a host that is not `host[:port]` (`victim/b`, `a@b`, `a b`,
//!    ...). An absolute-form target (`GET http://a.example/x HTTP/1.1`) and HTTP/2's
//!    `:authority` name the host themselves; HTTP/1.0 without `Host` gets the upstream's;
//! 2. keys the request by what is forwarded: the cache sees `http://{host}{path?query}`, the host
//!    lowercased, so a response made for one host is never served for another;
//! 3. removes the hop-by-hop fields ([`strip_hop_by_hop`](cachelayer::strip_hop_by_hop)), `Host`,
//!    and every client-sent `Forwarded`, `X-Forwarded-*`, `X-Real-IP`, `X-Original-URL`,
//!    `X-Rewrite-URL`, `X-Original-Host`, `X-Host`, `X-HTTP-Method-Override`, `X-HTTP-Method`
//!    and `X-Method-Override`: origins trust them to build links and pick routes, and they are
//!    not in the key;
//! 4. on a miss only (below the cache), rewrites the URI to the upstream's scheme, authority
//!    and path prefix followed by the incoming path and query, and sets (overwriting)
//!    `X-Forwarded-For: {peer IP}`, `X-Forwarded-Host: {the keyed host}`,
//!    `X-Forwarded-Proto: http`, and appends `Via`; the upstream connection is HTTP/1.1, plain
//!    `http://` only, pooled;
//! 5. drops hop-by-hop fields from the response, adds `Via`, and streams it back in the client's
//!    HTTP version; when the upstream cannot be reached, answers `502 Bad Gateway`.
//!
//! With `--access-log` it logs one line per request (method, path with credentials redacted,
//! status, what the cache did, latency); `RUST_LOG=info,cachelayer=debug` shows the cache's
//! reasoning as well. Ctrl-C stops
//! accepting connections and waits (up to 10 seconds) for the open ones to finish.
//!
//! Not handled, to keep the example short: HTTPS upstreams, protocol upgrades (WebSocket),
//! `CONNECT`.

use cachelayer::store::TieredStore;
use cachelayer::{CacheSettings, MemoryStore, Store};
use cachelayer_redis::RedisStore;
use cachelayer_sqlite::SqliteStore;
use clap::Parser;
use examples::proxy::{Proxy, ProxyConfig, error_chain};
use http::Uri;
use std::error::Error;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

type BoxError = Box<dyn Error + Send + Sync>;

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

    /// Read every cache setting from a file: TOML, or JSON when the name ends in `.json`
    /// (`CacheSettings` fields, strictly: an unknown field is an error). `--shared` still
    /// turns on shared mode.
    #[arg(long)]
    config: Option<std::path::PathBuf>,

    /// Where the cache keeps responses: `memory` (the default, in this process), `sqlite:PATH`
    /// (a file: kept across restarts, shared by processes on this machine), or a Redis URL such
    /// as `redis://127.0.0.1:6379` (shared by proxies on many machines; when Redis is down,
    /// requests still go through, uncached).
    #[arg(long, default_value = "memory")]
    store: String,

    /// With a SQLite or Redis store: keep hot responses in memory in front of it.
    #[arg(long)]
    tiered: bool,

    /// Threads serving connections, each with its own single-threaded runtime; a connection is
    /// pinned to the one serving the fewest. Default: one per core. `0` serves them on the main
    /// runtime.
    #[arg(long)]
    threads: Option<usize>,

    /// Bind connection thread `i` to the `i`-th CPU the process may run on (nginx's
    /// `worker_cpu_affinity auto`), and give a connection to the thread on the CPU its packets
    /// arrive on: for a machine that runs little else.
    #[arg(long)]
    cpu_affinity: bool,

    /// Seconds a client may take to send a request's header section (slow clients are cut off).
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    header_read_timeout: u64,

    /// Seconds a client connection may stay without traffic (idle keep-alive) before it is
    /// closed.
    #[arg(long, default_value_t = 75, value_name = "SECONDS")]
    idle_timeout: u64,

    /// Client connections open at once; more wait until one closes.
    #[arg(long, default_value_t = 10_000)]
    max_connections: usize,

    /// Seconds the upstream may take to send its response head (then 504, or stale when
    /// allowed).
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    upstream_timeout: u64,

    /// Serve Prometheus metrics at `http://ADDR/metrics`: the cache's counters (outcomes,
    /// stored / not stored by reason, bytes served from the cache, store errors), store
    /// operation durations, and the store's entries and bytes (read every 10 s).
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,

    /// Log one line per request (peer, method, path with credentials redacted, status, what
    /// the cache did, latency). Off by default: a line per request costs more than a cache hit.
    #[arg(long)]
    access_log: bool,
}

/// The settings in the file `--config` names: TOML, or JSON for `*.json`. Errors name the file
/// and, as the parsers report them, the field, line and column.
fn read_settings(path: &std::path::Path) -> Result<CacheSettings, BoxError> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let parsed = if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        serde_json::from_str(&text).map_err(|error| error.to_string())
    } else {
        toml::from_str(&text).map_err(|error| error.to_string())
    };
    parsed.map_err(|error| format!("invalid settings in {}: {error}", path.display()).into())
}

/// Opens the store that `--store` names.
fn open_store(spec: &str, tiered: bool) -> Result<Arc<dyn Store>, BoxError> {
    let back: Arc<dyn Store> = if spec == "memory" {
        return Ok(Arc::new(MemoryStore::new()));
    } else if let Some(path) = spec.strip_prefix("sqlite:") {
        // A cache is disposable: a damaged file is set aside and the store starts empty; a file
        // that cannot be written at all leaves the proxy on a memory store rather than down.
        match SqliteStore::builder(path).recover_damaged(true).build() {
            Ok(store) => Arc::new(store),
            Err(error) => {
                tracing::warn!(
                    path,
                    error = error_chain(&error),
                    "cannot use the SQLite store: caching in memory instead"
                );
                return Ok(Arc::new(MemoryStore::new()));
            }
        }
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

    if let Some(addr) = args.metrics {
        examples::metrics::serve_prometheus(addr)
            .map_err(|error| format!("cannot serve metrics on {addr}: {error}"))?;
        tracing::info!("metrics on http://{addr}/metrics");
    } else {
        // No recorder: no clock reads or facade calls for metrics nobody collects.
        cachelayer::metrics::set_enabled(false);
    }
    let store = open_store(&args.store, args.tiered)?;
    tracing::info!(store = %args.store, tiered = args.tiered, "cache store");
    let mut settings = match &args.config {
        Some(path) => read_settings(path)?,
        None => CacheSettings::default(),
    };
    settings.shared |= args.shared;
    // Only the access log reads the `CacheInfo` extension: without it, three allocations per
    // response nobody reads.
    settings.cache_info &= args.access_log;
    let shared = settings.shared;
    let config = ProxyConfig {
        shutdown_grace: SHUTDOWN_GRACE,
        access_log: args.access_log,
        header_read_timeout: Duration::from_secs(args.header_read_timeout),
        idle_timeout: Duration::from_secs(args.idle_timeout),
        max_connections: args.max_connections,
        upstream_timeout: Duration::from_secs(args.upstream_timeout),
        cpu_affinity: args.cpu_affinity,
        connection_threads: args
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from)),
        ..ProxyConfig::new(args.upstream.clone(), settings, store)
    };
    let proxy = Proxy::new(config)?;
    if args.metrics.is_some() {
        examples::metrics::record_store_size_every(
            proxy.cache_layer().cache(),
            examples::metrics::STORE_SIZE_PERIOD,
        );
    }

    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|error| format!("cannot listen on {}: {error}", args.listen))?;
    tracing::info!(
        "listening on http://{}, forwarding to {} ({} cache)",
        listener.local_addr()?,
        args.upstream,
        if shared { "shared" } else { "private" },
    );

    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C; stop the process another way");
            std::future::pending::<()>().await;
        }
    };
    proxy.serve(listener, ctrl_c).await;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Writes `text` to a file named `name` in a fresh directory, and reads it as `--config`.
    fn read(name: &str, text: &str) -> Result<CacheSettings, String> {
        let dir = std::env::temp_dir().join(format!(
            "cachelayer-reverse-proxy-config-{}-{name}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let settings = read_settings(&path).map_err(|error| error.to_string());
        std::fs::remove_dir_all(&dir).unwrap();
        settings
    }

    #[test]
    fn config_files_set_every_field_they_name() {
        let settings = read(
            "settings.toml",
            "shared = true\nexpire_after = 360\ncoalesce_timeout = 5\n\
             [urls_expire_after]\n\"*.example.com/api\" = \"2m\"\n",
        )
        .unwrap();
        assert!(settings.shared);
        assert_eq!(
            settings.expire_after,
            Some(cachelayer::ExpireAfter::After(Duration::from_secs(360)))
        );
        assert_eq!(settings.coalesce_timeout, Duration::from_secs(5));
        assert_eq!(settings.urls_expire_after.len(), 1);
        let json = read("settings.json", r#"{ "stale_if_error": "1h" }"#).unwrap();
        assert_eq!(
            json.stale_if_error,
            cachelayer::StaleWindow::AtMost(Duration::from_secs(3600))
        );
    }

    #[test]
    fn a_typo_is_an_error_naming_the_file_field_and_line() {
        let error = read("typo.toml", "shared = true\nexpire_afer = 360\n").unwrap_err();
        assert!(error.contains("typo.toml"), "{error}");
        assert!(error.contains("expire_afer"), "{error}");
        assert!(error.contains("line 2"), "{error}");
        let error = read("typo.json", "{\n  \"expire_afer\": 360\n}").unwrap_err();
        assert!(
            error.contains("expire_afer") && error.contains("line 2"),
            "{error}"
        );
    }
}
