//! `syn-retries`: connecting to a host that does not answer. The SYN is
//! retransmitted until the time `tcp_syn_retries` retries allow has passed
//! (6 by default: 1 + 2 + 4 + ... + 64 = 127 s); here 1, in the scenario's
//! own network namespace, so `connect` fails after 1 + 2 = 3 s.
//! The silent host is a listener whose socket filter discards every SYN.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Instant;

use socket2::{Domain, Socket, Type};

use crate::netns;
use crate::scenario::{Run, Scenario};
use crate::sockopt::discard_everything;
use crate::transcript::Role::{Client, Server};
use crate::transcript::SegmentKind::{Any, Rst, Syn};

pub const SCENARIO: Scenario = Scenario {
    id: "syn-retries",
    title: "connecting to a host that never answers: tcp_syn_retries SYNs, then TimedOut",
    chapter: "refuse-to-die.md#syn-retries",
    alone: false,
    perform,
};

pub fn perform(run: &mut Run) -> anyhow::Result<()> {
    run.require_private_network()?;
    run.check_kernel_default("tcp_syn_retries", "6")?;
    netns::sysctl("net/ipv4/tcp_syn_retries", "1")?;
    run.record(
        Client,
        "sysctl net.ipv4.tcp_syn_retries=1",
        "(this namespace only)".into(),
    );
    let listener = run.listen()?;
    discard_everything(&listener)?;
    run.record_ok(Server, "discard_everything(&listener): the host stays silent");

    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
    run.set_client(socket.local_addr()?.as_socket().expect("an IPv4 address"));
    let start = Instant::now();
    let server = run.server_addr()?;
    let connect = run.perform(Client, "connect(server)", || socket.connect(&server.into()));
    let took = start.elapsed();
    let claim = "connect fails with ErrorKind::TimedOut (os error 110)";
    run.check_err(claim, &connect, ErrorKind::TimedOut, libc::ETIMEDOUT);
    let claim = "the kernel gave up after the time that one retry allows, 1 s and then 2 s: about 3 s";
    run.check_seconds(claim, took, 2.5, 8.0);
    // How many SYNs fit in that time depends on the kernel: recent ones
    // space their first retries 1 s apart (tcp_syn_linear_timeouts).
    let claim = "the client retried its SYN, sent no RST; the server side sent nothing";
    run.check_segments(
        claim,
        &[Client.sent_at_least(Syn, 2), Client.sent(Rst, 0), Server.sent(Any, 0)],
    )?;
    run.expect_states("no socket is left for the connection on either side", None, None)?;
    drop(listener);
    Ok(())
}
