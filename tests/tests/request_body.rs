//! Request bodies in the cache key (requests-cache caches POST requests by body): the
//! `KeyRequestBodyLayer` in front of the cache, against a real origin, counting its hits.
//!
//! The stack under test is `KeyRequestBodyLayer` -> `CacheLayer` -> a recorder of the bodies
//! handed to the HTTP client -> the hyper-util client -> the origin. The origin harness records
//! header fields, not bodies: what the origin received is checked with its `Content-Length` and
//! with the bytes the recorder saw go to the client.

#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use cachelayer::policy::key::{self, KeyInput};
use cachelayer::{
    CacheOutcome, CacheService, CacheSettings, DEFAULT_KEY_BODY_LIMIT, KeyRequestBody,
    KeyRequestBodyLayer,
};
use common::{Client, Got, Origin, Reply, cache, client, get, send};
use http::{HeaderMap, Method, Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use std::sync::{Arc, Mutex};
use tower::util::BoxCloneService;
use tower::{ServiceBuilder, ServiceExt, service_fn};

const JSON: &str = "application/json";
const FORM: &str = "application/x-www-form-urlencoded";

/// The bodies handed to the HTTP client, in order.
type Recorded = Arc<Mutex<Vec<Bytes>>>;

/// Settings that cache POST requests, as requests-cache's `allowable_methods=('GET', 'HEAD',
/// 'POST')`.
fn post_settings() -> CacheSettings {
    CacheSettings {
        allowable_methods: vec![Method::GET, Method::HEAD, Method::POST],
        ..CacheSettings::default()
    }
}

/// The client side of the stack.
type Recorder =
    BoxCloneService<Request<Full<Bytes>>, Response<Incoming>, hyper_util::client::legacy::Error>;

/// A fresh client that records every request body it sends in `recorded`.
fn recorder(recorded: Recorded) -> Recorder {
    let client: Client = client();
    BoxCloneService::new(service_fn(move |request: Request<Full<Bytes>>| {
        let client = client.clone();
        let recorded = recorded.clone();
        async move {
            let (parts, body) = request.into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            recorded.lock().unwrap().push(body.clone());
            client
                .oneshot(Request::from_parts(parts, Full::new(body)))
                .await
        }
    }))
}

/// The stack under test: body keying, the cache, the recording client.
type Under = KeyRequestBody<CacheService<Recorder>>;

/// The stack under test, its origin (`/search` and `/items` answer with `max-age=60`) and the
/// bodies the client sent.
struct Stack {
    service: Under,
    origin: Origin,
    recorded: Recorded,
    settings: CacheSettings,
}

async fn stack(layer: KeyRequestBodyLayer, settings: CacheSettings) -> Stack {
    let (cache_layer, clock) = cache(settings.clone());
    let origin = Origin::start(&clock).await;
    origin.route("/search", |_| {
        Reply::ok("results").header("cache-control", "max-age=60")
    });
    origin.route("/items", |_| {
        Reply::ok("items").header("cache-control", "max-age=60")
    });
    let recorded = Recorded::default();
    let service = ServiceBuilder::new()
        .layer(layer)
        .layer(cache_layer)
        .service(recorder(recorded.clone()));
    Stack {
        service,
        origin,
        recorded,
        settings,
    }
}

fn post(url: &str, content_type: &str, body: impl Into<Bytes>) -> Request<Full<Bytes>> {
    Request::post(url)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(Full::new(body.into()))
        .unwrap()
}

impl Stack {
    /// POSTs `body` to `/search`.
    async fn search(&mut self, content_type: &str, body: impl Into<Bytes>) -> Got {
        let request = post(&self.origin.url("/search"), content_type, body);
        send(&mut self.service, request).await
    }

    fn hits(&self) -> usize {
        self.origin.hits("/search")
    }

    /// The last body the client sent.
    fn last_sent(&self) -> Bytes {
        self.recorded.lock().unwrap().last().cloned().unwrap()
    }
}

#[tokio::test]
async fn the_same_json_body_is_one_origin_hit() {
    let mut s = stack(KeyRequestBodyLayer::new(), post_settings()).await;
    let body = r#"{"q":"rust","page":1}"#;
    let first = s.search(JSON, body).await;
    assert_eq!(first.info.outcome, CacheOutcome::Miss);
    assert_eq!(first.text(), "results");
    let second = s.search(JSON, body).await;
    assert_eq!(second.info.outcome, CacheOutcome::Hit);
    assert!(second.info.from_cache);
    assert_eq!(second.text(), "results");
    assert_eq!(second.info.cache_key, first.info.cache_key);
    assert_eq!(s.hits(), 1);
}

#[tokio::test]
async fn reordered_members_and_whitespace_share_the_entry() {
    let mut s = stack(KeyRequestBodyLayer::new(), post_settings()).await;
    let first = s
        .search(
            JSON,
            r#"{"q":"rust","page":1,"filter":{"b":true,"a":[2,1]}}"#,
        )
        .await;
    assert_eq!(first.info.outcome, CacheOutcome::Miss);
    let reordered = s
        .search(
            JSON,
            "{\n  \"filter\": { \"a\": [2, 1], \"b\": true },\n  \"page\": 1,\n  \"q\": \"rust\"\n}",
        )
        .await;
    assert_eq!(reordered.info.outcome, CacheOutcome::Hit);
    assert_eq!(reordered.info.cache_key, first.info.cache_key);
    assert_eq!(s.hits(), 1);

    // Array order is meaning: another entry.
    let other = s
        .search(
            JSON,
            r#"{"q":"rust","page":1,"filter":{"b":true,"a":[1,2]}}"#,
        )
        .await;
    assert_eq!(other.info.outcome, CacheOutcome::Miss);
    assert_eq!(s.hits(), 2);
}

#[tokio::test]
async fn different_bodies_are_separate_entries() {
    let mut s = stack(KeyRequestBodyLayer::new(), post_settings()).await;
    let rust = s.search(JSON, r#"{"q":"rust"}"#).await;
    let go = s.search(JSON, r#"{"q":"go"}"#).await;
    assert_eq!(rust.info.outcome, CacheOutcome::Miss);
    assert_eq!(go.info.outcome, CacheOutcome::Miss);
    assert_ne!(rust.info.cache_key, go.info.cache_key);
    assert_eq!(s.hits(), 2);
    // Both are stored, each under its own key.
    assert_eq!(
        s.search(JSON, r#"{"q":"rust"}"#).await.info.outcome,
        CacheOutcome::Hit
    );
    assert_eq!(
        s.search(JSON, r#"{"q":"go"}"#).await.info.outcome,
        CacheOutcome::Hit
    );
    assert_eq!(s.hits(), 2);
}

#[tokio::test]
async fn credentials_are_left_out_of_the_key_but_sent_to_the_origin() {
    let mut s = stack(KeyRequestBodyLayer::new(), post_settings()).await;
    let with_key = r#"{"api_key":"secret-1","q":"rust"}"#;
    let first = s.search(JSON, with_key).await;
    assert_eq!(first.info.outcome, CacheOutcome::Miss);
    // The origin got the body as sent, credentials included.
    assert_eq!(s.last_sent(), with_key);
    let seen = s.origin.last_request("/search");
    assert_eq!(
        seen.header("content-length"),
        Some(with_key.len().to_string().as_str())
    );
    assert_eq!(seen.header("content-type"), Some(JSON));

    // Another key, or none: the same entry.
    let other_key = s.search(JSON, r#"{"q":"rust","api_key":"secret-2"}"#).await;
    assert_eq!(other_key.info.outcome, CacheOutcome::Hit);
    let no_key = s.search(JSON, r#"{"q":"rust"}"#).await;
    assert_eq!(no_key.info.outcome, CacheOutcome::Hit);
    assert_eq!(no_key.info.cache_key, first.info.cache_key);
    assert_eq!(s.hits(), 1);
}

#[tokio::test]
async fn form_bodies_are_sorted_and_redacted() {
    let mut s = stack(KeyRequestBodyLayer::new(), post_settings()).await;
    let first = s.search(FORM, "q=rust&page=1&access_token=t1").await;
    assert_eq!(first.info.outcome, CacheOutcome::Miss);
    assert_eq!(s.last_sent(), "q=rust&page=1&access_token=t1");
    let second = s.search(FORM, "access_token=t2&page=1&q=rust").await;
    assert_eq!(second.info.outcome, CacheOutcome::Hit);
    let other = s.search(FORM, "page=2&q=rust").await;
    assert_eq!(other.info.outcome, CacheOutcome::Miss);
    assert_eq!(s.hits(), 2);
}

#[tokio::test]
async fn ignored_parameters_follow_the_layer() {
    let settings = post_settings();
    let layer = KeyRequestBodyLayer::new().ignored_parameters(
        settings
            .ignored_parameters
            .iter()
            .cloned()
            .chain(["nonce".into()]),
    );
    let mut s = stack(layer, settings).await;
    s.search(JSON, r#"{"q":"rust","nonce":1}"#).await;
    let second = s.search(JSON, r#"{"q":"rust","nonce":2}"#).await;
    assert_eq!(second.info.outcome, CacheOutcome::Hit);
    assert_eq!(s.hits(), 1);
}

#[tokio::test]
async fn a_body_over_the_limit_bypasses_the_cache_and_is_sent_whole() {
    let mut s = stack(KeyRequestBodyLayer::new().limit(1024), post_settings()).await;
    // The limit is inclusive.
    let at_limit = Bytes::from(vec![b'a'; 1024]);
    assert_eq!(
        s.search("text/plain", at_limit.clone()).await.info.outcome,
        CacheOutcome::Miss
    );
    assert_eq!(
        s.search("text/plain", at_limit).await.info.outcome,
        CacheOutcome::Hit
    );
    assert_eq!(s.hits(), 1);

    let large = Bytes::from(vec![b'b'; 4096]);
    for round in 1..=2 {
        let got = s.search("text/plain", large.clone()).await;
        assert_eq!(got.info.outcome, CacheOutcome::Bypass, "round {round}");
        assert!(!got.info.stored, "round {round}");
        assert_eq!(got.text(), "results");
        assert_eq!(
            s.last_sent(),
            large,
            "round {round}: the whole body is sent"
        );
        assert_eq!(
            s.origin.last_request("/search").header("content-length"),
            Some("4096")
        );
    }
    assert_eq!(s.hits(), 3, "a large body is never answered from the cache");
}

#[tokio::test]
async fn the_default_limit_is_one_mebibyte() {
    let mut s = stack(KeyRequestBodyLayer::new(), post_settings()).await;
    let at_limit = Bytes::from(vec![b'a'; DEFAULT_KEY_BODY_LIMIT]);
    assert_eq!(
        s.search(JSON, at_limit.clone()).await.info.outcome,
        CacheOutcome::Miss,
        "invalid JSON is keyed as it is"
    );
    assert_eq!(
        s.search(JSON, at_limit).await.info.outcome,
        CacheOutcome::Hit
    );
    let over = Bytes::from(vec![b'a'; DEFAULT_KEY_BODY_LIMIT + 1]);
    let got = s.search(JSON, over.clone()).await;
    assert_eq!(got.info.outcome, CacheOutcome::Bypass);
    assert_eq!(s.last_sent(), over);
    assert_eq!(s.hits(), 2);
}

#[tokio::test]
async fn get_requests_are_still_cached_by_url() {
    let mut s = stack(KeyRequestBodyLayer::new(), post_settings()).await;
    let url = s.origin.url("/items?b=2&a=1");
    let first = send(&mut s.service, get(&url)).await;
    assert_eq!(first.info.outcome, CacheOutcome::Miss);
    let second = send(&mut s.service, get(&s.origin.url("/items?a=1&b=2"))).await;
    assert_eq!(second.info.outcome, CacheOutcome::Hit);
    assert_eq!(s.origin.hits("/items"), 1);

    // The key is the URL's, as without the layer: no body in it.
    let uri: Uri = url.parse().unwrap();
    let expected = key::create_key(
        &KeyInput {
            method: &Method::GET,
            uri: &uri,
            headers: &HeaderMap::new(),
            body: None,
        },
        &s.settings.key_options(),
    );
    assert_eq!(first.info.cache_key, Some(expected));
}

#[tokio::test]
async fn post_is_not_cached_unless_allowed() {
    let mut s = stack(KeyRequestBodyLayer::new(), CacheSettings::default()).await;
    for _ in 0..2 {
        let got = s.search(JSON, r#"{"q":"rust"}"#).await;
        assert_eq!(got.info.outcome, CacheOutcome::Bypass);
    }
    assert_eq!(s.hits(), 2);
}
