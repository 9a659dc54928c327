//! `broken-pipe`: the server writes to a stream whose peer has closed. The
//! first write succeeds and its data draws an RST; the RST ends the
//! connection, so the next write fails with `BrokenPipe` (EPIPE) and a read
//! returns `Ok(0)`, the FIN having arrived before. The counters say who
//! was reset, and, with a longer `tcp_fin_timeout`, that data reached a
//! closed socket.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};

use crate::inspect::{counter_moved, thread_counters};
use crate::netns;
use crate::observe::{End, State};
use crate::scenario::{Run, Scenario};
use crate::transcript::Role::{Client, Server};
use crate::transcript::SegmentKind::{Data, DataOf, Rst};
use crate::transcript::{outcome, Expected};

pub const SCENARIO: Scenario = Scenario {
    id: "broken-pipe",
    title: "writing after the peer closed: one write succeeds, draws an RST, the next is BrokenPipe",
    chapter: "broken-pipe.md",
    alone: false,
    perform,
};

pub fn perform(run: &mut Run) -> anyhow::Result<()> {
    let (client, mut server) = run.connect()?;

    run.drop(Client, "drop(stream)", client);
    // The article slept 5 s here; waiting for the state is exact.
    let claim = "after the client closes, the server is CLOSE_WAIT and the client FIN_WAIT_2";
    run.expect_states(claim, Some(State::FinWait2), Some(State::CloseWait))?;
    run.hold("the client has closed; the server has not written yet");
    let counters_before = thread_counters()?;

    let first = server.write(&[0u8; 1024]);
    run.call(Server, "stream.write(&[0; 1024])", &first);
    let claim = "the first write succeeds: the kernel accepts all 1024 bytes";
    run.check_ok(claim, &first, 1024);

    let claim = "the client's socket is closed, so it answers the data with RST, and the RST ends both sockets";
    run.expect_states(claim, None, None)?;
    let claim = "on the wire: the 1024 bytes from the server, then an RST from the client";
    run.check_segments(claim, &[Server.sent(DataOf(1024), 1), Client.sent(Rst, 1)])?;
    counted(run, &counters_before)?;

    let second = server.write(&[0u8; 1024]);
    run.call(Server, "stream.write(&[0; 1024])", &second);
    let claim = "the second write fails with ErrorKind::BrokenPipe (os error 32, EPIPE)";
    run.check_err(claim, &second, ErrorKind::BrokenPipe, libc::EPIPE);
    let third = server.write(&[0u8; 1024]);
    run.call(Server, "stream.write(&[0; 1024])", &third);
    let claim = "every later write fails the same way";
    run.check_err(claim, &third, ErrorKind::BrokenPipe, libc::EPIPE);

    let mut buf = [0u8; 1024];
    let read = run.perform(Server, "stream.read(&mut [0; 1024])", || server.read(&mut buf));
    run.check_ok("a read returns Ok(0): the FIN arrived before the RST", &read, 0);

    let claim = "the failed writes sent nothing: one data segment and one RST in all";
    run.check_segments(claim, &[Server.sent(Data, 1), Client.sent(Rst, 1)])?;

    full_socket_counts_the_data(run)?;

    let claim = "the process is alive: Rust's runtime ignores SIGPIPE before main, so EPIPE is an error value, not a signal; SIGPIPE's disposition";
    run.check_eq(claim, sigpipe_disposition(), "ignored");
    Ok(())
}

/// The counters the reset moved. tcp_set_state() counts a move from
/// ESTABLISHED or CLOSE_WAIT to CLOSE in TcpEstabResets: the server's. The
/// client's orphan had become a FIN_WAIT_2 timewait socket (tcp_fin_timeout
/// is not above 60 s), which answers data with an RST
/// (tcp_timewait_state_process) and counts neither that nor
/// TCPAbortOnData, which only a full socket in FIN_WAIT_1 or FIN_WAIT_2
/// counts (tcp_rcv_state_process).
fn counted(run: &mut Run, before: &BTreeMap<String, u64>) -> anyhow::Result<()> {
    let claim = "the kernel counts the server's socket, reset in CLOSE_WAIT, in TcpEstabResets, and not the client's orphan in FIN_WAIT_2, whose RST answered the data without TcpExtTCPAbortOnData (increases of TcpEstabResets, TcpExtTCPAbortOnData)";
    let expected = crate::named!("TcpEstabResets": 1, "TcpExtTCPAbortOnData": 0);
    let value = format!("{expected:?}");
    if run.not_checked_in_a_shared_namespace(claim, Expected::Equal { value }) {
        return Ok(());
    }
    let after = thread_counters()?;
    let observed = crate::named!(
        "TcpEstabResets": counter_moved(before, &after, "TcpEstabResets")?,
        "TcpExtTCPAbortOnData": counter_moved(before, &after, "TcpExtTCPAbortOnData")?,
    );
    run.check_eq(claim, observed, expected);
    Ok(())
}

/// The other branch: with `tcp_fin_timeout` above TCP_TIMEWAIT_LEN the
/// orphan stays a full socket in FIN_WAIT_2 (tcp_rcv_state_process,
/// __tcp_close keep it for the difference), and data that reaches it after
/// its close is counted as TCPAbortOnData before the RST.
fn full_socket_counts_the_data(run: &mut Run) -> anyhow::Result<()> {
    let claim = "with net.ipv4.tcp_fin_timeout above 60 s (here 61), data that reaches the client's orphan in FIN_WAIT_2 is counted in TcpExtTCPAbortOnData as it draws the RST (another connection; increases of TcpEstabResets, TcpExtTCPAbortOnData)";
    let expected = crate::named!("TcpEstabResets": 1, "TcpExtTCPAbortOnData": 1);
    let value = format!("{expected:?}");
    if run.not_checked_in_a_shared_namespace(claim, Expected::Equal { value }) {
        return Ok(());
    }
    netns::sysctl("net/ipv4/tcp_fin_timeout", "61")?;
    run.record(
        Client,
        "sysctl net.ipv4.tcp_fin_timeout=61",
        "(this namespace only)".into(),
    );
    let (client, mut server) = crate::pair()?;
    let (client_end, server_end) = (End::of(&client)?, End::of(&server)?);
    drop(client);
    client_end.wait_for(State::FinWait2)?;
    server_end.wait_for(State::CloseWait)?;
    let before = thread_counters()?;
    let write = server.write(&[0u8; 1024]);
    run.record(
        Server,
        "another connection: the client closes, the server writes 1024 bytes",
        outcome(write.as_ref()),
    );
    server_end.wait_gone()?;
    let after = thread_counters()?;
    let observed = crate::named!(
        "TcpEstabResets": counter_moved(&before, &after, "TcpEstabResets")?,
        "TcpExtTCPAbortOnData": counter_moved(&before, &after, "TcpExtTCPAbortOnData")?,
    );
    netns::sysctl("net/ipv4/tcp_fin_timeout", "60")?;
    run.check_eq(claim, observed, expected);
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
