//! `reset-while-reading`: an RST arrives while the connection is
//! ESTABLISHED (here the server aborts with a zero linger). The client still
//! reads the bytes that arrived before it, then `ConnectionReset` once; after
//! that reads return `Ok(0)`, writes `BrokenPipe`, and `peer_addr`
//! `NotConnected`. On a second connection the first call after the RST is
//! a write: it gets `ConnectionReset`, the next write `BrokenPipe`.

use std::io::{ErrorKind, Read, Write};
use std::time::Duration;

use socket2::SockRef;

use crate::observe::State;
use crate::scenario::{Run, Scenario};
use crate::transcript::Role::{Client, Server};
use crate::transcript::SegmentKind::{Data, DataOf, Fin, Rst};

pub const SCENARIO: Scenario = Scenario {
    id: "reset-while-reading",
    title: "an RST while ESTABLISHED: queued bytes first, then ConnectionReset once",
    chapter: "reset-while-reading.md",
    alone: false,
    perform,
};

pub fn perform(run: &mut Run) -> anyhow::Result<()> {
    let (mut client, mut server) = run.connect()?;

    run.perform(Server, "stream.write_all(b\"last words\")", || {
        server.write_all(b"last words")
    })?;
    let claim = "the RST will arrive while both ends are ESTABLISHED";
    run.expect_states(claim, Some(State::Established), Some(State::Established))?;
    run.hold("the client has 10 unread bytes; the server is about to abort");
    SockRef::from(&server).set_linger(Some(Duration::ZERO))?;
    run.record_ok(Server, "SockRef::from(&stream).set_linger(Some(Duration::ZERO))");
    run.drop(Server, "drop(stream)", server);
    run.expect_states("the RST removes both sockets from the table", None, None)?;
    let claim = "the server sent its 10 bytes, then an RST and no FIN";
    run.check_segments(
        claim,
        &[Server.sent(DataOf(10), 1), Server.sent(Rst, 1), Server.sent(Fin, 0)],
    )?;

    let mut buf = [0u8; 64];
    let first = run.perform(Client, "stream.read(&mut [0; 64])", || client.read(&mut buf));
    run.check_ok("bytes that arrived before the RST are still readable", &first, 10);
    let second = run.perform(Client, "stream.read(&mut [0; 64])", || client.read(&mut buf));
    let claim = "then read fails with ErrorKind::ConnectionReset (os error 104)";
    run.check_err(claim, &second, ErrorKind::ConnectionReset, libc::ECONNRESET);
    let third = run.perform(Client, "stream.read(&mut [0; 64])", || client.read(&mut buf));
    run.check_ok("only once: every later read returns Ok(0)", &third, 0);
    let write = client.write(b"hello?");
    run.call(Client, "stream.write(b\"hello?\")", &write);
    let claim = "after the read that reported the reset, a write fails with ErrorKind::BrokenPipe (os error 32)";
    run.check_err(claim, &write, ErrorKind::BrokenPipe, libc::EPIPE);
    let peer = run.perform(Client, "stream.peer_addr()", || client.peer_addr());
    let claim = "peer_addr fails with ErrorKind::NotConnected (os error 107)";
    run.check_err(claim, &peer, ErrorKind::NotConnected, libc::ENOTCONN);
    let claim = "the client sent nothing after the RST: no RST of its own, no data";
    run.check_segments(claim, &[Client.sent(Rst, 0), Client.sent(Data, 0)])?;
    write_first(run)
}

/// The other branch: no read comes first. The reset is pending on the
/// socket (`sk_err`), and whichever call comes first reports it.
fn write_first(run: &mut Run) -> anyhow::Result<()> {
    let (mut client, server) = crate::pair()?;
    let client_end = crate::observe::End::of(&client)?;
    SockRef::from(&server).set_linger(Some(Duration::ZERO))?;
    drop(server);
    client_end.wait_gone()?;
    run.record(
        Server,
        "second connection: set_linger(Some(Duration::ZERO)), drop(stream) (an RST)",
        String::new(),
    );
    let first = client.write(b"hello?");
    run.call(Client, "second connection: stream.write(b\"hello?\")", &first);
    let claim = "when the first call after the RST is a write, it fails with ErrorKind::ConnectionReset (os error 104)";
    run.check_err(claim, &first, ErrorKind::ConnectionReset, libc::ECONNRESET);
    let second = client.write(b"hello?");
    run.call(Client, "second connection: stream.write(b\"hello?\")", &second);
    let claim = "the write after it fails with ErrorKind::BrokenPipe (os error 32)";
    run.check_err(claim, &second, ErrorKind::BrokenPipe, libc::EPIPE);
    Ok(())
}
