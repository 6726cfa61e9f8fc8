use crate::body::CacheBody;
use crate::future::ResponseFuture;
use crate::layer::{CacheLayer, Shared};
use crate::settings::CacheSettings;
use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower_service::Service;

/// A service that answers requests from an HTTP response cache, and forwards the rest to the
/// inner service `S`. Made by [`CacheLayer`].
///
/// - Works with any `S: Service<http::Request<B>, Response = http::Response<RB>> + Clone` whose
///   body `RB` yields [`Bytes`] (hyper, hyper-util, axum, tower's `service_fn`).
/// - Keeps `S::Error`: a failing store is a miss and never an error of the service.
/// - Its responses have a [`CacheBody`] and a [`CacheInfo`](crate::CacheInfo) extension.
///
/// `S` must be `Clone` because the request waits for the store lookup before it reaches `S`;
/// the service readied by `poll_ready` is the one that gets the request. `S`, its future, its
/// error and the bodies must be `Send + 'static`, because stale-while-revalidate refreshes run
/// as tokio tasks.
///
/// A response passed through from the origin keeps the HTTP version it arrived with; a response
/// served from the cache has the version it was stored with. A proxy that forwards responses to
/// its own clients should set the version it speaks.
#[derive(Clone, Debug)]
pub struct CacheService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> CacheService<S> {
    /// A cache on the embedded default store around `inner`
    /// (`CacheLayer::new(settings).layer(inner)`).
    pub fn new(inner: S, settings: CacheSettings) -> Self {
        tower_layer::Layer::layer(&CacheLayer::new(settings), inner)
    }

    pub(crate) fn from_shared(inner: S, shared: Arc<Shared>) -> Self {
        CacheService { inner, shared }
    }

    /// The handle to list and remove stored responses: the same as
    /// [`CacheLayer::cache`] on the layer that made this service (a service made with
    /// [`CacheService::new`] has a layer of its own, shared with its clones).
    pub fn cache(&self) -> crate::Cache {
        crate::Cache::from_shared(self.shared.clone())
    }

    /// A copy of the current settings.
    pub fn settings(&self) -> CacheSettings {
        self.shared.settings()
    }

    /// Replaces the settings of this service, of the layer that made it and of every service
    /// that layer made (see [`CacheLayer::set_settings`]).
    pub fn set_settings(&self, settings: CacheSettings) {
        self.shared.set_settings(settings);
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, consuming the cache service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B, RB> Service<Request<B>> for CacheService<S>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
    RB: Body<Data = Bytes> + Send + 'static,
{
    type Response = Response<CacheBody<RB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // Use the service that `poll_ready` readied; keep a fresh clone for the next call.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::start(inner, request, self.shared.clone())
    }
}
