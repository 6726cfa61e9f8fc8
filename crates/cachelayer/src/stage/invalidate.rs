//! Invalidation (RFC 9111 §4.4): a non-error response to an unsafe method (POST, PUT, DELETE,
//! PATCH, ...) removes the stored responses of its target URI and of the same-origin URIs in its
//! `Location` and `Content-Location`.

use crate::health::{StoreHealth, StoreOp};
use crate::settings::ActiveSettings;
use cachelayer_policy::CacheKey;
use cachelayer_policy::key::{self, KeyInput};
use cachelayer_store::{EntryFilter, Store, StoreFuture};
use http::header::{CONTENT_LOCATION, LOCATION, VARY};
use http::{HeaderMap, Method, StatusCode, Uri};
use std::sync::Arc;

/// `true` for methods that are not safe (RFC 9110 §9.2.1): every method but GET, HEAD, OPTIONS
/// and TRACE.
pub(crate) fn is_unsafe(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// The keys whose stored responses a response to an unsafe request invalidates; empty when the
/// method is safe or the status is an error (not 2xx or 3xx).
pub(crate) fn keys_to_invalidate(
    method: &Method,
    uri: &Uri,
    request_headers: &HeaderMap,
    status: StatusCode,
    response_headers: &HeaderMap,
    settings: &ActiveSettings,
) -> Vec<CacheKey> {
    if !is_unsafe(method) || !(status.is_success() || status.is_redirection()) {
        return Vec::new();
    }
    let key_of = |target: &Uri| {
        let input = KeyInput {
            method: &Method::GET,
            uri: target,
            headers: request_headers,
            body: None,
        };
        match &settings.key_fn {
            Some(key_fn) => key_fn.key(&input, &settings.key_options),
            None => key::create_key(&input, &settings.key_options),
        }
    };
    let mut keys = vec![key_of(uri)];
    let origin = origin_of(uri, request_headers);
    for name in [LOCATION, CONTENT_LOCATION] {
        let Some(target) = response_headers.get(&name).and_then(|v| v.to_str().ok()) else {
            continue;
        };
        if let Some(target) = same_origin_uri(target.trim(), &origin) {
            let key = key_of(&target);
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
    keys
}

/// `scheme://authority` of the request, lowercase, as keys normalize it.
fn origin_of(uri: &Uri, headers: &HeaderMap) -> String {
    let url = key::normalize_url(uri, headers, &[]);
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let end = url[after_scheme..]
        .find('/')
        .map_or(url.len(), |i| after_scheme + i);
    url[..end].to_owned()
}

/// `target` as an absolute URI when it is on `origin` (RFC 9111 §4.4: only same-origin URIs are
/// invalidated): absolute URIs with the same scheme and authority, and absolute paths.
fn same_origin_uri(target: &str, origin: &str) -> Option<Uri> {
    if target.starts_with('/') && !target.starts_with("//") {
        return format!("{origin}{target}").parse().ok();
    }
    let absolute: Uri = target.parse().ok()?;
    absolute.authority()?;
    (origin_of(&absolute, &HeaderMap::new()) == origin).then_some(absolute)
}

/// Removes the stored responses under every key; errors are logged, never returned:
/// invalidation failing must not fail the response it follows.
///
/// A response with `Vary` has variants under secondary keys as well (see `variant`): when the
/// entry under a key varies, every stored response of its URL is removed, so that no older
/// variant outlives the invalidation.
pub(crate) fn remove_all(
    store: &Arc<dyn Store>,
    health: &Arc<StoreHealth>,
    keys: Vec<CacheKey>,
) -> StoreFuture<()> {
    let store = store.clone();
    let health = health.clone();
    Box::pin(async move {
        for key in keys {
            let varies = match store.get(&key).await {
                Ok(Some(entry)) => entry
                    .headers
                    .contains_key(VARY)
                    .then(|| entry.request.url.clone()),
                _ => None,
            };
            let removed = match varies {
                Some(url) => store
                    .clone()
                    .delete(EntryFilter::Urls(vec![url]))
                    .await
                    .map(|n| n > 0),
                None => store.remove(&key).await,
            };
            match removed {
                Ok(removed) => {
                    health.success();
                    if removed {
                        tracing::debug!(%key, "invalidated");
                    }
                }
                Err(error) => {
                    tracing::debug!(%key, %error, "cache store failed to invalidate an entry");
                    health.failure(StoreOp::Invalidate, &error);
                }
            }
        }
        Ok(())
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::settings::CacheSettings;
    use http::HeaderValue;

    fn keys(method: Method, status: u16, location: Option<&'static str>) -> Vec<CacheKey> {
        let settings = ActiveSettings::new(CacheSettings::default());
        let mut response = HeaderMap::new();
        if let Some(location) = location {
            response.insert(LOCATION, HeaderValue::from_static(location));
        }
        let uri: Uri = "http://api.example.com/items/7".parse().unwrap();
        keys_to_invalidate(
            &method,
            &uri,
            &HeaderMap::new(),
            StatusCode::from_u16(status).unwrap(),
            &response,
            &settings,
        )
    }

    #[test]
    fn unsafe_methods_with_non_error_status_invalidate_the_target() {
        assert_eq!(keys(Method::POST, 201, None).len(), 1);
        assert_eq!(keys(Method::DELETE, 204, None).len(), 1);
        assert_eq!(keys(Method::PUT, 303, None).len(), 1);
        assert!(
            keys(Method::POST, 500, None).is_empty(),
            "errors invalidate nothing"
        );
        assert!(keys(Method::POST, 404, None).is_empty());
        assert!(
            keys(Method::GET, 200, None).is_empty(),
            "safe methods invalidate nothing"
        );
        assert!(keys(Method::OPTIONS, 200, None).is_empty());
    }

    #[test]
    fn same_origin_locations_are_invalidated_too() {
        assert_eq!(keys(Method::POST, 201, Some("/items/8")).len(), 2);
        assert_eq!(
            keys(Method::POST, 201, Some("http://API.example.com:80/items/8")).len(),
            2
        );
        assert_eq!(
            keys(Method::POST, 201, Some("/items/7")).len(),
            1,
            "the target itself once"
        );
        assert_eq!(
            keys(Method::POST, 201, Some("https://api.example.com/items/8")).len(),
            1,
            "other scheme"
        );
        assert_eq!(
            keys(Method::POST, 201, Some("http://evil.example/items/8")).len(),
            1,
            "other host"
        );
        assert_eq!(
            keys(Method::POST, 201, Some("//evil.example/x")).len(),
            1,
            "scheme-relative"
        );
        assert_eq!(keys(Method::POST, 201, Some("not a uri")).len(), 1);
    }
}
