//! One socket's row of the kernel's table, looked up by its two addresses
//! through sock_diag netlink (what `ss` uses): a single hash lookup, where
//! reading `/proc/net/tcp` walks every bucket of the machine-wide table
//! (milliseconds, however few sockets the namespace holds).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_REQUEST};
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, InetResponseHeader, SocketId, StateFlags};
use netlink_packet_sock_diag::SockDiagMessage;
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
