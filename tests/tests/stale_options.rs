//! requests-cache parity, "Expiration" → "Expiration and Error Handling": `stale_if_error`
//! (`True` or a maximum staleness) serves an expired stored response when the origin answers
//! with an error or cannot be reached, and `only_if_cached` combined with `stale_if_error`
//! returns expired responses.
//!
//! `stale_while_revalidate` (the seed's "Asynchronous Revalidation") is not implemented by
//! cachelayer yet, so it is not tested here.
//!
//! Time moves with a `ManualClock` set to a whole second; nothing sleeps.

#![allow(clippy::unwrap_used)]

mod common;

use common::{exact_cache, get_opts, secs};

use bytes::Bytes;
use cachelayer::{
    CacheOptions, CacheOutcome, CacheService, CacheSettings, Clock, ExpireAfter, StaleWindow,
};
use common::{Client, Origin, Reply, client, get, send, try_send};
use http::Request;
use http_body_util::Full;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// Answers `good` (with `headers`) the first time, then `then` (the origin "is experiencing
/// downtime").
fn first_good_then(
    origin: &Origin,
    path: &str,
    headers: &'static [(&'static str, &'static str)],
    then: Reply,
) {
    let served = AtomicUsize::new(0);
    origin.route(path, move |_| {
        if served.fetch_add(1, Ordering::SeqCst) == 0 {
            headers
                .iter()
                .fold(Reply::ok("good data"), |reply, (name, value)| {
                    reply.header(name, value)
                })
        } else {
            then.clone()
        }
    });
}

/// `expire_after=1` for one request.
fn expire_after_1s() -> CacheOptions {
    CacheOptions {
        expire_after: Some(ExpireAfter::After(secs(1))),
        ..CacheOptions::default()
    }
}

/// The seed's example, for each 5xx status:
///
/// ```python
/// >>> # Cache a test response and wait until it's expired
/// >>> session = CachedSession(stale_if_error=True)
/// >>> session.get('https://httpbin.org/get', expire_after=1)
/// >>> time.sleep(1)
/// >>> response = session.get('https://httpbin.org/get')
/// >>> print(response.from_cache, response.is_expired)
/// True, True
/// ```
#[tokio::test]
async fn stale_if_error_returns_expired_data_when_the_origin_answers_an_error() {
    // "let's say the page has moved and you get a 404, or the site is experiencing downtime
    // and you get a 500": with the `stale_if_error` setting on, a 4xx counts as an error too.
    for status in [500, 502, 503, 504, 404, 410] {
        let (layer, clock) = exact_cache(CacheSettings {
            stale_if_error: StaleWindow::Any,
            ..CacheSettings::default()
        });
        let mut session = layer.layer(client());
        let origin = Origin::start(&clock).await;
        first_good_then(&origin, "/get", &[], Reply::status(status).body("down"));
        let url = origin.url("/get");
        let t0 = clock.now();

        let first = send(&mut session, get_opts(&url, expire_after_1s())).await;
        assert!(first.info.stored, "{status}");
        assert_eq!(first.info.expires, Some(t0 + secs(1)));
        clock.advance(secs(1));

        let response = send(&mut session, get(&url)).await;
        assert_eq!(
            origin.hits("/get"),
            2,
            "{status}: the origin is tried first"
        );
        assert!(response.info.from_cache, "{status}");
        assert!(response.info.is_expired, "{status}");
        assert_eq!(
            response.info.outcome,
            CacheOutcome::StaleIfError,
            "{status}"
        );
        assert_eq!(response.status, 200, "{status}");
        assert_eq!(response.text(), "good data", "{status}");
        assert!(
            response
                .cache_status()
                .contains(&format!("fwd-status={status}")),
            "{}",
            response.cache_status()
        );

        // Without stale_if_error, the error is what the caller gets.
        layer.set_settings(CacheSettings::default());
        let error = send(&mut session, get(&url)).await;
        assert_eq!(error.status, status);
        assert_eq!(error.text(), "down");
        assert!(!error.info.from_cache);
    }
}

/// "Afterward, let's say the page has moved and you get a 404": a 404 counts as an error when
/// `allowable_codes` restricts what is cached (requests-cache treats any status it would not
/// cache as a failed refresh).
#[tokio::test]
async fn a_status_outside_allowable_codes_counts_as_an_error() {
    let (layer, clock) = exact_cache(CacheSettings {
        stale_if_error: StaleWindow::Any,
        allowable_codes: Some(vec![200]),
        ..CacheSettings::default()
    });
    let mut session = layer.layer(client());
    let origin = Origin::start(&clock).await;
    first_good_then(&origin, "/moved", &[], Reply::status(404).body("gone"));
    let url = origin.url("/moved");

    send(&mut session, get_opts(&url, expire_after_1s())).await;
    clock.advance(secs(1));
    let response = send(&mut session, get(&url)).await;
    assert_eq!(origin.hits("/moved"), 2);
    assert_eq!(response.info.outcome, CacheOutcome::StaleIfError);
    assert!(response.info.from_cache && response.info.is_expired);
    assert_eq!(response.text(), "good data");
}

/// The real hyper client, sending every request to whatever address `target` holds: the test
/// points it at a closed port to take the origin down.
#[derive(Clone)]
struct Switchable {
    client: Client,
    target: Arc<Mutex<SocketAddr>>,
}

impl Service<Request<Full<Bytes>>> for Switchable {
    type Response = <Client as Service<Request<Full<Bytes>>>>::Response;
    type Error = <Client as Service<Request<Full<Bytes>>>>::Error;
    type Future = <Client as Service<Request<Full<Bytes>>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Service::poll_ready(&mut self.client, cx)
    }

    fn call(&mut self, mut request: Request<Full<Bytes>>) -> Self::Future {
        let target = *self.target.lock().unwrap();
        let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
        *request.uri_mut() = format!("http://{target}{path}").parse().unwrap();
        Service::call(&mut self.client, request)
    }
}

/// An address nothing listens on.
fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// "In addition to HTTP error codes, stale_if_error also applies to python exceptions
/// (typically a RequestException)": here, the client's connection error when the origin is
/// down.
#[tokio::test]
async fn stale_if_error_also_applies_to_connection_errors() {
    for stale_if_error in [StaleWindow::Any, StaleWindow::Off] {
        let (layer, clock) = exact_cache(CacheSettings {
            stale_if_error,
            ..CacheSettings::default()
        });
        let origin = Origin::start(&clock).await;
        origin.route("/get", |_| {
            Reply::ok("good data").header("cache-control", "max-age=60")
        });
        let target = Arc::new(Mutex::new(origin.addr()));
        let mut session: CacheService<Switchable> = layer.layer(Switchable {
            client: client(),
            target: target.clone(),
        });
        let url = "http://api.example/get";

        assert!(send(&mut session, get(url)).await.info.stored);
        clock.advance(secs(61));
        *target.lock().unwrap() = closed_port();

        let result = try_send(&mut session, get(url)).await;
        match stale_if_error {
            StaleWindow::Any => {
                let response = result.unwrap();
                assert_eq!(response.info.outcome, CacheOutcome::StaleIfError);
                assert!(response.info.from_cache && response.info.is_expired);
                assert_eq!(response.text(), "good data");
                assert_eq!(response.age(), Some(61));
            }
            _ => {
                let error = result.unwrap_err();
                assert!(error.is_connect(), "{error:?}");
            }
        }
        assert_eq!(origin.hits("/get"), 1);
    }
}

/// ```python
/// # If there is an error on refresh, use a cached response if it expired 5 minutes ago or less
/// session = CachedSession(stale_if_error=timedelta(minutes=5))
/// ```
///
/// Checked one second inside and one second outside the window, for a response without a
/// validator and one with a validator (which the store keeps after it expires).
#[tokio::test]
async fn stale_if_error_with_a_maximum_staleness() {
    let five_minutes = secs(300);
    for validator in [false, true] {
        let (layer, clock) = exact_cache(CacheSettings {
            stale_if_error: StaleWindow::AtMost(five_minutes),
            ..CacheSettings::default()
        });
        let mut session = layer.layer(client());
        let origin = Origin::start(&clock).await;
        let headers: &'static [(&'static str, &'static str)] = if validator {
            &[("cache-control", "max-age=60"), ("etag", "\"e\"")]
        } else {
            &[("cache-control", "max-age=60")]
        };
        first_good_then(&origin, "/get", headers, Reply::status(503).body("down"));
        let url = origin.url("/get");
        send(&mut session, get(&url)).await;

        clock.advance(secs(60) + five_minutes - secs(1));
        let within = send(&mut session, get(&url)).await;
        assert_eq!(
            within.info.outcome,
            CacheOutcome::StaleIfError,
            "validator={validator}: expired 4:59 ago"
        );
        assert_eq!(within.text(), "good data");

        clock.advance(secs(2));
        let beyond = send(&mut session, get(&url)).await;
        assert_eq!(
            beyond.status, 503,
            "validator={validator}: expired 5:01 ago"
        );
        assert!(!beyond.info.from_cache);
        assert_eq!(origin.hits("/get"), 3);
    }
}

/// The settings can also come from a settings file: `"stale_if_error": true` or a duration.
#[test]
fn stale_if_error_in_a_settings_file() {
    let cases: &[(&str, StaleWindow)] = &[
        ("true", StaleWindow::Any),
        ("false", StaleWindow::Off),
        (r#""5m""#, StaleWindow::AtMost(secs(300))),
        ("300", StaleWindow::AtMost(secs(300))),
    ];
    for (value, expected) in cases {
        let settings: CacheSettings =
            serde_json::from_str(&format!(r#"{{"stale_if_error": {value}}}"#)).unwrap();
        assert_eq!(settings.stale_if_error, *expected, "{value}");
    }
    assert_eq!(StaleWindow::from(true), StaleWindow::Any);
    assert_eq!(StaleWindow::from(secs(300)), StaleWindow::AtMost(secs(300)));
}

/// ```python
/// >>> session = CachedSession(expire_after=1, stale_if_error=True)
/// >>> session.get('https://httpbin.org/get')
/// >>> time.sleep(1)
///
/// >>> # The response will be cached but expired by this point
/// >>> response = session.get('https://httpbin.org/get', only_if_cached=True)
/// >>> print(response.status_code)
/// 200
/// ```
///
/// As a request option and as a setting; without `stale_if_error` the same request gets the 504.
#[tokio::test]
async fn only_if_cached_with_stale_if_error_returns_expired_responses() {
    for as_setting in [false, true] {
        let (layer, clock) = exact_cache(
            CacheSettings {
                stale_if_error: StaleWindow::Any,
                ..CacheSettings::default()
            }
            .expire_after(secs(1)),
        );
        let mut session = layer.layer(client());
        let origin = Origin::start(&clock).await;
        origin.route("/get", |_| Reply::ok("cached data").header("etag", "\"c\""));
        let url = origin.url("/get");
        send(&mut session, get(&url)).await;
        clock.advance(secs(1));

        let offline = CacheOptions {
            only_if_cached: true,
            ..CacheOptions::default()
        };
        let request = || {
            if as_setting {
                get(&url)
            } else {
                get_opts(&url, offline)
            }
        };
        if as_setting {
            layer.set_settings(CacheSettings {
                only_if_cached: true,
                ..layer.settings()
            });
        }
        let response = send(&mut session, request()).await;
        assert_eq!(response.status, 200, "as_setting={as_setting}");
        assert_eq!(response.text(), "cached data");
        assert!(response.info.from_cache && response.info.is_expired);
        assert_eq!(response.info.outcome, CacheOutcome::StaleIfError);

        // Without stale_if_error: "If a response isn't cached or is expired, you will get a 504
        // Not Cached response instead."
        layer.set_settings(CacheSettings {
            stale_if_error: StaleWindow::Off,
            ..layer.settings()
        });
        let not_cached = send(&mut session, request()).await;
        assert_eq!(not_cached.status, 504, "as_setting={as_setting}");
        assert_eq!(not_cached.text(), "Not Cached");
        assert_eq!(not_cached.info.outcome, CacheOutcome::NotCached);

        assert_eq!(origin.hits("/get"), 1, "offline: the origin is never asked");
    }
}

/// A request can turn `stale_if_error` on or off for itself (`CacheOptions::stale_if_error`),
/// whatever the setting.
#[tokio::test]
async fn stale_if_error_per_request_overrides_the_setting() {
    for (setting, per_request, served_stale) in [
        (StaleWindow::Off, StaleWindow::Any, true),
        (StaleWindow::Any, StaleWindow::Off, false),
    ] {
        let (layer, clock) = exact_cache(CacheSettings {
            stale_if_error: setting,
            ..CacheSettings::default()
        });
        let mut session = layer.layer(client());
        let origin = Origin::start(&clock).await;
        first_good_then(
            &origin,
            "/get",
            &[("cache-control", "max-age=60"), ("etag", "\"e\"")],
            Reply::status(500).body("down"),
        );
        let url = origin.url("/get");
        send(&mut session, get(&url)).await;
        clock.advance(secs(61));

        let options = CacheOptions {
            stale_if_error: Some(per_request),
            ..CacheOptions::default()
        };
        let response = send(&mut session, get_opts(&url, options)).await;
        assert_eq!(origin.hits("/get"), 2);
        if served_stale {
            assert_eq!(response.info.outcome, CacheOutcome::StaleIfError);
            assert_eq!(response.text(), "good data");
        } else {
            assert_eq!(response.status, 500);
            assert!(!response.info.from_cache);
        }
    }
}
