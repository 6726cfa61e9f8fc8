//! The whole cache: a `CacheService` (private or shared settings, some settings switched by the
//! input, a memory store, a manual clock) in front of a `tower::service_fn` origin whose
//! responses (status, header fields, body) come from the input. The input's requests are sent
//! twice, the clock moved between the rounds, every body read to its end.
//!
//! Never panics, and never hands a request a response stored for another: a response served
//! from the cache has a body the origin gave for a request with the same normalized URL (and,
//! in a shared cache, the same credentials), or a part of one (a byte range), or bytes the origin
//! gave in 206 responses for it, each at its position (stored parts combined, RFC 9111 §3.4).
#![no_main]

use arbitrary::Arbitrary;
use bytes::Bytes;
use cachelayer::{CacheInfo, CacheLayer, CacheOptions, CacheSettings, ManualClock, StaleWindow};
use cachelayer_policy::key::{DEFAULT_IGNORED_PARAMETERS, normalize_url};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use libfuzzer_sys::fuzz_target;
use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, UNIX_EPOCH};
use tower::{Layer, Service, ServiceExt};

/// 2023-11-14T22:13:20Z: the clock's start.
const T0: u64 = 1_700_000_000;

#[derive(Debug, Arbitrary)]
struct Input {
    shared: bool,
    settings: SettingsSwitches,
    requests: Vec<FuzzRequest>,
    responses: Vec<FuzzResponse>,
    /// Seconds the clock moves between the two rounds.
    advance: u16,
}

#[derive(Debug, Arbitrary)]
struct SettingsSwitches {
    cache_control: bool,
    expire_after: Option<u16>,
    stale_if_error: bool,
    stale_while_revalidate: bool,
    always_revalidate: bool,
    ignore_request_cache_control: bool,
    set_cookie_stored_without: bool,
    coalesce_requests: bool,
}

#[derive(Debug, Arbitrary)]
struct FuzzRequest {
    method: u8,
    target: Target,
    host: Option<Host>,
    fields: Vec<Field>,
    options: Option<Options>,
}

/// A request target: one of a few (so that requests meet in the cache), or any text (origin
/// form when it does not parse as it is).
#[derive(Debug, Arbitrary)]
enum Target {
    Typical(u8),
    Any(String),
}

const TARGETS: [&str; 10] = [
    "/",
    "/a",
    "/a?x=1&y=2",
    "/a?y=2&x=1",
    "/%61",
    "/a?api_key=alice",
    "/a?api_key=bob",
    "http://example.com/a",
    "http://EXAMPLE.com:80/a",
    "https://example.com/a",
];

#[derive(Debug, Arbitrary)]
enum Host {
    Typical(u8),
    Any(Vec<u8>),
}

const HOSTS: [&str; 5] = [
    "example.com",
    "Example.COM:80",
    "other.example",
    "victim/b",
    "a@b",
];

#[derive(Debug, Arbitrary)]
struct Options {
    refresh: bool,
    force_refresh: bool,
    only_if_cached: bool,
    expire_after: Option<u16>,
}

#[derive(Debug, Arbitrary)]
struct FuzzResponse {
    status: u16,
    fields: Vec<Field>,
    body: Vec<u8>,
}

/// A header field line: a well-known name (or any name) and a value.
#[derive(Debug, Arbitrary)]
enum Field {
    Known(u8, Value),
    Any(String, Value),
}

/// A field value: one of a few typical ones, an HTTP-date that many seconds from the clock's
/// start, or any bytes.
#[derive(Debug, Arbitrary)]
enum Value {
    Typical(u8),
    Date(i32),
    Any(Vec<u8>),
}

const VALUES: [&str; 24] = [
    "max-age=60",
    "max-age=0",
    "no-cache",
    "no-store",
    "private",
    "public, max-age=600",
    "s-maxage=30, max-age=0",
    "max-age=10, must-revalidate",
    "max-age=1, stale-while-revalidate=60",
    "max-age=1, stale-if-error=600",
    "max-age=60, proxy-revalidate",
    "only-if-cached",
    "max-stale",
    "min-fresh=30",
    "\"v1\"",
    "W/\"v1\"",
    "*",
    "accept-encoding",
    "cookie",
    "session=1",
    "Bearer alice",
    "bytes=0-3",
    "bytes=2-",
    "gzip, br",
];

const METHODS: [Method; 6] = [
    Method::GET,
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::DELETE,
    Method::OPTIONS,
];

const NAMES: [&str; 28] = [
    "cache-control",
    "pragma",
    "expires",
    "date",
    "last-modified",
    "etag",
    "age",
    "vary",
    "set-cookie",
    "cookie",
    "authorization",
    "x-api-key",
    "content-type",
    "content-length",
    "content-range",
    "content-location",
    "location",
    "if-none-match",
    "if-modified-since",
    "range",
    "if-range",
    "accept",
    "accept-encoding",
    "cdn-cache-control",
    "surrogate-control",
    "connection",
    "transfer-encoding",
    "cache-status",
];

fn http_date(offset: i32) -> String {
    let secs = T0.saturating_add_signed(i64::from(offset));
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs))
}

fn append_fields(headers: &mut HeaderMap, fields: &[Field]) {
    for field in fields {
        let (name, value) = match field {
            Field::Known(i, value) => (
                HeaderName::from_static(NAMES[usize::from(*i) % NAMES.len()]),
                value,
            ),
            Field::Any(name, value) => match HeaderName::from_bytes(name.as_bytes()) {
                Ok(name) => (name, value),
                Err(_) => continue,
            },
        };
        let value = match value {
            Value::Typical(i) => Ok(HeaderValue::from_static(
                VALUES[usize::from(*i) % VALUES.len()],
            )),
            Value::Date(offset) => HeaderValue::from_str(&http_date(*offset)),
            Value::Any(bytes) => HeaderValue::from_bytes(bytes),
        };
        if let Ok(value) = value {
            headers.append(name, value);
        }
    }
}

/// What a key is made of, coarsely: the normalized URL (credentials left out), plus in a
/// shared cache the credentials the request carries. Two requests with one key have one
/// identity.
fn identity(uri: &Uri, headers: &HeaderMap, shared: bool) -> String {
    let ignored: Vec<String> = DEFAULT_IGNORED_PARAMETERS
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut id = normalize_url(uri, headers, &ignored);
    if shared {
        for piece in uri.query().unwrap_or("").split('&') {
            let name = piece.split('=').next().unwrap_or("");
            if ignored.iter().any(|i| i == name) {
                id.push_str("\ncredential:");
                id.push_str(piece);
            }
        }
        for name in &ignored {
            for value in headers.get_all(name.as_str()) {
                id.push_str("\ncredential:");
                id.push_str(name);
                id.push_str(&String::from_utf8_lossy(value.as_bytes()));
            }
        }
    }
    id
}

/// The origin: answers with the input's responses in turn, and logs which body it gave for
/// which identity.
#[derive(Default)]
struct Origin {
    calls: usize,
    given: HashMap<String, HashSet<Bytes>>,
    /// The parts given in 206 responses with a `Content-Range: bytes first-last/length`:
    /// (position of the first byte, bytes).
    parts: HashMap<String, Vec<(u64, Bytes)>>,
}

/// `true` when every byte of `body`, placed at position `first` of the representation, is a byte
/// the origin gave at that position in one of `parts`.
fn assembled_from(parts: &[(u64, Bytes)], first: u64, body: &Bytes) -> bool {
    !parts.is_empty()
        && body.iter().enumerate().all(|(i, byte)| {
            let at = first + i as u64;
            parts.iter().any(|(start, bytes)| {
                at.checked_sub(*start)
                    .and_then(|offset| usize::try_from(offset).ok())
                    .and_then(|offset| bytes.get(offset))
                    == Some(byte)
            })
        })
}

/// With `CACHELAYER_FUZZ_STATS` set, how many inputs ran and how many responses served from the
/// cache had their body checked, every 10,000 inputs (to see that the target reaches hits).
mod stats {
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

    static INPUTS: AtomicUsize = AtomicUsize::new(0);
    static CHECKED: AtomicUsize = AtomicUsize::new(0);

    pub(crate) fn input() {
        let n = INPUTS.fetch_add(1, Relaxed) + 1;
        if n % 10_000 == 0 && std::env::var_os("CACHELAYER_FUZZ_STATS").is_some() {
            eprintln!(
                "service: {n} inputs, {} cache answers checked",
                CHECKED.load(Relaxed)
            );
        }
    }

    pub(crate) fn checked() {
        CHECKED.fetch_add(1, Relaxed);
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a tokio runtime")
    })
}

fn settings(input: &Input) -> CacheSettings {
    let switches = &input.settings;
    let mut settings = if input.shared {
        CacheSettings::shared()
    } else {
        CacheSettings::default()
    };
    settings.cache_control = switches.cache_control;
    settings.expire_after = switches
        .expire_after
        .map(|secs| Duration::from_secs(u64::from(secs)).into());
    if switches.stale_if_error {
        settings.stale_if_error = StaleWindow::Any;
    }
    if switches.stale_while_revalidate {
        settings.stale_while_revalidate = StaleWindow::AtMost(Duration::from_secs(600));
    }
    settings.always_revalidate = switches.always_revalidate;
    settings.ignore_request_cache_control = switches.ignore_request_cache_control;
    if switches.set_cookie_stored_without {
        settings.set_cookie = cachelayer::SetCookie::StoredWithout;
    }
    settings.coalesce_requests = switches.coalesce_requests;
    settings.allowable_methods = vec![Method::GET, Method::HEAD];
    settings
}

fuzz_target!(|input: Input| {
    if input.requests.len() > 8 || input.responses.len() > 8 {
        return;
    }
    stats::input();
    let shared = input.shared;
    let responses: Arc<Vec<(StatusCode, HeaderMap, Bytes)>> = Arc::new(
        input
            .responses
            .iter()
            .map(|r| {
                let status = StatusCode::from_u16(r.status)
                    .ok()
                    .filter(|s| !s.is_informational())
                    .unwrap_or(StatusCode::OK);
                let mut headers = HeaderMap::new();
                append_fields(&mut headers, &r.fields);
                (status, headers, Bytes::from(r.body.clone()))
            })
            .collect(),
    );
    let origin_state = Arc::new(Mutex::new(Origin::default()));
    let origin = {
        let state = origin_state.clone();
        tower::service_fn(move |request: Request<Full<Bytes>>| {
            let state = state.clone();
            let responses = responses.clone();
            async move {
                let mut state = state.lock().expect("origin state");
                let (status, headers, body) =
                    match responses.get(state.calls % responses.len().max(1)) {
                        Some(r) => r.clone(),
                        None => (
                            StatusCode::OK,
                            HeaderMap::new(),
                            Bytes::from_static(b"origin"),
                        ),
                    };
                state.calls += 1;
                let id = identity(request.uri(), request.headers(), shared);
                if status == StatusCode::PARTIAL_CONTENT {
                    let range = headers
                        .get(http::header::CONTENT_RANGE)
                        .and_then(|v| cachelayer_store::partial::ContentRange::parse(v.as_bytes()));
                    if let Some(cachelayer_store::partial::ContentRange::Bytes { range, .. }) =
                        range
                    {
                        let part = (range.first(), body.clone());
                        state.parts.entry(id.clone()).or_default().push(part);
                    }
                }
                state.given.entry(id).or_default().insert(body.clone());
                let mut response = Response::new(Full::new(body));
                *response.status_mut() = status;
                *response.headers_mut() = headers;
                Ok::<_, Infallible>(response)
            }
        })
    };

    let clock = Arc::new(ManualClock::new(UNIX_EPOCH + Duration::from_secs(T0)));
    let layer = CacheLayer::new(settings(&input)).with_clock(clock.clone());
    let mut service = layer.layer(origin);

    runtime().block_on(async {
        for round in 0..2 {
            if round == 1 {
                clock.advance(Duration::from_secs(u64::from(input.advance)));
            }
            for fuzz in &input.requests {
                let uri = match &fuzz.target {
                    Target::Typical(i) => {
                        Uri::from_static(TARGETS[usize::from(*i) % TARGETS.len()])
                    }
                    Target::Any(text) => match Uri::try_from(text.as_str())
                        .or_else(|_| Uri::try_from(format!("/{text}")))
                    {
                        Ok(uri) => uri,
                        Err(_) => continue,
                    },
                };
                let method = METHODS[usize::from(fuzz.method) % METHODS.len()].clone();
                let mut request = Request::new(Full::new(Bytes::new()));
                *request.method_mut() = method.clone();
                *request.uri_mut() = uri.clone();
                let host = match &fuzz.host {
                    None => None,
                    Some(Host::Typical(i)) => Some(HeaderValue::from_static(
                        HOSTS[usize::from(*i) % HOSTS.len()],
                    )),
                    Some(Host::Any(bytes)) => HeaderValue::from_bytes(bytes).ok(),
                };
                if let Some(host) = host {
                    request.headers_mut().insert(http::header::HOST, host);
                }
                append_fields(request.headers_mut(), &fuzz.fields);
                if let Some(options) = &fuzz.options {
                    request.extensions_mut().insert(CacheOptions {
                        refresh: options.refresh,
                        force_refresh: options.force_refresh,
                        only_if_cached: options.only_if_cached,
                        expire_after: options
                            .expire_after
                            .map(|secs| Duration::from_secs(u64::from(secs)).into()),
                        ..CacheOptions::default()
                    });
                }
                let id = identity(&uri, request.headers(), shared);

                let Ok(ready) = service.ready().await;
                let Ok(response) = ready.call(request).await;
                let info = response.extensions().get::<CacheInfo>().cloned();
                let status = response.status();
                let first = match response
                    .headers()
                    .get(http::header::CONTENT_RANGE)
                    .and_then(|v| cachelayer_store::partial::ContentRange::parse(v.as_bytes()))
                {
                    Some(cachelayer_store::partial::ContentRange::Bytes { range, .. }) => {
                        range.first()
                    }
                    _ => 0,
                };
                let body = match response.into_body().collect().await {
                    Ok(collected) => collected.to_bytes(),
                    Err(_) => continue,
                };
                // Let background revalidations run.
                tokio::task::yield_now().await;

                let Some(info) = info else { continue };
                if !info.from_cache || method == Method::HEAD || status == StatusCode::NOT_MODIFIED
                {
                    continue;
                }
                stats::checked();
                let origin = origin_state.lock().expect("origin state");
                let given = origin.given.get(&id);
                let matches = given.is_some_and(|bodies| {
                    bodies.iter().any(|given| {
                        given == &body
                            || (status == StatusCode::PARTIAL_CONTENT
                                && (body.is_empty()
                                    || given.windows(body.len()).any(|w| w == body)))
                    })
                }) || origin
                    .parts
                    .get(&id)
                    .is_some_and(|parts| assembled_from(parts, first, &body));
                assert!(
                    matches,
                    "{method} {uri} ({id:?}) was served from the cache ({:?}) a body the origin \
                     never gave for it: {body:?}; given for it: {given:?}",
                    info.outcome
                );
            }
        }
    });
});
