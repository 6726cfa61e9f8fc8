//! The request span and its events, read back through a subscriber that keeps every field.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use cachelayer::{CacheLayer, CacheSettings};
use http::{Request, Response};
use http_body_util::{BodyExt, Empty, Full};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt;
use std::sync::{Arc, Mutex};
use tower::{Layer as _, Service, ServiceExt, service_fn};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// A span as the subscriber saw it: its name and its fields' last values.
#[derive(Debug, Clone, Default)]
struct SeenSpan {
    name: &'static str,
    fields: BTreeMap<String, String>,
}

/// An event: its message, fields, and the name of the span it happened in.
#[derive(Debug, Clone, Default)]
struct SeenEvent {
    message: String,
    fields: BTreeMap<String, String>,
    span: Option<u64>,
}

#[derive(Debug, Default)]
struct Seen {
    spans: BTreeMap<u64, SeenSpan>,
    events: Vec<SeenEvent>,
}

#[derive(Debug, Clone, Default)]
struct Capture(Arc<Mutex<Seen>>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        let mut span = SeenSpan {
            name: attrs.metadata().name(),
            ..SeenSpan::default()
        };
        attrs.record(&mut Fields(&mut span.fields));
        self.0.lock().unwrap().spans.insert(id.into_u64(), span);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut seen = self.0.lock().unwrap();
        if let Some(span) = seen.spans.get_mut(&id.into_u64()) {
            values.record(&mut Fields(&mut span.fields));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let message = fields.remove("message").unwrap_or_default();
        let span = ctx.event_span(event).map(|s| s.id().into_u64());
        self.0.lock().unwrap().events.push(SeenEvent {
            message,
            fields,
            span,
        });
    }
}

/// Sends `paths` in turn through a cache on an origin that answers `max-age=60`, with a
/// credential in the query and in `Authorization`, and returns what a subscriber saw.
fn run(paths: &[&str]) -> Seen {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    tracing::subscriber::with_default(subscriber, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let origin = service_fn(|_: Request<Empty<Bytes>>| async {
                Ok::<_, Infallible>(
                    Response::builder()
                        .header("cache-control", "public, max-age=60")
                        .body(Full::new(Bytes::from_static(b"hello")))
                        .unwrap(),
                )
            });
            let mut cache = CacheLayer::new(CacheSettings::default()).layer(origin);
            for path in paths {
                let request = Request::get(format!("http://user:PASSWORD@example.test{path}"))
                    .header("authorization", "Bearer TOKEN-IN-HEADER")
                    .body(Empty::new())
                    .unwrap();
                let response = cache.ready().await.unwrap().call(request).await.unwrap();
                response.into_body().collect().await.unwrap();
            }
        });
    });
    Arc::try_unwrap(capture.0).unwrap().into_inner().unwrap()
}

fn cache_spans(seen: &Seen) -> Vec<(u64, SeenSpan)> {
    seen.spans
        .iter()
        .filter(|(_, span)| span.name == "cache")
        .map(|(id, span)| (*id, span.clone()))
        .collect()
}

#[test]
fn each_request_has_a_span_with_its_outcome_and_redacted_url() {
    let seen = run(&["/a?q=1&api_key=SECRET", "/a?q=1&api_key=SECRET"]);
    let spans = cache_spans(&seen);
    assert_eq!(spans.len(), 2, "one span per request: {spans:?}");
    let outcomes: Vec<&str> = spans
        .iter()
        .map(|(_, s)| s.fields.get("outcome").map_or("", String::as_str))
        .collect();
    assert_eq!(outcomes, ["miss", "hit"]);
    for (_, span) in &spans {
        assert_eq!(span.fields["method"], "GET");
        assert_eq!(
            span.fields["url"],
            "http://[redacted]@example.test/a?q=1&api_key=[redacted]"
        );
        let key = &span.fields["key"];
        assert!(
            key.len() == 32 && key.bytes().all(|b| b.is_ascii_hexdigit()),
            "key: {key}"
        );
        assert!(
            span.fields.contains_key("store_read_us"),
            "the lookup is timed: {span:?}"
        );
    }
    assert!(
        spans[0].1.fields.contains_key("store_write_us"),
        "the miss's write is timed: {:?}",
        spans[0].1
    );
}

#[test]
fn decisions_are_events_inside_the_span_with_names_and_dates() {
    let seen = run(&["/b", "/b"]);
    let spans = cache_spans(&seen);
    let hit_span = spans[1].0;
    let outcome = seen
        .events
        .iter()
        .find(|e| e.message == "cache outcome" && e.span == Some(hit_span))
        .expect("an outcome event in the hit's span");
    assert_eq!(outcome.fields["outcome"], "hit");
    let lookup = seen
        .events
        .iter()
        .find(|e| e.message == "cache lookup" && e.span == Some(hit_span))
        .expect("a lookup event in the hit's span");
    assert_eq!(lookup.fields["verdict"], "fresh");
    let stored = seen
        .events
        .iter()
        .find(|e| e.message == "response will be stored")
        .expect("the miss logs that it stores");
    let expires = &stored.fields["expires"];
    assert!(
        httpdate::parse_http_date(expires).is_ok(),
        "expires is an HTTP date: {expires}"
    );
}

#[test]
fn no_credential_reaches_a_span_or_an_event() {
    let seen = run(&[
        "/c?api_key=SECRET&access_token=SECRET2",
        "/c?api_key=SECRET&access_token=SECRET2",
    ]);
    let everything = format!("{seen:?}");
    assert!(everything.contains("[redacted]"), "{everything}");
    for credential in ["SECRET", "PASSWORD", "TOKEN-IN-HEADER"] {
        assert!(
            !everything.contains(credential),
            "{credential} was logged: {everything}"
        );
    }
}

#[test]
fn without_a_subscriber_nothing_is_recorded_and_requests_still_work() {
    // No subscriber: the span is disabled, and the cache answers as usual.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let hits = rt.block_on(async {
        let origin = service_fn(|_: Request<Empty<Bytes>>| async {
            Ok::<_, Infallible>(
                Response::builder()
                    .header("cache-control", "max-age=60")
                    .body(Full::new(Bytes::from_static(b"x")))
                    .unwrap(),
            )
        });
        let mut cache = CacheLayer::new(CacheSettings::default()).layer(origin);
        let mut hits = 0;
        for _ in 0..3 {
            let request = Request::get("http://example.test/d")
                .body(Empty::new())
                .unwrap();
            let response = cache.ready().await.unwrap().call(request).await.unwrap();
            let info = response
                .extensions()
                .get::<cachelayer::CacheInfo>()
                .cloned()
                .unwrap();
            response.into_body().collect().await.unwrap();
            hits += usize::from(info.from_cache);
        }
        hits
    });
    assert!(!tracing::enabled!(tracing::Level::ERROR));
    assert_eq!(hits, 2);
}
