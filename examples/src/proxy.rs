//! A caching reverse proxy: a hyper server that forwards every request to one upstream server
//! through a [`CacheLayer`], and answers from the cache when it can.
//!
//! ```no_run
//! use cachelayer::{CacheSettings, MemoryStore};
//! use examples::proxy::{Proxy, ProxyConfig};
//! use std::sync::Arc;
//! use tokio::net::TcpListener;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = ProxyConfig::new(
//!     "http://127.0.0.1:8080".parse()?,
//!     CacheSettings::shared(),
//!     Arc::new(MemoryStore::new()),
//! );
//! let proxy = Proxy::new(config)?;
//! let listener = TcpListener::bind("127.0.0.1:3000").await?;
//! proxy.serve(listener, async { let _ = tokio::signal::ctrl_c().await; }).await;
//! # Ok(())
//! # }
//! ```
//!
//! # What is keyed is what is forwarded
//!
//! The cache sits in front of a small rewrite service (`Forwarder` in the source), not in front
//! of the upstream URL: the host the proxy forwards (`X-Forwarded-Host`, which origins use to
//! build links and redirects) is in the cache key, and the client's own claims about the
//! original request never reach the upstream. (Other request fields the response depends on
//! are the upstream's to name in `Vary`, as for any cache.)
//!
//! ```text
//! client -> validate Host -> strip fields -> CacheLayer -> rewrite to upstream -> hyper client
//!           (400 if bad)                     key: http://{host}{path?query}    (misses only)
//! ```
//!
//! 1. **Host.** The host the client asked for is part of the key, like Varnish's `vcl_hash`
//!    hashing `Host`: the cache sees the request as `http://{host}{path?query}`, with the host
//!    lowercased and a `:80` port dropped. The host is, per RFC 9112 §3.2 and §3.2.2:
//!    - HTTP/1.1: the single `Host` field; for an absolute-form target
//!      (`GET http://a.example/x HTTP/1.1`) the target's authority, the `Host` field still being
//!      required once (and syntactically valid) but its value ignored;
//!    - HTTP/1.0 without `Host`: the upstream's authority;
//!    - HTTP/2: `:authority` (a `Host` field, if also sent, must name the same host).
//!
//!    The proxy answers `400 Bad Request` (plain text, nothing forwarded, the cache not involved)
//!    to an HTTP/1.1 request without `Host`, to any request with more than one `Host` line, and
//!    to a host that is not `uri-host [ ":" port ]`: empty, user information (`@`), `/ ? # \`,
//!    whitespace, control or non-ASCII bytes, a comma, `%`, a malformed IPv6 literal, or a port
//!    that is empty, not decimal or above 65535. (Commas and percent-encoding are legal in a
//!    reg-name but no real host uses them, and a comma is a list separator to the frameworks
//!    that read `X-Forwarded-Host`.)
//! 2. **Removed before the cache** (so that the cache and the upstream see the same request):
//!    `Host` (the client sets the upstream's), the hop-by-hop fields ([`strip_hop_by_hop`]),
//!    and every client-sent `Forwarded`, `X-Forwarded-*` (`-For`, `-Host`, `-Proto`, `-Prefix`,
//!    `-Port`, `-Server`, ...), `X-Real-IP`, `X-Original-URL`, `X-Rewrite-URL`,
//!    `X-Original-Host`, `X-Host`, `X-HTTP-Method-Override`, `X-HTTP-Method` and
//!    `X-Method-Override`: origins (Django, Rails, Express, IIS, Symfony) trust these to build
//!    links, pick the route or the method, and none of them is in the key.
//! 3. **Set below the cache**, on the way to the upstream, overwriting: the URI (the upstream's
//!    scheme, authority and path prefix, then the incoming path and query),
//!    `X-Forwarded-For: {peer IP}` (only the peer, never a client-sent chain),
//!    `X-Forwarded-Host: {the host the cache keyed}`, `X-Forwarded-Proto: http`; `Via` is
//!    appended. Only misses and revalidations pay for the rewrite: a hit never reaches it.
//!
//! # The rest
//!
//! Requests are forwarded with their method and streaming body over HTTP/1.1 (plain `http://`
//! upstreams only; connections are pooled). The upstream's responses lose their hop-by-hop fields
//! and get a `Via` before the cache sees them (a stored response keeps its `Via`, so a hit is
//! served as stored), and are answered in the client's HTTP version; when the upstream cannot be
//! reached the proxy answers `502 Bad Gateway`. With [`ProxyConfig::access_log`] it logs one line
//! per request (peer, method, path, status, what the cache did, latency). [`Proxy::serve`] stops
//! accepting connections when its shutdown future completes and waits (up to
//! [`ProxyConfig::shutdown_grace`]) for the open ones to finish.
//!
//! # Interim responses (1xx)
//!
//! The upstream may send interim responses before its final one: `103 Early Hints` (RFC 8297)
//! with `Link` fields, `102 Processing`, `100 Continue`. hyper's HTTP/1.1 client reads them and
//! passes each to a callback registered on the request (`hyper::ext::on_informational`), which
//! the proxy registers to log them at `debug`; hyper's server (1.x) has no way to send a 1xx
//! response other than the `100 Continue` it writes itself when a handler reads the body of a
//! request with `Expect: 100-continue`. So a `103` from the upstream does not reach the client
//! today: the client gets the final response only, without the hint's fields, as late as it
//! would have without hints. RFC 9110 §15.2 asks a proxy to forward 1xx responses; this one
//! cannot until hyper's server can send them. The cache never stores a 1xx response, and never
//! adds its fields to the final response it stores (`tests/rfc_informational.rs`).
//!
//! A proxy in front of a server is a *shared* cache: use [`CacheSettings::shared`], so that
//! `Cache-Control: private` responses and responses to requests with `Authorization` are not
//! stored, and `s-maxage` is honoured.
//!
//! Not handled, to keep the example short: HTTPS upstreams, protocol upgrades (WebSocket),
//! `CONNECT`, `OPTIONS *` (answered `400`).

use bytes::Bytes;
use cachelayer::{
    CacheBody, CacheInfo, CacheLayer, CacheService, CacheSettings, RedactedUri, Store,
    strip_hop_by_hop,
};
use http::header::{CONNECTION, CONTENT_TYPE, FORWARDED, HOST, HeaderName, HeaderValue, VIA};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, Request, Response, StatusCode, Uri, Version};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::borrow::Cow;
use std::convert::Infallible;
use std::error::Error;
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tower::{Layer, Service, ServiceExt};

type BoxError = Box<dyn Error + Send + Sync>;

/// A response of the proxy: the upstream's (or the cache's), or one the proxy made itself.
type ProxyBody = Either<CacheBody<Incoming>, Full<Bytes>>;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// Request fields removed before the cache (besides hop-by-hop fields and `X-Forwarded-*`):
/// the client's claims about the original request, which origins trust and keys ignore.
const REMOVED_REQUEST_FIELDS: [HeaderName; 10] = [
    HOST,
    FORWARDED,
    HeaderName::from_static("x-real-ip"),
    HeaderName::from_static("x-original-url"),
    HeaderName::from_static("x-rewrite-url"),
    HeaderName::from_static("x-original-host"),
    HeaderName::from_static("x-host"),
    HeaderName::from_static("x-http-method-override"),
    HeaderName::from_static("x-http-method"),
    HeaderName::from_static("x-method-override"),
];

/// How a [`Proxy`] is set up.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// The server requests are forwarded to: `http://host[:port]`, optionally with a path prefix
    /// (prepended to every request's path); no query, no `https`.
    pub upstream: Uri,
    /// The cache's settings: a reverse proxy wants [`CacheSettings::shared`].
    pub settings: CacheSettings,
    /// Where the cache keeps responses.
    pub store: Arc<dyn Store>,
    /// Log one `info` line per request: peer, method, path (credentials redacted, see
    /// [`RedactedUri`]), status, what the cache did, latency. It costs a formatted line and a
    /// write per request.
    pub access_log: bool,
    /// How long [`Proxy::serve`] waits for open connections once its shutdown future completes.
    pub shutdown_grace: Duration,
    /// Threads that serve connections. `0`: connections run on the runtime [`Proxy::serve`] is
    /// called on. `N`: `N` threads, each with a single-threaded tokio runtime of its own, and
    /// each accepted connection pinned to the one serving the fewest (in turn among equals;
    /// see [`cpu_affinity`](Self::cpu_affinity) for bound threads), as nginx pins connections to
    /// worker processes: no work stealing and no wake-ups across threads on the way of a
    /// request. One per core is the fast setting for a proxy that does little else.
    /// Default: `0`.
    pub connection_threads: usize,
    /// With [`connection_threads`](Self::connection_threads): binds connection thread `i` to
    /// the `i`-th CPU the process may run on (modulo their number), as nginx's
    /// `worker_cpu_affinity auto` does, and gives each new connection to the thread on the CPU
    /// its packets arrive on (Linux's `SO_INCOMING_CPU`; on loopback, the client's CPU) unless
    /// that thread already serves 4 connections more than the least loaded one: client and
    /// server then share that CPU's caches. Measured with 64 KiB hits on the 2-core benchmark
    /// machine (6-second wrk runs, requests/s): 8 runs of 10 at 49,000-54,600 and two at
    /// 35,900 and 38,700; with binding alone, 34,000-50,400 (3 runs of 8 above 45,000); with
    /// neither, 33,000-46,800 (2 of 8 above 44,000).
    /// Leave it off when the machine's CPUs are busy with other work: a bound thread cannot move
    /// to an idle CPU. Default: `false`.
    pub cpu_affinity: bool,
    /// How long a client may take to send a request's header section, from the moment the
    /// connection waits for it (so also how long an idle keep-alive connection stays open), in
    /// the HTTP/1 server; a slow-loris client that trickles bytes is cut off. Default: 10 s.
    pub header_read_timeout: Duration,
    /// How long a client connection may go without a byte read or written before it is
    /// closed: a client that connects and sends nothing, or an idle keep-alive connection.
    /// A request waiting for the upstream counts as idle too, so keep it at least
    /// [`upstream_timeout`](Self::upstream_timeout). Default: 75 s (nginx's
    /// `keepalive_timeout`).
    pub idle_timeout: Duration,
    /// How many client connections may be open at once; further ones wait in the listen
    /// backlog until one closes. Default: 10,000.
    pub max_connections: usize,
    /// How long connecting to the upstream may take before the request fails with `502`.
    /// Default: 5 s.
    pub upstream_connect_timeout: Duration,
    /// How long the upstream may take to send its response head before the request fails with
    /// `504 Gateway Timeout` (or a stale response is served, when `stale_if_error` allows).
    /// Default: 60 s.
    pub upstream_timeout: Duration,
}

impl ProxyConfig {
    /// A configuration with the access log off, a 10 second shutdown grace, and connections
    /// on the caller's runtime.
    pub fn new(upstream: Uri, settings: CacheSettings, store: Arc<dyn Store>) -> Self {
        ProxyConfig {
            upstream,
            settings,
            store,
            access_log: false,
            shutdown_grace: Duration::from_secs(10),
            connection_threads: 0,
            cpu_affinity: false,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            max_connections: 10_000,
            upstream_connect_timeout: Duration::from_secs(5),
            upstream_timeout: Duration::from_secs(60),
        }
    }
}

/// A [`ProxyConfig::upstream`] the proxy cannot forward to.
#[derive(Debug)]
pub struct InvalidUpstream {
    uri: Uri,
    reason: &'static str,
}

impl fmt::Display for InvalidUpstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "upstream {}: {}", self.uri, self.reason)
    }
}

impl Error for InvalidUpstream {}

/// A caching reverse proxy, ready to [`serve`](Proxy::serve). See the [module docs](self) for
/// what it does to requests and responses.
#[derive(Debug)]
pub struct Proxy {
    layer: CacheLayer,
    target: Arc<Target>,
    access_log: bool,
    shutdown_grace: Duration,
    connection_threads: usize,
    cpu_affinity: bool,
    header_read_timeout: Duration,
    idle_timeout: Duration,
    max_connections: usize,
}

impl Proxy {
    /// A proxy to `config.upstream`, with one cache (on `config.store`) and one pool of upstream
    /// connections for all its client connections.
    pub fn new(config: ProxyConfig) -> Result<Proxy, InvalidUpstream> {
        let upstream = Upstream::from_uri(&config.upstream)?;
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(config.upstream_connect_timeout));
        connector.set_nodelay(true);
        Ok(Proxy {
            layer: CacheLayer::with_shared_store(config.store, config.settings),
            target: Arc::new(Target {
                upstream,
                client: Client::builder(TokioExecutor::new()).build(connector),
                timeout: config.upstream_timeout,
            }),
            access_log: config.access_log,
            shutdown_grace: config.shutdown_grace,
            connection_threads: config.connection_threads,
            cpu_affinity: config.cpu_affinity,
            header_read_timeout: config.header_read_timeout,
            idle_timeout: config.idle_timeout,
            max_connections: config.max_connections.max(1),
        })
    }

    /// The cache layer: its store, its settings (changeable while serving), its entries.
    pub fn cache_layer(&self) -> &CacheLayer {
        &self.layer
    }

    /// Accepts connections on `listener` (HTTP/1.1, and HTTP/2 with prior knowledge) and
    /// proxies their requests until `shutdown` completes; then stops accepting and waits up to
    /// [`ProxyConfig::shutdown_grace`] for the open connections to finish.
    pub async fn serve(self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let mut server = auto::Builder::new(TokioExecutor::new());
        server
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout);
        let permits = Arc::new(tokio::sync::Semaphore::new(self.max_connections));
        let graceful = GracefulShutdown::new();
        let mut shutdown = std::pin::pin!(shutdown);
        let ignored: Arc<[String]> = self.layer.settings().ignored_parameters.clone().into();
        let workers = Workers::start(self.connection_threads, self.cpu_affinity);
        let mut next_worker = 0usize;
        loop {
            // At most `max_connections` open: wait for one to close before accepting more.
            let permit = tokio::select! {
                permit = permits.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
                () = &mut shutdown => break,
            };
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
                () = &mut shutdown => break,
            };

            // Responses go out as soon as they are written: with Nagle's algorithm, the last
            // segment of a response larger than one segment (64 KiB on loopback, 1,460 bytes on
            // Ethernet) waits for the client to acknowledge the first.
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(%peer, %error, "cannot set TCP_NODELAY");
            }

            // One cache service per connection, over a forwarder that knows the peer: the
            // cache (store, settings, coalescing) and the connection pool are shared.
            let handler = Handler {
                cache: self.layer.layer(Forwarder {
                    target: self.target.clone(),
                    // `::ffff:a.b.c.d` (an IPv4 peer on an IPv6 socket) as `a.b.c.d`.
                    peer: peer.ip().to_canonical(),
                }),
                peer,
                access_log: self.access_log,
                ignored: ignored.clone(),
            };
            // The host of a connection's requests is the same from one request to the next:
            // it is validated once per connection and value, not per request.
            let hosts = HostMemo::default();
            let service = service_fn(move |request: Request<Incoming>| {
                let fallback = &handler.cache.get_ref().target.upstream.authority;
                let host = hosts.keyed_host(
                    request.version(),
                    request.uri(),
                    request.headers(),
                    fallback,
                );
                handler.respond(request, host)
            });
            let server = server.clone();
            let watcher = graceful.watcher();
            let idle_timeout = self.idle_timeout;
            let (worker, load) = match workers.pick(incoming_cpu(&stream), next_worker) {
                Some((worker, load)) => (Some(worker), Some(load)),
                None => (None, None),
            };
            // The socket and its timers are registered with the runtime that serves the
            // connection: readiness and timeouts then never wake another thread.
            let stream = match worker {
                Some(_) => Accepted::Detached(stream.into_std()),
                None => Accepted::Registered(stream),
            };
            let task = async move {
                let stream = match stream {
                    Accepted::Registered(stream) => stream,
                    Accepted::Detached(Ok(stream)) => match TcpStream::from_std(stream) {
                        Ok(stream) => stream,
                        Err(error) => {
                            tracing::debug!(%peer, %error, "cannot register the connection");
                            return;
                        }
                    },
                    Accepted::Detached(Err(error)) => {
                        tracing::debug!(%peer, %error, "cannot hand the connection over");
                        return;
                    }
                };
                let stream = IdleTimeout::new(stream, idle_timeout);
                let connection = server.serve_connection(TokioIo::new(stream), service);
                if let Err(error) = watcher.watch(connection.into_owned()).await {
                    tracing::debug!(%peer, %error, "connection ended with an error");
                }
                drop(permit);
                drop(load);
            };
            match worker {
                Some(worker) => drop(worker.spawn(task)),
                None => drop(tokio::spawn(task)),
            }
            next_worker = next_worker.wrapping_add(1);
        }

        tracing::info!(
            "shutting down: waiting for {} open connection(s)",
            graceful.count()
        );
        let grace = self.shutdown_grace;
        tokio::select! {
            () = graceful.shutdown() => tracing::info!("all connections closed"),
            () = tokio::time::sleep(grace) => {
                tracing::warn!("connections still open after {grace:?}; exiting anyway");
            }
        }
        drop(workers);
    }
}

/// The connection threads of [`ProxyConfig::connection_threads`]: each runs a single-threaded
/// runtime until dropped.
struct Workers {
    handles: Vec<tokio::runtime::Handle>,
    /// The CPU each thread is bound to, by index in `handles` (`None`: not bound).
    cpus: Vec<Option<usize>>,
    /// The connections each thread serves, by index in `handles`.
    loads: Vec<Arc<AtomicUsize>>,
    /// Dropping a sender stops its thread's runtime (and the tasks still on it).
    _stop: Vec<tokio::sync::oneshot::Sender<()>>,
}

/// The CPU that processed the connection's incoming packets (`SO_INCOMING_CPU`), on Linux.
fn incoming_cpu(stream: &TcpStream) -> Option<usize> {
    #[cfg(target_os = "linux")]
    {
        socket2::SockRef::from(stream).cpu_affinity().ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = stream;
        None
    }
}

impl Workers {
    /// How many more connections than the least loaded thread the thread on a connection's CPU
    /// may serve and still get it.
    const CPU_MATCH_SLACK: usize = 4;

    /// The thread to serve a new connection, and its share of that thread's load (held while
    /// the connection is open); `None` without threads. With threads bound to CPUs, the thread
    /// on the CPU the connection's packets arrive on (`cpu`; on loopback, the client's CPU), so
    /// that client and server share that CPU's caches, unless it serves more than
    /// [`CPU_MATCH_SLACK`](Self::CPU_MATCH_SLACK) connections above the least loaded thread;
    /// otherwise the least loaded thread, the `turn`-th in turn among equals.
    fn pick(&self, cpu: Option<usize>, turn: usize) -> Option<(&tokio::runtime::Handle, Load)> {
        let (index, load) = self.pick_index(cpu, turn)?;
        Some((&self.handles[index], load))
    }

    /// [`pick`](Self::pick), by the thread's index.
    fn pick_index(&self, cpu: Option<usize>, turn: usize) -> Option<(usize, Load)> {
        let load = |index: usize| self.loads[index].load(Ordering::Relaxed);
        let count = self.handles.len();
        let least = (0..count)
            .map(|offset| (turn + offset) % count)
            .min_by_key(|&index| load(index))?;
        let matched = cpu
            .and_then(|cpu| self.cpus.iter().position(|bound| *bound == Some(cpu)))
            .filter(|&index| load(index) <= load(least) + Self::CPU_MATCH_SLACK);
        let index = matched.unwrap_or(least);
        let load = self.loads[index].clone();
        load.fetch_add(1, Ordering::Relaxed);
        Some((index, Load(load)))
    }

    /// `threads` threads; with `cpu_affinity`, thread `i` bound to the `i`-th CPU the process
    /// may run on (a thread that cannot be bound runs unbound).
    fn start(threads: usize, cpu_affinity: bool) -> Workers {
        let mut workers = Workers {
            handles: Vec::with_capacity(threads),
            cpus: Vec::with_capacity(threads),
            loads: Vec::with_capacity(threads),
            _stop: Vec::with_capacity(threads),
        };
        let cpus = if cpu_affinity && threads > 0 {
            core_affinity::get_core_ids().unwrap_or_default()
        } else {
            Vec::new()
        };
        for i in 0..threads {
            let (handle_tx, handle_rx) = std::sync::mpsc::channel();
            let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
            let cpu = (!cpus.is_empty()).then(|| cpus[i % cpus.len()]);
            let spawned = std::thread::Builder::new()
                .name(format!("proxy-conn-{i}"))
                .spawn(move || {
                    if let Some(cpu) = cpu {
                        if !core_affinity::set_for_current(cpu) {
                            tracing::debug!(cpu = cpu.id, "cannot bind a connection thread");
                        }
                    }
                    let runtime = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(runtime) => runtime,
                        Err(error) => {
                            tracing::warn!(%error, "cannot start a connection thread");
                            return;
                        }
                    };
                    let _ = handle_tx.send(runtime.handle().clone());
                    runtime.block_on(async {
                        let _ = stop_rx.await;
                    });
                });
            if let Err(error) = spawned {
                tracing::warn!(%error, "cannot start a connection thread");
                continue;
            }
            // A thread that could not build its runtime sends nothing: serve without it.
            if let Ok(handle) = handle_rx.recv() {
                workers.handles.push(handle);
                workers.cpus.push(cpu.map(|cpu| cpu.id));
                workers.loads.push(Arc::new(AtomicUsize::new(0)));
                workers._stop.push(stop_tx);
            }
        }
        workers
    }
}

/// A connection's share of its thread's load ([`Workers::pick`]), given back when dropped.
struct Load(Arc<AtomicUsize>);

impl Drop for Load {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An accepted connection on its way to the runtime that serves it.
enum Accepted {
    /// Registered with the accepting runtime, which serves it too.
    Registered(TcpStream),
    /// Taken off the accepting runtime, for another to register.
    Detached(std::io::Result<std::net::TcpStream>),
}

/// Where requests go, and the pooled client that takes them there.
#[derive(Debug)]
struct Target {
    upstream: Upstream,
    client: Client<HttpConnector, Incoming>,
    /// [`ProxyConfig::upstream_timeout`].
    timeout: Duration,
}

/// The upstream server.
#[derive(Debug)]
struct Upstream {
    scheme: Scheme,
    authority: Authority,
    /// The upstream URI's path without its trailing `/`: prepended to every request's path.
    prefix: String,
}

impl Upstream {
    fn from_uri(uri: &Uri) -> Result<Self, InvalidUpstream> {
        let invalid = |reason| InvalidUpstream {
            uri: uri.clone(),
            reason,
        };
        if uri.scheme() != Some(&Scheme::HTTP) {
            return Err(invalid("only http:// upstreams are supported"));
        }
        let authority = uri.authority().ok_or_else(|| invalid("missing host"))?;
        if uri.query().is_some() {
            return Err(invalid("must not have a query"));
        }
        Ok(Upstream {
            scheme: Scheme::HTTP,
            authority: authority.clone(),
            prefix: uri.path().trim_end_matches('/').to_owned(),
        })
    }

    /// The upstream URI for a request URI: upstream scheme, authority and prefix, then the
    /// request's path and query.
    fn uri_for(&self, incoming: &Uri) -> Result<Uri, http::Error> {
        let path_and_query = match incoming.path_and_query() {
            None => PathAndQuery::from_static("/"),
            Some(path_and_query) if self.prefix.is_empty() => path_and_query.clone(),
            Some(path_and_query) => {
                PathAndQuery::try_from(format!("{}{path_and_query}", self.prefix))?
            }
        };
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path_and_query)
            .build()
    }
}

/// Serves the requests of one client connection: validates the host, keys the request by it,
/// and sends it through the cache.
#[derive(Debug, Clone)]
struct Handler {
    cache: CacheService<Forwarder>,
    peer: SocketAddr,
    access_log: bool,
    /// The credentials the access log redacts (`ignored_parameters`).
    ignored: Arc<[String]>,
}

impl Handler {
    /// Answers one request, and logs it; `host` is the request's [`keyed_host`].
    ///
    /// The cache's future is polled once here, before hyper reads on: a hit answered from
    /// memory is then complete, and the request (whose fields are slices of the connection's
    /// read buffer) is dropped before hyper's next read, which can then reuse that buffer instead
    /// of allocating another. What is not ready then is finished by the returned [`Answer`]
    /// (the first poll's wake-ups go nowhere, and hyper polls the answer at once, with its own
    /// waker).
    fn respond(&self, request: Request<Incoming>, host: Result<Authority, &'static str>) -> Answer {
        let finish = Finish {
            logged: self.access_log.then(|| {
                (
                    Instant::now(),
                    request.method().clone(),
                    RedactedUri::new(request.uri(), &self.ignored).to_string(),
                )
            }),
            client_version: request.version(),
            peer: self.peer,
        };
        let request = match self.prepare(request, host) {
            Ok(request) => request,
            Err(response) => return Answer::Now(Some(finish.log(response))),
        };
        let mut future = self.cache.clone().oneshot(request);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match Pin::new(&mut future).poll(&mut cx) {
            Poll::Ready(result) => Answer::Now(Some(finish.finish(result))),
            Poll::Pending => Answer::Later(Box::new(Later { future, finish })),
        }
    }

    /// The request the cache sees: keyed under `host` (absolute form), without this hop's
    /// fields and the client's forwarding claims; or the `400` it gets.
    #[allow(clippy::result_large_err)]
    fn prepare(
        &self,
        request: Request<Incoming>,
        host: Result<Authority, &'static str>,
    ) -> Result<Request<Incoming>, Response<ProxyBody>> {
        let (mut parts, body) = request.into_parts();
        let keyed = host.and_then(|host| keyed_uri(host, parts.uri));
        parts.uri = match keyed {
            Ok(uri) => uri,
            Err(reason) => {
                tracing::debug!(peer = %self.peer, reason, "bad request");
                return Err(bad_request(reason, parts.version));
            }
        };
        // Connection-specific fields are for this hop only (RFC 9110 §7.6.1); the client's
        // claims about the original request are not ours to pass on. Removed before the cache,
        // so that the cache (`Vary`, conditionals) sees the request the upstream will see.
        strip_hop_by_hop(&mut parts.headers);
        remove_client_forwarding(&mut parts.headers);
        Ok(Request::from_parts(parts, body))
    }
}

/// The response to one request, as [`Handler::respond`] leaves it: ready, or still in the cache.
enum Answer {
    /// Ready (`None` once taken: polling again is a bug and panics, as for any future).
    Now(Option<Response<ProxyBody>>),
    /// Still waiting for the store or the upstream.
    Later(Box<Later>),
}

/// A request the cache has not answered yet.
struct Later {
    future: tower::util::Oneshot<CacheService<Forwarder>, Request<Incoming>>,
    finish: Finish,
}

impl Future for Answer {
    type Output = Result<Response<ProxyBody>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // `Unpin`: the cache's future is (the forwarder's future is boxed).
        match self.get_mut() {
            Answer::Now(response) => {
                Poll::Ready(Ok(response.take().expect("Answer polled after completion")))
            }
            Answer::Later(later) => {
                let result = std::task::ready!(Pin::new(&mut later.future).poll(cx));
                Poll::Ready(Ok(later.finish.finish(result)))
            }
        }
    }
}

/// What a response needs once the cache has given it: the client's HTTP version, and the
/// access log line's parts.
struct Finish {
    /// When the request came, its method and redacted target: with the access log only.
    logged: Option<(Instant, http::Method, String)>,
    client_version: Version,
    peer: SocketAddr,
}

impl Finish {
    /// The response the client gets for the cache's `result`, logged.
    fn finish(
        &self,
        result: Result<Response<CacheBody<Incoming>>, BoxError>,
    ) -> Response<ProxyBody> {
        let response = match result {
            Ok(mut response) => {
                // Hop-by-hop fields and `Via` were dealt with below the cache (`Forwarder`):
                // responses built from stored ones have neither hop-by-hop fields nor another
                // `Via` than the stored one. Answer in the client's protocol version, not the
                // upstream's (or the stored response's), which may be HTTP/1.0.
                *response.version_mut() = self.client_version;
                response.map(Either::Left)
            }
            Err(error) => {
                tracing::warn!(peer = %self.peer, error = error_chain(&*error), "upstream request failed");
                if error.downcast_ref::<UpstreamTimeout>().is_some() {
                    gateway_timeout()
                } else {
                    bad_gateway()
                }
            }
        };
        self.log(response)
    }

    /// Writes the access log line of `response`, when logging.
    fn log(&self, response: Response<ProxyBody>) -> Response<ProxyBody> {
        if let Some((started, method, path)) = &self.logged {
            let cache = response
                .extensions()
                .get::<CacheInfo>()
                .map_or_else(|| "-".to_owned(), outcome_label);
            tracing::info!(
                "{} {method} {path} -> {} {cache} {:.1?}",
                self.peer,
                response.status().as_u16(),
                started.elapsed(),
            );
        }
        response
    }
}

/// The last `Host` field value of a connection's requests and the authority it keys: an
/// HTTP/1.1 request in origin form with one `Host` field of the same bytes has the same
/// [`keyed_host`].
#[derive(Default)]
struct HostMemo(std::cell::RefCell<Option<(HeaderValue, Authority)>>);

impl HostMemo {
    /// [`keyed_host`], from the memo when the request is HTTP/1.1 in origin form with one `Host`
    /// field whose bytes are the memo's.
    fn keyed_host(
        &self,
        version: Version,
        uri: &Uri,
        headers: &HeaderMap,
        fallback: &Authority,
    ) -> Result<Authority, &'static str> {
        let mut fields = headers.get_all(HOST).iter();
        let field = match (fields.next(), fields.next()) {
            (Some(field), None) if version == Version::HTTP_11 && uri.authority().is_none() => {
                field
            }
            _ => return keyed_host(version, uri, headers, fallback),
        };
        let Ok(mut memo) = self.0.try_borrow_mut() else {
            return keyed_host(version, uri, headers, fallback);
        };
        if let Some((value, host)) = memo.as_ref() {
            if value.as_bytes() == field.as_bytes() {
                return Ok(host.clone());
            }
        }
        let host = keyed_host(version, uri, headers, fallback)?;
        // A copy: the field is a slice of the connection's read buffer, which a kept slice
        // would stop hyper from reusing.
        let field = HeaderValue::from_bytes(field.as_bytes()).map_err(|_| "invalid Host field")?;
        *memo = Some((field, host.clone()));
        Ok(host)
    }
}

/// The host a request is keyed and forwarded under (RFC 9112 §3.2, §3.2.2), normalized; or
/// why the request is a `400`.
fn keyed_host(
    version: Version,
    uri: &Uri,
    headers: &HeaderMap,
    fallback: &Authority,
) -> Result<Authority, &'static str> {
    let mut fields = headers.get_all(HOST).iter();
    let field = fields.next();
    if fields.next().is_some() {
        return Err("more than one Host field");
    }
    if version == Version::HTTP_11 && field.is_none() {
        return Err("no Host field");
    }
    // Whether used or not, a Host field must be valid.
    let field_host = field
        .map(|value| normalize_host(value.as_bytes()))
        .transpose()?;
    if let Some(authority) = uri.authority() {
        // Absolute form (HTTP/1.1) or `:authority` (HTTP/2): the target names the host, and
        // an HTTP/1 Host field is ignored.
        let host = normalize_host(authority.as_str().as_bytes())?;
        if version >= Version::HTTP_2 && field_host.as_ref().is_some_and(|field| *field != host) {
            return Err("Host differs from :authority");
        }
        return match host {
            Cow::Borrowed(_) => Ok(authority.clone()),
            Cow::Owned(host) => Authority::try_from(host).map_err(|_| "invalid host"),
        };
    }
    match field_host {
        Some(host) => Authority::try_from(host.as_ref()).map_err(|_| "invalid Host field"),
        None if version < Version::HTTP_11 => Ok(fallback.clone()),
        None => Err("no Host field and no :authority"),
    }
}

/// A valid `uri-host [ ":" port ]`, lowercased and without a `:80` port (borrowed when it
/// already is); `Err` when it is not valid.
fn normalize_host(value: &[u8]) -> Result<Cow<'_, [u8]>, &'static str> {
    const INVALID: &str = "invalid host";
    let (host, port) = if value.first() == Some(&b'[') {
        // IP-literal: an IPv6 address (no zone identifier, no IPvFuture).
        let end = value.iter().position(|&b| b == b']').ok_or(INVALID)?;
        let address = std::str::from_utf8(&value[1..end]).map_err(|_| INVALID)?;
        address.parse::<Ipv6Addr>().map_err(|_| INVALID)?;
        match &value[end + 1..] {
            [] => (&value[..=end], None),
            [b':', port @ ..] => (&value[..=end], Some(port)),
            _ => return Err(INVALID),
        }
    } else {
        let (host, port) = match value.iter().position(|&b| b == b':') {
            Some(colon) => (&value[..colon], Some(&value[colon + 1..])),
            None => (value, None),
        };
        if host.is_empty() || !host.iter().all(|&b| is_reg_name_byte(b)) {
            return Err(INVALID);
        }
        (host, port)
    };
    if let Some(port) = port {
        // At most five digits whose value fits in 16 bits.
        let valid = (1..=5).contains(&port.len())
            && port.iter().all(u8::is_ascii_digit)
            && port
                .iter()
                .fold(0u32, |n, digit| n * 10 + u32::from(digit - b'0'))
                <= u32::from(u16::MAX);
        if !valid {
            return Err("invalid port");
        }
    }
    let value = if port == Some(b"80") { host } else { value };
    Ok(if value.iter().any(u8::is_ascii_uppercase) {
        Cow::Owned(value.to_ascii_lowercase())
    } else {
        Cow::Borrowed(value)
    })
}

/// A byte of a reg-name (RFC 3986 §3.2.2), except `,` and `%`.
fn is_reg_name_byte(b: u8) -> bool {
    b != b',' && b != b'%' && cachelayer::policy::key::is_reg_name_byte(b)
}

/// The URI the cache sees: `http://{host}{path?query}`.
fn keyed_uri(host: Authority, uri: Uri) -> Result<Uri, &'static str> {
    let path_and_query = uri
        .into_parts()
        .path_and_query
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    if !path_and_query.as_str().starts_with('/') {
        return Err("the request target is not a path");
    }
    let mut parts = http::uri::Parts::default();
    parts.scheme = Some(Scheme::HTTP);
    parts.authority = Some(host);
    parts.path_and_query = Some(path_and_query);
    Uri::from_parts(parts).map_err(|_| "invalid request target")
}

/// Removes `Host` and the client's forwarding fields: [`REMOVED_REQUEST_FIELDS`] and every
/// `X-Forwarded-*`.
fn remove_client_forwarding(headers: &mut HeaderMap) {
    // Requests carry few fields and usually only `Host` of these: a pass over the names per
    // field found is cheaper than a hashed removal per name that might be there.
    while let Some(name) = headers
        .keys()
        .find(|name| {
            REMOVED_REQUEST_FIELDS.contains(name) || name.as_str().starts_with("x-forwarded-")
        })
        .cloned()
    {
        headers.remove(&name);
    }
}

/// The service below the cache: rewrites a keyed request (`http://{host}{path?query}`) for the
/// upstream and sends it. Only misses and revalidations get here.
#[derive(Debug, Clone)]
struct Forwarder {
    target: Arc<Target>,
    /// The client's IP address: `X-Forwarded-For`.
    peer: IpAddr,
}

impl Service<Request<Incoming>> for Forwarder {
    type Response = Response<Incoming>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Incoming>, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // The pooled client is always ready: it queues requests for connections itself.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Incoming>) -> Self::Future {
        let target = self.target.clone();
        let peer = self.peer;
        Box::pin(async move {
            let mut request = rewrite(&target.upstream, peer, request)?;
            // Interim (1xx) responses of the upstream: hyper's client reads them before the
            // final response and hands them here; hyper's server cannot send them on (see the
            // module docs), so they are logged and dropped.
            hyper::ext::on_informational(&mut request, |interim| {
                tracing::debug!(
                    status = %interim.status(),
                    fields = interim.headers().len(),
                    "upstream interim response not relayed"
                );
            });
            let uri = request.uri().clone();
            match tokio::time::timeout(target.timeout, target.client.request(request)).await {
                Ok(Ok(mut response)) => {
                    // This hop's fields go, and `Via` comes, before the cache sees the
                    // response: stored responses carry them as they are served, so a hit is
                    // served as stored.
                    strip_hop_by_hop(response.headers_mut());
                    let version = response.version();
                    response.headers_mut().append(VIA, via(version));
                    Ok(response)
                }
                Ok(Err(source)) => Err(UpstreamError { uri, source }.into()),
                Err(_) => Err(UpstreamTimeout {
                    uri,
                    after: target.timeout,
                }
                .into()),
            }
        })
    }
}

/// The keyed request, for the upstream: its URI, and the forwarding fields (overwritten).
fn rewrite(
    upstream: &Upstream,
    peer: IpAddr,
    request: Request<Incoming>,
) -> Result<Request<Incoming>, BoxError> {
    let (mut parts, body) = request.into_parts();
    let host = parts
        .uri
        .authority()
        .ok_or("the cache passed on a request without a host")?;
    let forwarded_host = HeaderValue::from_str(host.as_str())?;
    parts.uri = upstream.uri_for(&parts.uri)?;
    let headers = &mut parts.headers;
    headers.insert(X_FORWARDED_FOR, HeaderValue::try_from(peer.to_string())?);
    headers.insert(X_FORWARDED_HOST, forwarded_host);
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    headers.append(VIA, via(parts.version));
    // The upstream connection is HTTP/1.1 whatever the client spoke.
    parts.version = Version::HTTP_11;
    Ok(Request::from_parts(parts, body))
}

/// The upstream could not be reached (or answered garbage).
/// The upstream did not send its response head within [`ProxyConfig::upstream_timeout`].
#[derive(Debug)]
struct UpstreamTimeout {
    uri: Uri,
    after: Duration,
}

impl fmt::Display for UpstreamTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no response from {} within {:?}", self.uri, self.after)
    }
}

impl Error for UpstreamTimeout {}

#[derive(Debug)]
struct UpstreamError {
    uri: Uri,
    source: hyper_util::client::legacy::Error,
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "request to {} failed", self.uri)
    }
}

impl Error for UpstreamError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.source)
    }
}

/// This proxy in `Via` (RFC 9110 §7.6.3), for the protocol version of the hop received.
fn via(version: Version) -> HeaderValue {
    // Checked once, at compile time, not per response.
    const VIA_09: HeaderValue = HeaderValue::from_static("0.9 cachelayer-proxy");
    const VIA_10: HeaderValue = HeaderValue::from_static("1.0 cachelayer-proxy");
    const VIA_11: HeaderValue = HeaderValue::from_static("1.1 cachelayer-proxy");
    const VIA_2: HeaderValue = HeaderValue::from_static("2 cachelayer-proxy");
    const VIA_3: HeaderValue = HeaderValue::from_static("3 cachelayer-proxy");
    match version {
        Version::HTTP_09 => VIA_09,
        Version::HTTP_10 => VIA_10,
        Version::HTTP_2 => VIA_2,
        Version::HTTP_3 => VIA_3,
        _ => VIA_11,
    }
}

/// A plain-text response the proxy makes itself.
fn plain_text(status: StatusCode, text: String) -> Response<ProxyBody> {
    let mut response = Response::new(Either::Right(Full::from(text)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// `400 Bad Request`, closing an HTTP/1 connection: its framing is not to be trusted.
fn bad_request(reason: &str, version: Version) -> Response<ProxyBody> {
    let mut response = plain_text(
        StatusCode::BAD_REQUEST,
        format!("400 Bad Request: {reason}\n"),
    );
    if version < Version::HTTP_2 {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

fn gateway_timeout() -> Response<ProxyBody> {
    plain_text(
        StatusCode::GATEWAY_TIMEOUT,
        "504 Gateway Timeout: the upstream server did not answer in time\n".to_owned(),
    )
}

fn bad_gateway() -> Response<ProxyBody> {
    plain_text(
        StatusCode::BAD_GATEWAY,
        "502 Bad Gateway: the upstream server could not be reached\n".to_owned(),
    )
}

/// The log's label for what the cache did, with whether the response is being stored.
fn outcome_label(info: &CacheInfo) -> String {
    if info.stored {
        format!("{} (stored)", info.outcome)
    } else {
        info.outcome.to_string()
    }
}

/// An error and its sources on one line: `request to http://... failed: client error
/// (Connect): tcp connect error: ...`.
pub fn error_chain(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A connection that fails with `TimedOut` once no byte has been read or written for
/// [`ProxyConfig::idle_timeout`].
struct IdleTimeout<I> {
    inner: I,
    /// Fires at the earliest moment the connection may have been idle for `timeout`; re-armed
    /// lazily from `last_progress`, so that progress costs a clock read, not a timer update.
    deadline: Pin<Box<tokio::time::Sleep>>,
    last_progress: tokio::time::Instant,
    timeout: Duration,
    /// The waker the deadline last registered: while it is the caller's and the deadline has
    /// not passed, a pending read or write need not poll the timer again (a connection's reads
    /// and writes come from one task).
    armed_for: Option<std::task::Waker>,
}

impl<I: Unpin> IdleTimeout<I> {
    fn new(inner: I, timeout: Duration) -> Self {
        IdleTimeout {
            inner,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            last_progress: tokio::time::Instant::now(),
            timeout,
            armed_for: None,
        }
    }

    /// Notes progress; with none, fails once the connection has been idle for the timeout.
    fn check<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: impl FnOnce(Pin<&mut I>, &mut Context<'_>) -> Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        match poll(Pin::new(&mut self.inner), cx) {
            Poll::Ready(result) => {
                self.last_progress = tokio::time::Instant::now();
                Poll::Ready(result)
            }
            Poll::Pending => loop {
                let armed = self
                    .armed_for
                    .as_ref()
                    .is_some_and(|waker| waker.will_wake(cx.waker()));
                if armed && !self.deadline.is_elapsed() {
                    return Poll::Pending;
                }
                match self.deadline.as_mut().poll(cx) {
                    Poll::Pending => {
                        if !armed {
                            self.armed_for = Some(cx.waker().clone());
                        }
                        return Poll::Pending;
                    }
                    Poll::Ready(()) => {
                        let idle_until = self.last_progress + self.timeout;
                        if idle_until <= tokio::time::Instant::now() {
                            return Poll::Ready(Err(std::io::ErrorKind::TimedOut.into()));
                        }
                        // There was progress since the deadline was set: wait for the rest
                        // (the loop polls the re-armed timer, which registers the waker again).
                        self.deadline.as_mut().reset(idle_until);
                        self.armed_for = None;
                    }
                }
            },
        }
    }
}

impl<I: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for IdleTimeout<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.get_mut()
            .check(cx, |inner, cx| inner.poll_read(cx, buf))
    }
}

impl<I: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for IdleTimeout<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.get_mut()
            .check(cx, |inner, cx| inner.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.get_mut()
            .check(cx, |inner, cx| inner.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Two threads bound to CPUs 0 and 1 (handles of one runtime: `pick_index` only counts).
    fn two_workers(runtime: &tokio::runtime::Runtime) -> Workers {
        Workers {
            handles: vec![runtime.handle().clone(), runtime.handle().clone()],
            cpus: vec![Some(0), Some(1)],
            loads: vec![Arc::default(), Arc::default()],
            _stop: Vec::new(),
        }
    }

    /// A connection goes to the thread on its CPU while that thread serves at most
    /// `CPU_MATCH_SLACK` connections more than the least loaded one; then, or without a CPU,
    /// to the least loaded; a closed connection gives its share back.
    #[test]
    fn connections_go_to_the_thread_on_their_cpu_within_the_slack() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let workers = two_workers(&runtime);
        let mut on_cpu_1 = Vec::new();
        for turn in 0..=Workers::CPU_MATCH_SLACK {
            let (index, load) = workers.pick_index(Some(1), turn).unwrap();
            assert_eq!(index, 1, "connection {turn}");
            on_cpu_1.push(load);
        }
        // One more than the slack above thread 0's none: the least loaded thread instead.
        let (index, spill) = workers.pick_index(Some(1), 0).unwrap();
        assert_eq!(index, 0);
        // Without a CPU (or an unbound one): the least loaded.
        assert_eq!(workers.pick_index(None, 1).unwrap().0, 0);
        assert_eq!(workers.pick_index(Some(7), 1).unwrap().0, 0);
        drop(spill);
        drop(on_cpu_1);
        assert_eq!(workers.loads[0].load(Ordering::Relaxed), 0);
        assert_eq!(workers.loads[1].load(Ordering::Relaxed), 0);
        // Equal loads: in turn.
        assert_eq!(workers.pick_index(None, 0).unwrap().0, 0);
        assert_eq!(workers.pick_index(None, 1).unwrap().0, 1);
    }

    /// Reads from `stream` until it fails; the error and how long that took.
    async fn read_until_error<I: tokio::io::AsyncRead + Unpin>(
        stream: &mut I,
    ) -> (std::io::ErrorKind, Duration) {
        use tokio::io::AsyncReadExt;
        let started = tokio::time::Instant::now();
        let mut buf = [0u8; 16];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) => return (std::io::ErrorKind::UnexpectedEof, started.elapsed()),
                Ok(_) => {}
                Err(error) => return (error.kind(), started.elapsed()),
            }
        }
    }

    // Real time (the proxy's tokio has no paused clock): bounds from below are exact, bounds
    // from above leave room for a busy machine.
    #[tokio::test]
    async fn an_idle_connection_times_out_and_progress_defers_it() {
        use tokio::io::AsyncWriteExt;
        let (mut client, server) = tokio::io::duplex(64);
        let mut idle = IdleTimeout::new(server, Duration::from_millis(300));
        let writer = tokio::spawn(async move {
            // Progress at about 200 ms and 400 ms, then silence (the client stays open).
            for _ in 0..2 {
                tokio::time::sleep(Duration::from_millis(200)).await;
                client.write_all(b"x").await.unwrap();
            }
            tokio::time::sleep(Duration::from_secs(60)).await;
            drop(client);
        });
        let (kind, after) =
            tokio::time::timeout(Duration::from_secs(20), read_until_error(&mut idle))
                .await
                .expect("timed out at all");
        assert_eq!(kind, std::io::ErrorKind::TimedOut);
        assert!(
            after >= Duration::from_millis(700),
            "300 ms after the last byte (at 400 ms), not 300 ms after the start: {after:?}"
        );
        writer.abort();
    }

    #[tokio::test]
    async fn a_connection_never_used_times_out() {
        let (_client, server) = tokio::io::duplex(64);
        let mut idle = IdleTimeout::new(server, Duration::from_millis(100));
        let (kind, after) =
            tokio::time::timeout(Duration::from_secs(20), read_until_error(&mut idle))
                .await
                .expect("timed out at all");
        assert_eq!(kind, std::io::ErrorKind::TimedOut);
        assert!(after >= Duration::from_millis(100), "{after:?}");
    }

    fn host(value: &str) -> Result<String, &'static str> {
        normalize_host(value.as_bytes()).map(|host| String::from_utf8_lossy(&host).into_owned())
    }

    #[test]
    fn valid_hosts_are_normalized() {
        assert_eq!(host("good.example"), Ok("good.example".to_owned()));
        assert_eq!(
            host("Good.Example:8080"),
            Ok("good.example:8080".to_owned())
        );
        assert_eq!(host("good.example:80"), Ok("good.example".to_owned()));
        assert_eq!(host("127.0.0.1:3000"), Ok("127.0.0.1:3000".to_owned()));
        assert_eq!(host("a:65535"), Ok("a:65535".to_owned()));
        assert_eq!(host("a:0"), Ok("a:0".to_owned()));
        assert_eq!(host("a:00080"), Ok("a:00080".to_owned()));
        assert_eq!(host("[::1]:3000"), Ok("[::1]:3000".to_owned()));
        assert_eq!(host("[2001:DB8::1]"), Ok("[2001:db8::1]".to_owned()));
    }

    fn keyed(version: Version, uri: &str, hosts: &[&str]) -> Result<String, &'static str> {
        let mut headers = HeaderMap::new();
        for host in hosts {
            headers.append(HOST, HeaderValue::from_str(host).unwrap());
        }
        let fallback = Authority::from_static("upstream:8080");
        keyed_host(version, &uri.parse().unwrap(), &headers, &fallback).map(|a| a.to_string())
    }

    #[test]
    fn the_keyed_host_follows_rfc_9112() {
        const HTTP_10: Version = Version::HTTP_10;
        const HTTP_11: Version = Version::HTTP_11;
        const HTTP_2: Version = Version::HTTP_2;
        assert_eq!(
            keyed(HTTP_11, "/x", &["Good.Example"]),
            Ok("good.example".into())
        );
        assert!(keyed(HTTP_11, "/x", &[]).is_err());
        assert!(keyed(HTTP_11, "/x", &["a", "a"]).is_err());
        // Absolute form: the target's authority; the Host field required, valid, ignored.
        let absolute = "http://Good.Example/x";
        assert_eq!(
            keyed(HTTP_11, absolute, &["evil"]),
            Ok("good.example".into())
        );
        assert!(keyed(HTTP_11, absolute, &[]).is_err());
        assert!(keyed(HTTP_11, absolute, &["a/b"]).is_err());
        assert!(keyed(HTTP_11, "http://u@good.example/x", &["good.example"]).is_err());
        // HTTP/1.0: the upstream's authority when there is no Host.
        assert_eq!(keyed(HTTP_10, "/x", &[]), Ok("upstream:8080".into()));
        assert_eq!(
            keyed(HTTP_10, "/x", &["good.example"]),
            Ok("good.example".into())
        );
        assert!(keyed(HTTP_10, "/x", &["a", "b"]).is_err());
        // HTTP/2: `:authority`; a Host field must agree with it.
        assert_eq!(keyed(HTTP_2, absolute, &[]), Ok("good.example".into()));
        assert_eq!(
            keyed(HTTP_2, absolute, &["good.example:80"]),
            Ok("good.example".into())
        );
        assert!(keyed(HTTP_2, absolute, &["evil"]).is_err());
        assert_eq!(
            keyed(HTTP_2, "/x", &["good.example"]),
            Ok("good.example".into())
        );
        assert!(keyed(HTTP_2, "/x", &[]).is_err());
    }

    #[test]
    fn invalid_hosts_are_rejected() {
        for bad in [
            "",
            ":80",
            "victim/b",
            "a?b",
            "a#b",
            "a@b",
            "a\\b",
            "a b",
            "a\tb",
            "a,b",
            "a%2eb",
            "a:",
            "a:x",
            "a:65536",
            "a:99999",
            "a:123456",
            "a:+80",
            "a:-1",
            "a:80:80",
            "[::1",
            "[::1]x",
            "[x]",
            "[::1]:",
            "caf\u{e9}.example",
            "a\u{7f}",
        ] {
            assert!(host(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
