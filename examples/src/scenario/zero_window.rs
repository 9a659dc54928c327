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
use crate::transcript::SegmentCount;
use crate::transcript::SegmentKind::{Bare, Rst, ZeroWindow};

const USER_TIMEOUT: Duration = Duration::from_secs(1);

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
    run.check_segments(
        "at first the window is open: no zero-window segment, and nothing from the server but its SYN ACK",
        &[
            SegmentCount::exactly(Client, ZeroWindow, 0),
            SegmentCount::exactly(Server, Bare, 0),
        ],
    )?;
    let queued = fill(&mut server)?;
    run.record(
        Server,
        "stream.write(..) until WouldBlock (non-blocking); the client never reads",
        "Err(WouldBlock)".into(),
    );
    run.measured("bytes the server's kernel accepted", queued);

    let probing = server_end.wait_for_timer(TimerKind::ZeroWindowProbe);
    run.check_eq(
        "the server's kernel probes the closed window: its timer is the zero-window probe",
        probing.ok().and(server_end.timer()?).map(|(kind, _)| kind),
        Some(TimerKind::ZeroWindowProbe),
    );
    run.check_segments(
        "on the wire: the client advertises a zero window, the server probes it with bare ACKs, nobody resets",
        &[
            SegmentCount::at_least(Client, ZeroWindow, 1),
            SegmentCount::at_least(Server, Bare, 2),
            SegmentCount::exactly(Client, Rst, 0),
            SegmentCount::exactly(Server, Rst, 0),
        ],
    )?;
    run.expect_states(
        "a peer that answers the probes keeps the connection: both still ESTABLISHED",
        Some(State::Established),
        Some(State::Established),
    )?;
    run.hold("the client advertises a zero window; the server probes it (ss -o: persist)");

    // The same on a second connection whose server has a user timeout.
    let (_reader, mut bounded) = crate::pair()?;
    SockRef::from(&bounded).set_tcp_user_timeout(Some(USER_TIMEOUT))?;
    run.record(
        Server,
        "second connection: set_tcp_user_timeout(Some(1 s)), then the same writes",
        "Ok(())".into(),
    );
    fill(&mut bounded)?;
    let start = Instant::now();
    End::of(&bounded)?.wait_gone()?;
    run.check_seconds(
        "with TCP_USER_TIMEOUT (1 s), the kernel gives up on the zero window: the socket is gone after",
        start.elapsed(),
        USER_TIMEOUT.mul_f64(0.9).as_secs_f64(),
        (USER_TIMEOUT * 5).as_secs_f64(),
    );
    let write = run.perform(Server, "second connection: stream.write(b\"more\")", || {
        bounded.write(b"more")
    });
    run.check_err(
        "and its next write fails with ErrorKind::TimedOut (os error 110)",
        &write,
        ErrorKind::TimedOut,
        libc::ETIMEDOUT,
    );
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
