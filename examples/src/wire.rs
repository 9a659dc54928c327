//! The wire: the TCP segments of one connection, captured on loopback while
//! a scenario runs, and written as a pcap file that Wireshark, tshark and
//! tcpdump open.
//!
//! Capture uses an `AF_PACKET` socket bound to `lo`, which needs
//! CAP_NET_RAW (root). Without it, [`Capture::start`] returns
//! [`CaptureError::NotPermitted`] and everything else in the lab still works.

use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter};
use std::mem::MaybeUninit;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use pcap_file::pcap::{PcapPacket, PcapWriter};
use serde::Serialize;
use socket2::{Domain, SockAddr, SockAddrStorage, SockFilter, Socket, Type};

use crate::wait;

/// Why a capture could not start.
#[derive(Debug)]
pub enum CaptureError {
    /// The process lacks CAP_NET_RAW.
    NotPermitted,
    Io(io::Error),
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaptureError::NotPermitted => f.write_str(
                "capturing packets needs CAP_NET_RAW: run as root (sudo) or \
                 grant it with `setcap cap_net_raw+ep` on the binary",
            ),
            CaptureError::Io(e) => write!(f, "cannot capture on lo: {e}"),
        }
    }
}

impl std::error::Error for CaptureError {}

/// The TCP flags a reader cares about.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Flags {
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
    pub psh: bool,
}

impl fmt::Display for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (self.syn, "SYN"),
            (self.fin, "FIN"),
            (self.rst, "RST"),
            (self.psh, "PSH"),
            (self.ack, "ACK"),
        ];
        let set: Vec<&str> = names.iter().filter(|(on, _)| *on).map(|(_, n)| *n).collect();
        f.pad(&set.join(" "))
    }
}

/// One TCP segment as it crossed loopback.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Segment {
    /// When the kernel handed it to the capture socket.
    #[serde(skip)]
    pub time: SystemTime,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub flags: Flags,
    pub seq: u32,
    pub ack: u32,
    /// Payload length in bytes.
    pub len: u32,
    /// The whole Ethernet frame, for the pcap file.
    #[serde(skip)]
    pub frame: Vec<u8>,
}

impl Segment {
    /// Parses an Ethernet frame; `None` if it is not TCP over IPv4 or IPv6.
    pub fn parse(frame: &[u8], time: SystemTime) -> Option<Segment> {
        let packet = SlicedPacket::from_ethernet(frame).ok()?;
        let (src_ip, dst_ip): (IpAddr, IpAddr) = match packet.net? {
            NetSlice::Ipv4(ip) => (ip.header().source_addr().into(), ip.header().destination_addr().into()),
            NetSlice::Ipv6(ip) => (ip.header().source_addr().into(), ip.header().destination_addr().into()),
            NetSlice::Arp(_) => return None,
        };
        let TransportSlice::Tcp(tcp) = packet.transport? else {
            return None;
        };
        Some(Segment {
            time,
            src: SocketAddr::new(src_ip, tcp.source_port()),
            dst: SocketAddr::new(dst_ip, tcp.destination_port()),
            flags: Flags {
                syn: tcp.syn(),
                ack: tcp.ack(),
                fin: tcp.fin(),
                rst: tcp.rst(),
                psh: tcp.psh(),
            },
            seq: tcp.sequence_number(),
            ack: tcp.acknowledgment_number(),
            len: tcp.payload().len() as u32,
            frame: frame.to_vec(),
        })
    }
}

/// A running capture of every TCP segment to or from one port on `lo`.
///
/// Nothing runs in the background: the kernel queues the matching frames on
/// the capture socket and [`Capture::segments`] reads what is queued. A
/// segment a syscall sends is queued before that syscall returns, so after
/// `drop(stream)` returns, its FIN is already in the capture.
pub struct Capture {
    socket: Socket,
    port: u16,
    seen: Vec<Segment>,
    /// Frames the kernel dropped because the socket's buffer was full.
    lost: u32,
}

const ETH_P_ALL: u16 = 0x0003;
const PACKET_OUTGOING: u32 = 4;
/// `SIOCGSTAMPNS` from <asm-generic/sockios.h>: the last frame's timestamp.
const SIOCGSTAMPNS: libc::c_ulong = 0x8907;

impl Capture {
    /// Starts capturing the segments whose source or destination port is
    /// `port` (bind a listener to port 0 first and pass the port it got).
    pub fn start(port: u16) -> Result<Capture, CaptureError> {
        // Protocol 0: the socket receives nothing until it is bound, so no
        // frame slips in before the filter is attached.
        let socket = Socket::new(Domain::PACKET, Type::RAW, None).map_err(|e| {
            if e.raw_os_error() == Some(libc::EPERM) {
                CaptureError::NotPermitted
            } else {
                CaptureError::Io(e)
            }
        })?;
        socket
            .attach_filter(&outgoing_tcp_port_filter(port))
            .map_err(CaptureError::Io)?;
        set_large_recv_buffer(&socket).map_err(CaptureError::Io)?;
        socket.bind(&loopback_link_addr()?).map_err(CaptureError::Io)?;
        socket.set_nonblocking(true).map_err(CaptureError::Io)?;
        Ok(Capture {
            socket,
            port,
            seen: Vec::new(),
            lost: 0,
        })
    }

    /// Every segment captured so far, in the order they were sent.
    pub fn segments(&mut self) -> io::Result<&[Segment]> {
        let mut buf = vec![MaybeUninit::<u8>::uninit(); 65_536 + 128];
        loop {
            match self.socket.recv(&mut buf) {
                Ok(n) => {
                    // SAFETY: recv initialised the first n bytes.
                    let frame: Vec<u8> = buf[..n].iter().map(|b| unsafe { b.assume_init() }).collect();
                    let time = self.last_timestamp().unwrap_or_else(|_| SystemTime::now());
                    if let Some(segment) = Segment::parse(&frame, time) {
                        if segment.src.port() == self.port || segment.dst.port() == self.port {
                            self.seen.push(segment);
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.lost += self.dropped()?;
                    if self.lost > 0 {
                        return Err(io::Error::other(format!(
                            "the capture lost {} frames because its buffer was full; \
                             raise net.core.rmem_max or run as root",
                            self.lost
                        )));
                    }
                    return Ok(&self.seen);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits until the captured segments satisfy `done`.
    pub fn wait_for(&mut self, what: &str, mut done: impl FnMut(&[Segment]) -> bool) -> io::Result<()> {
        wait::until(what, wait::DEFAULT_DEADLINE, || {
            let segments = self.segments()?;
            Ok(done(segments).then_some(()))
        })
    }

    /// Stops capturing and returns every segment seen.
    pub fn finish(mut self) -> io::Result<Vec<Segment>> {
        self.segments()?;
        Ok(self.seen)
    }

    /// How many frames the kernel dropped because the capture socket's
    /// buffer was full, since the last call.
    fn dropped(&self) -> io::Result<u32> {
        use std::os::fd::AsRawFd;
        let mut stats = libc::tpacket_stats {
            tp_packets: 0,
            tp_drops: 0,
        };
        let mut len = std::mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
        // SAFETY: PACKET_STATISTICS writes one tpacket_stats.
        let rc = unsafe {
            libc::getsockopt(
                self.socket.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut stats as *mut libc::tpacket_stats).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stats.tp_drops)
    }

    /// The kernel's receive timestamp of the frame read last.
    fn last_timestamp(&self) -> io::Result<SystemTime> {
        use std::os::fd::AsRawFd;
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: SIOCGSTAMPNS writes one timespec.
        let rc = unsafe { libc::ioctl(self.socket.as_raw_fd(), SIOCGSTAMPNS as _, &mut ts) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(UNIX_EPOCH + Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
    }
}

/// Gives the capture socket room for a burst of 64 KiB loopback frames:
/// SO_RCVBUFFORCE when allowed (CAP_NET_ADMIN), else SO_RCVBUF, which the
/// kernel caps at net.core.rmem_max.
fn set_large_recv_buffer(socket: &Socket) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    const SIZE: libc::c_int = 32 << 20;
    // SAFETY: SO_RCVBUFFORCE reads one c_int.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&SIZE as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    socket.set_recv_buffer_size(SIZE as usize)
}

/// `sockaddr_ll` for `lo`, all protocols.
fn loopback_link_addr() -> Result<SockAddr, CaptureError> {
    // SAFETY: if_nametoindex reads a NUL-terminated string.
    let index = unsafe { libc::if_nametoindex(c"lo".as_ptr()) };
    if index == 0 {
        return Err(CaptureError::Io(io::Error::last_os_error()));
    }
    let mut storage = SockAddrStorage::zeroed();
    // SAFETY: sockaddr_ll fits in sockaddr_storage; we fill the fields bind reads.
    unsafe {
        let ll = storage.view_as::<libc::sockaddr_ll>();
        ll.sll_family = libc::AF_PACKET as u16;
        ll.sll_protocol = ETH_P_ALL.to_be();
        ll.sll_ifindex = index as i32;
        Ok(SockAddr::new(
            storage,
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        ))
    }
}

/// A classic BPF program that keeps only the frames the host sends
/// (PACKET_OUTGOING) that carry TCP to or from `port`.
///
/// Every frame on `lo` reaches a packet socket twice, once as it leaves
/// (PACKET_OUTGOING) and once as it arrives (PACKET_HOST); tcpdump shows one,
/// and so do we.
fn outgoing_tcp_port_filter(port: u16) -> Vec<SockFilter> {
    use libc::{
        BPF_ABS, BPF_B, BPF_H, BPF_IND, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_LDX, BPF_MSH, BPF_RET, BPF_W, SKF_AD_OFF,
        SKF_AD_PKTTYPE,
    };
    let op = |code: u32| code as u16;
    let ld = |code: u32, k: u32| SockFilter::new(op(code), 0, 0, k);
    let jeq = |k: u32, jt: u8, jf: u8| SockFilter::new(op(BPF_JMP | BPF_JEQ | BPF_K), jt, jf, k);
    let port = u32::from(port);
    vec![
        /* 0 */ ld(BPF_LD | BPF_W | BPF_ABS, (SKF_AD_OFF + SKF_AD_PKTTYPE) as u32),
        /* 1 */ jeq(PACKET_OUTGOING, 0, 17),
        /* 2 */ ld(BPF_LD | BPF_H | BPF_ABS, 12), // EtherType
        /* 3 */ jeq(0x0800, 0, 7),
        /* 4 */ ld(BPF_LD | BPF_B | BPF_ABS, 23), // IPv4 protocol
        /* 5 */ jeq(libc::IPPROTO_TCP as u32, 0, 13),
        /* 6 */ ld(BPF_LDX | BPF_B | BPF_MSH, 14), // X = IPv4 header length
        /* 7 */ ld(BPF_LD | BPF_H | BPF_IND, 14), // source port
        /* 8 */ jeq(port, 9, 0),
        /* 9 */ ld(BPF_LD | BPF_H | BPF_IND, 16), // destination port
        /* 10 */ jeq(port, 7, 8),
        /* 11 */ jeq(0x86dd, 0, 7),
        /* 12 */ ld(BPF_LD | BPF_B | BPF_ABS, 20), // IPv6 next header
        /* 13 */ jeq(libc::IPPROTO_TCP as u32, 0, 5),
        /* 14 */ ld(BPF_LD | BPF_H | BPF_ABS, 54), // source port
        /* 15 */ jeq(port, 2, 0),
        /* 16 */ ld(BPF_LD | BPF_H | BPF_ABS, 56), // destination port
        /* 17 */ jeq(port, 0, 1),
        /* 18 */ SockFilter::new(op(BPF_RET | BPF_K), 0, 0, 0x0004_0000),
        /* 19 */ SockFilter::new(op(BPF_RET | BPF_K), 0, 0, 0),
    ]
}

/// Writes `segments` as a pcap file (Ethernet link type, as `lo` frames are).
pub fn write_pcap(path: &Path, segments: &[Segment]) -> io::Result<()> {
    let file = File::create(path)?;
    let mut writer = PcapWriter::new(BufWriter::new(file)).map_err(io::Error::other)?;
    for segment in segments {
        let timestamp = segment.time.duration_since(UNIX_EPOCH).unwrap_or_default();
        let packet = PcapPacket::new(timestamp, segment.frame.len() as u32, &segment.frame);
        writer.write_packet(&packet).map_err(io::Error::other)?;
    }
    Ok(())
}
