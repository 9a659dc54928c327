//! `syn-meets-old-socket`: a new connection from a port whose old
//! connection the server still holds. The client's kernel has forgotten
//! the old one (its RST was lost, or its orphan expired); the server's
//! socket is in FIN_WAIT_2 (held, or orphaned) or CLOSE_WAIT. The old
//! socket answers the new SYN with an ACK, not a SYN ACK (RFC 5961's
//! challenge ACK); the client answers that with an RST, which ends the old
//! socket, and sends its SYN again at once; `connect` succeeds within
//! milliseconds. (Cloudflare's post of 2016, "This is strictly a violation
//! of the TCP specification", saw such a `connect` time out; the kernel has
//! since answered differently.)

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};

use crate::observe::{End, State};
use crate::scenario::{Run, Scenario};
use crate::sockopt::{discard_everything, hear_again};
use crate::transcript::Role::{Client, Server};

pub const SCENARIO: Scenario = Scenario {
    id: "syn-meets-old-socket",
    title: "a SYN on a 4-tuple the server still holds (FIN_WAIT_2, CLOSE_WAIT): an ACK, the client's RST, the SYN again at once",
    chapter: "fin-wait-2.md#syn-meets-old-socket",
    alone: false,
    perform,
};

/// The next connection of the listener's queue, or an error after the
/// deadline (never a wait for ever on a connection that did not come):
/// accept honours the socket's receive timeout.
fn accept(listener: &std::net::TcpListener) -> std::io::Result<std::net::TcpStream> {
    socket2::SockRef::from(listener).set_read_timeout(Some(crate::wait::DEFAULT_DEADLINE))?;
    listener.accept().map(|(stream, _)| stream)
}

/// A client socket that may bind a port another socket has used.
fn client_socket(port: u16) -> std::io::Result<Socket> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&SocketAddr::from(([127, 0, 0, 1], port)).into())?;
    Ok(socket)
}

/// Connects a new socket from `client`'s port to the server again, and
/// checks what the old socket at the server made of its SYN: an ACK (RFC
/// 5961's challenge ACK), which the client answers with an RST that ends
/// the old socket, then sends its SYN again at once (on an ACK it cannot
/// accept, `tcp_rcv_synsent_state_process` resets the SYN's timer to
/// TCP_TIMEOUT_MIN) and connects. Returns the new socket.
fn reconnect(
    run: &mut Run,
    which: &str,
    given: &str,
    client: SocketAddr,
    server: SocketAddr,
) -> anyhow::Result<Socket> {
    let since = run.segment_count()?;
    let new = client_socket(client.port())?;
    let start = Instant::now();
    let call = format!("{which}: a new socket, the same port: connect(server)");
    let connect = run.perform(Client, &call, || new.connect(&server.into()));
    let took = start.elapsed();
    run.check_ok(
        &format!("{which}: connect on the old 4-tuple succeeds{given}"),
        &connect,
        (),
    );
    run.check_seconds(
        &format!("{which}: the client sends its SYN again at once, not after the 1 s retransmission timeout: connect returns within 0.5 s"),
        took,
        0.0,
        0.5,
    );
    run.check_packets_eq(
        &format!("{which}: the old socket answered the SYN with an ACK, not a SYN ACK; the client answered it with an RST; the SYN sent again got the SYN ACK (senders and flags, from the new connect on)"),
        |p| {
            let sender = |s: &crate::wire::Segment| if s.src == client { Client } else { Server };
            let seen: Vec<_> = p.segments[since.min(p.segments.len())..]
                .iter()
                .filter(|s| s.src == client || s.dst == client)
                .map(|s| format!("{} {}", sender(s), s.flags))
                .collect();
            let expected = [
                (Client, "SYN"),
                (Server, "ACK"),
                (Client, "RST"),
                (Client, "SYN"),
                (Server, "SYN ACK"),
                (Client, "ACK"),
            ]
            .map(|(who, flags)| format!("{who} {flags}"))
            .to_vec();
            (seen, expected)
        },
    )?;
    Ok(new)
}

/// Closes the new connection, the client first, the server once it has
/// acknowledged the client's FIN: its ACK is then always a segment of its
/// own, where a server quick to close would fold it into its FIN.
fn close_new(run: &mut Run, new: Socket, fresh: std::net::TcpStream) -> anyhow::Result<()> {
    let client = new.local_addr()?.as_socket().expect("an IPv4 address");
    drop(new);
    run.wait_packets("the server's ACK of the new connection's FIN", |p| {
        let past_fin = p
            .segments
            .iter()
            .filter(|s| s.src == client)
            .rfind(|s| s.flags.fin)
            .map(|s| s.seq.wrapping_add(s.len + 1));
        p.segments.iter().any(|s| s.dst == client && Some(s.ack) == past_fin)
    })?;
    drop(fresh);
    Ok(())
}

/// A connection from a port bound with SO_REUSEADDR, accepted: the old
/// connection, as (client socket, its address, the server's stream, the
/// server's end).
fn old_connection(listener: &std::net::TcpListener) -> anyhow::Result<(Socket, SocketAddr, std::net::TcpStream, End)> {
    let server_addr = listener.local_addr()?;
    let old = client_socket(0)?;
    let client_addr = old
        .local_addr()?
        .as_socket()
        .ok_or_else(|| anyhow::anyhow!("no IPv4 address"))?;
    old.connect(&server_addr.into())?;
    let server = accept(listener)?;
    let server_end = End {
        local: server_addr,
        remote: client_addr,
    };
    Ok((old, client_addr, server, server_end))
}

pub fn perform(run: &mut Run) -> anyhow::Result<()> {
    run.require_private_network()?;
    let listener = run.listen()?;
    let server_addr = listener.local_addr()?;
    let (old, client_addr, mut server, _) = old_connection(&listener)?;
    run.set_client(client_addr);
    run.record_ok(Client, "connect(server), from a port bound with SO_REUSEADDR");
    run.record(Server, "listener.accept()", "Ok((stream, client))".into());

    server.shutdown(Shutdown::Write)?;
    run.record_ok(Server, "stream.shutdown(Shutdown::Write), the stream kept");
    let claim = "the server closed first and keeps its socket: server FIN_WAIT_2, client CLOSE_WAIT";
    run.expect_states(claim, Some(State::CloseWait), Some(State::FinWait2))?;

    // The client vanishes, and the server never hears of it: its RST is
    // discarded by a filter on the server's socket.
    discard_everything(&server)?;
    old.set_linger(Some(Duration::ZERO))?;
    drop(old);
    run.record(
        Client,
        "set_linger(Some(0)), drop: the RST is discarded before the server's socket sees it",
        String::new(),
    );
    let claim = "the client's kernel has forgotten the connection; the server's socket is still FIN_WAIT_2";
    run.expect_states(claim, None, Some(State::FinWait2))?;
    hear_again(&server)?;
    run.record_ok(Server, "the filter removed: the server's socket hears again");

    let new = reconnect(run, "held FIN_WAIT_2", "", client_addr, server_addr)?;
    let read = server.read(&mut [0u8; 16]);
    run.call(Server, "the old stream: stream.read(&mut [0; 16])", &read);
    let claim =
        "the RST ended the old socket: its program's next read fails with ErrorKind::ConnectionReset (os error 104)";
    run.check_err(claim, &read, ErrorKind::ConnectionReset, libc::ECONNRESET);
    let fresh = accept(&listener)?;
    run.record(
        Server,
        "listener.accept()",
        "Ok((stream, client)): the new connection".into(),
    );
    let claim = "the new connection is ESTABLISHED on the same 4-tuple";
    run.expect_states(claim, Some(State::Established), Some(State::Established))?;
    close_new(run, new, fresh)?;
    orphan(run, &listener)
}

/// The same with the server's socket orphaned (dropped after its FIN was
/// acknowledged): the kernel keeps it as a small timewait socket in
/// FIN_WAIT_2. It answers a SYN inside its receive window with an RST
/// (`tcp_timewait_state_process`: connect then fails, refused), and one
/// beyond it with an ACK. A new connection's first sequence number moves
/// on with time (one step every 64 ns), so which it gets depends on how
/// long ago the old connection began; a small receive window makes the
/// window one the new SYN has always passed.
fn orphan(run: &mut Run, listener: &std::net::TcpListener) -> anyhow::Result<()> {
    let server_addr = listener.local_addr()?;
    // Inherited by the connections accepted from now on.
    socket2::SockRef::from(listener).set_recv_buffer_size(1)?;
    run.record_ok(
        Server,
        "SockRef::from(&listener).set_recv_buffer_size(1): a small receive window",
    );
    let (old, client_addr, server, server_end) = old_connection(listener)?;
    server.shutdown(Shutdown::Write)?;
    server_end.wait_for(State::FinWait2)?;
    discard_everything(&server)?;
    old.set_linger(Some(Duration::ZERO))?;
    drop(old);
    server_end.peer().wait_gone()?;
    hear_again(&server)?;
    drop(server);
    server_end.wait_for(State::FinWait2)?;
    run.record(
        Server,
        "second connection: the same, but the server drops its stream (an orphan in FIN_WAIT_2)",
        String::new(),
    );
    let new = reconnect(
        run,
        "orphaned FIN_WAIT_2",
        ", with the SYN beyond the orphan's receive window",
        client_addr,
        server_addr,
    )?;
    let fresh = accept(listener)?;
    close_new(run, new, fresh)?;
    close_wait(run, listener)
}

/// The case of the post by Cloudflare: the client closed first, its
/// orphan in FIN_WAIT_2 expired (TCP_LINGER2, 1 s), and the server never
/// closed: its socket is in CLOSE_WAIT when the client's port is used
/// again.
fn close_wait(run: &mut Run, listener: &std::net::TcpListener) -> anyhow::Result<()> {
    let server_addr = listener.local_addr()?;
    let (old, client_addr, mut server, server_end) = old_connection(listener)?;
    crate::sockopt::set_int(&old, libc::IPPROTO_TCP, libc::TCP_LINGER2, 1)?;
    old.shutdown(Shutdown::Write)?;
    server_end.peer().wait_for(State::FinWait2)?;
    drop(old);
    server_end.peer().wait_gone()?;
    run.record(
        Client,
        "third connection: TCP_LINGER2 1 s, shutdown(Write), drop: the orphan expires; the server never closes",
        String::new(),
    );
    let claim = "third connection: the client's orphan has expired, the server's socket is still CLOSE_WAIT";
    run.check_eq(claim, server_end.state()?, Some(State::CloseWait));
    let new = reconnect(run, "CLOSE_WAIT", "", client_addr, server_addr)?;
    let write = server.write(b"late");
    run.call(
        Server,
        "third connection, the old stream: stream.write(b\"late\")",
        &write,
    );
    let claim = "CLOSE_WAIT: the RST ended the old socket: its program's next write fails with ErrorKind::BrokenPipe (os error 32)";
    run.check_err(claim, &write, ErrorKind::BrokenPipe, libc::EPIPE);
    let fresh = accept(listener)?;
    close_new(run, new, fresh)?;
    Ok(())
}
