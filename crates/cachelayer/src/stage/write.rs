//! Whether the origin's response is stored, and the entry it becomes (RFC 9111 §3).

use crate::info::Detail;
use crate::rules::ResponseView;
use crate::settings::{CacheSettings, SetCookie, StaleWindow};
use crate::stage::request::RequestPlan;
use crate::stage::variant::selecting_value;
use bytes::Bytes;
use cachelayer_policy::clock::add_saturating;
use cachelayer_policy::directives::ResponseDirectives;
use cachelayer_policy::expiration::{
    self, ExpirationInputs, ExpirationSource, ResolvedExpirationKind,
};
use cachelayer_policy::key;
use cachelayer_policy::storable::{self, Exchange, NotStorable};
use cachelayer_policy::{FieldList, freshness, validators};
use cachelayer_store::{
    StalePolicy, StoredRequest, StoredResponse, compact_header_values, forget_header_values,
};
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, StatusCode, Uri, Version};
use std::time::{Duration, SystemTime};

/// What the write stage keeps of a request once it has been sent to the origin.
#[derive(Debug)]
pub(crate) struct RequestSnapshot {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) headers: HeaderMap,
}

/// The response head as the write stage sees it.
#[derive(Debug)]
pub(crate) struct ResponseHead<'a> {
    pub(crate) status: StatusCode,
    pub(crate) version: Version,
    /// Mutable only to be compacted before the stored copy is taken (see [`storable_headers`]):
    /// the fields and values stay as they are.
    pub(crate) headers: &'a mut HeaderMap,
    /// Its corrected initial age (RFC 9111 §4.2.3), computed once when it arrived: an `Age`
    /// the cache adds to a late response must not count the delay a second time.
    pub(crate) initial_age: Duration,
}

/// Decides whether a new response from the origin is stored; when it is, the entry (with an
/// empty body, filled in when the body has been read). Responses to HEAD are never stored: they
/// share the GET response's key and have no body (RFC 9111 §4.3.5).
pub(crate) fn prepare_new(
    request: &RequestSnapshot,
    plan: &mut RequestPlan,
    response: ResponseHead<'_>,
    settings: &CacheSettings,
    request_time: SystemTime,
    response_time: SystemTime,
) -> Result<StoredResponse, Detail> {
    if request.method == Method::HEAD {
        return Err(Detail::Head);
    }
    prepare(
        request,
        plan,
        response,
        settings,
        request_time,
        response_time,
    )
}

/// Decides whether a response may be stored, and builds its entry (with an empty body).
fn prepare(
    request: &RequestSnapshot,
    plan: &mut RequestPlan,
    response: ResponseHead<'_>,
    settings: &CacheSettings,
    request_time: SystemTime,
    response_time: SystemTime,
) -> Result<StoredResponse, Detail> {
    if !plan.write {
        return Err(if settings.read_only {
            Detail::ReadOnly
        } else {
            Detail::RequestNoStore
        });
    }
    if !settings.allows_status(response.status) {
        return Err(Detail::StatusNotAllowed);
    }
    // The headers the policy reads: with a targeted field (RFC 9213), its value stands for
    // Cache-Control and Expires is ignored. What is stored is the response as it came.
    let targeted = targeted_policy_headers(response.headers, settings);
    let policy_headers = targeted.as_ref().unwrap_or(&*response.headers);
    let directives = ResponseDirectives::from_headers(policy_headers);
    let kind = settings.cache_kind();
    let storable = storable::check(&Exchange {
        method: &request.method,
        request_headers: &request.headers,
        request: &plan.directives,
        status: response.status,
        response_headers: policy_headers,
        response: &directives,
        kind,
    });
    let needs_explicit_expiration = match storable {
        Ok(()) => false,
        // The settings decide which methods are cached (requests-cache allowable_methods).
        Err(NotStorable::MethodNotCacheable) if settings.allows_method(&request.method) => false,
        // No freshness information in the response: stored only if a setting gives it one.
        Err(NotStorable::NoFreshnessInformation) => true,
        Err(reason) => return Err(not_storable_detail(reason)),
    };
    let present = Present::in_headers(response.headers);
    if present.content_length {
        if let Some(length) = content_length(response.headers) {
            if length > settings.max_body_size as u64 {
                return Err(Detail::BodyTooLarge);
            }
        }
    }
    if present.vary && vary_star(response.headers) {
        return Err(Detail::VaryStar);
    }
    // The plan's URL is not used after this: taken, not copied.
    let url = match plan.url.take() {
        Some(url) => url,
        None => key::normalize_url(&request.uri, &request.headers, &settings.ignored_parameters),
    };
    if let Some(filter) = &settings.filter_fn {
        let view = ResponseView {
            method: &request.method,
            url: &url,
            status: response.status,
            headers: response.headers,
        };
        if !filter.keep(&view) {
            return Err(Detail::Filter);
        }
    }

    let initial_age = response.initial_age;
    let entry_times = expiration_for(
        &directives,
        response.status,
        policy_headers,
        plan,
        settings,
        response_time,
        initial_age,
    )?;
    if needs_explicit_expiration
        && matches!(
            entry_times.source,
            ExpirationSource::Default | ExpirationSource::Heuristic
        )
        && settings.cache_control
    {
        return Err(Detail::NoFreshnessInformation);
    }
    let has_validator = present.validator && validators::has_validator(response.headers);
    if entry_times.fresh_for_zero && !has_validator {
        // Stale at once and impossible to revalidate: it could never be reused.
        return Err(if entry_times.source == ExpirationSource::Default {
            Detail::NoFreshnessInformation
        } else {
            Detail::StaleWithoutValidator
        });
    }

    if settings.shared
        && request.headers.contains_key(header::COOKIE)
        && !directives.public
        && !matches!(
            entry_times.source,
            ExpirationSource::ResponseHeaders
                | ExpirationSource::PerUrl
                | ExpirationSource::PerRequest
        )
    {
        // A response to a request with cookies may be personal: a shared cache stores it only
        // when the origin says how long it stays fresh (or a URL rule or the application does),
        // never on a heuristic or the `expire_after` default.
        return Err(Detail::CookieWithoutExplicitFreshness);
    }
    let mut headers = storable_headers(response.headers, &directives, settings);
    if settings.shared && headers.contains_key(header::SET_COOKIE) {
        match settings.set_cookie {
            SetCookie::NotStored => {
                // Nothing is stored: the thread must not hold on to the cookie's bytes either.
                forget_header_values(response.headers);
                return Err(Detail::SetCookie);
            }
            SetCookie::StoredWithout => {
                headers.remove(header::SET_COOKIE);
                // As `storable_headers` does for the fields it leaves out.
                forget_header_values(response.headers);
            }
        }
    }

    let stale = stale_policy(&directives, settings);
    let retain_until = retain_until(entry_times.expires, has_validator, &stale, settings);
    Ok(StoredResponse {
        request: StoredRequest {
            method: request.method.clone(),
            url,
            headers: if present.vary {
                varied_request_headers(response.headers, &request.headers)
            } else {
                HeaderMap::new()
            },
        },
        status: response.status,
        version: response.version,
        headers,
        body: Bytes::new(),
        request_time,
        created_at: response_time,
        initial_age,
        expires: entry_times.expires,
        stale,
        retain_until,
    })
}

/// Which of the fields `prepare` looks up a response has: one pass over its (few) field names,
/// cheaper than a lookup (hashing the name) for each field most responses lack.
#[derive(Debug, Clone, Copy)]
struct Present {
    content_length: bool,
    vary: bool,
    /// `ETag` or `Last-Modified`.
    validator: bool,
}

impl Present {
    fn in_headers(headers: &HeaderMap) -> Present {
        let mut present = Present {
            content_length: false,
            vary: false,
            validator: false,
        };
        for name in headers.keys() {
            present.content_length |= name == header::CONTENT_LENGTH;
            present.vary |= name == header::VARY;
            present.validator |= name == header::ETAG || name == header::LAST_MODIFIED;
        }
        present
    }
}

struct EntryTimes {
    expires: Option<SystemTime>,
    source: ExpirationSource,
    fresh_for_zero: bool,
}

/// Resolves the expiration by requests-cache's precedence and turns it into `expires`.
fn expiration_for(
    directives: &ResponseDirectives,
    status: StatusCode,
    headers: &HeaderMap,
    plan: &RequestPlan,
    settings: &CacheSettings,
    response_time: SystemTime,
    initial_age: Duration,
) -> Result<EntryTimes, Detail> {
    let kind = settings.cache_kind();
    let mut explicit = freshness::explicit_lifetime(directives, headers, kind, response_time);
    if directives.no_cache.is_all() {
        // Stored, but revalidated before every use (RFC 9111 §5.2.2.4).
        explicit = Some(Duration::ZERO);
    }
    let heuristic = freshness::heuristic_lifetime(
        status,
        directives,
        headers,
        response_time,
        &settings.heuristic_freshness,
    )
    .or_else(|| permanent_redirect_lifetime(status, explicit, settings));
    let resolved = expiration::resolve(&ExpirationInputs {
        cache_control: settings.cache_control,
        response: explicit,
        request: plan.request_expire_after,
        per_request: plan.per_request_expire_after,
        per_url: plan.per_url_expire_after,
        session: settings.expire_after,
        heuristic,
        response_time,
    });
    let (expires, fresh_for_zero) = match resolved.kind {
        ResolvedExpirationKind::DoNotCache => return Err(Detail::DoNotCache),
        ResolvedExpirationKind::Never => (None, false),
        ResolvedExpirationKind::Lifetime(lifetime) => {
            // Lifetimes from the response are reduced by the age it arrived with (RFC 9111
            // §4.2.3); settings count from when it was received, as in requests-cache.
            let left = match resolved.source {
                ExpirationSource::ResponseHeaders | ExpirationSource::Heuristic => {
                    lifetime.saturating_sub(initial_age)
                }
                _ => lifetime,
            };
            (Some(add_saturating(response_time, left)), left.is_zero())
        }
    };
    Ok(EntryTimes {
        expires,
        source: resolved.source,
        fresh_for_zero,
    })
}

/// Permanent redirects (301, 308) are heuristically cacheable (RFC 9110 §15.1) even without a
/// `Last-Modified` to base a heuristic on: without explicit freshness they get the longest
/// heuristic lifetime, as browsers keep them.
fn permanent_redirect_lifetime(
    status: StatusCode,
    explicit: Option<Duration>,
    settings: &CacheSettings,
) -> Option<Duration> {
    let permanent = matches!(
        status,
        StatusCode::MOVED_PERMANENTLY | StatusCode::PERMANENT_REDIRECT
    );
    (permanent && explicit.is_none() && settings.heuristic_freshness.enabled)
        .then_some(settings.heuristic_freshness.max)
}

fn stale_policy(directives: &ResponseDirectives, settings: &CacheSettings) -> StalePolicy {
    let shared = settings.shared;
    StalePolicy {
        must_revalidate: directives.must_revalidate
            || directives.no_cache.is_all()
            || (shared && (directives.proxy_revalidate || directives.s_maxage.is_some())),
        stale_while_revalidate: directives.stale_while_revalidate,
        stale_if_error: directives.stale_if_error,
    }
}

/// How long a store keeps the entry: while it can be revalidated (it has a validator), until
/// evicted; otherwise until the end of the longest window it may still be served stale in, and
/// at least `stale_retention` past its expiry.
pub(crate) fn retain_until(
    expires: Option<SystemTime>,
    has_validator: bool,
    stale: &StalePolicy,
    settings: &CacheSettings,
) -> Option<SystemTime> {
    let expires = expires?;
    if has_validator {
        return None;
    }
    let mut window = settings.stale_retention;
    if !stale.must_revalidate {
        for setting in [settings.stale_if_error, settings.stale_while_revalidate] {
            match setting {
                StaleWindow::Any => return None,
                StaleWindow::AtMost(max) => window = window.max(max),
                StaleWindow::Off => {}
            }
        }
        window = window
            .max(stale.stale_if_error.unwrap_or_default())
            .max(stale.stale_while_revalidate.unwrap_or_default());
    }
    Some(add_saturating(expires, window))
}

/// The header fields a cache keeps (RFC 9111 §3.1): without hop-by-hop fields, `Age` (the
/// cache computes it), and the fields `no-cache=` / (shared) `private=` name (§5.2.2.4,
/// §5.2.2.7).
///
/// The values of `headers` are first copied into one allocation that the stored copy then
/// shares ([`compact_header_values`]): a clone of values that are not yet shared would allocate
/// one buffer each, and a memory store would copy them again to keep them compact.
pub(crate) fn storable_headers(
    headers: &mut HeaderMap,
    directives: &ResponseDirectives,
    settings: &CacheSettings,
) -> HeaderMap {
    compact_header_values(headers);
    let mut stored = headers.clone();
    let all = stored.len();
    strip_hop_by_hop(&mut stored);
    // Few responses carry `Age`: a pass over the names is cheaper than a hashed removal.
    if stored.keys().any(|name| name == header::AGE) {
        stored.remove(header::AGE);
    }
    if let FieldList::Fields(names) = &directives.no_cache {
        for name in names {
            stored.remove(name);
        }
    }
    if settings.shared {
        if let FieldList::Fields(names) = &directives.private {
            for name in names {
                stored.remove(name);
            }
        }
    }
    if stored.len() != all {
        // The values of the fields left out must not stay in memory with the stored copy.
        forget_header_values(headers);
    }
    stored
}

/// With a shared cache and a targeted cache-control field (RFC 9213 §2.1) in the response: the
/// response's header fields with `Cache-Control` replaced by the first valid targeted field and
/// `Expires` removed. `None` when no targeted field applies.
///
/// A targeted field is a Structured Field Dictionary (RFC 8941, RFC 9213 §2.1): a value that
/// does not parse as one, or whose directives have the wrong type (`max-age="10"`), is ignored
/// as a whole, and the next targeted field (or `Cache-Control`) decides.
fn targeted_policy_headers(headers: &HeaderMap, settings: &CacheSettings) -> Option<HeaderMap> {
    if !settings.shared {
        return None;
    }
    let value = settings.targeted_cache_control.iter().find_map(|name| {
        let value = headers.get(name.as_str())?;
        let dictionary = sfv::Parser::new(value.as_bytes())
            .parse::<sfv::Dictionary>()
            .ok()?;
        let text = targeted_as_cache_control(&dictionary)?;
        (!dictionary.is_empty())
            .then(|| HeaderValue::from_str(&text).ok())
            .flatten()
    })?;
    let mut policy = headers.clone();
    policy.insert(header::CACHE_CONTROL, value);
    policy.remove(header::EXPIRES);
    Some(policy)
}

/// A targeted field's directives written as `Cache-Control` text; `None` when a directive the
/// cache reads has a value of the wrong type. Directives with the value `?0` are absent; unknown
/// directives are left out.
fn targeted_as_cache_control(dictionary: &sfv::Dictionary) -> Option<String> {
    let mut out = String::new();
    for (key, member) in dictionary {
        let name = key.as_str();
        let kind = known_directive(name);
        let sfv::ListEntry::Item(item) = member else {
            if kind == DirectiveType::Unknown {
                continue;
            }
            return None;
        };
        let piece = match (kind, &item.bare_item) {
            (DirectiveType::Seconds, sfv::BareItem::Integer(n)) => {
                let n = i64::from(*n);
                (n >= 0).then(|| format!("{name}={n}"))?
            }
            (DirectiveType::Unknown, _) | (_, sfv::BareItem::Boolean(false)) => continue,
            (DirectiveType::Flag | DirectiveType::FlagOrFields, sfv::BareItem::Boolean(true)) => {
                name.to_owned()
            }
            (DirectiveType::FlagOrFields, sfv::BareItem::String(fields)) => {
                format!("{name}=\"{}\"", fields.as_str())
            }
            _ => return None,
        };
        if !out.is_empty() {
            out.push_str(", ");
        }
        out.push_str(&piece);
    }
    Some(out)
}

/// The value type a targeted directive must have (RFC 9213 §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DirectiveType {
    /// An Integer of seconds: `max-age`, `s-maxage`, `stale-while-revalidate`, `stale-if-error`.
    Seconds,
    /// A Boolean: `no-store`, `must-revalidate`, ...
    Flag,
    /// A Boolean, or a String of field names: `no-cache`, `private`.
    FlagOrFields,
    /// Not read by this cache: any value.
    Unknown,
}

fn known_directive(name: &str) -> DirectiveType {
    match name {
        "max-age" | "s-maxage" | "stale-while-revalidate" | "stale-if-error" => {
            DirectiveType::Seconds
        }
        "no-store" | "must-revalidate" | "proxy-revalidate" | "public" | "immutable"
        | "must-understand" | "no-transform" => DirectiveType::Flag,
        "no-cache" | "private" => DirectiveType::FlagOrFields,
        _ => DirectiveType::Unknown,
    }
}

/// Removes the hop-by-hop fields of RFC 9110 §7.6.1: `Connection` and the fields it lists,
/// `Keep-Alive`, `Proxy-Connection`, `TE`, `Transfer-Encoding`, `Upgrade`, `Trailer`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry none of them: one pass over the names is cheaper than a hashed
    // removal per name.
    let any = headers.keys().any(|name| {
        name == header::CONNECTION
            || name == header::TE
            || name == header::TRANSFER_ENCODING
            || name == header::UPGRADE
            || name == header::TRAILER
            || name.as_str() == "keep-alive"
            || name.as_str() == "proxy-connection"
    });
    if !any {
        return;
    }
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        header::TE,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::TRAILER,
        HeaderName::from_static("keep-alive"),
        HeaderName::from_static("proxy-connection"),
    ] {
        headers.remove(name);
    }
}

/// The selecting values ([`selecting_value`]) of the request header fields the response's
/// `Vary` nominates: what a later request must match (RFC 9111 §4.1). Fields other than content
/// negotiation ones are kept as digests, never as their values.
pub(crate) fn varied_request_headers(response: &HeaderMap, request: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for value in response.get_all(header::VARY) {
        let Ok(value) = value.to_str() else { continue };
        for name in value.split(',').map(str::trim) {
            let Ok(name) = HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()) else {
                continue;
            };
            if let Some(kept) = selecting_value(request, name.as_str()) {
                out.insert(name, kept);
            }
        }
    }
    out
}

fn vary_star(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|n| n.trim() == "*"))
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn not_storable_detail(reason: NotStorable) -> Detail {
    match reason {
        NotStorable::MethodNotCacheable => Detail::MethodNotCacheable,
        NotStorable::StatusNotStorable => Detail::StatusNotStorable,
        NotStorable::RequestNoStore => Detail::RequestNoStore,
        NotStorable::ResponseNoStore => Detail::NoStore,
        NotStorable::MustUnderstand => Detail::MustUnderstand,
        NotStorable::PrivateInSharedCache => Detail::Private,
        NotStorable::AuthorizationInSharedCache => Detail::Authorization,
        NotStorable::NoFreshnessInformation => Detail::NoFreshnessInformation,
        NotStorable::PreconditionFailed => Detail::PreconditionFailed,
        _ => Detail::NotStorable,
    }
}

/// A stored response freshened by a 304 (RFC 9111 §4.3.4): header fields updated, expiration
/// computed again from the new times, body kept. `Err` when the updated headers make it
/// unstorable (for example a 304 with `no-store`).
pub(crate) fn freshen(
    stored: &StoredResponse,
    request: &RequestSnapshot,
    plan: &mut RequestPlan,
    not_modified: &HeaderMap,
    settings: &CacheSettings,
    request_time: SystemTime,
    response_time: SystemTime,
) -> Result<StoredResponse, Detail> {
    let mut headers = stored.headers.clone();
    validators::freshen_headers(&mut headers, not_modified);
    let initial_age = freshness::corrected_initial_age(&headers, request_time, response_time);
    let head = ResponseHead {
        status: stored.status,
        version: stored.version,
        headers: &mut headers,
        initial_age,
    };
    let mut entry = prepare(request, plan, head, settings, request_time, response_time)?;
    entry.body = stored.body.clone();
    // It still answers the request it was stored for (a HEAD or a differently-varied request
    // may have revalidated it).
    entry.request = stored.request.clone();
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    #[test]
    fn retention_covers_the_windows_a_response_may_be_served_stale_in() {
        let plain = StalePolicy::default();
        let windows = StalePolicy {
            must_revalidate: false,
            stale_while_revalidate: Some(Duration::from_secs(5)),
            stale_if_error: Some(Duration::from_secs(30)),
        };
        let must = StalePolicy {
            must_revalidate: true,
            ..windows
        };
        let with = |stale_if_error, stale_while_revalidate| CacheSettings {
            stale_if_error,
            stale_while_revalidate,
            stale_retention: Duration::ZERO,
            ..CacheSettings::default()
        };
        let off = with(StaleWindow::Off, StaleWindow::Off);
        assert_eq!(
            retain_until(None, false, &plain, &off),
            None,
            "never expires"
        );
        assert_eq!(
            retain_until(Some(t(10)), true, &plain, &off),
            None,
            "a validator: kept to revalidate"
        );
        assert_eq!(retain_until(Some(t(10)), false, &plain, &off), Some(t(10)));
        assert_eq!(
            retain_until(Some(t(10)), false, &windows, &off),
            Some(t(40)),
            "the longer window"
        );
        assert_eq!(retain_until(Some(t(10)), false, &must, &off), Some(t(10)));
        let sixty = with(
            StaleWindow::AtMost(Duration::from_secs(60)),
            StaleWindow::Off,
        );
        assert_eq!(
            retain_until(Some(t(10)), false, &plain, &sixty),
            Some(t(70))
        );
        let swr = with(
            StaleWindow::Off,
            StaleWindow::AtMost(Duration::from_secs(90)),
        );
        assert_eq!(retain_until(Some(t(10)), false, &plain, &swr), Some(t(100)));
        let kept = CacheSettings::default();
        assert_eq!(
            retain_until(Some(t(10)), false, &plain, &kept),
            Some(t(10 + 86_400)),
            "stale responses are kept for stale_retention"
        );
        assert_eq!(
            retain_until(Some(t(10)), false, &must, &kept),
            Some(t(10 + 86_400)),
            "kept for listing even when they may never be served stale"
        );
        let any = with(StaleWindow::Any, StaleWindow::Off);
        assert_eq!(retain_until(Some(t(10)), false, &plain, &any), None);
        assert_eq!(
            retain_until(Some(t(10)), false, &must, &any),
            Some(t(10)),
            "must-revalidate: never served stale"
        );
    }
}
