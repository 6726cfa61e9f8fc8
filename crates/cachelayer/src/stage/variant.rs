//! Secondary keys (RFC 9111 §4.1): several responses of one URL, chosen by the request header
//! fields their `Vary` names, stored side by side.
//!
//! A response with `Vary` is stored twice: under the request's primary key (the latest variant,
//! whose `Vary` tells which header fields select a variant) and under a secondary key derived from
//! the primary key and the values of those fields. A lookup whose request does not match the
//! variant at the primary key looks up the secondary key its own header values give.

use cachelayer_policy::CacheKey;
use cachelayer_store::{Store, StoreFuture, StoredResponse};
use http::HeaderMap;
use http::header::VARY;
use std::sync::Arc;

/// The header field names a response's `Vary` lists, lowercase, in order, without duplicates;
/// `None` when it has no `Vary` (or only `Vary: *`, which no request matches).
fn vary_names(response: &HeaderMap) -> Option<Vec<String>> {
    let mut names: Vec<String> = Vec::new();
    for value in response.get_all(VARY) {
        let value = value.to_str().ok()?;
        for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if name == "*" {
                return None;
            }
            let name = name.to_ascii_lowercase();
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    (!names.is_empty()).then_some(names)
}

/// The secondary key of the variant that `request` selects among responses with `response`'s
/// `Vary`; `None` when the response does not vary.
pub(crate) fn variant_key(
    primary: &CacheKey,
    response: &HeaderMap,
    request: &HeaderMap,
) -> Option<CacheKey> {
    let names = vary_names(response)?;
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"cachelayer-variant-v1\n");
    hasher.update(primary.to_string().as_bytes());
    for name in &names {
        hasher.update(b"\n");
        hasher.update(name.as_bytes());
        hasher.update(b":");
        for (i, value) in request.get_all(name.as_str()).iter().enumerate() {
            if i > 0 {
                hasher.update(b",");
            }
            hasher.update(value.as_bytes().trim_ascii());
        }
    }
    let mut digest = [0u8; 16];
    hasher.finalize_xof().fill(&mut digest);
    Some(CacheKey::from_digest(digest))
}

/// Stores `entry` under `primary`, under its secondary key when it varies, and under `alias`
/// (the key of the URL a redirect-following layer below the cache ended at) when given.
pub(crate) fn put_entry(
    store: &Arc<dyn Store>,
    primary: CacheKey,
    alias: Option<CacheKey>,
    entry: Arc<StoredResponse>,
) -> StoreFuture<()> {
    let mut keys = vec![];
    if let Some(variant) = variant_key(&primary, &entry.headers, &entry.request.headers) {
        keys.push(variant);
    }
    if let Some(alias) = alias.filter(|alias| *alias != primary) {
        if let Some(variant) = variant_key(&alias, &entry.headers, &entry.request.headers) {
            keys.push(variant);
        }
        keys.push(alias);
    }
    keys.push(primary);
    let writes: Vec<_> = keys
        .into_iter()
        .map(|key| store.put(key, entry.clone()))
        .collect();
    Box::pin(async move {
        for write in writes {
            write.await?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn variant_keys_depend_on_the_nominated_fields_only() {
        let primary = CacheKey::from_digest([7; 16]);
        let response = headers(&[("vary", "Accept-Language, accept-encoding")]);
        let en = variant_key(
            &primary,
            &response,
            &headers(&[("accept-language", "en"), ("user-agent", "a")]),
        );
        let en_other_agent = variant_key(
            &primary,
            &response,
            &headers(&[("accept-language", "en"), ("user-agent", "b")]),
        );
        let fr = variant_key(&primary, &response, &headers(&[("accept-language", "fr")]));
        assert!(en.is_some());
        assert_eq!(en, en_other_agent, "headers outside Vary do not matter");
        assert_ne!(en, fr);
        let other_primary = variant_key(
            &CacheKey::from_digest([8; 16]),
            &response,
            &headers(&[("accept-language", "en")]),
        );
        assert_ne!(en, other_primary, "variants of different URLs differ");
    }

    #[test]
    fn no_vary_and_vary_star_have_no_variant_key() {
        let primary = CacheKey::from_digest([7; 16]);
        assert_eq!(variant_key(&primary, &headers(&[]), &headers(&[])), None);
        assert_eq!(
            variant_key(&primary, &headers(&[("vary", "*")]), &headers(&[])),
            None
        );
        assert_eq!(
            variant_key(&primary, &headers(&[("vary", "accept, *")]), &headers(&[])),
            None
        );
    }
}
