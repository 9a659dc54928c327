//! `unread-data-rst`: the server writes a response and closes without
//! reading the request. Closing with unread bytes makes Linux send RST
//! instead of FIN: the response bytes still queued on the server are lost,
//! and the client's read fails with `ConnectionReset` after the bytes that
//! had already arrived.

use std::io::{ErrorKind, Read, Write};

use crate::observe::{tcp_ext_counter, End};
use crate::scenario::{Run, Scenario};
use crate::transcript::Expected;
use crate::transcript::Role::{Client, Server};
use crate::transcript::SegmentKind::{Fin, Rst};

const RESPONSE: usize = 4 << 20;

pub const SCENARIO: Scenario = Scenario {
    id: "unread-data-rst",
    title: "closing with unread data: the kernel sends RST, and the data still queued is lost",
    chapter: "unread-data-rst.md",
    alone: false,
    perform,
};

pub fn perform(run: &mut Run) -> anyhow::Result<()> {
    run.bulk();
    let (mut client, mut server) = run.connect()?;
    let server_end = End::of(&server)?;

    let request = b"a request the server never reads";
    run.perform(Client, "stream.write_all(request)", || client.write_all(request))?;
    crate::wait::until(
        "the request in the server's receive queue",
        crate::wait::DEFAULT_DEADLINE,
        || Ok(server_end.view()?.filter(|v| v.recv_queue as usize == request.len())),
    )?;

    // The client is not reading yet: the server's write fills the client's
    // receive buffer and its own send buffer, and returns what fit.
    server.set_nonblocking(true)?;
    let written = server.write(&vec![b'r'; RESPONSE]);
    run.record(Server, "stream.write(&[b'r'; 4 MiB]) (non-blocking)", "Ok(n)".into());
    let written = written?;
    run.measured("bytes the server's write accepted", written);
    let queued = server_end.view()?.map_or(0, |v| v.send_queue);
    run.measured("bytes still in the server's send queue at close", queued);

    run.hold("the server's Recv-Q holds the unread request, its Send-Q the queued response");
    let aborts_before = tcp_ext_counter("TCPAbortOnClose")?;
    run.drop(Server, "drop(stream)", server);
    let aborts_after = tcp_ext_counter("TCPAbortOnClose")?;
    let claim = "the kernel counts the abort: TcpExtTCPAbortOnClose in /proc/net/netstat goes up by";
    let one = Expected::Equal { value: "1".into() };
    if !run.not_checked_in_a_shared_namespace(claim, one) {
        run.check_eq(claim, aborts_after.saturating_sub(aborts_before), 1);
    }
    let claim = "the RST ends both sockets at once: no FIN_WAIT and no TIME_WAIT on the server, nothing on the client";
    run.expect_states(claim, None, None)?;
    let claim = "closing with unread bytes sends RST, not FIN";
    run.check_segments(claim, &[Server.sent(Rst, 1), Server.sent(Fin, 0)])?;

    let mut received = Vec::new();
    let read = run.perform(Client, "stream.read_to_end(&mut received)", || {
        client.read_to_end(&mut received)
    });
    run.measured("bytes the client received before the error", received.len());
    let response_bytes = received.iter().filter(|&&b| b == b'r').count();
    let claim = "the client first reads the bytes that had arrived before the RST";
    run.check_at_least(claim, response_bytes as u64, 1, "bytes");
    let claim = "then its read fails with ErrorKind::ConnectionReset (os error 104)";
    run.check_err(claim, &read, ErrorKind::ConnectionReset, libc::ECONNRESET);
    let claim = "the rest of the response is lost: bytes the server's write accepted that never reached the client";
    run.check_at_least(claim, written.saturating_sub(received.len()) as u64, 1, "bytes");
    let again = client.read(&mut [0; 64]);
    run.call(Client, "stream.read(&mut [0; 64])", &again);
    run.check_ok("the reset is reported once: the next read returns Ok(0)", &again, 0);
    Ok(())
}
