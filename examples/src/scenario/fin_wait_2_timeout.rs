//! `fin-wait-2-timeout`: a socket whose owner closed it waits in FIN_WAIT_2
//! for the peer's FIN only so long: tcp_fin_timeout (60 s by default), or
//! the socket's TCP_LINGER2, here 1 s. A socket whose owner only called
//! `shutdown(Write)` and still holds it waits for ever. The peer, left in
//! CLOSE_WAIT, finds out only when it finally sends: an RST answers.

use std::io::{ErrorKind, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use crate::observe::{End, State};
use crate::scenario::{Run, Scenario};
use crate::sockopt::set_tcp_linger2;
use crate::transcript::Role::{Client, Server};
use crate::transcript::SegmentCount;
use crate::transcript::SegmentKind::Rst;

const LINGER2: Duration = Duration::from_secs(1);

pub const SCENARIO: Scenario = Scenario {
    id: "fin-wait-2-timeout",
    title: "an orphaned FIN_WAIT_2 expires; one whose owner still holds it does not",
    chapter: "fin-wait-2.md",
    alone: false,
    perform,
};

pub fn perform(run: &mut Run) -> anyhow::Result<()> {
    run.check_kernel_default("tcp_fin_timeout", "60")?;
    let (client, mut server) = run.connect()?;
    let (client_end, _) = run.ends()?;
    // A second connection whose client keeps its descriptor, for comparison.
    let (held, held_peer) = crate::pair()?;
    let held_end = End::of(&held)?;

    set_tcp_linger2(&client, LINGER2)?;
    set_tcp_linger2(&held, LINGER2)?;
    run.record(
        Client,
        "set_tcp_linger2(&stream, 1 s), on this and on a second connection",
        "Ok(())".into(),
    );
    held.shutdown(Shutdown::Write)?;
    run.record(
        Client,
        "second connection: stream.shutdown(Shutdown::Write), descriptor kept",
        "Ok(())".into(),
    );
    // FIN first, close once FIN_WAIT_2 is reached: the orphan then gets the
    // FIN_WAIT_2 timer. (Closed earlier, an orphan whose ACK arrives while
    // close() still runs ends with an RST instead, on a timer of its own.)
    client.shutdown(Shutdown::Write)?;
    run.record(Client, "stream.shutdown(Shutdown::Write)", "Ok(())".into());
    run.expect_states(
        "the client's FIN is acknowledged: client FIN_WAIT_2, server CLOSE_WAIT",
        Some(State::FinWait2),
        Some(State::CloseWait),
    )?;
    drop(client);
    run.record(Client, "drop(stream)", String::new());
    let start = Instant::now();
    run.expect_states(
        "the orphaned client waits in FIN_WAIT_2, the server sits in CLOSE_WAIT",
        Some(State::FinWait2),
        Some(State::CloseWait),
    )?;

    client_end.wait_gone()?;
    let took = start.elapsed();
    run.check_seconds(
        "the orphan is dropped after TCP_LINGER2 (1 s) without a FIN from the server",
        took,
        LINGER2.mul_f64(0.9).as_secs_f64(),
        (LINGER2 * 4).as_secs_f64(),
    );
    let held_state = held_end.state()?;
    run.check_eq(
        "the socket still held after shutdown(Write) stays in FIN_WAIT_2: the timeout is for orphans",
        held_state,
        Some(State::FinWait2),
    );
    run.expect_states(
        "the server, which never closed, is still CLOSE_WAIT",
        None,
        Some(State::CloseWait),
    )?;
    run.check_packets_eq(
        "the orphan left without a word: no RST, no segment after its FIN (client RSTs, client's last segment)",
        |p| {
            let last = p.from(Client).last().map(|s| s.flags.to_string());
            (
                (p.count(Client, |s| s.flags.rst), last),
                (0, Some("FIN ACK".to_string())),
            )
        },
    )?;

    let write = server.write(b"late");
    run.call(Server, "stream.write(b\"late\")", &write);
    run.check_ok(
        "the server's write still succeeds: the kernel takes the bytes",
        &write,
        4,
    );
    run.expect_states("the client's kernel has no socket for them and answers RST", None, None)?;
    run.check_segments(
        "the answer to the server's data is an RST",
        &[SegmentCount::exactly(Client, Rst, 1)],
    )?;
    let again = server.write(b"late");
    run.call(Server, "stream.write(b\"late\")", &again);
    run.check_err(
        "the next write fails with ErrorKind::BrokenPipe (os error 32)",
        &again,
        ErrorKind::BrokenPipe,
        32,
    );
    drop((held, held_peer));
    Ok(())
}
