//! A private network namespace for one scenario: its own loopback, its own
//! socket table, its own TCP sysctls, its own firewall. Nothing done in it
//! reaches the machine's network, and it disappears with its last socket.
//!
//! Needs CAP_SYS_ADMIN (root); the firewall rules need `nft` (nftables).

use std::io::{self, Write};
use std::process::{Command, Stdio};
use std::thread;

/// Runs `f` on a new thread that has left the process's network namespace
/// for a new, empty one with `lo` up. Sockets that `f` creates live there,
/// and so do the programs it starts (`nft`, `ss`).
pub fn isolated<T: Send>(f: impl FnOnce() -> T + Send) -> io::Result<T> {
    thread::scope(|scope| {
        scope
            .spawn(|| {
                // SAFETY: unshare affects only the calling thread's namespaces.
                if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                    let e = io::Error::last_os_error();
                    return Err(match e.raw_os_error() {
                        Some(libc::EPERM) => io::Error::new(
                            io::ErrorKind::PermissionDenied,
                            "a network namespace needs CAP_SYS_ADMIN: run as root",
                        ),
                        _ => e,
                    });
                }
                loopback_up()?;
                Ok(f())
            })
            .join()
            .map_err(|_| io::Error::other("the scenario's thread panicked"))?
    })
}

/// Brings `lo` up in the calling thread's namespace (a new one has it down).
fn loopback_up() -> io::Result<()> {
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

/// Loads nftables rules (`nft -f -` syntax) into the calling thread's
/// namespace.
pub fn nft(rules: &str) -> io::Result<()> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot run nft (install nftables): {e}")))?;
    child.stdin.take().expect("piped stdin").write_all(rules.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "nft failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Sets a sysctl of the calling thread's namespace, such as
/// `net/ipv4/ip_local_port_range`.
pub fn sysctl(name: &str, value: &str) -> io::Result<()> {
    std::fs::write(format!("/proc/sys/{name}"), value)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot set {name}: {e}")))
}
