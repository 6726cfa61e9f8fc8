//! Store operations bounded in time (`store_timeout`): a store that does not answer in time is a
//! miss (reads) or leaves the response unstored (writes), never a stuck request.
//!
//! The timer is armed only when the store's future is still pending after its first poll, so a
//! store that answers at once (the memory store) pays nothing for the bound.

use cachelayer_store::{StoreError, StoreFuture};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Sleep;

/// A store future that fails with [`StoreError::timeout`] after `limit`.
pub(crate) struct Bounded<T> {
    inner: StoreFuture<T>,
    limit: Duration,
    timer: Option<Pin<Box<Sleep>>>,
}

impl<T> Bounded<T> {
    pub(crate) fn new(inner: StoreFuture<T>, limit: Duration) -> Self {
        Bounded {
            inner,
            limit,
            timer: None,
        }
    }
}

impl<T> Future for Bounded<T> {
    type Output = Result<T, StoreError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Poll::Ready(output) = this.inner.as_mut().poll(cx) {
            return Poll::Ready(output);
        }
        if this.timer.is_none() && tokio::runtime::Handle::try_current().is_ok() {
            this.timer = Some(Box::pin(tokio::time::sleep(this.limit)));
        }
        match this.timer.as_mut().map(|timer| timer.as_mut().poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(Err(StoreError::timeout())),
            _ => Poll::Pending,
        }
    }
}

/// `inner`, bounded by `limit`, boxed as a store future.
pub(crate) fn bounded<T: Send + 'static>(inner: StoreFuture<T>, limit: Duration) -> StoreFuture<T> {
    Box::pin(Bounded::new(inner, limit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_store_that_never_answers_times_out() {
        let never: StoreFuture<u8> = Box::pin(std::future::pending());
        let result = Bounded::new(never, Duration::from_millis(50)).await;
        assert!(result.is_err_and(|e| e.is_timeout()));
    }

    #[tokio::test]
    async fn an_immediate_answer_arms_no_timer() {
        let ready: StoreFuture<u8> = Box::pin(async { Ok(7) });
        let mut bounded = Bounded::new(ready, Duration::from_millis(50));
        assert_eq!(futures_poll(&mut bounded), Poll::Ready(7));
        assert!(bounded.timer.is_none());
    }

    fn futures_poll(bounded: &mut Bounded<u8>) -> Poll<u8> {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        Pin::new(bounded)
            .poll(&mut cx)
            .map(|r| r.unwrap_or_default())
    }
}
