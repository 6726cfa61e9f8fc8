//! The policy decision on a request: cache it or bypass, and its key.

use crate::settings::ActiveSettings;
use cachelayer_policy::expiration::{self, ExpirationInputs};
use cachelayer_policy::key::{self, KeyInput};
use cachelayer_policy::{CacheKey, ExpireAfter, RequestDirectives};
use http::header::{CACHE_CONTROL, PRAGMA};
use http::{HeaderMap, Method, Uri};
use std::time::SystemTime;

/// What the cache does with a request.
#[derive(Debug)]
pub(crate) enum Plan {
    /// Not handled: passed to the inner service untouched.
    Bypass { detail: &'static str },
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
    /// The response may be stored.
    pub(crate) write: bool,
    /// A stored response may be used without revalidation.
    pub(crate) read: bool,
}

/// Decides what to do with a request.
pub(crate) fn plan(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    settings: &ActiveSettings,
    now: SystemTime,
) -> Plan {
    if settings.disabled {
        return Plan::Bypass { detail: "disabled" };
    }
    if !settings.allows_method(method) {
        return Plan::Bypass { detail: "method" };
    }
    let directives = if headers.contains_key(CACHE_CONTROL) || headers.contains_key(PRAGMA) {
        RequestDirectives::from_headers(headers)
    } else {
        RequestDirectives::default()
    };
    let request_expire_after = directives.max_age.map(ExpireAfter::from);
    let request_side = expiration::resolve_request_side(&ExpirationInputs {
        request: request_expire_after,
        session: settings.expire_after,
        ..ExpirationInputs::new(now)
    });
    if matches!(request_side, Some((ExpireAfter::DoNotCache, _))) {
        return Plan::Bypass {
            detail: "do-not-cache",
        };
    }
    let key = key::create_key(
        &KeyInput {
            method,
            uri,
            headers,
            body: None,
        },
        &settings.key_options,
    );
    Plan::Cache(RequestPlan {
        key,
        read: !directives.no_cache,
        write: !directives.no_store && !settings.read_only,
        directives,
        request_expire_after,
    })
}
