//! Sub-millisecond sleeps for injected latency.
//!
//! Tokio's timer wheel has a 1 ms resolution and rounds up, so an injected 150 ms would be
//! served as 150–151 ms; that error would swamp what the probes must measure (within 1 ms).
//! Spinning would be exact but burns a core at high probe rates. Instead one thread keeps the
//! pending deadlines in a heap and waits on a condition variable, whose timeout the kernel
//! honours to tens of microseconds, then wakes the waiting requests.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// Wake-ups later than this are handed to tokio's own timer first, so the precise thread only
/// ever holds the last stretch of each sleep.
const COARSE_MARGIN: Duration = Duration::from_millis(3);
/// The last stretch before a deadline is waited for by yielding, not sleeping.
const SPIN: Duration = Duration::from_micros(150);

#[derive(Clone)]
pub struct PreciseTimer {
    shared: Arc<Shared>,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
}

#[derive(Default)]
struct Queue {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    waiters: std::collections::HashMap<u64, oneshot::Sender<()>>,
    next_id: u64,
    closed: bool,
}

impl Default for PreciseTimer {
    fn default() -> Self {
        Self::new()
    }
}

impl PreciseTimer {
    pub fn new() -> Self {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
        });
        let worker = Arc::downgrade(&shared);
        // The thread ends once every handle is dropped: it holds only a weak reference.
        let spawned = std::thread::Builder::new()
            .name("precise-timer".into())
            .spawn(move || run(worker));
        if let Err(err) = spawned {
            tracing::warn!(error = %err, "precise timer thread not started; latency faults fall back to tokio's timer");
            shared
                .queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .closed = true;
        }
        PreciseTimer { shared }
    }

    /// Sleeps until `deadline` with sub-millisecond accuracy.
    pub async fn sleep_until(&self, deadline: Instant) {
        if let Some(coarse) = deadline.checked_sub(COARSE_MARGIN)
            && coarse > Instant::now()
        {
            tokio::time::sleep_until(coarse.into()).await;
        }
        let rx = {
            let mut q = self
                .shared
                .queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if q.closed {
                None
            } else {
                let (tx, rx) = oneshot::channel();
                let id = q.next_id;
                q.next_id += 1;
                q.heap.push(Reverse((deadline, id)));
                q.waiters.insert(id, tx);
                Some(rx)
            }
        };
        let Some(rx) = rx else {
            tokio::time::sleep_until(deadline.into()).await;
            return;
        };
        self.shared.wake.notify_one();
        if rx.await.is_err() {
            tokio::time::sleep_until(deadline.into()).await;
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.wake.notify_all();
    }
}

fn run(shared: std::sync::Weak<Shared>) {
    loop {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let mut q = shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        while let Some(Reverse((deadline, id))) = q.heap.peek().copied() {
            if deadline > now {
                break;
            }
            q.heap.pop();
            if let Some(tx) = q.waiters.remove(&id) {
                let _ = tx.send(());
            }
        }
        // Wake at the next deadline, or at least once a second to notice the last handle going.
        let wait = q
            .heap
            .peek()
            .map(|Reverse((d, _))| d.saturating_duration_since(now))
            .unwrap_or(Duration::from_secs(1))
            .min(Duration::from_secs(1));
        if !q.heap.is_empty() && wait <= SPIN {
            // The kernel's timer slack (50 µs) and a sleeping thread's wake-up would add their
            // own error; the last stretch is short enough to watch the clock instead.
            drop(q);
            std::hint::spin_loop();
            std::thread::yield_now();
            continue;
        }
        let _unused = shared
            .wake
            .wait_timeout(q, wait.saturating_sub(SPIN))
            .unwrap_or_else(PoisonError::into_inner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wakes_on_time_and_never_early() {
        let timer = PreciseTimer::new();
        let mut late = Vec::new();
        for ms in [1u64, 7, 20, 43, 5, 11, 3, 17, 29] {
            let deadline = Instant::now() + Duration::from_millis(ms);
            timer.sleep_until(deadline).await;
            let now = Instant::now();
            assert!(now >= deadline, "woke early");
            late.push(now - deadline);
        }
        late.sort();
        // A loose bound: on a busy machine any thread wakes late. Precision where it matters,
        // an injected delay measured within 2 ms, is tested end to end on the services.
        assert!(
            late[late.len() / 2] < Duration::from_millis(10),
            "woke {late:?} late"
        );
    }

    #[tokio::test]
    async fn many_sleepers_wake_in_deadline_order() {
        let timer = PreciseTimer::new();
        let start = Instant::now();
        let mut handles = Vec::new();
        for i in (0..20u64).rev() {
            let t = timer.clone();
            handles.push(tokio::spawn(async move {
                t.sleep_until(start + Duration::from_millis(5 + i)).await;
                Instant::now().duration_since(start)
            }));
        }
        for (n, h) in handles.into_iter().enumerate() {
            let i = 19 - n as u64;
            let slept = h.await.unwrap();
            assert!(slept >= Duration::from_millis(5 + i));
        }
    }
}
