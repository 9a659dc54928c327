//! `rebind`: restarting a server while its port has sockets in TIME_WAIT.
//! std's `TcpListener::bind` sets SO_REUSEADDR, so it succeeds; a `socket2`
//! socket without `set_reuse_address(true)` gets `AddrInUse`. On the client
//! side, TIME_WAIT sockets hold ephemeral ports: with a narrow port range
//! (in a private network namespace) `connect` fails with `AddrNotAvailable`.

use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};

use socket2::{Domain, SockRef, Socket, Type};

use crate::netns;
use crate::observe::State;
use crate::scenario::{Run, Scenario};
use crate::transcript::outcome;
use crate::transcript::Role::{Client, Server};

pub const SCENARIO: Scenario = Scenario {
    id: "rebind",
    title: "binding a port with TIME_WAIT on it, and running out of client ports",
    chapter: "time-wait.md#rebind",
    alone: false,
    perform,
};

pub fn perform(run: &mut Run) -> anyhow::Result<()> {
    // The port range and tcp_tw_reuse are changed in the scenario's own
    // network namespace, never the machine's.
    run.require_private_network()?;
    restart_server(run)?;
    exhaust_ports(run)
}

/// The server closes first, so TIME_WAIT is on the server's port.
fn restart_server(run: &mut Run) -> anyhow::Result<()> {
    let (mut client, server) = run.connect()?;
    let port = server.local_addr()?.port();
    run.drop(Server, "drop(stream)", server);
    let claim = "the server closes first: server FIN_WAIT_2, client CLOSE_WAIT";
    run.expect_states(claim, Some(State::CloseWait), Some(State::FinWait2))?;
    let eof = client.read(&mut [0u8; 16]);
    run.call(Client, "stream.read(&mut [0; 16])", &eof);
    run.drop(Client, "drop(stream)", client);
    let claim = "the server closed first: its port has a socket in TIME_WAIT";
    run.expect_states(claim, None, Some(State::TimeWait))?;

    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let plain = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    let bound = run.perform(Server, "socket2 Socket::new(..).bind(port)", || {
        plain.bind(&addr.into())
    });
    let claim = "a socket2 socket without SO_REUSEADDR cannot bind the port: ErrorKind::AddrInUse (os error 98)";
    run.check_err(claim, &bound, ErrorKind::AddrInUse, libc::EADDRINUSE);
    drop(plain);

    let reused = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    run.perform(Server, "socket.set_reuse_address(true)", || {
        reused.set_reuse_address(true)
    })?;
    let bound = run.perform(Server, "socket.bind(port) and listen(16)", || {
        reused.bind(&addr.into()).and_then(|()| reused.listen(16))
    });
    run.check_ok("with set_reuse_address(true) it binds and listens", &bound, ());
    drop(reused);

    let std_listener = TcpListener::bind(addr);
    let shown = match &std_listener {
        Ok(_) => "Ok(listener)".to_string(),
        Err(e) => outcome::<()>(Err(e)),
    };
    run.record(Server, "TcpListener::bind(port)", shown);
    let reuse = std_listener
        .as_ref()
        .ok()
        .map(|l| SockRef::from(l).reuse_address())
        .transpose()?;
    let claim = "std's TcpListener::bind succeeds: it sets SO_REUSEADDR itself (the option on its socket)";
    run.check_eq(claim, reuse, Some(true));
    Ok(())
}

/// The default of `tcp_tw_reuse_delay` where this kernel has it (Linux
/// 6.14 and later; before, the delay is a fixed second, no sysctl to read).
fn reuse_delay_default(run: &mut Run) -> std::io::Result<()> {
    let claim = "on this kernel a TIME_WAIT port can be reused after net.ipv4.tcp_tw_reuse_delay, 1000 ms by default in a new network namespace (its value)";
    run.check_sysctl(claim, "tcp_tw_reuse_delay", "1000")
}

/// Client-side TIME_WAITs use up a narrow ephemeral port range.
fn exhaust_ports(run: &mut Run) -> anyhow::Result<()> {
    netns::sysctl("net/ipv4/ip_local_port_range", "40000 40003")?;
    run.record(
        Client,
        "sysctl net.ipv4.ip_local_port_range=\"40000 40003\"",
        "(this namespace only)".into(),
    );
    run.check_kernel_default("tcp_tw_reuse", "2")?;
    netns::sysctl("net/ipv4/tcp_tw_reuse", "0")?;
    run.record(Client, "sysctl net.ipv4.tcp_tw_reuse=0", "(this namespace only)".into());

    let listener = TcpListener::bind("127.0.0.1:0")?;
    let mut connected = 0;
    let mut refused = None;
    // Four ports: ten attempts are more than enough.
    for _ in 0..10 {
        match TcpStream::connect(listener.local_addr()?) {
            Ok(stream) => {
                let (mut server, _) = listener.accept()?;
                drop(stream); // the client closes first: its port goes to TIME_WAIT
                let _eof = server.read(&mut [0u8; 1])?; // Ok(0): the server closes second
                connected += 1;
            }
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let Some(refused) = refused else {
        anyhow::bail!("the port range did not run out after {connected} connections");
    };
    let claim = "TIME_WAIT sockets fill the 4 ports of the range: connections made before connect failed";
    run.check_count(claim, connected, 1, 4, "connections");
    let failed: std::io::Result<()> = Err(refused);
    run.call(Client, "TcpStream::connect(server)", &failed);
    let claim =
        "once TIME_WAIT holds every port of the range, connect fails with ErrorKind::AddrNotAvailable (os error 99)";
    run.check_err(claim, &failed, ErrorKind::AddrNotAvailable, libc::EADDRNOTAVAIL);
    // tcp_tw_reuse tells old segments from new by their TCP timestamps.
    run.check_kernel_default("tcp_timestamps", "1")?;
    netns::sysctl("net/ipv4/tcp_tw_reuse", "1")?;
    run.record(Client, "sysctl net.ipv4.tcp_tw_reuse=1", "(this namespace only)".into());
    // A TIME_WAIT socket may be reused once it is tcp_tw_reuse_delay old:
    // 1 s by default, a sysctl since Linux 6.14, a constant before. The lab
    // sets the default, so that the first attempt always finds the ports
    // too young and the retry below always runs.
    reuse_delay_default(run)?;
    if netns::sysctl_if_present("net/ipv4/tcp_tw_reuse_delay", "1000")? {
        run.record(
            Client,
            "sysctl net.ipv4.tcp_tw_reuse_delay=1000 (ms)",
            "(this namespace only)".into(),
        );
    } else {
        run.record(
            Client,
            "sysctl net.ipv4.tcp_tw_reuse_delay",
            "(not on this kernel: a port is reused after 1 s)".into(),
        );
    }
    // The youngest TIME_WAIT is less than 1 s old: try until one is old enough.
    let again = crate::wait::until(
        "a TIME_WAIT port old enough to reuse",
        crate::wait::DEFAULT_DEADLINE,
        || {
            match TcpStream::connect(listener.local_addr()?) {
                Ok(_) => Ok(Some(())),
                // Not yet old enough: try again; anything else is a failure.
                Err(e) => (e.kind() == ErrorKind::AddrNotAvailable).then_some(None).ok_or(e),
            }
        },
    );
    run.call(Client, "TcpStream::connect(server)", &again);
    run.check_ok("with tcp_tw_reuse, connect takes over a port in TIME_WAIT", &again, ());
    Ok(())
}
