//! The kernel's view of a TCP socket: its state and its queues, read from
//! the kernel's own socket table, the table `ss` and `netstat` read too:
//! one socket at a time through sock_diag ([`crate::sockdiag`]), or, where
//! the kernel offers no sock_diag for TCP, from `/proc/net/tcp` and
//! `/proc/net/tcp6` through the `procfs` crate.
//!
//! A socket is named by its two addresses, so either end of a connection can
//! be looked up, even after its owner dropped it (an orphaned socket in
//! FIN_WAIT_2 or TIME_WAIT has no descriptor left but is still in the table).

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use procfs::net::TcpState;
use serde::{Deserialize, Serialize};

use crate::wait;

/// A TCP state as RFC 9293 names it, with underscores for its hyphens
/// (`FIN_WAIT_1`; netstat writes `FIN_WAIT1`, `ss` `FIN-WAIT-1`): so it
/// is shown, and so it is written in JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum State {
    Established,
    SynSent,
    SynRecv,
    #[serde(rename = "FIN_WAIT_1")]
    FinWait1,
    #[serde(rename = "FIN_WAIT_2")]
    FinWait2,
    TimeWait,
    Close,
    CloseWait,
    LastAck,
    Listen,
    Closing,
    NewSynRecv,
}

impl State {
    /// The name as netstat and the RFC print it: `CLOSE_WAIT`.
    pub fn name(self) -> &'static str {
        match self {
            State::Established => "ESTABLISHED",
            State::SynSent => "SYN_SENT",
            State::SynRecv => "SYN_RECV",
            State::FinWait1 => "FIN_WAIT_1",
            State::FinWait2 => "FIN_WAIT_2",
            State::TimeWait => "TIME_WAIT",
            State::Close => "CLOSE",
            State::CloseWait => "CLOSE_WAIT",
            State::LastAck => "LAST_ACK",
            State::Listen => "LISTEN",
            State::Closing => "CLOSING",
            State::NewSynRecv => "NEW_SYN_RECV",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl State {
    /// A state as the kernel numbers it (`TCP_ESTABLISHED` is 1, ...).
    pub fn from_kernel(number: u8) -> State {
        TcpState::from_u8(number).map_or(State::Close, State::from)
    }
}

/// Whether the kernel answers sock_diag lookups for TCP (the `tcp_diag`
/// module): asked once, of a listener made for the purpose, since a kernel
/// without it answers "no such socket" for every socket.
fn sock_diag_works() -> bool {
    static WORKS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if let Some(works) = WORKS.get() {
        return *works;
    }
    // No listener (no loopback address in this namespace yet): ask again later.
    let Ok(listener) = std::net::TcpListener::bind("127.0.0.1:0") else {
        return false;
    };
    let anywhere = SocketAddr::from(([0, 0, 0, 0], 0));
    let found = listener
        .local_addr()
        .and_then(|addr| crate::sockdiag::lookup(addr, anywhere))
        .is_ok_and(|row| row.is_some());
    *WORKS.get_or_init(|| found)
}

impl From<TcpState> for State {
    fn from(state: TcpState) -> Self {
        match state {
            TcpState::Established => State::Established,
            TcpState::SynSent => State::SynSent,
            TcpState::SynRecv => State::SynRecv,
            TcpState::FinWait1 => State::FinWait1,
            TcpState::FinWait2 => State::FinWait2,
            TcpState::TimeWait => State::TimeWait,
            TcpState::Close => State::Close,
            TcpState::CloseWait => State::CloseWait,
            TcpState::LastAck => State::LastAck,
            TcpState::Listen => State::Listen,
            TcpState::Closing => State::Closing,
            TcpState::NewSynRecv => State::NewSynRecv,
        }
    }
}

/// One row of the kernel's socket table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SocketView {
    pub state: State,
    /// Bytes written but not yet acknowledged by the peer (`Send-Q` in `ss`).
    pub send_queue: u32,
    /// Bytes received but not yet read by the owner (`Recv-Q` in `ss`).
    pub recv_queue: u32,
}

/// One end of a TCP connection, named by its local and remote address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct End {
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

impl End {
    /// The end `stream` owns.
    pub fn of(stream: &TcpStream) -> io::Result<End> {
        Ok(End {
            local: stream.local_addr()?,
            remote: stream.peer_addr()?,
        })
    }

    /// The other end of the same connection.
    pub fn peer(self) -> End {
        End {
            local: self.remote,
            remote: self.local,
        }
    }

    /// The kernel's row for this end, or `None` once the kernel has
    /// forgotten the socket.
    pub fn view(self) -> io::Result<Option<SocketView>> {
        if !sock_diag_works() {
            return self.view_in_proc();
        }
        Ok(self.row()?.map(|row| SocketView {
            state: State::from_kernel(row.header.state),
            send_queue: row.header.send_queue,
            recv_queue: row.header.recv_queue,
        }))
    }

    /// This end's row from sock_diag.
    fn row(self) -> io::Result<Option<crate::sockdiag::Row>> {
        let row = crate::sockdiag::lookup(self.local, self.remote)?;
        // The kernel's lookup falls back to a listener on the local port when
        // the connection is gone: that row is not this end.
        let this_end = |id: &netlink_packet_sock_diag::inet::SocketId| {
            id.destination_port == self.remote.port() && id.destination_address == self.remote.ip()
        };
        Ok(row.filter(|row| this_end(&row.header.socket_id)))
    }

    /// The same row, found by reading the whole `/proc/net/tcp` table (what
    /// a kernel without sock_diag for TCP gets; slower).
    pub fn view_in_proc(self) -> io::Result<Option<SocketView>> {
        Ok(socket_table(self.local.is_ipv4())?
            .into_iter()
            .find(|row| {
                row.local_address == self.local
                    && row.remote_address == self.remote
                    && !matches!(row.state, TcpState::Listen)
            })
            .map(|row| SocketView {
                state: row.state.into(),
                send_queue: row.tx_queue,
                recv_queue: row.rx_queue,
            }))
    }

    /// The state of this end, or `None` once the kernel has forgotten it.
    pub fn state(self) -> io::Result<Option<State>> {
        Ok(self.view()?.map(|view| view.state))
    }

    /// Waits until this end is in `state`.
    pub fn wait_for(self, state: State) -> io::Result<()> {
        self.wait_for_within(state, wait::DEFAULT_DEADLINE)
    }

    /// Waits until this end is in `state`, for at most `deadline`.
    pub fn wait_for_within(self, state: State, deadline: Duration) -> io::Result<()> {
        let mut last = None;
        wait::until(&format!("{self} to be {state}"), deadline, || {
            last = self.state()?;
            Ok((last == Some(state)).then_some(()))
        })
        .map_err(|e| io::Error::new(e.kind(), format!("{e}; it is {}", describe(last))))
    }

    /// Waits until the kernel has forgotten this end (no row in the table).
    pub fn wait_gone(self) -> io::Result<()> {
        let mut last = None;
        wait::until(&format!("{self} to leave the table"), wait::DEFAULT_DEADLINE, || {
            last = self.state()?;
            Ok(last.is_none().then_some(()))
        })
        .map_err(|e| io::Error::new(e.kind(), format!("{e}; it is {}", describe(last))))
    }
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}->{}", self.local, self.remote)
    }
}

/// The kernel's TCP socket table (IPv4 or IPv6) of the calling thread's
/// network namespace: `/proc/thread-self/net`, not `/proc/net`, which is
/// the main thread's, so that a scenario run in a thread that entered its
/// own namespace sees its own sockets.
fn socket_table(ipv4: bool) -> io::Result<Vec<procfs::net::TcpNetEntry>> {
    use procfs::FromReadSI;
    let path = if ipv4 {
        "/proc/thread-self/net/tcp"
    } else {
        "/proc/thread-self/net/tcp6"
    };
    procfs::net::TcpNetEntries::from_file(path, procfs::current_system_info())
        .map(|entries| entries.0)
        .map_err(io::Error::other)
}

/// A state, or `gone` for a socket the kernel no longer lists.
pub fn describe(state: Option<State>) -> String {
    state.map_or_else(|| "gone".to_string(), |s| s.name().to_string())
}

/// A counter of the kernel's TCP extension statistics in
/// `/proc/net/netstat`, such as `TCPAbortOnClose` (what `nstat` shows as
/// `TcpExtTCPAbortOnClose`). The counters are for the whole network
/// namespace, so compare a before and an after.
pub fn tcp_ext_counter(name: &str) -> io::Result<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/net/netstat")?;
    // Pairs of lines: "TcpExt: Name1 Name2 ..." then "TcpExt: 1 2 ...".
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        return Err(io::Error::other("no TcpExt lines in /proc/net/netstat"));
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| v.parse().ok())
        .ok_or_else(|| io::Error::other(format!("no counter TcpExt {name} in /proc/net/netstat")))
}

/// A timer the kernel runs on a socket, as `/proc/net/tcp` shows it (and
/// `ss -o` prints as `timer:(...)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimerKind {
    Retransmit,
    /// Keepalive, or the FIN_WAIT_2 timer of a socket with a descriptor.
    Keepalive,
    TimeWait,
    ZeroWindowProbe,
}

impl TimerKind {
    /// A timer as the kernel numbers it in `/proc/net/tcp` and sock_diag.
    pub fn from_kernel(number: u8) -> Option<TimerKind> {
        match number {
            1 => Some(TimerKind::Retransmit),
            2 => Some(TimerKind::Keepalive),
            3 => Some(TimerKind::TimeWait),
            4 => Some(TimerKind::ZeroWindowProbe),
            _ => None,
        }
    }
}

impl End {
    /// The timer running on this end and the time left on it, if any.
    pub fn timer(self) -> io::Result<Option<(TimerKind, Duration)>> {
        if !sock_diag_works() {
            return self.timer_in_proc();
        }
        Ok(self
            .row()?
            .and_then(|row| TimerKind::from_kernel(row.timer).map(|kind| (kind, row.expires))))
    }

    /// Waits until the kernel runs a timer of `kind` on this socket;
    /// returns the time left on it.
    pub fn wait_for_timer(self, kind: TimerKind) -> io::Result<Duration> {
        crate::wait::until(
            &format!("a {kind:?} timer on {self}"),
            crate::wait::DEFAULT_DEADLINE,
            || Ok(self.timer()?.filter(|(k, _)| *k == kind).map(|(_, left)| left)),
        )
    }

    /// The same, from the whole `/proc/net/tcp` table (in 10 ms ticks).
    pub fn timer_in_proc(self) -> io::Result<Option<(TimerKind, Duration)>> {
        let file = if self.local.is_ipv4() { "tcp" } else { "tcp6" };
        let table = std::fs::read_to_string(format!("/proc/thread-self/net/{file}"))?;
        let (local, remote) = (hex_addr(self.local), hex_addr(self.remote));
        for line in table.lines().skip(1) {
            // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 6 || fields[1] != local || fields[2] != remote {
                continue;
            }
            let Some((kind, when)) = fields[5].split_once(':') else {
                continue;
            };
            let ticks = u64::from_str_radix(when, 16).map_err(io::Error::other)?;
            // The kernel prints the time left in USER_HZ ticks (100 a second).
            let left = Duration::from_millis(ticks * 10);
            let kind = u8::from_str_radix(kind, 16).map_err(io::Error::other)?;
            return Ok(TimerKind::from_kernel(kind).map(|kind| (kind, left)));
        }
        Ok(None)
    }
}

/// An address as `/proc/net/tcp` writes it: the IP in the kernel's byte
/// order, 32 bits at a time, then the port, in hexadecimal.
fn hex_addr(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        std::net::IpAddr::V4(ip) => format!("{:08X}", u32::from_ne_bytes(ip.octets())),
        std::net::IpAddr::V6(ip) => ip
            .octets()
            .chunks(4)
            .map(|w| format!("{:08X}", u32::from_ne_bytes([w[0], w[1], w[2], w[3]])))
            .collect(),
    };
    format!("{ip}:{:04X}", addr.port())
}

#[cfg(test)]
mod tests {
    use super::State;

    /// JSON names a state as the lab shows it: `FIN_WAIT_2`, not serde's
    /// `FIN_WAIT2`.
    #[test]
    fn a_state_is_written_in_json_as_it_is_shown() {
        for number in 1..=12 {
            let state = State::from_kernel(number);
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{}\"", state.name()));
            assert_eq!(serde_json::from_str::<State>(&json).unwrap(), state);
        }
    }
}
