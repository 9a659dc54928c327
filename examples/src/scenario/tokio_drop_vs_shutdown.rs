//! `tokio-drop-vs-shutdown`: there is no async drop. Dropping a tokio
//! stream wrapped in a `BufWriter` closes the socket at once: the bytes
//! still in the buffer never leave. `flush().await` and
//! `shutdown().await` deliver them, then send the FIN.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};

use crate::observe::{End, State};
use crate::scenario::{block_on, to_tokio, Run, Scenario};
use crate::transcript::Role::{Client, Server};
use crate::transcript::SegmentKind::{Data, Fin, Rst};

pub const SCENARIO: Scenario = Scenario {
    id: "tokio-drop-vs-shutdown",
    title: "tokio: dropping a BufWriter loses its bytes; flush and shutdown().await deliver them and send the FIN",
    chapter: "async-shutdown.md#tokio-drop-vs-shutdown",
    alone: false,
    perform,
};

const MESSAGE: &[u8] = b"hello, server";

pub fn perform(run: &mut Run) -> anyhow::Result<()> {
    block_on(async {
        let (client, mut server) = run.connect_tokio()?;
        let mut writer = BufWriter::new(client);
        writer.write_all(MESSAGE).await?;
        run.record(
            Client,
            "BufWriter::new(stream).write_all(b\"hello, server\").await",
            "Ok(()): in the buffer".into(),
        );
        run.drop(Client, "drop(writer)", writer);
        let mut received = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), server.read_to_end(&mut received)).await?;
        run.call(Server, "stream.read_to_end(&mut received).await", &read);
        let claim = "the server reads to the end and gets nothing: the drop lost the buffered bytes";
        run.check_ok(claim, &read, 0);
        let claim = "on the wire: the client's FIN, and no data from the client";
        run.check_segments(claim, &[Client.sent(Fin, 1), Client.sent(Data, 0), Client.sent(Rst, 0)])?;
        // The server's kernel acknowledges the FIN on its own (an ACK of its
        // own, not one folded into the server's FIN later).
        let claim = "the client's FIN is acknowledged: client FIN_WAIT_2, server CLOSE_WAIT";
        run.expect_states(claim, Some(State::FinWait2), Some(State::CloseWait))?;
        run.drop(Server, "drop(stream)", server);
        let claim = "the server's drop sends its FIN: client TIME_WAIT, server gone";
        run.expect_states(claim, Some(State::TimeWait), None)?;
        run.wait_fin_acked(Server)?;

        // The same with flush and shutdown, on a second connection.
        let (client, server) = crate::pair()?;
        let client_end = End::of(&client)?;
        let (client, mut server) = (to_tokio(client)?, to_tokio(server)?);
        let mut writer = BufWriter::new(client);
        writer.write_all(MESSAGE).await?;
        let shutdown = async {
            writer.flush().await?;
            writer.shutdown().await
        }
        .await;
        run.call(
            Client,
            "second connection: write_all(..).await, flush().await, shutdown().await",
            &shutdown,
        );
        run.check_ok("flush and shutdown succeed", &shutdown, ());
        let mut received = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), server.read_to_end(&mut received)).await?;
        run.call(
            Server,
            "second connection: stream.read_to_end(&mut received).await",
            &read,
        );
        let claim = "the server reads every byte (13), then the end of the stream";
        run.check_ok(claim, &read, MESSAGE.len());
        client_end.wait_for(State::FinWait2)?;
        let claim = "shutdown().await sent the FIN, and the writer still holds the socket: client FIN_WAIT_2";
        run.check_eq(claim, client_end.state()?, Some(State::FinWait2));
        anyhow::Ok(())
    })?
}
