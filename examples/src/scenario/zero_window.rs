//! `zero-window`: a peer that stops reading. The sender fills the peer's
//! receive buffer and its own send buffer; the peer advertises a zero
//! window, and the sender's kernel probes it. A peer that answers the
//! probes keeps the connection ESTABLISHED for ever; only
//! `TCP_USER_TIMEOUT` bounds the wait.

use std::io::{ErrorKind, Write};
use std::time::{Duration, Instant};

use socket2::SockRef;

use crate::observe::{End, State, TimerKind};
use crate::scenario::{Run, Scenario};
use crate::sockopt::fill;
use crate::transcript::Role::{Client, Server};
use crate::transcript::SegmentKind::{Bare, Rst, ZeroWindow};

pub const SCENARIO: Scenario = Scenario {
    id: "zero-window",
    title: "a peer that stops reading: a zero window, probed for ever unless TCP_USER_TIMEOUT ends it",
    chapter: "refuse-to-die.md#zero-window",
    alone: false,
    perform,
};

pub fn perform(run: &mut Run) -> anyhow::Result<()> {
    let (client, mut server) = run.connect()?;
    let (_, server_end) = run.ends()?;
    run.bulk();
    let claim = "at first the window is open: no zero-window segment, and nothing from the server but its SYN ACK";
    run.check_segments(claim, &[Client.sent(ZeroWindow, 0), Server.sent(Bare, 0)])?;
    let queued = fill(&mut server)?;
    run.record(
        Server,
        "stream.write(..) until WouldBlock (non-blocking); the client never reads",
        "Err(WouldBlock)".into(),
    );
    run.measured("bytes the server's kernel accepted", queued);

    let probing = server_end.wait_for_timer(TimerKind::ZeroWindowProbe);
    let claim = "the server's kernel probes the closed window: its timer is the zero-window probe";
    run.check_eq(
        claim,
        probing.ok().and(server_end.timer()?).map(|(kind, _)| kind),
        Some(TimerKind::ZeroWindowProbe),
    );
    let claim = "on the wire: the client advertises a zero window, the server probes it with bare ACKs, nobody resets";
    run.check_segments(
        claim,
        &[
            Client.sent_at_least(ZeroWindow, 1),
            Server.sent_at_least(Bare, 2),
            Client.sent(Rst, 0),
            Server.sent(Rst, 0),
        ],
    )?;
    let claim = "a peer that answers the probes keeps the connection: both still ESTABLISHED";
    run.expect_states(claim, Some(State::Established), Some(State::Established))?;
    run.hold("the client advertises a zero window; the server probes it (ss -o: persist)");

    // The same on a second connection whose server has a user timeout.
    let (_reader, mut bounded) = crate::pair()?;
    SockRef::from(&bounded).set_tcp_user_timeout(Some(USER_TIMEOUT))?;
    run.record_ok(
        Server,
        "second connection: set_tcp_user_timeout(Some(1 s)), then the same writes",
    );
    fill(&mut bounded)?;
    let start = Instant::now();
    End::of(&bounded)?.wait_gone()?;
    let claim = "with TCP_USER_TIMEOUT (1 s), the kernel gives up on the zero window: the socket is gone after";
    run.check_timer(claim, start.elapsed(), USER_TIMEOUT, 5);
    let write = run.perform(Server, "second connection: stream.write(b\"more\")", || {
        bounded.write(b"more")
    });
    let claim = "and its next write fails with ErrorKind::TimedOut (os error 110)";
    run.check_err(claim, &write, ErrorKind::TimedOut, libc::ETIMEDOUT);
    // End the first connection without a probing orphan left behind.
    SockRef::from(&server).set_linger(Some(Duration::ZERO))?;
    drop((client, server));
    run.record(
        Client,
        "the lab cleans up: drop(stream), its data unread (an RST)",
        String::new(),
    );
    Ok(())
}

const USER_TIMEOUT: Duration = Duration::from_secs(1);
