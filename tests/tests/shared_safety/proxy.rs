//! The reverse proxy of `examples` (`examples::proxy`) as a shared cache in front of a real
//! origin: request header fields cannot make the proxy store, for one host, a response the origin
//! made for another, nor pass the client's own forwarding claims to the origin.
//!
//! Every test starts a real origin and a real proxy on `127.0.0.1:0` (shared settings, a memory
//! store) and talks to the proxy over TCP: raw HTTP/1 bytes, so that malformed requests (no
//! `Host`, two `Host` lines, bad `Host` values, absolute-form targets) are sent as written, or
//! hyper's HTTP/2 client.

#![allow(clippy::unwrap_used)]

use crate::common::{EXCHANGE_TIMEOUT, Origin, Reply, capture_logs};
use bytes::Bytes;
use cachelayer::{CacheSettings, ManualClock, MemoryStore};
use examples::proxy::{Proxy, ProxyConfig};
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// A proxy serving on 127.0.0.1; stopped when dropped.
struct RunningProxy {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

/// The configuration of a shared-cache proxy in front of `upstream` (`http://...`).
fn proxy_config(upstream: &str) -> ProxyConfig {
    ProxyConfig {
        access_log: false,
        shutdown_grace: Duration::from_secs(1),
        // As the reverse_proxy binary runs: connections pinned to their own threads.
        connection_threads: 2,
        ..ProxyConfig::new(
            upstream.parse().unwrap(),
            CacheSettings::shared(),
            Arc::new(MemoryStore::new()),
        )
    }
}

/// Starts a shared-cache proxy in front of `upstream` (`http://...`).
async fn start_proxy_to(upstream: &str) -> RunningProxy {
    start_proxy(proxy_config(upstream)).await
}

/// Starts a proxy configured by `config`.
async fn start_proxy(config: ProxyConfig) -> RunningProxy {
    let proxy = Proxy::new(config).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(proxy.serve(listener, async {
        let _ = stopped.await;
    }));
    RunningProxy { addr, _stop: stop }
}

/// An origin (its `Date` on a clock starting now) and a shared-cache proxy in front of it.
async fn origin_and_proxy() -> (Origin, RunningProxy) {
    let origin = Origin::start(&ManualClock::starting_now()).await;
    let proxy = start_proxy_to(&origin.url("/")).await;
    (origin, proxy)
}

/// A response as read off the connection.
#[derive(Debug)]
struct Raw {
    status: u16,
    /// Header fields, names lowercase.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
}

/// An HTTP/1 request: `request_line`, then `fields` (`Name: value`), then `Connection: close`
/// (so that the response ends with the connection).
fn raw_request(request_line: &str, fields: &[&str]) -> String {
    let mut text = format!("{request_line}\r\n");
    for field in fields {
        text.push_str(field);
        text.push_str("\r\n");
    }
    text.push_str("Connection: close\r\n\r\n");
    text
}

/// Sends `request` as written on a new connection and reads the response to the end.
async fn exchange(addr: SocketAddr, request: &str) -> Raw {
    parse_response(&exchange_bytes(addr, request).await)
}

/// Sends `requests` as written on a new connection; the bytes read until the proxy closes it.
async fn exchange_bytes(addr: SocketAddr, requests: &str) -> Vec<u8> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(requests.as_bytes()).await.unwrap();
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).await.unwrap();
        bytes
    };
    tokio::time::timeout(EXCHANGE_TIMEOUT, exchange)
        .await
        .expect("the exchange took longer than the test allows")
}

/// `GET path` with `Host: host` and extra `fields`.
async fn get(addr: SocketAddr, path: &str, host: &str, fields: &[&str]) -> Raw {
    let host = format!("Host: {host}");
    let mut all = vec![host.as_str()];
    all.extend_from_slice(fields);
    exchange(addr, &raw_request(&format!("GET {path} HTTP/1.1"), &all)).await
}

fn parse_response(bytes: &[u8]) -> Raw {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(bytes)));
    let head = std::str::from_utf8(&bytes[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|line| {
            let (name, value) = line.split_once(':').unwrap();
            (name.trim().to_ascii_lowercase(), value.trim().to_owned())
        })
        .collect();
    let rest = &bytes[end + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    Raw {
        status,
        headers,
        body,
    }
}

/// The payload of a chunked body.
fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = std::str::from_utf8(&rest[..line_end]).unwrap();
        let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16).unwrap();
        rest = &rest[line_end + 2..];
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// Routes `path` to a page whose links the origin builds from `X-Forwarded-Host` (as Django,
/// Rails and Express do behind a proxy), cacheable by shared caches for 10 minutes.
fn route_links_page(origin: &Origin, path: &str) {
    origin.route(path, |seen| {
        let host = seen.header("x-forwarded-host").unwrap_or("(none)");
        Reply::ok(format!("<a href=\"http://{host}/login\">log in</a>"))
            .header("cache-control", "public, max-age=600")
    });
}

/// Asserts a `400 Bad Request` made by the proxy itself: plain text, the cache not involved.
fn assert_bad_request(response: &Raw, case: &str) {
    assert_eq!(response.status, 400, "{case}: {response:?}");
    assert!(
        response
            .header("content-type")
            .is_some_and(|v| v.starts_with("text/plain")),
        "{case}: {response:?}"
    );
    assert_eq!(
        response.header("cache-status"),
        None,
        "{case}: {response:?}"
    );
}

#[tokio::test]
async fn a_response_made_for_one_host_is_never_served_for_another() {
    let (origin, proxy) = origin_and_proxy().await;
    route_links_page(&origin, "/page");

    let evil = get(proxy.addr, "/page", "evil.example", &[]).await;
    assert_eq!(evil.status, 200);
    assert_eq!(
        evil.text(),
        "<a href=\"http://evil.example/login\">log in</a>"
    );

    let good = get(proxy.addr, "/page", "good.example", &[]).await;
    assert_eq!(good.status, 200);
    assert_eq!(
        good.text(),
        "<a href=\"http://good.example/login\">log in</a>"
    );
    assert_eq!(origin.hits("/page"), 2, "each host has its own entry");

    // Each host's entry is still used, whatever the case of the host.
    let again = get(proxy.addr, "/page", "GOOD.example", &[]).await;
    assert_eq!(
        again.text(),
        "<a href=\"http://good.example/login\">log in</a>"
    );
    assert!(
        again.header("cache-status").unwrap().contains("hit"),
        "{again:?}"
    );
    assert_eq!(origin.hits("/page"), 2);
}

/// Reads `count` responses (each with `Content-Length`) off one connection's bytes.
fn parse_responses(mut bytes: &[u8], count: usize) -> Vec<Raw> {
    let mut responses = Vec::new();
    for _ in 0..count {
        let end = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head = parse_response(&bytes[..end]);
        let length: usize = head.header("content-length").unwrap().parse().unwrap();
        responses.push(parse_response(&bytes[..end + length]));
        bytes = &bytes[end + length..];
    }
    assert!(bytes.is_empty(), "{} bytes left", bytes.len());
    responses
}

#[tokio::test]
async fn each_request_on_a_connection_is_keyed_by_its_own_host() {
    let (origin, proxy) = origin_and_proxy().await;
    route_links_page(&origin, "/page");
    // One connection, requests written at once: the host is decided for every request, never
    // carried over from the one before.
    let hosts = [
        "evil.example",
        "good.example",
        "GOOD.example",
        "victim/b",
        "evil.example",
        "good.example",
        "a b",
        "good.example",
    ];
    let mut text = String::new();
    for (n, host) in hosts.iter().enumerate() {
        text.push_str(&format!("GET /page HTTP/1.1\r\nHost: {host}\r\n"));
        if n + 1 == hosts.len() {
            text.push_str("Connection: close\r\n");
        }
        text.push_str("\r\n");
    }
    let bytes = exchange_bytes(proxy.addr, &text).await;
    // A 400 ends the connection: the requests after the first invalid host get no answer.
    let responses = parse_responses(&bytes, 4);
    let link = |host: &str| format!("<a href=\"http://{host}/login\">log in</a>");
    assert_eq!(responses[0].text(), link("evil.example"));
    assert_eq!(responses[1].text(), link("good.example"));
    assert_eq!(responses[2].text(), link("good.example"));
    assert!(
        responses[2].header("cache-status").unwrap().contains("hit"),
        "{:?}",
        responses[2]
    );
    assert_bad_request(&responses[3], "Host: victim/b after valid hosts");
    assert_eq!(origin.hits("/page"), 2);

    // Then on another connection: a host that differs from the last one after an invalid one.
    let hosts = ["good.example", "a b"];
    let mut text = String::new();
    for host in hosts {
        text.push_str(&format!("GET /page HTTP/1.1\r\nHost: {host}\r\n\r\n"));
    }
    let bytes = exchange_bytes(proxy.addr, &text).await;
    let responses = parse_responses(&bytes, 2);
    assert_eq!(responses[0].text(), link("good.example"));
    assert_bad_request(&responses[1], "Host: \"a b\" after a valid host");
}

#[tokio::test]
async fn responses_get_one_via_and_lose_hop_by_hop_fields_missed_or_hit() {
    let (origin, proxy) = origin_and_proxy().await;
    origin.route("/hop", |_| {
        Reply::ok("hop")
            .header("cache-control", "public, max-age=600")
            .header("connection", "x-hop")
            .header("x-hop", "for this hop only")
            .header("keep-alive", "timeout=5")
    });
    for expected in ["fwd=uri-miss", "hit"] {
        let response = get(proxy.addr, "/hop", "good.example", &[]).await;
        assert_eq!(response.status, 200, "{response:?}");
        assert!(
            response.header("cache-status").unwrap().contains(expected),
            "{response:?}"
        );
        let vias: Vec<_> = response
            .headers
            .iter()
            .filter(|(name, _)| name == "via")
            .collect();
        assert_eq!(vias.len(), 1, "{response:?}");
        assert_eq!(vias[0].1, "1.1 cachelayer-proxy");
        assert_eq!(response.header("x-hop"), None, "{response:?}");
        assert_eq!(response.header("keep-alive"), None, "{response:?}");
        assert_ne!(response.header("connection"), Some("x-hop"), "{response:?}");
    }
    assert_eq!(origin.hits("/hop"), 1);
}

#[tokio::test]
async fn a_client_sent_x_forwarded_host_cannot_poison_the_entry() {
    let (origin, proxy) = origin_and_proxy().await;
    route_links_page(&origin, "/page");

    let poisoned = get(
        proxy.addr,
        "/page",
        "good.example",
        &["X-Forwarded-Host: evil.example"],
    )
    .await;
    assert_eq!(
        poisoned.text(),
        "<a href=\"http://good.example/login\">log in</a>"
    );
    assert_eq!(
        origin.last_request("/page").header("x-forwarded-host"),
        Some("good.example")
    );

    let victim = get(proxy.addr, "/page", "good.example", &[]).await;
    assert_eq!(
        victim.text(),
        "<a href=\"http://good.example/login\">log in</a>"
    );
    assert_eq!(
        origin.hits("/page"),
        1,
        "the victim got the stored response"
    );
}

#[tokio::test]
async fn client_forwarding_fields_never_reach_the_origin() {
    let (origin, proxy) = origin_and_proxy().await;
    origin.route("/x", |_| Reply::ok("x"));

    let response = get(
        proxy.addr,
        "/x",
        "good.example",
        &[
            "X-Forwarded-Host: evil.example",
            "X-Forwarded-Proto: https",
            "X-Forwarded-Prefix: /evil",
            "X-Forwarded-Port: 443",
            "X-Forwarded-Server: evil.example",
            "X-Original-URL: /admin",
            "X-Rewrite-URL: /admin",
            "X-Original-Host: evil.example",
            "X-Host: evil.example",
            "X-Real-IP: 6.6.6.6",
            "Forwarded: for=6.6.6.6;host=evil.example;proto=https",
            "X-HTTP-Method-Override: DELETE",
            "X-HTTP-Method: DELETE",
            "X-Method-Override: DELETE",
        ],
    )
    .await;
    assert_eq!(response.status, 200);

    let seen = origin.last_request("/x");
    for removed in [
        "x-forwarded-prefix",
        "x-forwarded-port",
        "x-forwarded-server",
        "x-original-url",
        "x-rewrite-url",
        "x-original-host",
        "x-host",
        "x-real-ip",
        "forwarded",
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
    ] {
        assert_eq!(seen.header(removed), None, "{removed} reached the origin");
    }
    // The fields the proxy sets replace the client's, never join them.
    assert_eq!(seen.header("x-forwarded-host"), Some("good.example"));
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
    assert_eq!(seen.headers.get_all("x-forwarded-host").iter().count(), 1);
    assert_eq!(seen.headers.get_all("x-forwarded-proto").iter().count(), 1);
    assert_eq!(seen.header("via"), Some("1.1 cachelayer-proxy"));
}

#[tokio::test]
async fn x_forwarded_for_is_the_peer_alone() {
    let (origin, proxy) = origin_and_proxy().await;
    origin.route("/x", |_| Reply::ok("x"));

    get(proxy.addr, "/x", "good.example", &[]).await;
    assert_eq!(
        origin.last_request("/x").header("x-forwarded-for"),
        Some("127.0.0.1")
    );

    get(
        proxy.addr,
        "/x",
        "good.example",
        &[
            "X-Forwarded-For: 6.6.6.6",
            "X-Forwarded-For: 10.0.0.1, 10.0.0.2",
        ],
    )
    .await;
    let seen = origin.last_request("/x");
    assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(seen.headers.get_all("x-forwarded-for").iter().count(), 1);
}

#[tokio::test]
async fn http11_without_host_is_400() {
    let (origin, proxy) = origin_and_proxy().await;
    route_links_page(&origin, "/x");

    let response = exchange(proxy.addr, &raw_request("GET /x HTTP/1.1", &[])).await;
    assert_bad_request(&response, "no Host");
    // An absolute-form target names the host, but the Host field is still required.
    let response = exchange(
        proxy.addr,
        &raw_request("GET http://good.example/x HTTP/1.1", &[]),
    )
    .await;
    assert_bad_request(&response, "absolute form, no Host");
    assert_eq!(origin.hits("/x"), 0);
}

#[tokio::test]
async fn two_host_lines_are_400() {
    let (origin, proxy) = origin_and_proxy().await;
    route_links_page(&origin, "/x");

    for (case, fields) in [
        ("two hosts", ["Host: good.example", "Host: evil.example"]),
        (
            "the same host twice",
            ["Host: good.example", "Host: good.example"],
        ),
    ] {
        let response = exchange(proxy.addr, &raw_request("GET /x HTTP/1.1", &fields)).await;
        assert_bad_request(&response, case);
    }
    let response = exchange(
        proxy.addr,
        &raw_request(
            "GET http://good.example/x HTTP/1.1",
            &["Host: good.example", "Host: evil.example"],
        ),
    )
    .await;
    assert_bad_request(&response, "absolute form, two hosts");
    assert_eq!(origin.hits("/x"), 0);
}

#[tokio::test]
async fn invalid_host_values_are_400() {
    let (origin, proxy) = origin_and_proxy().await;
    route_links_page(&origin, "/x");

    for host in [
        "victim/b",
        "a@b",
        "user:pass@good.example",
        "a b",
        "",
        "a?b",
        "a#b",
        "a\\b",
        "a,b",
        "good.example:abc",
        "good.example:99999",
        "good.example:",
        "[::1",
        "caf\u{e9}.example",
    ] {
        let response = get(proxy.addr, "/x", host, &[]).await;
        assert_bad_request(&response, &format!("Host: {host:?}"));
    }
    assert_eq!(origin.hits("/x"), 0);
}

#[tokio::test]
async fn an_absolute_form_target_names_the_host() {
    let (origin, proxy) = origin_and_proxy().await;
    route_links_page(&origin, "/x");

    let response = exchange(
        proxy.addr,
        &raw_request(
            "GET http://good.example/x HTTP/1.1",
            &["Host: evil.example"],
        ),
    )
    .await;
    assert_eq!(response.status, 200);
    assert_eq!(
        origin.last_request("/x").header("x-forwarded-host"),
        Some("good.example")
    );
    assert_eq!(
        response.text(),
        "<a href=\"http://good.example/login\">log in</a>"
    );

    // ... and keys the request: an origin-form request for that host is a hit.
    let response = get(proxy.addr, "/x", "good.example", &[]).await;
    assert_eq!(
        response.text(),
        "<a href=\"http://good.example/login\">log in</a>"
    );
    assert_eq!(origin.hits("/x"), 1);
}

#[tokio::test]
async fn http10_without_host_is_keyed_under_the_upstream() {
    let (origin, proxy) = origin_and_proxy().await;
    route_links_page(&origin, "/x");

    let response = exchange(proxy.addr, &raw_request("GET /x HTTP/1.0", &[])).await;
    assert_eq!(response.status, 200, "{response:?}");
    let upstream = origin.addr().to_string();
    assert_eq!(
        origin.last_request("/x").header("x-forwarded-host"),
        Some(upstream.as_str())
    );
}

#[tokio::test]
async fn http2_authority_is_the_host() {
    let (origin, proxy) = origin_and_proxy().await;
    route_links_page(&origin, "/x");

    let stream = TcpStream::connect(proxy.addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let request = Request::get("http://Good.Example/x")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = tokio::time::timeout(EXCHANGE_TIMEOUT, sender.send_request(request))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), http::Version::HTTP_2);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        &body[..],
        b"<a href=\"http://good.example/login\">log in</a>"
    );
    assert_eq!(
        origin.last_request("/x").header("x-forwarded-host"),
        Some("good.example")
    );
}

#[tokio::test]
async fn an_unreachable_upstream_is_502() {
    // A port nothing listens on any more.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let proxy = start_proxy_to(&upstream).await;

    let response = get(proxy.addr, "/x", "good.example", &[]).await;
    assert_eq!(response.status, 502, "{response:?}");
}

/// With the access log on, every request gets one line (peer, method, target, status, what the
/// cache did), whether the cache answered it at once (a hit, a rejected request) or after the
/// upstream (a miss); a credential in the query is redacted.
#[tokio::test]
async fn access_log_has_a_line_per_request_with_the_outcome() {
    // Connections on this thread's runtime, so that its log subscriber sees their events.
    let (logs, _guard) = capture_logs(tracing_subscriber::filter::LevelFilter::INFO);
    let origin = Origin::start(&ManualClock::starting_now()).await;
    origin.route("/doc", |_| {
        Reply::ok("document").header("cache-control", "public, max-age=60")
    });
    let proxy = start_proxy(ProxyConfig {
        access_log: true,
        connection_threads: 0,
        ..proxy_config(&origin.url("/"))
    })
    .await;
    let target = "/doc?api_key=SECRET";
    assert_eq!(get(proxy.addr, target, "a.example", &[]).await.status, 200);
    assert_eq!(get(proxy.addr, target, "a.example", &[]).await.status, 200);
    assert_eq!(get(proxy.addr, target, "a b", &[]).await.status, 400);
    assert_eq!(origin.hits("/doc"), 1);

    let text = logs.text();
    let lines: Vec<&str> = text.lines().filter(|line| line.contains(" -> ")).collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].contains("GET /doc?api_key=[redacted] -> 200 miss (stored)"),
        "{text}"
    );
    assert!(
        lines[1].contains("GET /doc?api_key=[redacted] -> 200 hit"),
        "{text}"
    );
    assert!(
        lines[2].contains("GET /doc?api_key=[redacted] -> 400 -"),
        "{text}"
    );
    assert!(!text.contains("SECRET"), "{text}");
}
