//! The lab's private network: before anything else, a process moves into a
//! network namespace of its own, where it may capture packets, attach
//! socket filters and change TCP sysctls without touching the machine.
//!
//! As an ordinary user this takes a user namespace too
//! (`unshare(CLONE_NEWUSER | CLONE_NEWNET)`, what `unshare -Urn` does):
//! inside it the process holds CAP_NET_RAW and CAP_NET_ADMIN over its new
//! network, and nothing else. As root, a network namespace alone. A kernel
//! may refuse user namespaces (some distributions restrict them); then the
//! lab runs in the machine's own network and says what it cannot check.

use std::fmt;
use std::io;
use std::sync::OnceLock;

/// Where the process's sockets live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sandbox {
    /// A private network namespace; `user` when a user namespace came with
    /// it (an ordinary user).
    Private { user: bool },
    /// The machine's own network namespace, and why.
    Shared { why: String },
}

static ENTERED: OnceLock<Sandbox> = OnceLock::new();

/// The environment variable that keeps the lab in the machine's own
/// network namespace (as on a kernel without user namespaces).
pub const NO_NAMESPACE_VAR: &str = "TCPCLOSE_NO_NAMESPACE";

/// Moves this process into a private network namespace, once. Call it
/// first thing in `main`: a user namespace can only be entered by a
/// process with a single thread.
pub fn enter() -> &'static Sandbox {
    ENTERED.get_or_init(|| {
        if std::env::var_os(NO_NAMESPACE_VAR).is_some_and(|v| !v.is_empty()) {
            return Sandbox::Shared {
                why: format!("{NO_NAMESPACE_VAR} is set"),
            };
        }
        match unshare_network() {
            Ok(user) => Sandbox::Private { user },
            Err(why) => Sandbox::Shared { why },
        }
    })
}

/// The sandbox this process entered, if [`enter`] was called.
pub fn current() -> Option<&'static Sandbox> {
    ENTERED.get()
}

impl Sandbox {
    pub fn is_private(&self) -> bool {
        matches!(self, Sandbox::Private { .. })
    }

    /// One line for a reader whose lab cannot check everything, or `None`.
    pub fn notice(&self) -> Option<String> {
        match self {
            Sandbox::Private { .. } => None,
            Sandbox::Shared { why } => Some(format!(
                "no private network namespace ({why}); packets, socket filters and sysctls \
                 are not checked. Run with sudo, or allow user namespaces \
                 (sudo sysctl kernel.apparmor_restrict_unprivileged_userns=0 on Ubuntu, \
                 kernel.unprivileged_userns_clone=1 on older Debian)"
            )),
        }
    }
}

impl fmt::Display for Sandbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sandbox::Private { user: true } => f.write_str("a private user and network namespace"),
            Sandbox::Private { user: false } => f.write_str("a private network namespace"),
            Sandbox::Shared { why } => write!(f, "the machine's network namespace ({why})"),
        }
    }
}

/// `Ok(true)`: a user and a network namespace; `Ok(false)`: a network
/// namespace (root).
fn unshare_network() -> Result<bool, String> {
    // SAFETY: geteuid and getegid only read.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    if uid == 0 && unshare(libc::CLONE_NEWNET).is_ok() {
        crate::netns::loopback_up().map_err(|e| format!("cannot bring lo up: {e}"))?;
        return Ok(false);
    }
    unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET).map_err(|e| match e.raw_os_error() {
        Some(libc::EINVAL) => {
            "a user namespace needs a single-threaded process: call sandbox::enter() first in main".into()
        }
        Some(libc::EPERM | libc::ENOSPC | libc::EACCES) => {
            format!("the kernel refused a user namespace: {e}")
        }
        _ => format!("unshare failed: {e}"),
    })?;
    // Map our own ids to root inside, as `unshare -Ur` does, so that
    // `nsenter -U` and per-namespace sysctls work as a reader expects.
    let write = |file: &str, text: String| {
        std::fs::write(format!("/proc/self/{file}"), text).map_err(|e| format!("cannot write /proc/self/{file}: {e}"))
    };
    write("setgroups", "deny".into())?;
    write("uid_map", format!("0 {uid} 1"))?;
    write("gid_map", format!("0 {gid} 1"))?;
    crate::netns::loopback_up().map_err(|e| format!("cannot bring lo up: {e}"))?;
    Ok(true)
}

fn unshare(flags: libc::c_int) -> io::Result<()> {
    // SAFETY: unshare takes flags only.
    if unsafe { libc::unshare(flags) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// How a person can look inside the namespace of the thread `tid` with
/// their own tools: `nsenter -t TID -U -n --preserve-credentials` (or `-n`
/// for root).
pub fn nsenter_prefix(tid: libc::pid_t) -> String {
    match current() {
        Some(Sandbox::Private { user: true }) => format!("nsenter -t {tid} -U -n --preserve-credentials"),
        Some(Sandbox::Private { user: false }) => format!("sudo nsenter -t {tid} -n"),
        _ => String::new(),
    }
}

/// The calling thread's id (for `nsenter -t`).
pub fn thread_id() -> libc::pid_t {
    // SAFETY: gettid has no arguments.
    unsafe { libc::gettid() }
}

/// How many descriptors this process has open.
pub fn open_descriptors() -> io::Result<usize> {
    Ok(std::fs::read_dir("/proc/self/fd")?.count())
}
