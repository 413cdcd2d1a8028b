//! Virtual time for the simulation: a single-threaded executor whose clock jumps to the
//! next timer whenever every task waits, so many seconds of model time run in well under
//! one of real time. Hand-written (about 60 lines) rather than tokio's paused clock, whose
//! `test-util` feature would differ between the workspace's builds and `make dev`'s
//! gateway build and make cargo rebuild tokio and everything above it between the two.

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

/// A task of the simulation.
pub type Task = Pin<Box<dyn Future<Output = ()>>>;

/// Pending timers: (when, sequence) in order, each sequence's waker, the last sequence.
type Timers = (BinaryHeap<Reverse<(u64, u64)>>, HashMap<u64, Waker>, u64);

thread_local! {
    /// Microseconds since the run started.
    static NOW: Cell<u64> = const { Cell::new(0) };
    static TIMERS: RefCell<Timers> = RefCell::new((BinaryHeap::new(), HashMap::new(), 0));
}

/// Model time since the run started.
pub fn now() -> Duration {
    Duration::from_micros(NOW.with(Cell::get))
}

/// Completes once model time has moved on by `d`.
pub fn sleep(d: Duration) -> Sleep {
    Sleep { until: NOW.with(Cell::get) + u64::try_from(d.as_micros()).unwrap_or(u64::MAX), registered: false }
}

pub struct Sleep {
    until: u64,
    registered: bool,
}

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if NOW.with(Cell::get) >= self.until {
            return Poll::Ready(());
        }
        if !self.registered {
            let until = self.until;
            TIMERS.with(|t| {
                let (heap, wakers, seq) = &mut *t.borrow_mut();
                *seq += 1;
                heap.push(Reverse((until, *seq)));
                wakers.insert(*seq, cx.waker().clone());
            });
            self.registered = true;
        }
        Poll::Pending
    }
}

struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Runs `tasks` to completion on this thread, from model time zero.
pub fn run(tasks: Vec<Task>) {
    NOW.with(|n| n.set(0));
    TIMERS.with(|t| *t.borrow_mut() = (BinaryHeap::new(), HashMap::new(), 0));
    let mut tasks: Vec<(Task, Arc<Flag>)> =
        tasks.into_iter().map(|t| (t, Arc::new(Flag(AtomicBool::new(true))))).collect();
    while !tasks.is_empty() {
        // Poll every woken task until none is; then jump to the next timer.
        let mut progressed = true;
        while progressed {
            progressed = false;
            tasks.retain_mut(|(task, flag)| {
                if !flag.0.swap(false, Ordering::Relaxed) {
                    return true;
                }
                progressed = true;
                let waker = Waker::from(flag.clone());
                task.as_mut().poll(&mut Context::from_waker(&waker)).is_pending()
            });
        }
        let next = TIMERS.with(|t| {
            let (heap, wakers, _) = &mut *t.borrow_mut();
            let Reverse((at, _)) = *heap.peek()?;
            while let Some(Reverse((when, seq))) = heap.peek().copied() {
                if when != at {
                    break;
                }
                heap.pop();
                if let Some(w) = wakers.remove(&seq) {
                    w.wake();
                }
            }
            Some(at)
        });
        match next {
            Some(at) => NOW.with(|n| n.set(n.get().max(at))),
            // Tasks left but nothing will wake them: stop rather than spin.
            None if !tasks.is_empty() => return,
            None => {}
        }
    }
}
