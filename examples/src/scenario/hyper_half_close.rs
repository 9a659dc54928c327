//! `hyper-half-close`: a client sends its request, then shuts down its
//! writing half, as `curl` does with some options and many scripted
//! clients do. hyper's HTTP/1 server reads that FIN, while the handler is
//! still working, as the client gone: it ends the connection with
//! `IncompleteMessage` and the client gets no response. With
//! `half_close(true)` the server answers.

use std::convert::Infallible;
use std::time::Duration;

use hyper::server::conn::http1;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::http::{respond, serve, Body};
use crate::observe::{End, State};
use crate::scenario::{block_on, Run, Scenario};
use crate::transcript::Role::{Client, Server};
use crate::transcript::SegmentKind::{Data, Fin, Rst};

pub const SCENARIO: Scenario = Scenario {
    id: "hyper-half-close",
    title: "hyper: a request followed by the client's FIN gets no response by default, and its response with half_close(true)",
    chapter: "http.md#hyper-half-close",
    alone: false,
    perform,
};

/// A request with no body, followed by the client's FIN.
pub const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";

const DEADLINE: Duration = Duration::from_secs(10);

/// A handler slower than the client's FIN: it answers once the FIN has
/// reached the server's socket (`server`, in CLOSE_WAIT).
async fn answer_after_the_fin(server: End) -> Result<hyper::Response<Body>, Infallible> {
    let fin = crate::wait::until_async("the client's FIN", DEADLINE, || {
        Ok(server.state()?.filter(|s| *s == State::CloseWait))
    })
    .await;
    Ok(match fin {
        Ok(_) => respond(200, b"hello"),
        Err(_) => respond(500, b"the client's FIN never came"),
    })
}

/// The request, the client's FIN, and everything the server sends back.
async fn request_then_fin(client: &mut tokio::net::TcpStream) -> std::io::Result<Vec<u8>> {
    client.write_all(REQUEST).await?;
    client.shutdown().await?;
    let mut response = Vec::new();
    client.read_to_end(&mut response).await?;
    Ok(response)
}

pub fn perform(run: &mut Run) -> anyhow::Result<()> {
    block_on(async {
        let (mut client, server) = run.connect_tokio()?;
        let (_, server_end) = run.ends()?;
        let serving = tokio::spawn(serve(http1::Builder::new(), server, move |_| {
            answer_after_the_fin(server_end)
        }));
        run.record(
            Server,
            "http1::Builder::new().serve_connection(io, service).await",
            "(running)".into(),
        );
        client.write_all(REQUEST).await?;
        run.record_ok(Client, "stream.write_all(b\"GET / HTTP/1.1 ...\").await");
        run.perform_async(Client, "stream.shutdown().await", client.shutdown())
            .await?;
        let mut response = Vec::new();
        let read = client.read_to_end(&mut response).await;
        run.call(Client, "stream.read_to_end(&mut response).await", &read);
        let claim = "by default the client gets no response: its read returns Ok(0)";
        run.check_ok(claim, &read, 0);
        let served = tokio::time::timeout(DEADLINE, serving).await??;
        run.call(Server, "serve_connection(..).await", &served);
        let claim = "hyper ends the connection with IncompleteMessage: connection closed before message completed";
        run.check_err_text(
            claim,
            &served,
            std::io::ErrorKind::Other,
            "connection closed before message completed",
        );
        let claim = "the client closed first and keeps TIME_WAIT; the server's socket is gone";
        run.expect_states(claim, Some(State::TimeWait), None)?;
        run.wait_fin_acked(Server)?;
        let claim = "the server sent no byte of response, then its FIN; no RST";
        run.check_segments(claim, &[Server.sent(Data, 0), Server.sent(Fin, 1), Server.sent(Rst, 0)])?;
        drop(client);

        // The same exchange with half_close(true), on a pair of its own.
        let (client, server) = crate::pair()?;
        let server_end = End::of(&server)?;
        let (mut client, server) = (crate::runtime::to_tokio(client)?, crate::runtime::to_tokio(server)?);
        let mut builder = http1::Builder::new();
        builder.half_close(true);
        let serving = tokio::spawn(serve(builder, server, move |_| answer_after_the_fin(server_end)));
        let response = request_then_fin(&mut client).await;
        let status = response.map(|r| String::from_utf8_lossy(&r[..r.len().min(15)]).into_owned());
        run.call(
            Client,
            "with half_close(true): the request, shutdown(), read_to_end",
            &status,
        );
        let claim = "with half_close(true) the client gets its response after its FIN";
        run.check_ok(claim, &status, "HTTP/1.1 200 OK".into());
        let served = tokio::time::timeout(DEADLINE, serving).await??;
        run.call(Server, "with half_close(true): serve_connection(..).await", &served);
        run.check_ok("and the server's connection ends without an error", &served, ());
        anyhow::Ok(())
    })?
}
