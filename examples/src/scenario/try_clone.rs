//! `try-clone`: `try_clone` duplicates the file descriptor. Dropping one
//! handle closes one descriptor and sends nothing; the FIN leaves with the
//! last one. `shutdown` acts on the socket, so it reaches every clone: it
//! wakes a thread blocked in `read` on another handle.

use std::io::Read;
use std::net::Shutdown;
use std::sync::mpsc;
use std::thread;

use crate::observe::State;
use crate::scenario::{Run, Scenario};
use crate::transcript::outcome;
use crate::transcript::Role::{Client, Server};
use crate::transcript::SegmentKind::Fin;

pub const SCENARIO: Scenario = Scenario {
    id: "try-clone",
    title: "clones share one socket: the FIN leaves with the last one, shutdown reaches them all",
    chapter: "try-clone.md",
    alone: false,
    perform,
};

pub fn perform(run: &mut Run) -> anyhow::Result<()> {
    let (client, server) = run.connect()?;

    let clone = client.try_clone()?;
    run.record(Client, "let clone = stream.try_clone()", "Ok(clone)".into());
    let before = run.segment_count()?;
    run.drop(Client, "drop(stream)", client);
    run.check_nothing_sent_since("dropping one of two handles sends nothing", before)?;
    let claim = "the connection is untouched: both ends still ESTABLISHED";
    run.expect_states(claim, Some(State::Established), Some(State::Established))?;

    run.hold("one handle dropped, the clone keeps the connection ESTABLISHED");
    // A reader thread blocked in read on a clone of the server's stream.
    let mut reader = server.try_clone()?;
    run.record(Server, "let mut reader = stream.try_clone()", "Ok(reader)".into());
    let (tid_tx, tid_rx) = mpsc::channel();
    let blocked = thread::spawn(move || {
        // SAFETY: gettid has no preconditions.
        let _ = tid_tx.send(unsafe { libc::gettid() });
        reader.read(&mut [0u8; 64])
    });
    let tid = tid_rx.recv()?;
    crate::wait::until(
        "the reader thread to block in recvfrom",
        crate::wait::DEFAULT_DEADLINE,
        || Ok(in_recvfrom(tid).then_some(())),
    )?;
    run.record(Server, "thread: reader.read(&mut [0; 64])", "(blocked)".into());

    let before = run.segment_count()?;
    run.perform(Server, "stream.shutdown(Shutdown::Read)", || {
        server.shutdown(Shutdown::Read)
    })?;
    let woken = blocked
        .join()
        .map_err(|_| anyhow::anyhow!("the reader thread panicked"))?;
    run.record(Server, "thread: reader.read(&mut [0; 64])", outcome(woken.as_ref()));
    let claim = "shutdown on one handle wakes a thread blocked in read on another: Ok(0)";
    run.check_ok(claim, &woken, 0);
    run.check_nothing_sent_since("shutdown(Read) woke it without sending anything", before)?;

    run.drop(Client, "drop(clone)", clone);
    let claim = "dropping the last handle closes the socket: client FIN_WAIT_2, server CLOSE_WAIT";
    run.expect_states(claim, Some(State::FinWait2), Some(State::CloseWait))?;
    let claim = "the FIN left with the last handle, and only once";
    run.check_segments(claim, &[Client.sent(Fin, 1)])?;
    run.drop(Server, "drop(stream)", server);
    let claim = "then the server closes: client TIME_WAIT, server gone";
    run.expect_states(claim, Some(State::TimeWait), None)?;
    Ok(())
}

/// True while thread `tid` of this process is inside recvfrom(2).
fn in_recvfrom(tid: libc::pid_t) -> bool {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall"))
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse::<libc::c_long>().ok()))
        == Some(libc::SYS_recvfrom)
}

#[cfg(test)]
mod tests {
    use super::in_recvfrom;

    #[test]
    fn a_thread_that_is_not_reading_a_socket_is_not_in_recvfrom() {
        // This thread is running (reading its own syscall file), not in recvfrom.
        // SAFETY: gettid has no preconditions.
        assert!(!in_recvfrom(unsafe { libc::gettid() }));
    }
}
