//! `connect-refused`: connecting to a port nobody listens on. The kernel
//! answers the SYN with an RST, and `connect` fails with
//! `ConnectionRefused` (ECONNREFUSED): an RST in SYN_SENT, unlike the
//! resets of an established connection (`ConnectionReset`).

use std::io::ErrorKind;
use std::net::SocketAddr;

use socket2::{Domain, Socket, Type};

use crate::scenario::{Run, Scenario};
use crate::transcript::Role::{Client, Server};
use crate::transcript::SegmentKind::Syn;

pub const SCENARIO: Scenario = Scenario {
    id: "connect-refused",
    title: "connecting to a port nobody listens on: RST to the SYN, ConnectionRefused",
    chapter: "connect-refused.md",
    alone: false,
    perform,
};

pub fn perform(run: &mut Run) -> anyhow::Result<()> {
    // A port that was just free: bind a listener to port 0, note the port,
    // close the listener.
    let listener = run.listen()?;
    let server: SocketAddr = listener.local_addr()?;
    run.drop(crate::transcript::Role::Server, "drop(listener)", listener);

    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
    run.set_client(socket.local_addr()?.as_socket().expect("an IPv4 address"));
    let connect = run.perform(Client, "connect(server)", || socket.connect(&server.into()));
    let claim = "connect fails with ErrorKind::ConnectionRefused (os error 111)";
    run.check_err(claim, &connect, ErrorKind::ConnectionRefused, libc::ECONNREFUSED);
    let claim = "the SYN was answered with RST ACK, the only segment the server side sent";
    run.check_packets_eq(claim, |p| {
        let answers: Vec<String> = p.from(Server).map(|s| s.flags.to_string()).collect();
        (answers, vec!["RST ACK".to_string()])
    })?;
    let claim = "and nothing was retried: one SYN";
    run.check_segments(claim, &[Client.sent(Syn, 1)])?;
    run.expect_states("no socket is left for the connection on either side", None, None)?;
    Ok(())
}
