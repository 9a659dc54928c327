//! `tls-truncation`: a response whose end is the close ("HTTP/1.0, no
//! Content-Length"), cut by a FIN before its end, because the server died
//! or something on the path ended the connection. Over plain TCP the
//! client reads `Ok(0)` and cannot tell the cut from the end. Over TLS the
//! FIN comes without close_notify, and rustls' read fails with
//! `UnexpectedEof`: the cut shows. A declared length shows it either way.

use std::io::ErrorKind::UnexpectedEof;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::scenario::tls_close_notify::{bytes_before_fin, NO_CLOSE_NOTIFY};
use crate::scenario::{block_on, Run, Scenario};
use crate::transcript::Role::{Client, Server};
use crate::transcript::SegmentKind::Rst;

pub const SCENARIO: Scenario = Scenario {
    id: "tls-truncation",
    title: "a response delimited by the close, cut by a FIN: plain TCP reads Ok(0), rustls reads UnexpectedEof",
    chapter: "tls.md#tls-truncation",
    alone: false,
    perform,
};

/// The head of a response whose body ends with the connection.
const HEAD: &[u8] = b"HTTP/1.0 200 OK\r\n\r\n";
/// The body's length, and how much of it is sent before the cut.
const BODY: usize = 4000;
const SENT: usize = 1000;

pub fn perform(run: &mut Run) -> anyhow::Result<()> {
    block_on(async {
        let (mut client, mut server) = run.connect_tls().await?;
        server.write_all(HEAD).await?;
        server.write_all(&[b'b'; SENT]).await?;
        server.flush().await?;
        run.record_ok(Server, "tls.write_all(head and 1000 of the body's 4000 bytes).await");
        run.wait_packets("the response, acknowledged", |p| p.all_acked(Server))?;
        let since = run.segment_count()?;
        run.drop(Server, "drop(tls): the connection ends mid-response", server);
        let mut response = Vec::new();
        let read = client.read_to_end(&mut response).await;
        run.call(Client, "tls.read_to_end(&mut response).await", &read);
        let claim = "over TLS the cut shows: the read fails with UnexpectedEof and rustls' message";
        run.check_err_text(claim, &read, UnexpectedEof, NO_CLOSE_NOTIFY);
        let claim = "the bytes that arrived were read before the error (the head and 1000 bytes)";
        run.check_eq(claim, response.len(), HEAD.len() + SENT);
        let again = client.read(&mut [0u8; 64]).await;
        run.call(Client, "tls.read(&mut buf).await", &again);
        let claim = "every later read fails the same way";
        run.check_err_text(claim, &again, UnexpectedEof, NO_CLOSE_NOTIFY);
        let claim = "a drop sends the FIN alone: no close_notify record before it";
        run.check_packets_eq(claim, |p| {
            let sent = bytes_before_fin(p, Server, since);
            (
                crate::named!("bytes, then the FIN": sent),
                crate::named!("bytes, then the FIN": Some(0)),
            )
        })?;
        run.drop(Client, "drop(tls)", client);
        run.wait_fin_acked(Client)?;
        let claim = "no RST on the wire: both sides closed with a FIN";
        run.check_segments(claim, &[Client.sent(Rst, 0), Server.sent(Rst, 0)])?;

        // The same cut over plain TCP, on a pair of its own (not captured).
        let (client, server) = crate::pair()?;
        let (mut client, mut server) = (crate::runtime::to_tokio(client)?, crate::runtime::to_tokio(server)?);
        server.write_all(HEAD).await?;
        server.write_all(&[b'b'; SENT]).await?;
        drop(server);
        let mut response = Vec::new();
        let read = client.read_to_end(&mut response).await;
        run.call(Client, "plain TCP: stream.read_to_end(&mut response).await", &read);
        let claim = "over plain TCP the same cut reads as the end: Ok with the head and 1000 bytes, no error";
        run.check_ok(claim, &read, HEAD.len() + SENT);

        // A declared length shows the cut over plain TCP too.
        let (client, server) = crate::pair()?;
        let (mut client, mut server) = (crate::runtime::to_tokio(client)?, crate::runtime::to_tokio(server)?);
        server
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4000\r\n\r\n")
            .await?;
        server.write_all(&[b'b'; SENT]).await?;
        drop(server);
        let mut head = [0u8; 41];
        client.read_exact(&mut head).await?;
        let body = client.read_exact(&mut [0u8; BODY]).await;
        run.call(
            Client,
            "plain TCP, Content-Length: 4000: stream.read_exact(&mut [0; 4000]).await",
            &body,
        );
        let claim =
            "with Content-Length the client knows: read_exact of the 4000 declared bytes fails with UnexpectedEof";
        run.check_err_text(claim, &body, UnexpectedEof, "early eof");
        anyhow::Ok(())
    })?
}
