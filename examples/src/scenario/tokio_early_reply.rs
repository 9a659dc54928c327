//! `tokio-early-reply`: the lingering close in async form. A tokio server
//! that answers before reading the whole request and drops the stream
//! resets the connection, and clients lose responses; one that awaits
//! `shutdown()`, reads to the client's FIN under a timeout and only then
//! drops loses none. One exchange is shown step by step, then the same
//! 1000-exchange experiment as the std chapter.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::close::lingering_close_async;
use crate::experiment::{self, CloseStyle};
use crate::observe::State;
use crate::scenario::{block_on, Run, Scenario};
use crate::transcript::Role::{Client, Server};
use crate::transcript::SegmentKind::{Fin, Rst};

/// Exchanges per close style in the experiment.
pub const EXCHANGES: usize = 1000;

pub const SCENARIO: Scenario = Scenario {
    id: "tokio-early-reply",
    title:
        "tokio: answering before the request is read, then dropping, resets; the async lingering close loses nothing",
    chapter: "async-early-reply.md#tokio-early-reply",
    alone: false,
    perform,
};

pub fn perform(run: &mut Run) -> anyhow::Result<()> {
    block_on(async {
        let (mut client, mut server) = run.connect_tokio()?;
        client.write_all(&[b'q'; 4096]).await?;
        run.record_ok(Client, "stream.write_all(&[b'q'; 4096]).await (the request)");
        let first = server.read_exact(&mut [0u8; 100]).await;
        run.call(Server, "stream.read_exact(&mut [0; 100]).await (the header)", &first);
        server.write_all(b"response").await?;
        run.record_ok(Server, "stream.write_all(b\"response\").await");
        let closing = tokio::spawn(lingering_close_async(server, Duration::from_secs(5)));
        run.record(
            Server,
            "lingering_close_async(stream, 5 s): shutdown().await, read to the FIN",
            "(running)".into(),
        );
        let mut response = Vec::new();
        let read = client.read_to_end(&mut response).await;
        run.call(Client, "stream.read_to_end(&mut response).await", &read);
        run.check_ok("the client reads the whole response, then the server's FIN", &read, 8);
        run.drop(Client, "drop(stream)", client);
        let discarded = tokio::time::timeout(Duration::from_secs(10), closing).await??;
        run.call(Server, "lingering_close_async(..).await", &discarded);
        let claim = "the server discards the rest of the request (3996 bytes) until the client's FIN";
        run.check_ok(claim, &discarded, 4096 - 100);
        let claim = "the server closed first and keeps TIME_WAIT; the client's socket is gone";
        run.expect_states(claim, None, Some(State::TimeWait))?;
        run.wait_fin_acked(Client)?;
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
        anyhow::Ok(())
    })??;

    let naive = experiment::run_async(EXCHANGES, CloseStyle::Naive)?;
    let claim = "a tokio server that drops the stream with the request unread loses responses: of 1000 exchanges, responses incomplete";
    run.check_at_least(claim, naive.incomplete as u64, 1, "exchanges");
    let claim = "and client reads ended by ConnectionReset";
    run.check_at_least(claim, naive.reset as u64, 1, "exchanges");
    let lingering = experiment::run_async(EXCHANGES, CloseStyle::Lingering)?;
    let claim = "with lingering_close_async no client loses a byte or sees a reset (of 1000 exchanges: responses incomplete, reads reset)";
    run.check_eq(
        claim,
        crate::named!("responses incomplete": lingering.incomplete, "reads reset": lingering.reset),
        crate::named!("responses incomplete": 0, "reads reset": 0),
    );
    Ok(())
}
