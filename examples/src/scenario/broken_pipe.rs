//! `broken-pipe`: the server writes to a stream whose peer has closed. The
//! first write succeeds and its data draws an RST; the RST ends the
//! connection, so the next write fails with `BrokenPipe` (EPIPE) and a read
//! returns `Ok(0)`, the FIN having arrived before.

use std::io::{ErrorKind, Read, Write};

use crate::observe::State;
use crate::scenario::Run;
use crate::transcript::Role::{Client, Server};

/// The errno Linux gives for a write to a connection that was reset.
const EPIPE: i32 = 32;

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
    run.wait_packets("the client's RST", |p| p.count(Client, |s| s.flags.rst) == 1)?;
    run.check_packets(
        "on the wire: the 1024 bytes from the server, then an RST from the client",
        |p| {
            let data = p.count(Server, |s| s.len == 1024);
            let rst = p.count(Client, |s| s.flags.rst);
            (data == 1 && rst == 1, p.summary())
        },
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

    run.check_packets(
        "the failed writes sent nothing: one data segment and one RST in all",
        |p| {
            let ok = p.count(Server, |s| s.len > 0) == 1 && p.count(Client, |s| s.flags.rst) == 1;
            (ok, p.summary())
        },
    )?;

    let ignored = sigpipe_is_ignored();
    run.check(
        "the process is alive: Rust's runtime ignores SIGPIPE before main, so EPIPE is an error value, not a signal",
        ignored,
        format!(
            "SIGPIPE disposition: {}",
            if ignored { "ignored" } else { "not ignored" }
        ),
    );
    Ok(())
}

/// True when this process ignores SIGPIPE.
pub fn sigpipe_is_ignored() -> bool {
    // SAFETY: with a null new action, sigaction only reads the current one.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut current) == 0 && current.sa_sigaction == libc::SIG_IGN
    }
}
