//! The kernel's table of TCP sockets through sock_diag netlink (what `ss`
//! uses): one socket's row looked up by its two addresses, a single hash
//! lookup, where reading `/proc/net/tcp` walks every bucket of the
//! machine-wide table (milliseconds, however few sockets the namespace
//! holds); or the whole table of the namespace in a dump.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST};
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, InetResponseHeader, SocketId, StateFlags};
use netlink_packet_sock_diag::{SockDiagMessage, SOCK_DIAG_BY_FAMILY};
use netlink_sys::protocols::NETLINK_SOCK_DIAG;
use netlink_sys::{Socket, SocketAddr as NetlinkAddr};

/// A socket's row: what the crate decodes, and the timer as the kernel
/// sent it (the crate keeps no time for a TIME_WAIT timer).
#[derive(Clone, Debug)]
pub struct Row {
    pub header: InetResponseHeader,
    /// `idiag_timer`: 0 none, 1 retransmit, 2 keepalive, 3 TIME_WAIT, 4 zero
    /// window probe.
    pub timer: u8,
    /// `idiag_expires`: the time left on that timer.
    pub expires: Duration,
}

/// Where `struct inet_diag_msg` puts the timer and its expiry, after the
/// 16-byte netlink header: family, state, timer, retrans, then the 48-byte
/// socket id, then `idiag_expires` in milliseconds.
const TIMER_OFFSET: usize = 16 + 2;
const EXPIRES_OFFSET: usize = 16 + 4 + 48;

/// The kernel's row for the socket with these addresses, in the calling
/// thread's network namespace; `None` when it has none.
pub fn lookup(local: SocketAddr, remote: SocketAddr) -> io::Result<Option<Row>> {
    let socket = Socket::new(NETLINK_SOCK_DIAG)?;
    socket.connect(&NetlinkAddr::new(0, 0))?;
    let mut header = NetlinkHeader::default();
    // A request without NLM_F_DUMP: the kernel looks up this one socket.
    header.flags = NLM_F_REQUEST;
    let mut request = NetlinkMessage::new(
        header,
        SockDiagMessage::InetRequest(InetRequest {
            family: if local.is_ipv4() { AF_INET } else { AF_INET6 },
            protocol: IPPROTO_TCP,
            extensions: ExtensionFlags::empty(),
            states: StateFlags::all(),
            socket_id: SocketId {
                source_port: local.port(),
                destination_port: remote.port(),
                source_address: local.ip(),
                destination_address: remote.ip(),
                interface_id: 0,
                // INET_DIAG_NOCOOKIE: match by addresses alone.
                cookie: [0xff; 8],
            },
        })
        .into(),
    );
    request.finalize();
    let mut bytes = vec![0; request.buffer_len()];
    request.serialize(&mut bytes);
    socket.send(&bytes, 0)?;

    let mut answer = vec![0u8; 8192];
    let len = socket.recv(&mut &mut answer[..], 0)?;
    let reply = NetlinkMessage::<SockDiagMessage>::deserialize(&answer[..len]).map_err(io::Error::other)?;
    match reply.payload {
        NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(response)) => {
            let raw = &answer[..len];
            let expires = raw
                .get(EXPIRES_OFFSET..EXPIRES_OFFSET + 4)
                .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                .ok_or_else(|| io::Error::other("short sock_diag answer"))?;
            Ok(Some(Row {
                header: response.header,
                timer: raw[TIMER_OFFSET],
                expires: Duration::from_millis(expires.into()),
            }))
        }
        NetlinkPayload::Error(e) => match e.code.map(|code| -code.get()) {
            Some(libc::ENOENT) => Ok(None),
            Some(errno) => Err(io::Error::from_raw_os_error(errno)),
            None => Ok(None),
        },
        other => Err(io::Error::other(format!("unexpected sock_diag answer: {other:?}"))),
    }
}

/// One socket of a dump: `struct inet_diag_msg` as the kernel sent it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message {
    /// `idiag_state`, numbered as in `/proc/net/tcp` (for a TIME_WAIT
    /// socket its substate, TIME_WAIT or FIN_WAIT_2, as there).
    pub state: u8,
    /// `idiag_timer`: 0 none, 1 retransmit, 2 keepalive, 3 TIME_WAIT, 4 zero
    /// window probe.
    pub timer: u8,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// `idiag_expires`: the time left on the timer, in milliseconds.
    pub expires_ms: u32,
    /// `idiag_rqueue`: bytes received and not read; for LISTEN, the
    /// connections waiting for `accept`.
    pub rqueue: u32,
    /// `idiag_wqueue`: bytes sent and not acknowledged; for LISTEN, the
    /// backlog's limit.
    pub wqueue: u32,
    /// `idiag_inode`: 0 for a socket no file refers to (an orphan,
    /// TIME_WAIT, a connection not yet accepted).
    pub inode: u32,
}

/// The netlink message types of a dump's answer.
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_HEADER_LEN: usize = 16;
/// `struct inet_diag_msg`: family, state, timer, retrans, the 48-byte
/// socket id (ports, addresses, interface, cookie), then expires,
/// rqueue, wqueue, uid and inode, 32 bits each.
const INET_DIAG_MSG_LEN: usize = 72;

/// Calls `each` with every TCP socket of the calling thread's network
/// namespace, IPv4 then IPv6, in every state: two sock_diag dumps, what
/// `ss -ta` asks for, where `/proc/net/tcp` has the kernel format a line
/// of text for each.
pub fn dump_tcp(mut each: impl FnMut(&Message)) -> io::Result<()> {
    let socket = Socket::new(NETLINK_SOCK_DIAG)?;
    socket.connect(&NetlinkAddr::new(0, 0))?;
    // Larger than any message of a dump (the kernel fills at most 32 KiB).
    let mut answer = vec![0u8; 64 * 1024];
    for family in [AF_INET, AF_INET6] {
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        let mut request = NetlinkMessage::new(
            header,
            SockDiagMessage::InetRequest(InetRequest {
                family,
                protocol: IPPROTO_TCP,
                extensions: ExtensionFlags::empty(),
                states: StateFlags::all(),
                socket_id: if family == AF_INET {
                    SocketId::new_v4()
                } else {
                    SocketId::new_v6()
                },
            })
            .into(),
        );
        request.finalize();
        let mut bytes = vec![0; request.buffer_len()];
        request.serialize(&mut bytes);
        socket.send(&bytes, 0)?;
        'dump: loop {
            let len = socket.recv(&mut &mut answer[..], 0)?;
            if len > answer.len() {
                return Err(io::Error::other("a sock_diag answer larger than its buffer"));
            }
            let mut rest = &answer[..len];
            if rest.is_empty() {
                return Err(io::Error::other("sock_diag dump ended without NLMSG_DONE"));
            }
            while rest.len() >= NLMSG_HEADER_LEN {
                let msg_len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                let kind = u16::from_ne_bytes([rest[4], rest[5]]);
                if msg_len < NLMSG_HEADER_LEN || msg_len > rest.len() {
                    return Err(io::Error::other("a malformed sock_diag answer"));
                }
                let payload = &rest[NLMSG_HEADER_LEN..msg_len];
                match kind {
                    // Both carry an error number, negative, or 0: a dump
                    // that failed (no tcp_diag) ends with it.
                    NLMSG_DONE | NLMSG_ERROR => {
                        let errno = payload
                            .get(..4)
                            .map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                        if errno < 0 {
                            return Err(io::Error::from_raw_os_error(-errno));
                        }
                        if kind == NLMSG_DONE {
                            break 'dump;
                        }
                    }
                    SOCK_DIAG_BY_FAMILY => each(&parse(payload)?),
                    _ => {}
                }
                // Messages are aligned to 4 bytes.
                rest = rest.get((msg_len + 3) & !3..).unwrap_or_default();
            }
        }
    }
    Ok(())
}

/// Decodes a `struct inet_diag_msg`.
fn parse(payload: &[u8]) -> io::Result<Message> {
    let msg: &[u8; INET_DIAG_MSG_LEN] = payload
        .get(..INET_DIAG_MSG_LEN)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| io::Error::other("short sock_diag answer"))?;
    let u32_at = |at: usize| u32::from_ne_bytes([msg[at], msg[at + 1], msg[at + 2], msg[at + 3]]);
    // Ports and addresses are in network byte order.
    let port_at = |at: usize| u16::from_be_bytes([msg[at], msg[at + 1]]);
    let ip_at = |at: usize| -> IpAddr {
        if u16::from(msg[0]) == AF_INET as u16 {
            IpAddr::V4(Ipv4Addr::new(msg[at], msg[at + 1], msg[at + 2], msg[at + 3]))
        } else {
            let mut bytes = [0u8; 16];
            bytes.copy_from_slice(&msg[at..at + 16]);
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
    };
    Ok(Message {
        state: msg[1],
        timer: msg[2],
        local: SocketAddr::new(ip_at(8), port_at(4)),
        remote: SocketAddr::new(ip_at(24), port_at(6)),
        expires_ms: u32_at(52),
        rqueue: u32_at(56),
        wqueue: u32_at(60),
        inode: u32_at(68),
    })
}
