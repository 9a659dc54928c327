//! `lingering-close`: a server that answers before reading the whole
//! request and then drops the stream resets the connection and loses
//! responses; one that shuts down its writing side, reads to the client's
//! FIN and only then drops loses none. One exchange is shown step by step,
//! then the experiment counts losses over 1000 exchanges of each kind.

use std::io::{Read, Write};
use std::net::Shutdown;

use crate::experiment::{self, CloseStyle};
use crate::observe::State;
use crate::scenario::{Run, Scenario};
use crate::transcript::Role::{Client, Server};
use crate::transcript::SegmentKind::{Fin, Rst};

/// Exchanges per close style in the experiment.
pub const EXCHANGES: usize = 1000;

pub const SCENARIO: Scenario = Scenario {
    id: "lingering-close",
    title: "the lingering close: shutdown(Write), read to EOF, drop; no response lost",
    chapter: "lingering-close.md",
    alone: false,
    perform,
};

pub fn perform(run: &mut Run) -> anyhow::Result<()> {
    let (mut client, mut server) = run.connect()?;

    client.write_all(&[b'q'; 4096])?;
    run.record_ok(Client, "stream.write_all(&[b'q'; 4096])");
    let header = server.read(&mut [0u8; 100]);
    run.call(Server, "stream.read(&mut [0; 100])", &header);
    run.perform(Server, "stream.write_all(b\"response\")", || {
        server.write_all(b"response")
    })?;

    run.perform(Server, "stream.shutdown(Shutdown::Write)", || {
        server.shutdown(Shutdown::Write)
    })?;
    let claim =
        "shutdown(Write) sends the FIN while 3996 request bytes are still unread: server FIN_WAIT_2, client CLOSE_WAIT";
    run.expect_states(claim, Some(State::CloseWait), Some(State::FinWait2))?;

    run.hold("the server has sent its FIN and still reads: server FIN_WAIT_2, client CLOSE_WAIT");
    let mut answer = Vec::new();
    let read = run.perform(Client, "stream.read_to_end(&mut answer)", || {
        client.read_to_end(&mut answer)
    });
    let claim = "the client reads the whole response, then Ok(0) (read_to_end's result, the bytes read)";
    run.check_eq(
        claim,
        crate::named!(
            "read_to_end": read.map_err(|e| e.kind()),
            "read": String::from_utf8_lossy(&answer),
        ),
        crate::named!("read_to_end": Ok::<usize, std::io::ErrorKind>(8), "read": "response"),
    );
    run.drop(Client, "drop(stream)", client);

    let mut rest = Vec::new();
    let drained = run.perform(Server, "stream.read_to_end(&mut discard)", || {
        server.read_to_end(&mut rest)
    });
    let claim = "the server reads the unread request to the client's FIN";
    run.check_ok(claim, &drained, 4096 - 100);
    run.drop(Server, "drop(stream)", server);
    let claim = "the server closed first, so the server keeps TIME_WAIT and the client's socket is gone";
    run.expect_states(claim, None, Some(State::TimeWait))?;
    let claim = "no RST on the wire: both sides closed with a FIN";
    run.check_segments(
        claim,
        &[
            Client.sent(Rst, 0),
            Server.sent(Rst, 0),
            Client.sent(Fin, 1),
            Server.sent(Fin, 1),
        ],
    )?;

    let naive = experiment::run(EXCHANGES, CloseStyle::Naive)?;
    let claim = "with the naive close (drop, the request body unread) clients lose responses: of 1000 exchanges, responses incomplete";
    run.check_at_least(claim, naive.incomplete as u64, 1, "exchanges");
    run.check_at_least("and reads ended by ConnectionReset", naive.reset as u64, 1, "exchanges");
    let lingering = experiment::run(EXCHANGES, CloseStyle::Lingering)?;
    let claim = "with lingering_close no client loses a byte or sees a reset (of 1000 exchanges: responses incomplete, reads reset)";
    run.check_eq(
        claim,
        crate::named!("responses incomplete": lingering.incomplete, "reads reset": lingering.reset),
        crate::named!("responses incomplete": 0, "reads reset": 0),
    );
    Ok(())
}
