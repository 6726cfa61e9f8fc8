//! An HTTP response cache for tower and hyper: RFC 9111 semantics, requests-cache's settings.
//!
//! ```
//! use cachelayer::{CacheInfo, CacheLayer, CacheSettings};
//! use http_body_util::{BodyExt, Full};
//! use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
//! use std::convert::Infallible;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // Any tower service that returns http::Response: a hyper-util client, an axum Router, ...
//! let origin = service_fn(|_req: http::Request<Full<bytes::Bytes>>| async {
//!     let response = http::Response::builder()
//!         .header("cache-control", "max-age=60")
//!         .body(Full::new(bytes::Bytes::from("hello")))
//!         .unwrap();
//!     Ok::<_, Infallible>(response)
//! });
//! let mut client = ServiceBuilder::new()
//!     .layer(CacheLayer::new(CacheSettings::default()))
//!     .service(origin);
//!
//! for expected_from_cache in [false, true] {
//!     let request = http::Request::get("http://example.com/").body(Full::default()).unwrap();
//!     let response = client.ready().await.unwrap().call(request).await.unwrap();
//!     let info = response.extensions().get::<CacheInfo>().unwrap().clone();
//!     let body = response.into_body().collect().await.unwrap().to_bytes();
//!     assert_eq!(body, "hello");
//!     assert_eq!(info.from_cache, expected_from_cache);
//! }
//! # }
//! ```
//!
//! # How a request goes through the cache
//!
//! 1. **Policy**: methods outside `allowable_methods`, disabled caches and `DO_NOT_CACHE` bypass
//!    it (unsafe methods then invalidate, RFC 9111 §4.4); the request's `Cache-Control` /
//!    `Pragma` and per-request [`CacheOptions`] are read (§5.2.1).
//! 2. **Key**: method + normalized URL (+ chosen headers, + the body when a
//!    [`KeyRequestBodyLayer`] supplies it), see [`CacheKey`]; a HEAD has its GET's key (§4.3.5).
//! 3. **Lookup** in the [`Store`]: a fresh stored response is served at once, with `Age`
//!    (§4, §5.1); a client's conditional request is answered with 304 and a single byte range
//!    with 206 when they apply. A response with `Vary` is looked up among its variants (§4.1).
//! 4. **Validation**: a stale stored response with a validator is revalidated with
//!    `If-None-Match` / `If-Modified-Since`; a 304 freshens it and the client gets the full
//!    response (§4.3).
//! 5. **Staleness**: a stale response may be served at once while one background revalidation
//!    runs (`stale_while_revalidate`), or instead of an origin failure (`stale_if_error`),
//!    RFC 5861.
//! 6. **Coalescing**: concurrent requests that need the origin for one key send one request; the
//!    others wait for its response to be stored (`coalesce_requests`).
//! 7. **Store**: a storable response (§3) streams to the client while it is recorded, and is
//!    stored when its body ends, with an expiration resolved in requests-cache's order of
//!    precedence.
//!
//! A failing or slow store never fails a request: a read error is a miss, a write error leaves
//! the response unstored. [`CacheLayer::cache`] gives a [`Cache`] handle to inspect and remove
//! stored responses.

mod body;
mod cache;
mod future;
mod health;
mod info;
mod layer;
pub mod metrics;
mod options;
mod redact;
mod request_body;
mod rules;
mod service;
mod settings;
mod stage;
mod trace;

pub use body::CacheBody;
pub use cache::{Cache, EntryFilter, EntryInfo};
pub use future::ResponseFuture;
pub use info::{CacheInfo, CacheOutcome, Detail};
pub use layer::CacheLayer;
pub use options::{CacheOptions, KeyBody};
pub use redact::{REDACTED, RedactedUri};
pub use request_body::{
    BoxError, DEFAULT_KEY_BODY_LIMIT, KeyRequestBody, KeyRequestBodyFuture, KeyRequestBodyLayer,
};
pub use rules::{FilterFn, KeyFn, PatternError, ResponseView, UrlPattern};
pub use service::CacheService;
pub use settings::{
    CacheSettings, DEFAULT_MAX_BODY_SIZE, DEFAULT_STALE_RETENTION, SetCookie, StaleWindow,
};
pub use stage::write::strip_hop_by_hop;

pub use cachelayer_policy::expiration::{DO_NOT_CACHE, EXPIRE_IMMEDIATELY, NEVER_EXPIRE};
pub use cachelayer_policy::key::{DEFAULT_IGNORED_PARAMETERS, MatchHeaders};
pub use cachelayer_policy::{
    CacheKey, CacheKind, Clock, ExpireAfter, HeuristicFreshness, ManualClock, SystemClock,
};
pub use cachelayer_store::{MemoryStore, Store, StoreError, StoredResponse};

/// The RFC 9111 rules cachelayer is built on (the `cachelayer-policy` crate).
pub use cachelayer_policy as policy;
/// The `Store` trait, stored-entry model and memory store (the `cachelayer-store` crate).
pub use cachelayer_store as store;
