//! `tokio-zero-linger`: `set_zero_linger` is the deliberate abort: the
//! drop sends an RST, the peer's read fails with `ConnectionReset`, and no
//! TIME_WAIT is left. A non-zero linger is deprecated in tokio: `close`
//! then blocks the runtime's thread until the data is sent or the time
//! runs out, and no other task runs meanwhile.

use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

use crate::scenario::{block_on, to_tokio, Run, Scenario};
use crate::sockopt::fill;
use crate::transcript::Role::{Client, Server};
use crate::transcript::SegmentKind::{Fin, Rst};

pub const SCENARIO: Scenario = Scenario {
    id: "tokio-zero-linger",
    title: "tokio: set_zero_linger aborts with an RST; a non-zero linger blocks the runtime's thread in close",
    chapter: "async-linger-timeouts.md#tokio-zero-linger",
    alone: false,
    perform,
};

const LINGER: Duration = Duration::from_secs(1);

pub fn perform(run: &mut Run) -> anyhow::Result<()> {
    block_on(async {
        let (mut client, server) = run.connect_tokio()?;
        run.perform(Server, "stream.set_zero_linger()", || server.set_zero_linger())?;
        run.drop(Server, "drop(stream)", server);
        run.expect_states("the RST ends both sockets at once: no TIME_WAIT", None, None)?;
        let claim = "the drop sent an RST and no FIN";
        run.check_segments(claim, &[Server.sent(Rst, 1), Server.sent(Fin, 0)])?;
        let read = client.read(&mut [0u8; 16]).await;
        run.call(Client, "stream.read(&mut buf).await", &read);
        let claim = "the client's read fails with ErrorKind::ConnectionReset (os error 104)";
        run.check_err(claim, &read, std::io::ErrorKind::ConnectionReset, libc::ECONNRESET);

        // A non-zero linger, with data the peer does not read, on a second connection.
        let (mut writer, _reader) = crate::pair()?;
        fill(&mut writer)?;
        let writer = to_tokio(writer)?;
        #[allow(deprecated)] // what tokio deprecated, shown on purpose
        writer.set_linger(Some(LINGER))?;
        run.record_ok(
            Server,
            "second connection, its peer not reading: writes until WouldBlock, set_linger(Some(1 s))",
        );
        let ticker = tokio::spawn(async {
            let mut ticks = tokio::time::interval(Duration::from_millis(10));
            let mut longest = Duration::ZERO;
            let mut last = Instant::now();
            for _ in 0..100 {
                ticks.tick().await;
                longest = longest.max(last.elapsed());
                last = Instant::now();
            }
            longest
        });
        tokio::task::yield_now().await; // the ticker starts ticking
        let start = Instant::now();
        run.drop(Server, "drop(stream), inside the runtime", writer);
        let blocked = start.elapsed();
        let claim = "the drop blocks in close until the linger time (1 s) has passed";
        run.check_timer(claim, blocked, LINGER, 3);
        let longest = ticker.await?;
        let claim = "and no other task ran meanwhile: a task ticking every 10 ms missed about a second of ticks";
        run.check_timer(claim, longest, LINGER, 3);
        anyhow::Ok(())
    })?
}
