//! `time-wait`: the side that closes first keeps its socket in TIME_WAIT
//! for 60 seconds (TCP_TIMEWAIT_LEN, a constant of the kernel, not
//! tcp_fin_timeout); the side that closes second keeps nothing. (When both
//! close at once, both keep one: see the book's simultaneous-close test.)

use std::io::Read;
use std::time::Duration;

use crate::observe::{State, TimerKind};
use crate::scenario::{Run, Scenario};
use crate::sockopt::set_tcp_linger2;
use crate::transcript::Role::{Client, Server};

const LINGER2: Duration = Duration::from_secs(20);

pub const SCENARIO: Scenario = Scenario {
    id: "time-wait",
    title: "the side that closes first keeps TIME_WAIT for 60 s, the other keeps nothing",
    chapter: "time-wait.md",
    alone: false,
    perform,
};

pub fn perform(run: &mut Run) -> anyhow::Result<()> {
    let (client, mut server) = run.connect()?;
    let (client_end, _) = run.ends()?;

    // A FIN_WAIT_2 timeout of 20 s, to show that it is not TIME_WAIT's.
    // (Long enough that the orphaned FIN_WAIT_2 cannot expire before the
    // server closes on a loaded machine: it would answer the FIN with RST.)
    set_tcp_linger2(&client, LINGER2)?;
    run.record(Client, "set_tcp_linger2(&stream, 20 s)", "Ok(())".into());
    drop(client);
    run.record(Client, "drop(stream)", String::new());
    run.expect_states(
        "the client's FIN is acknowledged: client FIN_WAIT_2, server CLOSE_WAIT",
        Some(State::FinWait2),
        Some(State::CloseWait),
    )?;
    let eof = server.read(&mut [0u8; 16]);
    run.call(Server, "stream.read(&mut [0; 16])", &eof);
    drop(server);
    run.record(Server, "drop(stream)", String::new());
    run.expect_states(
        "the client, which closed first, keeps TIME_WAIT; the server, which closed second, keeps nothing",
        Some(State::TimeWait),
        None,
    )?;

    let timer = client_end.timer()?;
    run.hold("the client's socket in TIME_WAIT (ss -tano shows its timer)");
    let left = match timer {
        Some((TimerKind::TimeWait, left)) => left,
        _ => Duration::ZERO,
    };
    run.check_seconds(
        "its timer starts at 60 s (TCP_TIMEWAIT_LEN), although TCP_LINGER2 was 20 s: time left",
        left,
        (LINGER2 * 2).as_secs_f64(),
        60.0,
    );
    run.check_packets_eq(
        "the client sent the first FIN, the server the second, and the client the last ACK (FINs by sender, last segment)",
        |p| {
            let sender = |s: &crate::wire::Segment| if s.src == p.client { Client } else { Server };
            let fins: Vec<_> = p.segments.iter().filter(|s| s.flags.fin).map(sender).collect();
            let last = p.segments.last().map(|s| (sender(s), s.flags.to_string()));
            ((fins, last), (vec![Client, Server], Some((Client, "ACK".to_string()))))
        },
    )?;
    Ok(())
}
