//! `tokio-graceful-shutdown`: the graceful server of `tcpclose::graceful`,
//! stopped while 100 clients are in the middle of a request and 20
//! connections are idle. Every busy client gets its response, the idle
//! connections are closed at once and do not delay the exit, nothing is
//! left in CLOSE_WAIT; a second run adds a client that never finishes its
//! request, which is cut when the grace period runs out.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::graceful::{serve, Counts, Settings, Summary};
use crate::observe::State;
use crate::scenario::{block_on, Run, Scenario};
use crate::transcript::Role::{Client, Server};

pub const SCENARIO: Scenario = Scenario {
    id: "tokio-graceful-shutdown",
    title: "tokio: a graceful stop with 100 requests in progress: every response delivered, idle connections closed at once",
    chapter: "async-graceful.md#tokio-graceful-shutdown",
    alone: false,
    perform,
};

const BUSY: usize = 100;
const IDLE: usize = 20;
const SETTINGS: Settings = Settings {
    work: Duration::from_secs(1),
    grace: Duration::from_secs(3),
    idle: Duration::from_secs(30),
};
const DEADLINE: Duration = Duration::from_secs(10);

/// Waits until the server has accepted every connection: the busy, the
/// idle and the `stalled`. (On loopback their handshakes completed before:
/// the wait is for the accept loop.)
async fn every_connection_accepted(counts: &Counts, stalled: usize) -> anyhow::Result<()> {
    let mut accepted = counts.accepted.subscribe();
    tokio::time::timeout(DEADLINE, accepted.wait_for(|n| *n >= BUSY + IDLE + stalled)).await??;
    Ok(())
}

/// Connects and sends `request`; the stream, to read the answer from.
async fn send(addr: std::net::SocketAddr, request: &[u8]) -> std::io::Result<TcpStream> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(request).await?;
    Ok(stream)
}

/// Reads to the end: whether the response came.
async fn answer(mut stream: TcpStream) -> std::io::Result<bool> {
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    Ok(answer == b"done\n")
}

/// What one graceful stop gave: the server's summary, how long it took from
/// the stop to the server's return, the responses the busy clients got,
/// and the requests in progress at the stop.
struct Stop {
    summary: Summary,
    /// The clients' addresses: the remote ends of the server's sockets.
    clients: Vec<std::net::SocketAddr>,
    took: Duration,
    responses: usize,
    /// Responses the idle and stalled clients got: none.
    others_answered: usize,
    in_progress: usize,
}

async fn stop_with_load(listener: TcpListener, stalled: usize) -> anyhow::Result<Stop> {
    let addr = listener.local_addr()?;
    let counts = Arc::new(Counts::default());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        listener,
        async {
            let _ = stopped.await;
        },
        SETTINGS,
        Arc::clone(&counts),
    ));
    let mut clients = Vec::new();
    let mut busy = Vec::new();
    for _ in 0..BUSY {
        let stream = send(addr, b"work\n").await?;
        clients.push(stream.local_addr()?);
        busy.push(tokio::spawn(answer(stream)));
    }
    let mut others = Vec::new();
    for request in std::iter::repeat_n(&b""[..], IDLE).chain(std::iter::repeat_n(&b"wo"[..], stalled)) {
        let stream = send(addr, request).await?;
        clients.push(stream.local_addr()?);
        others.push(tokio::spawn(answer(stream)));
    }
    // Stop once every connection is accepted and every busy request in progress.
    every_connection_accepted(&counts, stalled).await?;
    let mut started = counts.started.subscribe();
    tokio::time::timeout(DEADLINE, started.wait_for(|n| *n >= BUSY)).await??;
    let in_progress = counts.in_progress.load(Ordering::SeqCst);
    let at = Instant::now();
    let _ = stop.send(());
    let summary = tokio::time::timeout(DEADLINE, server).await???;
    let took = at.elapsed();
    let mut responses = 0;
    for client in busy {
        responses += usize::from(tokio::time::timeout(DEADLINE, client).await???);
    }
    let mut answers = Vec::new();
    for client in others {
        answers.push(tokio::time::timeout(DEADLINE, client).await???);
    }
    let others_answered = answers.into_iter().filter(|answered| *answered).count();
    Ok(Stop {
        summary,
        clients,
        took,
        responses,
        others_answered,
        in_progress,
    })
}

/// The server's sockets (on port `port`, connected to one of `clients`):
/// in CLOSE_WAIT, in TIME_WAIT. The clients matter where the network
/// namespace is shared: the port may have served another program a moment
/// ago, whose TIME_WAITs are still there.
fn server_sockets(port: u16, clients: &[std::net::SocketAddr]) -> std::io::Result<(usize, usize)> {
    let rows = crate::inspect::table(Path::new("/proc/thread-self/net/tcp"))?;
    let on_port: Vec<_> = rows
        .iter()
        .filter(|r| r.local.port() == port)
        .filter(|r| clients.contains(&r.remote))
        .collect();
    let count = |state| on_port.iter().filter(|r| r.state == state).count();
    Ok((count(State::CloseWait), count(State::TimeWait)))
}

/// [`server_sockets`] once they are `expected`. The kernel prints
/// /proc/net/tcp in pieces while the table changes, so under load, in a
/// shared network namespace, one reading may list a socket twice or miss
/// one: look until a reading agrees, and fail with the last one otherwise.
async fn settled_server_sockets(
    port: u16,
    clients: &[std::net::SocketAddr],
    expected: (usize, usize),
) -> std::io::Result<(usize, usize)> {
    let mut last = None;
    let settled = crate::wait::until_async("the server's sockets in CLOSE_WAIT and TIME_WAIT", DEADLINE, || {
        let now = server_sockets(port, clients)?;
        last = Some(now);
        Ok((now == expected).then_some(now))
    })
    .await;
    settled.map_err(|e| std::io::Error::new(e.kind(), format!("{e}; last seen {last:?}")))
}

pub fn perform(run: &mut Run) -> anyhow::Result<()> {
    block_on(async {
        let listener = run.listen_tokio()?;
        // 120 connections: only which of SYN, FIN and RST each side sent.
        run.bulk();
        run.record(
            Server,
            "graceful server (work 1 s, grace 3 s); 100 clients send a request, 20 stay idle; then the stop",
            "(running)".into(),
        );
        let port = listener.local_addr()?.port();
        let stop = stop_with_load(listener, 0).await?;
        let claim = "the stop arrives while all 100 requests are in progress";
        run.check_eq(claim, stop.in_progress, BUSY);
        let claim = "every client in the middle of a request gets its response (of 100)";
        run.check_eq(claim, stop.responses, BUSY);
        let claim = "the server's summary: 100 responses after the stop, 20 idle connections closed at once, none cut";
        run.check_eq(
            claim,
            stop.summary,
            Summary {
                finished: BUSY,
                idle_closed: IDLE,
                cut: 0,
            },
        );
        let claim = "idle connections do not delay the exit: the server returns once the last response is out, long before its grace period ends";
        run.check_seconds(claim, stop.took, 0.0, 2.0);
        let claim = "and none of the server's sockets is left in CLOSE_WAIT: it closed first, all 120 are in TIME_WAIT (CLOSE_WAIT, TIME_WAIT)";
        run.check_eq(
            claim,
            {
                let (close_wait, time_wait) = settled_server_sockets(port, &stop.clients, (0, BUSY + IDLE)).await?;
                crate::named!("CLOSE_WAIT": close_wait, "TIME_WAIT": time_wait)
            },
            crate::named!("CLOSE_WAIT": 0, "TIME_WAIT": BUSY + IDLE),
        );
        let claim = "the idle clients got no response, only the end of the stream";
        run.check_eq(claim, stop.others_answered, 0);

        // Again, with a client that never finishes its request.
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        run.record(
            Client,
            "second server: the same load, and a client that sends half a request and never the rest",
            String::new(),
        );
        let stop = stop_with_load(listener, 1).await?;
        let claim = "the busy clients still get every response (of 100)";
        run.check_eq(claim, stop.responses, BUSY);
        let claim = "the unfinished request is cut when the grace period runs out";
        run.check_eq(claim, stop.summary.cut, 1);
        let claim = "so the server returns after the grace period (3 s), not before";
        run.check_seconds(
            claim,
            stop.took,
            SETTINGS.grace.mul_f64(0.95).as_secs_f64(),
            (SETTINGS.grace * 2).as_secs_f64(),
        );
        anyhow::Ok(())
    })?
}
