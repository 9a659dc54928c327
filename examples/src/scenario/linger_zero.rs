//! `linger-zero`: with `SO_LINGER` set to zero, closing the socket sends an
//! RST instead of a FIN, discards anything unsent, and leaves no TIME_WAIT
//! behind; the peer's next read fails with `ConnectionReset`. The kernel
//! counts it in TCPAbortOnData, and both ends in TcpEstabResets.

use std::io::{ErrorKind, Read};
use std::time::Duration;

use socket2::SockRef;

use crate::inspect::{counter_moved, thread_counters};
use crate::observe::tcp_ext_counter;
use crate::scenario::{Run, Scenario};
use crate::transcript::Expected;
use crate::transcript::Role::{Client, Server};
use crate::transcript::SegmentKind::{Fin, Rst};

pub const SCENARIO: Scenario = Scenario {
    id: "linger-zero",
    title: "SO_LINGER 0: close sends RST and leaves no TIME_WAIT",
    chapter: "so-linger.md#linger-zero",
    alone: false,
    perform,
};

pub fn perform(run: &mut Run) -> anyhow::Result<()> {
    let (client, mut server) = run.connect()?;

    let set = run.perform(
        Client,
        "SockRef::from(&stream).set_linger(Some(Duration::ZERO))",
        || SockRef::from(&client).set_linger(Some(Duration::ZERO)),
    );
    set?;
    run.hold("ESTABLISHED; the client is about to close with a zero linger");
    let aborts_before = tcp_ext_counter("TCPAbortOnData")?;
    let counters_before = thread_counters()?;
    run.drop(Client, "drop(stream)", client);
    let claim = "the client's socket is gone at once: no FIN_WAIT, no TIME_WAIT; the server's is gone too";
    run.expect_states(claim, None, None)?;
    let claim = "the close sent an RST and no FIN";
    run.check_segments(claim, &[Client.sent(Rst, 1), Client.sent(Fin, 0)])?;
    let claim = "the kernel counts the abort as TCPExtTCPAbortOnData in /proc/net/netstat (increase)";
    if !run.not_checked_in_a_shared_namespace(claim, Expected::Equal { value: "1".into() }) {
        let aborts = tcp_ext_counter("TCPAbortOnData")?.saturating_sub(aborts_before);
        run.check_eq(claim, aborts, 1);
    }
    // tcp_set_state() counts every move from ESTABLISHED or CLOSE_WAIT
    // straight to CLOSE, and both ends live in this namespace.
    let claim = "the kernel counts both ends in TcpEstabResets (/proc/net/snmp): the client left ESTABLISHED for closed by sending the RST, the server by receiving it (increase)";
    if !run.not_checked_in_a_shared_namespace(claim, Expected::Equal { value: "2".into() }) {
        let resets = counter_moved(&counters_before, &thread_counters()?, "TcpEstabResets")?;
        run.check_eq(claim, resets, 2);
    }

    let read = server.read(&mut [0u8; 64]);
    run.call(Server, "stream.read(&mut [0; 64])", &read);
    let claim = "the server's read fails with ErrorKind::ConnectionReset (os error 104), not Ok(0)";
    run.check_err(claim, &read, ErrorKind::ConnectionReset, libc::ECONNRESET);
    Ok(())
}
