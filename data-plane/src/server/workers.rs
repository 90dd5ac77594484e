//! Thread-per-core serving: a set of single-threaded tokio runtimes, one OS thread each.
//!
//! The accept loop hands each new connection to the next worker, round robin; the
//! connection, its requests and the provider connections they open (each worker has its own
//! client pool) then stay on that thread. Compared with one work-stealing runtime this saves
//! the cross-thread wake-ups between a client connection's task and its provider
//! connection's task on every request (docs/benchmarks.md has the before/after figures).
//!
//! Each worker also keeps a timer due within [`TICK`] at all times. Tokio's timer wakes its
//! driver (an eventfd write, then one more `epoll_wait`) whenever a new timer is due before
//! everything else pending, and every HTTP/1 request arms one (hyper's header read timeout,
//! then the provider's first-byte timeout): without the tick, that is one extra syscall pair
//! per request; with it, the request timers (seconds away) are never the earliest.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// Period of each worker's keep-awake timer; shorter than any request timeout.
const TICK: Duration = Duration::from_millis(500);

/// Running worker threads; [`WorkerThreads::stop`] ends them.
#[derive(Debug)]
pub struct WorkerThreads {
    handles: Vec<Handle>,
    threads: Vec<(oneshot::Sender<()>, JoinHandle<()>)>,
}

impl WorkerThreads {
    /// Starts `n` (at least 1) worker threads named `tollgate-worker-<i>`.
    pub fn start(n: usize) -> std::io::Result<Self> {
        let mut handles = Vec::with_capacity(n);
        let mut threads = Vec::with_capacity(n);
        for i in 0..n.max(1) {
            // No signal or process driver: workers serve sockets and timers only, and those
            // drivers would be checked at every wake-up.
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .enable_time()
                .build()?;
            let (stop_tx, stop_rx) = oneshot::channel::<()>();
            let (ready_tx, ready_rx) = mpsc::channel();
            let thread = std::thread::Builder::new()
                .name(format!("tollgate-worker-{i}"))
                .spawn(move || {
                    let _ = ready_tx.send(rt.handle().clone());
                    // Runs the spawned connections until told to stop; dropping the runtime
                    // then cancels what is left (idle provider connections).
                    rt.block_on(async move {
                        let mut tick = tokio::time::interval(TICK);
                        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                        tokio::pin!(stop_rx);
                        loop {
                            tokio::select! {
                                _ = &mut stop_rx => break,
                                _ = tick.tick() => {}
                            }
                        }
                    });
                })?;
            let handle = ready_rx
                .recv()
                .map_err(|_| std::io::Error::other("a worker thread died at start"))?;
            handles.push(handle);
            threads.push((stop_tx, thread));
        }
        Ok(Self { handles, threads })
    }

    /// The runtimes, to spawn connections on.
    pub fn handles(&self) -> &[Handle] {
        &self.handles
    }

    /// Stops every worker (what still runs on them is dropped) and waits for the threads.
    pub async fn stop(self) {
        let joins: Vec<_> = self
            .threads
            .into_iter()
            .map(|(stop, thread)| {
                let _ = stop.send(());
                thread
            })
            .collect();
        let _ = tokio::task::spawn_blocking(move || {
            for t in joins {
                let _ = t.join();
            }
        })
        .await;
    }
}

/// Worker count for `configured` (0: one per available CPU).
pub fn worker_count(configured: usize) -> usize {
    if configured > 0 {
        return configured;
    }
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn workers_run_tasks_on_their_own_threads_and_stop() {
        let w = WorkerThreads::start(2).expect("start");
        let mut names = Vec::new();
        for h in w.handles() {
            let name = h
                .spawn(async { std::thread::current().name().map(str::to_owned) })
                .await
                .expect("join");
            names.push(name.unwrap_or_default());
        }
        assert_eq!(names, ["tollgate-worker-0", "tollgate-worker-1"]);
        w.stop().await;
        assert_eq!(worker_count(3), 3);
        assert!(worker_count(0) >= 1);
    }
}
