//! Whether a stored response can serve a request (RFC 9111 §4).

use crate::info::Detail;
use crate::rules::ResponseView;
use crate::settings::CacheSettings;
use crate::stage::request::RequestPlan;
use crate::stage::variant::selecting_value;
use cachelayer_policy::freshness::{self, StoredFreshness, Usability};
use cachelayer_policy::validators::{self, Precondition};
use cachelayer_store::StoredResponse;
use http::HeaderMap;
use http::header::VARY;
use std::time::SystemTime;

/// What a stored response can do for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// Serve it as it is.
    Fresh,
    /// Serve it stale: the request's `max-stale` accepts it.
    StaleAcceptable,
    /// It must be revalidated (or replaced) before use.
    Stale,
    /// It is fresh, but the request's directives (`max-age`, `min-fresh`) do not accept it: it
    /// must be revalidated before use.
    RejectedByRequest,
    /// It does not satisfy the request's `If-Match` or `If-Unmodified-Since` (or the cache cannot
    /// tell): the origin evaluates them (RFC 9111 §4.3.2; RFC 9110 §13.2.2), with the stored
    /// validators added so that a 304 freshens it.
    Precondition,
    /// It does not answer this request (another variant, another method).
    Unusable(Unusable),
}

/// Why a stored response does not answer a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unusable {
    /// It answered another method (and this is not a HEAD answered from a GET).
    MethodMismatch,
    /// Its `Vary` fields have other values in this request: another variant (RFC 9111 §4.1).
    VaryMismatch,
    /// The settings' `filter_fn` rejects it.
    Filter,
    /// Only parts of it are stored, not the range this request asks for (RFC 9111 §3.3).
    Partial,
}

impl Unusable {
    /// The [`CacheInfo::detail`](crate::CacheInfo::detail) it gives.
    pub(crate) fn detail(self) -> Detail {
        match self {
            Unusable::MethodMismatch => Detail::MethodMismatch,
            Unusable::VaryMismatch => Detail::VaryMismatch,
            Unusable::Filter => Detail::Filter,
            Unusable::Partial => Detail::Partial,
        }
    }
}

impl Lookup {
    /// A short lowercase name for log fields: `fresh`, `stale-acceptable`, `stale`,
    /// `rejected-by-request`, or why the response is unusable (`vary-mismatch`,
    /// `method-mismatch`, `filter`).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Lookup::Fresh => "fresh",
            Lookup::StaleAcceptable => "stale-acceptable",
            Lookup::Stale => "stale",
            Lookup::RejectedByRequest => "rejected-by-request",
            Lookup::Precondition => "precondition",
            Lookup::Unusable(reason) => reason.detail().as_str(),
        }
    }
}

/// Evaluates a stored response for a request at `now`.
pub(crate) fn evaluate(
    entry: &StoredResponse,
    method: &http::Method,
    headers: &HeaderMap,
    plan: &RequestPlan,
    settings: &CacheSettings,
    now: SystemTime,
) -> Lookup {
    let head_of_get = method == http::Method::HEAD && entry.request.method == http::Method::GET;
    if entry.request.method != *method && !head_of_get {
        return Lookup::Unusable(Unusable::MethodMismatch);
    }
    if !vary_matches(entry, headers) {
        return Lookup::Unusable(Unusable::VaryMismatch);
    }
    if let Some(filter) = &settings.filter_fn {
        let view = ResponseView {
            method: &entry.request.method,
            url: &entry.request.url,
            status: entry.status,
            headers: &entry.headers,
        };
        if !filter.keep(&view) {
            return Lookup::Unusable(Unusable::Filter);
        }
    }
    if plan.preconditions
        && validators::stored_precondition(headers, entry.status, &entry.headers)
            == Precondition::ForOrigin
    {
        return Lookup::Precondition;
    }
    let verdict = freshness_verdict(entry, plan, now);
    if verdict == Lookup::Fresh
        && settings.always_revalidate
        && validators::has_validator(&entry.headers)
    {
        return Lookup::RejectedByRequest;
    }
    verdict
}

fn freshness_verdict(entry: &StoredResponse, plan: &RequestPlan, now: SystemTime) -> Lookup {
    // Without request directives (the common case), or with `no-cache` (the origin is asked
    // whatever the freshness; freshness only decides how the forward is labelled), the stored
    // response's own expiration decides.
    if plan.directives.is_empty() || plan.directives.no_cache {
        return if entry.is_expired(now) {
            Lookup::Stale
        } else {
            Lookup::Fresh
        };
    }
    let lifetime = entry.expires.map(|expires| {
        expires
            .duration_since(entry.created_at)
            .unwrap_or_default()
            .saturating_add(entry.initial_age)
    });
    let stored = StoredFreshness {
        lifetime,
        age: entry.age(now),
        must_revalidate: entry.stale.must_revalidate,
    };
    match freshness::usability(&stored, &plan.directives) {
        Usability::Fresh => Lookup::Fresh,
        Usability::StaleAcceptable => Lookup::StaleAcceptable,
        Usability::Stale if entry.is_expired(now) => Lookup::Stale,
        Usability::Stale => Lookup::RejectedByRequest,
    }
}

/// RFC 9111 §4.1: every header field the stored response's `Vary` nominates has the same
/// selecting value ([`selecting_value`]: normalized, credentials by digest) in the request as in
/// the request the response answered; `Vary: *` never matches.
pub(crate) fn vary_matches(entry: &StoredResponse, request: &HeaderMap) -> bool {
    for value in entry.headers.get_all(VARY) {
        let Ok(value) = value.to_str() else {
            return false;
        };
        for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if name == "*" {
                return false;
            }
            let name = name.to_ascii_lowercase();
            if entry.request.headers.get(name.as_str()) != selecting_value(request, &name).as_ref()
            {
                return false;
            }
        }
    }
    true
}
