//! `unread-data-rst`: the server writes a response and closes without
//! reading the request. Closing with unread bytes makes Linux send RST
//! instead of FIN: the response bytes still queued on the server are lost,
//! and the client's read fails with `ConnectionReset` after the bytes that
//! had already arrived.

use std::io::{ErrorKind, Read, Write};

use crate::observe::{tcp_ext_counter, End};
use crate::scenario::Run;
use crate::transcript::Role::{Client, Server};

const ECONNRESET: i32 = 104;
const RESPONSE: usize = 4 << 20;

pub fn perform(run: &mut Run) -> anyhow::Result<()> {
    run.bulk();
    let (mut client, mut server) = run.connect()?;
    let server_end = End::of(&server)?;

    let request = b"a request the server never reads";
    client.write_all(request)?;
    run.record(Client, "stream.write_all(request)", "Ok(())".into());
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
    drop(server);
    run.record(Server, "drop(stream)", String::new());
    let aborts_after = tcp_ext_counter("TCPAbortOnClose")?;
    run.check(
        "the kernel counts the abort: TcpExtTCPAbortOnClose in /proc/net/netstat goes up",
        aborts_after > aborts_before,
        format!("{aborts_before} before, {aborts_after} after"),
    );
    run.expect_states(
        "the RST ends both sockets at once: no FIN_WAIT and no TIME_WAIT on the server, nothing on the client",
        None,
        None,
    )?;
    run.check_packets("closing with unread bytes sends RST, not FIN", |p| {
        (
            p.count(Server, |s| s.flags.rst) == 1 && p.count(Server, |s| s.flags.fin) == 0,
            p.summary(),
        )
    })?;

    let mut received = Vec::new();
    let read = client.read_to_end(&mut received);
    run.call(Client, "stream.read_to_end(&mut received)", &read);
    run.measured("bytes the client received before the error", received.len());
    run.check(
        "the client first reads the bytes that had arrived before the RST",
        !received.is_empty() && received.iter().all(|&b| b == b'r'),
        format!("{} bytes", received.len()),
    );
    run.check_err(
        "then its read fails with ErrorKind::ConnectionReset (os error 104)",
        &read,
        ErrorKind::ConnectionReset,
        ECONNRESET,
    );
    run.check(
        "the rest of the response is lost: the client got fewer bytes than the server's write accepted",
        received.len() < written,
        format!("received {} of {written}", received.len()),
    );
    let again = client.read(&mut [0; 64]);
    run.call(Client, "stream.read(&mut [0; 64])", &again);
    run.check_ok("the reset is reported once: the next read returns Ok(0)", &again, 0);
    Ok(())
}
