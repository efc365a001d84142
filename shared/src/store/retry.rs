//! The one loop of read → decide → commit. DynamoDB offers optimistic concurrency only: a
//! write conditioned on what was read fails when someone changed it in between (read again and
//! decide again), and a transaction touching an item another transaction holds is cancelled
//! with `TransactionConflict` (nothing written; send it again after a pause). Both are bounded
//! here: at most [`MAX_ATTEMPTS`] attempts, conflicts backed off with jitter, then the caller's
//! "still contended" error (a 503 at the edge).

use std::future::Future;
use std::time::Duration;

/// Attempts per request before giving up (each is one read and one write, or one write).
/// Sized by the DynamoDB model (`hatchctl dynamodb-model`): n requests that all touch one item
/// (session mints for one buddy, racing unlocks) commit one at a time, so the last one waits
/// about n transaction times. Five attempts (about 0.3 s of pauses) left some of 20 concurrent
/// mints for one buddy with a 503; eight (about 1.3–2.5 s of pauses, far inside the 10 s
/// function timeout) let them all land.
pub const MAX_ATTEMPTS: u32 = 8;

/// The pause doubles up to this many times (10–20 ms × 2^6 = 0.64–1.28 s at most).
const MAX_DOUBLINGS: u32 = 6;

/// What one attempt came to.
#[derive(Debug)]
pub enum Attempt<T> {
    Done(T),
    /// What was read changed before the write: read and decide again, at once.
    Reread,
    /// DynamoDB could not take the write now (a conflicting transaction, keys left
    /// unprocessed): pause, then try again.
    Backoff,
}

/// The attempts ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{op} still contended after {attempts} attempts")]
pub struct Exhausted {
    pub op: &'static str,
    pub attempts: u32,
}

/// Runs `attempt` (given its number, from 0) until it is done, an error, or out of attempts.
pub async fn attempts<T, E, F, Fut>(op: &'static str, mut attempt: F) -> Result<T, E>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<Attempt<T>, E>>,
    E: From<Exhausted>,
{
    for n in 0..MAX_ATTEMPTS {
        match attempt(n).await? {
            Attempt::Done(value) => return Ok(value),
            Attempt::Reread => {}
            Attempt::Backoff if n + 1 < MAX_ATTEMPTS => tokio::time::sleep(backoff(n)).await,
            Attempt::Backoff => {}
        }
    }
    Err(Exhausted { op, attempts: MAX_ATTEMPTS }.into())
}

/// Jittered exponential backoff: 10–20 ms, doubling per attempt (capped at 64×). The jitter
/// keeps two requests that conflicted once from meeting again at the same instant.
pub fn backoff(attempt: u32) -> Duration {
    let mut byte = [0u8; 1];
    let jitter = aws_lc_rs::rand::fill(&mut byte).map_or(0, |_| u64::from(byte[0]) % 10);
    Duration::from_millis((10 + jitter) << attempt.min(MAX_DOUBLINGS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum E {
        Exhausted,
        Failed,
    }
    impl From<Exhausted> for E {
        fn from(_: Exhausted) -> E {
            E::Exhausted
        }
    }

    #[tokio::test]
    async fn retries_until_done_and_stops_at_the_bound() {
        let mut seen = Vec::new();
        let done: Result<u32, E> = attempts("t", |n| {
            seen.push(n);
            async move { Ok(if n < 2 { Attempt::Backoff } else { Attempt::Done(n) }) }
        })
        .await;
        assert_eq!((done, seen), (Ok(2), vec![0, 1, 2]));
        let mut calls = 0;
        let out: Result<(), E> = attempts("t", |_| {
            calls += 1;
            async { Ok(Attempt::Reread) }
        })
        .await;
        assert_eq!((out, calls), (Err(E::Exhausted), MAX_ATTEMPTS));
        let failed: Result<(), E> = attempts("t", |_| async { Err(E::Failed) }).await;
        assert_eq!(failed, Err(E::Failed));
    }

    #[test]
    fn backoff_is_jittered_and_bounded() {
        for attempt in 0..10 {
            let d = backoff(attempt).as_millis() as u64;
            let base = 10u64 << attempt.min(MAX_DOUBLINGS);
            assert!((base..base + (10 << attempt.min(MAX_DOUBLINGS))).contains(&d), "{attempt}: {d}");
        }
    }
}
