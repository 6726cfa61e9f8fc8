//! The reverse proxy's limits, against real sockets: slow-loris and idle clients are cut off
//! after the header read timeout, connections beyond the limit wait, a slow upstream is a
//! `504` (or a stale response), and connection threads can be bound to CPUs.
#![allow(clippy::unwrap_used)]

mod common;

use cachelayer::{CacheSettings, ManualClock, MemoryStore, StaleWindow};
use common::{Origin, Reply};
use examples::proxy::{Proxy, ProxyConfig};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// A proxy serving on 127.0.0.1 until dropped.
struct RunningProxy {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

async fn start(origin: &Origin, tune: impl FnOnce(&mut ProxyConfig)) -> RunningProxy {
    let mut config = ProxyConfig {
        shutdown_grace: Duration::from_millis(200),
        connection_threads: 2,
        ..ProxyConfig::new(
            origin.url("/").parse().unwrap(),
            CacheSettings::shared(),
            Arc::new(MemoryStore::new()),
        )
    };
    tune(&mut config);
    let proxy = Proxy::new(config).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(proxy.serve(listener, async {
        let _ = stopped.await;
    }));
    RunningProxy { addr, _stop: stop }
}

/// Reads until the peer closes the connection (or `limit` passes); what was read, and whether
/// it closed.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (bytes, true),
            Ok(Ok(n)) => bytes.extend_from_slice(&buf[..n]),
            Err(_) => return (bytes, false),
        }
    }
}

fn request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: example.test\r\n\r\n")
}

/// A client that trickles its header section one byte at a time is cut off after the header
/// read timeout, however steadily it sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_loris_client_is_cut_off() {
    let origin = Origin::start(&ManualClock::starting_now()).await;
    let proxy = start(&origin, |c| {
        c.header_read_timeout = Duration::from_millis(500)
    })
    .await;
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    let started = Instant::now();
    let mut closed = false;
    for byte in request("/x").bytes().cycle().take(200) {
        if stream.write_all(&[byte]).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        if started.elapsed() > Duration::from_secs(4) {
            break;
        }
    }
    if !closed {
        closed = read_until_closed(&mut stream, Duration::from_secs(2))
            .await
            .1;
    }
    assert!(closed, "still open after {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(origin.hits("/x"), 0);
}

/// An idle connection, before its first request or between two, is closed after the header
/// read timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed() {
    let origin = Origin::start(&ManualClock::starting_now()).await;
    origin.route("/x", |_| {
        Reply::ok("x").header("cache-control", "max-age=60")
    });
    let proxy = start(&origin, |c| {
        c.header_read_timeout = Duration::from_millis(500);
        c.idle_timeout = Duration::from_millis(500);
    })
    .await;

    let mut silent = TcpStream::connect(proxy.addr).await.unwrap();
    let (_, closed) = read_until_closed(&mut silent, Duration::from_secs(3)).await;
    assert!(closed, "a connection that never sends is closed");

    let mut kept = TcpStream::connect(proxy.addr).await.unwrap();
    kept.write_all(request("/x").as_bytes()).await.unwrap();
    let (bytes, closed) = read_until_closed(&mut kept, Duration::from_secs(3)).await;
    assert!(String::from_utf8_lossy(&bytes).starts_with("HTTP/1.1 200"));
    assert!(closed, "an idle keep-alive connection is closed");
}

/// Connections beyond `max_connections` wait until one closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_wait() {
    let origin = Origin::start(&ManualClock::starting_now()).await;
    origin.route("/x", |_| {
        Reply::ok("x").header("cache-control", "max-age=60")
    });
    let proxy = start(&origin, |c| {
        c.max_connections = 1;
        c.header_read_timeout = Duration::from_secs(30);
    })
    .await;
    let first = TcpStream::connect(proxy.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut second = TcpStream::connect(proxy.addr).await.unwrap();
    second
        .write_all("GET /x HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n".as_bytes())
        .await
        .unwrap();
    let (bytes, _) = read_until_closed(&mut second, Duration::from_millis(500)).await;
    assert!(
        bytes.is_empty(),
        "answered while the first connection was open"
    );
    drop(first);
    let (bytes, closed) = read_until_closed(&mut second, Duration::from_secs(5)).await;
    assert!(closed);
    assert!(String::from_utf8_lossy(&bytes).starts_with("HTTP/1.1 200"));
}

/// An upstream slower than `upstream_timeout` is a 504; with a stored response and
/// `stale_if_error`, the stale response is served instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_upstream_is_a_gateway_timeout_or_stale() {
    let clock = ManualClock::starting_now();
    let origin = Origin::start(&clock).await;
    origin.route("/slow", |_| {
        Reply::ok("late").delayed(Duration::from_secs(3))
    });
    let proxy = start(&origin, |c| c.upstream_timeout = Duration::from_millis(300)).await;
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream
        .write_all(
            "GET /slow HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n".as_bytes(),
        )
        .await
        .unwrap();
    let (bytes, _) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(
        String::from_utf8_lossy(&bytes).starts_with("HTTP/1.1 504"),
        "{}",
        String::from_utf8_lossy(&bytes)
    );

    let served = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = served.clone();
    origin.route("/stale", move |_| {
        if count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            Reply::ok("stored")
                .header("cache-control", "max-age=0, stale-if-error=600")
                .header("etag", "\"v1\"")
        } else {
            Reply::ok("late").delayed(Duration::from_secs(3))
        }
    });
    let proxy = start(&origin, |c| {
        c.upstream_timeout = Duration::from_millis(300);
        c.settings = CacheSettings {
            stale_if_error: StaleWindow::Any,
            ..CacheSettings::shared()
        };
    })
    .await;
    for expected in ["stored", "stored"] {
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        stream
            .write_all(
                "GET /stale HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n".as_bytes(),
            )
            .await
            .unwrap();
        let (bytes, _) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(text.ends_with(expected), "{text}");
    }
}

/// The `Cpus_allowed_list` of a `/proc` status file, as written there (`0`, `0-1`, `0,2`);
/// empty when it cannot be read.
fn cpus_allowed(status: &std::path::Path) -> String {
    std::fs::read_to_string(status)
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// The CPUs each thread of this process may run on, by thread name.
fn thread_cpus() -> Vec<(String, String)> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .map(|task| {
            let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            (
                name.trim().to_owned(),
                cpus_allowed(&task.path().join("status")),
            )
        })
        .collect()
}

/// With `cpu_affinity`, each connection thread is bound to one CPU, the threads to different
/// CPUs when the process may use several; the proxy serves as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_threads_are_bound_to_cpus_with_cpu_affinity() {
    let origin = Origin::start(&ManualClock::starting_now()).await;
    origin.route("/", |_| Reply::ok("ok"));
    let proxy = start(&origin, |c| c.cpu_affinity = true).await;
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream.write_all(request("/").as_bytes()).await.unwrap();
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");

    let allowed = cpus_allowed(std::path::Path::new("/proc/self/status"));
    assert!(!allowed.is_empty());
    // Other tests of this binary run unbound connection threads: the bound ones are this test's.
    let bound: Vec<String> = thread_cpus()
        .into_iter()
        .filter(|(name, cpus)| {
            name.starts_with("proxy-conn-") && !cpus.contains(['-', ',']) && *cpus != allowed
        })
        .map(|(_, cpus)| cpus)
        .collect();
    if allowed.contains(['-', ',']) {
        assert!(bound.len() >= 2, "{:?}", thread_cpus());
        assert!(bound.iter().any(|cpu| *cpu != bound[0]), "{bound:?}");
    }
}
