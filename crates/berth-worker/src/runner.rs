//! The worker shape every background loop has: a named step of work that says whether more is
//! waiting, run by `run_worker` until a shutdown signal. A step is never interrupted; shutdown
//! is seen between steps and cuts short only the wait.

use std::time::Duration;
use tokio::sync::watch;

/// What a step found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerState {
    /// More work is waiting: the next step runs at once.
    Busy,
    /// Nothing to do: the next step runs after this long (or never, at shutdown).
    Idle(Duration),
}

pub trait Worker: Send + 'static {
    /// The worker's name in logs.
    fn name(&self) -> &'static str;
    /// Does one unit of work, if there is one, and says when to look again. Failures are the
    /// worker's to log (or record): the runner goes on either way.
    fn work(&mut self) -> impl Future<Output = WorkerState> + Send;
}

fn stopping(shutdown: &watch::Receiver<bool>) -> bool {
    // A dropped sender can never say "go on": stop rather than spin.
    *shutdown.borrow() || shutdown.has_changed().is_err()
}

/// Runs `worker` step after step until `shutdown` turns true (or its sender is dropped), then
/// returns after the step in hand. Logs the worker's start, stop and changes of state.
pub async fn run_worker<W: Worker>(mut worker: W, mut shutdown: watch::Receiver<bool>) {
    let name = worker.name();
    tracing::debug!(worker = name, "worker started");
    let mut last: Option<WorkerState> = None;
    let mut steps: u64 = 0;
    while !stopping(&shutdown) {
        let state = worker.work().await;
        steps += 1;
        if last.map(|l| std::mem::discriminant(&l)) != Some(std::mem::discriminant(&state)) {
            tracing::debug!(worker = name, ?state, "worker state");
        }
        last = Some(state);
        match state {
            WorkerState::Busy => tokio::task::yield_now().await,
            WorkerState::Idle(wait) => {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }
    tracing::debug!(worker = name, steps, "worker stopped");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Instant;
    use tokio::sync::Notify;

    /// Reports the states it is given, one per step, then idles for an hour; notes when each
    /// step began.
    struct Script {
        states: Vec<WorkerState>,
        steps: Arc<std::sync::Mutex<Vec<Instant>>>,
    }

    impl Worker for Script {
        fn name(&self) -> &'static str {
            "script"
        }
        async fn work(&mut self) -> WorkerState {
            self.steps.lock().expect("lock").push(Instant::now());
            if self.states.is_empty() {
                WorkerState::Idle(Duration::from_secs(3600))
            } else {
                self.states.remove(0)
            }
        }
    }

    type Steps = Arc<std::sync::Mutex<Vec<Instant>>>;

    fn script(states: Vec<WorkerState>) -> (Script, Steps) {
        let steps = Steps::default();
        (
            Script {
                states,
                steps: steps.clone(),
            },
            steps,
        )
    }

    /// Waits (at most 5 s) until `steps` holds `n` steps, and returns them.
    async fn until(steps: &Steps, n: usize) -> Vec<Instant> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let s = steps.lock().expect("lock").clone();
            if s.len() >= n {
                return s;
            }
            assert!(Instant::now() < deadline, "only {} steps", s.len());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn stop_and_join(stop: watch::Sender<bool>, task: tokio::task::JoinHandle<()>) {
        stop.send(true).expect("runner listens");
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("shutdown cuts the idle wait short")
            .expect("runner ends");
    }

    #[tokio::test]
    async fn a_busy_worker_steps_again_at_once() {
        let (w, steps) = script(vec![WorkerState::Busy; 3]);
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run_worker(w, stopped));
        // Three busy steps, then the one that idles for an hour: all well within that hour.
        until(&steps, 4).await;
        stop_and_join(stop, task).await;
        assert_eq!(steps.lock().expect("lock").len(), 4);
    }

    #[tokio::test]
    async fn an_idle_worker_waits_as_long_as_it_said() {
        let wait = Duration::from_millis(300);
        let (w, steps) = script(vec![WorkerState::Idle(wait); 2]);
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run_worker(w, stopped));
        let s = until(&steps, 3).await;
        assert!(s[1] - s[0] >= wait, "{:?}", s[1] - s[0]);
        assert!(s[2] - s[1] >= wait, "{:?}", s[2] - s[1]);
        stop_and_join(stop, task).await;
        assert_eq!(steps.lock().expect("lock").len(), 3, "then the hour's wait");
    }

    /// Its first step waits for the test to open a gate.
    struct Gated {
        entered: Arc<Notify>,
        gate: Arc<Notify>,
        steps: Arc<AtomicU32>,
        finished: Arc<AtomicU32>,
    }

    impl Worker for Gated {
        fn name(&self) -> &'static str {
            "gated"
        }
        async fn work(&mut self) -> WorkerState {
            self.steps.fetch_add(1, Ordering::SeqCst);
            self.entered.notify_one();
            self.gate.notified().await;
            self.finished.fetch_add(1, Ordering::SeqCst);
            WorkerState::Busy
        }
    }

    #[tokio::test]
    async fn shutdown_stops_a_worker_after_the_step_in_hand() {
        let entered = Arc::new(Notify::new());
        let gate = Arc::new(Notify::new());
        let steps = Arc::new(AtomicU32::new(0));
        let finished = Arc::new(AtomicU32::new(0));
        let w = Gated {
            entered: entered.clone(),
            gate: gate.clone(),
            steps: steps.clone(),
            finished: finished.clone(),
        };
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run_worker(w, stopped));
        entered.notified().await;
        stop.send(true).expect("runner listens");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!task.is_finished(), "the step in hand is not cut short");
        gate.notify_one();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("stops after its step")
            .expect("runner ends");
        assert_eq!(
            finished.load(Ordering::SeqCst),
            1,
            "the step ran to its end"
        );
        assert_eq!(
            steps.load(Ordering::SeqCst),
            1,
            "no step after the signal, busy or not"
        );
    }

    #[tokio::test]
    async fn a_dropped_signal_stops_the_worker() {
        let (w, steps) = script(vec![WorkerState::Busy; 1000]);
        let (stop, stopped) = watch::channel(false);
        drop(stop);
        tokio::time::timeout(Duration::from_secs(5), run_worker(w, stopped))
            .await
            .expect("does not spin");
        assert!(steps.lock().expect("lock").is_empty());
    }
}
