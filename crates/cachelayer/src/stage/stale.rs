//! Serving stale responses when the origin fails (RFC 5861 §4 stale-if-error; requests-cache
//! `stale_if_error`).

use crate::settings::{CacheSettings, StaleWindow};
use crate::stage::request::RequestPlan;
use cachelayer_store::StoredResponse;
use http::StatusCode;
use std::time::SystemTime;

/// Whether a stored response may stand in for a failed origin response at `now`: the cache's
/// `stale_if_error` setting (or the request's option), the response's `stale-if-error` or the
/// request's `stale-if-error` allows its staleness, and nothing requires revalidation
/// (`must-revalidate`, `no-cache`).
///
/// With `unreachable` (the origin could not be reached at all), the `stale_if_unreachable`
/// setting allows any staleness.
pub(crate) fn if_error_allowed(
    entry: &StoredResponse,
    plan: &RequestPlan,
    settings: &CacheSettings,
    now: SystemTime,
    unreachable: bool,
) -> bool {
    if unreachable && settings.stale_if_unreachable && !entry.stale.must_revalidate {
        return true;
    }
    stale_within(
        entry,
        now,
        plan.stale_if_error.unwrap_or(settings.stale_if_error),
        |staleness| {
            entry
                .stale
                .stale_if_error
                .is_some_and(|max| staleness < max)
                || plan
                    .directives
                    .stale_if_error
                    .is_some_and(|max| staleness < max)
        },
    )
}

/// Whether `entry` may be served stale at `now`: nothing requires revalidation, and its
/// staleness is within the setting's window or accepted by `directive`.
fn stale_within(
    entry: &StoredResponse,
    now: SystemTime,
    setting: StaleWindow,
    directive: impl Fn(std::time::Duration) -> bool,
) -> bool {
    if entry.stale.must_revalidate {
        return false;
    }
    let staleness = entry.time_to_live(now).err().unwrap_or_default();
    setting.allows(staleness) || directive(staleness)
}

/// Whether an origin status counts as an error for stale-if-error: a 5xx (RFC 5861 §4); when
/// the `stale_if_error` setting or request option is on, also a 4xx ("the page has moved and you
/// get a 404": requests-cache); and, when the settings restrict `allowable_codes`, any status
/// they do not allow (requests-cache). Never a 412, which answers the request's own
/// preconditions.
pub(crate) fn is_error_status(
    status: StatusCode,
    plan: &RequestPlan,
    settings: &CacheSettings,
) -> bool {
    // A 412 answers the request's own preconditions: the origin is not failing.
    if status == StatusCode::PRECONDITION_FAILED {
        return false;
    }
    let by_setting = plan.stale_if_error.unwrap_or(settings.stale_if_error) != StaleWindow::Off;
    status.is_server_error()
        || (by_setting && status.is_client_error())
        || (settings.allowable_codes.is_some() && !settings.allows_status(status))
}

/// Whether a stale stored response may be served while it is revalidated in the background at
/// `now` (RFC 5861 §3; requests-cache `stale_while_revalidate`): the request's option or the
/// setting, or the response's own `stale-while-revalidate`, allows its staleness, and nothing
/// requires revalidation first (`must-revalidate`, `no-cache`).
pub(crate) fn while_revalidate_allowed(
    entry: &StoredResponse,
    plan: &RequestPlan,
    settings: &CacheSettings,
    now: SystemTime,
) -> bool {
    let setting = plan
        .stale_while_revalidate
        .unwrap_or(settings.stale_while_revalidate);
    stale_within(entry, now, setting, |staleness| {
        entry
            .stale
            .stale_while_revalidate
            .is_some_and(|max| staleness < max)
    })
}
