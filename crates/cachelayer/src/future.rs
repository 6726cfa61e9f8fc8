//! [`ResponseFuture`]: the stages of one request, as a state machine.

use crate::body::{CacheBody, PendingWrite};
use crate::health::StoreOp;
use crate::info::{CacheInfo, CacheOutcome, Detail, age_header};
use crate::layer::Shared;
use crate::metrics::OpStart;
use crate::settings::ActiveSettings;
use crate::stage::coalesce::{FlightGuard, Join};
use crate::stage::invalidate;
use crate::stage::lookup::{self, Lookup, Unusable};
use crate::stage::partial::{self, PartialLookup};
use crate::stage::range::{self, RangeAnswer};
use crate::stage::request::{self, Plan, RequestPlan};
use crate::stage::revalidate::{self, Forward};
use crate::stage::served;
use crate::stage::stale;
use crate::stage::timeout::{self, Bounded, bounded};
use crate::stage::variant::{Fields, put_entry, variant_key};
use crate::stage::write::{self, RequestSnapshot, ResponseHead};
use crate::trace::{self, LogTime};
use bytes::Bytes;
use cachelayer_policy::CacheKey;
use cachelayer_policy::freshness;
use cachelayer_policy::validators::{self, ConditionalOutcome};
use cachelayer_store::{StoreFuture, StoredResponse};
use http::header::{AGE, HeaderName};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body::Body;
use pin_project_lite::pin_project;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::SystemTime;
use tower_service::Service;
use tracing::Span;

static CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");

pin_project! {
    /// The response future of [`CacheService`](crate::CacheService). Polled inside the
    /// request's `cache` tracing span (see the crate's tracing fields in the README).
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S, B>,
        span: Span,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B>
    where
        S: Service<Request<B>>,
    {
        // Waiting for the store.
        Lookup {
            lookup: Bounded<Option<Arc<StoredResponse>>>,
            ctx: Option<Box<LookupCtx<S, B>>>,
        },
        // Waiting for the inner service.
        Origin {
            #[pin]
            fut: S::Future,
            ctx: Option<Box<OriginCtx>>,
        },
        // Waiting for the store to take a freshened entry (`started` is in its context).
        Freshen {
            write: StoreFuture<()>,
            ctx: Option<Box<FreshenCtx>>,
        },
        // Waiting for another request's flight to the origin for the same key.
        Wait {
            wait: Pin<Box<dyn Future<Output = ()> + Send>>,
            ctx: Option<Box<LookupCtx<S, B>>>,
        },
        // Waiting for the store to remove what an unsafe request invalidated.
        Invalidate {
            remove: StoreFuture<()>,
            pending: Option<(S::Response, Box<OriginCtx>)>,
            started: OpStart,
        },
        Done,
    }
}

/// The settings snapshot and shared state a request works with.
#[derive(Clone)]
struct Env {
    shared: Arc<Shared>,
    settings: Arc<ActiveSettings>,
    /// A subscriber records the request's span: store operations are timed for it, and the
    /// span ([`Span::current`] while the future is polled) gets the outcome. When `false`,
    /// nothing is timed or recorded for the span.
    traced: bool,
}

impl Env {
    fn now(&self) -> SystemTime {
        self.shared.clock.now()
    }

    /// A span records this request: store operations are timed for it.
    #[inline]
    fn traced(&self) -> bool {
        self.traced
    }

    /// The request's span, while the future is polled; a disabled span when not traced.
    fn span(&self) -> Span {
        if self.traced {
            Span::current()
        } else {
            Span::none()
        }
    }

    /// Looks `key` up in the store: the answer (given at once, or the store's future), and
    /// when a pending lookup started if it is timed (for [`record_lookup`](Self::record_lookup)
    /// once it is ready). An answer given at once is recorded here, on `span`. Untimed (no
    /// clock read) without the `metrics` feature and without a subscriber for the span.
    #[inline(always)]
    fn lookup(
        &self,
        key: &CacheKey,
        span: &Span,
    ) -> (Bounded<Option<Arc<StoredResponse>>>, OpStart) {
        if crate::metrics::on() || self.traced {
            return self.lookup_timed(key, span);
        }
        let lookup = timeout::lookup(&*self.shared.store, key, self.settings.store_timeout);
        (lookup, OpStart::UNTIMED)
    }

    #[inline(never)]
    fn lookup_timed(
        &self,
        key: &CacheKey,
        span: &Span,
    ) -> (Bounded<Option<Arc<StoredResponse>>>, OpStart) {
        let started = OpStart::now(true);
        let lookup = timeout::lookup(&*self.shared.store, key, self.settings.store_timeout);
        if !lookup.is_ready() {
            return (lookup, started);
        }
        if let Some(took) = started.elapsed() {
            self.store_time(StoreOp::Read, took, span);
        }
        (lookup, OpStart::UNTIMED)
    }

    /// A pending lookup that started at `started` is ready: records how long it took.
    #[inline]
    fn record_lookup(&self, started: OpStart) {
        if let Some(took) = started.elapsed() {
            self.store_time(StoreOp::Read, took, &self.span());
        }
    }

    /// Records how long a store operation took (histogram, and `span` when traced).
    fn store_time(&self, op: StoreOp, took: std::time::Duration, span: &Span) {
        crate::metrics::store_time(self.shared.health.store_kind(), op, took);
        trace::record_store_time(span, op, took);
    }

    /// A store operation `op` that started at `started` is done.
    fn store_op_done(&self, op: StoreOp, started: OpStart) {
        self.shared.health.finished(op, started, &self.span());
    }
}

struct LookupCtx<S, B> {
    inner: S,
    request: Request<B>,
    env: Env,
    plan: RequestPlan,
    /// When the request arrived: the "now" of its lookup.
    now: SystemTime,
    /// Nothing was waited for since `now` was read (the store answered at once): `now` serves as
    /// the request's `request_time` (RFC 9111 §4.2.3) without reading the clock again. Reading
    /// it earlier only makes the response's age larger, by the microseconds of the lookup.
    now_is_current: bool,
    /// The lookup is the second one, of a secondary key (`Vary`).
    variant: bool,
    /// The response stored at the primary key when it is another variant than the one this
    /// request selects: its `ETag` can revalidate for this request (RFC 9111 §4.3.1).
    other_variant: Option<Arc<StoredResponse>>,
    /// When the request started waiting for another's flight to the origin for its key: it does
    /// not wait again, and a response the origin gave since then answers it even when it asked
    /// for revalidation (`no-cache`, `refresh`).
    waited_since: Option<SystemTime>,
    /// When the pending store lookup started, when it is timed.
    lookup_started: OpStart,
}

struct OriginCtx {
    env: Env,
    /// `None` when the request bypasses the cache.
    cached: Option<CachedRequest>,
    outcome: CacheOutcome,
    detail: Option<Detail>,
    /// For a bypassed unsafe request: what invalidation needs of it.
    unsafe_request: Option<RequestSnapshot>,
    /// Invalidation has run.
    invalidated: bool,
    /// This request leads the flight for its key (coalescing): released once its response is
    /// stored or known not to be.
    flight: Option<FlightGuard>,
}

/// A request the cache looked up and sent to the origin: what it needs of it afterwards.
struct CachedRequest {
    plan: RequestPlan,
    snapshot: RequestSnapshot,
    stored: Option<Arc<StoredResponse>>,
    /// The variant whose `ETag` was sent ([`Forward::OtherVariant`]), until a 304 selects it.
    other_variant: Option<Arc<StoredResponse>>,
    forward: Forward,
    request_time: SystemTime,
}

struct FreshenCtx {
    env: Env,
    entry: Arc<StoredResponse>,
    method: Method,
    request_headers: HeaderMap,
    info: CacheInfo,
    /// The origin's 304 header fields, when the 304 answers the client's own conditional request.
    client_not_modified: Option<HeaderMap>,
    /// The coalescing flight, released once the freshened response is stored.
    _flight: Option<FlightGuard>,
    /// When the store write started.
    started: OpStart,
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    pub(crate) fn start(mut inner: S, request: Request<B>, shared: Arc<Shared>) -> Self {
        let settings = shared.settings.load_full();
        let span = trace::request_span(
            request.method(),
            request.uri(),
            &settings.ignored_parameters,
        );
        let env = Env {
            settings,
            shared,
            traced: !span.is_disabled(),
        };
        let now = env.now();
        let plan = request::plan(
            request.method(),
            request.uri(),
            request.headers(),
            request.extensions(),
            &env.settings,
            now,
        );
        let state = match plan {
            Plan::Bypass { detail } => {
                tracing::debug!(parent: &span, detail = detail.as_str(), "cache bypass");
                let unsafe_request =
                    invalidate::is_unsafe(request.method()).then(|| RequestSnapshot {
                        method: request.method().clone(),
                        uri: request.uri().clone(),
                        headers: request.headers().clone(),
                    });
                State::Origin {
                    fut: inner.call(request),
                    ctx: Some(Box::new(OriginCtx {
                        env,
                        cached: None,
                        outcome: CacheOutcome::Bypass,
                        detail: Some(detail),
                        unsafe_request,
                        invalidated: false,
                        flight: None,
                    })),
                }
            }
            Plan::Cache(plan) => {
                if env.traced() {
                    span.record("key", tracing::field::display(&plan.key));
                }
                let (lookup, lookup_started) = env.lookup(&plan.key, &span);
                State::Lookup {
                    lookup,
                    ctx: Some(Box::new(LookupCtx {
                        inner,
                        request,
                        env,
                        plan,
                        now,
                        now_is_current: true,
                        variant: false,
                        other_variant: None,
                        waited_since: None,
                        lookup_started,
                    })),
                }
            }
        };
        ResponseFuture { state, span }
    }
}

impl<S, B, RB> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
    RB: Body<Data = Bytes> + Send + 'static,
{
    type Output = Result<Response<CacheBody<RB>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let _entered = this.span.enter();
        loop {
            match this.state.as_mut().project() {
                StateProj::Lookup { lookup, ctx } => {
                    let Poll::Ready(found) = Pin::new(lookup).poll(cx) else {
                        if let Some(ctx) = ctx.as_mut() {
                            ctx.now_is_current = false;
                        }
                        return Poll::Pending;
                    };
                    let ctx = ctx.take().expect("ResponseFuture polled after completion");
                    ctx.env.record_lookup(ctx.lookup_started);
                    match after_lookup(ctx, found) {
                        AfterLookup::Respond(response) => {
                            this.state.set(State::Done);
                            return Poll::Ready(Ok(response));
                        }
                        AfterLookup::Forward(fut, ctx) => this.state.set(State::Origin {
                            fut,
                            ctx: Some(ctx),
                        }),
                        AfterLookup::Variant(lookup, ctx) => this.state.set(State::Lookup {
                            lookup,
                            ctx: Some(ctx),
                        }),
                        AfterLookup::Wait(wait, ctx) => this.state.set(State::Wait {
                            wait,
                            ctx: Some(ctx),
                        }),
                    }
                }
                StateProj::Wait { wait, ctx } => {
                    ready!(wait.as_mut().poll(cx));
                    let mut ctx = ctx.take().expect("ResponseFuture polled after completion");
                    ctx.now = ctx.env.now();
                    ctx.now_is_current = true;
                    tracing::debug!("coalesced request: looking up again");
                    let (lookup, started) = ctx.env.lookup(&ctx.plan.key, &ctx.env.span());
                    ctx.lookup_started = started;
                    this.state.set(State::Lookup {
                        lookup,
                        ctx: Some(ctx),
                    });
                }
                StateProj::Origin { fut, ctx } => {
                    let result = ready!(fut.poll(cx));
                    let ctx = ctx.take().expect("ResponseFuture polled after completion");
                    if let Some(output) =
                        continue_after_origin(this.state.as_mut(), after_origin(result, ctx))
                    {
                        return Poll::Ready(output);
                    }
                }
                StateProj::Invalidate {
                    remove,
                    pending,
                    started,
                } => {
                    let _ = ready!(remove.as_mut().poll(cx));
                    let (response, ctx) = pending
                        .take()
                        .expect("ResponseFuture polled after completion");
                    ctx.env.store_op_done(StoreOp::Invalidate, *started);
                    if let Some(output) =
                        continue_after_origin(this.state.as_mut(), after_origin(Ok(response), ctx))
                    {
                        return Poll::Ready(output);
                    }
                }
                StateProj::Freshen { write, ctx } => {
                    let written = ready!(write.as_mut().poll(cx));
                    let ctx = ctx.take().expect("ResponseFuture polled after completion");
                    ctx.env.store_op_done(StoreOp::Freshen, ctx.started);
                    match written {
                        Ok(()) => ctx.env.shared.health.success(),
                        Err(error) => {
                            ctx.env.shared.health.failure(StoreOp::Freshen, &error);
                        }
                    }
                    this.state.set(State::Done);
                    return Poll::Ready(Ok(respond_freshened(*ctx)));
                }
                StateProj::Done => panic!("ResponseFuture polled after completion"),
            }
        }
    }
}

impl<S, B> fmt::Debug for ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Lookup { .. } => "lookup",
            State::Origin { .. } => "origin",
            State::Freshen { .. } => "freshen",
            State::Wait { .. } => "wait",
            State::Invalidate { .. } => "invalidate",
            State::Done => "done",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}

/// Moves to the state `after` asks for; `Some(output)` when the future is done.
fn continue_after_origin<S, B, RB>(
    mut state: Pin<&mut State<S, B>>,
    after: AfterOrigin<RB, S::Error>,
) -> Option<Result<Response<CacheBody<RB>>, S::Error>>
where
    S: Service<Request<B>, Response = Response<RB>>,
{
    match after {
        AfterOrigin::Respond(output) => {
            state.set(State::Done);
            Some(output)
        }
        AfterOrigin::Freshen(write, ctx) => {
            state.set(State::Freshen {
                write,
                ctx: Some(ctx),
            });
            None
        }
        AfterOrigin::Invalidate(remove, response, ctx) => {
            let started = OpStart::now(ctx.env.traced());
            state.set(State::Invalidate {
                remove,
                pending: Some((response, ctx)),
                started,
            });
            None
        }
    }
}

// ===== stages =====

enum AfterLookup<S: Service<Request<B>>, B, RB> {
    Respond(Response<CacheBody<RB>>),
    Forward(S::Future, Box<OriginCtx>),
    /// Look up the secondary key of the variant the request selects.
    Variant(Bounded<Option<Arc<StoredResponse>>>, Box<LookupCtx<S, B>>),
    /// Wait for the request in flight for the same key, then look up again.
    Wait(
        Pin<Box<dyn Future<Output = ()> + Send>>,
        Box<LookupCtx<S, B>>,
    ),
}

/// Lookup -> serve from the store, or forward (with validators when revalidating).
fn after_lookup<S, B, RB>(
    mut ctx: Box<LookupCtx<S, B>>,
    found: Result<Option<Arc<StoredResponse>>, cachelayer_store::StoreError>,
) -> AfterLookup<S, B, RB>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
    RB: Body<Data = Bytes> + Send + 'static,
{
    // The context stays in its box until the request goes to the origin: a hit only reads it.
    let now = ctx.now;
    let variant = ctx.variant;
    let waited_since = ctx.waited_since;
    let found = match found {
        Ok(found) => {
            ctx.env.shared.health.success();
            found
        }
        Err(error) => {
            tracing::debug!(%error, "cache store read failed; treating as a miss");
            ctx.env.shared.health.failure(StoreOp::Read, &error);
            None
        }
    };

    let mut outcome = CacheOutcome::Miss;
    let mut detail = None;
    let mut stored = None;
    if let Some(entry) = found.filter(|_| !ctx.plan.force_refresh) {
        let read = ctx.plan.read || waited_since.is_some_and(|since| entry.created_at >= since);
        let verdict = lookup::evaluate(
            &entry,
            ctx.request.method(),
            ctx.request.headers(),
            &ctx.plan,
            &ctx.env.settings,
            now,
        );
        tracing::debug!(verdict = verdict.as_str(), "cache lookup");
        // A partial entry serves the ranges its parts hold and nothing else (RFC 9111 §3.3):
        // any other request goes to the origin as if nothing were stored.
        let verdict = if entry.is_partial() {
            match partial::lookup(
                &entry,
                verdict,
                read,
                ctx.request.method(),
                ctx.request.headers(),
            ) {
                PartialLookup::Serve(part) => {
                    let outcome = if verdict == Lookup::Fresh {
                        CacheOutcome::Hit
                    } else {
                        CacheOutcome::StaleHit
                    };
                    let info = CacheInfo::new(outcome, Some(ctx.plan.key));
                    return AfterLookup::Respond(serve_part(&entry, part, info, &ctx.env, now));
                }
                PartialLookup::OtherVariant => verdict,
                PartialLookup::Forward => Lookup::Unusable(Unusable::Partial),
            }
        } else {
            verdict
        };
        match verdict {
            Lookup::Fresh | Lookup::StaleAcceptable if read => {
                let outcome = if verdict == Lookup::Fresh {
                    CacheOutcome::Hit
                } else {
                    CacheOutcome::StaleHit
                };
                let info = CacheInfo::new(outcome, Some(ctx.plan.key));
                return AfterLookup::Respond(serve_stored(
                    &entry,
                    info,
                    ctx.request.method(),
                    ctx.request.headers(),
                    &ctx.env,
                    now,
                    None,
                ));
            }
            Lookup::Fresh | Lookup::StaleAcceptable | Lookup::RejectedByRequest => {
                outcome = CacheOutcome::ForwardedByRequest;
                stored = Some(entry);
            }
            Lookup::Stale => {
                outcome = CacheOutcome::Refreshed;
                detail = Some(Detail::Stale);
                stored = Some(entry);
            }
            Lookup::Precondition => {
                outcome = CacheOutcome::ForwardedByRequest;
                detail = Some(Detail::Precondition);
                stored = Some(entry);
            }
            Lookup::Unusable(Unusable::VaryMismatch) if !variant => {
                // Another variant is at the primary key: look up the one this request selects.
                if let Some(key) = variant_key(
                    &ctx.plan.key,
                    &entry.headers,
                    ctx.request.headers(),
                    Fields::Sent,
                ) {
                    tracing::debug!(variant = %key, "cache lookup: another variant is stored");
                    let (lookup, lookup_started) = ctx.env.lookup(&key, &ctx.env.span());
                    ctx.variant = true;
                    // Parts are never another variant's response.
                    ctx.other_variant = (!entry.is_partial()).then(|| entry.clone());
                    ctx.lookup_started = lookup_started;
                    return AfterLookup::Variant(lookup, ctx);
                }
                outcome = CacheOutcome::Refreshed;
                detail = Some(Detail::VaryMismatch);
            }
            Lookup::Unusable(reason) => {
                outcome = CacheOutcome::Refreshed;
                detail = Some(reason.detail());
            }
        }
    } else if variant {
        // The URL is stored, but not the variant this request selects (RFC 9211 `vary-miss`).
        outcome = CacheOutcome::Refreshed;
        detail = Some(Detail::VaryMismatch);
    } else if ctx.plan.force_refresh {
        outcome = CacheOutcome::ForwardedByRequest;
        detail = Some(Detail::ForceRefresh);
    } else {
        tracing::debug!("cache lookup: miss");
    }

    if ctx.plan.only_if_cached {
        // Offline: a stale response is still better than nothing when stale-if-error allows it.
        let stale = serve_stale_if_error(
            stored.as_ref(),
            &ctx.plan,
            ctx.request.method(),
            ctx.request.headers(),
            &ctx.env,
            now,
            OriginFailure::NotAsked,
        );
        if let Some(response) = stale {
            return AfterLookup::Respond(response);
        }
        let mut info = CacheInfo::new(CacheOutcome::NotCached, Some(ctx.plan.key));
        info.detail = detail;
        return AfterLookup::Respond(gateway_timeout(info, &ctx.env, now));
    }

    // Stale-while-revalidate (RFC 5861 §3): serve the stale response now, revalidate in the
    // background, at most once per key at a time.
    if let Some(entry) = stored.as_ref().filter(|e| {
        detail == Some(Detail::Stale)
            && ctx.plan.read
            && stale::while_revalidate_allowed(e, &ctx.plan, &ctx.env.settings, now)
    }) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let mut info = CacheInfo::new(
                CacheOutcome::StaleWhileRevalidate,
                Some(ctx.plan.key.clone()),
            );
            info.detail = Some(Detail::StaleWhileRevalidate);
            let response = serve_stored(
                entry,
                info,
                ctx.request.method(),
                ctx.request.headers(),
                &ctx.env,
                now,
                None,
            );
            match ctx.env.shared.flights.join(&ctx.plan.key) {
                Join::Leader(guard) => {
                    tracing::debug!("serving stale; revalidating in the background");
                    let entry = entry.clone();
                    let span = trace::background_span(&ctx.env.span());
                    if !span.is_disabled() {
                        span.record("key", tracing::field::display(&ctx.plan.key));
                    }
                    let (fut, ctx) =
                        forward_to_origin(ctx, Some(entry), None, outcome, detail, Some(guard));
                    let background: ResponseFuture<S, B> = ResponseFuture {
                        state: State::Origin {
                            fut,
                            ctx: Some(ctx),
                        },
                        span: span.clone(),
                    };
                    runtime.spawn(tracing::Instrument::instrument(
                        revalidate_in_background(background),
                        span,
                    ));
                }
                Join::Waiter(_) => {
                    tracing::debug!("serving stale; a revalidation is already running");
                }
            }
            return AfterLookup::Respond(response);
        }
    }

    // Coalescing: one request per key goes to the origin; the others wait for its response.
    // Requests that must be revalidated (`no-cache`) are coalesced too: any client can send
    // them, and the origin must not see one request per client.
    let mut flight = None;
    if ctx.env.settings.coalesce_requests
        && !ctx.plan.force_refresh
        && waited_since.is_none()
        && tokio::runtime::Handle::try_current().is_ok()
    {
        match ctx.env.shared.flights.join(&ctx.plan.key) {
            Join::Leader(guard) => flight = Some(guard),
            Join::Waiter(waiter) => {
                tracing::debug!("coalesced: waiting for the request in flight");
                let wait = waiter.wait(ctx.env.settings.coalesce_timeout);
                ctx.variant = false;
                ctx.other_variant = None;
                ctx.waited_since = Some(now);
                ctx.lookup_started = OpStart::UNTIMED;
                return AfterLookup::Wait(wait, ctx);
            }
        }
    }

    // A request that selects no stored variant may still be answered by one (RFC 9111 §4.3.1).
    let other_variant = ctx.other_variant.take().filter(|_| stored.is_none());
    let (fut, ctx) = forward_to_origin(ctx, stored, other_variant, outcome, detail, flight);
    AfterLookup::Forward(fut, ctx)
}

/// Sends the request to the origin (with the stored validators when revalidating `stored`, or
/// with the `ETag` of `other_variant` when the request selects no stored variant): the inner
/// service's future and what the `Origin` state needs.
// Taken boxed: unboxing it at the call would copy the whole context once more.
#[allow(clippy::boxed_local)]
fn forward_to_origin<S, B>(
    ctx: Box<LookupCtx<S, B>>,
    stored: Option<Arc<StoredResponse>>,
    other_variant: Option<Arc<StoredResponse>>,
    outcome: CacheOutcome,
    detail: Option<Detail>,
    flight: Option<FlightGuard>,
) -> (S::Future, Box<OriginCtx>)
where
    S: Service<Request<B>>,
{
    let LookupCtx {
        mut inner,
        mut request,
        env,
        plan,
        now,
        now_is_current,
        ..
    } = *ctx;
    let snapshot = RequestSnapshot {
        method: request.method().clone(),
        uri: request.uri().clone(),
        headers: request.headers().clone(),
    };
    let forward = match (&stored, &other_variant) {
        (Some(entry), _) => revalidate::prepare(entry, request.headers_mut()),
        (None, Some(other)) => revalidate::prepare_other_variant(
            other,
            &snapshot.method,
            env.settings.shared,
            request.headers_mut(),
        ),
        (None, None) => Forward::Unconditional,
    };
    let request_time = if now_is_current { now } else { env.now() };
    let fut = inner.call(request);
    let ctx = OriginCtx {
        env,
        cached: Some(CachedRequest {
            plan,
            snapshot,
            stored,
            other_variant: other_variant.filter(|_| forward == Forward::OtherVariant),
            forward,
            request_time,
        }),
        outcome,
        detail,
        unsafe_request: None,
        invalidated: false,
        flight,
    };
    (fut, Box::new(ctx))
}

/// Runs a background revalidation to its end: the response is stored (its body read to the
/// end) or freshened; a failure is logged and keeps the stale response.
async fn revalidate_in_background<S, B, RB>(revalidation: ResponseFuture<S, B>)
where
    S: Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
    RB: Body<Data = Bytes> + Send + 'static,
{
    match revalidation.await {
        Ok(response) => {
            let status = response.status();
            let mut body = response.into_body();
            while let Some(frame) =
                std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
            {
                if frame.is_err() {
                    tracing::warn!(%status, "background revalidation: the origin's body failed; the stale response stays");
                    return;
                }
            }
            tracing::debug!(%status, "background revalidation done");
        }
        Err(_) => {
            tracing::warn!("background revalidation: the origin failed; the stale response stays")
        }
    }
}

enum AfterOrigin<RB, E> {
    Respond(Result<Response<CacheBody<RB>>, E>),
    Freshen(StoreFuture<()>, Box<FreshenCtx>),
    /// Remove invalidated entries, then go on with the response.
    Invalidate(StoreFuture<()>, Response<RB>, Box<OriginCtx>),
}

/// The keys a response invalidates (RFC 9111 §4.4 for unsafe methods; §4.3.5 for a HEAD whose
/// 200 shows the stored GET response changed); `None` when there is nothing to remove.
fn invalidation<RB>(ctx: &OriginCtx, response: &Response<RB>) -> Option<Vec<CacheKey>> {
    if ctx.invalidated {
        return None;
    }
    let (request, cached) = match (&ctx.cached, &ctx.unsafe_request) {
        (Some(cached), _) => (&cached.snapshot, Some(cached)),
        (None, Some(request)) => (request, None),
        (None, None) => return None,
    };
    if let Some(cached) = cached {
        let stored_get_changed = request.method == Method::HEAD
            && response.status() == StatusCode::OK
            && cached.stored.is_some();
        if stored_get_changed {
            return Some(vec![cached.plan.key.clone()]);
        }
    }
    let keys = invalidate::keys_to_invalidate(
        &request.method,
        &request.uri,
        &request.headers,
        response.status(),
        response.headers(),
        &ctx.env.settings,
    );
    (!keys.is_empty()).then_some(keys)
}

/// The origin answered (or failed) -> invalidation, 304 freshening, stale-if-error, or the new
/// response, stored when it may be. Each outcome is a step of its own, tried in this order.
///
/// The context stays in its box: the steps borrow it instead of moving its (large) parts.
fn after_origin<RB, E>(
    result: Result<Response<RB>, E>,
    mut ctx: Box<OriginCtx>,
) -> AfterOrigin<RB, E>
where
    RB: Body<Data = Bytes>,
{
    let result = match result {
        Ok(response) => match invalidation(&ctx, &response) {
            Some(keys) => {
                ctx.invalidated = true;
                let remove = bounded(
                    invalidate::remove_all(&ctx.env.shared.store, &ctx.env.shared.health, keys),
                    ctx.env.settings.store_timeout,
                );
                return AfterOrigin::Invalidate(remove, response, ctx);
            }
            None => Ok(response),
        },
        Err(error) => Err(error),
    };
    let OriginCtx {
        env,
        cached,
        outcome,
        detail,
        flight,
        ..
    } = &mut *ctx;
    let now = env.now();
    let Some(cached) = cached else {
        // Bypass: pass the response through, labelled.
        return AfterOrigin::Respond(
            result.map(|response| passed_through(response, *outcome, *detail, env, now)),
        );
    };
    let response = match result {
        Ok(response) => response,
        Err(error) => {
            return AfterOrigin::Respond(stale_if_unreachable(cached, env, now).ok_or(error));
        }
    };
    let mut exchange = Exchange {
        env,
        cached,
        now,
        outcome: *outcome,
        detail: *detail,
        flight,
    };
    if !exchange.select_other_variant(&response) {
        tracing::debug!("304 naming no stored variant: bad gateway");
        let bad_gateway = invalid_not_modified(&exchange.cached.plan, exchange.env, now);
        return AfterOrigin::Respond(Ok(bad_gateway));
    }
    if let Some(entry) = exchange.to_freshen(&response) {
        return exchange.freshen(&entry, &response);
    }
    let status = response.status();
    if let Some(served) = exchange
        .unchanged_for_other_validators(status)
        .or_else(|| exchange.stale_for_error_status(status))
    {
        return AfterOrigin::Respond(Ok(served));
    }
    AfterOrigin::Respond(Ok(exchange.new_response(response)))
}

/// The response of a request that bypassed the cache, labelled.
fn passed_through<RB>(
    response: Response<RB>,
    outcome: CacheOutcome,
    detail: Option<Detail>,
    env: &Env,
    now: SystemTime,
) -> Response<CacheBody<RB>> {
    let mut info = CacheInfo::new(outcome, None);
    info.detail = detail;
    let mut response = response.map(CacheBody::origin);
    label(&mut response, info, env, now, None);
    response
}

/// The stored response in place of an origin that could not be reached, when stale-if-error
/// allows it (RFC 5861 §4).
fn stale_if_unreachable<RB>(
    cached: &CachedRequest,
    env: &Env,
    now: SystemTime,
) -> Option<Response<CacheBody<RB>>> {
    serve_stale_if_error(
        cached.stored.as_ref(),
        &cached.plan,
        &cached.snapshot.method,
        &cached.snapshot.headers,
        env,
        now,
        OriginFailure::Unreachable,
    )
}

/// A response from the origin to a request the cache looked up: what the steps after the
/// origin work with, borrowed from the request's [`OriginCtx`].
struct Exchange<'a> {
    env: &'a Env,
    /// The request; its `stored` becomes the variant a 304 selected, when one does.
    cached: &'a mut CachedRequest,
    /// When the response arrived.
    now: SystemTime,
    outcome: CacheOutcome,
    detail: Option<Detail>,
    flight: &'a mut Option<FlightGuard>,
}

impl Exchange<'_> {
    /// A 304 to the `ETag` of another variant selects it for this request when it names that
    /// `ETag` (RFC 9111 §4.3.4): it becomes the stored response, freshened and stored for this
    /// request's secondary key. `false` when the 304 names none of them.
    fn select_other_variant<RB>(&mut self, response: &Response<RB>) -> bool {
        let Some(other) = self.cached.other_variant.take() else {
            return true;
        };
        if response.status() != StatusCode::NOT_MODIFIED {
            return true;
        }
        match revalidate::adopt_other_variant(
            &other,
            response.headers(),
            &self.cached.snapshot.headers,
        ) {
            Some(adopted) => {
                self.cached.stored = Some(Arc::new(adopted));
                true
            }
            None => false,
        }
    }

    /// The stored response the origin's answer freshens: a 304 that applies to it (RFC 9111
    /// §4.3.4), or a 200 to a HEAD whose validators agree with the stored GET response's
    /// (§4.3.5). A HEAD's 200 whose validators differ makes the stored GET response stale.
    fn to_freshen<RB>(&self, response: &Response<RB>) -> Option<Arc<StoredResponse>> {
        let status = response.status();
        let stored = self.cached.stored.as_ref()?;
        let head_of_stored_get = self.cached.snapshot.method == Method::HEAD
            && status == StatusCode::OK
            && stored.request.method == Method::GET;
        if head_of_stored_get && !revalidate::head_applies(stored, response.headers()) {
            mark_stale(self.env, &self.cached.plan, stored, self.now);
        }
        let applies = if status == StatusCode::NOT_MODIFIED {
            revalidate::not_modified_applies(stored, response.headers())
        } else {
            head_of_stored_get && revalidate::head_applies(stored, response.headers())
        };
        applies.then(|| stored.clone())
    }

    /// Freshens `entry` with the origin's 304 (or HEAD) header fields and stores it; a response
    /// the new fields make unstorable is served once and removed from the store.
    fn freshen<RB, E>(self, entry: &StoredResponse, response: &Response<RB>) -> AfterOrigin<RB, E> {
        let not_modified = response.headers();
        let Exchange {
            env,
            cached:
                CachedRequest {
                    plan,
                    snapshot,
                    forward,
                    request_time,
                    ..
                },
            now,
            flight,
            ..
        } = self;
        let (forward, request_time) = (*forward, *request_time);
        // The origin's 304 answers the client's own conditional request: the client gets it.
        let client_not_modified = (response.status() == StatusCode::NOT_MODIFIED
            && forward == Forward::ClientConditional)
            .then(|| not_modified.clone());
        let mut info = CacheInfo::new(CacheOutcome::Revalidated, Some(plan.key.clone()));
        let (write, served): (StoreFuture<()>, Arc<StoredResponse>) = match write::freshen(
            entry,
            snapshot,
            plan,
            not_modified,
            &env.settings,
            request_time,
            now,
        ) {
            Ok(freshened) => {
                tracing::debug!("revalidated: 304, stored response freshened");
                let freshened = Arc::new(freshened);
                info.stored = true;
                let write = bounded(
                    put_entry(&env.shared.store, plan.key.clone(), None, freshened.clone()),
                    env.settings.store_timeout,
                );
                (write, freshened)
            }
            Err(reason) => {
                tracing::debug!(
                    reason = reason.as_str(),
                    "revalidated: 304, but the response is no longer storable"
                );
                info.detail = Some(reason);
                let mut headers = entry.headers.clone();
                validators::freshen_headers(&mut headers, not_modified);
                let served = StoredResponse {
                    headers,
                    ..StoredResponse::clone(entry)
                };
                // The response changed into one that may not be stored: remove the old one.
                // When only this request forbids writing (`no-store`, read-only), leave the
                // store as it is.
                let write: StoreFuture<()> = if plan.write {
                    let remove = env.shared.store.remove(&plan.key);
                    Box::pin(async move { remove.await.map(drop) })
                } else {
                    Box::pin(async { Ok(()) })
                };
                (write, Arc::new(served))
            }
        };
        AfterOrigin::Freshen(
            write,
            Box::new(FreshenCtx {
                started: OpStart::now(env.traced()),
                env: env.clone(),
                entry: served,
                method: snapshot.method.clone(),
                request_headers: std::mem::take(&mut snapshot.headers),
                info,
                client_not_modified,
                _flight: flight.take(),
            }),
        )
    }

    /// A 304 to the cache's own conditional that does not select the stored response (another
    /// validator, as servers behind one load balancer may give): the client asked for a full
    /// response, never a bare 304. The stored response is served as it is, not freshened.
    fn unchanged_for_other_validators<RB>(
        &self,
        status: StatusCode,
    ) -> Option<Response<CacheBody<RB>>> {
        if status != StatusCode::NOT_MODIFIED || self.cached.forward != Forward::Conditional {
            return None;
        }
        let entry = self.cached.stored.as_ref()?;
        tracing::debug!("304 for other validators: serving the stored response unchanged");
        let mut info = CacheInfo::new(
            CacheOutcome::Revalidated,
            Some(self.cached.plan.key.clone()),
        );
        info.detail = Some(Detail::ValidatorMismatch);
        Some(serve_stored(
            entry,
            info,
            &self.cached.snapshot.method,
            &self.cached.snapshot.headers,
            self.env,
            self.now,
            Some(status.as_u16()),
        ))
    }

    /// The origin failed with a status: the stored response instead, when stale-if-error
    /// allows it (RFC 5861 §4).
    fn stale_for_error_status<RB>(&self, status: StatusCode) -> Option<Response<CacheBody<RB>>> {
        if !stale::is_error_status(status, &self.cached.plan, &self.env.settings) {
            return None;
        }
        serve_stale_if_error(
            self.cached.stored.as_ref(),
            &self.cached.plan,
            &self.cached.snapshot.method,
            &self.cached.snapshot.headers,
            self.env,
            self.now,
            OriginFailure::Status(status.as_u16()),
        )
    }

    /// A new response: passed on, its body recorded for the store when it may be stored.
    fn new_response<RB>(self, response: Response<RB>) -> Response<CacheBody<RB>>
    where
        RB: Body<Data = Bytes>,
    {
        let Exchange {
            env,
            cached:
                CachedRequest {
                    plan,
                    snapshot,
                    request_time,
                    ..
                },
            now,
            outcome,
            detail,
            flight,
        } = self;
        let request_time = *request_time;
        let status = response.status();
        let (mut parts, body) = response.into_parts();
        // A response that reached the cache late, or that was already old, carries its age
        // (RFC 9111 §4.2.3, §5.1).
        let age = freshness::corrected_initial_age(&parts.headers, request_time, now);
        if age.as_secs() > 0 {
            parts.headers.insert(AGE, age_header(age));
        }
        let mut info = CacheInfo::new(outcome, Some(plan.key.clone()));
        info.detail = detail;
        let head = ResponseHead {
            status: parts.status,
            version: parts.version,
            headers: &mut parts.headers,
            initial_age: age,
        };
        let body = if status == StatusCode::NOT_MODIFIED {
            CacheBody::origin(body)
        } else {
            let part = status == StatusCode::PARTIAL_CONTENT;
            let prepared = if part {
                partial::prepare(snapshot, plan, head, &env.settings, request_time, now)
            } else {
                write::prepare_new(snapshot, plan, head, &env.settings, request_time, now)
            };
            match prepared {
                Ok(entry) => {
                    tracing::debug!(
                        expires = entry.expires.map(|at| tracing::field::display(LogTime(at))),
                        "response will be stored"
                    );
                    crate::metrics::stored();
                    info.stored = true;
                    info.expires = entry.expires;
                    let limit = if snapshot.method == Method::HEAD {
                        0
                    } else {
                        env.settings.max_body_size
                    };
                    CacheBody::recording(
                        body,
                        limit,
                        PendingWrite {
                            store: env.shared.store.clone(),
                            health: env.shared.health.clone(),
                            alias: redirect_alias(&parts.extensions, snapshot, &env.settings),
                            key: plan.key.clone(),
                            entry: Arc::new(entry),
                            flight: flight.take(),
                            timeout: env.settings.store_timeout,
                            span: env.span(),
                            part,
                        },
                    )
                }
                Err(reason) => {
                    tracing::debug!(reason = reason.as_str(), "response not stored");
                    crate::metrics::not_stored(reason);
                    info.detail = Some(reason);
                    CacheBody::origin(body)
                }
            }
        };
        let mut response = Response::from_parts(parts, body);
        label(&mut response, info, env, now, None);
        response
    }
}

/// Writes, without waiting, a copy of `entry` that is stale from `now` on: a HEAD response showed
/// that the stored GET response is no longer the current one (RFC 9111 §4.3.5).
fn mark_stale(env: &Env, plan: &RequestPlan, entry: &StoredResponse, now: SystemTime) {
    if !plan.write || entry.expires.is_some_and(|expires| expires <= now) {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    tracing::debug!("HEAD shows other validators: the stored GET is stale");
    let stale = StoredResponse {
        expires: Some(now),
        ..entry.clone()
    };
    let write = bounded(
        put_entry(&env.shared.store, plan.key.clone(), None, Arc::new(stale)),
        env.settings.store_timeout,
    );
    let health = env.shared.health.clone();
    let span = env.span();
    let started = OpStart::now(env.traced());
    runtime.spawn(async move {
        let written = write.await;
        health.finished(StoreOp::Write, started, &span);
        match written {
            Ok(()) => health.success(),
            Err(error) => {
                health.failure(StoreOp::Write, &error);
            }
        }
    });
}

/// The key of the URL a redirect-following layer below the cache ended at (tower-http's
/// `RequestUri` response extension, feature `tower-http`), when it differs from the request's.
#[cfg(feature = "tower-http")]
fn redirect_alias(
    extensions: &http::Extensions,
    request: &RequestSnapshot,
    settings: &ActiveSettings,
) -> Option<CacheKey> {
    let tower_http::follow_redirect::RequestUri(final_uri) = extensions.get()?;
    if *final_uri == request.uri {
        return None;
    }
    Some(crate::stage::request::derive_key(
        &Method::GET,
        final_uri,
        &request.headers,
        None,
        settings,
    ))
}

#[cfg(not(feature = "tower-http"))]
fn redirect_alias(
    _: &http::Extensions,
    _: &RequestSnapshot,
    _: &ActiveSettings,
) -> Option<CacheKey> {
    None
}

/// Why no usable response came from the origin, for stale-if-error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OriginFailure {
    /// The origin was not asked (`only-if-cached`).
    NotAsked,
    /// The inner service failed: the origin could not be reached.
    Unreachable,
    /// The origin answered with this error status.
    Status(u16),
}

/// The stored response in place of a failed origin response (RFC 5861 §4), when stale-if-error
/// allows it for `failure`.
fn serve_stale_if_error<RB>(
    stored: Option<&Arc<StoredResponse>>,
    plan: &RequestPlan,
    method: &Method,
    request_headers: &HeaderMap,
    env: &Env,
    now: SystemTime,
    failure: OriginFailure,
) -> Option<Response<CacheBody<RB>>> {
    let unreachable = failure == OriginFailure::Unreachable;
    let origin_status = match failure {
        OriginFailure::Status(status) => Some(status),
        OriginFailure::Unreachable | OriginFailure::NotAsked => None,
    };
    let entry =
        stored.filter(|e| stale::if_error_allowed(e, plan, &env.settings, now, unreachable))?;
    tracing::debug!(
        origin_status,
        "origin failed; serving stale (stale-if-error)"
    );
    let info = CacheInfo::new(CacheOutcome::StaleIfError, Some(plan.key.clone()));
    Some(serve_stored(
        entry,
        info,
        method,
        request_headers,
        env,
        now,
        origin_status,
    ))
}

/// After a 304 freshened the stored response: the full stored response, or the origin's 304
/// when it answered the client's own conditional request.
fn respond_freshened<RB>(ctx: FreshenCtx) -> Response<CacheBody<RB>> {
    let FreshenCtx {
        env,
        entry,
        method,
        request_headers,
        info,
        client_not_modified,
        ..
    } = ctx;
    let now = env.now();
    match client_not_modified {
        Some(headers) => {
            let mut response = Response::new(CacheBody::stored(Bytes::new()));
            *response.status_mut() = StatusCode::NOT_MODIFIED;
            *response.headers_mut() = headers;
            label(&mut response, info, &env, now, Some(304));
            response
        }
        None => serve_stored(
            &entry,
            info,
            &method,
            &request_headers,
            &env,
            now,
            Some(304),
        ),
    }
}

/// A response built from a stored one: its status, header fields and body (none for HEAD),
/// with `Age`; a 304 when the client's own conditional request matches (RFC 9111 §4.3.2).
fn serve_stored<RB>(
    entry: &Arc<StoredResponse>,
    mut info: CacheInfo,
    method: &Method,
    request_headers: &HeaderMap,
    env: &Env,
    now: SystemTime,
    origin_status: Option<u16>,
) -> Response<CacheBody<RB>> {
    info.created_at = Some(entry.created_at);
    info.expires = entry.expires;
    info.is_expired = entry.is_expired(now);
    // One pass over the (few) request fields instead of a hashed lookup per field.
    let (conditional, ranged) =
        request_headers
            .keys()
            .fold((false, false), |(conditional, ranged), name| {
                (
                    conditional
                        || name == http::header::IF_NONE_MATCH
                        || name == http::header::IF_MODIFIED_SINCE,
                    ranged || name == http::header::RANGE,
                )
            });
    let not_modified = conditional
        && validators::evaluate(request_headers, entry.status, &entry.headers)
            == ConditionalOutcome::NotModified;
    let mut response = if not_modified {
        let mut response = Response::new(CacheBody::stored(Bytes::new()));
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        *response.headers_mut() = validators::not_modified_response_headers(&entry.headers);
        response
    } else {
        let range = if method == Method::GET && ranged {
            range::answer(request_headers, entry)
        } else {
            RangeAnswer::Full
        };
        let (status, body, content_range) = match range {
            RangeAnswer::Full if method == Method::HEAD => (entry.status, Bytes::new(), None),
            RangeAnswer::Full => (entry.status, entry.body.clone(), None),
            RangeAnswer::Partial {
                body,
                content_range,
            } => (StatusCode::PARTIAL_CONTENT, body, Some(content_range)),
            RangeAnswer::Unsatisfiable { content_range } => (
                StatusCode::RANGE_NOT_SATISFIABLE,
                Bytes::new(),
                Some(content_range),
            ),
        };
        let length = body.len() as u64;
        crate::metrics::hit_bytes(body.len());
        let mut response = Response::new(CacheBody::stored(body));
        *response.status_mut() = status;
        if content_range.is_none() && origin_status.is_none() && info.is_plain_hit() {
            if let Some(key) = &info.cache_key {
                let age = entry.age(now);
                let seconds = served::Seconds {
                    age: age.as_secs(),
                    ttl: crate::info::ttl(info.expires, now),
                };
                *response.headers_mut() =
                    served::hit_headers(entry, &env.settings, key, seconds, || {
                        let mut headers = headers_for_serving(&entry.headers);
                        headers.insert(AGE, age_header(age));
                        append_cache_status(&mut headers, &info, env, now, None);
                        headers
                    });
                finish(&mut response, info, env);
                return response;
            }
        }
        *response.headers_mut() = headers_for_serving(&entry.headers);
        if let Some(content_range) = content_range {
            let headers = response.headers_mut();
            headers.insert(
                http::header::CONTENT_LENGTH,
                http::HeaderValue::from(length),
            );
            if let Ok(value) = http::HeaderValue::from_str(&content_range) {
                headers.insert(http::header::CONTENT_RANGE, value);
            }
        }
        response
    };
    response
        .headers_mut()
        .insert(AGE, age_header(entry.age(now)));
    label(&mut response, info, env, now, origin_status);
    response
}

/// A range served from a partial entry (RFC 9111 §3.3): `206` with the part's bytes, its
/// `Content-Range` and `Content-Length`, and `Age`.
fn serve_part<RB>(
    entry: &StoredResponse,
    part: partial::Part,
    mut info: CacheInfo,
    env: &Env,
    now: SystemTime,
) -> Response<CacheBody<RB>> {
    info.created_at = Some(entry.created_at);
    info.expires = entry.expires;
    info.is_expired = entry.is_expired(now);
    crate::metrics::hit_bytes(part.body.len());
    let mut response = Response::new(CacheBody::stored(part.body));
    *response.status_mut() = StatusCode::PARTIAL_CONTENT;
    *response.headers_mut() = part.headers;
    response
        .headers_mut()
        .insert(AGE, age_header(entry.age(now)));
    label(&mut response, info, env, now, None);
    response
}

/// A copy of stored header fields with room for the ones serving adds (`Age`, `Cache-Status`,
/// `Content-Range`), so that adding them does not grow the map.
fn headers_for_serving(stored: &HeaderMap) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(stored.len() + 3);
    for (name, value) in stored {
        headers.append(name.clone(), value.clone());
    }
    headers
}

/// 502 Bad Gateway for a 304 that does not name the stored variant whose `ETag` the cache sent
/// (the origin may only answer 304 when a tag it was sent matches, RFC 9110 §13.1.2): the client
/// sent no conditional, so a bare 304 cannot answer it, and the response the 304 describes is
/// not stored (RFC 9110 §15.6.3: an invalid response from an inbound server).
fn invalid_not_modified<RB>(
    plan: &RequestPlan,
    env: &Env,
    now: SystemTime,
) -> Response<CacheBody<RB>> {
    let mut info = CacheInfo::new(CacheOutcome::Refreshed, Some(plan.key.clone()));
    info.detail = Some(Detail::InvalidNotModified);
    let mut response = Response::new(CacheBody::stored(Bytes::from_static(
        b"Bad Gateway: the origin answered 304 for an entity tag the cache did not send\n",
    )));
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    label(&mut response, info, env, now, Some(304));
    response
}

/// 504 for `only-if-cached` with nothing usable stored (RFC 9111 §5.2.1.7).
fn gateway_timeout<RB>(info: CacheInfo, env: &Env, now: SystemTime) -> Response<CacheBody<RB>> {
    let mut response = Response::new(CacheBody::stored(Bytes::from_static(b"Not Cached")));
    *response.status_mut() = StatusCode::GATEWAY_TIMEOUT;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    label(&mut response, info, env, now, None);
    response
}

/// Adds `Cache-Status` (when enabled) and the [`CacheInfo`] extension; records the outcome on
/// the request's span.
fn label<T>(
    response: &mut Response<T>,
    info: CacheInfo,
    env: &Env,
    now: SystemTime,
    origin_status: Option<u16>,
) {
    append_cache_status(response.headers_mut(), &info, env, now, origin_status);
    finish(response, info, env);
}

/// Appends `Cache-Status` for `info`, when enabled.
fn append_cache_status(
    headers: &mut HeaderMap,
    info: &CacheInfo,
    env: &Env,
    now: SystemTime,
    origin_status: Option<u16>,
) {
    if env.settings.cache_status {
        if let Some(value) = info.cache_status_named(&env.settings.status_name, now, origin_status)
        {
            headers.append(CACHE_STATUS.clone(), value);
        }
    }
}

/// Adds the [`CacheInfo`] extension (unless the settings turn it off) and records the outcome
/// (span, metrics).
fn finish<T>(response: &mut Response<T>, info: CacheInfo, env: &Env) {
    if env.traced() {
        trace::record_outcome(&env.span(), &info);
    }
    crate::metrics::request(info.outcome);
    if env.settings.cache_info {
        response.extensions_mut().insert(info);
    }
}
