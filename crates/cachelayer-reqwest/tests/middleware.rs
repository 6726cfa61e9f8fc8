//! `CacheMiddleware` in a reqwest-middleware client against a real hyper origin on 127.0.0.1.

#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use cachelayer::Detail;
use cachelayer::{CacheInfo, CacheLayer, CacheOptions, CacheOutcome, CacheSettings, MemoryStore};
use cachelayer_reqwest::{CacheMiddleware, CacheResponseExt};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioExecutor, TokioIo};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

// ===== a tiny origin =====

/// A request as the origin received it.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

type Handler = Arc<dyn Fn(&Seen) -> Response<Full<Bytes>> + Send + Sync>;

/// A hyper HTTP/1.1 server on 127.0.0.1 that answers every request with `handler` (paths under
/// `/slow` after 200 ms) and records what it received; stopped when dropped.
struct Origin {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: JoinHandle<()>,
}

impl Origin {
    async fn start(
        handler: impl Fn(&Seen) -> Response<Full<Bytes>> + Send + Sync + 'static,
    ) -> Origin {
        let handler: Handler = Arc::new(handler);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let server_seen = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let handler = handler.clone();
                let seen = server_seen.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                        let handler = handler.clone();
                        let seen = seen.clone();
                        async move {
                            let (parts, body) = request.into_parts();
                            let body = body.collect().await.unwrap().to_bytes();
                            let request = Seen {
                                method: parts.method,
                                path: parts.uri.path().to_owned(),
                                headers: parts.headers,
                                body,
                            };
                            if request.path.starts_with("/slow") {
                                tokio::time::sleep(Duration::from_millis(200)).await;
                            }
                            let response = handler(&request);
                            seen.lock().unwrap().push(request);
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Origin { addr, seen, task }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// How many requests for `path` reached the origin.
    fn hits(&self, path: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.path == path)
            .count()
    }

    /// The last request for `path`.
    fn last(&self, path: &str) -> Seen {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|s| s.path == path)
            .unwrap()
            .clone()
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn reply(status: u16, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut builder = Response::builder().status(status);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Full::new(body.into())).unwrap()
}

fn client(middleware: CacheMiddleware) -> ClientWithMiddleware {
    ClientBuilder::new(reqwest::Client::new())
        .with(middleware)
        .build()
}

/// Sends a GET and reads the whole body (the cache stores a response when its body ends).
async fn get(client: &ClientWithMiddleware, url: &str) -> (reqwest::Response, Bytes) {
    send(client.get(url)).await
}

async fn send(request: reqwest_middleware::RequestBuilder) -> (reqwest::Response, Bytes) {
    tokio::time::timeout(Duration::from_secs(10), async {
        let response = request.send().await.unwrap();
        // `bytes()` consumes the response: keep its head in a twin without a body.
        let mut head = http::Response::builder().status(response.status());
        for (name, value) in response.headers() {
            head = head.header(name, value);
        }
        if let Some(info) = response.cache_info() {
            head = head.extension(info.clone());
        }
        let url = response.url().clone();
        let head = reqwest::ResponseBuilderExt::url(head, url)
            .body(Vec::<u8>::new())
            .unwrap();
        let body = response.bytes().await.unwrap();
        (reqwest::Response::from(head), body)
    })
    .await
    .unwrap()
}

fn info(response: &reqwest::Response) -> &CacheInfo {
    response.cache_info().unwrap()
}

// ===== tests =====

#[tokio::test]
async fn miss_then_hit() {
    let origin = Origin::start(|_| reply(200, &[("cache-control", "max-age=60")], "hello")).await;
    let middleware = CacheMiddleware::new(CacheSettings::default());
    let client = client(middleware.clone());
    let url = origin.url("/data");

    let (first, body) = get(&client, &url).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(body, "hello");
    assert_eq!(info(&first).outcome, CacheOutcome::Miss);
    assert!(info(&first).stored);
    assert!(!first.from_cache());
    assert_eq!(first.url().as_str(), url);

    let (second, body) = get(&client, &url).await;
    assert_eq!(second.status(), StatusCode::OK);
    assert_eq!(body, "hello");
    assert_eq!(info(&second).outcome, CacheOutcome::Hit);
    assert!(second.from_cache());
    assert_eq!(second.url().as_str(), url);
    let status = second.headers()["cache-status"].to_str().unwrap();
    assert!(status.starts_with("cachelayer; hit"), "{status}");
    assert_eq!(origin.hits("/data"), 1);

    // The handle sees what the middleware stored.
    assert!(middleware.cache().contains_url(&url).await.unwrap());
    assert_eq!(middleware.cache().len().await.unwrap(), 1);
    middleware.cache().clear().await.unwrap();
    let (third, _) = get(&client, &url).await;
    assert!(!third.from_cache());
    assert_eq!(origin.hits("/data"), 2);
}

#[tokio::test]
async fn no_store_response_is_not_stored() {
    let origin = Origin::start(|_| reply(200, &[("cache-control", "no-store")], "secret")).await;
    let client = client(CacheMiddleware::new(CacheSettings::default()));
    let url = origin.url("/private");
    for _ in 0..2 {
        let (response, body) = get(&client, &url).await;
        assert_eq!(body, "secret");
        assert!(!response.from_cache());
        assert!(!info(&response).stored);
        assert_eq!(info(&response).detail, Some(Detail::NoStore));
    }
    assert_eq!(origin.hits("/private"), 2);
}

#[tokio::test]
async fn force_refresh_option_goes_to_the_origin_and_replaces_the_stored_response() {
    let count = Arc::new(Mutex::new(0u32));
    let origin = Origin::start(move |_| {
        let mut count = count.lock().unwrap();
        *count += 1;
        reply(
            200,
            &[("cache-control", "max-age=60")],
            format!("version {count}"),
        )
    })
    .await;
    let client = client(CacheMiddleware::new(CacheSettings::default()));
    let url = origin.url("/v");

    assert_eq!(get(&client, &url).await.1, "version 1");
    assert_eq!(get(&client, &url).await.1, "version 1");
    let (forced, body) = send(client.get(&url).with_extension(CacheOptions {
        force_refresh: true,
        ..Default::default()
    }))
    .await;
    assert_eq!(body, "version 2");
    assert!(!forced.from_cache());
    assert_eq!(info(&forced).outcome, CacheOutcome::ForwardedByRequest);
    let (after, body) = get(&client, &url).await;
    assert_eq!(body, "version 2");
    assert!(after.from_cache());
    assert_eq!(origin.hits("/v"), 2);
}

#[tokio::test]
async fn only_if_cached_option_answers_504_without_the_origin() {
    let origin = Origin::start(|_| reply(200, &[("cache-control", "max-age=60")], "x")).await;
    let client = client(CacheMiddleware::new(CacheSettings::default()));
    let (response, _) = send(
        client
            .get(origin.url("/offline"))
            .with_extension(CacheOptions {
                only_if_cached: true,
                ..Default::default()
            }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(info(&response).outcome, CacheOutcome::NotCached);
    assert_eq!(origin.hits("/offline"), 0);
}

#[tokio::test]
async fn post_passes_through_and_invalidates() {
    let origin = Origin::start(|seen| {
        if seen.method == Method::POST {
            reply(201, &[("cache-control", "max-age=60")], "created")
        } else {
            reply(200, &[("cache-control", "max-age=60")], "list")
        }
    })
    .await;
    let client = client(CacheMiddleware::new(CacheSettings::default()));
    let url = origin.url("/items");

    assert!(!get(&client, &url).await.0.from_cache());
    assert!(get(&client, &url).await.0.from_cache());
    for n in 0..2 {
        let (response, body) = send(client.post(&url).body(format!("item {n}"))).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(body, "created");
        assert_eq!(info(&response).outcome, CacheOutcome::Bypass);
        let seen = origin.last("/items");
        assert_eq!(seen.method, Method::POST);
        assert_eq!(seen.body, format!("item {n}"));
    }
    // The POST invalidated the stored GET response (RFC 9111 §4.4).
    let (after, _) = get(&client, &url).await;
    assert!(!after.from_cache());
    assert_eq!(origin.hits("/items"), 4);
}

#[tokio::test]
async fn body_bytes_are_identical_from_the_origin_and_the_cache() {
    // 300 KiB of every byte value, in a pattern that does not repeat at small periods.
    let payload: Bytes = (0..300 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect::<Vec<u8>>()
        .into();
    let served = payload.clone();
    let origin = Origin::start(move |_| {
        reply(
            200,
            &[
                ("cache-control", "max-age=60"),
                ("content-type", "application/octet-stream"),
            ],
            served.clone(),
        )
    })
    .await;
    let client = client(CacheMiddleware::new(CacheSettings::default()));
    let url = origin.url("/blob");

    let (miss, from_origin) = get(&client, &url).await;
    let (hit, from_cache) = get(&client, &url).await;
    assert!(!miss.from_cache());
    assert!(hit.from_cache());
    assert_eq!(from_origin, payload);
    assert_eq!(from_cache, payload);
    assert_eq!(
        hit.headers()["content-type"],
        "application/octet-stream",
        "stored headers are served"
    );
    assert_eq!(origin.hits("/blob"), 1);
}

#[tokio::test]
async fn etag_revalidation_304_is_served_as_200_from_the_cache() {
    let origin = Origin::start(|seen| {
        if seen
            .headers
            .get("if-none-match")
            .is_some_and(|v| v == "\"v1\"")
        {
            reply(
                304,
                &[("etag", "\"v1\""), ("cache-control", "no-cache")],
                "",
            )
        } else {
            reply(
                200,
                &[("etag", "\"v1\""), ("cache-control", "no-cache")],
                "validated body",
            )
        }
    })
    .await;
    let client = client(CacheMiddleware::new(CacheSettings::default()));
    let url = origin.url("/etag");

    let (first, body) = get(&client, &url).await;
    assert_eq!(body, "validated body");
    assert!(info(&first).stored);

    let (second, body) = get(&client, &url).await;
    assert_eq!(second.status(), StatusCode::OK);
    assert_eq!(body, "validated body");
    assert!(second.from_cache());
    assert!(info(&second).revalidated);
    assert_eq!(info(&second).outcome, CacheOutcome::Revalidated);
    assert_eq!(
        origin.last("/etag").headers["if-none-match"],
        "\"v1\"",
        "the cache sent the stored validator"
    );
    assert_eq!(origin.hits("/etag"), 2);
}

#[tokio::test]
async fn a_layer_and_a_middleware_share_one_cache() {
    let origin = Origin::start(|_| reply(200, &[("cache-control", "max-age=60")], "shared")).await;
    let layer = CacheLayer::with_store(MemoryStore::new(), CacheSettings::default());
    let client = client(CacheMiddleware::from_layer(layer.clone()));
    let url = origin.url("/shared");
    assert!(!get(&client, &url).await.0.from_cache());

    // A hyper-util client behind the same layer is answered from what reqwest stored.
    use tower::{Service, ServiceExt};
    let mut tower_client = tower::ServiceBuilder::new().layer(layer.clone()).service(
        hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .build_http::<Full<Bytes>>(),
    );
    let request = Request::get(&url).body(Full::default()).unwrap();
    let response = tower_client
        .ready()
        .await
        .unwrap()
        .call(request)
        .await
        .unwrap();
    assert!(response.extensions().get::<CacheInfo>().unwrap().from_cache);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "shared");
    assert_eq!(origin.hits("/shared"), 1);

    // Settings set on the layer apply to the middleware.
    layer.set_settings(CacheSettings {
        disabled: true,
        ..layer.settings()
    });
    let (bypassed, _) = get(&client, &url).await;
    assert_eq!(info(&bypassed).outcome, CacheOutcome::Bypass);
    assert_eq!(origin.hits("/shared"), 2);
}

/// An origin whose responses are stale at once but may be served stale for a minute while they
/// are revalidated (RFC 5861); the validator makes them worth storing, and the origin answers
/// every request in full.
async fn stale_while_revalidate_origin() -> Origin {
    let count = Arc::new(Mutex::new(0u32));
    Origin::start(move |_| {
        let mut count = count.lock().unwrap();
        *count += 1;
        reply(
            200,
            &[
                ("cache-control", "max-age=0, stale-while-revalidate=60"),
                ("etag", &format!("\"{count}\"")),
            ],
            format!("version {count}"),
        )
    })
    .await
}

async fn wait_for_hits(origin: &Origin, path: &str, hits: usize) {
    for _ in 0..200 {
        if origin.hits(path) >= hits {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{path}: {} origin hits, expected {hits}", origin.hits(path));
}

#[tokio::test]
async fn stale_while_revalidate_without_background_client_revalidates_before_returning() {
    let origin = stale_while_revalidate_origin().await;
    let client = client(CacheMiddleware::new(CacheSettings::default()));
    let url = origin.url("/swr");

    assert_eq!(get(&client, &url).await.1, "version 1");
    let (stale, body) = get(&client, &url).await;
    assert_eq!(body, "version 1");
    assert_eq!(info(&stale).outcome, CacheOutcome::StaleWhileRevalidate);
    // The revalidation reached the origin before the stale response was returned.
    assert_eq!(origin.hits("/swr"), 2);
    // Its response is stored in the background; then it is the one served (stale again).
    let mut body = Bytes::new();
    for _ in 0..200 {
        body = get(&client, &url).await.1;
        if body == "version 2" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(body, "version 2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_while_revalidate_with_background_client() {
    let origin = stale_while_revalidate_origin().await;
    let middleware = CacheMiddleware::new(CacheSettings::default())
        .with_background_client(reqwest::Client::new());
    let client = client(middleware);
    let url = origin.url("/swr");

    assert_eq!(get(&client, &url).await.1, "version 1");
    let (stale, body) = get(&client, &url).await;
    assert_eq!(body, "version 1");
    assert_eq!(info(&stale).outcome, CacheOutcome::StaleWhileRevalidate);
    wait_for_hits(&origin, "/swr", 2).await;
    let mut body = Bytes::new();
    for _ in 0..200 {
        body = get(&client, &url).await.1;
        if body == "version 2" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(body, "version 2");
}

/// Fails every request while `failing` is set, as a middleware below the cache.
struct Outage {
    failing: Arc<std::sync::atomic::AtomicBool>,
}

#[async_trait::async_trait]
impl reqwest_middleware::Middleware for Outage {
    async fn handle(
        &self,
        request: reqwest::Request,
        extensions: &mut http::Extensions,
        next: reqwest_middleware::Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(reqwest_middleware::Error::middleware(
                std::io::Error::other("origin unreachable"),
            ));
        }
        next.run(request, extensions).await
    }
}

#[tokio::test]
async fn stale_if_error_serves_the_stored_response_when_the_origin_fails() {
    let failing = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let status = Arc::new(Mutex::new(200u16));
    let origin_status = status.clone();
    let origin = Origin::start(move |_| {
        reply(
            *origin_status.lock().unwrap(),
            &[("cache-control", "max-age=0"), ("etag", "\"e\"")],
            "kept",
        )
    })
    .await;
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(CacheMiddleware::new(CacheSettings {
            stale_if_error: true.into(),
            ..CacheSettings::default()
        }))
        .with(Outage {
            failing: failing.clone(),
        })
        .build();
    let url = origin.url("/flaky");
    assert_eq!(get(&client, &url).await.1, "kept");

    // A 500 from the origin.
    *status.lock().unwrap() = 500;
    let (response, body) = get(&client, &url).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body, "kept");
    assert_eq!(info(&response).outcome, CacheOutcome::StaleIfError);

    // An error of the middleware below the cache is an origin failure too.
    failing.store(true, std::sync::atomic::Ordering::SeqCst);
    let (response, body) = get(&client, &url).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body, "kept");
    assert_eq!(info(&response).outcome, CacheOutcome::StaleIfError);

    // Without a stored response, the error reaches the caller unchanged.
    let error = client.get(origin.url("/never")).send().await.unwrap_err();
    assert!(matches!(error, reqwest_middleware::Error::Middleware(_)));
    assert!(error.to_string().contains("origin unreachable"), "{error}");
}

#[tokio::test]
async fn post_is_cached_by_its_normalized_body_when_allowed() {
    let origin = Origin::start(|seen| {
        reply(
            200,
            &[("cache-control", "max-age=60")],
            format!("results for {}", String::from_utf8_lossy(&seen.body)),
        )
    })
    .await;
    let client = client(CacheMiddleware::new(CacheSettings {
        allowable_methods: vec![Method::GET, Method::HEAD, Method::POST],
        ..CacheSettings::default()
    }));
    let url = origin.url("/search");
    let post = |body: &'static str| {
        client
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
    };

    let (first, body) = send(post(r#"{"q":"rust","page":1}"#)).await;
    assert!(!first.from_cache());
    assert_eq!(body, r#"results for {"q":"rust","page":1}"#);
    // Member order, whitespace and credentials do not matter; the origin got the body unchanged.
    let (same, body) = send(post(r#"{ "page": 1, "api_key": "secret", "q": "rust" }"#)).await;
    assert!(same.from_cache(), "{:?}", info(&same));
    assert_eq!(body, r#"results for {"q":"rust","page":1}"#);
    let (other, _) = send(post(r#"{"q":"rust","page":2}"#)).await;
    assert!(!other.from_cache());
    assert_eq!(origin.hits("/search"), 2);

    // A streamed body cannot be keyed: the request bypasses the cache.
    let stream = reqwest::Body::wrap(Full::new(Bytes::from(r#"{"q":"rust","page":1}"#)));
    let (streamed, _) = send(client.post(&url).body(stream)).await;
    assert_eq!(info(&streamed).outcome, CacheOutcome::Bypass);
    assert_eq!(info(&streamed).detail, Some(Detail::Disabled));
    assert_eq!(origin.hits("/search"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_send_one_request_to_the_origin() {
    let origin = Origin::start(|_| reply(200, &[("cache-control", "max-age=60")], "once")).await;
    let client = client(CacheMiddleware::new(CacheSettings::default()));
    let url = origin.url("/slow/popular");
    let requests = (0..4).map(|_| {
        let client = client.clone();
        let url = url.clone();
        tokio::spawn(async move { get(&client, &url).await })
    });
    let mut from_cache = 0;
    for request in requests.collect::<Vec<_>>() {
        let (response, body) = request.await.unwrap();
        assert_eq!(body, "once");
        from_cache += usize::from(response.from_cache());
    }
    assert_eq!(origin.hits("/slow/popular"), 1);
    assert_eq!(from_cache, 3);
}
