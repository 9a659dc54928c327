//! `orphan-fin-wait-1`: a server closes a connection whose peer stopped
//! reading. Its data and FIN cannot leave: the socket lives on, orphaned,
//! in FIN_WAIT_1, probing the zero window, until `tcp_orphan_retries`
//! ends it (0 by default, which the kernel takes as 8: minutes of
//! probing; 1 here, in the scenario's own network namespace).

use std::time::{Duration, Instant};

use socket2::SockRef;

use crate::netns;
use crate::observe::{tcp_ext_counter, State, TimerKind};
use crate::scenario::{Run, Scenario};
use crate::sockopt::fill;
use crate::transcript::Role::Server;
use crate::transcript::SegmentKind::{Fin, Rst};

pub const SCENARIO: Scenario = Scenario {
    id: "orphan-fin-wait-1",
    title: "an orphan in FIN_WAIT_1 facing a zero window: tcp_orphan_retries ends it, silently",
    chapter: "refuse-to-die.md#orphan-fin-wait-1",
    alone: false,
    perform,
};

pub fn perform(run: &mut Run) -> anyhow::Result<()> {
    run.require_private_network()?;
    run.check_kernel_default("tcp_orphan_retries", "0")?;
    netns::sysctl("net/ipv4/tcp_orphan_retries", "1")?;
    run.record(
        Server,
        "sysctl net.ipv4.tcp_orphan_retries=1",
        "(this namespace only)".into(),
    );

    let (client, mut server) = run.connect()?;
    let (_, server_end) = run.ends()?;
    run.bulk();
    fill(&mut server)?;
    run.record(
        Server,
        "stream.write(..) until WouldBlock (non-blocking); the client never reads",
        "Err(WouldBlock)".into(),
    );
    server_end.wait_for_timer(TimerKind::ZeroWindowProbe)?;
    let aborts_before = tcp_ext_counter("TCPAbortOnTimeout")?;
    run.drop(Server, "drop(stream): its data and FIN still queued", server);
    let start = Instant::now();
    let claim = "the server's socket lives on, orphaned, in FIN_WAIT_1; the client is still ESTABLISHED";
    run.expect_states(claim, Some(State::Established), Some(State::FinWait1))?;
    server_end.wait_gone()?;
    let claim = "tcp_orphan_retries=1 ends the orphan after its first probes: gone after";
    run.check_seconds(claim, start.elapsed(), 0.1, 5.0);
    let aborts = tcp_ext_counter("TCPAbortOnTimeout")?.saturating_sub(aborts_before);
    let claim = "the kernel counts it as a timeout: TcpExtTCPAbortOnTimeout goes up by";
    run.check_eq(claim, aborts, 1);
    let claim = "it dies silently: its FIN never left, and no RST either";
    run.check_segments(claim, &[Server.sent(Fin, 0), Server.sent(Rst, 0)])?;
    let claim = "the client, which heard nothing, is still ESTABLISHED; the server's socket is gone";
    run.expect_states(claim, Some(State::Established), None)?;
    SockRef::from(&client).set_linger(Some(Duration::ZERO))?;
    drop(client);
    Ok(())
}
