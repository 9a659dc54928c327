//! `linger-timeout`: with `SO_LINGER` set to one second and a peer that does
//! not read, `close` blocks the calling thread for the whole second, even on
//! a non-blocking socket. When the time runs out Linux sends no RST: the
//! orphaned socket goes on delivering the queued data, then the FIN. No
//! abort counter moves.

use std::io::Read;
use std::time::{Duration, Instant};

use socket2::SockRef;

use crate::inspect::{counter_moved, thread_counters, COUNTERS};
use crate::observe::State;
use crate::scenario::{Run, Scenario};
use crate::transcript::Expected;
use crate::transcript::Role::{Client, Server};
use crate::transcript::SegmentKind::{Fin, Rst};

pub const SCENARIO: Scenario = Scenario {
    id: "linger-timeout",
    title: "SO_LINGER 1 s and a peer that does not read: close blocks, then the data still goes out",
    chapter: "so-linger.md#linger-timeout",
    alone: false,
    perform,
};

pub fn perform(run: &mut Run) -> anyhow::Result<()> {
    run.bulk();
    let (mut client, mut server) = run.connect()?;

    // Fill the buffers: the server does not read, so the client's writes
    // stop being accepted once its send buffer and the server's receive
    // buffer are full.
    let queued = crate::sockopt::fill(&mut client)?;
    run.record(
        Client,
        "stream.write(..) until WouldBlock (non-blocking)",
        "Err(WouldBlock)".into(),
    );
    run.measured("bytes written", queued);

    run.perform(Client, "SockRef::from(&stream).set_linger(Some(1 s))", || {
        SockRef::from(&client).set_linger(Some(LINGER))
    })?;
    let counters_before = thread_counters()?;
    let start = Instant::now();
    run.drop(Client, "drop(stream)", client);
    let took = start.elapsed();
    let claim = "close blocks until the linger time has passed, although the socket is non-blocking";
    run.check_timer(claim, took, LINGER, 3);
    let claim = "after the timeout the client's socket lives on, orphaned, with its data and FIN queued (FIN_WAIT_1)";
    run.expect_states(claim, Some(State::FinWait1), Some(State::Established))?;
    let claim = "when the time ran out, Linux sent no RST";
    run.check_segments(claim, &[Client.sent(Rst, 0)])?;
    // A linger time that runs out only ends sk_stream_wait_close() in
    // __tcp_close(): no abort, so no abort counter.
    let claim = "when the time ran out, no counter that inspect watches moved: TcpExtTCPAbortOnLinger, TcpExtTCPAbortOnData, TcpExtTCPAbortOnClose, TcpExtTCPAbortOnTimeout, TcpExtTCPAbortOnMemory, TcpExtListenOverflows, TcpOutRsts, TcpEstabResets (how much each moved)";
    let none = crate::transcript::Named(COUNTERS.iter().map(|&name| (name, "0".to_string())).collect());
    let value = format!("{none:?}");
    if !run.not_checked_in_a_shared_namespace(claim, Expected::Equal { value }) {
        let after = thread_counters()?;
        let moved = COUNTERS
            .iter()
            .map(|&name| Ok((name, counter_moved(&counters_before, &after, name)?.to_string())))
            .collect::<std::io::Result<Vec<_>>>()?;
        let moved = crate::transcript::Named(moved);
        run.check_eq(claim, moved, none);
    }
    run.hold("the client closed with linger; its orphaned socket still holds data for the server");

    let mut received = Vec::new();
    let read = server.read_to_end(&mut received);
    let shown = match &read {
        Ok(_) => "Ok(n)".to_string(),
        Err(e) => format!("Err({:?}) \"{e}\"", e.kind()),
    };
    run.record(Server, "stream.read_to_end(&mut received)", shown);
    run.measured("bytes the server received", received.len());
    let claim = "the server, reading at last, receives every byte and then the FIN (read_to_end ends in Ok; bytes written but not received)";
    run.check_eq(
        claim,
        crate::named!(
            "read_to_end": read.map(|_| ()).map_err(|e| e.kind()),
            "bytes not received": queued.abs_diff(received.len()),
        ),
        crate::named!("read_to_end": Ok::<(), std::io::ErrorKind>(()), "bytes not received": 0),
    );
    run.drop(Server, "drop(stream)", server);
    let claim = "then the connection ends as any other: client TIME_WAIT, server gone";
    run.expect_states(claim, Some(State::TimeWait), None)?;
    let claim = "the client's socket sent the FIN after the data, and never an RST";
    run.check_segments(claim, &[Client.sent_at_least(Fin, 1), Client.sent(Rst, 0)])?;
    Ok(())
}

const LINGER: Duration = Duration::from_secs(1);
