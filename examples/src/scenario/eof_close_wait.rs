//! `eof-close-wait`: the client closes; the server's read returns `Ok(0)`;
//! while the server keeps its stream the socket stays CLOSE_WAIT and sends
//! no FIN; dropping the stream sends the FIN.

use std::io::Read;

use crate::observe::State;
use crate::scenario::{Run, Scenario};
use crate::transcript::Role::{Client, Server};
use crate::transcript::SegmentCount;
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

    run.expect_states(
        "while the server keeps the stream, it is CLOSE_WAIT and the client FIN_WAIT_2",
        Some(State::FinWait2),
        Some(State::CloseWait),
    )?;
    run.check_fin_acked(
        "the server's kernel acknowledged the client's FIN, though its program keeps the stream",
        Client,
    )?;
    run.hold("the server holds a stream whose peer has closed (CLOSE_WAIT)");
    run.check_segments(
        "the client sent a FIN, and no FIN left the server while it kept the stream",
        &[
            SegmentCount::exactly(Client, Fin, 1),
            SegmentCount::exactly(Server, Fin, 0),
        ],
    )?;

    run.drop(Server, "drop(stream)", server);
    run.expect_states(
        "dropping the stream closes it: the server's socket is gone and the client waits in TIME_WAIT",
        Some(State::TimeWait),
        None,
    )?;
    run.check_packets_eq(
        "dropping the stream sent the server's FIN, and the client acknowledged it (server FINs, the client's ACK past the FIN's sequence number)",
        |p| {
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
        },
    )?;
    Ok(())
}
