//! `tokio-keepalive-race`: a client keeps an idle connection in its pool;
//! the server closes connections idle for its own timeout. The server's
//! FIN reaches the client's kernel, not the pool: the pool hands the
//! connection out again, the request's write succeeds, and the answer is
//! the end of the stream — what HTTP clients report as "connection closed
//! before message completed". A pool whose idle timeout is shorter than
//! the server's retires the connection first.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::observe::State;
use crate::scenario::{block_on, Run, Scenario};
use crate::transcript::Role::{Client, Server};
use crate::transcript::SegmentKind::Rst;

pub const SCENARIO: Scenario = Scenario {
    id: "tokio-keepalive-race",
    title: "tokio: a pooled connection reused after the server's idle close: the write succeeds, the answer is Ok(0)",
    chapter: "async-keepalive-race.md#tokio-keepalive-race",
    alone: false,
    perform,
};

const SERVER_IDLE: Duration = Duration::from_millis(300);
const POOL_IDLE: Duration = Duration::from_millis(100);
const DEADLINE: Duration = Duration::from_secs(10);

/// Answers "OK" to each request; closes a connection idle for its timeout.
async fn serve(listener: TcpListener, connections: usize) -> std::io::Result<()> {
    for _ in 0..connections {
        let (mut stream, _) = listener.accept().await?;
        let mut buf = [0u8; 64];
        while let Ok(Ok(1..)) = tokio::time::timeout(SERVER_IDLE, stream.read(&mut buf)).await {
            stream.write_all(b"OK").await?;
        }
    }
    Ok(())
}

/// One request and its response; the response's length.
async fn request(stream: &mut TcpStream) -> std::io::Result<usize> {
    stream.write_all(b"GET").await?;
    stream.read(&mut [0u8; 64]).await
}

pub fn perform(run: &mut Run) -> anyhow::Result<()> {
    block_on(async {
        let listener = run.listen_tokio()?;
        let server = tokio::spawn(serve(listener, 3));
        // Three connections: only which of SYN, FIN and RST each side sent.
        run.bulk();
        run.record(
            Server,
            "server: answers requests, closes connections idle for 300 ms",
            "(running)".into(),
        );
        let mut pooled = TcpStream::connect(run.server_addr()?).await?;
        run.set_client(pooled.local_addr()?);
        let first = request(&mut pooled).await;
        run.call(Client, "pool: request on a new connection", &first);
        run.check_ok("the first request gets its response", &first, 2);

        let (client_end, _) = run.ends()?;
        let closed = crate::wait::until_async("the server's idle close", DEADLINE, || {
            Ok(client_end.state()?.filter(|s| *s == State::CloseWait))
        })
        .await;
        let claim = "the client's kernel gets the server's FIN: CLOSE_WAIT";
        run.check_eq(claim, closed.ok(), Some(State::CloseWait));
        let claim = "the server's idle timeout (300 ms) closes the connection; the client's kernel takes the FIN, the pool knows nothing: client CLOSE_WAIT";
        run.expect_states(claim, Some(State::CloseWait), Some(State::FinWait2))?;
        let reused = pooled.write(b"GET").await;
        run.call(Client, "pool: the connection is idle, reuse it: write", &reused);
        run.check_ok("the request's write succeeds: the kernel takes the bytes", &reused, 3);
        let answer = pooled.read(&mut [0u8; 64]).await;
        run.call(Client, "pool: read the response", &answer);
        run.check_ok("the answer is the end of the stream, Ok(0): no response", &answer, 0);
        let claim = "the server's closed socket answered the request with an RST";
        run.check_segments(claim, &[Server.sent(Rst, 1)])?;
        drop(pooled);

        // The pool's idle timeout (100 ms) is shorter than the server's.
        let mut pooled = TcpStream::connect(run.server_addr()?).await?;
        let first = request(&mut pooled).await;
        run.call(
            Client,
            "pool (idle timeout 100 ms): request on a new connection",
            &first,
        );
        let mut probe = [0u8; 1];
        let idle = match tokio::time::timeout(POOL_IDLE, pooled.read(&mut probe)).await {
            Err(_) => "elapsed",
            Ok(Ok(0)) => "closed by the server",
            Ok(_) => "something else",
        };
        run.record(Client, "pool: watch the idle connection for 100 ms (read)", idle.into());
        let claim = "the pool's idle timeout (100 ms) runs out first: nothing arrived, nobody closed the connection";
        run.check_eq(claim, idle, "elapsed");
        run.drop(Client, "pool: drop(stream), the idle connection retired", pooled);
        let mut fresh = TcpStream::connect(run.server_addr()?).await?;
        let next = request(&mut fresh).await;
        run.call(Client, "pool: request on a new connection", &next);
        let claim = "the next request goes out on a new connection and gets its response";
        run.check_ok(claim, &next, 2);
        drop(fresh);
        tokio::time::timeout(DEADLINE, server).await???;
        anyhow::Ok(())
    })?
}
