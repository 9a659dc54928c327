//! Waiting for something the kernel does, with a deadline.
//!
//! The kernel changes a socket's state or sends a segment on its own
//! schedule. Tests and scenarios never sleep a fixed time hoping it has
//! happened: they ask again and again until it has, or until the deadline.

use std::io;
use std::time::{Duration, Instant};

/// How long to wait for an event that normally takes microseconds on
/// loopback: generous, so a loaded CI machine does not fail spuriously.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);

/// The pause between two looks. Short, because loopback events are fast;
/// this is a polling interval, not a guess at when the event happens.
const POLL_INTERVAL: Duration = Duration::from_millis(2);

/// Calls `look` until it returns `Some`, and returns that value.
///
/// Fails with `ErrorKind::TimedOut` after `deadline`, naming `what` was
/// awaited and the last observation (`describe` turns `look`'s most recent
/// `None` into words).
pub fn until<T>(what: &str, deadline: Duration, look: impl FnMut() -> io::Result<Option<T>>) -> io::Result<T> {
    settle(deadline, look, Option::is_some)?.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("gave up after {deadline:?} waiting for {what}"),
        )
    })
}

/// Calls `observe` until `holds` accepts what it returns, or until
/// `deadline`; returns the last observation either way, for the caller to
/// judge. For a claim whose evidence can arrive a moment late: the wait
/// ends as soon as it holds, and a claim that never holds is judged on
/// what was seen last rather than failing the wait.
pub fn settle<O>(
    deadline: Duration,
    mut observe: impl FnMut() -> io::Result<O>,
    holds: impl Fn(&O) -> bool,
) -> io::Result<O> {
    let start = Instant::now();
    loop {
        let observed = observe()?;
        if holds(&observed) || start.elapsed() >= deadline {
            return Ok(observed);
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// [`until`] for async code: polls `look` without blocking the runtime's
/// thread, so that the tasks that make the event happen run meanwhile.
pub async fn until_async<T>(
    what: &str,
    deadline: Duration,
    mut look: impl FnMut() -> io::Result<Option<T>>,
) -> io::Result<T> {
    let start = Instant::now();
    loop {
        if let Some(found) = look()? {
            return Ok(found);
        }
        if start.elapsed() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("gave up after {deadline:?} waiting for {what}"),
            ));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `settle` returns as soon as the observation holds, and the last
    /// observation when it never does, after the deadline.
    #[test]
    fn settle_returns_the_first_observation_that_holds_or_the_last() {
        let mut n = 0;
        let first = settle(
            DEFAULT_DEADLINE,
            || {
                n += 1;
                Ok(n)
            },
            |n| *n == 3,
        );
        assert_eq!(first.unwrap(), 3);
        let start = Instant::now();
        let mut n = 0;
        let last = settle(
            Duration::from_millis(30),
            || {
                n += 1;
                Ok(n)
            },
            |_| false,
        );
        assert!(last.unwrap() > 1);
        assert!(start.elapsed() >= Duration::from_millis(30));
    }
}
