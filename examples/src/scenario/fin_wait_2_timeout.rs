//! `fin-wait-2-timeout`: a socket whose owner closed it waits in FIN_WAIT_2
//! for the peer's FIN only so long: tcp_fin_timeout (60 s by default), or
//! the socket's TCP_LINGER2, here 1 s. A socket whose owner only called
//! `shutdown(Write)` and still holds it waits for ever. The peer, left in
//! CLOSE_WAIT, finds out only when it finally sends: an RST answers.

use std::io::{ErrorKind, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use crate::observe::{End, State};
use crate::scenario::Run;
use crate::sockopt::set_tcp_linger2;
use crate::transcript::Role::{Client, Server};

const LINGER2: Duration = Duration::from_secs(1);

pub fn perform(run: &mut Run) -> anyhow::Result<()> {
    let fin_timeout = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_fin_timeout")?;
    run.measured(
        "net.ipv4.tcp_fin_timeout (the default)",
        format!("{} s", fin_timeout.trim()),
    );
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
    run.measured(
        "time the orphan stayed in FIN_WAIT_2",
        format!("{:.1} s", took.as_secs_f64()),
    );
    run.check(
        "the orphan is dropped after TCP_LINGER2 (1 s) without a FIN from the server",
        took >= LINGER2.mul_f64(0.9) && took < LINGER2 * 4,
        format!("{took:?}"),
    );
    let held_state = held_end.state()?;
    run.check(
        "the socket still held after shutdown(Write) stays in FIN_WAIT_2: the timeout is for orphans",
        held_state == Some(State::FinWait2),
        format!("{held_state:?}"),
    );
    run.expect_states(
        "the server, which never closed, is still CLOSE_WAIT",
        None,
        Some(State::CloseWait),
    )?;
    run.check_packets(
        "the orphan left without a word: no RST, no segment after the server's ACK",
        |p| {
            let last_from_client_is_fin = p.from(Client).last().is_some_and(|s| s.flags.fin);
            (
                p.count(Client, |s| s.flags.rst) == 0 && last_from_client_is_fin,
                p.summary(),
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
    run.check_packets("the answer to the server's data is an RST", |p| {
        (p.count(Client, |s| s.flags.rst) == 1, p.summary())
    })?;
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
