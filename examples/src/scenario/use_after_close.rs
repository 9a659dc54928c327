//! `use-after-close`: Go lets a program call `Read` on a closed connection
//! and answers "use of closed network connection". In Rust dropping the
//! stream consumes it, so that program does not compile (E0382, see the
//! book). What remains possible at run time is a clone that outlives a
//! `shutdown(Both)`: its reads return `Ok(0)`, its writes `BrokenPipe`.

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;

use crate::observe::State;
use crate::scenario::{Run, Scenario};
use crate::transcript::Role::{Client, Server};
use crate::transcript::SegmentKind::{Data, Fin, Rst};

pub const SCENARIO: Scenario = Scenario {
    id: "use-after-close",
    title: "using a stream after closing it: a compile error in Rust, EOF and EPIPE through a clone",
    chapter: "use-after-close.md",
    alone: false,
    perform,
};

pub fn perform(run: &mut Run) -> anyhow::Result<()> {
    let (client, server) = run.connect()?;

    let mut clone = client.try_clone()?;
    run.record(Client, "stream.try_clone()", "Ok(clone)".into());

    let shutdown = run.perform(Client, "stream.shutdown(Shutdown::Both)", || {
        client.shutdown(Shutdown::Both)
    });
    run.check_ok("shutdown(Both) succeeds while a clone is alive", &shutdown, ());
    let claim = "shutdown sends the FIN although a clone still holds the socket: client FIN_WAIT_2, server CLOSE_WAIT";
    run.expect_states(claim, Some(State::FinWait2), Some(State::CloseWait))?;
    run.hold("the client shut its socket down; a clone still holds it");

    let mut buf = [0u8; 16];
    let read = run.perform(Client, "clone.read(&mut [0; 16])", || clone.read(&mut buf));
    let claim = "the clone's read returns Ok(0) at once: the socket is shut for reading";
    run.check_ok(claim, &read, 0);

    let write = run.perform(Client, "clone.write(b\"late\")", || clone.write(b"late"));
    let claim = "the clone's write fails with ErrorKind::BrokenPipe (os error 32) and sends nothing";
    run.check_err(claim, &write, ErrorKind::BrokenPipe, libc::EPIPE);

    run.check_fin_acked("the server's kernel acknowledged the client's FIN", Client)?;
    let claim = "on the wire: the client's FIN and no data from the client, no RST";
    run.check_segments(
        claim,
        &[
            Client.sent(Fin, 1),
            Client.sent(Data, 0),
            Client.sent(Rst, 0),
            Server.sent(Rst, 0),
        ],
    )?;

    run.drop(Client, "drop(clone)", clone);
    run.drop(Client, "drop(stream)", client);
    run.drop(Server, "drop(stream)", server);
    let claim = "once the server closes too, the connection ends as any other: client TIME_WAIT, server gone";
    run.expect_states(claim, Some(State::TimeWait), None)?;
    Ok(())
}
