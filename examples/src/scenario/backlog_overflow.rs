//! `backlog-overflow`: a server that does not accept fast enough. The
//! kernel completes handshakes into the accept queue, which holds the
//! listen backlog plus one; when it is full, Linux drops new SYNs and
//! counts `ListenOverflows`. The client gets no error: its SYN is
//! retransmitted (1 s, then 3 s, 7 s... later) and `connect` just takes
//! longer, or times out.

use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

use socket2::{Domain, Socket, Type};

use crate::observe::{tcp_ext_counter, End, State};
use crate::scenario::{Run, Scenario};
use crate::transcript::Role::{Client, Server};
use crate::wait;

pub const SCENARIO: Scenario = Scenario {
    id: "backlog-overflow",
    title: "a full accept queue: the SYN is dropped and counted, the client only waits longer",
    chapter: "refuse-to-die.md#backlog-overflow",
    alone: false,
    perform,
};

pub fn perform(run: &mut Run) -> anyhow::Result<()> {
    run.require_private_network()?;
    let listener = run.listen_backlog(1)?;
    // Three connections: only which of SYN, FIN and RST each side sent.
    run.bulk();
    run.record_ok(Server, "listen(backlog 1), and no accept yet");
    let server = run.server_addr()?;
    let queued = [TcpStream::connect(server)?, TcpStream::connect(server)?];
    run.record(
        Client,
        "TcpStream::connect(server), twice",
        "Ok(stream), Ok(stream)".into(),
    );
    let states = queued
        .iter()
        .map(|s| End::of(s)?.state())
        .collect::<std::io::Result<Vec<_>>>()?;
    let claim = "the accept queue holds backlog + 1 connections, their handshakes complete: both ESTABLISHED";
    run.check_eq(claim, states, vec![Some(State::Established); 2]);

    let third = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    third.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
    let third_addr = third.local_addr()?.as_socket().expect("an IPv4 address");
    run.set_client(third_addr);
    third.set_nonblocking(true)?;
    let start = Instant::now();
    // Non-blocking: the handshake goes on after the call returns.
    let _in_progress = run.perform(Client, "third client: connect(server) (non-blocking)", || {
        third.connect(&server.into())
    });
    // The scenario's namespace is new: its counter started at 0.
    let dropped = wait::until("a listen overflow", wait::DEFAULT_DEADLINE, || {
        Ok(Some(tcp_ext_counter("ListenOverflows")?).filter(|n| *n > 0))
    })?;
    let claim = "the kernel dropped its SYN and counted it: TcpExtListenOverflows, in this new namespace, counts";
    run.check_at_least(claim, dropped, 1, "drops");
    let claim = "the third client waits in SYN_SENT; the server has no socket for it";
    run.expect_states(claim, Some(State::SynSent), None)?;
    run.check_packets_eq("the server side answered none of its SYNs: no SYN ACK, no RST", |p| {
        let answers = p.from(Server).filter(|s| s.dst == third_addr).count();
        (answers, 0)
    })?;

    let accepted = listener.accept()?;
    run.record(Server, "listener.accept()", "Ok((stream, client))".into());
    End {
        local: third_addr,
        remote: server,
    }
    .wait_for(State::Established)?;
    let claim = "a place is free: the SYN retransmitted 1 s after the first gets in; connected after";
    run.check_seconds(claim, start.elapsed(), 0.9, 5.0);
    let claim = "then it completes like any other: both ends ESTABLISHED, the server's in the accept queue";
    run.expect_states(claim, Some(State::Established), Some(State::Established))?;
    drop((queued, accepted, third, listener));
    Ok(())
}
