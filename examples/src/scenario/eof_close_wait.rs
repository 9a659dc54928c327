//! `eof-close-wait`: the client closes; the server's read returns `Ok(0)`;
//! while the server keeps its stream the socket stays CLOSE_WAIT and sends
//! no FIN; dropping the stream sends the FIN.

use std::io::Read;

use crate::observe::State;
use crate::scenario::{Run, Scenario};
use crate::transcript::Role::{Client, Server};
use crate::transcript::SegmentKind::Fin;

pub const SCENARIO: Scenario = Scenario {
    id: "eof-close-wait",
    title: "the peer closes: read returns Ok(0), and CLOSE_WAIT lasts until the stream is dropped",
    chapter: "eof-close-wait.md",
    alone: false,
    perform,
};

pub fn perform(run: &mut Run) -> anyhow::Result<()> {
    let (client, mut server) = run.connect()?;

    run.drop(Client, "drop(stream)", client);

    let mut buf = [0u8; 1024];
    let read = run.perform(Server, "stream.read(&mut [0; 1024])", || server.read(&mut buf));
    run.check_ok("read returns Ok(0): the client's FIN has arrived", &read, 0);

    let claim = "while the server keeps the stream, it is CLOSE_WAIT and the client FIN_WAIT_2";
    run.expect_states(claim, Some(State::FinWait2), Some(State::CloseWait))?;
    let claim = "the server's kernel acknowledged the client's FIN, though its program keeps the stream";
    run.check_fin_acked(claim, Client)?;
    run.hold("the server holds a stream whose peer has closed (CLOSE_WAIT)");
    let claim = "the client sent a FIN, and no FIN left the server while it kept the stream";
    run.check_segments(claim, &[Client.sent(Fin, 1), Server.sent(Fin, 0)])?;

    run.drop(Server, "drop(stream)", server);
    let claim = "dropping the stream closes it: the server's socket is gone and the client waits in TIME_WAIT";
    run.expect_states(claim, Some(State::TimeWait), None)?;
    let claim = "dropping the stream sent the server's FIN, and the client acknowledged it (server FINs, the client's ACK past the FIN's sequence number)";
    run.check_packets_eq(claim, |p| {
        let fins = p.count(Server, |s| s.flags.fin);
        let fin = p.from(Server).find(|s| s.flags.fin).map(|s| s.seq);
        let acked = fin.and_then(|fin| {
            p.from(Client)
                .filter(|s| s.flags.ack)
                .map(|s| s.ack.wrapping_sub(fin))
                .find(|&past| past == 1)
        });
        (
            crate::named!("server FINs": fins, "client ACK past the FIN by": acked),
            crate::named!("server FINs": 1, "client ACK past the FIN by": Some(1)),
        )
    })?;
    Ok(())
}
