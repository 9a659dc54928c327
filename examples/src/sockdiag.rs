//! One socket's row of the kernel's table, looked up by its two addresses
//! through sock_diag netlink (what `ss` uses): a single hash lookup, where
//! reading `/proc/net/tcp` walks every bucket of the machine-wide table
//! (milliseconds, however few sockets the namespace holds).

use std::io;
use std::net::SocketAddr;

use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_REQUEST};
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, InetResponseHeader, SocketId, StateFlags};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_sys::protocols::NETLINK_SOCK_DIAG;
use netlink_sys::{Socket, SocketAddr as NetlinkAddr};

/// The kernel's row for the socket with these addresses, in the calling
/// thread's network namespace; `None` when it has none.
pub fn lookup(local: SocketAddr, remote: SocketAddr) -> io::Result<Option<InetResponseHeader>> {
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
        NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(response)) => Ok(Some(response.header)),
        NetlinkPayload::Error(e) => match e.code.map(|code| -code.get()) {
            Some(libc::ENOENT) => Ok(None),
            Some(errno) => Err(io::Error::from_raw_os_error(errno)),
            None => Ok(None),
        },
        other => Err(io::Error::other(format!("unexpected sock_diag answer: {other:?}"))),
    }
}
