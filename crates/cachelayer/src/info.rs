//! What the cache did for a response: the [`CacheInfo`] response extension and the RFC 9211
//! `Cache-Status` header.

use cachelayer_policy::CacheKey;
use http::HeaderValue;
use std::time::{Duration, SystemTime};

/// How a response was produced, in RFC 9211 terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CacheOutcome {
    /// Served from the cache without contacting the origin (`hit`).
    Hit,
    /// Served stale from the cache without contacting the origin: the request's `max-stale`
    /// allowed it (`hit`, with a negative `ttl`).
    StaleHit,
    /// A stored response was revalidated with the origin (304) and served from the cache
    /// (`fwd=stale; fwd-status=304`).
    Revalidated,
    /// Served stale from the cache at once while it is revalidated in the background
    /// (stale-while-revalidate, RFC 5861 §3; `hit` with a negative `ttl`).
    StaleWhileRevalidate,
    /// Served stale from the cache because the origin failed (`fwd=stale` with the failure's
    /// `fwd-status`, RFC 5861 stale-if-error).
    StaleIfError,
    /// Nothing was stored for the request: forwarded to the origin (`fwd=uri-miss`).
    Miss,
    /// A stored response could not be used (stale without validator, other `Vary` values):
    /// forwarded to the origin (`fwd=miss`, `fwd=stale` or `fwd=vary-miss`).
    Refreshed,
    /// The request's own directives sent it to the origin (`no-cache`; `fwd=request`).
    ForwardedByRequest,
    /// The cache does not handle the request (method not cached, cache disabled):
    /// forwarded untouched (`fwd=bypass`).
    Bypass,
    /// The request had `only-if-cached` and nothing usable was stored: the cache answered
    /// 504 Gateway Timeout without contacting the origin (RFC 9111 §5.2.1.7).
    NotCached,
}

impl CacheOutcome {
    /// A short lowercase name for logs and tables: `hit`, `stale-hit`,
    /// `stale-while-revalidate`, `revalidated`, `stale-if-error`, `miss`, `refreshed`,
    /// `forwarded-by-request`, `bypass`, `not-cached`.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheOutcome::Hit => "hit",
            CacheOutcome::StaleHit => "stale-hit",
            CacheOutcome::StaleWhileRevalidate => "stale-while-revalidate",
            CacheOutcome::Revalidated => "revalidated",
            CacheOutcome::StaleIfError => "stale-if-error",
            CacheOutcome::Miss => "miss",
            CacheOutcome::Refreshed => "refreshed",
            CacheOutcome::ForwardedByRequest => "forwarded-by-request",
            CacheOutcome::Bypass => "bypass",
            CacheOutcome::NotCached => "not-cached",
        }
    }
}

impl std::fmt::Display for CacheOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a response was not stored, or why a stored response was not used: the `detail` of
/// [`CacheInfo`] and of `Cache-Status` (RFC 9211 §2.8), and the `reason` label of the
/// `cachelayer_not_stored_total` metric. [`as_str`](Detail::as_str) gives its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Detail {
    /// `disabled` (bypass): the cache is disabled (settings or the request's `CacheOptions`).
    Disabled,
    /// `method` (bypass): the method is not in `allowable_methods`.
    Method,
    /// `do-not-cache` (bypass, or not stored): an expiration of `DoNotCache` applies
    /// (requests-cache `DO_NOT_CACHE`).
    DoNotCache,
    /// `invalid-host` (bypass): a `Host` that is not a valid authority, or two (RFC 9112 §3.2).
    InvalidHost,
    /// `no-key-body` (bypass): a method with a body, without
    /// [`KeyRequestBodyLayer`](crate::KeyRequestBodyLayer) in front.
    NoKeyBody,
    /// `stale` (a stored response not used): stale, and not allowed to be served stale.
    Stale,
    /// `vary-mismatch` (a stored response not used): its `Vary` fields have other values in this
    /// request (RFC 9111 §4.1).
    VaryMismatch,
    /// `method-mismatch` (a stored response not used): it answered another method.
    MethodMismatch,
    /// `filter` (a stored response not used, or a response not stored): the settings' `filter_fn`
    /// rejects it.
    Filter,
    /// `force-refresh` (a stored response not used): the request asked for a refresh
    /// (`CacheOptions::force_refresh`).
    ForceRefresh,
    /// `partial` (a stored response not used): only parts of it are stored, not the range asked for
    /// (`fwd=partial`).
    Partial,
    /// `precondition` (a stored response not used): the request has a precondition (`If-Match`,
    /// `If-Unmodified-Since`) the origin evaluates.
    Precondition,
    /// `stale-while-revalidate`: served stale while it is revalidated in the background
    /// (RFC 5861 §3).
    StaleWhileRevalidate,
    /// `validator-mismatch`: the origin answered the cache's conditional request with a 304 for
    /// other validators: the stored response was served unchanged.
    ValidatorMismatch,
    /// `invalid-304`: the origin answered 304 to the `ETag`s of other variants without naming
    /// one: 502.
    InvalidNotModified,
    /// `no-store` (not stored): the response's `no-store` (RFC 9111 §5.2.2.5).
    NoStore,
    /// `request-no-store` (not stored): the request's `no-store` (RFC 9111 §5.2.1.5).
    RequestNoStore,
    /// `private` (not stored in a shared cache): `private` (RFC 9111 §5.2.2.7).
    Private,
    /// `authorization` (not stored in a shared cache): a request with `Authorization` (RFC 9111
    /// §3.5).
    Authorization,
    /// `must-understand` (not stored): `must-understand` with a status the cache does not
    /// understand (RFC 9111 §5.2.2.3).
    MustUnderstand,
    /// `status-not-storable` (not stored): a status RFC 9111 does not let a cache store without
    /// explicit freshness.
    StatusNotStorable,
    /// `status-not-allowed` (not stored): a status not in `allowable_codes`.
    StatusNotAllowed,
    /// `method-not-cacheable` (not stored): a method whose responses are not cacheable.
    MethodNotCacheable,
    /// `precondition-failed` (not stored): a 412 to a request with preconditions.
    PreconditionFailed,
    /// `not-storable`: not stored, for another reason of RFC 9111 §3.
    NotStorable,
    /// `no-freshness-information` (not stored): no explicit freshness, no heuristic and no setting
    /// gives it a lifetime.
    NoFreshnessInformation,
    /// `stale-without-validator` (not stored): stale at once and without a validator to revalidate
    /// it.
    StaleWithoutValidator,
    /// `body-too-large` (not stored): the body is longer than `max_body_size`.
    BodyTooLarge,
    /// `vary-star` (not stored): `Vary: *` (RFC 9111 §4.1).
    VaryStar,
    /// `head` (not stored): a response to HEAD (it has no body; RFC 9111 §4.3.5).
    Head,
    /// `read-only` (not stored): the cache is `read_only`.
    ReadOnly,
    /// `set-cookie` (not stored in a shared cache): a response with `Set-Cookie`
    /// (`SetCookie::NotStored`).
    SetCookie,
    /// `cookie-without-explicit-freshness` (not stored in a shared cache): a response to a request
    /// with cookies, without explicit freshness.
    CookieWithoutExplicitFreshness,
    /// `partial-not-requested` (a 206 not stored): the request was not a GET with one `Range`.
    PartialNotRequested,
    /// `partial-multipart` (a 206 not stored): `multipart/byteranges`.
    PartialMultipart,
    /// `partial-unknown-length` (a 206 not stored): `Content-Range` without a known complete
    /// length.
    PartialUnknownLength,
    /// `partial-bad-content-range` (a 206 not stored): an invalid `Content-Range`.
    PartialBadContentRange,
    /// `partial-length-mismatch` (a 206 not stored): the body disagrees with its `Content-Range`.
    PartialLengthMismatch,
    /// `partial-weak-validator` (a 206 not stored): no strong `ETag` to combine parts by (RFC 9110
    /// §8.8.2.2).
    PartialWeakValidator,
}

impl Detail {
    /// The token: `no-store`, `vary-mismatch`, ... (see the variants).
    pub fn as_str(self) -> &'static str {
        match self {
            Detail::Disabled => "disabled",
            Detail::Method => "method",
            Detail::DoNotCache => "do-not-cache",
            Detail::InvalidHost => "invalid-host",
            Detail::NoKeyBody => "no-key-body",
            Detail::Stale => "stale",
            Detail::VaryMismatch => "vary-mismatch",
            Detail::MethodMismatch => "method-mismatch",
            Detail::Filter => "filter",
            Detail::ForceRefresh => "force-refresh",
            Detail::Partial => "partial",
            Detail::Precondition => "precondition",
            Detail::StaleWhileRevalidate => "stale-while-revalidate",
            Detail::ValidatorMismatch => "validator-mismatch",
            Detail::InvalidNotModified => "invalid-304",
            Detail::NoStore => "no-store",
            Detail::RequestNoStore => "request-no-store",
            Detail::Private => "private",
            Detail::Authorization => "authorization",
            Detail::MustUnderstand => "must-understand",
            Detail::StatusNotStorable => "status-not-storable",
            Detail::StatusNotAllowed => "status-not-allowed",
            Detail::MethodNotCacheable => "method-not-cacheable",
            Detail::PreconditionFailed => "precondition-failed",
            Detail::NotStorable => "not-storable",
            Detail::NoFreshnessInformation => "no-freshness-information",
            Detail::StaleWithoutValidator => "stale-without-validator",
            Detail::BodyTooLarge => "body-too-large",
            Detail::VaryStar => "vary-star",
            Detail::Head => "head",
            Detail::ReadOnly => "read-only",
            Detail::SetCookie => "set-cookie",
            Detail::CookieWithoutExplicitFreshness => "cookie-without-explicit-freshness",
            Detail::PartialNotRequested => "partial-not-requested",
            Detail::PartialMultipart => "partial-multipart",
            Detail::PartialUnknownLength => "partial-unknown-length",
            Detail::PartialBadContentRange => "partial-bad-content-range",
            Detail::PartialLengthMismatch => "partial-length-mismatch",
            Detail::PartialWeakValidator => "partial-weak-validator",
        }
    }
}

impl std::fmt::Display for Detail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the cache did for a response: attached to every response that passes through the
/// cache, as an [`http::Extensions`] entry (requests-cache's `CachedResponse` attributes), unless
/// [`CacheSettings::cache_info`](crate::CacheSettings#structfield.cache_info) is off.
///
/// ```
/// # use cachelayer::CacheInfo;
/// # fn handle(response: http::Response<()>) {
/// if let Some(info) = response.extensions().get::<CacheInfo>() {
///     println!("from cache: {}, expires: {:?}", info.from_cache, info.expires);
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheInfo {
    /// What happened.
    pub outcome: CacheOutcome,
    /// The body and headers came from the cache (requests-cache `from_cache`): a hit, a stale
    /// hit, a revalidated or a stale-if-error response.
    pub from_cache: bool,
    /// The stored response was revalidated with the origin for this request (requests-cache
    /// `revalidated`).
    pub revalidated: bool,
    /// The response is being stored (once its body has been read to the end).
    pub stored: bool,
    /// The cache key of the request (requests-cache `cache_key`); `None` on bypass.
    pub cache_key: Option<CacheKey>,
    /// When the response served from the cache was received from the origin (requests-cache
    /// `created_at`).
    pub created_at: Option<SystemTime>,
    /// When the response served or stored becomes stale; `None` if never or unknown
    /// (requests-cache `expires`).
    pub expires: Option<SystemTime>,
    /// The served response was stale (requests-cache `is_expired`).
    pub is_expired: bool,
    /// Why the response was not stored, or why a stored response was not used (also the
    /// `Cache-Status` `detail`, as [`Detail::as_str`]).
    pub detail: Option<Detail>,
}

impl CacheInfo {
    pub(crate) fn new(outcome: CacheOutcome, cache_key: Option<CacheKey>) -> Self {
        CacheInfo {
            outcome,
            from_cache: matches!(
                outcome,
                CacheOutcome::Hit
                    | CacheOutcome::StaleHit
                    | CacheOutcome::StaleWhileRevalidate
                    | CacheOutcome::Revalidated
                    | CacheOutcome::StaleIfError
            ),
            revalidated: outcome == CacheOutcome::Revalidated,
            stored: false,
            cache_key,
            created_at: None,
            expires: None,
            is_expired: false,
            detail: None,
        }
    }

    /// A hit as such, with nothing else to tell: `Cache-Status` is the cache's name, `hit`,
    /// `ttl` and `key`.
    pub(crate) fn is_plain_hit(&self) -> bool {
        matches!(self.outcome, CacheOutcome::Hit | CacheOutcome::StaleHit)
            && self.from_cache
            && !self.stored
            && self.detail.is_none()
    }

    /// The `Cache-Status` field value for this response (RFC 9211 §2), as of `now`: a
    /// Structured Field List (RFC 8941) of one member, the cache's name with parameters.
    ///
    /// `cache_name` is a Token when it is one (`cachelayer`), otherwise a String (`"my
    /// cache"`); `None` when it can be neither (non-ASCII). `fwd-status` is added for
    /// revalidated and stale-if-error responses from `origin_status`; a `key` that cannot be
    /// a String (a non-ASCII `key_fn` key) is left out.
    // Written by hand rather than with sfv's `ListSerializer`: this runs on every hit, and the
    // serializer cost about 2,200 more instructions per hit (validating every key and token,
    // integers through `fmt`), measured with the `hitcount` example. What is written by hand is
    // only constant tokens, integers and a hex digest; the parts that come from settings or
    // `key_fn` go through sfv's validation. `tests` parses every combination back with sfv.
    pub fn cache_status(
        &self,
        cache_name: &str,
        now: SystemTime,
        origin_status: Option<u16>,
    ) -> Option<HeaderValue> {
        let name = StatusName::new(cache_name);
        let mut out = String::new();
        self.write_cache_status(&mut out, name.0.as_deref()?, now, origin_status);
        // Checked: the fields are public, and `detail` may have been changed.
        HeaderValue::from_str(&out).ok()
    }

    /// [`cache_status`](Self::cache_status) with the name serialized beforehand (once per
    /// settings: sfv's validation of a name costs a hit about 200 instructions).
    pub(crate) fn cache_status_named(
        &self,
        name: &StatusName,
        now: SystemTime,
        origin_status: Option<u16>,
    ) -> Option<HeaderValue> {
        let name = name.0.as_deref()?;
        // Written into a buffer the thread keeps, then copied once into a value of its length:
        // one allocation per response.
        thread_local! {
            static BUFFER: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
        }
        BUFFER.with(|buffer| match buffer.try_borrow_mut() {
            Ok(mut out) => {
                out.clear();
                self.write_cache_status(&mut out, name, now, origin_status);
                field_value(&out)
            }
            // Not reentrant; should it ever be, a buffer of its own.
            Err(_) => {
                let mut out = String::new();
                self.write_cache_status(&mut out, name, now, origin_status);
                field_value(&out)
            }
        })
    }

    /// Writes the `Cache-Status` member of this cache (see [`cache_status`](Self::cache_status)).
    fn write_cache_status(
        &self,
        out: &mut String,
        name: &str,
        now: SystemTime,
        origin_status: Option<u16>,
    ) {
        out.push_str(name);
        match self.outcome {
            CacheOutcome::Hit | CacheOutcome::StaleHit | CacheOutcome::StaleWhileRevalidate => {
                out.push_str("; hit")
            }
            CacheOutcome::Revalidated | CacheOutcome::StaleIfError => out.push_str("; fwd=stale"),
            CacheOutcome::Miss => out.push_str("; fwd=uri-miss"),
            CacheOutcome::Refreshed => match self.detail {
                Some(Detail::VaryMismatch) => out.push_str("; fwd=vary-miss"),
                Some(Detail::Partial) => out.push_str("; fwd=partial"),
                Some(Detail::Stale) => out.push_str("; fwd=stale"),
                _ => out.push_str("; fwd=miss"),
            },
            CacheOutcome::ForwardedByRequest => out.push_str("; fwd=request"),
            CacheOutcome::Bypass => out.push_str("; fwd=bypass"),
            CacheOutcome::NotCached => out.push_str("; fwd=miss"),
        }
        // `only-if-cached` with nothing usable stored: the cache's own 504 (RFC 9111 §5.2.1.7).
        let origin_status = match self.outcome {
            CacheOutcome::NotCached => origin_status.or(Some(504)),
            _ => origin_status,
        };
        if let Some(status) = origin_status {
            out.push_str("; fwd-status=");
            push_int(out, u64::from(status));
        }
        if self.stored {
            out.push_str("; stored");
        }
        if self.from_cache {
            if let Some(ttl) = ttl(self.expires, now) {
                out.push_str("; ttl=");
                if ttl.stale {
                    out.push('-');
                }
                push_int(out, ttl.secs);
            }
        }
        if let Some(key) = &self.cache_key {
            if key.digest().is_some() {
                // Hex digits: a String as they are.
                out.push_str("; key=\"");
                key.push_to(out);
                out.push('"');
            } else {
                push_key(out, key);
            }
        }
        if let Some(detail) = self.detail {
            out.push_str("; detail=");
            out.push_str(detail.as_str());
        }
    }
}

/// The `ttl` of `Cache-Status` (RFC 9211 §2.5) for a response that expires at `expires`, as of
/// `now`: whole seconds of freshness left, or of staleness (`stale`, never with 0 seconds);
/// `None` without an expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ttl {
    pub(crate) stale: bool,
    pub(crate) secs: u64,
}

/// The [`Ttl`] of a response that expires at `expires`, as of `now`.
pub(crate) fn ttl(expires: Option<SystemTime>, now: SystemTime) -> Option<Ttl> {
    Some(match expires?.duration_since(now) {
        Ok(left) => Ttl {
            stale: false,
            secs: left.as_secs(),
        },
        Err(e) => {
            let secs = e.duration().as_secs();
            Ttl {
                stale: secs > 0,
                secs,
            }
        }
    })
}

/// `text` (a serialized `Cache-Status` member: printable ASCII) as a field value in an
/// allocation of its length; `None` if it were not a valid value.
fn field_value(text: &str) -> Option<HeaderValue> {
    HeaderValue::from_maybe_shared(bytes::Bytes::copy_from_slice(text.as_bytes())).ok()
}

#[cfg(test)]
mod cache_status_tests;

/// A cache's name as the first member of `Cache-Status` (RFC 9211 §2) serializes it, by sfv: a
/// Token when it is one, otherwise a String; `None` when it can be neither (non-ASCII).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StatusName(Option<String>);

impl StatusName {
    pub(crate) fn new(name: &str) -> Self {
        if let Ok(token) = sfv::TokenRef::from_str(name) {
            return StatusName(Some(token.as_str().to_owned()));
        }
        StatusName(sfv::StringRef::from_str(name).ok().map(|string| {
            let mut out = String::new();
            let _ = sfv::ItemSerializer::with_buffer(&mut out).bare_item(string);
            out
        }))
    }
}

/// Appends `; key="..."` with a `key_fn` key escaped as a Structured Field String by sfv;
/// nothing when it cannot be one (characters outside printable ASCII).
fn push_key(out: &mut String, key: &CacheKey) {
    let mut text = String::new();
    key.push_to(&mut text);
    if let Ok(value) = sfv::StringRef::from_str(&text) {
        out.push_str("; key=");
        let _ = sfv::ItemSerializer::with_buffer(out).bare_item(value);
    }
}

/// Appends the decimal digits of `n`.
fn push_int(out: &mut String, n: u64) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// Seconds of a duration for an `Age` header (RFC 9111 §5.1), capped at 2^31. Ages below
/// [`STATIC_AGES`] are static values: no allocation, and clones that touch no shared counter.
pub(crate) fn age_header(age: Duration) -> HeaderValue {
    let secs = age
        .as_secs()
        .min(cachelayer_policy::directives::MAX_DELTA_SECONDS);
    usize::try_from(secs)
        .ok()
        .and_then(|secs| static_ages().get(secs))
        .cloned()
        .unwrap_or_else(|| HeaderValue::from(secs))
}

/// How many `Age` values are kept ready (an hour).
const STATIC_AGES: usize = 3600;

fn static_ages() -> &'static [HeaderValue] {
    static AGES: std::sync::OnceLock<Vec<HeaderValue>> = std::sync::OnceLock::new();
    AGES.get_or_init(|| {
        (0..STATIC_AGES)
            .map(|secs| HeaderValue::from_static(Box::leak(secs.to_string().into_boxed_str())))
            .collect()
    })
}
