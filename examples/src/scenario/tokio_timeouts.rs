//! `tokio-timeouts`: `tokio::time::timeout` around a read or a write
//! cancels the future, not the connection. A read that timed out leaves
//! the connection open, and a later read gets what arrives. A write that
//! timed out may have handed part of its bytes to the kernel, which sends
//! them anyway: the stream is at an unknown point, and the program should
//! drop it.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::observe::State;
use crate::scenario::{block_on, Run, Scenario};
use crate::transcript::Role::{Client, Server};

pub const SCENARIO: Scenario = Scenario {
    id: "tokio-timeouts",
    title: "tokio: a timed-out read leaves the connection open; a timed-out write leaves part of its bytes in flight",
    chapter: "async-linger-timeouts.md#tokio-timeouts",
    alone: false,
    perform,
};

const TIMEOUT: Duration = Duration::from_millis(100);

/// What a `timeout` returned, in words: the future's result or "elapsed".
fn outcome<T>(result: &Result<std::io::Result<T>, tokio::time::error::Elapsed>) -> &'static str {
    match result {
        Ok(Ok(_)) => "completed",
        Ok(Err(_)) => "failed",
        Err(_) => "elapsed",
    }
}

pub fn perform(run: &mut Run) -> anyhow::Result<()> {
    block_on(async {
        let (mut client, mut server) = run.connect_tokio()?;
        let (client_end, _) = run.ends()?;
        // Data segments are cut differently from run to run.
        run.bulk();
        let mut buf = [0u8; 64];
        let timed_out = tokio::time::timeout(TIMEOUT, client.read(&mut buf)).await;
        run.record(
            Client,
            "tokio::time::timeout(100 ms, stream.read(&mut buf)).await",
            outcome(&timed_out).into(),
        );
        let claim = "nothing arrives within 100 ms: the timeout elapses";
        run.check_eq(claim, outcome(&timed_out), "elapsed");
        let claim = "the connection is untouched: both ends still ESTABLISHED";
        run.expect_states(claim, Some(State::Established), Some(State::Established))?;
        server.write_all(b"late").await?;
        run.record_ok(Server, "stream.write_all(b\"late\").await");
        let later = client.read(&mut buf).await;
        run.call(Client, "stream.read(&mut buf).await", &later);
        run.check_ok("a later read gets what arrives", &later, 4);

        // The server does not read: a big write cannot finish.
        let big = vec![b'w'; 64 << 20];
        let cancelled = tokio::time::timeout(TIMEOUT, client.write_all(&big)).await;
        run.record(
            Client,
            "tokio::time::timeout(100 ms, stream.write_all(&[..; 64 MiB])).await",
            outcome(&cancelled).into(),
        );
        let claim = "the write cannot finish: the timeout elapses";
        run.check_eq(claim, outcome(&cancelled), "elapsed");
        let queued = client_end.view()?.map_or(0, |v| u64::from(v.send_queue));
        let claim = "part of the cancelled write is in the kernel's send queue, and will be sent anyway";
        run.check_at_least(claim, queued, 1, "bytes");
        anyhow::Ok(())
    })?
}
