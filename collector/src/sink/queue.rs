//! What every sink shares: a bounded queue that `offer` fills without waiting, and a task that
//! drains it in batches, keeping a batch that failed and retrying it with backoff until it is
//! written. A batch being written still counts against the bound, so the memory held is the
//! bound whatever the external store does.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

use super::{Delivery, SinkStats};

/// Why a write failed, which decides what becomes of the batch.
#[derive(Debug)]
pub(crate) enum WriteError {
    /// The store is away, slow, overloaded or refusing us for now: the batch is kept and sent
    /// again.
    Transient(String),
    /// The store refused the batch itself (malformed): sending it again cannot succeed, so it is
    /// dropped and counted, and the queue moves on.
    Rejected(String),
}

pub(crate) struct Queue<T> {
    held: Mutex<Held<T>>,
    ready: Notify,
    capacity: usize,
    written: AtomicU64,
    dropped: AtomicU64,
    write_errors: AtomicU64,
}

struct Held<T> {
    waiting: VecDeque<T>,
    /// The batch being written, taken out of `waiting` but still held.
    in_flight: usize,
}

impl<T> Queue<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        Queue {
            held: Mutex::new(Held {
                waiting: VecDeque::new(),
                in_flight: 0,
            }),
            ready: Notify::new(),
            capacity,
            written: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            write_errors: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Held<T>> {
        // Nothing in the critical sections can leave the queue half-updated.
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Room left now; it may shrink before a push, which then drops the excess.
    pub(crate) fn room(&self) -> usize {
        let h = self.lock();
        self.capacity.saturating_sub(h.waiting.len() + h.in_flight)
    }

    /// Counts points given up before they reached the queue (e.g. that could not be encoded,
    /// or that were not encoded because there was no room).
    pub(crate) fn drop_count(&self, n: usize) {
        self.dropped.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Queues `items` in order while there is room; drops and counts the rest. Never waits
    /// but for the lock, which is only ever held to move items.
    pub(crate) fn push(&self, items: Vec<T>) {
        let n = items.len();
        let taken = {
            let mut h = self.lock();
            let room = self.capacity.saturating_sub(h.waiting.len() + h.in_flight);
            let taken = n.min(room);
            h.waiting.extend(items.into_iter().take(taken));
            taken
        };
        self.drop_count(n - taken);
        if taken > 0 {
            self.ready.notify_one();
        }
    }

    fn waiting(&self) -> usize {
        self.lock().waiting.len()
    }

    /// Waits for a point, then up to `flush_interval` for `batch_size` of them.
    async fn wait_for_batch(&self, batch_size: usize, flush_interval: Duration) {
        // `notify_one` leaves a permit when nobody waits, so a push between the check and the
        // wait is not missed.
        while self.waiting() == 0 {
            self.ready.notified().await;
        }
        let deadline = tokio::time::Instant::now() + flush_interval;
        while self.waiting() < batch_size {
            if tokio::time::timeout_at(deadline, self.ready.notified())
                .await
                .is_err()
            {
                break;
            }
        }
    }

    /// Moves up to `max` of the oldest points into the batch being written.
    fn take(&self, max: usize) -> Vec<T> {
        let mut h = self.lock();
        let n = max.min(h.waiting.len());
        let batch: Vec<T> = h.waiting.drain(..n).collect();
        h.in_flight = batch.len();
        batch
    }

    /// The batch being written is done with: `written` or given up.
    fn finish(&self, n: usize, written: bool) {
        self.lock().in_flight = 0;
        let counter = if written {
            &self.written
        } else {
            &self.dropped
        };
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn stats(&self) -> SinkStats {
        let queued = {
            let h = self.lock();
            h.waiting.len() + h.in_flight
        };
        SinkStats {
            written: self.written.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            write_errors: self.write_errors.load(Ordering::Relaxed),
            queued: queued as u64,
        }
    }
}

/// Waits after failed writes: `initial`, doubling up to `max`.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        Backoff { next: initial, max }
    }

    pub(crate) fn next_wait(&mut self) -> Duration {
        let wait = self.next.min(self.max);
        self.next = wait.saturating_mul(2).min(self.max);
        wait
    }
}

/// Drains `queue` into `write`, batch by batch, for as long as the task runs. A batch is
/// written whole or retried whole, so points reach the store in the order they were offered.
pub(crate) async fn deliver<T, W, F>(
    sink: &'static str,
    queue: Arc<Queue<T>>,
    delivery: Delivery,
    mut write: W,
) where
    W: FnMut(&[T]) -> F,
    F: Future<Output = Result<(), WriteError>>,
{
    loop {
        queue
            .wait_for_batch(delivery.batch_size, delivery.flush_interval)
            .await;
        let batch = queue.take(delivery.batch_size);
        let n = batch.len();
        let mut backoff = Backoff::new(delivery.retry_initial, delivery.retry_max);
        loop {
            let attempt = tokio::time::timeout(delivery.write_timeout, write(&batch))
                .await
                .unwrap_or_else(|_| {
                    Err(WriteError::Transient(format!(
                        "no answer within {}",
                        humantime::format_duration(delivery.write_timeout)
                    )))
                });
            match attempt {
                Ok(()) => {
                    queue.finish(n, true);
                    break;
                }
                Err(WriteError::Rejected(error)) => {
                    queue.write_errors.fetch_add(1, Ordering::Relaxed);
                    queue.finish(n, false);
                    tracing::error!(sink, points = n, %error, "batch refused as malformed; dropped, since sending it again cannot succeed");
                    break;
                }
                Err(WriteError::Transient(error)) => {
                    queue.write_errors.fetch_add(1, Ordering::Relaxed);
                    let wait = backoff.next_wait();
                    tracing::warn!(sink, points = n, retry_in = %humantime::format_duration(wait), %error, "write failed; the batch is kept and retried");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex as StdMutex;

    fn delivery() -> Delivery {
        Delivery {
            batch_size: 3,
            flush_interval: Duration::from_secs(1),
            max_buffered: 5,
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(4),
            write_timeout: Duration::from_secs(10),
        }
    }

    #[test]
    fn backoff_doubles_up_to_its_ceiling() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let waits: Vec<u64> = (0..9).map(|_| b.next_wait().as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn a_full_queue_drops_exactly_the_overflow_and_counts_it() {
        let q = Queue::new(5);
        q.push(vec![1, 2, 3]);
        q.push(vec![4, 5, 6, 7]);
        assert_eq!(q.room(), 0);
        let s = q.stats();
        assert_eq!((s.queued, s.dropped), (5, 2));
        // A batch in flight still counts against the bound.
        assert_eq!(q.take(3), [1, 2, 3]);
        q.push(vec![8]);
        assert_eq!((q.stats().queued, q.stats().dropped), (5, 3));
        q.finish(3, true);
        q.push(vec![9, 10]);
        let s = q.stats();
        assert_eq!((s.written, s.queued, s.dropped), (3, 4, 3));
        assert_eq!(q.take(10), [4, 5, 9, 10]);
    }

    /// Each write: when it was asked for, and the batch.
    type Calls = Arc<StdMutex<Vec<(tokio::time::Instant, Vec<u32>)>>>;

    /// A writer that fails its first `fail` calls, and records every batch it was given.
    fn writer(
        fail: usize,
        calls: Calls,
        reject: bool,
    ) -> impl FnMut(&[u32]) -> std::future::Ready<Result<(), WriteError>> {
        move |batch: &[u32]| {
            let mut c = calls.lock().unwrap();
            c.push((tokio::time::Instant::now(), batch.to_vec()));
            std::future::ready(if c.len() <= fail {
                Err(if reject {
                    WriteError::Rejected("bad line".into())
                } else {
                    WriteError::Transient("refused".into())
                })
            } else {
                Ok(())
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_batch_is_kept_and_retried_with_backoff_in_order() {
        let q = Arc::new(Queue::new(5));
        let calls = Arc::new(StdMutex::new(Vec::new()));
        let start = tokio::time::Instant::now();
        let task = tokio::spawn(deliver(
            "test",
            q.clone(),
            delivery(),
            writer(4, calls.clone(), false),
        ));
        q.push(vec![1, 2, 3, 4]);
        tokio::time::sleep(Duration::from_secs(30)).await;
        let calls = calls.lock().unwrap().clone();
        let at: Vec<u64> = calls.iter().map(|(t, _)| (*t - start).as_secs()).collect();
        // A full batch goes at once; 1, 2, 4 and then 4 s (the ceiling) between retries; the
        // last point waits its flush interval.
        assert_eq!(at, [0, 1, 3, 7, 11, 12]);
        let batches: Vec<Vec<u32>> = calls.into_iter().map(|(_, b)| b).collect();
        assert_eq!(batches[..5], vec![vec![1, 2, 3]; 5]);
        assert_eq!(batches[5], [4]);
        assert_eq!(
            q.stats(),
            SinkStats {
                written: 4,
                dropped: 0,
                write_errors: 4,
                queued: 0
            }
        );
        task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_batch_is_dropped_and_the_queue_moves_on() {
        let q = Arc::new(Queue::new(5));
        let calls = Arc::new(StdMutex::new(Vec::new()));
        let task = tokio::spawn(deliver(
            "test",
            q.clone(),
            delivery(),
            writer(1, calls.clone(), true),
        ));
        q.push(vec![1, 2, 3, 4, 5]);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(calls.lock().unwrap().len(), 2);
        assert_eq!(
            q.stats(),
            SinkStats {
                written: 2,
                dropped: 3,
                write_errors: 1,
                queued: 0
            }
        );
        task.abort();
    }
}
