//! `tokio-copy-bidirectional`: a proxy that joins two connections with
//! `copy_bidirectional`. When one side half-closes, the copy forwards the
//! FIN (it shuts down writing on the other side) and keeps copying the
//! other direction; it returns only when both directions have ended. A
//! server that never closes therefore keeps the copy, and the proxy's
//! socket toward a client that already closed, in CLOSE_WAIT: bound the
//! copy with a timeout.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::observe::{End, State};
use crate::scenario::{block_on, to_tokio, Run, Scenario};
use crate::transcript::Role::{Client, Server};

pub const SCENARIO: Scenario = Scenario {
    id: "tokio-copy-bidirectional",
    title: "tokio: copy_bidirectional forwards a half-close, and waits for both directions to end",
    chapter: "async-close-wait.md#tokio-copy-bidirectional",
    alone: false,
    perform,
};

const DEADLINE: Duration = Duration::from_secs(10);
const IDLE: Duration = Duration::from_millis(300);

/// Accepts one client and joins it to a new connection to `upstream`;
/// gives up after `limit`. Returns what each direction copied.
async fn proxy(front: TcpListener, upstream: std::net::SocketAddr, limit: Duration) -> std::io::Result<(u64, u64)> {
    let (mut client, _) = front.accept().await?;
    let mut server = TcpStream::connect(upstream).await?;
    tokio::time::timeout(limit, tokio::io::copy_bidirectional(&mut client, &mut server))
        .await
        .unwrap_or_else(|_| {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the copy's time ran out",
            ))
        })
}

pub fn perform(run: &mut Run) -> anyhow::Result<()> {
    block_on(async {
        let upstream = TcpListener::bind("127.0.0.1:0").await?;
        let upstream_addr = upstream.local_addr()?;
        let front = run.listen_tokio()?;
        // The proxy drops its listener when its copy returns; a second
        // handle keeps the captured port bound, so that the listeners of
        // the second connection cannot be given it (bind to port 0 may hand
        // out a port just freed, and the capture would take them in).
        let _captured_port = socket2::SockRef::from(&front).try_clone()?;
        let copy = tokio::spawn(proxy(front, upstream_addr, DEADLINE));
        run.record(
            Server,
            "proxy: copy_bidirectional(&mut client, &mut server).await",
            "(running)".into(),
        );
        let mut client = TcpStream::connect(run.server_addr()?).await?;
        run.set_client(client.local_addr()?);
        let (mut server, _) = tokio::time::timeout(DEADLINE, upstream.accept()).await??;
        client.write_all(b"request").await?;
        client.shutdown().await?;
        run.record_ok(Client, "stream.write_all(b\"request\").await, shutdown().await");
        let mut request = Vec::new();
        let read = tokio::time::timeout(DEADLINE, server.read_to_end(&mut request)).await?;
        run.call(Server, "upstream: stream.read_to_end(&mut request).await", &read);
        let claim = "the copy forwards the half-close: the server reads the request, then the end of it";
        run.check_ok(claim, &read, 7);
        server.write_all(b"response").await?;
        drop(server);
        run.record_ok(Server, "upstream: stream.write_all(b\"response\").await, drop(stream)");
        let mut response = Vec::new();
        let answer = tokio::time::timeout(DEADLINE, client.read_to_end(&mut response)).await?;
        run.call(Client, "stream.read_to_end(&mut response).await", &answer);
        let claim = "the client reads the response through the proxy, then its end";
        run.check_ok(claim, &answer, 8);
        let copied = tokio::time::timeout(DEADLINE, copy).await??;
        run.call(Server, "proxy: copy_bidirectional(..).await", &copied);
        let claim = "once both directions have ended, the copy returns what each carried";
        run.check_eq(
            claim,
            copied
                .as_ref()
                .map(|(to_server, to_client)| crate::named!("to the server": to_server, "to the client": to_client))
                .map_err(|e| e.kind()),
            Ok(crate::named!("to the server": 7, "to the client": 8)),
        );
        drop(client);
        let claim = "the proxy dropped both connections: client TIME_WAIT, the proxy's socket gone";
        run.expect_states(claim, Some(State::TimeWait), None)?;
        run.wait_fin_acked(Server)?;

        // A server that never closes, behind a proxy whose copy has a time limit.
        let upstream = TcpListener::bind("127.0.0.1:0").await?;
        let upstream_addr = upstream.local_addr()?;
        let front = TcpListener::bind("127.0.0.1:0").await?;
        let front_addr = front.local_addr()?;
        let copy = tokio::spawn(proxy(front, upstream_addr, IDLE));
        let client = std::net::TcpStream::connect(front_addr)?;
        let proxy_end = End::of(&client)?.peer();
        let (_silent, _) = tokio::time::timeout(DEADLINE, upstream.accept()).await??;
        drop(to_tokio(client)?);
        run.record(
            Client,
            "second connection: the client closes; the server never answers nor closes",
            String::new(),
        );
        let seen = crate::wait::until_async("the proxy's CLOSE_WAIT", DEADLINE, || {
            Ok(proxy_end.state()?.filter(|s| *s == State::CloseWait))
        })
        .await;
        let claim = "the copy waits for the server: the proxy's socket toward the client sits in CLOSE_WAIT";
        run.check_eq(claim, seen.ok(), Some(State::CloseWait));
        let gave_up = tokio::time::timeout(DEADLINE, copy).await?;
        run.call(
            Server,
            "second connection: timeout(300 ms, copy_bidirectional(..)).await",
            &gave_up?.map(|_| ()),
        );
        proxy_end.wait_gone()?;
        let claim = "the time limit ends it: the proxy drops both, and its CLOSE_WAIT socket is gone";
        run.check_eq(claim, proxy_end.state()?, None);
        anyhow::Ok(())
    })?
}
