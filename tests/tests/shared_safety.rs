//! Shared-cache safety: no response reaches the wrong user, no request poisons what others get.
//!
//! The threat model of a shared cache (a reverse proxy serving many users): any client controls
//! its request line and header fields, and the origin trusts what the cache forwards. Each test
//! here is one way a client could make the cache hand one user's response to another, or store
//! a response others get that the origin built from something the key does not hold.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "shared_safety/proxy.rs"]
mod proxy;

use bytes::Bytes;
use cachelayer::{CacheOutcome, CacheService, CacheSettings, Clock, ExpireAfter, SetCookie};
use common::{Client, Origin, Reply, cache, cached_client, client, get, get_with, http_date, send};
use http::Request;
use http_body_util::Full;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tower::{Layer, ServiceBuilder, ServiceExt};

/// A shared cache in front of a real client, with a manual clock.
fn shared() -> (CacheService<Client>, cachelayer::ManualClock) {
    cached_client(CacheSettings::shared())
}

/// A handler whose body names what the origin saw of `header`, numbered by arrival.
fn echo_header(name: &'static str) -> impl Fn(&common::Seen) -> Reply + Send + Sync + 'static {
    let count = Arc::new(AtomicUsize::new(0));
    move |seen| {
        let n = count.fetch_add(1, Ordering::SeqCst);
        Reply::ok(format!(
            "{n}: {}={}",
            name,
            seen.header(name).unwrap_or("-")
        ))
    }
}

// ===== 1. request max-age =====

/// A request's `max-age` gives a response without freshness information no lifetime in a shared
/// cache: the victim's cookie-personalized page is not stored, whatever the directive's value.
#[tokio::test]
async fn request_max_age_never_makes_a_response_storable_for_others() {
    let (mut cache, clock) = shared();
    let origin = Origin::start(&clock).await;
    origin.route("/page", echo_header("cookie"));
    for max_age in ["600", "2147483648"] {
        let victim = send(
            &mut cache,
            get_with(
                &origin.url("/page"),
                &[
                    ("cookie", "s=VICTIM"),
                    ("cache-control", &format!("max-age={max_age}")),
                ],
            ),
        )
        .await;
        assert!(victim.text().contains("VICTIM"));
        assert!(!victim.info.stored, "max-age={max_age}: not stored");
        let other = send(&mut cache, get(&origin.url("/page"))).await;
        assert!(
            !other.info.from_cache,
            "max-age={max_age}: {:?}",
            other.info
        );
        assert!(!other.text().contains("VICTIM"), "{}", other.text());
    }
    assert_eq!(origin.hits("/page"), 4);
}

/// A private cache keeps requests-cache's convenience: the request's `max-age` sets the
/// expiration of the response it gets.
#[tokio::test]
async fn a_private_cache_still_takes_its_expiration_from_the_request() {
    let (mut cache, clock) = cached_client(CacheSettings::default());
    let origin = Origin::start(&clock).await;
    origin.route("/page", echo_header("cookie"));
    let first = send(
        &mut cache,
        get_with(&origin.url("/page"), &[("cache-control", "max-age=600")]),
    )
    .await;
    assert!(first.info.stored);
    let second = send(&mut cache, get(&origin.url("/page"))).await;
    assert!(second.info.from_cache);
}

// ===== 3. credentials left out of the key =====

/// `?api_key=ALICE` is stored, and neither Bob's key nor no key gets Alice's response; Alice
/// herself hits.
#[tokio::test]
async fn query_credentials_are_never_answered_with_another_credentials_response() {
    let (layer, clock) = cache(CacheSettings::shared());
    let handle = layer.cache();
    let mut cache = layer.layer(client());
    let origin = Origin::start(&clock).await;
    let count = Arc::new(AtomicUsize::new(0));
    origin.route("/api", move |seen| {
        let n = count.fetch_add(1, Ordering::SeqCst);
        Reply::ok(format!("{n}: {}", seen.target)).header("cache-control", "public, max-age=600")
    });
    let alice = send(&mut cache, get(&origin.url("/api?api_key=ALICE&x=1"))).await;
    assert!(alice.info.stored);
    for url in [
        "/api?api_key=BOB&x=1",
        "/api?x=1",
        "/api?x=1&api_key=ALICE2",
    ] {
        let got = send(&mut cache, get(&origin.url(url))).await;
        assert!(!got.info.from_cache, "{url}");
        assert!(!got.text().contains("ALICE&"), "{url}: {}", got.text());
    }
    let again = send(&mut cache, get(&origin.url("/api?x=1&api_key=ALICE"))).await;
    assert!(again.info.from_cache, "Alice hits, parameters in any order");
    assert_eq!(again.text(), alice.text());
    // The credential is sent to the origin but never stored: the stored URL leaves it out.
    let urls: Vec<String> = handle
        .entries()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.url)
        .collect();
    assert!(!urls.is_empty());
    assert!(urls.iter().all(|u| !u.contains("ALICE")), "{urls:?}");
}

/// The same for a credential in a header field (`X-API-Key`).
#[tokio::test]
async fn header_credentials_are_never_answered_with_another_credentials_response() {
    let (mut cache, clock) = shared();
    let origin = Origin::start(&clock).await;
    origin.route("/me", |seen| {
        Reply::ok(format!("key={}", seen.header("x-api-key").unwrap_or("-")))
            .header("cache-control", "public, max-age=600")
    });
    let url = origin.url("/me");
    let alice = send(&mut cache, get_with(&url, &[("x-api-key", "alice")])).await;
    assert!(alice.info.stored);
    let bob = send(&mut cache, get_with(&url, &[("x-api-key", "bob")])).await;
    assert_eq!(bob.text(), "key=bob");
    let none = send(&mut cache, get(&url)).await;
    assert_eq!(none.text(), "key=-");
    let again = send(&mut cache, get_with(&url, &[("X-API-Key", "alice")])).await;
    assert!(again.info.from_cache);
    assert_eq!(again.text(), "key=alice");
    assert_eq!(origin.hits("/me"), 3);
}

// ===== 4. Vary on an ignored header =====

/// `Vary: X-API-Key` (or `Vary: Authorization` with `public`): the response is filed under a
/// digest of the value, not under "header absent".
#[tokio::test]
async fn vary_on_a_credential_matches_by_digest() {
    for field in ["x-api-key", "authorization"] {
        let (mut cache, clock) = shared();
        let origin = Origin::start(&clock).await;
        origin.route("/v", move |seen| {
            Reply::ok(format!("for {}", seen.header(field).unwrap_or("nobody")))
                .header("cache-control", "public, max-age=600")
                .header("vary", field)
        });
        let url = origin.url("/v");
        let alice = send(&mut cache, get_with(&url, &[(field, "alice")])).await;
        assert_eq!(alice.text(), "for alice");
        assert!(alice.info.stored, "{field}");
        let nobody = send(&mut cache, get(&url)).await;
        assert_eq!(nobody.text(), "for nobody", "{field}");
        let again = send(&mut cache, get_with(&url, &[(field, "alice")])).await;
        assert_eq!(again.text(), "for alice", "{field}");
        assert!(again.info.from_cache, "{field}: Alice herself hits");
    }
}

// ===== 5. malformed Cache-Control =====

/// A field that cannot be parsed cleanly is read in the most restrictive way.
#[tokio::test]
async fn malformed_cache_control_fails_closed() {
    let (mut cache, clock) = shared();
    let origin = Origin::start(&clock).await;
    origin.route("/obs-text", |_| {
        Reply::ok("secret").raw_header("cache-control", b"no-store, private, ext=\"caf\xe9\"")
    });
    origin.route("/unterminated", |_| {
        Reply::ok("secret").header("cache-control", "max-age=600, ext=\"abc, no-store")
    });
    for path in ["/obs-text", "/unterminated"] {
        let first = send(&mut cache, get(&origin.url(path))).await;
        assert!(!first.info.stored, "{path}: {:?}", first.info);
        let second = send(&mut cache, get(&origin.url(path))).await;
        assert!(!second.info.from_cache, "{path}");
        assert_eq!(origin.hits(path), 2, "{path}");
    }
}

// ===== 6. duplicate query parameters =====

/// `?a=evil&a=good` and `?a=good&a=evil` are different requests: frameworks read the first.
#[tokio::test]
async fn parameters_of_one_name_keep_their_order_in_the_key() {
    let (mut cache, clock) = shared();
    let origin = Origin::start(&clock).await;
    origin.route("/search", |seen| {
        Reply::ok(seen.target.clone()).header("cache-control", "public, max-age=600")
    });
    let evil = send(&mut cache, get(&origin.url("/search?a=evil&a=good"))).await;
    assert!(evil.info.stored);
    let good = send(&mut cache, get(&origin.url("/search?a=good&a=evil"))).await;
    assert!(!good.info.from_cache);
    assert_eq!(good.text(), "/search?a=good&a=evil");
    // Parameters of different names are still sorted.
    let sorted = send(&mut cache, get(&origin.url("/search?b=1&a=x"))).await;
    assert!(sorted.info.stored);
    let same = send(&mut cache, get(&origin.url("/search?a=x&b=1"))).await;
    assert!(same.info.from_cache);
}

// ===== 7. the key and the bytes the origin receives =====

/// A cacheable 404 for `/raw/%62` is not served for `/raw/b`: the origin received other bytes.
#[tokio::test]
async fn targets_that_reach_the_origin_as_different_bytes_do_not_share_a_key() {
    let (mut cache, clock) = shared();
    let origin = Origin::start(&clock).await;
    origin.route("/raw/%62", |_| {
        Reply::status(404)
            .body("not found")
            .header("cache-control", "public, max-age=600")
    });
    origin.route("/raw/b", |_| {
        Reply::ok("b").header("cache-control", "public, max-age=600")
    });
    let encoded = send(&mut cache, get(&origin.url("/raw/%62"))).await;
    assert_eq!(encoded.status, 404);
    assert!(encoded.info.stored);
    let plain = send(&mut cache, get(&origin.url("/raw/b"))).await;
    assert_eq!(plain.status, 200);
    assert_eq!(plain.text(), "b");
    let encoded_again = send(&mut cache, get(&origin.url("/raw/%62"))).await;
    assert!(encoded_again.info.from_cache);
    assert_eq!(encoded_again.status, 404);
}

// ===== 8. Set-Cookie =====

/// A response with `Set-Cookie` is not stored by a shared cache: user 2 never gets user 1's
/// session id.
#[tokio::test]
async fn set_cookie_responses_are_not_stored_by_default() {
    let (mut cache, clock) = shared();
    let origin = Origin::start(&clock).await;
    let count = Arc::new(AtomicUsize::new(0));
    origin.route("/login", move |_| {
        let n = count.fetch_add(1, Ordering::SeqCst);
        Reply::ok("welcome")
            .header("cache-control", "public, max-age=600")
            .header("set-cookie", format!("session=USER{n}"))
    });
    let first = send(&mut cache, get(&origin.url("/login"))).await;
    assert_eq!(first.header("set-cookie"), Some("session=USER0"));
    assert!(!first.info.stored);
    let second = send(&mut cache, get(&origin.url("/login"))).await;
    assert_eq!(second.header("set-cookie"), Some("session=USER1"));
    assert_eq!(origin.hits("/login"), 2);
}

/// `set_cookie: StoredWithout` stores the response without its cookie; the requester still
/// gets it.
#[tokio::test]
async fn set_cookie_responses_can_be_stored_without_the_cookie() {
    let (mut cache, clock) = cached_client(CacheSettings {
        set_cookie: SetCookie::StoredWithout,
        ..CacheSettings::shared()
    });
    let origin = Origin::start(&clock).await;
    origin.route("/login", |_| {
        Reply::ok("welcome")
            .header("cache-control", "public, max-age=600")
            .header("set-cookie", "session=USER0")
    });
    let first = send(&mut cache, get(&origin.url("/login"))).await;
    assert_eq!(first.header("set-cookie"), Some("session=USER0"));
    assert!(first.info.stored);
    let second = send(&mut cache, get(&origin.url("/login"))).await;
    assert!(second.info.from_cache);
    assert_eq!(second.header("set-cookie"), None);
}

// ===== 9. Cookie and heuristic freshness =====

/// A response to a request with `Cookie` is stored only with explicit freshness from the origin
/// (or a URL rule); heuristics and `expire_after` do not make it shared.
#[tokio::test]
async fn cookie_requests_need_explicit_freshness() {
    let (layer, clock) = cache(CacheSettings {
        expire_after: Some(ExpireAfter::After(Duration::from_secs(600))),
        ..CacheSettings::shared()
    });
    let mut service = layer.layer(client());
    let origin = Origin::start(&clock).await;
    let old = http_date(clock.now() - Duration::from_secs(100 * 86_400));
    let last_modified = old.clone();
    origin.route("/account/x.css", move |seen| {
        Reply::ok(format!("css for {}", seen.header("cookie").unwrap_or("-")))
            .header("last-modified", &last_modified)
    });
    origin.route("/explicit.css", |seen| {
        Reply::ok(format!("css for {}", seen.header("cookie").unwrap_or("-")))
            .header("cache-control", "max-age=600")
    });
    let url = origin.url("/account/x.css");
    let with_cookie = send(&mut service, get_with(&url, &[("cookie", "s=USER1")])).await;
    assert!(!with_cookie.info.stored, "{:?}", with_cookie.info);
    let other = send(&mut service, get(&url)).await;
    assert_eq!(other.text(), "css for -");
    assert!(other.info.stored, "without a cookie the heuristic applies");
    let explicit = send(
        &mut service,
        get_with(&origin.url("/explicit.css"), &[("cookie", "s=USER1")]),
    )
    .await;
    assert!(explicit.info.stored, "explicit freshness from the origin");

    // A URL rule is the operator's explicit word.
    let (layer, clock) = cache(
        CacheSettings::shared()
            .url_expire_after("*/account/*", ExpireAfter::After(Duration::from_secs(60)))
            .unwrap(),
    );
    let mut ruled = layer.layer(client());
    let origin = Origin::start(&clock).await;
    origin.route("/account/x.css", move |_| {
        Reply::ok("css").header("last-modified", &old)
    });
    let got = send(
        &mut ruled,
        get_with(&origin.url("/account/x.css"), &[("cookie", "s=1")]),
    )
    .await;
    assert!(got.info.stored, "{:?}", got.info);
}

// ===== 10. client directives and the origin shield =====

/// Concurrent `no-cache` requests for one key share one origin request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_no_cache_requests_share_one_origin_request() {
    let (cache, clock) = shared();
    let origin = Origin::start(&clock).await;
    origin.route("/hot", |_| {
        Reply::ok("hot")
            .header("cache-control", "public, max-age=60")
            .delayed(Duration::from_millis(300))
    });
    let url = origin.url("/hot");
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let mut cache = cache.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            send(&mut cache, get_with(&url, &[("cache-control", "no-cache")])).await
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().text(), "hot");
    }
    let hits = origin.hits("/hot");
    assert!(
        hits <= 2,
        "50 concurrent no-cache requests made {hits} origin requests"
    );
}

/// With `ignore_request_cache_control`, a client's `no-cache` / `Pragma: no-cache` / `max-age=0`
/// does not reach the origin; `no-store` still keeps its response out of the cache.
#[tokio::test]
async fn request_cache_control_can_be_ignored() {
    let (mut cache, clock) = cached_client(CacheSettings {
        ignore_request_cache_control: true,
        ..CacheSettings::shared()
    });
    let origin = Origin::start(&clock).await;
    origin.route("/shielded", |_| {
        Reply::ok("x").header("cache-control", "public, max-age=60")
    });
    let url = origin.url("/shielded");
    send(&mut cache, get(&url)).await;
    for (name, value) in [
        ("cache-control", "no-cache"),
        ("pragma", "no-cache"),
        ("cache-control", "max-age=0"),
    ] {
        let got = send(&mut cache, get_with(&url, &[(name, value)])).await;
        assert_eq!(got.info.outcome, CacheOutcome::Hit, "{name}: {value}");
    }
    assert_eq!(origin.hits("/shielded"), 1);
    origin.route("/other", |_| {
        Reply::ok("y").header("cache-control", "public, max-age=60")
    });
    let no_store = send(
        &mut cache,
        get_with(&origin.url("/other"), &[("cache-control", "no-store")]),
    )
    .await;
    assert!(!no_store.info.stored);
}

// ===== 11. Host =====

/// A cache in front of the origin that receives requests as a server does (origin form, the
/// authority in `Host`), forwarding them to `origin`.
fn server_side(
    settings: CacheSettings,
    origin: &Origin,
) -> (
    impl tower::Service<
        Request<Full<Bytes>>,
        Response = http::Response<cachelayer::CacheBody<hyper::body::Incoming>>,
        Error = hyper_util::client::legacy::Error,
    > + Clone,
    cachelayer::ManualClock,
) {
    let (layer, clock) = cache(settings);
    let addr = origin.addr();
    let service = ServiceBuilder::new()
        .layer(layer)
        .map_request(move |mut request: Request<Full<Bytes>>| {
            let target = request
                .uri()
                .path_and_query()
                .map_or("/", |pq| pq.as_str())
                .to_owned();
            *request.uri_mut() = format!("http://{addr}{target}").parse().unwrap();
            request
        })
        .service(client());
    (service, clock)
}

/// A `Host` that is not a valid authority (`victim/b`, `evil@victim`) or comes twice is never
/// spliced into a key: the request is passed through, and `/c` with `Host: victim/b` never gets
/// what `/b/c` on `victim` stored.
#[tokio::test]
async fn an_invalid_host_is_a_bypass_never_a_key() {
    let clock = cachelayer::ManualClock::starting_now();
    let origin = Origin::start(&clock).await;
    origin.route("/b/c", |_| {
        Reply::ok("b/c on victim").header("cache-control", "public, max-age=600")
    });
    origin.route("/c", |_| {
        Reply::ok("c").header("cache-control", "public, max-age=600")
    });
    let (service, _clock) = server_side(CacheSettings::shared(), &origin);
    let mut service = service;
    let stored = send(&mut service, get_with("/b/c", &[("host", "victim")])).await;
    assert!(stored.info.stored);
    for host in ["victim/b", "evil@victim", "victim?b"] {
        let got = send(&mut service, get_with("/c", &[("host", host)])).await;
        assert_eq!(got.info.outcome, CacheOutcome::Bypass, "Host: {host}");
        assert_eq!(got.text(), "c", "Host: {host}");
    }
    let mut two = get("/b/c");
    two.headers_mut()
        .append("host", http::HeaderValue::from_static("victim"));
    two.headers_mut()
        .append("host", http::HeaderValue::from_static("other"));
    let got = (&mut service).oneshot(two).await.unwrap();
    assert_eq!(
        got.extensions()
            .get::<cachelayer::CacheInfo>()
            .unwrap()
            .outcome,
        CacheOutcome::Bypass,
        "two Host lines"
    );
    let valid = send(&mut service, get_with("/b/c", &[("host", "VICTIM")])).await;
    assert!(valid.info.from_cache, "a valid Host still hits");
}
