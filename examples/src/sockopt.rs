//! Socket options that `socket2` does not offer.

use std::io;
use std::net::TcpStream;
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

/// Sets an integer socket option (the C `setsockopt` with one `int`).
pub fn set_int(socket: &impl AsRawFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: the option reads one c_int from a live local.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sets `TCP_LINGER2`: how long this socket, once orphaned (closed by its
/// owner) in FIN_WAIT_2, waits for the peer's FIN before the kernel drops
/// it. The default is `net.ipv4.tcp_fin_timeout` (60 s). Whole seconds.
pub fn set_tcp_linger2(stream: &TcpStream, timeout: Duration) -> io::Result<()> {
    let secs = libc::c_int::try_from(timeout.as_secs()).map_err(io::Error::other)?;
    set_int(stream, libc::IPPROTO_TCP, libc::TCP_LINGER2, secs)
}

/// Makes `stream`'s peer vanish as seen from `stream`'s side: a classic BPF
/// filter that returns 0 for every segment (`ret #0`) makes the kernel
/// discard everything that arrives for this socket, before TCP sees it, so
/// it never answers again: no ACK, no RST. Needs CAP_NET_ADMIN over the
/// network namespace on some kernels (the lab's sandbox has it).
/// On a listener, it discards the SYNs of new connections.
pub fn discard_everything(socket: &impl AsFd) -> io::Result<()> {
    socket2::SockRef::from(socket).attach_filter(&[socket2::SockFilter::new(
        (libc::BPF_RET | libc::BPF_K) as u16,
        0,
        0,
        0,
    )])
}

/// Removes the filter of [`discard_everything`]: the socket hears again.
pub fn hear_again(socket: &impl AsFd) -> io::Result<()> {
    socket2::SockRef::from(socket).detach_filter()
}

/// Writes to `stream`, made non-blocking, until the kernel accepts no
/// more: the peer does not read, so its receive buffer and our send buffer
/// fill. Returns how many bytes were accepted; an error other than
/// `WouldBlock` is returned as it is.
pub fn fill(stream: &mut TcpStream) -> io::Result<usize> {
    use std::io::Write;
    stream.set_nonblocking(true)?;
    let chunk = vec![b'd'; 1 << 16];
    let mut queued = 0;
    loop {
        match stream.write(&chunk) {
            Ok(n) => queued += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(queued),
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_stops_when_the_buffers_are_full_and_reports_other_errors() {
        let (mut client, _server) = crate::pair().unwrap();
        assert!(fill(&mut client).unwrap() > 0);
        client.shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!(fill(&mut client).unwrap_err().kind(), io::ErrorKind::BrokenPipe);
    }
}
