//! `graceful-streams`: a hyper server streams server-sent events, a
//! response that never ends. hyper's `graceful_shutdown()` lets responses
//! in progress finish, so on its own it waits for ever: the lab's
//! deadline cuts the stream, and the client's response ends without its
//! last chunk. A stream that is told about the stop sends a last event and
//! ends; the connection then closes within the grace period, and the
//! client's response is complete.

use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use crate::http::Events;
use crate::scenario::{block_on, Run, Scenario};
use crate::transcript::Role::{Client, Server};
use crate::transcript::SegmentKind::{Fin, Rst};

pub const SCENARIO: Scenario = Scenario {
    id: "graceful-streams",
    title: "hyper's graceful_shutdown() waits for ever on an event stream; a stream told to stop ends, and the stop takes no time",
    chapter: "http.md#graceful-streams",
    alone: false,
    perform,
};

/// How long the stop waits for connections before it cuts them.
const GRACE: Duration = Duration::from_millis(500);
const DEADLINE: Duration = Duration::from_secs(10);

/// The last bytes of a complete chunked response: the zero-length chunk.
const LAST_CHUNK: &str = "0\r\n\r\n";

/// How a connection's graceful stop ended.
#[derive(Debug, PartialEq)]
enum Stop {
    /// The connection finished within the grace period.
    Finished,
    /// The grace period ran out and the connection was dropped.
    Cut,
}

/// Serves one connection with an event stream; at `stop`, starts
/// hyper's graceful shutdown and waits up to [`GRACE`] for it.
async fn serve(stream: tokio::net::TcpStream, told: bool, mut stop: watch::Receiver<bool>) -> Stop {
    let events = told.then(|| stop.clone());
    let service = hyper::service::service_fn(move |_| {
        let events = Events::new(events.clone());
        async move { Ok::<_, std::convert::Infallible>(hyper::Response::new(events)) }
    });
    let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = &mut connection => return Stop::Finished,
        _ = stop.changed() => connection.as_mut().graceful_shutdown(),
    }
    match tokio::time::timeout(GRACE, connection).await {
        Ok(_) => Stop::Finished,
        Err(_) => Stop::Cut,
    }
}

/// Sends `GET /events`, reads until the first event, stops the server,
/// and reads to the end: the events read before the stop, and the whole
/// response.
async fn watch_and_stop(
    client: &mut tokio::net::TcpStream,
    stop: &watch::Sender<bool>,
) -> std::io::Result<(usize, String)> {
    client
        .write_all(b"GET /events HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await?;
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains("data: tick") {
        match client.read(&mut buf).await? {
            0 => break,
            n => seen.extend_from_slice(&buf[..n]),
        }
    }
    let before = String::from_utf8_lossy(&seen).matches("data: tick").count();
    let _ = stop.send(true);
    client.read_to_end(&mut seen).await?;
    Ok((before, String::from_utf8_lossy(&seen).into_owned()))
}

/// The end of a response, as the check names it.
fn ending(response: &str) -> &'static str {
    if response.ends_with(&format!("{}\r\n{LAST_CHUNK}", crate::http::LAST_EVENT)) {
        "the last event, then the last chunk"
    } else if response.ends_with(LAST_CHUNK) {
        "the last chunk"
    } else {
        "cut: no last chunk"
    }
}

pub fn perform(run: &mut Run) -> anyhow::Result<()> {
    block_on(async {
        let (mut client, server) = run.connect_tokio()?;
        // An event every 50 ms until the cut: only which of SYN, FIN and RST each side sent.
        run.bulk();
        let (stop, stopped) = watch::channel(false);
        let serving = tokio::spawn(serve(server, false, stopped));
        run.record(
            Server,
            "serve_connection(io, events).await; at the stop, graceful_shutdown(), then 500 ms at most",
            "(running)".into(),
        );
        let (before, response) = watch_and_stop(&mut client, &stop).await?;
        let claim = "the client reads the stream's first event before the stop";
        run.check_at_least(claim, before as u64, 1, "events");
        let shown: std::io::Result<&str> = Ok(ending(&response));
        run.call(Client, "GET /events, the first event, the stop, read_to_end", &shown);
        let claim = "graceful_shutdown() alone does not end the stream: the grace period (500 ms) runs out and the connection is cut";
        let stopped = tokio::time::timeout(DEADLINE, serving).await??;
        run.record(Server, "the stop", format!("{stopped:?}"));
        run.check_eq(claim, stopped, Stop::Cut);
        let claim = "the client's response ends without its last chunk: it cannot tell the stop from a crash";
        run.check_ok(claim, &shown, "cut: no last chunk");
        let claim = "the cut is a FIN: nothing was left unread";
        run.check_segments(claim, &[Server.sent(Fin, 1), Server.sent(Rst, 0)])?;
        drop(client);

        // The stream told about the stop, on a pair of its own (not captured).
        let (client, server) = crate::pair()?;
        let (mut client, server) = (crate::runtime::to_tokio(client)?, crate::runtime::to_tokio(server)?);
        let (stop, stopped) = watch::channel(false);
        let started = tokio::time::Instant::now();
        let serving = tokio::spawn(serve(server, true, stopped));
        let (_, response) = watch_and_stop(&mut client, &stop).await?;
        let shown: std::io::Result<&str> = Ok(ending(&response));
        run.call(
            Client,
            "stream told about the stop: GET /events, the stop, read_to_end",
            &shown,
        );
        let claim = "a stream told about the stop sends its last event and ends: the response is complete";
        run.check_ok(claim, &shown, "the last event, then the last chunk");
        let stopped = tokio::time::timeout(DEADLINE, serving).await??;
        run.record(Server, "the stop", format!("{stopped:?}"));
        run.check_eq(
            "and the connection finishes within the grace period",
            stopped,
            Stop::Finished,
        );
        let claim = "the whole exchange, stop included, took less than the grace period";
        run.check_count(
            claim,
            started.elapsed().as_millis() as u64,
            0,
            GRACE.as_millis() as u64,
            "ms",
        );
        anyhow::Ok(())
    })?
}
