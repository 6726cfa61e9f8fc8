//! Removing responses (requests-cache's "Removing Responses"), and inspecting what is stored,
//! through [`cachelayer::Cache`] against a real origin: every test counts the origin's hits to
//! show that what was removed is fetched again and what was kept is not.
//!
//! | requests-cache | here |
//! |---|---|
//! | `session.cache.clear()` | `clear_removes_every_response` |
//! | `delete(expired=True)` | `delete_expired_removes_stale_responses_only` |
//! | `delete(older_than=timedelta(days=7))` | `delete_older_than_removes_responses_received_before_the_cutoff` |
//! | `delete(urls=[...])` | `delete_urls_normalizes_the_urls_and_ignores_the_method` |
//! | `delete(requests=[request_1, request_2])` | `delete_requests_keys_each_request_as_the_cache_does` |
//! | `delete('e25f7e6326966e82')` | `delete_keys_from_cache_info_from_entries_and_from_text` |
//! | `reset_expiration(timedelta(days=30))` | `reset_expiration_*` |
//! | `contains(...)` | `contains_key_url_and_request` |
//! | `filter()`, `urls()`, `len()` | `entries_urls_len_and_size_bytes_describe_the_store`, `delete_with_a_custom_filter` |
//! | one backend, several sessions | `layers_sharing_one_store_see_each_others_entries_and_deletions` |

#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use cachelayer::store::{StoreFuture, StoredResponse};
use cachelayer::{
    Cache, CacheKey, CacheLayer, CacheOutcome, CacheService, CacheSettings, EXPIRE_IMMEDIATELY,
    EntryFilter, MatchHeaders, MemoryStore, NEVER_EXPIRE, Store, StoreError,
};
use common::{Client, Origin, Reply, Seen, client, get, get_with, send};
use http::{HeaderName, Method, StatusCode};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::Layer;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// A cache around a real client, its [`Cache`] handle, its clock and an origin on that clock.
async fn setup(
    settings: CacheSettings,
) -> (CacheService<Client>, Cache, cachelayer::ManualClock, Origin) {
    let (layer, clock) = common::cache(settings);
    let cache = layer.cache();
    let service = layer.layer(client());
    let origin = Origin::start(&clock).await;
    (service, cache, clock, origin)
}

/// A handler that numbers its responses (`"{body} #n"`) and adds `headers`.
fn numbered(
    body: &'static str,
    headers: &'static [(&'static str, &'static str)],
) -> impl Fn(&Seen) -> Reply + Send + Sync + 'static {
    let served = AtomicUsize::new(0);
    move |_| {
        let n = served.fetch_add(1, Ordering::SeqCst);
        let mut reply = Reply::ok(format!("{body} #{n}"));
        for (name, value) in headers {
            reply = reply.header(name, value);
        }
        reply
    }
}

/// A handler with an `ETag` that answers a matching `If-None-Match` with 304.
fn with_etag(max_age: &'static str) -> impl Fn(&Seen) -> Reply + Send + Sync + 'static {
    let served = AtomicUsize::new(0);
    move |seen| {
        if seen.header("if-none-match") == Some("\"v1\"") {
            return Reply::not_modified()
                .header("etag", "\"v1\"")
                .header("cache-control", max_age);
        }
        let n = served.fetch_add(1, Ordering::SeqCst);
        Reply::ok(format!("etag #{n}"))
            .header("etag", "\"v1\"")
            .header("cache-control", max_age)
    }
}

const ONE_MINUTE: &[(&str, &str)] = &[("cache-control", "max-age=60")];

#[tokio::test]
async fn clear_removes_every_response() {
    // requests-cache: session.cache.clear()
    let (mut service, cache, _clock, origin) = setup(CacheSettings::default()).await;
    for path in ["/a", "/b", "/c"] {
        origin.route(path, numbered(path, ONE_MINUTE));
        send(&mut service, get(&origin.url(path))).await;
        assert_eq!(
            send(&mut service, get(&origin.url(path)))
                .await
                .info
                .outcome,
            CacheOutcome::Hit
        );
    }
    assert_eq!(cache.len().await.unwrap(), 3);

    cache.clear().await.unwrap();
    assert_eq!(cache.len().await.unwrap(), 0);
    assert!(cache.is_empty().await.unwrap());
    assert!(cache.entries().await.unwrap().is_empty());
    for path in ["/a", "/b", "/c"] {
        let again = send(&mut service, get(&origin.url(path))).await;
        assert_eq!(again.info.outcome, CacheOutcome::Miss, "{path}");
        assert!(again.text().ends_with("#1"), "{path}: {}", again.text());
        assert_eq!(origin.hits(path), 2, "{path}");
    }
}

#[tokio::test]
async fn delete_expired_removes_stale_responses_only() {
    // requests-cache: session.cache.delete(expired=True)
    let (mut service, cache, clock, origin) = setup(CacheSettings::default()).await;
    // Stale after 10 s, but kept by the store (it has a validator): what delete_expired is for.
    origin.route("/short", with_etag("max-age=10"));
    origin.route(
        "/long",
        numbered("long", &[("cache-control", "max-age=3600")]),
    );
    let short = origin.url("/short");
    let long = origin.url("/long");
    send(&mut service, get(&short)).await;
    send(&mut service, get(&long)).await;

    clock.advance(Duration::from_secs(9));
    assert_eq!(
        cache.delete_expired().await.unwrap(),
        0,
        "nothing stale yet"
    );

    clock.advance(Duration::from_secs(51));
    let stale: Vec<_> = cache
        .entries()
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.is_expired(clock_now(&clock)))
        .collect();
    assert_eq!(stale.len(), 1);
    assert!(stale[0].url.ends_with("/short"));
    assert_eq!(cache.delete_expired().await.unwrap(), 1);
    assert_eq!(cache.len().await.unwrap(), 1);

    // Removed, not revalidated: the next request is a plain miss, without If-None-Match.
    let again = send(&mut service, get(&short)).await;
    assert_eq!(again.info.outcome, CacheOutcome::Miss);
    assert_eq!(origin.last_request("/short").header("if-none-match"), None);
    assert_eq!(origin.hits("/short"), 2);
    // The fresh one stays.
    let hit = send(&mut service, get(&long)).await;
    assert_eq!(hit.info.outcome, CacheOutcome::Hit);
    assert_eq!(origin.hits("/long"), 1);
}

fn clock_now(clock: &cachelayer::ManualClock) -> std::time::SystemTime {
    use cachelayer::Clock;
    clock.now()
}

#[tokio::test]
async fn delete_older_than_removes_responses_received_before_the_cutoff() {
    // requests-cache: session.cache.delete(older_than=timedelta(days=7))
    let (mut service, cache, clock, origin) = setup(CacheSettings::default()).await;
    let thirty_days = &[("cache-control", "max-age=2592000")];
    origin.route("/old", numbered("old", thirty_days));
    origin.route("/new", numbered("new", thirty_days));
    send(&mut service, get(&origin.url("/old"))).await;
    clock.advance(8 * DAY);
    send(&mut service, get(&origin.url("/new"))).await;

    assert_eq!(cache.delete_older_than(9 * DAY).await.unwrap(), 0);
    assert_eq!(cache.delete_older_than(7 * DAY).await.unwrap(), 1);
    let urls = cache.urls().await.unwrap();
    assert_eq!(urls, [origin.url("/new")]);

    assert_eq!(
        send(&mut service, get(&origin.url("/old")))
            .await
            .info
            .outcome,
        CacheOutcome::Miss
    );
    assert_eq!(origin.hits("/old"), 2);
    assert_eq!(
        send(&mut service, get(&origin.url("/new")))
            .await
            .info
            .outcome,
        CacheOutcome::Hit
    );
    assert_eq!(origin.hits("/new"), 1);
}

#[tokio::test]
async fn delete_urls_normalizes_the_urls_and_ignores_the_method() {
    // requests-cache: session.cache.delete(urls=['https://httpbin.org/json'])
    let settings = CacheSettings {
        match_headers: MatchHeaders::List(vec![HeaderName::from_static("accept")]),
        ..CacheSettings::default()
    };
    let (mut service, cache, _clock, origin) = setup(settings).await;
    for path in ["/one", "/two", "/three"] {
        origin.route(path, numbered(path, ONE_MINUTE));
    }
    send(&mut service, get(&origin.url("/one?a=2&b=1"))).await;
    // One URL, two keys (the Accept header is part of the key).
    send(&mut service, get(&origin.url("/two"))).await;
    send(
        &mut service,
        get_with(&origin.url("/two"), &[("accept", "text/html")]),
    )
    .await;
    send(&mut service, get(&origin.url("/three"))).await;
    assert_eq!(cache.len().await.unwrap(), 4);
    assert_eq!(
        cache.urls().await.unwrap(),
        [
            origin.url("/one?a=2&b=1"),
            origin.url("/three"),
            origin.url("/two")
        ],
        "sorted, each once"
    );

    // Upper-case scheme, parameters out of order, an ignored credential parameter.
    let messy = format!("HTTP://{}/one?b=1&api_key=secret&a=2", origin.addr());
    assert_eq!(cache.delete_urls([messy]).await.unwrap(), 1);
    assert_eq!(
        cache
            .delete_urls(["not a url", "http://elsewhere.test/one"])
            .await
            .unwrap(),
        0
    );
    // Both keys of /two.
    assert_eq!(cache.delete_urls([origin.url("/two")]).await.unwrap(), 2);
    assert_eq!(cache.urls().await.unwrap(), [origin.url("/three")]);

    send(&mut service, get(&origin.url("/one?a=2&b=1"))).await;
    send(&mut service, get(&origin.url("/two"))).await;
    send(&mut service, get(&origin.url("/three"))).await;
    assert_eq!(origin.hits("/one"), 2, "deleted: fetched again");
    assert_eq!(origin.hits("/two"), 3, "deleted: fetched again");
    assert_eq!(origin.hits("/three"), 1, "kept");
}

#[tokio::test]
async fn delete_requests_keys_each_request_as_the_cache_does() {
    // requests-cache:
    //   request_1 = Request('GET', 'https://httpbin.org/get', params={'key': 'value'})
    //   request_2 = Request('GET', 'https://httpbin.org/get', headers={'header': 'value'})
    //   session.cache.delete(requests=[request_1, request_2])
    let settings = CacheSettings {
        match_headers: MatchHeaders::List(vec![HeaderName::from_static("header")]),
        ..CacheSettings::default()
    };
    let (mut service, cache, _clock, origin) = setup(settings).await;
    origin.route("/get", numbered("get", ONE_MINUTE));
    let plain = origin.url("/get");
    let with_params = origin.url("/get?key=value");
    send(&mut service, get(&plain)).await;
    send(&mut service, get(&with_params)).await;
    send(&mut service, get_with(&plain, &[("header", "value")])).await;
    assert_eq!(origin.hits("/get"), 3, "three keys");
    assert_eq!(cache.len().await.unwrap(), 3);

    let request_1 = http::Request::get(&with_params).body(()).unwrap();
    let request_2 = http::Request::get(&plain)
        .header("header", "value")
        .body(())
        .unwrap();
    assert!(cache.contains_request(&request_1).await.unwrap());
    assert_eq!(
        cache
            .delete_requests([&request_1, &request_2])
            .await
            .unwrap(),
        2
    );
    assert!(!cache.contains_request(&request_1).await.unwrap());
    assert!(!cache.contains_request(&request_2).await.unwrap());

    assert_eq!(
        send(&mut service, get(&plain)).await.info.outcome,
        CacheOutcome::Hit,
        "the request without the header is another key: kept"
    );
    assert_eq!(origin.hits("/get"), 3);
    assert_eq!(
        send(&mut service, get(&with_params)).await.info.outcome,
        CacheOutcome::Miss
    );
    assert_eq!(
        send(&mut service, get_with(&plain, &[("header", "value")]))
            .await
            .info
            .outcome,
        CacheOutcome::Miss
    );
    assert_eq!(origin.hits("/get"), 5);
}

#[tokio::test]
async fn delete_requests_removes_the_variant_the_request_selects() {
    let (mut service, cache, _clock, origin) = setup(CacheSettings::default()).await;
    origin.route("/vary", |seen: &Seen| {
        let language = seen.header("accept-language").unwrap_or("none").to_owned();
        Reply::ok(format!("in {language}"))
            .header("cache-control", "max-age=60")
            .header("vary", "accept-language")
    });
    let url = origin.url("/vary");
    let en = || get_with(&url, &[("accept-language", "en")]);
    let fr = || get_with(&url, &[("accept-language", "fr")]);
    send(&mut service, en()).await;
    send(&mut service, fr()).await;
    assert_eq!(send(&mut service, en()).await.text(), "in en");
    assert_eq!(send(&mut service, fr()).await.text(), "in fr");
    assert_eq!(origin.hits("/vary"), 2);

    let en_request = http::Request::get(&url)
        .header("accept-language", "en")
        .body(())
        .unwrap();
    let de_request = http::Request::get(&url)
        .header("accept-language", "de")
        .body(())
        .unwrap();
    assert!(cache.contains_request(&en_request).await.unwrap());
    assert!(!cache.contains_request(&de_request).await.unwrap());
    assert!(cache.delete_requests([&en_request]).await.unwrap() >= 1);
    assert!(!cache.contains_request(&en_request).await.unwrap());

    let en_again = send(&mut service, en()).await;
    assert!(!en_again.info.from_cache, "{:?}", en_again.info);
    assert_eq!(origin.hits("/vary"), 3);
    let fr_again = send(&mut service, fr()).await;
    assert_eq!(fr_again.text(), "in fr");
    assert!(fr_again.info.from_cache, "the other variant stays");
    assert_eq!(origin.hits("/vary"), 3);
}

#[tokio::test]
async fn delete_keys_from_cache_info_from_entries_and_from_text() {
    // requests-cache: session.cache.delete('e25f7e6326966e82')
    let (mut service, cache, _clock, origin) = setup(CacheSettings::default()).await;
    for path in ["/a", "/b", "/c", "/d"] {
        origin.route(path, numbered(path, ONE_MINUTE));
    }
    let a = send(&mut service, get(&origin.url("/a"))).await;
    send(&mut service, get(&origin.url("/b"))).await;
    let c = send(&mut service, get(&origin.url("/c"))).await;
    send(&mut service, get(&origin.url("/d"))).await;

    // The key the response reported.
    let key_a = a.info.cache_key.clone().unwrap();
    assert!(cache.contains_key(&key_a).await.unwrap());
    assert_eq!(cache.delete_keys([key_a.clone()]).await.unwrap(), 1);
    assert!(!cache.contains_key(&key_a).await.unwrap());
    assert_eq!(cache.delete_keys([key_a]).await.unwrap(), 0, "already gone");

    // A key from the listing.
    let b = cache
        .entries()
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.url.ends_with("/b"))
        .unwrap();
    assert_eq!(cache.delete_keys([b.key]).await.unwrap(), 1);

    // A key as text (from a Cache-Status header or a log line).
    let text = c.info.cache_key.clone().unwrap().to_string();
    assert_eq!(text.len(), 32);
    assert!(c.cache_status().contains(&text), "{}", c.cache_status());
    let parsed: CacheKey = text.parse().unwrap();
    assert_eq!(cache.delete_keys([parsed]).await.unwrap(), 1);

    for path in ["/a", "/b", "/c", "/d"] {
        send(&mut service, get(&origin.url(path))).await;
    }
    assert_eq!(origin.hits("/a"), 2);
    assert_eq!(origin.hits("/b"), 2);
    assert_eq!(origin.hits("/c"), 2);
    assert_eq!(origin.hits("/d"), 1, "kept");
}

#[tokio::test]
async fn reset_expiration_never_makes_an_expired_response_fresh_again() {
    // requests-cache: session.cache.reset_expiration(NEVER_EXPIRE)
    let (mut service, cache, clock, origin) = setup(CacheSettings::default()).await;
    origin.route("/etag", with_etag("max-age=10"));
    let url = origin.url("/etag");
    send(&mut service, get(&url)).await;
    clock.advance(Duration::from_secs(60));
    assert!(cache.entries().await.unwrap()[0].is_expired(clock_now(&clock)));

    assert_eq!(cache.reset_expiration(NEVER_EXPIRE).await.unwrap(), 1);
    let entry = &cache.entries().await.unwrap()[0];
    assert_eq!(entry.expires, None);

    clock.advance(365 * DAY);
    let hit = send(&mut service, get(&url)).await;
    assert_eq!(hit.info.outcome, CacheOutcome::Hit, "{:?}", hit.info);
    assert_eq!(hit.text(), "etag #0");
    assert_eq!(origin.hits("/etag"), 1, "no revalidation");
}

#[tokio::test]
async fn reset_expiration_to_thirty_days_from_now() {
    // requests-cache: session.cache.reset_expiration(timedelta(days=30))
    let (mut service, cache, clock, origin) = setup(CacheSettings::default()).await;
    origin.route("/etag", with_etag("max-age=10"));
    origin.route("/plain", numbered("plain", ONE_MINUTE));
    send(&mut service, get(&origin.url("/etag"))).await;
    send(&mut service, get(&origin.url("/plain"))).await;
    clock.advance(Duration::from_secs(30));

    assert_eq!(cache.reset_expiration(30 * DAY).await.unwrap(), 2);
    let now = clock_now(&clock);
    for entry in cache.entries().await.unwrap() {
        assert_eq!(entry.expires, Some(now + 30 * DAY), "{}", entry.url);
    }
    clock.advance(29 * DAY);
    for path in ["/etag", "/plain"] {
        let hit = send(&mut service, get(&origin.url(path))).await;
        assert_eq!(hit.info.outcome, CacheOutcome::Hit, "{path}");
        assert_eq!(origin.hits(path), 1, "{path}");
    }
    clock.advance(2 * DAY);
    assert_eq!(
        cache.delete_expired().await.unwrap(),
        1,
        "/etag, kept stale"
    );
    assert!(
        cache.is_empty().await.unwrap(),
        "/plain, without a validator, was past its retention once stale: gone, not counted"
    );
}

#[tokio::test]
async fn reset_expiration_immediately_forces_revalidation() {
    // requests-cache: session.cache.reset_expiration(EXPIRE_IMMEDIATELY)
    let (mut service, cache, _clock, origin) = setup(CacheSettings::default()).await;
    origin.route("/etag", with_etag("max-age=3600"));
    origin.route(
        "/plain",
        numbered("plain", &[("cache-control", "max-age=3600")]),
    );
    let etag = origin.url("/etag");
    let plain = origin.url("/plain");
    send(&mut service, get(&etag)).await;
    send(&mut service, get(&plain)).await;
    assert_eq!(
        send(&mut service, get(&etag)).await.info.outcome,
        CacheOutcome::Hit
    );

    assert_eq!(cache.reset_expiration(EXPIRE_IMMEDIATELY).await.unwrap(), 2);
    let mut urls = cache.urls().await.unwrap();
    urls.sort();
    let mut both = vec![etag.clone(), plain.clone()];
    both.sort();
    assert_eq!(
        urls, both,
        "both kept, expired (for stale_retention, as requests-cache keeps them)"
    );

    let revalidated = send(&mut service, get(&etag)).await;
    assert_eq!(revalidated.info.outcome, CacheOutcome::Revalidated);
    assert_eq!(revalidated.text(), "etag #0");
    assert_eq!(
        origin.last_request("/etag").header("if-none-match"),
        Some("\"v1\"")
    );
    assert_eq!(origin.hits("/etag"), 2);
    // Freshened by the 304 with its max-age: a hit again.
    assert_eq!(
        send(&mut service, get(&etag)).await.info.outcome,
        CacheOutcome::Hit
    );
    assert_eq!(origin.hits("/etag"), 2);

    let refetched = send(&mut service, get(&plain)).await;
    assert_eq!(
        refetched.info.outcome,
        CacheOutcome::Refreshed,
        "stale without a validator: fetched again"
    );
    assert_eq!(refetched.text(), "plain #1");
}

#[tokio::test]
async fn reset_expiration_do_not_cache_removes_everything() {
    let (mut service, cache, _clock, origin) = setup(CacheSettings::default()).await;
    origin.route("/a", numbered("a", ONE_MINUTE));
    send(&mut service, get(&origin.url("/a"))).await;
    assert_eq!(
        cache
            .reset_expiration(cachelayer::DO_NOT_CACHE)
            .await
            .unwrap(),
        1
    );
    assert!(cache.is_empty().await.unwrap());
    send(&mut service, get(&origin.url("/a"))).await;
    assert_eq!(origin.hits("/a"), 2);
}

#[tokio::test]
async fn contains_key_url_and_request() {
    // requests-cache: session.cache.contains(key=...), contains(url=...), contains(request=...)
    let (mut service, cache, _clock, origin) = setup(CacheSettings::default()).await;
    origin.route("/here", numbered("here", ONE_MINUTE));
    let got = send(&mut service, get(&origin.url("/here?x=1&a=0"))).await;
    let key = got.info.cache_key.clone().unwrap();

    assert!(cache.contains_key(&key).await.unwrap());
    assert!(
        cache
            .contains_url(format!("HTTP://{}/here?a=0&x=1#top", origin.addr()))
            .await
            .unwrap()
    );
    assert!(!cache.contains_url(origin.url("/here")).await.unwrap());
    assert!(!cache.contains_url(origin.url("/elsewhere")).await.unwrap());
    assert!(!cache.contains_url("not a url").await.unwrap());
    let request = http::Request::get(origin.url("/here?a=0&x=1"))
        .body(())
        .unwrap();
    assert_eq!(cache.create_key(&request), key);
    assert!(cache.contains_request(&request).await.unwrap());
    let head = http::Request::head(origin.url("/here?a=0&x=1"))
        .body(())
        .unwrap();
    assert_eq!(
        cache.create_key(&head),
        key,
        "HEAD is answered from the GET"
    );
    assert!(cache.contains_request(&head).await.unwrap());
    let other = http::Request::get(origin.url("/here?a=0&x=2"))
        .body(())
        .unwrap();
    assert!(!cache.contains_request(&other).await.unwrap());

    cache.delete_keys([key.clone()]).await.unwrap();
    assert!(!cache.contains_key(&key).await.unwrap());
    assert!(!cache.contains_request(&request).await.unwrap());
}

#[tokio::test]
async fn entries_urls_len_and_size_bytes_describe_the_store() {
    // requests-cache: session.cache.filter(), session.cache.urls(), len(session.cache.responses)
    let (mut service, cache, clock, origin) = setup(CacheSettings::default()).await;
    origin.route("/a", |_: &Seen| {
        Reply::ok("hello").header("cache-control", "max-age=60")
    });
    origin.route("/b", |_: &Seen| {
        Reply::ok("hi, there").header("cache-control", "max-age=60")
    });
    origin.route("/missing", |_: &Seen| {
        Reply::status(404)
            .body("not here")
            .header("cache-control", "max-age=120")
    });
    let received = clock_now(&clock);
    send(&mut service, get(&origin.url("/a"))).await;
    send(&mut service, get(&origin.url("/b"))).await;
    send(&mut service, get(&origin.url("/missing"))).await;

    let mut entries = cache.entries().await.unwrap();
    entries.sort_by(|x, y| (&x.url, x.method.as_str()).cmp(&(&y.url, y.method.as_str())));
    let summary: Vec<_> = entries
        .iter()
        .map(|e| (e.method.clone(), e.url.clone(), e.status))
        .collect();
    assert_eq!(
        summary,
        [
            (Method::GET, origin.url("/a"), StatusCode::OK),
            (Method::GET, origin.url("/b"), StatusCode::OK),
            (Method::GET, origin.url("/missing"), StatusCode::NOT_FOUND),
        ]
    );
    for entry in &entries {
        assert_eq!(entry.created_at, received, "{}", entry.url);
        assert!(!entry.is_expired(received));
        assert!(entry.size > entry.url.len(), "{}", entry.url);
    }
    // max-age counts from the origin's Date (whole seconds): the age the response arrived with
    // (under a second here) is taken off.
    let lifetime = |i: usize| {
        entries[i]
            .expires
            .unwrap()
            .duration_since(entries[i].created_at)
            .unwrap()
    };
    for (i, max_age) in [(0, 60), (1, 60), (2, 120)] {
        let max_age = Duration::from_secs(max_age);
        assert!(
            lifetime(i) <= max_age && lifetime(i) > max_age - Duration::from_secs(1),
            "{}: {:?}",
            entries[i].url,
            lifetime(i)
        );
    }
    assert_eq!(
        entries[1].size - entries[0].size,
        "hi, there".len() - "hello".len(),
        "same header fields and URL length (bodies of 5 and 9 bytes): the bodies make the difference"
    );
    let keys: HashSet<CacheKey> = cache.keys().await.unwrap().into_iter().collect();
    assert_eq!(
        keys,
        entries
            .iter()
            .map(|e| e.key.clone())
            .collect::<HashSet<_>>()
    );

    assert_eq!(
        cache.urls().await.unwrap(),
        [origin.url("/a"), origin.url("/b"), origin.url("/missing")],
        "sorted"
    );
    assert_eq!(cache.len().await.unwrap(), 3);
    assert_eq!(
        cache.size_bytes().await.unwrap(),
        entries.iter().map(|e| e.size as u64).sum::<u64>()
    );
}

#[tokio::test]
async fn delete_with_a_custom_filter() {
    // requests-cache: for r in session.cache.filter(): ... session.cache.delete(r.cache_key)
    let (mut service, cache, _clock, origin) = setup(CacheSettings::default()).await;
    origin.route("/ok", numbered("ok", ONE_MINUTE));
    origin.route("/missing", |_: &Seen| {
        Reply::status(404).header("cache-control", "max-age=60")
    });
    send(&mut service, get(&origin.url("/ok"))).await;
    send(&mut service, get(&origin.url("/missing"))).await;

    let removed = cache
        .delete(EntryFilter::custom(|e| e.status.is_client_error()))
        .await
        .unwrap();
    assert_eq!(removed, 1);
    assert_eq!(cache.urls().await.unwrap(), [origin.url("/ok")]);
    send(&mut service, get(&origin.url("/missing"))).await;
    send(&mut service, get(&origin.url("/ok"))).await;
    assert_eq!(origin.hits("/missing"), 2);
    assert_eq!(origin.hits("/ok"), 1);
}

#[tokio::test]
async fn layers_sharing_one_store_see_each_others_entries_and_deletions() {
    // requests-cache: one backend, several sessions (CachedSession(backend=backend)).
    let clock = cachelayer::ManualClock::starting_now();
    let store: Arc<dyn Store> = Arc::new(
        MemoryStore::builder()
            .clock(Arc::new(clock.clone()))
            .build(),
    );
    let first = CacheLayer::with_shared_store(store.clone(), CacheSettings::default())
        .with_clock(Arc::new(clock.clone()));
    let second = CacheLayer::with_shared_store(store.clone(), CacheSettings::default())
        .with_clock(Arc::new(clock.clone()));
    let (mut first_service, first_cache) = (first.layer(client()), first.cache());
    let (mut second_service, second_cache) = (second.layer(client()), second.cache());
    let origin = Origin::start(&clock).await;
    origin.route("/shared", numbered("shared", ONE_MINUTE));
    origin.route("/other", numbered("other", ONE_MINUTE));
    let url = origin.url("/shared");

    send(&mut first_service, get(&url)).await;
    send(&mut second_service, get(&origin.url("/other"))).await;
    // Each handle lists what either layer stored.
    for cache in [&first_cache, &second_cache] {
        assert_eq!(
            cache.urls().await.unwrap(),
            [origin.url("/other"), url.clone()]
        );
        assert!(cache.contains_url(&url).await.unwrap());
    }
    assert_eq!(
        send(&mut second_service, get(&url)).await.info.outcome,
        CacheOutcome::Hit,
        "stored through the first layer, served through the second"
    );
    assert_eq!(origin.hits("/shared"), 1);

    // A deletion through one handle is seen by the other layer.
    assert_eq!(second_cache.delete_urls([&url]).await.unwrap(), 1);
    assert!(!first_cache.contains_url(&url).await.unwrap());
    assert_eq!(
        send(&mut first_service, get(&url)).await.info.outcome,
        CacheOutcome::Miss
    );
    assert_eq!(origin.hits("/shared"), 2);
    first_cache.clear().await.unwrap();
    assert!(second_cache.is_empty().await.unwrap());
    assert!(Cache::new(store).is_empty().await.unwrap());
}

/// A memory store in which some records are unreadable: `get` fails with a decode error for
/// them, as a serializing store does for a record of another format version.
#[derive(Debug)]
struct CorruptingStore {
    inner: MemoryStore,
    corrupt: Mutex<HashSet<CacheKey>>,
}

impl Store for CorruptingStore {
    fn get(&self, key: &CacheKey) -> StoreFuture<Option<Arc<StoredResponse>>> {
        if self.corrupt.lock().unwrap().contains(key) {
            return Box::pin(async { Err(StoreError::decode("unknown format version")) });
        }
        self.inner.get(key)
    }
    fn put(&self, key: CacheKey, entry: Arc<StoredResponse>) -> StoreFuture<()> {
        self.inner.put(key, entry)
    }
    fn remove(&self, key: &CacheKey) -> StoreFuture<bool> {
        self.corrupt.lock().unwrap().remove(key);
        self.inner.remove(key)
    }
    fn clear(&self) -> StoreFuture<()> {
        self.inner.clear()
    }
    fn keys(&self) -> StoreFuture<Vec<CacheKey>> {
        self.inner.keys()
    }
}

#[tokio::test]
async fn delete_invalid_removes_unreadable_records() {
    // requests-cache: session.cache.delete(invalid=True)
    let store = Arc::new(CorruptingStore {
        inner: MemoryStore::new(),
        corrupt: Mutex::default(),
    });
    let layer = CacheLayer::with_shared_store(store.clone(), CacheSettings::default());
    let cache = layer.cache();
    let mut service = layer.layer(client());
    let clock = cachelayer::ManualClock::starting_now();
    let origin = Origin::start(&clock).await;
    for path in ["/good", "/bad"] {
        origin.route(path, numbered(path, ONE_MINUTE));
    }
    send(&mut service, get(&origin.url("/good"))).await;
    let bad = send(&mut service, get(&origin.url("/bad"))).await;
    store
        .corrupt
        .lock()
        .unwrap()
        .insert(bad.info.cache_key.clone().unwrap());

    assert_eq!(cache.len().await.unwrap(), 2, "listed, but unreadable");
    assert_eq!(
        cache.entries().await.unwrap().len(),
        1,
        "left out of listings"
    );
    assert_eq!(cache.delete_invalid().await.unwrap(), 1);
    assert_eq!(cache.len().await.unwrap(), 1);
    assert_eq!(cache.delete_invalid().await.unwrap(), 0);

    send(&mut service, get(&origin.url("/good"))).await;
    send(&mut service, get(&origin.url("/bad"))).await;
    assert_eq!(origin.hits("/good"), 1);
    assert_eq!(origin.hits("/bad"), 2);
    assert_eq!(
        send(&mut service, get(&origin.url("/bad"))).await.body,
        Bytes::from("/bad #1"),
        "stored again"
    );
}
