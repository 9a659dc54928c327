//! `lingering-close`: a server that answers before reading the whole
//! request and then drops the stream resets the connection and loses
//! responses; one that shuts down its writing side, reads to the client's
//! FIN and only then drops loses none. One exchange is shown step by step,
//! then the experiment counts losses over 1000 exchanges of each kind.

use std::io::{Read, Write};
use std::net::Shutdown;

use crate::experiment::{self, CloseStyle};
use crate::observe::State;
use crate::scenario::Run;
use crate::transcript::Role::{Client, Server};

/// Exchanges per close style in the experiment.
pub const EXCHANGES: usize = 1000;

pub fn perform(run: &mut Run) -> anyhow::Result<()> {
    let (mut client, mut server) = run.connect()?;

    client.write_all(&[b'q'; 4096])?;
    run.record(Client, "stream.write_all(&[b'q'; 4096])", "Ok(())".into());
    let header = server.read(&mut [0u8; 100]);
    run.call(Server, "stream.read(&mut [0; 100])", &header);
    let response = server.write_all(b"response");
    run.call(Server, "stream.write_all(b\"response\")", &response);

    let shutdown = server.shutdown(Shutdown::Write);
    run.call(Server, "stream.shutdown(Shutdown::Write)", &shutdown);
    run.expect_states(
        "shutdown(Write) sends the FIN while 3996 request bytes are still unread: server FIN_WAIT_2, client CLOSE_WAIT",
        Some(State::CloseWait),
        Some(State::FinWait2),
    )?;

    run.hold("the server has sent its FIN and still reads: server FIN_WAIT_2, client CLOSE_WAIT");
    let mut answer = Vec::new();
    let read = client.read_to_end(&mut answer);
    run.call(Client, "stream.read_to_end(&mut answer)", &read);
    run.check(
        "the client reads the whole response, then Ok(0)",
        read.is_ok() && answer == b"response",
        format!("{read:?}, {:?}", String::from_utf8_lossy(&answer)),
    );
    drop(client);
    run.record(Client, "drop(stream)", String::new());

    let mut rest = Vec::new();
    let drained = server.read_to_end(&mut rest);
    run.call(Server, "stream.read_to_end(&mut discard)", &drained);
    run.check_ok(
        "the server reads the unread request to the client's FIN",
        &drained,
        4096 - 100,
    );
    drop(server);
    run.record(Server, "drop(stream)", String::new());
    run.expect_states(
        "the server closed first, so the server keeps TIME_WAIT and the client's socket is gone",
        None,
        Some(State::TimeWait),
    )?;
    run.check_packets("no RST on the wire: both sides closed with a FIN", |p| {
        let ok = p.count(Client, |s| s.flags.rst) + p.count(Server, |s| s.flags.rst) == 0
            && p.count(Client, |s| s.flags.fin) == 1
            && p.count(Server, |s| s.flags.fin) == 1;
        (ok, p.summary())
    })?;

    let naive = experiment::run(EXCHANGES, CloseStyle::Naive)?;
    run.measured(
        "naive close: responses incomplete, reads ended by ConnectionReset",
        format!("{} of {EXCHANGES}, {} of {EXCHANGES}", naive.incomplete, naive.reset),
    );
    run.check(
        "with the naive close (drop, the request body unread) clients lose responses",
        naive.incomplete > 0 || naive.reset > 0,
        format!("{naive:?}"),
    );
    let lingering = experiment::run(EXCHANGES, CloseStyle::Lingering)?;
    run.measured(
        "lingering close: responses incomplete, reads ended by ConnectionReset",
        format!(
            "{} of {EXCHANGES}, {} of {EXCHANGES}",
            lingering.incomplete, lingering.reset
        ),
    );
    run.check(
        "with lingering_close no client loses a byte or sees a reset",
        lingering.incomplete == 0 && lingering.reset == 0,
        format!("{lingering:?}"),
    );
    Ok(())
}
