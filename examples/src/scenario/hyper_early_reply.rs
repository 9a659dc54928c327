//! `hyper-early-reply`: a hyper handler answers 413 from the headers
//! alone while the client is still sending a 16 MiB body. hyper reads no
//! more of the body, sends the response and its FIN, then closes with the
//! body unread: an RST. hyper's client gets the response, and its
//! connection ends with the body's write error; a plain client that
//! writes the whole body before reading gets `BrokenPipe`, then can still
//! read the response.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::http::{respond, serve};
use crate::scenario::{block_on, Run, Scenario};
use crate::transcript::Role::{Client, Server};
use crate::transcript::SegmentKind::{Fin, Rst};

pub const SCENARIO: Scenario = Scenario {
    id: "hyper-early-reply",
    title: "hyper answers 413 before reading a 16 MiB body: the response and a FIN, then an RST; the client still gets the response",
    chapter: "http.md#hyper-early-reply",
    alone: false,
    perform,
};

/// The body the client sends: more than the kernels' buffers hold.
const BODY: usize = 16 << 20;
const DEADLINE: Duration = Duration::from_secs(10);

/// The handler: 413 from the headers, the body never read.
async fn too_large(_: hyper::Request<hyper::body::Incoming>) -> Result<hyper::Response<crate::http::Body>, Infallible> {
    Ok(respond(413, b"too large"))
}

/// A POST of `BODY` bytes, its head first.
fn head() -> String {
    format!("POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: {BODY}\r\n\r\n")
}

pub fn perform(run: &mut Run) -> anyhow::Result<()> {
    block_on(async {
        let (client, server) = run.connect_tokio()?;
        // Megabytes of body: only which of SYN, FIN and RST each side sent.
        run.bulk();
        let serving = tokio::spawn(serve(http1::Builder::new(), server, too_large));
        run.record(
            Server,
            "serve_connection(io, service).await: the handler answers 413, the body unread",
            "(running)".into(),
        );
        let (mut send, connection) = hyper::client::conn::http1::handshake(TokioIo::new(client))
            .await
            .map_err(crate::http::error)?;
        let connection = tokio::spawn(connection);
        let request = hyper::Request::post("/")
            .header("host", "localhost")
            .body(Full::new(Bytes::from(vec![b'b'; BODY])))?;
        let response = send.send_request(request).await.map_err(crate::http::error);
        let status = match &response {
            Ok(r) => Ok(r.status().as_u16()),
            Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
        };
        run.call(Client, "send.send_request(POST with a 16 MiB body).await", &status);
        run.check_ok(
            "the client gets the response, 413, while its body is still being sent",
            &status,
            413,
        );
        let body = match response {
            Ok(response) => response
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes().len())
                .map_err(crate::http::error),
            Err(e) => Err(e),
        };
        run.call(Client, "response.into_body().collect().await", &body);
        run.check_ok("and the response's body, 9 bytes", &body, 9);
        let sent = tokio::time::timeout(DEADLINE, connection)
            .await??
            .map_err(crate::http::error);
        run.call(Client, "connection.await (hyper's client connection)", &sent);
        let claim = "the client's connection ends with the body's write error: the server reset the connection";
        run.check_err_text(
            claim,
            &sent,
            std::io::ErrorKind::Other,
            "error writing a body to connection: Broken pipe (os error 32)",
        );
        let served = tokio::time::timeout(DEADLINE, serving).await??;
        run.call(Server, "serve_connection(..).await", &served);
        run.check_ok("the server's connection ends without an error", &served, ());
        let claim = "the server sent one FIN after the response, and RSTs for the unread body";
        run.check_segments(claim, &[Server.sent(Fin, 1), Server.sent_at_least(Rst, 1)])?;
        let claim = "its FIN came before its first RST";
        run.check_packets_eq(claim, |p| {
            let first = p.from(Server).find(|s| s.flags.fin || s.flags.rst);
            let first = first.map(|s| if s.flags.rst { "RST" } else { "FIN" });
            (
                crate::named!("the server's first FIN or RST": first),
                crate::named!("the server's first FIN or RST": Some("FIN")),
            )
        })?;
        let claim = "both sockets are gone: the RST ended them";
        run.expect_states(claim, None, None)?;

        // A plain client that writes the whole body before it reads, on a
        // pair of its own (not captured).
        let (client, server) = crate::pair()?;
        let (mut client, server) = (crate::runtime::to_tokio(client)?, crate::runtime::to_tokio(server)?);
        let serving = tokio::spawn(serve(http1::Builder::new(), server, too_large));
        let mut request = head().into_bytes();
        request.extend(std::iter::repeat_n(b'b', BODY));
        let written = client.write_all(&request).await;
        run.call(
            Client,
            "plain client: stream.write_all(head and 16 MiB body).await",
            &written,
        );
        let claim = "a plain client's write of the body fails with BrokenPipe";
        run.check_err(claim, &written, std::io::ErrorKind::BrokenPipe, libc::EPIPE);
        let mut response = Vec::new();
        let read = client.read_to_end(&mut response).await;
        let status = read.map(|_| String::from_utf8_lossy(&response[..response.len().min(32)]).into_owned());
        run.call(Client, "plain client: stream.read_to_end(&mut response).await", &status);
        let claim = "and it can still read the response, then the end of the stream";
        run.check_ok(claim, &status, "HTTP/1.1 413 Payload Too Large\r\n".into());
        tokio::time::timeout(DEADLINE, serving).await???;
        anyhow::Ok(())
    })?
}
