//! `keepalive-dead-peer` and `user-timeout`: a peer that vanishes without a
//! FIN or an RST (a crashed host, a cable pulled). Made real without
//! leaving loopback: a socket filter on the server's socket makes its kernel
//! discard every segment that arrives for it, so it never answers again.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use socket2::{SockRef, TcpKeepalive};

use crate::observe::{tcp_ext_counter, End, State};
use crate::scenario::Run;
use crate::sockopt::discard_everything;
use crate::transcript::Expected;
use crate::transcript::Role::{Client, Server};
use crate::transcript::SegmentKind::{Data, Rst};

/// How long a blocking read may wait for the kernel to give up: past the
/// 8 s that the checks of keepalive (about 3 s) and of the user timeout
/// (2 s) accept.
const READ_DEADLINE: Duration = Duration::from_secs(10);

/// Keepalive after 1 s idle, then a probe every second, 2 unanswered probes.
fn fast_keepalive() -> TcpKeepalive {
    TcpKeepalive::new()
        .with_time(Duration::from_secs(1))
        .with_interval(Duration::from_secs(1))
        .with_retries(2)
}

/// The server vanishes: from now on its kernel discards every segment that
/// arrives for it, so it never answers (no ACK, no RST).
fn vanish(run: &mut Run, servers: &[&TcpStream]) -> anyhow::Result<()> {
    run.require_private_network()?;
    for server in servers {
        discard_everything(server)?;
    }
    run.record(
        Server,
        "discard_everything(&stream): a filter that drops every segment",
        "Ok(()) (the peer vanishes)".into(),
    );
    Ok(())
}

/// Ends the vanished servers' sockets at once (an RST, no FIN to
/// retransmit for minutes to a peer that is gone).
fn abort(run: &mut Run, servers: &[&TcpStream]) -> std::io::Result<()> {
    for server in servers {
        SockRef::from(*server).set_linger(Some(Duration::ZERO))?;
    }
    run.record(
        Server,
        "cleaning up: set_linger(Some(0)), then drop (an RST)",
        String::new(),
    );
    Ok(())
}

/// Blocks in `read` until the kernel gives up on the peer; records the
/// call and how long it took, and checks that it failed with ETIMEDOUT and
/// that the kernel counted the abort (`tcp_write_err` moves
/// TCPAbortOnTimeout), in the scenario's own namespace.
fn read_until_timed_out(run: &mut Run, client: &mut TcpStream, claim: &str) -> std::io::Result<Duration> {
    let aborts_before = tcp_ext_counter("TCPAbortOnTimeout")?;
    // A deadline far past the kernel's: a peer that never vanished fails
    // the check with WouldBlock instead of holding the run.
    client.set_read_timeout(Some(READ_DEADLINE))?;
    let start = Instant::now();
    let read = run.perform(Client, "stream.read(&mut [0; 16])", || client.read(&mut [0u8; 16]));
    let took = start.elapsed();
    run.check_err(claim, &read, ErrorKind::TimedOut, libc::ETIMEDOUT);
    let counted = "the kernel counts the abort as TCPExtTCPAbortOnTimeout in /proc/net/netstat (increase)";
    if !run.not_checked_in_a_shared_namespace(counted, Expected::Equal { value: "1".into() }) {
        let aborts = tcp_ext_counter("TCPAbortOnTimeout")?.saturating_sub(aborts_before);
        run.check_eq(counted, aborts, 1);
    }
    Ok(took)
}

pub fn keepalive(run: &mut Run) -> anyhow::Result<()> {
    run.check_kernel_default("tcp_keepalive_time", "7200")?;
    run.check_kernel_default("tcp_keepalive_intvl", "75")?;
    run.check_kernel_default("tcp_keepalive_probes", "9")?;
    let (mut client, server) = run.connect()?;
    let (bare, bare_server) = crate::pair()?;
    let set = SockRef::from(&client).set_tcp_keepalive(&fast_keepalive());
    run.call(
        Client,
        "SockRef::from(&stream).set_tcp_keepalive(1 s idle, 1 s interval, 2 probes)",
        &set,
    );
    set?;
    vanish(run, &[&server, &bare_server])?;

    let took = read_until_timed_out(
        run,
        &mut client,
        "with keepalive, the blocked read fails with ErrorKind::TimedOut (os error 110)",
    )?;
    run.check_seconds("after time + interval × probes: about 3 s", took, 2.5, 8.0);
    // TimedOut is not "try again later": the kernel has closed the socket.
    let again = client.read(&mut [0u8; 16]);
    run.call(Client, "stream.read(&mut [0; 16])", &again);
    let claim = "the connection is dead: a read retried after TimedOut gets no data, only Ok(0)";
    run.check_ok(claim, &again, 0);
    let write = client.write(b"hello?");
    run.call(Client, "stream.write(b\"hello?\")", &write);
    let claim = "and a write fails with ErrorKind::BrokenPipe (os error 32)";
    run.check_err(claim, &write, ErrorKind::BrokenPipe, libc::EPIPE);
    let claim = "the client sent 2 unanswered keepalive probes, then gave up with an RST (probes, RSTs)";
    run.check_packets_eq(claim, |p| {
        // Bare ACKs from the client, less the one that ended the handshake.
        let probes = p
            .count(Client, |s| {
                s.len == 0 && s.flags.ack && !s.flags.rst && !s.flags.fin && !s.flags.syn
            })
            .saturating_sub(1);
        (
            crate::named!("probes": probes, "RSTs": p.count(Client, |s| s.flags.rst)),
            crate::named!("probes": 2, "RSTs": 1),
        )
    })?;
    let claim = "each probe carries no data and uses the sequence number before the next one the peer expects (relative seq, length of each probe)";
    run.check_packets_eq(claim, |p| {
        let isn = p.from(Client).next().map_or(0, |syn| syn.seq);
        let relative = |seq: u32| seq.wrapping_sub(isn);
        // After the handshake the peer expects the client's byte 1 (snd_una).
        let snd_una = p.from(Client).nth(1).map_or(0, |ack| relative(ack.seq));
        let probes: Vec<_> = p
            .from(Client)
            .skip(2)
            .filter(|s| !s.flags.rst && !s.flags.fin)
            .map(|s| format!("seq={} len={}", relative(s.seq), s.len))
            .collect();
        let expected = vec![format!("seq={} len=0", snd_una.wrapping_sub(1)); probes.len().max(1)];
        (probes, expected)
    })?;

    bare.set_nonblocking(true)?;
    let quiet = (&bare).read(&mut [0u8; 16]);
    let state = End::of(&bare)?.state()?;
    let claim = "meanwhile, a connection without keepalive noticed nothing: nothing to read, still ESTABLISHED";
    run.check_eq(
        claim,
        crate::named!("read": quiet.map_err(|e| e.kind()), "state": state),
        crate::named!("read": Err::<usize, _>(ErrorKind::WouldBlock), "state": Some(State::Established)),
    );
    let claim = "the client's socket is gone; the server, which hears nothing, not even the RST, is still ESTABLISHED";
    run.expect_states(claim, None, Some(State::Established))?;
    abort(run, &[&server, &bare_server])?;
    Ok(())
}

pub fn user_timeout(run: &mut Run) -> anyhow::Result<()> {
    run.check_kernel_default("tcp_retries2", "15")?;
    let (mut client, server) = run.connect()?;
    let (mut kept, kept_server) = crate::pair()?;
    let set = run.perform(Client, "SockRef::from(&stream).set_tcp_user_timeout(Some(2 s))", || {
        SockRef::from(&client).set_tcp_user_timeout(Some(Duration::from_secs(2)))
    });
    set?;
    SockRef::from(&kept).set_tcp_keepalive(&fast_keepalive())?;
    run.record_ok(
        Client,
        "second connection: keepalive (1 s, 1 s, 2 probes), no user timeout",
    );
    vanish(run, &[&server, &kept_server])?;

    run.perform(Client, "stream.write_all(b\"never acknowledged\")", || {
        client.write_all(b"never acknowledged")
    })?;
    kept.write_all(b"never acknowledged")?;
    let took = read_until_timed_out(
        run,
        &mut client,
        "with unacknowledged data, TCP_USER_TIMEOUT ends the connection: ErrorKind::TimedOut (os error 110)",
    )?;
    let claim = "after the user timeout (2 s), counted from the first unacknowledged send";
    run.check_seconds(claim, took, 1.8, 8.0);
    let claim = "the client retransmitted its data, then stopped without an RST";
    run.check_segments(claim, &[Client.sent_at_least(Data, 2), Client.sent(Rst, 0)])?;
    let kept_state = End::of(&kept)?.state()?;
    let claim =
        "meanwhile, keepalive alone did not end the other connection: it does not probe while data is unacknowledged";
    run.check_eq(claim, kept_state, Some(State::Established));
    let claim = "the client's socket is gone; the server, which got no RST, still thinks it is ESTABLISHED";
    run.expect_states(claim, None, Some(State::Established))?;
    abort(run, &[&server, &kept_server])?;
    Ok(())
}
