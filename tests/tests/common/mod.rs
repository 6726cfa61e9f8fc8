//! The shared harness of the integration tests: a real hyper origin server on 127.0.0.1, a real
//! hyper-util client, and a cache layer with a [`ManualClock`] in front of it.
//!
//! - [`Origin`]: per-path handlers (`Fn(&Seen) -> Reply`), replaceable while the test runs; it
//!   records every request it receives (method, path, header fields), so tests count origin hits
//!   and check the conditional headers the cache sent. A [`Reply`] can be delayed and can stream
//!   its body in chunks, with or without `Content-Length`.
//! - [`cache`]: a cache layer and its memory store sharing one [`ManualClock`], so expiry is
//!   tested by advancing the clock, never by sleeping.
//! - [`send`]: one request through any service, with the whole body collected (the cache stores a
//!   response when its body has been read to the end) and a bounded wait.

#![allow(dead_code, clippy::unwrap_used)]

use bytes::Bytes;
use cachelayer::{CacheInfo, CacheLayer, CacheSettings, Clock, ManualClock, MemoryStore};
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::client::legacy::Client as LegacyClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt::Debug;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tower::{Layer, Service, ServiceExt};

/// The longest any single exchange may take before the test fails.
pub(crate) const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);

/// The hyper-util client every cache wraps.
pub(crate) type Client = LegacyClient<HttpConnector, Full<Bytes>>;

/// A real HTTP/1.1 client (connection pooling included).
pub(crate) fn client() -> Client {
    LegacyClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>()
}

// ===== origin =====

/// A request as the origin received it.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) method: Method,
    pub(crate) path: String,
    /// The request target as received: path and query, byte for byte.
    pub(crate) target: String,
    pub(crate) headers: HeaderMap,
}

impl Seen {
    /// The value of a request header field, as text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// The body of a [`Reply`].
#[derive(Debug, Clone)]
pub(crate) enum ReplyBody {
    /// One buffer (hyper sends `Content-Length`).
    Full(Bytes),
    /// Streamed chunk by chunk from a task, with `Content-Length` when `content_length`,
    /// otherwise with chunked transfer coding.
    Chunks {
        chunks: Vec<Bytes>,
        content_length: bool,
    },
}

/// What an origin handler answers.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) body: ReplyBody,
    pub(crate) delay: Option<Duration>,
}

impl Reply {
    /// `200 OK` with `body`.
    pub(crate) fn ok(body: impl Into<Bytes>) -> Self {
        Reply {
            status: StatusCode::OK,
            headers: Vec::new(),
            body: ReplyBody::Full(body.into()),
            delay: None,
        }
    }

    /// `status` with an empty body.
    pub(crate) fn status(status: u16) -> Self {
        Reply {
            status: StatusCode::from_u16(status).unwrap(),
            ..Reply::ok(Bytes::new())
        }
    }

    /// `304 Not Modified`.
    pub(crate) fn not_modified() -> Self {
        Reply::status(304)
    }

    /// Adds a header field.
    pub(crate) fn header(mut self, name: &str, value: impl AsRef<str>) -> Self {
        self.headers.push((
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value.as_ref()).unwrap(),
        ));
        self
    }

    /// Adds a header field whose value is any bytes a field value may hold (obs-text too).
    pub(crate) fn raw_header(mut self, name: &str, value: &[u8]) -> Self {
        self.headers.push((
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_bytes(value).unwrap(),
        ));
        self
    }

    /// Replaces the body.
    pub(crate) fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = ReplyBody::Full(body.into());
        self
    }

    /// Streams `body` in chunks of `chunk_size` bytes.
    pub(crate) fn streamed(
        mut self,
        body: &Bytes,
        chunk_size: usize,
        content_length: bool,
    ) -> Self {
        let chunks = body
            .chunks(chunk_size)
            .map(Bytes::copy_from_slice)
            .collect();
        self.body = ReplyBody::Chunks {
            chunks,
            content_length,
        };
        self
    }

    /// Waits `delay` before answering.
    pub(crate) fn delayed(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }
}

type Handler = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

struct OriginState {
    handlers: Mutex<HashMap<String, Handler>>,
    seen: Mutex<Vec<Seen>>,
    clock: Arc<dyn Clock>,
}

/// A hyper HTTP/1.1 server on 127.0.0.1 (an ephemeral port), stopped when dropped.
pub(crate) struct Origin {
    addr: SocketAddr,
    state: Arc<OriginState>,
    task: JoinHandle<()>,
}

impl Origin {
    /// Starts a server with no routes (every path answers 404 until routed). Its `Date` header
    /// fields read `clock` (the cache's clock), so that a response fetched after the test moved
    /// the clock forward is not taken for an old one.
    pub(crate) async fn start(clock: &ManualClock) -> Origin {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(OriginState {
            handlers: Mutex::default(),
            seen: Mutex::default(),
            clock: Arc::new(clock.clone()),
        });
        let server_state = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = server_state.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(answer(&state, request).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Origin { addr, state, task }
    }

    /// Routes `path` (without query) to `handler`, replacing any previous handler.
    pub(crate) fn route(
        &self,
        path: &str,
        handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
    ) {
        self.state
            .handlers
            .lock()
            .unwrap()
            .insert(path.to_owned(), Arc::new(handler));
    }

    /// The absolute URL of `path_and_query` on this origin.
    pub(crate) fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{}", self.addr, path_and_query)
    }

    /// The address the origin listens on.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many requests for `path` the origin received.
    pub(crate) fn hits(&self, path: &str) -> usize {
        self.requests(path).len()
    }

    /// The requests for `path` the origin received, in order.
    pub(crate) fn requests(&self, path: &str) -> Vec<Seen> {
        self.state
            .seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.path == path)
            .cloned()
            .collect()
    }

    /// The last request for `path` the origin received.
    pub(crate) fn last_request(&self, path: &str) -> Seen {
        self.requests(path)
            .pop()
            .unwrap_or_else(|| panic!("the origin received no request for {path}"))
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    state: &OriginState,
    request: Request<Incoming>,
) -> Response<BoxBody<Bytes, Infallible>> {
    let (parts, body) = request.into_parts();
    // Read the request body, whatever it is, before answering.
    let _ = body.collect().await;
    let seen = Seen {
        method: parts.method.clone(),
        path: parts.uri.path().to_owned(),
        target: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned()),
        headers: parts.headers.clone(),
    };
    state.seen.lock().unwrap().push(seen.clone());
    let handler = state.handlers.lock().unwrap().get(&seen.path).cloned();
    let reply = match handler {
        Some(handler) => handler(&seen),
        None => Reply::status(404).body("no route"),
    };
    if let Some(delay) = reply.delay {
        tokio::time::sleep(delay).await;
    }
    let mut builder = Response::builder().status(reply.status);
    if !reply
        .headers
        .iter()
        .any(|(name, _)| name == http::header::DATE)
    {
        builder = builder.header(http::header::DATE, http_date(state.clock.now()));
    }
    for (name, value) in &reply.headers {
        builder = builder.header(name, value);
    }
    let body = match reply.body {
        ReplyBody::Full(bytes) => Full::new(bytes).boxed(),
        ReplyBody::Chunks {
            chunks,
            content_length,
        } => {
            let total: u64 = chunks.iter().map(|c| c.len() as u64).sum();
            if content_length {
                builder = builder.header(http::header::CONTENT_LENGTH, total);
            }
            let (tx, rx) = mpsc::channel(1);
            tokio::spawn(async move {
                for chunk in chunks {
                    if tx.send(chunk).await.is_err() {
                        return;
                    }
                    tokio::task::yield_now().await;
                }
            });
            ChannelBody {
                rx,
                length: content_length.then_some(total),
            }
            .boxed()
        }
    };
    builder.body(body).unwrap()
}

/// A body fed chunk by chunk through a channel.
struct ChannelBody {
    rx: mpsc::Receiver<Bytes>,
    length: Option<u64>,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| Ok(Frame::data(c))))
    }

    fn size_hint(&self) -> SizeHint {
        match self.length {
            Some(length) => SizeHint::with_exact(length),
            None => SizeHint::default(),
        }
    }
}

// ===== cache =====

/// A cache layer whose memory store and whose freshness decisions both read `clock`.
pub(crate) fn cache(settings: CacheSettings) -> (CacheLayer, ManualClock) {
    let clock = ManualClock::starting_now();
    let store = MemoryStore::builder()
        .clock(Arc::new(clock.clone()))
        .build();
    let layer = CacheLayer::with_store(store, settings).with_clock(Arc::new(clock.clone()));
    (layer, clock)
}

/// The cache of [`cache`] around a fresh hyper-util client.
pub(crate) fn cached_client(
    settings: CacheSettings,
) -> (cachelayer::CacheService<Client>, ManualClock) {
    let (layer, clock) = cache(settings);
    (layer.layer(client()), clock)
}

/// An HTTP-date.
pub(crate) fn http_date(time: SystemTime) -> String {
    httpdate::fmt_http_date(time)
}

// ===== requests =====

/// A request with an empty body and the given header fields.
pub(crate) fn request(method: Method, url: &str, headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let mut builder = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Full::new(Bytes::new())).unwrap()
}

/// A GET request.
pub(crate) fn get(url: &str) -> Request<Full<Bytes>> {
    request(Method::GET, url, &[])
}

/// A GET request with header fields.
pub(crate) fn get_with(url: &str, headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    request(Method::GET, url, headers)
}

/// A response, its body read to the end.
#[derive(Debug)]
pub(crate) struct Got {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) info: CacheInfo,
    pub(crate) body: Bytes,
}

impl Got {
    /// The value of a header field, as text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// The `Cache-Status` header field.
    pub(crate) fn cache_status(&self) -> &str {
        self.header("cache-status")
            .unwrap_or_else(|| panic!("no Cache-Status header in {:?}", self.headers))
    }

    /// The `Age` header field, in seconds.
    pub(crate) fn age(&self) -> Option<u64> {
        self.header("age").map(|v| v.parse().unwrap())
    }

    /// The body as text.
    pub(crate) fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
}

/// Sends `request` through `service` and reads the whole response body; the error of the
/// service, if any. Every step is bounded by [`EXCHANGE_TIMEOUT`].
pub(crate) async fn try_send<S, RB>(
    service: &mut S,
    request: Request<Full<Bytes>>,
) -> Result<Got, S::Error>
where
    S: Service<Request<Full<Bytes>>, Response = Response<RB>>,
    RB: Body,
    RB::Error: Debug,
{
    let (parts, body) = try_send_parts(service, request).await?;
    let info = parts
        .extensions
        .get::<CacheInfo>()
        .cloned()
        .expect("every response through the cache has a CacheInfo");
    Ok(Got {
        status: parts.status,
        headers: parts.headers,
        info,
        body,
    })
}

/// [`try_send`] for a response that may lack a `CacheInfo`: its head and its whole body.
pub(crate) async fn try_send_parts<S, RB>(
    service: &mut S,
    request: Request<Full<Bytes>>,
) -> Result<(http::response::Parts, Bytes), S::Error>
where
    S: Service<Request<Full<Bytes>>, Response = Response<RB>>,
    RB: Body,
    RB::Error: Debug,
{
    let exchange = async {
        let response = service.ready().await?.call(request).await?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        Ok((parts, body))
    };
    tokio::time::timeout(EXCHANGE_TIMEOUT, exchange)
        .await
        .expect("the exchange took longer than the test allows")
}

/// Sends `request` through `service` and reads the whole response body; panics on an error.
pub(crate) async fn send<S, RB>(service: &mut S, request: Request<Full<Bytes>>) -> Got
where
    S: Service<Request<Full<Bytes>>, Response = Response<RB>>,
    S::Error: Debug,
    RB: Body,
    RB::Error: Debug,
{
    try_send(service, request).await.unwrap()
}

// ===== exact clocks and per-request options =====

/// `n` seconds.
pub(crate) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A cache (layer and clock) whose clock reads a whole second, so that expirations computed from
/// whole-second HTTP dates compare exactly.
pub(crate) fn exact_cache(settings: CacheSettings) -> (CacheLayer, ManualClock) {
    let (layer, clock) = cache(settings);
    let whole = clock
        .now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    clock.set(std::time::UNIX_EPOCH + secs(whole));
    (layer, clock)
}

/// A GET request carrying per-request options.
pub(crate) fn get_opts(url: &str, options: cachelayer::CacheOptions) -> Request<Full<Bytes>> {
    let mut request = get(url);
    request.extensions_mut().insert(options);
    request
}

// ===== captured logs =====

/// Log output captured in memory (see [`capture_logs`]).
#[derive(Clone, Default)]
pub(crate) struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// Everything written so far.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every event at `level` and above goes to the returned buffer while the guard lives (this
/// thread only: the tests run on a current-thread runtime).
pub(crate) fn capture_logs(
    level: tracing_subscriber::filter::LevelFilter,
) -> (CapturedLogs, impl Sized) {
    use tracing_subscriber::util::SubscriberInitExt;
    let captured = CapturedLogs::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let guard = subscriber.set_default();
    (captured, guard)
}
