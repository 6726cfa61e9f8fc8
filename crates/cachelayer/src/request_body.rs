//! Request bodies in the cache key: [`KeyRequestBodyLayer`] and its service
//! [`KeyRequestBody`], documented on [`KeyRequestBodyLayer`] (this module is private).

use crate::options::{CacheOptions, KeyBody};
use bytes::{Buf, Bytes, BytesMut};
use cachelayer_policy::key::{DEFAULT_IGNORED_PARAMETERS, normalize_body};
use http::header::CONTENT_TYPE;
use http::request::Parts;
use http::{Method, Request};
use http_body::Body;
use http_body_util::Full;
use pin_project_lite::pin_project;
use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use tower_layer::Layer;
use tower_service::Service;

/// The error of [`KeyRequestBody`]: the inner service's error or the request body's error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The default [`limit`](KeyRequestBodyLayer::limit) on the size of a request body in the cache
/// key: 1 MiB (1,048,576 bytes).
pub const DEFAULT_KEY_BODY_LIMIT: usize = 1024 * 1024;

/// The settings a layer shares with the services it makes.
#[derive(Debug, Clone)]
struct Config {
    limit: usize,
    ignored: Arc<[String]>,
    shared: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            limit: DEFAULT_KEY_BODY_LIMIT,
            ignored: DEFAULT_IGNORED_PARAMETERS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            shared: false,
        }
    }
}

/// A [`Layer`] that reads request bodies into memory and puts them, normalized, in the cache key
/// ([`KeyBody`]): [`KeyRequestBody`]. With it, the cache keys requests by their body, as
/// requests-cache does for the `POST` requests its `allowable_methods` lets it cache.
///
/// Put the layer in front of (outside) [`CacheLayer`](crate::CacheLayer), and add the methods to
/// cache to [`CacheSettings::allowable_methods`](crate::CacheSettings::allowable_methods). The
/// inner service receives `http::Request<Full<Bytes>>`, the body as the client sent it:
///
/// ```
/// use bytes::Bytes;
/// use cachelayer::{CacheLayer, CacheSettings, KeyRequestBodyLayer};
/// use http::Method;
/// use http_body_util::{BodyExt, Full};
/// use std::convert::Infallible;
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let calls = Arc::new(AtomicUsize::new(0));
/// let counter = calls.clone();
/// // Any service taking `http::Request<Full<Bytes>>`: a hyper-util client, an axum Router, ...
/// let origin = service_fn(move |_request: http::Request<Full<Bytes>>| {
///     counter.fetch_add(1, Ordering::SeqCst);
///     async {
///         let response = http::Response::builder()
///             .header("cache-control", "max-age=60")
///             .body(Full::new(Bytes::from("results")))
///             .unwrap();
///         Ok::<_, Infallible>(response)
///     }
/// });
/// let settings = CacheSettings {
///     allowable_methods: vec![Method::GET, Method::HEAD, Method::POST],
///     ..CacheSettings::default()
/// };
/// let mut client = ServiceBuilder::new()
///     .layer(KeyRequestBodyLayer::new())
///     .layer(CacheLayer::new(settings))
///     .service(origin);
///
/// // The same query: member order, whitespace and credentials do not matter.
/// for body in [r#"{"q":"rust","page":1}"#, r#"{ "page": 1, "api_key": "secret", "q": "rust" }"#] {
///     let request = http::Request::post("http://example.com/search")
///         .header("content-type", "application/json")
///         .body(Full::new(Bytes::from(body)))
///         .unwrap();
///     // The service takes any request body type: `ready` needs the request type spelled out.
///     let ready = ServiceExt::<http::Request<Full<Bytes>>>::ready(&mut client).await.unwrap();
///     let response = ready.call(request).await.unwrap();
///     // The cache stores a response once its body has been read to the end.
///     response.into_body().collect().await.unwrap();
/// }
/// assert_eq!(calls.load(Ordering::SeqCst), 1);
/// # }
/// ```
///
/// # What it does to a request
///
/// For every request, the body is read to the end into one buffer ([`Bytes`]) and the request is
/// passed on with that buffer as a [`Full`] body: the same bytes, the same header fields
/// (`Content-Length` included). Request trailers, rare as they are, are not passed on.
///
/// For a request whose method is neither `GET` nor `HEAD` (a body in those has no defined
/// meaning, RFC 9110 §9.3.1–2, and their keys stay those of the URL) and which has no
/// [`KeyBody`] yet (one set by the caller is kept):
///
/// - a body of at most [`limit`](Self::limit) bytes (default
///   [`DEFAULT_KEY_BODY_LIMIT`], 1 MiB) is normalized with
///   [`normalize_body`](cachelayer_policy::key::normalize_body) by its `Content-Type` (JSON
///   member order and whitespace, form parameter order, the
///   [`ignored_parameters`](Self::ignored_parameters) removed) and the result is
///   attached as the [`KeyBody`] request extension, which the cache puts in the key. Only the
///   key uses the normalized bytes: the origin receives the body unchanged, credentials
///   included.
/// - a larger body is passed on whole but without a [`KeyBody`], and with
///   [`CacheOptions::disabled`] set (other fields of a [`CacheOptions`] already present are
///   kept): the cache bypasses such a request ([`CacheOutcome::Bypass`](crate::CacheOutcome)),
///   so a request is never keyed by a part of its body.
///
/// The limit bounds what is normalized and hashed, not what is held in memory: every body is
/// held whole until the inner service has it, so this layer is not meant for large uploads.
///
/// # Errors
///
/// The service's error is a [`BoxError`]: the inner service's error, or the request body's error
/// (the inner service is then not called), each converted with `Into`; `downcast_ref` tells
/// them apart (for example `error.downcast_ref::<hyper::Error>()`).
///
/// # Configuration
///
/// ```
/// use cachelayer::{CacheSettings, KeyRequestBodyLayer};
///
/// let settings = CacheSettings::default();
/// let layer = KeyRequestBodyLayer::new()
///     .limit(64 * 1024)
///     .ignored_parameters(settings.ignored_parameters.iter().cloned());
/// assert_eq!(layer.get_limit(), 64 * 1024);
///
/// // In front of a shared cache: body credentials stay in the key (hashed, never stored).
/// let shared = KeyRequestBodyLayer::for_settings(&CacheSettings::shared());
/// assert!(shared.is_shared());
/// ```
///
/// Cloning is cheap.
#[derive(Debug, Clone, Default)]
pub struct KeyRequestBodyLayer {
    config: Config,
}

impl KeyRequestBodyLayer {
    /// A layer with the default limit ([`DEFAULT_KEY_BODY_LIMIT`], 1 MiB) and the default
    /// ignored parameters ([`DEFAULT_IGNORED_PARAMETERS`](crate::DEFAULT_IGNORED_PARAMETERS)).
    #[must_use]
    pub fn new() -> Self {
        KeyRequestBodyLayer::default()
    }

    /// Sets the largest request body, in bytes, that goes in the cache key. A request whose body
    /// is larger bypasses the cache (its body is still passed on whole). Default:
    /// [`DEFAULT_KEY_BODY_LIMIT`] (1 MiB); `0` keys only empty bodies.
    #[must_use]
    pub fn limit(mut self, bytes: usize) -> Self {
        self.config.limit = bytes;
        self
    }

    /// The largest request body, in bytes, that goes in the cache key.
    pub fn get_limit(&self) -> usize {
        self.config.limit
    }

    /// Sets the JSON object members and form parameters left out of the cache key (matched
    /// exactly, case-sensitively), replacing the default
    /// ([`DEFAULT_IGNORED_PARAMETERS`](crate::DEFAULT_IGNORED_PARAMETERS)). Pass the cache's
    /// [`CacheSettings::ignored_parameters`](crate::CacheSettings::ignored_parameters) to treat
    /// bodies as the cache treats query parameters.
    #[must_use]
    pub fn ignored_parameters<I>(mut self, names: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.config.ignored = names.into_iter().map(Into::into).collect();
        self
    }

    /// The JSON object members and form parameters left out of the cache key.
    pub fn get_ignored_parameters(&self) -> &[String] {
        &self.config.ignored
    }

    /// Keys bodies for a shared cache: the [`ignored_parameters`](Self::ignored_parameters)
    /// (credentials) stay in the body that is hashed into the key, as a shared cache hashes the
    /// credentials of a URL, so a request is never answered with a response made for another
    /// credential. The key body is only hashed, never stored. Default: `false` (a private
    /// cache: credentials are left out of the key, as requests-cache does).
    #[must_use]
    pub fn shared(mut self, shared: bool) -> Self {
        self.config.shared = shared;
        self
    }

    /// Whether bodies are keyed for a shared cache.
    pub fn is_shared(&self) -> bool {
        self.config.shared
    }

    /// A layer that keys bodies as a cache with `settings` keys URLs: its
    /// [`ignored_parameters`](crate::CacheSettings::ignored_parameters), and
    /// [`shared`](Self::shared) when the cache is.
    #[must_use]
    pub fn for_settings(settings: &crate::CacheSettings) -> Self {
        KeyRequestBodyLayer::new()
            .ignored_parameters(settings.ignored_parameters.iter().cloned())
            .shared(settings.shared)
    }
}

impl<S> Layer<S> for KeyRequestBodyLayer {
    type Service = KeyRequestBody<S>;

    fn layer(&self, inner: S) -> Self::Service {
        KeyRequestBody {
            inner,
            config: self.config.clone(),
        }
    }
}

/// A service that reads each request body into memory, attaches it, normalized, as the
/// [`KeyBody`] the cache keys the request by, and passes the request on to `S` with a
/// [`Full<Bytes>`] body. Made by [`KeyRequestBodyLayer`], whose docs tell what it does.
///
/// - Works with any request body `B` whose error converts into a [`BoxError`], and any
///   `S: Service<http::Request<Full<Bytes>>> + Clone` whose error converts into a
///   [`BoxError`]; the response is `S`'s, untouched.
/// - Its error is a [`BoxError`]: `S`'s error, or the request body's error (then `S` is not
///   called).
///
/// `S` must be `Clone` because the request waits for its body before it reaches `S`; the
/// service readied by `poll_ready` is the one that gets the request.
#[derive(Debug, Clone)]
pub struct KeyRequestBody<S> {
    inner: S,
    config: Config,
}

impl<S> KeyRequestBody<S> {
    /// A service around `inner` with the default limit and ignored parameters
    /// (`KeyRequestBodyLayer::new().layer(inner)`).
    pub fn new(inner: S) -> Self {
        KeyRequestBodyLayer::new().layer(inner)
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, consuming this service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B> Service<Request<B>> for KeyRequestBody<S>
where
    S: Service<Request<Full<Bytes>>> + Clone,
    S::Error: Into<BoxError>,
    B: Body,
    B::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = KeyRequestBodyFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // Use the service that `poll_ready` readied; keep a fresh clone for the next call.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let (parts, body) = request.into_parts();
        KeyRequestBodyFuture {
            state: State::Reading {
                body,
                ctx: Some(Box::new(Reading {
                    inner,
                    parts,
                    chunks: Vec::new(),
                    len: 0,
                    config: self.config.clone(),
                })),
            },
        }
    }
}

pin_project! {
    /// The response future of [`KeyRequestBody`]: reads the request body, then waits for the
    /// inner service.
    pub struct KeyRequestBodyFuture<S, B>
    where
        S: Service<Request<Full<Bytes>>>,
    {
        #[pin]
        state: State<S, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B>
    where
        S: Service<Request<Full<Bytes>>>,
    {
        // Reading the request body.
        Reading {
            #[pin]
            body: B,
            ctx: Option<Box<Reading<S>>>,
        },
        // Waiting for the inner service.
        Calling {
            #[pin]
            future: S::Future,
        },
    }
}

/// A request whose body is being read.
struct Reading<S> {
    inner: S,
    parts: Parts,
    chunks: Vec<Bytes>,
    /// The bytes read so far (saturating).
    len: usize,
    config: Config,
}

impl<S, B> fmt::Debug for KeyRequestBodyFuture<S, B>
where
    S: Service<Request<Full<Bytes>>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Reading { .. } => "reading the request body",
            State::Calling { .. } => "calling the inner service",
        };
        f.debug_struct("KeyRequestBodyFuture")
            .field("state", &state)
            .finish()
    }
}

impl<S, B> Future for KeyRequestBodyFuture<S, B>
where
    S: Service<Request<Full<Bytes>>>,
    S::Error: Into<BoxError>,
    B: Body,
    B::Error: Into<BoxError>,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Reading { mut body, ctx } => {
                    match ready!(body.as_mut().poll_frame(cx)) {
                        Some(Ok(frame)) => {
                            // Trailers are not passed on: a `Full` body has none.
                            if let (Ok(mut data), Some(reading)) = (frame.into_data(), ctx.as_mut())
                            {
                                let chunk = data.copy_to_bytes(data.remaining());
                                reading.len = reading.len.saturating_add(chunk.len());
                                if !chunk.is_empty() {
                                    reading.chunks.push(chunk);
                                }
                            }
                        }
                        Some(Err(error)) => return Poll::Ready(Err(error.into())),
                        None => {
                            let Some(reading) = ctx.take() else {
                                panic!("KeyRequestBodyFuture polled after completion");
                            };
                            let Reading {
                                mut inner,
                                parts,
                                chunks,
                                len,
                                config,
                            } = *reading;
                            let request = keyed_request(parts, concat(chunks, len), &config);
                            let future = inner.call(request);
                            state.set(State::Calling { future });
                        }
                    }
                }
                StateProj::Calling { future } => return future.poll(cx).map_err(Into::into),
            }
        }
    }
}

/// The chunks of a body as one buffer (without copying a single chunk).
fn concat(mut chunks: Vec<Bytes>, len: usize) -> Bytes {
    match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.pop().unwrap_or_default(),
        _ => {
            let mut buf = BytesMut::with_capacity(len);
            for chunk in chunks {
                buf.extend_from_slice(&chunk);
            }
            buf.freeze()
        }
    }
}

/// The request passed on: `body` as a `Full` body and, for the methods whose body is keyed,
/// a [`KeyBody`] or (over the limit) [`CacheOptions::disabled`].
fn keyed_request(parts: Parts, body: Bytes, config: &Config) -> Request<Full<Bytes>> {
    let keyed = parts.method != Method::GET
        && parts.method != Method::HEAD
        && parts.extensions.get::<KeyBody>().is_none();
    let mut request = Request::from_parts(parts, Full::new(body.clone()));
    if !keyed {
        return request;
    }
    if body.len() <= config.limit {
        let content_type = request.headers().get(CONTENT_TYPE);
        let ignored: &[String] = if config.shared { &[] } else { &config.ignored };
        let key = match normalize_body(content_type, &body, ignored) {
            Cow::Borrowed(_) => body.clone(),
            Cow::Owned(normalized) => Bytes::from(normalized),
        };
        request.extensions_mut().insert(KeyBody(key));
    } else {
        let mut options = request
            .extensions()
            .get::<CacheOptions>()
            .copied()
            .unwrap_or_default();
        options.disabled = true;
        request.extensions_mut().insert(options);
    }
    request
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::convert::Infallible;
    use std::sync::Mutex;
    use tower::{ServiceExt, service_fn};

    /// What the inner service saw: the body, the key body, the options.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Seen {
        body: Bytes,
        key: Option<Bytes>,
        options: Option<CacheOptions>,
        content_length: Option<String>,
    }

    /// Sends `request` through a `KeyRequestBody` made by `layer`; what the inner service saw.
    async fn through<B>(layer: &KeyRequestBodyLayer, request: Request<B>) -> Result<Seen, BoxError>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let seen = Arc::new(Mutex::new(None));
        let record = seen.clone();
        let inner = service_fn(move |request: Request<Full<Bytes>>| {
            let record = record.clone();
            async move {
                let key = request.extensions().get::<KeyBody>().map(|k| k.0.clone());
                let options = request.extensions().get::<CacheOptions>().copied();
                let content_length = request
                    .headers()
                    .get(http::header::CONTENT_LENGTH)
                    .map(|v| v.to_str().unwrap().to_owned());
                let body = request.into_body().collect().await.unwrap().to_bytes();
                *record.lock().unwrap() = Some(Seen {
                    body,
                    key,
                    options,
                    content_length,
                });
                Ok::<_, Infallible>(http::Response::new(()))
            }
        });
        layer.layer(inner).oneshot(request).await?;
        let seen = seen.lock().unwrap().clone();
        Ok(seen.unwrap())
    }

    fn post(content_type: &str, body: &'static str) -> Request<Full<Bytes>> {
        Request::post("http://e.com/")
            .header(CONTENT_TYPE, content_type)
            .header(http::header::CONTENT_LENGTH, body.len())
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    }

    #[tokio::test]
    async fn json_body_is_keyed_normalized_and_forwarded_unchanged() {
        let body = r#"{ "q": 1, "api_key": "secret", "a": [2, 1] }"#;
        let seen = through(&KeyRequestBodyLayer::new(), post("application/json", body))
            .await
            .unwrap();
        assert_eq!(seen.body, body, "the origin gets the body as sent");
        assert_eq!(seen.content_length, Some(body.len().to_string()));
        assert_eq!(seen.key.unwrap(), r#"{"a":[2,1],"q":1}"#);
        assert_eq!(seen.options, None);
    }

    #[tokio::test]
    async fn a_shared_cache_keys_body_credentials() {
        let shared = KeyRequestBodyLayer::for_settings(&crate::CacheSettings::shared());
        assert!(shared.is_shared());
        let key = |body: &'static str| {
            let shared = shared.clone();
            async move {
                through(&shared, post("application/json", body))
                    .await
                    .unwrap()
                    .key
                    .unwrap()
            }
        };
        let alice = key(r#"{"q": 1, "api_key": "ALICE"}"#).await;
        assert_ne!(alice, key(r#"{"q": 1, "api_key": "BOB"}"#).await);
        assert_ne!(alice, key(r#"{"q": 1}"#).await);
        assert_eq!(
            alice,
            key(r#"{"api_key":"ALICE","q":1}"#).await,
            "still normalized"
        );
        let private = KeyRequestBodyLayer::for_settings(&crate::CacheSettings::default());
        assert!(!private.is_shared());
    }

    #[tokio::test]
    async fn other_bodies_are_keyed_as_they_are() {
        let seen = through(&KeyRequestBodyLayer::new(), post("text/plain", "b a"))
            .await
            .unwrap();
        assert_eq!(seen.key.unwrap(), "b a");
        let empty = Request::delete("http://e.com/")
            .body(Full::<Bytes>::default())
            .unwrap();
        let seen = through(&KeyRequestBodyLayer::new(), empty).await.unwrap();
        assert_eq!(seen.key.unwrap(), "", "an empty body is keyed too");
    }

    #[tokio::test]
    async fn get_and_head_are_not_keyed() {
        for method in [Method::GET, Method::HEAD] {
            let request = Request::builder()
                .method(method.clone())
                .uri("http://e.com/")
                .body(Full::new(Bytes::from("ignored")))
                .unwrap();
            let seen = through(&KeyRequestBodyLayer::new(), request).await.unwrap();
            assert_eq!(seen.key, None, "{method}");
            assert_eq!(seen.options, None, "{method}");
            assert_eq!(
                seen.body, "ignored",
                "{method}: the body is still passed on"
            );
        }
    }

    #[tokio::test]
    async fn ignored_parameters_are_configurable() {
        let layer = KeyRequestBodyLayer::new().ignored_parameters(["token"]);
        assert_eq!(layer.get_ignored_parameters(), ["token".to_owned()]);
        let request = post("application/x-www-form-urlencoded", "token=t&api_key=k&b=1");
        let seen = through(&layer, request).await.unwrap();
        assert_eq!(seen.key.unwrap(), "api_key=k&b=1");
    }

    #[tokio::test]
    async fn limit_is_inclusive_and_a_larger_body_bypasses_the_cache() {
        let layer = KeyRequestBodyLayer::new().limit(4);
        let seen = through(&layer, post("text/plain", "abcd")).await.unwrap();
        assert_eq!(
            seen.key.unwrap(),
            "abcd",
            "a body of exactly the limit is keyed"
        );

        // Over the limit, streamed in chunks: passed on whole, not keyed, cache disabled, and
        // the request's other options kept.
        let chunks = ["ab", "cd", "", "ef"]
            .map(|c| Ok::<_, Infallible>(http_body::Frame::data(Bytes::from(c))));
        let mut request = Request::post("http://e.com/")
            .body(Frames::new(chunks.into()))
            .unwrap();
        request.extensions_mut().insert(CacheOptions {
            refresh: true,
            ..CacheOptions::default()
        });
        let seen = through(&layer, request).await.unwrap();
        assert_eq!(seen.body, "abcdef");
        assert_eq!(seen.key, None);
        assert_eq!(
            seen.options,
            Some(CacheOptions {
                refresh: true,
                disabled: true,
                ..CacheOptions::default()
            })
        );
        assert_eq!(DEFAULT_KEY_BODY_LIMIT, 1 << 20);
        assert_eq!(
            KeyRequestBodyLayer::new().get_limit(),
            DEFAULT_KEY_BODY_LIMIT
        );
    }

    #[tokio::test]
    async fn a_key_body_already_there_is_kept() {
        let mut request = post("application/json", r#"{"b":1}"#);
        request
            .extensions_mut()
            .insert(KeyBody(Bytes::from_static(b"mine")));
        let seen = through(&KeyRequestBodyLayer::new().limit(0), request)
            .await
            .unwrap();
        assert_eq!(seen.key.unwrap(), "mine");
        assert_eq!(
            seen.options, None,
            "the caller's key body is not over any limit"
        );
    }

    #[tokio::test]
    async fn a_body_error_is_the_service_error() {
        #[derive(Debug)]
        struct Broken;
        impl fmt::Display for Broken {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("broken body")
            }
        }
        impl std::error::Error for Broken {}

        let frames = vec![Ok(http_body::Frame::data(Bytes::from("ab"))), Err(Broken)];
        let request = Request::post("http://e.com/")
            .body(Frames::new(frames))
            .unwrap();
        let called = Arc::new(Mutex::new(false));
        let flag = called.clone();
        let inner = service_fn(move |_request: Request<Full<Bytes>>| {
            *flag.lock().unwrap() = true;
            async { Ok::<_, Infallible>(http::Response::new(())) }
        });
        let error = KeyRequestBody::new(inner)
            .oneshot(request)
            .await
            .unwrap_err();
        assert!(error.downcast_ref::<Broken>().is_some(), "{error}");
        assert!(!*called.lock().unwrap(), "the inner service is not called");
    }

    #[tokio::test]
    async fn the_inner_error_is_boxed() {
        let inner = service_fn(|_request: Request<Full<Bytes>>| async {
            Err::<http::Response<()>, _>(std::io::Error::other("origin down"))
        });
        let error = KeyRequestBody::new(inner)
            .oneshot(post("text/plain", "x"))
            .await
            .unwrap_err();
        assert_eq!(error.to_string(), "origin down");
        assert!(error.downcast_ref::<std::io::Error>().is_some());
    }

    #[test]
    fn accessors() {
        let mut service = KeyRequestBodyLayer::new().limit(7).layer(5_u8);
        assert_eq!(*service.get_ref(), 5);
        *service.get_mut() = 6;
        assert_eq!(service.into_inner(), 6);
    }

    /// A body that yields `frames`, one per poll.
    struct Frames<E>(std::collections::VecDeque<Result<http_body::Frame<Bytes>, E>>);

    impl<E> Frames<E> {
        fn new(frames: Vec<Result<http_body::Frame<Bytes>, E>>) -> Self {
            Frames(frames.into())
        }
    }

    impl<E: Unpin> Body for Frames<E> {
        type Data = Bytes;
        type Error = E;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Bytes>, E>>> {
            Poll::Ready(self.0.pop_front())
        }
    }
}
