//! Interim (1xx) responses (RFC 9110 §15.2) from a real origin that writes them before its final
//! response: the cache never stores them nor adds their fields to the response it stores, a
//! caller below which the cache sits still receives them on a miss (hyper's
//! `on_informational`), and the reverse proxy answers with the final response only (hyper's
//! server cannot send a 1xx).
//!
//! hyper's server cannot write a `103`, so the origin here is a raw TCP server.
#![allow(clippy::unwrap_used)]

mod common;

use cachelayer::{CacheOutcome, CacheSettings, MemoryStore};
use common::{cached_client, get, send};
use examples::proxy::{Proxy, ProxyConfig};
use http::StatusCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// An HTTP/1.1 origin on 127.0.0.1 that answers every request (keep-alive, requests without a
/// body) with the same bytes, interim responses included; stopped when dropped.
struct RawOrigin {
    addr: std::net::SocketAddr,
    requests: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl RawOrigin {
    async fn start(answer: Vec<u8>) -> RawOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = requests.clone();
        let answer = Arc::new(answer);
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    continue;
                };
                let (answer, counted) = (answer.clone(), counted.clone());
                tokio::spawn(async move {
                    let mut buffer = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        while let Some(end) = find(&buffer, b"\r\n\r\n") {
                            buffer.drain(..end + 4);
                            counted.fetch_add(1, Ordering::SeqCst);
                            if stream.write_all(&answer).await.is_err() {
                                return;
                            }
                        }
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                    }
                });
            }
        });
        RawOrigin {
            addr,
            requests,
            task,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for RawOrigin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Interim responses, then a final `200` with `final_fields` and the body `hello`.
fn answer(interim: &[&str], final_fields: &str) -> Vec<u8> {
    let mut bytes = String::new();
    for head in interim {
        bytes.push_str(head);
        bytes.push_str("\r\n");
    }
    bytes.push_str("HTTP/1.1 200 OK\r\n");
    bytes.push_str(final_fields);
    bytes.push_str("Content-Length: 5\r\n\r\nhello");
    bytes.into_bytes()
}

const EARLY_HINTS: &str =
    "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\nX-Hint: 1\r\n";

/// What a caller's `on_informational` callback saw: (status, `Link` value).
type Seen = Arc<Mutex<Vec<(u16, Option<String>)>>>;

fn watched_get(url: &str) -> (http::Request<http_body_util::Full<bytes::Bytes>>, Seen) {
    let seen: Seen = Arc::default();
    let mut request = get(url);
    let record = seen.clone();
    hyper::ext::on_informational(&mut request, move |interim| {
        let link = interim
            .headers()
            .get("link")
            .map(|v| v.to_str().unwrap().to_owned());
        record
            .lock()
            .unwrap()
            .push((interim.status().as_u16(), link));
    });
    (request, seen)
}

/// A `103 Early Hints` (and other 1xx) before a storable `200`: the caller below which the cache
/// sits sees them on the miss; the stored response is the `200` alone, without the hint's
/// fields; the hit replays no interim response.
#[tokio::test]
async fn interim_responses_are_neither_stored_nor_merged() {
    let (mut cache, _clock) = cached_client(CacheSettings::shared());
    let origin = RawOrigin::start(answer(
        &[
            "HTTP/1.1 102 Processing\r\n",
            EARLY_HINTS,
            "HTTP/1.1 103 Early Hints\r\nLink: </app.js>; rel=preload; as=script\r\n",
        ],
        "Cache-Control: max-age=600\r\n",
    ))
    .await;
    let url = origin.url("/hinted");

    let (request, seen) = watched_get(&url);
    let miss = send(&mut cache, request).await;
    assert_eq!((miss.status, miss.text()), (StatusCode::OK, "hello"));
    assert!(miss.info.stored, "{:?}", miss.info);
    assert!(miss.header("link").is_none() && miss.header("x-hint").is_none());
    assert_eq!(
        *seen.lock().unwrap(),
        [
            (102, None),
            (103, Some("</style.css>; rel=preload; as=style".to_owned())),
            (103, Some("</app.js>; rel=preload; as=script".to_owned())),
        ],
        "the interim responses reached the caller on the miss"
    );

    let (request, seen) = watched_get(&url);
    let hit = send(&mut cache, request).await;
    assert_eq!(hit.info.outcome, CacheOutcome::Hit);
    assert_eq!((hit.status, hit.text()), (StatusCode::OK, "hello"));
    assert!(hit.header("link").is_none() && hit.header("x-hint").is_none());
    assert!(seen.lock().unwrap().is_empty(), "a hit replays no 1xx");
    assert_eq!(origin.requests(), 1);
}

/// The fields of an interim response say nothing about the final one: freshness in a `103`
/// does not make a `no-store` response storable, and `no-store` or `Set-Cookie` in a `103` does
/// not keep a storable response out of a shared cache (nor reach the stored response).
#[tokio::test]
async fn interim_fields_never_decide_storage() {
    let (mut cache, _clock) = cached_client(CacheSettings::shared());
    let fresh_hint = RawOrigin::start(answer(
        &["HTTP/1.1 103 Early Hints\r\nCache-Control: public, max-age=600\r\nETag: \"h\"\r\n"],
        "Cache-Control: no-store\r\n",
    ))
    .await;
    let got = send(&mut cache, get(&fresh_hint.url("/a"))).await;
    assert!(!got.info.stored, "{:?}", got.info);
    assert!(got.header("etag").is_none());
    send(&mut cache, get(&fresh_hint.url("/a"))).await;
    assert_eq!(fresh_hint.requests(), 2, "nothing was stored");

    let private_hint = RawOrigin::start(answer(
        &["HTTP/1.1 103 Early Hints\r\nCache-Control: no-store, private\r\nSet-Cookie: s=1\r\n"],
        "Cache-Control: max-age=600\r\n",
    ))
    .await;
    let got = send(&mut cache, get(&private_hint.url("/b"))).await;
    assert!(got.info.stored, "{:?}", got.info);
    let hit = send(&mut cache, get(&private_hint.url("/b"))).await;
    assert_eq!(hit.info.outcome, CacheOutcome::Hit);
    assert!(hit.header("set-cookie").is_none());
    assert_eq!(hit.header("cache-control"), Some("max-age=600"));
    assert_eq!(private_hint.requests(), 1);
}

/// Sends one raw request to `addr` with `Connection: close` and reads the answer to its end.
async fn raw_exchange(addr: std::net::SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(common::EXCHANGE_TIMEOUT, stream.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8(answer).unwrap()
}

/// The reverse proxy today: hyper's server cannot send a 1xx, so the client receives the final
/// response only, without the hint's fields, on the miss and on the hit.
#[tokio::test]
async fn the_proxy_answers_with_the_final_response_only() {
    let origin = RawOrigin::start(answer(&[EARLY_HINTS], "Cache-Control: max-age=600\r\n")).await;
    let config = ProxyConfig::new(
        origin.url("/").parse().unwrap(),
        CacheSettings::shared(),
        Arc::new(MemoryStore::new()),
    );
    let proxy = Proxy::new(config).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(proxy.serve(listener, async {
        let _ = stopped.await;
    }));

    for expected in ["fwd=uri-miss", "hit"] {
        let answer = raw_exchange(addr, "/hinted").await;
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(!answer.contains(" 103 "), "{answer}");
        let lower = answer.to_ascii_lowercase();
        assert!(
            !lower.contains("\r\nlink:") && !lower.contains("\r\nx-hint:"),
            "{answer}"
        );
        assert!(answer.ends_with("\r\n\r\nhello"), "{answer}");
        assert!(lower.contains(expected), "{expected}: {answer}");
    }
    assert_eq!(origin.requests(), 1);
}
