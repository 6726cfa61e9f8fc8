//! The store conformance suite on [`RedisStore`](cachelayer_redis::RedisStore), against the Redis
//! at `CACHELAYER_TEST_REDIS_URL` (default `redis://127.0.0.1:6379`), each test in its own
//! namespace, and on a [`TieredStore`] of a [`MemoryStore`] in front of one. Fails when Redis is
//! not running.

mod common;

use cachelayer_store::{MemoryStore, TieredStore};
use common::{TestRedis, write_raw};
use std::sync::Arc;

async fn make_store() -> TestRedis {
    TestRedis::new("conformance").await
}

cachelayer_store::store_conformance_tests!(make_store, corrupt = write_raw, counted);

/// With an integrity key: the same behaviour, and the records with a plain digest among the
/// corrupt ones.
mod keyed {
    use super::*;
    use cachelayer_redis::RedisStore;
    use cachelayer_store::IntegrityKey;
    use common::{redis_url, unique_namespace};

    async fn make_keyed() -> TestRedis {
        TestRedis::with(
            RedisStore::builder(redis_url())
                .namespace(unique_namespace("conformance-keyed"))
                .integrity_key(IntegrityKey::derive(b"conformance")),
        )
        .await
    }

    cachelayer_store::store_conformance_tests!(make_keyed, corrupt = write_raw, counted);
}

mod memory_over_redis {
    use super::*;

    async fn make_tiered() -> TieredStore {
        TieredStore::new(Arc::new(MemoryStore::new()), Arc::new(make_store().await))
    }

    cachelayer_store::store_conformance_tests!(make_tiered);
}
