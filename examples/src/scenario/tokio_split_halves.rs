//! `tokio-split-halves`: `into_split` gives owned halves; dropping the
//! write half shuts down writing (a FIN) while the read half still reads.
//! The borrowed halves of `split` do nothing when dropped: the stream
//! stays whole until it is dropped itself.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::observe::{End, State};
use crate::scenario::{block_on, to_tokio, Run, Scenario};
use crate::transcript::Role::{Client, Server};
use crate::transcript::SegmentKind::Fin;

pub const SCENARIO: Scenario = Scenario {
    id: "tokio-split-halves",
    title: "tokio: dropping an owned write half sends the FIN while the read half reads on; a borrowed half does not",
    chapter: "async-shutdown.md#tokio-split-halves",
    alone: false,
    perform,
};

pub fn perform(run: &mut Run) -> anyhow::Result<()> {
    block_on(async {
        let (client, mut server) = run.connect_tokio()?;
        let (mut read_half, write_half) = client.into_split();
        run.record(
            Client,
            "let (read_half, write_half) = stream.into_split()",
            String::new(),
        );
        run.drop(Client, "drop(write_half)", write_half);
        let claim = "dropping the owned write half shuts down writing: client FIN_WAIT_2, server CLOSE_WAIT";
        run.expect_states(claim, Some(State::FinWait2), Some(State::CloseWait))?;
        let mut request = Vec::new();
        let read = server.read_to_end(&mut request).await;
        run.call(Server, "stream.read_to_end(&mut request).await", &read);
        run.check_ok("the server sees the end of the request: Ok(0) after nothing", &read, 0);
        server.write_all(b"response").await?;
        run.record_ok(Server, "stream.write_all(b\"response\").await");
        let mut buf = [0u8; 64];
        let answer = read_half.read(&mut buf).await;
        run.call(Client, "read_half.read(&mut buf).await", &answer);
        run.check_ok("the read half still reads the response", &answer, 8);
        let claim = "one FIN from the client, sent by the drop";
        run.check_segments(claim, &[Client.sent(Fin, 1)])?;
        drop((read_half, server));
        run.record(Client, "drop(read_half), and the server drop(stream)", String::new());
        let claim = "then the connection ends as any other: client TIME_WAIT, server gone";
        run.expect_states(claim, Some(State::TimeWait), None)?;
        run.wait_fin_acked(Server)?;

        // Borrowed halves: split() borrows the stream; its halves close nothing.
        let (client, server) = crate::pair()?;
        let client_end = End::of(&client)?;
        let (mut client, _server) = (to_tokio(client)?, to_tokio(server)?);
        {
            // A borrowed half has no Drop at all: its end does nothing.
            let (_reader, _writer) = client.split();
        }
        run.record(
            Client,
            "second connection: { let (reader, writer) = stream.split(); } (both halves dropped)",
            String::new(),
        );
        // Nothing to wait for: give a FIN, were one sent, time to arrive.
        let peer = client_end.peer();
        let changed = crate::wait::until(
            "a FIN the borrowed half should not send",
            Duration::from_millis(200),
            || Ok(peer.state()?.filter(|s| *s != State::Established)),
        );
        let claim = "dropping a borrowed write half sends nothing: the server's state does not change (within 200 ms)";
        run.check_eq(claim, changed.ok(), None);
        let claim = "the server is still ESTABLISHED";
        run.check_eq(claim, peer.state()?, Some(State::Established));
        let reunited = {
            let (client, _server) = crate::pair()?;
            let (reader, writer) = to_tokio(client)?.into_split();
            reader.reunite(writer).map(|_| ()).map_err(std::io::Error::other)
        };
        run.call(Client, "third connection: read_half.reunite(write_half)", &reunited);
        run.check_ok("owned halves of one stream reunite into it", &reunited, ());
        anyhow::Ok(())
    })?
}
