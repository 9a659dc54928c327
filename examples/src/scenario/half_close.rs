//! `half-close`: `shutdown(Write)` sends a FIN and leaves reading open, the
//! request/response pattern of `nc -N`. A later write fails at once with
//! EPIPE, without any RST. `shutdown(Read)` sends nothing at all.

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;

use crate::observe::State;
use crate::scenario::Run;
use crate::transcript::Role::{Client, Server};

pub fn perform(run: &mut Run) -> anyhow::Result<()> {
    let (mut client, mut server) = run.connect()?;

    client.write_all(b"request")?;
    run.record(Client, "stream.write_all(b\"request\")", "Ok(())".into());
    let shutdown = client.shutdown(Shutdown::Write);
    run.call(Client, "stream.shutdown(Shutdown::Write)", &shutdown);
    run.expect_states(
        "shutdown(Write) sends the FIN: client FIN_WAIT_2, server CLOSE_WAIT",
        Some(State::FinWait2),
        Some(State::CloseWait),
    )?;

    run.hold("half-closed: client FIN_WAIT_2, server CLOSE_WAIT, and both can still talk");
    let mut request = Vec::new();
    let read = server.read_to_end(&mut request);
    run.call(Server, "stream.read_to_end(&mut request)", &read);
    run.check_ok("the server reads the whole request, then Ok(0)", &read, 7);
    server.write_all(b"response")?;
    run.record(Server, "stream.write_all(b\"response\")", "Ok(())".into());

    let mut buf = [0u8; 64];
    let answer = client.read(&mut buf);
    run.call(Client, "stream.read(&mut [0; 64])", &answer);
    run.check_ok("after shutdown(Write) the client still reads the response", &answer, 8);

    let late = client.write(b"more");
    run.call(Client, "stream.write(b\"more\")", &late);
    run.check_err(
        "a write after shutdown(Write) fails at once with ErrorKind::BrokenPipe (os error 32)",
        &late,
        ErrorKind::BrokenPipe,
        32,
    );

    // The client's ACK of the response must be in the capture before the
    // count, or it could land between the count and the check.
    run.wait_packets("the client's ACK of the response", |p| {
        let end_of_response = p
            .from(Server)
            .filter(|s| s.len == 8)
            .map(|s| s.seq.wrapping_add(8))
            .last();
        p.from(Client).any(|s| Some(s.ack) == end_of_response)
    })?;
    let before = run.segment_count()?;
    let shut_read = client.shutdown(Shutdown::Read);
    run.call(Client, "stream.shutdown(Shutdown::Read)", &shut_read);
    let after_read = client.read(&mut buf);
    run.call(Client, "stream.read(&mut [0; 64])", &after_read);
    run.check_ok("after shutdown(Read), read returns Ok(0)", &after_read, 0);
    run.check_packets("shutdown(Read) sends nothing: no segment left either side", |p| {
        (
            p.segments.len() == before,
            format!("{before} segments before, {} after", p.segments.len()),
        )
    })?;
    run.check_packets(
        "no RST at any point: the EPIPE was the client's own kernel refusing",
        |p| {
            let ok = p.count(Client, |s| s.flags.rst) + p.count(Server, |s| s.flags.rst) == 0
                && p.count(Client, |s| s.len > 0) == 1;
            (ok, p.summary())
        },
    )?;

    drop(server);
    run.record(Server, "drop(stream)", String::new());
    run.expect_states(
        "the server's close ends the connection: client TIME_WAIT, server gone",
        Some(State::TimeWait),
        None,
    )?;
    drop(client);
    Ok(())
}
