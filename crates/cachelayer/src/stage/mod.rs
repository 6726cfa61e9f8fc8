//! The stages a request goes through, each a separate piece:
//!
//! 1. [`request`]: the policy decision on the request (cache it or bypass), and its key;
//! 2. lookup in the store (the [`Store`](cachelayer_store::Store));
//! 3. [`lookup`]: whether a stored response can serve the request (fresh, stale, other variant);
//! 4. [`revalidate`]: conditional requests with the stored validators, and freshening with 304;
//! 5. [`stale`]: serving stale responses when the origin fails (stale-if-error);
//! 6. [`write`]: whether the origin's response is stored, and the entry it becomes;
//!    [`partial`]: 206 responses stored as parts and combined (RFC 9111 §3.3, §3.4);
//! 7. [`variant`]: secondary keys for responses that vary by request header fields;
//! 8. [`invalidate`]: removing stored responses after unsafe requests.

pub(crate) mod coalesce;
pub(crate) mod invalidate;
pub(crate) mod key_memo;
pub(crate) mod lookup;
pub(crate) mod partial;
pub(crate) mod range;
pub(crate) mod request;
pub(crate) mod revalidate;
pub(crate) mod served;
pub(crate) mod stale;
pub(crate) mod timeout;
pub(crate) mod variant;
pub(crate) mod write;
