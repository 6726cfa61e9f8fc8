//! The store conformance suite on [`RedisStore`](cachelayer_redis::RedisStore), against the Redis
//! at `CACHELAYER_TEST_REDIS_URL` (default `redis://127.0.0.1:6379`), each test in its own
//! namespace. Fails when Redis is not running.

mod common;

use common::{TestRedis, write_raw};

async fn make_store() -> TestRedis {
    TestRedis::new("conformance").await
}

cachelayer_store::store_conformance_tests!(make_store, corrupt = write_raw);
