//! `idle-timeout-chain`: a client with a connection pool talks to a server
//! through a proxy (a load balancer, a NAT), and each of the three closes
//! connections that stay idle too long. The proxy here, like many load
//! balancers, resets them. When the proxy's idle timeout is shorter than
//! the pool's, the pool hands out a connection the proxy has already reset,
//! and the request fails; ordered pool < proxy < server, the pool always
//! closes first, and every request goes out on a live connection.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use socket2::SockRef;

use crate::observe::End;
use crate::scenario::{Run, Scenario};
use crate::transcript::Role::{Client, Server};

const POOL_IDLE_TOO_LONG: Duration = Duration::from_secs(2);
const PROXY_IDLE: Duration = Duration::from_secs(1);
const SERVER_IDLE: Duration = Duration::from_secs(3);
const POOL_IDLE: Duration = Duration::from_millis(200);
/// The connections the scenario makes: one in the wrong order, two in the right.
const CONNECTIONS: usize = 3;

pub const SCENARIO: Scenario = Scenario {
    id: "idle-timeout-chain",
    title: "idle timeouts through a proxy: a pool that outlives the proxy's timeout sends into a reset connection",
    chapter: "refuse-to-die.md#idle-timeout-chain",
    alone: false,
    perform,
};

pub fn perform(run: &mut Run) -> anyhow::Result<()> {
    let upstream = TcpListener::bind("127.0.0.1:0")?;
    let upstream_addr = upstream.local_addr()?;
    let server = thread::spawn(move || serve(&upstream));
    let front = run.listen()?;
    // Three connections: only which of SYN, FIN and RST each side sent.
    run.bulk();
    let proxy = thread::spawn(move || relay(&front, upstream_addr));
    run.record(
        Server,
        "proxy (idle timeout 1 s: then it resets both sides) in front of a server (idle timeout 3 s)",
        "listening".into(),
    );
    let proxy_addr = run.server_addr()?;

    // The wrong order: the pool keeps idle connections for 2 s, longer than the proxy's 1 s.
    let mut pooled = TcpStream::connect(proxy_addr)?;
    run.set_client(pooled.local_addr()?);
    let first = run.perform(Client, "pool (idle timeout 2 s): request on a new connection", || {
        request(&mut pooled)
    });
    let claim = "the first request through the proxy (idle timeout 1 s) to the server (3 s) gets its response";
    run.check_ok(claim, &first, 3);
    let idle = Instant::now();
    End::of(&pooled)?.wait_gone()?;
    let claim = "the proxy resets the connection once it has been idle for the proxy's timeout (1 s)";
    run.check_timer(claim, idle.elapsed(), PROXY_IDLE, 4);
    run.expect_states("the RST removes the client's socket", None, None)?;
    anyhow::ensure!(
        idle.elapsed() < POOL_IDLE_TOO_LONG,
        "idle longer than the pool's timeout"
    );
    let reused = pooled.write(b"GET\n");
    run.call(
        Client,
        "pool: the connection has been idle less than 2 s, reuse it: write",
        &reused,
    );
    let claim =
        "the pool (idle timeout 2 s) reuses it, and the request fails with ErrorKind::ConnectionReset (os error 104)";
    run.check_err(claim, &reused, ErrorKind::ConnectionReset, libc::ECONNRESET);
    let reused_addr = pooled.local_addr()?;
    run.check_packets_eq("on the wire: the proxy sent the RST, and the client never a FIN", |p| {
        // (from(Client) is this connection: the run's client.)
        let rst = p.from(Server).filter(|s| s.dst == reused_addr && s.flags.rst).count();
        let fin = p.from(Client).filter(|s| s.flags.fin).count();
        (
            crate::named!("proxy RSTs": rst, "client FINs": fin),
            crate::named!("proxy RSTs": 1, "client FINs": 0),
        )
    })?;
    drop(pooled);

    // The right order: the pool's 0.2 s is the shortest.
    let mut pooled = TcpStream::connect(proxy_addr)?;
    run.perform(Client, "pool (idle timeout 0.2 s): request on a new connection", || {
        request(&mut pooled)
    })?;
    pooled.set_read_timeout(Some(POOL_IDLE))?;
    let idle = pooled.read(&mut [0; 8]);
    run.call(Client, "pool: watch the idle connection for 0.2 s (read)", &idle);
    let claim =
        "the pool's idle timeout (0.2 s) runs out first, nothing closed under it: ErrorKind::WouldBlock (os error 11)";
    run.check_err(claim, &idle, ErrorKind::WouldBlock, libc::EAGAIN);
    let retired = pooled.local_addr()?;
    drop(pooled);
    // The proxy answers with its own FIN in its own time: the check waits
    // for both, so that the next connection's handshake comes after them.
    let claim =
        "the retired connection ends with two FINs, the pool's and then the proxy's (senders of its FINs, in order)";
    run.check_packets_eq(claim, |p| {
        let senders: Vec<&str> = p
            .segments
            .iter()
            .filter(|s| s.flags.fin && (s.src == retired || s.dst == retired))
            .map(|s| if s.src == retired { "pool" } else { "proxy" })
            .collect();
        (senders, vec!["pool", "proxy"])
    })?;
    run.record(Client, "pool: drop(stream), the idle connection retired", String::new());
    let mut fresh = TcpStream::connect(proxy_addr)?;
    let next = run.perform(Client, "pool: request on a new connection", || request(&mut fresh));
    let claim = "the next request goes out on a new connection and gets its response";
    run.check_ok(claim, &next, 3);
    let claim = "on the wire: the pool's FIN closed the retired connection, and no RST but the proxy's first (FINs from it, RSTs in all)";
    run.check_packets_eq(claim, |p| {
        let fin = p
            .segments
            .iter()
            .filter(|s| s.src == retired && s.dst == proxy_addr && s.flags.fin)
            .count();
        let rst = p.segments.iter().filter(|s| s.flags.rst).count();
        (
            crate::named!("FINs from it": fin, "RSTs in all": rst),
            crate::named!("FINs from it": 1, "RSTs in all": 1),
        )
    })?;
    drop(fresh);
    let served = proxy.join().map_err(|_| anyhow::anyhow!("the proxy panicked"))?;
    let answered = server.join().map_err(|_| anyhow::anyhow!("the server panicked"))?;
    served?;
    answered?;
    Ok(())
}

/// Sends one request and reads its response; the response's length.
fn request(stream: &mut TcpStream) -> io::Result<usize> {
    stream.write_all(b"GET\n")?;
    stream.read(&mut [0; 64])
}

/// The server: answers each request with "OK\n"; closes a connection idle
/// for its timeout, or closed by the proxy.
fn serve(listener: &TcpListener) -> io::Result<()> {
    for _ in 0..CONNECTIONS {
        let (mut stream, _) = listener.accept()?;
        stream.set_read_timeout(Some(SERVER_IDLE))?;
        let mut buf = [0; 64];
        while let Ok(1..) = stream.read(&mut buf) {
            stream.write_all(b"OK\n")?;
        }
    }
    Ok(())
}

/// The proxy: for each client, a connection to the server; relays one
/// request and one response at a time. A client connection idle for the
/// proxy's timeout is reset, both sides, as many load balancers do.
fn relay(listener: &TcpListener, upstream: SocketAddr) -> io::Result<()> {
    for _ in 0..CONNECTIONS {
        let (mut client, _) = listener.accept()?;
        let mut server = TcpStream::connect(upstream)?;
        client.set_read_timeout(Some(PROXY_IDLE))?;
        let mut buf = [0; 64];
        loop {
            match client.read(&mut buf) {
                Ok(0) => break, // the client closed: so does the proxy
                Ok(n) => {
                    server.write_all(&buf[..n])?;
                    let m = server.read(&mut buf)?;
                    client.write_all(&buf[..m])?;
                }
                Err(e) => {
                    // Only the idle timeout ends the relay; any other error is a failure.
                    if e.kind() != ErrorKind::WouldBlock {
                        return Err(e);
                    }
                    for side in [&client, &server] {
                        SockRef::from(side).set_linger(Some(Duration::ZERO))?;
                    }
                    break;
                }
            }
        }
    }
    Ok(())
}
