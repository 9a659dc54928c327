//! `time-wait`: the side that closes first keeps its socket in TIME_WAIT
//! for 60 seconds (TCP_TIMEWAIT_LEN, a constant of the kernel, not
//! tcp_fin_timeout); the side that closes second keeps nothing. (When both
//! close at once, both keep one: see the book's simultaneous-close test.)
//! An RST that reaches it ends it, unless `net.ipv4.tcp_rfc1337` is 1.
//! Past `net.ipv4.tcp_max_tw_buckets` the kernel keeps none.

use std::io::Read;
use std::net::Shutdown;
use std::time::Duration;

use socket2::{Domain, Socket, Type};

use crate::inspect::{counter_moved, thread_counters};
use crate::netns;
use crate::observe::{tcp_ext_counter, End, State, TimerKind};
use crate::scenario::{Run, Scenario};
use crate::sockopt::set_tcp_linger2;
use crate::transcript::Role::{Client, Server};
use crate::transcript::{outcome, Expected};

pub const SCENARIO: Scenario = Scenario {
    id: "time-wait",
    title: "the side that closes first keeps TIME_WAIT for 60 s, the other keeps nothing",
    chapter: "time-wait.md",
    alone: false,
    perform,
};

pub fn perform(run: &mut Run) -> anyhow::Result<()> {
    let (client, mut server) = run.connect()?;
    let (client_end, _) = run.ends()?;

    // A FIN_WAIT_2 timeout of 20 s, to show that it is not TIME_WAIT's.
    // (Long enough that the orphaned FIN_WAIT_2 cannot expire before the
    // server closes on a loaded machine: it would answer the FIN with RST.)
    run.perform(Client, "set_tcp_linger2(&stream, 20 s)", || {
        set_tcp_linger2(&client, LINGER2)
    })?;
    run.drop(Client, "drop(stream)", client);
    let claim = "the client's FIN is acknowledged: client FIN_WAIT_2, server CLOSE_WAIT";
    run.expect_states(claim, Some(State::FinWait2), Some(State::CloseWait))?;
    let eof = server.read(&mut [0u8; 16]);
    run.call(Server, "stream.read(&mut [0; 16])", &eof);
    run.drop(Server, "drop(stream)", server);
    let claim = "the client, which closed first, keeps TIME_WAIT; the server, which closed second, keeps nothing";
    run.expect_states(claim, Some(State::TimeWait), None)?;

    let timer = client_end.timer()?;
    run.hold("the client's socket in TIME_WAIT (ss -tano shows its timer)");
    let left = match timer {
        Some((TimerKind::TimeWait, left)) => left,
        _ => Duration::ZERO,
    };
    let claim = "its timer starts at 60 s (TCP_TIMEWAIT_LEN), although TCP_LINGER2 was 20 s: time left";
    run.check_seconds(claim, left, (LINGER2 * 2).as_secs_f64(), 60.0);
    let claim = "the client sent the first FIN, the server the second, and the client the last ACK (FINs by sender, last segment)";
    run.check_packets_eq(claim, |p| {
        let sender = |s: &crate::wire::Segment| if s.src == p.client { Client } else { Server };
        let fins: Vec<_> = p.segments.iter().filter(|s| s.flags.fin).map(sender).collect();
        let last = p.segments.last().map(|s| (sender(s), s.flags.to_string()));
        (
            crate::named!("FINs by sender": fins, "last segment": last),
            crate::named!("FINs by sender": vec![Client, Server], "last segment": Some((Client, "ACK"))),
        )
    })?;
    a_reset_ends_it(run)?;
    no_bucket_left(run)
}

const LINGER2: Duration = Duration::from_secs(20);

/// An RST that reaches a TIME_WAIT socket ends it, unless
/// `net.ipv4.tcp_rfc1337` is set (tcp_timewait_state_process: "TIME_WAIT
/// assassination"). Once with the default 0, once with 1.
fn a_reset_ends_it(run: &mut Run) -> anyhow::Result<()> {
    run.check_kernel_default("tcp_rfc1337", "0")?;
    let claim = "an RST that reaches a TIME_WAIT socket ends it at once with net.ipv4.tcp_rfc1337 = 0, and is ignored with 1 (the client's state after the RST, with 0, with 1)";
    let expected = crate::named!("with 0": None::<State>, "with 1": Some(State::TimeWait));
    let value = format!("{expected:?}");
    if run.not_checked_in_a_shared_namespace(claim, Expected::Equal { value }) {
        return Ok(());
    }
    let mut after = Vec::new();
    for rfc1337 in ["0", "1"] {
        netns::sysctl("net/ipv4/tcp_rfc1337", rfc1337)?;
        run.record(
            Client,
            &format!("sysctl net.ipv4.tcp_rfc1337={rfc1337}"),
            "(this namespace only)".into(),
        );
        after.push(reset_a_time_wait()?);
        run.record(
            Server,
            "another connection, closed by the client first (TIME_WAIT); a socket on the server's port connects to the client's port",
            "two RSTs sent (TcpOutRsts), not captured: other ports".into(),
        );
    }
    netns::sysctl("net/ipv4/tcp_rfc1337", "0")?;
    run.check_eq(claim, crate::named!("with 0": after[0], "with 1": after[1]), expected);
    Ok(())
}

/// Leaves a client socket in TIME_WAIT, then sends it an RST the way a
/// real one comes: a new socket on the server's port connects to the
/// client's. The TIME_WAIT answers its SYN with an ACK of the old
/// connection; the connecting socket, in SYN_SENT, answers that ACK with
/// an RST whose sequence number is the one ACKed, exactly what the
/// TIME_WAIT expects (tcp_rcv_synsent_state_process, tcp_v4_send_reset).
/// It sends its SYN again at once, which draws a second RST: from the
/// kernel when the TIME_WAIT is gone, from the connecting socket when it
/// is not. Returns the client's state after the two.
fn reset_a_time_wait() -> anyhow::Result<Option<State>> {
    let (client, mut server) = crate::pair()?;
    let (client_end, server_end) = (End::of(&client)?, End::of(&server)?);
    drop(client);
    let eof = server.read(&mut [0u8; 1])?;
    anyhow::ensure!(eof == 0, "the server read {eof} bytes, not the client's FIN");
    drop(server);
    client_end.wait_for(State::TimeWait)?;
    server_end.wait_gone()?;

    let before = thread_counters()?;
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&server_end.local.into())?;
    socket.set_nonblocking(true)?;
    let connect = socket.connect(&client_end.local.into());
    let errno = connect.as_ref().err().and_then(std::io::Error::raw_os_error);
    anyhow::ensure!(
        errno == Some(libc::EINPROGRESS),
        "a non-blocking connect returned {connect:?}"
    );
    let sent = crate::wait::until("the two RSTs", crate::wait::DEFAULT_DEADLINE, || {
        let sent = counter_moved(&before, &thread_counters()?, "TcpOutRsts")?;
        Ok((sent >= 2).then_some(sent))
    })?;
    anyhow::ensure!(sent >= 2, "{sent} RSTs sent, not the two");
    let state = client_end.state()?;
    drop(socket);
    Ok(state)
}

/// TIME_WAIT's length is fixed, its existence is not: past
/// `net.ipv4.tcp_max_tw_buckets` the kernel keeps none.
fn no_bucket_left(run: &mut Run) -> anyhow::Result<()> {
    let claim = "past net.ipv4.tcp_max_tw_buckets (here 0) the side that closes first keeps no TIME_WAIT, and TCPTimeWaitOverflow counts it (client state, overflows)";
    let expected = Expected::Equal {
        value: format!("{:?}", crate::named!("client state": None::<State>, "overflows": 1)),
    };
    if run.not_checked_in_a_shared_namespace(claim, expected) {
        return Ok(());
    }
    netns::sysctl("net/ipv4/tcp_max_tw_buckets", "0")?;
    run.record(
        Client,
        "sysctl net.ipv4.tcp_max_tw_buckets=0",
        "(this namespace only)".into(),
    );
    let overflows_before = tcp_ext_counter("TCPTimeWaitOverflow")?;
    let (client, mut server) = crate::pair()?;
    let client_end = End::of(&client)?;
    // The client keeps its descriptor until the end, so that it reaches
    // TIME_WAIT from FIN_WAIT_2 and not as an orphan (whose FIN_WAIT_2
    // would need a bucket too).
    client.shutdown(Shutdown::Write)?;
    let eof = server.read(&mut [0u8; 16]);
    drop(server);
    run.record(
        Client,
        "second connection: client shutdown(Write), server read → Ok(0), drop(server)",
        outcome(eof.as_ref()),
    );
    // Gone at once, or (with a bucket) in TIME_WAIT for 60 s: the wait's
    // own failure is the refutation, judged on the state seen after it.
    let _ = client_end.wait_gone();
    let state = client_end.state()?;
    let overflows = tcp_ext_counter("TCPTimeWaitOverflow")?.saturating_sub(overflows_before);
    run.check_eq(
        claim,
        crate::named!("client state": state, "overflows": overflows),
        crate::named!("client state": None::<State>, "overflows": 1),
    );
    drop(client);
    Ok(())
}
