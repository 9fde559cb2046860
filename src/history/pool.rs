//! A small fixed pool of threads for the claim path's work with history (the check, which reads
//! it, and the learning of an accepted exchange), in place of tokio's blocking pool. Tokio keeps up
//! to 512 threads a worker for blocking work of any length; the claim path's is short store work,
//! and a few threads that stay busy take it with fewer wake-ups and hand-offs than many that park
//! between tasks (BENCHMARKS.md, "The group commit that never grouped"). Other blocking work (rule
//! compiles, office reads, settlement turns) stays on tokio's pool, so it never queues a check.

use crossbeam_channel::Sender;
use std::future::Future;

type Job = Box<dyn FnOnce() + Send>;

/// The job panicked (the pool's thread lives on) or the pool is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lost;

pub struct Pool {
    /// `None` when no thread could be started: jobs then go to tokio's blocking pool.
    jobs: Option<Sender<Job>>,
}

impl Pool {
    /// Starts `threads` threads named `name-<i>`; they end when the pool is dropped.
    pub fn new(threads: usize, name: &str) -> Pool {
        let (tx, rx) = crossbeam_channel::unbounded::<Job>();
        let mut started = 0;
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new().name(format!("{name}-{i}")).spawn(move || {
                while let Ok(job) = rx.recv() {
                    job();
                }
            });
            match spawned {
                Ok(_) => started += 1,
                Err(e) => tracing::warn!(error = %e, "{name}: thread not started"),
            }
        }
        Pool { jobs: (started > 0).then_some(tx) }
    }

    /// Runs `f` on the pool; a panic inside it is caught there and answered [`Lost`].
    pub fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> impl Future<Output = Result<T, Lost>> + Send + 'static {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
        });
        let fallback = match &self.jobs {
            Some(jobs) => jobs.send(job).err().map(|e| e.0),
            None => Some(job),
        };
        let fallback = fallback.map(tokio::task::spawn_blocking);
        async move {
            if let Some(h) = fallback {
                let _ = h.await;
            }
            match rx.await {
                Ok(Ok(v)) => Ok(v),
                _ => Err(Lost),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_jobs_and_survives_a_panic_in_one() {
        let pool = Pool::new(2, "test-pool");
        assert_eq!(pool.run(|| 6 * 7).await, Ok(42));
        assert_eq!(pool.run(|| -> u32 { panic!("a job that panics") }).await, Err(Lost));
        let all: Vec<_> = (0..16).map(|i| pool.run(move || i * 2)).collect();
        let mut sum = 0;
        for j in all {
            sum += j.await.expect("job");
        }
        assert_eq!(sum, (0..16).map(|i| i * 2).sum::<i32>(), "both threads outlived the panic");
    }
}
