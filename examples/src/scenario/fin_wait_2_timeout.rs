//! `fin-wait-2-timeout`: a socket whose owner closed it waits in FIN_WAIT_2
//! for the peer's FIN only so long: tcp_fin_timeout (60 s by default), or
//! the socket's TCP_LINGER2, here 1 s. A socket whose owner only called
//! `shutdown(Write)` and still holds it waits for ever. The peer, left in
//! CLOSE_WAIT, finds out only when it finally sends: an RST answers; or,
//! with keepalive on, when a probe draws the same RST.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use socket2::{SockRef, TcpKeepalive};

use crate::observe::{tcp_ext_counter, End, State};
use crate::scenario::{Run, Scenario};
use crate::sockopt::set_tcp_linger2;
use crate::transcript::Expected;
use crate::transcript::Role::{Client, Server};
use crate::transcript::SegmentKind::Rst;

const LINGER2: Duration = Duration::from_secs(1);

/// Keepalive for the third connection: the first probe after 2 s idle,
/// when the peer's orphan (TCP_LINGER2 1 s) is gone.
const KEEPALIVE: TcpKeepalive = TcpKeepalive::new()
    .with_time(Duration::from_secs(2))
    .with_interval(Duration::from_secs(1))
    .with_retries(2);

pub const SCENARIO: Scenario = Scenario {
    id: "fin-wait-2-timeout",
    title: "an orphaned FIN_WAIT_2 expires; one whose owner still holds it does not",
    chapter: "fin-wait-2.md",
    alone: false,
    perform,
};

pub fn perform(run: &mut Run) -> anyhow::Result<()> {
    run.check_kernel_default("tcp_fin_timeout", "60")?;
    let (client, mut server) = run.connect()?;
    let (client_end, _) = run.ends()?;
    // A second connection whose client keeps its descriptor, for comparison.
    let (held, held_peer) = crate::pair()?;
    let held_end = End::of(&held)?;
    // A third, whose server side has keepalive on: its probe will find the
    // client's kernel has forgotten the connection.
    let (gone, watched) = crate::pair()?;
    let watched_end = End::of(&watched)?;
    let set = SockRef::from(&watched).set_tcp_keepalive(&KEEPALIVE);
    run.call(
        Server,
        "third connection: SockRef::from(&stream).set_tcp_keepalive(2 s idle, 1 s interval, 2 probes)",
        &set,
    );
    set?;

    set_tcp_linger2(&client, LINGER2)?;
    set_tcp_linger2(&held, LINGER2)?;
    set_tcp_linger2(&gone, LINGER2)?;
    run.record_ok(
        Client,
        "set_tcp_linger2(&stream, 1 s), on this and on the other two connections",
    );
    gone.shutdown(Shutdown::Write)?;
    watched_end.wait_for(State::CloseWait)?;
    End::of(&gone)?.wait_for(State::FinWait2)?;
    drop(gone);
    run.record_ok(
        Client,
        "third connection: stream.shutdown(Shutdown::Write), then drop(stream) (an orphan)",
    );
    held.shutdown(Shutdown::Write)?;
    run.record_ok(
        Client,
        "second connection: stream.shutdown(Shutdown::Write), descriptor kept",
    );
    // FIN first, close once FIN_WAIT_2 is reached: the orphan then gets the
    // FIN_WAIT_2 timer. (Closed earlier, an orphan whose ACK arrives while
    // close() still runs ends with an RST instead, on a timer of its own.)
    run.perform(Client, "stream.shutdown(Shutdown::Write)", || {
        client.shutdown(Shutdown::Write)
    })?;
    let claim = "the client's FIN is acknowledged: client FIN_WAIT_2, server CLOSE_WAIT";
    run.expect_states(claim, Some(State::FinWait2), Some(State::CloseWait))?;
    run.drop(Client, "drop(stream)", client);
    let start = Instant::now();
    let claim = "the orphaned client waits in FIN_WAIT_2, the server sits in CLOSE_WAIT";
    run.expect_states(claim, Some(State::FinWait2), Some(State::CloseWait))?;

    client_end.wait_gone()?;
    let took = start.elapsed();
    let claim = "the orphan is dropped after TCP_LINGER2 (1 s) without a FIN from the server";
    run.check_timer(claim, took, LINGER2, 4);
    let held_state = held_end.state()?;
    let claim = "the socket still held after shutdown(Write) stays in FIN_WAIT_2: the timeout is for orphans";
    run.check_eq(claim, held_state, Some(State::FinWait2));
    let claim = "the server, which never closed, is still CLOSE_WAIT";
    run.expect_states(claim, None, Some(State::CloseWait))?;
    let claim = "the orphan left without a word: no RST, no segment after its FIN (client RSTs, client's last segment)";
    run.check_packets_eq(claim, |p| {
        let last = p.from(Client).last().map(|s| s.flags.to_string());
        (
            crate::named!("client RSTs": p.count(Client, |s| s.flags.rst), "client's last segment": last),
            crate::named!("client RSTs": 0, "client's last segment": Some("FIN ACK")),
        )
    })?;

    let write = run.perform(Server, "stream.write(b\"late\")", || server.write(b"late"));
    let claim = "the server's write still succeeds: the kernel takes the bytes";
    run.check_ok(claim, &write, 4);
    run.expect_states("the client's kernel has no socket for them and answers RST", None, None)?;
    let claim = "the answer to the server's data is an RST";
    run.check_segments(claim, &[Client.sent(Rst, 1)])?;
    let again = run.perform(Server, "stream.write(b\"late\")", || server.write(b"late"));
    let claim = "the next write fails with ErrorKind::BrokenPipe (os error 32)";
    run.check_err(claim, &again, ErrorKind::BrokenPipe, libc::EPIPE);
    drop((held, held_peer));
    keepalive_ends_close_wait(run, watched, watched_end)?;
    negative_linger2(run)
}

/// A negative TCP_LINGER2: an orphan that reaches FIN_WAIT_2 is reset at
/// once instead of waiting (`tcp_close`: linger2 < 0), and the kernel
/// counts it as TCPAbortOnLinger.
fn negative_linger2(run: &mut Run) -> anyhow::Result<()> {
    let claim = "with TCP_LINGER2 negative, the orphan is reset as it reaches FIN_WAIT_2: both sockets leave the table, and TCPExtTCPAbortOnLinger counts it (orphan, peer, aborts)";
    let expected = Expected::Equal {
        value: format!(
            "{:?}",
            crate::named!("orphan": None::<State>, "peer": None::<State>, "aborts": 1)
        ),
    };
    if run.not_checked_in_a_shared_namespace(claim, expected) {
        return Ok(());
    }
    let (client, server) = crate::pair()?;
    let (client_end, server_end) = (End::of(&client)?, End::of(&server)?);
    crate::sockopt::set_int(&client, libc::IPPROTO_TCP, libc::TCP_LINGER2, -1)?;
    client.shutdown(Shutdown::Write)?;
    client_end.wait_for(State::FinWait2)?;
    let aborts_before = tcp_ext_counter("TCPAbortOnLinger")?;
    drop(client);
    run.record(
        Client,
        "fourth connection: TCP_LINGER2 -1, shutdown(Write), FIN_WAIT_2, then drop(stream)",
        String::new(),
    );
    // Gone at once, or (without the reset) the peer still in CLOSE_WAIT:
    // judged on the states seen after the wait.
    let _ = server_end.wait_gone();
    let states = (client_end.state()?, server_end.state()?);
    let aborts = tcp_ext_counter("TCPAbortOnLinger")?.saturating_sub(aborts_before);
    run.check_eq(
        claim,
        crate::named!("orphan": states.0, "peer": states.1, "aborts": aborts),
        crate::named!("orphan": None::<State>, "peer": None::<State>, "aborts": 1),
    );
    drop(server);
    Ok(())
}

/// Keepalive on the side left in CLOSE_WAIT: once the peer's orphan has
/// expired, a probe draws an RST, and the socket leaves the table while
/// its descriptor is still held.
fn keepalive_ends_close_wait(run: &mut Run, mut watched: TcpStream, end: End) -> anyhow::Result<()> {
    let _ = end.wait_gone(); // judged below on the state seen after it
    let state = end.state()?;
    run.record(
        Server,
        "third connection: (the stream is still held)",
        crate::observe::describe(state),
    );
    let claim = "with keepalive on, the socket left in CLOSE_WAIT is ended by a probe once the orphan has expired: it leaves the table while its descriptor is still held";
    run.check_eq(claim, state, None);
    let read = watched.read(&mut [0u8; 16]);
    run.call(Server, "third connection: stream.read(&mut [0; 16])", &read);
    run.check_ok("a read on it then returns Ok(0): the FIN had already arrived", &read, 0);
    Ok(())
}
