use crate::health::StoreHealth;
use crate::service::CacheService;
use crate::settings::{ActiveSettings, CacheSettings};
use crate::stage::coalesce::Flights;
use arc_swap::ArcSwap;
use cachelayer_policy::{Clock, SystemClock};
use cachelayer_store::{MemoryStore, Store};
use std::fmt;
use std::sync::Arc;
use tower_layer::Layer;

/// What every clone of a layer and of its services shares.
pub(crate) struct Shared {
    pub(crate) settings: ArcSwap<ActiveSettings>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    /// Requests in progress to the origin, by key (request coalescing).
    pub(crate) flights: Arc<Flights>,
    /// Whether the store is failing (for logging outages once, not per request).
    pub(crate) health: Arc<StoreHealth>,
}

impl Shared {
    /// A copy of the current settings.
    pub(crate) fn settings(&self) -> CacheSettings {
        self.settings.load().settings().clone()
    }

    /// Replaces the settings for the requests that start from now on.
    pub(crate) fn set_settings(&self, settings: CacheSettings) {
        self.settings.store(Arc::new(ActiveSettings::new(settings)));
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("settings", &self.settings.load())
            .field("store", &self.store)
            .field("clock", &self.clock)
            .field("flights", &self.flights)
            .finish()
    }
}

/// A [`Layer`] that adds an HTTP response cache to a service: [`CacheService`].
///
/// ```
/// use cachelayer::{CacheLayer, CacheSettings};
/// use tower::ServiceBuilder;
/// # use tower::service_fn;
/// # use std::convert::Infallible;
/// # let origin = service_fn(|_req: http::Request<String>| async {
/// #     Ok::<_, Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::new())))
/// # });
///
/// let service = ServiceBuilder::new()
///     .layer(CacheLayer::new(CacheSettings::default()))
///     .service(origin);
/// ```
///
/// Clones of a layer, and every service it makes, share one store and one set of settings:
/// [`set_settings`](Self::set_settings) changes them for all at once.
#[derive(Clone, Debug)]
pub struct CacheLayer {
    shared: Arc<Shared>,
}

impl CacheLayer {
    /// A cache on the embedded default store: a [`MemoryStore`] of 64 MiB.
    #[must_use]
    pub fn new(settings: CacheSettings) -> Self {
        Self::with_shared_store(Arc::new(MemoryStore::new()), settings)
    }

    /// A cache on `store` (any [`Store`]: memory, SQLite, Redis, your own).
    #[must_use]
    pub fn with_store<St: Store>(store: St, settings: CacheSettings) -> Self {
        Self::with_shared_store(Arc::new(store), settings)
    }

    /// A cache on a store that other caches may share (requests-cache: one backend, several
    /// sessions).
    #[must_use]
    pub fn with_shared_store(store: Arc<dyn Store>, settings: CacheSettings) -> Self {
        CacheLayer {
            shared: Arc::new(Shared {
                settings: ArcSwap::from_pointee(ActiveSettings::new(settings)),
                health: Arc::new(StoreHealth::for_store(store.kind())),
                store,
                clock: Arc::new(SystemClock),
                flights: Arc::default(),
            }),
        }
    }

    /// Uses `clock` for every time-dependent decision (freshness, age, expiry) instead of the
    /// system clock: tests advance a [`ManualClock`](crate::ManualClock) instead of sleeping.
    /// Call it before cloning the layer or making services.
    #[must_use]
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Self {
        CacheLayer {
            shared: Arc::new(Shared {
                settings: ArcSwap::new(self.shared.settings.load_full()),
                store: self.shared.store.clone(),
                clock,
                flights: Arc::default(),
                health: self.shared.health.clone(),
            }),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.shared.store
    }

    /// A handle to list and remove the stored responses (requests-cache `session.cache`):
    /// [`clear`](crate::Cache::clear), [`delete_expired`](crate::Cache::delete_expired),
    /// [`delete_urls`](crate::Cache::delete_urls), [`reset_expiration`](crate::Cache::reset_expiration),
    /// [`entries`](crate::Cache::entries), ... It uses this layer's store, clock and settings
    /// (following [`set_settings`](Self::set_settings)); take it after
    /// [`with_clock`](Self::with_clock), which makes a new layer. With a store shared by several
    /// layers ([`with_shared_store`](Self::with_shared_store)), it sees and removes the entries of
    /// all of them.
    pub fn cache(&self) -> crate::Cache {
        crate::Cache::from_shared(self.shared.clone())
    }

    /// A copy of the current settings.
    pub fn settings(&self) -> CacheSettings {
        self.shared.settings()
    }

    /// Replaces the settings of this layer, its clones and every service they made, for the
    /// requests that start from now on (requests-cache `session.settings.x = ...`). Lock-free:
    /// requests in flight keep the settings they started with.
    pub fn set_settings(&self, settings: CacheSettings) {
        self.shared.set_settings(settings);
    }
}

impl<S> Layer<S> for CacheLayer {
    type Service = CacheService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CacheService::from_shared(inner, self.shared.clone())
    }
}
