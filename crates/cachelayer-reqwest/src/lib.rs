//! The [cachelayer] HTTP response cache for [reqwest]: a
//! [`reqwest_middleware::Middleware`], what requests-cache's `CachedSession` is to Python's
//! `requests`.
//!
//! ```no_run
//! use cachelayer_reqwest::{CacheMiddleware, CacheResponseExt};
//! use cachelayer::CacheSettings;
//! use reqwest_middleware::ClientBuilder;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let client = ClientBuilder::new(reqwest::Client::new())
//!     .with(CacheMiddleware::new(CacheSettings::default()))
//!     .build();
//!
//! for _ in 0..2 {
//!     let response = client.get("http://127.0.0.1:8080/data.json").send().await?;
//!     let from_cache = response.from_cache();
//!     // Read the body to its end: a response is stored when its body ends.
//!     let body = response.bytes().await?;
//!     println!("{} bytes, from cache: {from_cache}", body.len());
//! }
//! # Ok(())
//! # }
//! ```
//!
//! It is the cache of [`cachelayer::CacheLayer`], with its rules (RFC 9111), stores (memory,
//! SQLite, Redis, tiered), settings ([`CacheSettings`]) and inspection ([`Cache`]): a layer made
//! for tower clients and a middleware made from it with [`CacheMiddleware::from_layer`] share one
//! store and one set of settings.
//!
//! - Every response has a [`CacheInfo`] in its [`extensions`](reqwest::Response::extensions)
//!   (requests-cache's `from_cache`, `created_at`, `expires`, `is_expired`, `cache_key`,
//!   `revalidated`; [`CacheResponseExt`] reads it; unless
//!   [`CacheSettings::cache_info`](cachelayer::CacheSettings#structfield.cache_info) turns it off) and a
//!   `Cache-Status` header. Its
//!   [`url`](reqwest::Response::url) is the URL it came from after redirects when it comes from
//!   the origin, and the request's URL when it comes from the cache.
//! - Per-request options ([`CacheOptions`]: `force_refresh`, `refresh`, `expire_after`,
//!   `only_if_cached`, ...) go in the request's middleware extensions:
//!
//! ```no_run
//! # use cachelayer_reqwest::CacheMiddleware;
//! use cachelayer::CacheOptions;
//! # async fn f(client: reqwest_middleware::ClientWithMiddleware) -> reqwest_middleware::Result<()> {
//! let response = client
//!     .get("http://127.0.0.1:8080/data.json")
//!     .with_extension(CacheOptions { force_refresh: true, ..Default::default() })
//!     .send()
//!     .await?;
//! # Ok(())
//! # }
//! ```
//!
//! - A method with a body that [`allowable_methods`](CacheSettings::allowable_methods) caches
//!   (`POST`, as requests-cache does) is keyed by its body, normalized by its `Content-Type` as
//!   [`KeyRequestBodyLayer`](cachelayer::KeyRequestBodyLayer) does for tower (JSON member order,
//!   form parameter order, credentials left out); a streamed body cannot be keyed, and such a
//!   request bypasses the cache.
//!
//! Where to put it: middleware added after the cache (retries, authentication, tracing) runs
//! only for requests that reach the origin, and its errors are origin errors for
//! `stale_if_error`; middleware added before it sees every request, hits included.
//!
//! # TLS and reqwest features
//!
//! This crate turns on no reqwest feature, TLS included: the features an application enables on
//! its own `reqwest` dependency (`rustls`, `native-tls`, `http2`, `gzip`, ...) apply to the client
//! it gives to [`reqwest_middleware::ClientBuilder`]. Redirects and decompression (`gzip`,
//! `brotli`, ...) happen inside the client, below every middleware: the cache stores the final
//! response of a redirected request under the request's key, with the body as the client
//! returns it.
//!
//! # Stale-while-revalidate
//!
//! A background revalidation outlives the call that started it, and reqwest-middleware's
//! [`Next`] is only lent for that call. Give the middleware a client to send such revalidations
//! with ([`CacheMiddleware::with_background_client`]); without one, the revalidation request is
//! sent through [`Next`] before the stale response is returned (the caller waits for the
//! origin's response head, the body is read and stored in the background).
//!
//! # Compared with http-cache-reqwest
//!
//! [http-cache-reqwest](https://docs.rs/http-cache-reqwest) is a reqwest-middleware cache built
//! on `http-cache-semantics`, with a disk store (`cacache`) by default, a `moka` memory store and
//! make-fetch-happen-style cache modes. cachelayer-reqwest runs the cachelayer core behind reqwest
//! and tower alike: requests-cache's settings and inspection, request coalescing, stale-if-error,
//! and SQLite and Redis stores that tower services can share.

use cachelayer::DEFAULT_KEY_BODY_LIMIT;
use cachelayer::policy::key::normalize_body;
use cachelayer::{
    Cache, CacheBody, CacheInfo, CacheLayer, CacheOptions, CacheSettings, KeyBody, Store,
};
use http::header::CONTENT_TYPE;
use http::{Extensions, Method};
use reqwest::{ResponseBuilderExt, Url};
use reqwest_middleware::{ClientWithMiddleware, Middleware, Next};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::{mpsc, oneshot};
use tower_layer::Layer;
use tower_service::Service;

/// The cachelayer crate: settings, options, stores, [`CacheInfo`].
pub use cachelayer;

/// An HTTP response cache as a reqwest-middleware [`Middleware`] (requests-cache's
/// `CachedSession`).
///
/// ```
/// use cachelayer::{CacheLayer, CacheSettings, MemoryStore};
/// use cachelayer_reqwest::CacheMiddleware;
///
/// // One store and one set of settings for a tower client and a reqwest client.
/// let layer = CacheLayer::with_store(MemoryStore::new(), CacheSettings::default());
/// let middleware = CacheMiddleware::from_layer(layer.clone());
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(middleware)
///     .build();
/// ```
///
/// Clones share the store, the settings and the handle of [`cache`](Self::cache).
#[derive(Clone)]
pub struct CacheMiddleware {
    layer: CacheLayer,
    background: Option<ClientWithMiddleware>,
}

impl CacheMiddleware {
    /// A cache on the default store: a [`MemoryStore`](cachelayer::MemoryStore) of 64 MiB.
    #[must_use]
    pub fn new(settings: CacheSettings) -> Self {
        Self::from_layer(CacheLayer::new(settings))
    }

    /// A cache on `store` (any [`Store`]: memory, SQLite, Redis, your own).
    #[must_use]
    pub fn with_store<St: Store>(store: St, settings: CacheSettings) -> Self {
        Self::from_layer(CacheLayer::with_store(store, settings))
    }

    /// A cache on a store that other caches, for tower or reqwest, may share
    /// (requests-cache: one backend, several sessions).
    #[must_use]
    pub fn with_shared_store(store: Arc<dyn Store>, settings: CacheSettings) -> Self {
        Self::from_layer(CacheLayer::with_shared_store(store, settings))
    }

    /// The cache of `layer`: its store, settings, clock and request coalescing, shared with the
    /// tower services it makes. [`set_settings`](Self::set_settings) on either changes both.
    #[must_use]
    pub fn from_layer(layer: CacheLayer) -> Self {
        CacheMiddleware {
            layer,
            background: None,
        }
    }

    /// Sends the background revalidations of stale-while-revalidate with `client` (a
    /// `reqwest::Client` or a [`ClientWithMiddleware`] with the middleware that should run below
    /// the cache, such as retries), so that the stale response is returned at once. Without it,
    /// they are sent through [`Next`] before the stale response is returned.
    #[must_use]
    pub fn with_background_client(mut self, client: impl Into<ClientWithMiddleware>) -> Self {
        self.background = Some(client.into());
        self
    }

    /// The layer: the same cache for tower services
    /// (`ServiceBuilder::new().layer(middleware.layer().clone())`).
    pub fn layer(&self) -> &CacheLayer {
        &self.layer
    }

    /// A handle to list and remove stored responses (requests-cache `session.cache`): see
    /// [`CacheLayer::cache`].
    pub fn cache(&self) -> Cache {
        self.layer.cache()
    }

    /// A copy of the current settings.
    pub fn settings(&self) -> CacheSettings {
        self.layer.settings()
    }

    /// Replaces the settings of this middleware, its clones and the layer it shares, for the
    /// requests that start from now on (see [`CacheLayer::set_settings`]).
    pub fn set_settings(&self, settings: CacheSettings) {
        self.layer.set_settings(settings);
    }
}

impl CacheMiddleware {
    /// Puts the body of a request whose method has a body (`POST`, ...) and is cached
    /// (`allowable_methods`) in its key, as [`KeyRequestBodyLayer`](cachelayer::KeyRequestBodyLayer)
    /// does for tower: normalized by its `Content-Type`, without the ignored parameters (a shared
    /// cache keeps them in the key, as `KeyRequestBodyLayer::for_settings`). A streamed body, or
    /// one over
    /// [`DEFAULT_KEY_BODY_LIMIT`](cachelayer::DEFAULT_KEY_BODY_LIMIT), cannot be keyed: the
    /// request bypasses the cache.
    fn key_body(&self, request: &mut http::Request<reqwest::Body>) {
        let method = request.method();
        if method == Method::GET
            || method == Method::HEAD
            || request.extensions().get::<KeyBody>().is_some()
        {
            return;
        }
        let settings = self.layer.settings();
        if settings.disabled || !settings.allowable_methods.contains(method) {
            return;
        }
        match request.body().as_bytes() {
            Some(body) if body.len() <= DEFAULT_KEY_BODY_LIMIT => {
                let ignored: &[String] = if settings.shared {
                    &[]
                } else {
                    &settings.ignored_parameters
                };
                let content_type = request.headers().get(CONTENT_TYPE);
                let key = normalize_body(content_type, body, ignored).into_owned();
                request.extensions_mut().insert(KeyBody(key.into()));
            }
            _ => {
                let options = request
                    .extensions_mut()
                    .get_or_insert_with(CacheOptions::default);
                options.disabled = true;
            }
        }
    }
}

impl From<CacheLayer> for CacheMiddleware {
    fn from(layer: CacheLayer) -> Self {
        Self::from_layer(layer)
    }
}

impl fmt::Debug for CacheMiddleware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheMiddleware")
            .field("layer", &self.layer)
            .field("background_client", &self.background.is_some())
            .finish()
    }
}

#[async_trait::async_trait]
impl Middleware for CacheMiddleware {
    async fn handle(
        &self,
        request: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let request_url = request.url().clone();
        let mut request = http::Request::<reqwest::Body>::try_from(request)?;
        copy_cache_extensions(extensions, request.extensions_mut());
        self.key_body(&mut request);

        // The cache's inner service hands each request it forwards back to this call, which
        // sends it on with `next` (borrowed for this call only) and answers with the response.
        let (forwarder, mut exchanges) = Forwarder::new();
        let mut service = self.layer.layer(forwarder);
        std::future::poll_fn(|cx| service.poll_ready(cx)).await?;
        let call = service.call(request);
        tokio::pin!(call);
        let response = loop {
            tokio::select! {
                biased;
                Some(exchange) = exchanges.recv() => {
                    exchange.forward(next.clone(), &mut *extensions).await;
                }
                result = &mut call => break result?,
            }
        };
        // A request still queued is a background revalidation (stale-while-revalidate), whose
        // task waits for its response to store it.
        while let Ok(exchange) = exchanges.try_recv() {
            match &self.background {
                Some(client) => {
                    let client = client.clone();
                    tokio::spawn(exchange.send_with(client));
                }
                None => exchange.forward(next.clone(), &mut *extensions).await,
            }
        }
        Ok(into_reqwest(response, request_url))
    }
}

/// Reads the [`CacheInfo`] of a response that went through a [`CacheMiddleware`].
pub trait CacheResponseExt {
    /// What the cache did for this response; `None` if it did not go through the cache, or the
    /// settings' `cache_info` is off.
    fn cache_info(&self) -> Option<&CacheInfo>;

    /// The body and headers came from the cache (requests-cache `response.from_cache`).
    #[allow(clippy::wrong_self_convention)] // requests-cache's name, as `CacheInfo::from_cache`
    fn from_cache(&self) -> bool {
        self.cache_info().is_some_and(|info| info.from_cache)
    }
}

impl CacheResponseExt for reqwest::Response {
    fn cache_info(&self) -> Option<&CacheInfo> {
        self.extensions().get()
    }
}

/// Puts the cache's per-request extensions of reqwest-middleware's extensions
/// (`RequestBuilder::with_extension`) where the cache reads them.
fn copy_cache_extensions(from: &Extensions, to: &mut Extensions) {
    if let Some(options) = from.get::<CacheOptions>() {
        to.insert(*options);
    }
    if let Some(body) = from.get::<KeyBody>() {
        to.insert(body.clone());
    }
}

/// The URL a response was received from (after redirects), carried through the cache.
#[derive(Clone)]
struct FinalUrl(Url);

fn into_reqwest(
    response: http::Response<CacheBody<reqwest::Body>>,
    request_url: Url,
) -> reqwest::Response {
    let (mut parts, body) = response.into_parts();
    let url = parts
        .extensions
        .remove::<FinalUrl>()
        .map_or(request_url, |url| url.0);
    // reqwest keeps a response's URL in an extension that only `ResponseBuilderExt` sets.
    if let Some(with_url) = http::Response::builder().url(url).extensions_ref() {
        parts.extensions.extend(with_url.clone());
    }
    reqwest::Response::from(http::Response::from_parts(parts, reqwest::Body::wrap(body)))
}

fn from_reqwest(response: reqwest::Response) -> http::Response<reqwest::Body> {
    let url = FinalUrl(response.url().clone());
    let mut response = http::Response::from(response);
    response.extensions_mut().insert(url);
    response
}

type Reply = reqwest_middleware::Result<http::Response<reqwest::Body>>;

/// A request the cache forwards, and where its response goes.
struct Exchange {
    request: http::Request<reqwest::Body>,
    reply: oneshot::Sender<Reply>,
}

impl Exchange {
    /// Sends the request on down the middleware chain and answers the cache.
    async fn forward(self, next: Next<'_>, extensions: &mut Extensions) {
        let result = match reqwest::Request::try_from(self.request) {
            Ok(request) => next.run(request, extensions).await.map(from_reqwest),
            Err(error) => Err(error.into()),
        };
        // The cache's future may be gone (the caller dropped the response future).
        let _ = self.reply.send(result);
    }

    /// Sends the request with a client of its own (a background revalidation).
    async fn send_with(self, client: ClientWithMiddleware) {
        let result = match reqwest::Request::try_from(self.request) {
            Ok(request) => client.execute(request).await.map(from_reqwest),
            Err(error) => Err(error.into()),
        };
        let _ = self.reply.send(result);
    }
}

/// The cache's inner service: queues each request for the middleware call that made it.
#[derive(Clone)]
struct Forwarder {
    exchanges: mpsc::UnboundedSender<Exchange>,
}

impl Forwarder {
    fn new() -> (Self, mpsc::UnboundedReceiver<Exchange>) {
        let (exchanges, receiver) = mpsc::unbounded_channel();
        (Forwarder { exchanges }, receiver)
    }
}

/// The middleware call that would have forwarded a request was gone.
#[derive(Debug)]
struct CallEnded;

impl fmt::Display for CallEnded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cachelayer-reqwest: the middleware call that forwards this request ended")
    }
}

impl std::error::Error for CallEnded {}

impl Service<http::Request<reqwest::Body>> for Forwarder {
    type Response = http::Response<reqwest::Body>;
    type Error = reqwest_middleware::Error;
    type Future = Pin<Box<dyn Future<Output = Reply> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<reqwest::Body>) -> Self::Future {
        // Queued at once, not when the future is first polled: a background revalidation is in
        // the queue by the time the cache answers with the stale response.
        let (reply, answer) = oneshot::channel();
        let queued = self.exchanges.send(Exchange { request, reply }).is_ok();
        Box::pin(async move {
            if !queued {
                return Err(reqwest_middleware::Error::middleware(CallEnded));
            }
            answer
                .await
                .unwrap_or_else(|_| Err(reqwest_middleware::Error::middleware(CallEnded)))
        })
    }
}
