//! The wire: the TCP segments of one connection, captured on loopback while
//! a scenario runs, and written as a pcap file that Wireshark, tshark and
//! tcpdump open.
//!
//! Capture uses a raw IP socket (`SOCK_RAW`, `IPPROTO_TCP`), which receives
//! a copy of every TCP segment the network namespace delivers, each once,
//! and closes at once (a packet socket waits for an RCU grace period, tens
//! of milliseconds). It needs CAP_NET_RAW over the network namespace: root,
//! or anyone inside the lab's sandbox ([`crate::sandbox`]). Without it,
//! [`Capture::start`] returns [`CaptureError::NotPermitted`] and everything
//! else in the lab still works.

use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use serde::{Deserialize, Serialize};
use socket2::{Domain, Protocol, SockFilter, Socket, Type};

use crate::sockopt::set_int;
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
                "capturing packets needs CAP_NET_RAW: run inside the lab's sandbox \
                 (tcpclose::sandbox::enter) or as root",
            ),
            CaptureError::Io(e) => write!(f, "cannot capture on loopback: {e}"),
        }
    }
}

impl std::error::Error for CaptureError {}

/// The TCP flags a reader cares about.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    /// When the kernel handed it to the capture socket.
    pub time: SystemTime,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub flags: Flags,
    pub seq: u32,
    pub ack: u32,
    /// Payload length in bytes.
    pub len: u32,
    /// The window field as sent (unscaled): 0 is a closed window.
    pub window: u16,
    /// The whole IP packet, for the pcap file (not in the record).
    #[serde(skip)]
    pub packet: Vec<u8>,
}

impl Segment {
    /// Parses an IP packet; `None` if it is not TCP over IPv4 or IPv6.
    pub fn parse(packet: &[u8], time: SystemTime) -> Option<Segment> {
        let ip_packet = packet;
        let packet = SlicedPacket::from_ip(ip_packet).ok()?;
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
            window: tcp.window_size(),
            packet: ip_packet.to_vec(),
        })
    }
}

/// A running capture of every TCP segment to or from one port.
///
/// A thread drains the socket as segments arrive (the kernel charges each
/// queued copy the full size of the segment, so an undrained socket would
/// soon drop some); [`Capture::segments`] drains it too, so a segment that
/// reached the socket before the call is always in its answer. Every copy
/// is taken under one lock, in the order the kernel queued them.
pub struct Capture {
    shared: Arc<Shared>,
    drainer: Option<JoinHandle<()>>,
}

struct Shared {
    socket: Socket,
    ipv6: bool,
    port: u16,
    stop: AtomicBool,
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    segments: Vec<Segment>,
    error: Option<String>,
}

impl Capture {
    /// Starts capturing the segments whose source or destination port is
    /// `addr`'s port, over `addr`'s IP version, in the calling thread's
    /// network namespace (bind a listener to port 0 first and pass the
    /// address it got).
    pub fn start(addr: SocketAddr) -> Result<Capture, CaptureError> {
        let (domain, ipv6) = if addr.is_ipv4() {
            (Domain::IPV4, false)
        } else {
            (Domain::IPV6, true)
        };
        let socket = Socket::new(domain, Type::RAW, Some(Protocol::TCP)).map_err(|e| {
            if matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES)) {
                CaptureError::NotPermitted
            } else {
                CaptureError::Io(e)
            }
        })?;
        let io = CaptureError::Io;
        socket.attach_filter(&tcp_port_filter(addr.port(), ipv6)).map_err(io)?;
        // The filter applies to segments queued from now on: empty the
        // queue of what slipped in before it.
        socket.set_nonblocking(true).map_err(io)?;
        while socket.recv(&mut [MaybeUninit::uninit(); 64]).is_ok() {}
        set_large_recv_buffer(&socket).map_err(io)?;
        set_int(&socket, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1).map_err(io)?;
        stamp_on_arrival().map_err(io)?;
        if ipv6 {
            set_int(&socket, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1).map_err(io)?;
        }
        let shared = Arc::new(Shared {
            socket,
            ipv6,
            port: addr.port(),
            stop: AtomicBool::new(false),
            seen: Mutex::new(Seen::default()),
        });
        let drainer = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("capture".into())
                .spawn(move || shared.drain_until_stopped())
                .map_err(io)?
        };
        Ok(Capture {
            shared,
            drainer: Some(drainer),
        })
    }

    /// Every segment captured so far, in the order the kernel delivered them.
    pub fn segments(&mut self) -> io::Result<Vec<Segment>> {
        let seen = self.shared.drain()?;
        Ok(seen.segments.clone())
    }

    /// Waits until the captured segments satisfy `done`.
    pub fn wait_for(&mut self, what: &str, mut done: impl FnMut(&[Segment]) -> bool) -> io::Result<()> {
        wait::until(what, wait::DEFAULT_DEADLINE, || {
            let seen = self.shared.drain()?;
            Ok(done(&seen.segments).then_some(()))
        })
    }

    /// How many segments are captured so far.
    pub fn len(&mut self) -> io::Result<usize> {
        Ok(self.shared.drain()?.segments.len())
    }

    /// Whether nothing is captured yet.
    pub fn is_empty(&mut self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Stops capturing and returns every segment seen.
    pub fn finish(mut self) -> io::Result<Vec<Segment>> {
        self.stop();
        let mut seen = self.shared.drain()?;
        Ok(std::mem::take(&mut seen.segments))
    }

    fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wakes the drainer's poll: the socket reports end of input.
        // SAFETY: shutdown takes a descriptor we own and a flag.
        unsafe { libc::shutdown(self.shared.socket.as_raw_fd(), libc::SHUT_RD) };
        if let Some(drainer) = self.drainer.take() {
            let _ = drainer.join();
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Shared {
    fn drain_until_stopped(&self) {
        let mut poll = libc::pollfd {
            fd: self.socket.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        while !self.stop.load(Ordering::SeqCst) {
            // SAFETY: poll reads and writes one pollfd.
            let ready = unsafe { libc::poll(&mut poll, 1, -1) };
            if ready < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                return;
            }
            if self.stop.load(Ordering::SeqCst) {
                return;
            }
            if self.drain().is_err() {
                return;
            }
        }
    }

    /// Takes every queued copy off the socket, under the lock.
    fn drain(&self) -> io::Result<MutexGuard<'_, Seen>> {
        let mut seen = self.seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut buf = vec![0u8; 65_536 + 64];
        loop {
            match receive(self.socket.as_raw_fd(), &mut buf) {
                Ok((len, time, addresses)) => {
                    let packet = if self.ipv6 {
                        match addresses {
                            Some((src, dst)) => ipv6_packet(src, dst, &buf[..len]),
                            None => continue,
                        }
                    } else {
                        buf[..len].to_vec()
                    };
                    if let Some(segment) = Segment::parse(&packet, time) {
                        if segment.src.port() == self.port || segment.dst.port() == self.port {
                            seen.segments.push(segment);
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        let lost = dropped(&self.socket)?;
        if lost > 0 && seen.error.is_none() {
            seen.error = Some(format!(
                "the capture lost {lost} segments because its receive buffer was full \
                 (net.core.rmem_max is too small for this scenario's burst)"
            ));
        }
        match &seen.error {
            Some(error) => Err(io::Error::other(error.clone())),
            None => Ok(seen),
        }
    }
}

/// An IPv6 packet around a TCP segment that a raw IPv6 socket delivered
/// without its header: the addresses come from `recvmsg`.
fn ipv6_packet(src: Ipv6Addr, dst: Ipv6Addr, tcp: &[u8]) -> Vec<u8> {
    let mut packet = Vec::with_capacity(40 + tcp.len());
    packet.extend_from_slice(&[0x60, 0, 0, 0]);
    packet.extend_from_slice(&(tcp.len() as u16).to_be_bytes());
    packet.extend_from_slice(&[libc::IPPROTO_TCP as u8, 64]);
    packet.extend_from_slice(&src.octets());
    packet.extend_from_slice(&dst.octets());
    packet.extend_from_slice(tcp);
    packet
}

/// How many copies the kernel dropped because the socket's buffer was full
/// (`SK_MEMINFO_DROPS` of `SO_MEMINFO`).
fn dropped(socket: &Socket) -> io::Result<u32> {
    // <linux/sock_diag.h>: SK_MEMINFO_DROPS is the 9th and last field.
    const SK_MEMINFO_VARS: usize = 9;
    const SK_MEMINFO_DROPS: usize = 8;
    let mut info = [0u32; SK_MEMINFO_VARS];
    let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
    // SAFETY: SO_MEMINFO writes at most `len` bytes of u32s.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_MEMINFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(info[SK_MEMINFO_DROPS])
}

/// Gives the capture socket room for bursts of 64 KiB loopback segments:
/// SO_RCVBUFFORCE when allowed (root), else SO_RCVBUF, which the kernel
/// caps at net.core.rmem_max.
fn set_large_recv_buffer(socket: &Socket) -> io::Result<()> {
    const SIZE: libc::c_int = 32 << 20;
    set_int(socket, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, SIZE)
        .or_else(|_| socket.set_recv_buffer_size(SIZE as usize))
}

/// A classic BPF program that keeps the TCP segments to or from `port`.
/// A raw IPv4 socket's copy starts with the IP header; a raw IPv6 socket's
/// with the TCP header.
fn tcp_port_filter(port: u16, ipv6: bool) -> Vec<SockFilter> {
    use libc::{BPF_ABS, BPF_B, BPF_H, BPF_IND, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_LDX, BPF_MSH, BPF_RET};
    let op = |code: u32| code as u16;
    let stmt = |code: u32, k: u32| SockFilter::new(op(code), 0, 0, k);
    let jeq = |k: u32, jt: u8, jf: u8| SockFilter::new(op(BPF_JMP | BPF_JEQ | BPF_K), jt, jf, k);
    let port = u32::from(port);
    let (mode, header) = if ipv6 {
        (BPF_ABS, stmt(BPF_LD | BPF_H | BPF_ABS, 0)) // a no-op load: no IP header
    } else {
        (BPF_IND, stmt(BPF_LDX | BPF_B | BPF_MSH, 0)) // X = IPv4 header length
    };
    vec![
        /* 0 */ header,
        /* 1 */ stmt(BPF_LD | BPF_H | mode, 0), // source port
        /* 2 */ jeq(port, 2, 0),
        /* 3 */ stmt(BPF_LD | BPF_H | mode, 2), // destination port
        /* 4 */ jeq(port, 0, 1),
        /* 5 */ stmt(BPF_RET | BPF_K, 0x0004_0000),
        /* 6 */ stmt(BPF_RET | BPF_K, 0),
    ]
}

/// Writes `segments` as a pcap file of raw IP packets (link type RAW).
pub fn write_pcap(path: &Path, segments: &[Segment]) -> io::Result<()> {
    let mut file = BufWriter::new(File::create(path)?);
    file.write_all(&pcap_bytes(segments))?;
    file.flush()
}

/// The pcap format (libpcap's, microsecond timestamps, little-endian): a
/// 24-byte file header, then a 16-byte header before each packet.
fn pcap_bytes(segments: &[Segment]) -> Vec<u8> {
    /// LINKTYPE_RAW: each packet starts with its IPv4 or IPv6 header.
    const LINKTYPE_RAW: u32 = 101;
    const SNAPLEN: u32 = 65_535;
    let mut out = Vec::with_capacity(24 + segments.iter().map(|s| 16 + s.packet.len()).sum::<usize>());
    out.extend_from_slice(&0xa1b2_c3d4_u32.to_le_bytes()); // magic: microseconds
    out.extend_from_slice(&2u16.to_le_bytes()); // version 2.4
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes()); // time zone: UTC
    out.extend_from_slice(&0u32.to_le_bytes()); // timestamp accuracy
    out.extend_from_slice(&SNAPLEN.to_le_bytes());
    out.extend_from_slice(&LINKTYPE_RAW.to_le_bytes());
    for segment in segments {
        let time = segment.time.duration_since(UNIX_EPOCH).unwrap_or_default();
        let kept = &segment.packet[..segment.packet.len().min(SNAPLEN as usize)];
        out.extend_from_slice(&(time.as_secs() as u32).to_le_bytes());
        out.extend_from_slice(&time.subsec_micros().to_le_bytes());
        out.extend_from_slice(&(kept.len() as u32).to_le_bytes());
        out.extend_from_slice(&(segment.packet.len() as u32).to_le_bytes());
        out.extend_from_slice(kept);
    }
    out
}

/// One queued copy: its length, the kernel's timestamp and, for IPv6,
/// the source and destination addresses (the copy has no IPv6 header).
#[allow(clippy::type_complexity)]
fn receive(fd: std::os::fd::RawFd, buf: &mut [u8]) -> io::Result<(usize, SystemTime, Option<(Ipv6Addr, Ipv6Addr)>)> {
    let mut control = [0u64; 32];
    let mut from: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain data; every pointer below outlives the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&mut from as *mut libc::sockaddr_in6).cast();
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: msg points at live buffers of the lengths it gives.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut time = SystemTime::now();
    let mut destination = None;
    // SAFETY: the CMSG macros walk the control buffer recvmsg filled.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            let data = libc::CMSG_DATA(cmsg);
            match ((*cmsg).cmsg_level, (*cmsg).cmsg_type) {
                (libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS) => {
                    let ts: libc::timespec = std::ptr::read_unaligned(data.cast());
                    time = UNIX_EPOCH + Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
                }
                (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
                    let info: libc::in6_pktinfo = std::ptr::read_unaligned(data.cast());
                    destination = Some(Ipv6Addr::from(info.ipi6_addr.s6_addr));
                }
                _ => {}
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    let source = Ipv6Addr::from(from.sin6_addr.s6_addr);
    Ok((n as usize, time, destination.map(|d| (source, d))))
}

/// Makes sure the kernel stamps each packet as it arrives. It does so only
/// while some socket asks for timestamps, and turns that on a moment after
/// the first one asks (a deferred work item); until then a packet is
/// stamped when it is read, which would put it after calls that came later.
/// So one socket asks for the life of the process, and the first capture
/// waits until a datagram it sends itself comes back stamped before it was
/// read.
pub fn stamp_on_arrival() -> io::Result<()> {
    static KEEPER: std::sync::OnceLock<Result<std::net::UdpSocket, String>> = std::sync::OnceLock::new();
    let keeper = KEEPER.get_or_init(|| {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        set_int(&udp, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1).map_err(|e| e.to_string())?;
        udp.set_nonblocking(true).map_err(|e| e.to_string())?;
        let own = udp.local_addr().map_err(|e| e.to_string())?;
        crate::wait::until(
            "the kernel to stamp packets as they arrive",
            crate::wait::DEFAULT_DEADLINE,
            || {
                udp.send_to(b"t", own)?;
                let read_at = SystemTime::now();
                let mut buf = [0u8; 8];
                match receive(udp.as_raw_fd(), &mut buf) {
                    Ok((_, stamped, _)) => Ok((stamped < read_at).then_some(())),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
                    Err(e) => Err(e),
                }
            },
        )
        .map_err(|e| e.to_string())?;
        Ok(udp)
    });
    keeper.as_ref().map(|_| ()).map_err(|e| io::Error::other(e.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The file header and each packet's header, field by field, as
    /// libpcap's format defines them; tcpdump reads the lab's files back
    /// in `tests/cli.rs`.
    #[test]
    fn pcap_bytes_are_libpcap_s_format() {
        let segment = Segment {
            time: UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789),
            src: "127.0.0.1:1".parse().unwrap(),
            dst: "127.0.0.1:2".parse().unwrap(),
            flags: Flags::default(),
            seq: 0,
            ack: 0,
            len: 0,
            window: 0,
            packet: vec![0x45; 40],
        };
        let bytes = pcap_bytes(&[segment]);
        let header: [u8; 24] = [
            0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 101, 0, 0, 0,
        ];
        assert_eq!(bytes[..24], header);
        let record = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        assert_eq!(
            [record(24), record(28), record(32), record(36)],
            [1_700_000_000, 123_456, 40, 40]
        );
        assert_eq!(bytes[40..], [0x45; 40]);
    }
}
