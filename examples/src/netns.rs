//! A private network namespace for one scenario: its own loopback, its own
//! socket table, its own TCP sysctls. Nothing done in it reaches the
//! machine's network, and it disappears with its last socket.
//!
//! Needs CAP_SYS_ADMIN over the current namespace: root, or any user inside
//! the lab's sandbox ([`crate::sandbox::enter`]).

use std::io;
use std::thread;

/// Runs `f` on a new thread that has left the process's network namespace
/// for a new, empty one with `lo` up. Sockets that `f` creates live there,
/// and so do the threads and processes it starts.
pub fn isolated<T: Send>(f: impl FnOnce() -> T + Send) -> io::Result<T> {
    thread::scope(|scope| {
        scope
            .spawn(|| {
                enter_new()?;
                Ok(f())
            })
            .join()
            .map_err(|_| io::Error::other("the scenario's thread panicked"))?
    })
}

/// Moves the calling thread into a new, empty network namespace with `lo`
/// up. Fails with `PermissionDenied` without CAP_SYS_ADMIN over the current
/// one.
pub fn enter_new() -> io::Result<()> {
    // SAFETY: unshare affects only the calling thread's namespaces.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        let e = io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::EPERM) => io::Error::new(
                io::ErrorKind::PermissionDenied,
                "a private network namespace needs a user namespace or root",
            ),
            _ => e,
        });
    }
    loopback_up()
}

/// Brings `lo` up in the calling thread's namespace (a new one has it down).
pub fn loopback_up() -> io::Result<()> {
    // SAFETY: plain socket and ioctl calls on a zeroed ifreq naming "lo".
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut ifr: libc::ifreq = std::mem::zeroed();
        for (dst, src) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        let mut rc = libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut ifr);
        if rc == 0 {
            ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            rc = libc::ioctl(fd, libc::SIOCSIFFLAGS, &ifr);
        }
        let result = if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        };
        libc::close(fd);
        result
    }
}

/// Sets a sysctl of the calling thread's namespace, such as
/// `net/ipv4/ip_local_port_range`.
pub fn sysctl(name: &str, value: &str) -> io::Result<()> {
    std::fs::write(format!("/proc/sys/{name}"), value)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot set {name}: {e}")))
}

/// Sets a sysctl that older kernels lack: `Ok(false)` when this kernel has
/// no such setting.
pub fn sysctl_if_present(name: &str, value: &str) -> io::Result<bool> {
    match sysctl(name, value) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sysctl_this_kernel_lacks_is_reported_absent() {
        assert!(!sysctl_if_present("net/ipv4/no_such_setting", "1").unwrap());
        let denied = sysctl_if_present("net", "1").unwrap_err();
        assert_ne!(denied.kind(), io::ErrorKind::NotFound);
    }
}
