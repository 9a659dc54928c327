//! `broken-pipe`: the server writes to a stream whose peer has closed. The
//! first write succeeds and its data draws an RST; the RST ends the
//! connection, so the next write fails with `BrokenPipe` (EPIPE) and a read
//! returns `Ok(0)`, the FIN having arrived before.

use std::io::{ErrorKind, Read, Write};

use crate::observe::State;
use crate::scenario::{Run, Scenario};
use crate::transcript::Role::{Client, Server};
use crate::transcript::SegmentCount;
use crate::transcript::SegmentKind::{Data, DataOf, Rst};

/// The errno Linux gives for a write to a connection that was reset.
const EPIPE: i32 = 32;

pub const SCENARIO: Scenario = Scenario {
    id: "broken-pipe",
    title: "writing after the peer closed: one write succeeds, draws an RST, the next is BrokenPipe",
    chapter: "broken-pipe.md",
    alone: false,
    perform,
};

pub fn perform(run: &mut Run) -> anyhow::Result<()> {
    let (client, mut server) = run.connect()?;

    drop(client);
    run.record(Client, "drop(stream)", String::new());
    // The article slept 5 s here; waiting for the state is exact.
    run.expect_states(
        "after the client closes, the server is CLOSE_WAIT and the client FIN_WAIT_2",
        Some(State::FinWait2),
        Some(State::CloseWait),
    )?;
    run.hold("the client has closed; the server has not written yet");

    let first = server.write(&[0u8; 1024]);
    run.call(Server, "stream.write(&[0; 1024])", &first);
    run.check_ok(
        "the first write succeeds: the kernel accepts all 1024 bytes",
        &first,
        1024,
    );

    run.expect_states(
        "the client's socket is closed, so it answers the data with RST, and the RST ends both sockets",
        None,
        None,
    )?;
    run.check_segments(
        "on the wire: the 1024 bytes from the server, then an RST from the client",
        &[
            SegmentCount::exactly(Server, DataOf(1024), 1),
            SegmentCount::exactly(Client, Rst, 1),
        ],
    )?;

    let second = server.write(&[0u8; 1024]);
    run.call(Server, "stream.write(&[0; 1024])", &second);
    run.check_err(
        "the second write fails with ErrorKind::BrokenPipe (os error 32, EPIPE)",
        &second,
        ErrorKind::BrokenPipe,
        EPIPE,
    );
    let third = server.write(&[0u8; 1024]);
    run.call(Server, "stream.write(&[0; 1024])", &third);
    run.check_err(
        "every later write fails the same way",
        &third,
        ErrorKind::BrokenPipe,
        EPIPE,
    );

    let mut buf = [0u8; 1024];
    let read = server.read(&mut buf);
    run.call(Server, "stream.read(&mut [0; 1024])", &read);
    run.check_ok("a read returns Ok(0): the FIN arrived before the RST", &read, 0);

    run.check_segments(
        "the failed writes sent nothing: one data segment and one RST in all",
        &[
            SegmentCount::exactly(Server, Data, 1),
            SegmentCount::exactly(Client, Rst, 1),
        ],
    )?;

    run.check_eq(
        "the process is alive: Rust's runtime ignores SIGPIPE before main, so EPIPE is an error value, not a signal; SIGPIPE's disposition",
        sigpipe_disposition(),
        "ignored",
    );
    Ok(())
}

/// This process's disposition of SIGPIPE: "ignored", "default" or "handled".
pub fn sigpipe_disposition() -> &'static str {
    // SAFETY: with a null new action, sigaction only reads the current one.
    let current = unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut current);
        current.sa_sigaction
    };
    match current {
        libc::SIG_IGN => "ignored",
        libc::SIG_DFL => "default",
        _ => "handled",
    }
}

#[cfg(test)]
mod tests {
    use super::sigpipe_disposition;

    /// Each disposition is told apart: in a child, whose signals are its own.
    #[test]
    fn tells_the_default_disposition_from_an_ignored_one() {
        assert_eq!(sigpipe_disposition(), "ignored");
        // SAFETY: the child only calls signal, sigaction and _exit, which
        // are async-signal-safe, before it exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            unsafe {
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
                let code = if sigpipe_disposition() == "default" { 0 } else { 1 };
                libc::_exit(code);
            }
        }
        let mut status = 0;
        // SAFETY: waits for the child forked above.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "status {status}"
        );
    }
}
