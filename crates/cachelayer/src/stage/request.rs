//! The policy decision on a request: cache it or bypass, and its key.

use crate::info::Detail;
use crate::options::{CacheOptions, KeyBody};
use crate::rules::url_expiration;
use crate::settings::{ActiveSettings, StaleWindow};
use crate::stage::key_memo::Target;
use cachelayer_policy::expiration::{self, ExpirationInputs};
use cachelayer_policy::key::{self, KeyInput};
use cachelayer_policy::{CacheKey, ExpireAfter, RequestDirectives};
use http::header::{CACHE_CONTROL, IF_MATCH, IF_UNMODIFIED_SINCE, PRAGMA};
use http::{Extensions, HeaderMap, Method, Uri};
use std::time::SystemTime;

/// What the cache does with a request.
#[derive(Debug)]
// Made once per request and unpacked at once: a box would cost each request an allocation.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Plan {
    /// Not handled: passed to the inner service untouched.
    Bypass { detail: Detail },
    /// Handled: looked up under `key`.
    Cache(RequestPlan),
}

/// A request the cache handles.
#[derive(Debug)]
pub(crate) struct RequestPlan {
    pub(crate) key: CacheKey,
    pub(crate) directives: RequestDirectives,
    /// The expiration the request's `Cache-Control: max-age` asks for (precedence level 2).
    pub(crate) request_expire_after: Option<ExpireAfter>,
    /// The per-request option (precedence level 3).
    pub(crate) per_request_expire_after: Option<ExpireAfter>,
    /// The first matching `urls_expire_after` rule (precedence level 4).
    pub(crate) per_url_expire_after: Option<ExpireAfter>,
    /// The response may be stored.
    pub(crate) write: bool,
    /// A stored response may be used without revalidation.
    pub(crate) read: bool,
    /// The stored response is ignored entirely and the request sent unconditionally.
    pub(crate) force_refresh: bool,
    /// The origin must not be contacted.
    pub(crate) only_if_cached: bool,
    /// The request carries `If-Match` or `If-Unmodified-Since`, which a stored response must
    /// satisfy to answer it (see [`validators::stored_precondition`]).
    ///
    /// [`validators::stored_precondition`]: cachelayer_policy::validators::stored_precondition
    pub(crate) preconditions: bool,
    /// The per-request `stale_if_error`, overriding the setting.
    pub(crate) stale_if_error: Option<StaleWindow>,
    /// The per-request `stale_while_revalidate`, overriding the setting.
    pub(crate) stale_while_revalidate: Option<StaleWindow>,
    /// The request's normalized URL ([`key::normalize_url`]), when deriving the key wrote it
    /// (a private cache's key, not memoized): storing a response needs not write it again.
    pub(crate) url: Option<String>,
}

/// The cache key of a request: the settings' `key_fn`, else
/// [`create_key`](cachelayer_policy::key::create_key) with the settings' key options. A HEAD
/// has the key of the GET it can be answered from (RFC 9111 §4.3.5).
pub(crate) fn derive_key(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Option<&[u8]>,
    settings: &ActiveSettings,
) -> CacheKey {
    derive_key_and_url(method, uri, headers, body, settings, false).0
}

/// [`derive_key`], and with `want_url` the request's normalized URL when the key's derivation
/// wrote it (see [`RequestPlan::url`]).
fn derive_key_and_url(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Option<&[u8]>,
    settings: &ActiveSettings,
    want_url: bool,
) -> (CacheKey, Option<String>) {
    let method = if method == Method::HEAD {
        &Method::GET
    } else {
        method
    };
    // Keys that depend on the request target only are memoized (see `key_memo`). A shared cache
    // keys the credentials a request carries: those in header fields are not in the target.
    let memo = settings.key_memo.as_ref().filter(|_| {
        body.is_none()
            && !(settings.shared
                && key::has_credential_header(headers, &settings.ignored_parameters))
    });
    let target = memo.and_then(|_| Target::new(method, uri, headers));
    let slot = memo
        .zip(target.as_ref())
        .map(|(memo, target)| memo.slot(target));
    if let (Some(slot), Some(target)) = (&slot, &target) {
        if let Some(key) = slot.get(target) {
            return (key, None);
        }
    }
    let input = KeyInput {
        method,
        uri,
        headers,
        body,
    };
    let (key, url) = match &settings.key_fn {
        Some(key_fn) => (key_fn.key(&input, &settings.key_options), None),
        None if want_url => key::create_key_and_url(&input, &settings.key_options),
        None => (key::create_key(&input, &settings.key_options), None),
    };
    if let (Some(slot), Some(target)) = (&slot, &target) {
        slot.insert(target, &key);
    }
    (key, url)
}

/// Decides what to do with a request.
pub(crate) fn plan(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    extensions: &Extensions,
    settings: &ActiveSettings,
    now: SystemTime,
) -> Plan {
    let options = extensions
        .get::<CacheOptions>()
        .copied()
        .unwrap_or_default();
    if settings.disabled || options.disabled {
        return Plan::Bypass {
            detail: Detail::Disabled,
        };
    }
    if !settings.allows_method(method) {
        return Plan::Bypass {
            detail: Detail::Method,
        };
    }
    let body = extensions.get::<KeyBody>().map(|body| &body.0[..]);
    if body.is_none() && method != Method::GET && method != Method::HEAD {
        // Without its body in the key, every body would get the first body's response.
        warn_missing_key_body(method);
        return Plan::Bypass {
            detail: Detail::NoKeyBody,
        };
    }
    // In origin form the key takes its authority from `Host`: one that is not a valid
    // authority (or two `Host` lines) cannot be keyed safely (RFC 9112 §3.2).
    if uri.authority().is_none() && !key::host_is_valid(headers) {
        return Plan::Bypass {
            detail: Detail::InvalidHost,
        };
    }
    // One pass over the (few) request fields: cheaper than a hashed lookup per field.
    let (has_directives, preconditions) =
        headers
            .keys()
            .fold((false, false), |(directives, preconditions), name| {
                (
                    directives || name == CACHE_CONTROL || name == PRAGMA,
                    preconditions || name == IF_MATCH || name == IF_UNMODIFIED_SINCE,
                )
            });
    let directives = if has_directives {
        let sent = RequestDirectives::from_headers(headers);
        if settings.ignore_request_cache_control {
            RequestDirectives {
                no_store: sent.no_store,
                only_if_cached: sent.only_if_cached,
                ..RequestDirectives::default()
            }
        } else {
            sent
        }
    } else {
        RequestDirectives::default()
    };
    // requests-cache lets a request's `max-age` set the expiration of the response it gets: a
    // private client's convenience. In a shared cache a request directive never makes a response
    // storable or fresher for others (RFC 9111 §5.2.1.1): it only limits what this request
    // accepts.
    let request_expire_after = if settings.shared {
        None
    } else {
        directives.max_age.map(ExpireAfter::from)
    };
    let per_url_expire_after = if settings.urls_expire_after.is_empty() {
        None
    } else {
        let url = key::normalize_url(uri, headers, &settings.ignored_parameters);
        url_expiration(&settings.urls_expire_after, &url)
    };
    let request_side = expiration::resolve_request_side(&ExpirationInputs {
        request: request_expire_after,
        per_request: options.expire_after,
        per_url: per_url_expire_after,
        session: settings.expire_after,
        ..ExpirationInputs::new(now)
    });
    if matches!(request_side, Some((ExpireAfter::DoNotCache, _))) {
        return Plan::Bypass {
            detail: Detail::DoNotCache,
        };
    }
    let (key, url) = derive_key_and_url(method, uri, headers, body, settings, true);
    Plan::Cache(RequestPlan {
        key,
        url,
        read: !directives.no_cache && !options.refresh && !options.force_refresh,
        write: !directives.no_store && !settings.read_only,
        force_refresh: options.force_refresh,
        only_if_cached: directives.only_if_cached
            || options.only_if_cached
            || settings.only_if_cached,
        stale_if_error: options.stale_if_error,
        stale_while_revalidate: options.stale_while_revalidate,
        preconditions,
        directives,
        request_expire_after,
        per_request_expire_after: options.expire_after,
        per_url_expire_after,
    })
}

/// Warns, once per process, that a method with a body is in `allowable_methods` but requests
/// reach the cache without their body in the key.
fn warn_missing_key_body(method: &Method) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!(
            %method,
            "allowable_methods includes a method with a request body, but requests reach the \
             cache without a KeyBody: they bypass the cache. Put KeyRequestBodyLayer in front \
             of the cache to key them by their body."
        );
    }
}
