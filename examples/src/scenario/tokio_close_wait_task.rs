//! `tokio-close-wait-task`: a task that waits in `select!` on a channel,
//! and never on its stream, does not see the peer's FIN: the socket stays
//! in CLOSE_WAIT until the task happens to end. Two fixes: read in the
//! `select!` too (`Ok(0)` ends the task), or wait for readiness, read what
//! is there without blocking (only `WouldBlock` clears tokio's readiness:
//! a loop that does not read spins once a byte arrives), and ask
//! `is_read_closed()`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use std::io::Write;

use tokio::io::{AsyncReadExt, Interest};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::observe::{End, State};
use crate::scenario::{block_on, to_tokio, Run, Scenario};
use crate::transcript::Role::{Client, Server};
use crate::transcript::SegmentKind::Fin;

pub const SCENARIO: Scenario = Scenario {
    id: "tokio-close-wait-task",
    title: "tokio: a task parked on a channel keeps its stream in CLOSE_WAIT; reading or readiness notices the FIN",
    chapter: "async-close-wait.md#tokio-close-wait-task",
    alone: false,
    perform,
};

const DEADLINE: Duration = Duration::from_secs(10);

/// The bug: the task sends what the channel brings, and never reads.
async fn waits_on_channel(stream: TcpStream, mut work: mpsc::Receiver<Vec<u8>>) {
    while let Some(bytes) = work.recv().await {
        let _ = stream.try_write(&bytes);
    }
}

/// The first fix: the task reads too; `Ok(0)` ends it.
async fn reads_too(mut stream: TcpStream, mut work: mpsc::Receiver<Vec<u8>>) -> std::io::Result<usize> {
    let mut buf = [0u8; 1024];
    loop {
        tokio::select! {
            bytes = work.recv() => match bytes {
                Some(bytes) => { let _ = stream.try_write(&bytes); }
                None => return Ok(0),
            },
            read = stream.read(&mut buf) => {
                if read? == 0 {
                    return Ok(0); // the peer's FIN: drop the stream
                }
            },
        }
    }
}

/// The second fix: wait for readiness, then read what is there without
/// blocking, which is what clears readiness; `is_read_closed` tells the FIN.
async fn watches_readiness(stream: TcpStream, mut work: mpsc::Receiver<Vec<u8>>) -> std::io::Result<bool> {
    let mut buf = [0u8; 1024];
    loop {
        tokio::select! {
            bytes = work.recv() => match bytes {
                Some(bytes) => { let _ = stream.try_write(&bytes); }
                None => return Ok(false),
            },
            ready = stream.ready(Interest::READABLE) => {
                if ready?.is_read_closed() {
                    return Ok(true);
                }
                // Readiness is a hint: read until WouldBlock, or it stays set.
                match stream.try_read(&mut buf) {
                    Ok(0) => return Ok(true),
                    Ok(_) => {} // bytes the protocol does not expect: discarded
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            },
        }
    }
}

/// Runs [`watches_readiness`] on `stream` on a runtime of its own, on a
/// thread, beside a task that adds one to `ticks` every 10 ms.
fn beside_a_ticker(
    stream: std::net::TcpStream,
    ticks: Arc<AtomicU64>,
) -> std::io::Result<std::thread::JoinHandle<std::io::Result<bool>>> {
    std::thread::Builder::new().name("readiness".into()).spawn(move || {
        block_on(async move {
            tokio::spawn(async move {
                let mut every = tokio::time::interval(Duration::from_millis(10));
                loop {
                    every.tick().await;
                    ticks.fetch_add(1, Ordering::SeqCst);
                }
            });
            let (_work, inbox) = mpsc::channel(1);
            watches_readiness(to_tokio(stream)?, inbox).await
        })?
    })
}

pub fn perform(run: &mut Run) -> anyhow::Result<()> {
    block_on(async {
        let (client, server) = run.connect_tokio()?;
        let (work, inbox) = mpsc::channel(1);
        let task = tokio::spawn(waits_on_channel(server, inbox));
        run.record(
            Server,
            "tokio::spawn(task: select! on a channel, never reads)",
            String::new(),
        );
        tokio::task::yield_now().await; // the task starts, and waits on its channel
        run.drop(Client, "drop(stream)", client);
        let claim = "the task never reads: the server's socket stays CLOSE_WAIT, the client's FIN_WAIT_2";
        run.expect_states(claim, Some(State::FinWait2), Some(State::CloseWait))?;
        let claim = "the client's FIN has arrived, and no FIN left the server while the task waited";
        run.check_segments(claim, &[Client.sent(Fin, 1), Server.sent(Fin, 0)])?;
        run.drop(Server, "drop(work): the channel closes, the task ends", work);
        tokio::time::timeout(DEADLINE, task).await??;
        let claim = "only the task's end drops the stream: client TIME_WAIT, server gone";
        run.expect_states(claim, Some(State::TimeWait), None)?;
        run.wait_fin_acked(Server)?;

        // The first fix, on a second connection.
        let (client, server) = crate::pair()?;
        let server_end = End::of(&server)?;
        let (_work, inbox) = mpsc::channel(1);
        let task = tokio::spawn(reads_too(to_tokio(server)?, inbox));
        tokio::task::yield_now().await; // the task starts, and waits
        let claim = "the task that also reads is waiting: not finished";
        run.check_eq(claim, task.is_finished(), false);
        drop(client);
        let ended = tokio::time::timeout(DEADLINE, task).await??;
        run.call(
            Server,
            "second connection: the task that also reads in its select!",
            &ended,
        );
        run.check_ok("a task that reads in its select! gets Ok(0) and ends", &ended, 0);
        server_end.wait_gone()?;
        let claim = "and the stream it dropped closed the connection: the server's socket is gone";
        run.check_eq(claim, server_end.state()?, None);

        // The second fix, on a third connection, on a runtime of its own
        // with a ticker beside it: a task that spun would starve the
        // ticker, and this thread would still see it.
        let (client, server) = crate::pair()?;
        let ticks = Arc::new(AtomicU64::new(0));
        let task = beside_a_ticker(server, Arc::clone(&ticks))?;
        // A hostile peer: a byte the protocol does not expect, before the
        // FIN. A loop that only awaited readiness would spin from here on.
        run.perform(Client, "third connection: stream.write_all(b\"x\")", || {
            (&client).write_all(b"x")
        })?;
        ticks.store(0, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(300)).await; // the window measured
        let claim = "the task that waits for readiness reads the byte and waits again without spinning: a task ticking every 10 ms on its runtime still ticks (ticks in 300 ms)";
        run.check_at_least(claim, ticks.load(Ordering::SeqCst), 10, "ticks");
        let claim = "the task that waits for readiness is waiting: not finished";
        run.check_eq(claim, task.is_finished(), false);
        drop(client);
        crate::wait::until_async("the task to end", DEADLINE, || Ok(task.is_finished().then_some(()))).await?;
        let noticed = task.join().map_err(|_| anyhow::anyhow!("the task's thread panicked"))?;
        run.call(Server, "third connection: the task that waits for readiness", &noticed);
        let claim = "a task waiting for readiness learns of the FIN without reading: is_read_closed() is true";
        run.check_ok(claim, &noticed, true);
        anyhow::Ok(())
    })?
}
