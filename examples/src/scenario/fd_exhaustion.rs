//! `fd-exhaustion`: a server that leaks a CLOSE_WAIT socket per connection
//! runs out of file descriptors: `accept` fails with EMFILE (os error 24),
//! while the kernel goes on completing handshakes into the listen backlog.
//! A server must then back off, not retry at once: the listener stays
//! readable, so an immediate retry fails again, in a tight loop.
//!
//! RLIMIT_NOFILE belongs to a whole process, so the leaking server runs in
//! a child process, forked, that makes only raw system calls (no memory
//! allocation: the parent is multi-threaded). It reports each `accept` to
//! the parent through a pipe.

use std::io::{self, Read};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use crate::observe::{End, State};
use crate::scenario::{Run, Scenario};
use crate::transcript::Role::{Client, Server};

pub const SCENARIO: Scenario = Scenario {
    id: "fd-exhaustion",
    title: "a server leaking CLOSE_WAIT runs out of descriptors: accept fails with EMFILE",
    chapter: "fd-exhaustion.md",
    alone: true,
    perform,
};

pub fn perform(run: &mut Run) -> anyhow::Result<()> {
    run.no_packets("many connections; the claims are about calls and states");
    let listener = run.listen()?;
    let server_addr = listener.local_addr()?;
    let server = Leaker::fork(&listener)?;
    drop(listener); // the child holds the listening socket now
    run.record(
        Server,
        "fork: setrlimit(RLIMIT_NOFILE, 13); loop { accept; keep the socket }",
        "(child process)".into(),
    );

    // Each client connects and closes; the server accepts and never closes.
    let mut leaked = Vec::new();
    let mut failure = None;
    // A limit of 13 descriptors: 64 connections are more than enough.
    for _ in 0..64 {
        let client = TcpStream::connect(server_addr)?;
        let (event, at) = server.next_event()?;
        if event != 0 {
            failure = Some((client, event, at));
            break;
        }
        leaked.push(End::of(&client)?.peer());
        drop(client);
    }
    let Some((pending, errno, failed_at)) = failure else {
        anyhow::bail!("accept never failed");
    };
    run.record(
        Client,
        "repeat: TcpStream::connect(server), drop(stream)",
        format!("{} times", leaked.len()),
    );
    run.measured("connections accepted and leaked before accept failed", leaked.len());
    let mut close_wait = 0;
    for end in &leaked {
        end.wait_for(State::CloseWait)?;
        close_wait += 1;
    }
    let claim = "every accepted connection is left in CLOSE_WAIT, each holding a descriptor: sockets in CLOSE_WAIT";
    run.check_eq(claim, close_wait, leaked.len().max(1));
    if let Some(first) = leaked.first() {
        run.set_client(first.remote);
        let claim = "the first of them: the client that closed waits in FIN_WAIT_2, the server's socket in CLOSE_WAIT";
        run.expect_states(claim, Some(State::FinWait2), Some(State::CloseWait))?;
    }
    run.hold("the leaking server's sockets in CLOSE_WAIT, one more connection waiting in its backlog");
    let failed: io::Result<()> = Err(io::Error::from_raw_os_error(errno));
    run.call(Server, "accept()", &failed);
    let claim = "then accept fails with EMFILE, \"Too many open files\": errno";
    run.check_eq(claim, errno, libc::EMFILE);
    run.set_client(pending.local_addr()?);
    let claim = "the kernel still completes new handshakes: the next client waits in the listen backlog, ESTABLISHED";
    run.expect_states(claim, Some(State::Established), Some(State::Established))?;

    let (second, second_at) = server.next_event()?;
    let gap = Duration::from_millis(second_at.saturating_sub(failed_at));
    let claim = "a server that backs off fails again with EMFILE: errno";
    run.check_eq(claim, second, libc::EMFILE);
    let claim = "only after its pause (100 ms), not in a tight loop: time between the two failures";
    run.check_seconds(claim, gap, BACKOFF.as_secs_f64(), 10.0);
    let spin = count_immediate_failures()?;
    let claim =
        "a loop that retries at once spins: the listener stays readable and accept fails again and again, in 50 ms";
    run.check_at_least(claim, spin, 100, "failures");
    run.drop(Server, "kill the child", server);
    drop(pending);
    Ok(())
}

/// The child's descriptor limit: stdin, stdout, stderr, the listener and
/// the pipe leave 8 for connections.
const LIMIT: u64 = 13;
/// The child's pause after a failed accept.
const BACKOFF: Duration = Duration::from_millis(100);

/// How many times an immediate-retry accept loop fails in 50 ms, under an
/// exhausted descriptor table: measured in a second forked child.
fn count_immediate_failures() -> io::Result<u64> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let _waiting = TcpStream::connect(listener.local_addr()?)?;
    let pipe = Pipe::new()?;
    // SAFETY: the child makes only async-signal-safe system calls and exits.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => unsafe {
            keep_only(listener.as_raw_fd(), pipe.write.as_raw_fd());
            let (lfd, wfd) = (3, 4);
            set_nofile(0); // no descriptor can be allocated at all
            let start = now_ms();
            let mut failures: u64 = 0;
            while now_ms() - start < 50 {
                if libc::accept(lfd, std::ptr::null_mut(), std::ptr::null_mut()) < 0 {
                    failures += 1;
                }
            }
            libc::write(wfd, (&failures as *const u64).cast(), 8);
            libc::_exit(0)
        },
        child => {
            drop(pipe.write);
            let read = read_within::<8>(&std::fs::File::from(pipe.read));
            // SAFETY: stopping (if it has not exited) and reaping our own child.
            unsafe {
                libc::kill(child, libc::SIGKILL);
                libc::waitpid(child, std::ptr::null_mut(), 0)
            };
            Ok(u64::from_ne_bytes(read?))
        }
    }
}

/// The forked leaking server.
struct Leaker {
    pid: libc::pid_t,
    events: std::fs::File,
}

impl Leaker {
    fn fork(listener: &TcpListener) -> io::Result<Leaker> {
        let pipe = Pipe::new()?;
        // SAFETY: the child makes only async-signal-safe system calls, on
        // descriptors prepared before the fork, and never returns.
        match unsafe { libc::fork() } {
            -1 => Err(io::Error::last_os_error()),
            0 => unsafe { leak_forever(listener.as_raw_fd(), pipe.write.as_raw_fd()) },
            pid => {
                drop(pipe.write);
                Ok(Leaker {
                    pid,
                    events: std::fs::File::from(pipe.read),
                })
            }
        }
    }

    /// The child's next report: 0 for an accepted connection, else the
    /// errno of a failed accept; and when, in ms of the monotonic clock.
    fn next_event(&self) -> io::Result<(i32, u64)> {
        let event: [u8; 12] = read_within(&self.events)?;
        let errno = i32::from_ne_bytes(event[..4].try_into().expect("4 bytes"));
        let at = u64::from_ne_bytes(event[4..].try_into().expect("8 bytes"));
        Ok((errno, at))
    }
}

impl Drop for Leaker {
    fn drop(&mut self) {
        // SAFETY: signalling and reaping our own child.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            libc::waitpid(self.pid, std::ptr::null_mut(), 0);
        }
    }
}

/// The child: keep every accepted socket, report each accept, back off
/// after a failure. Raw system calls only.
unsafe fn leak_forever(listener: i32, events: i32) -> ! {
    keep_only(listener, events);
    set_nofile(LIMIT);
    loop {
        let fd = libc::accept(3, std::ptr::null_mut(), std::ptr::null_mut());
        let errno: i32 = if fd >= 0 { 0 } else { *libc::__errno_location() };
        let mut event = [0u8; 12];
        event[..4].copy_from_slice(&errno.to_ne_bytes());
        event[4..].copy_from_slice(&(now_ms() as u64).to_ne_bytes());
        if libc::write(4, event.as_ptr().cast(), 12) != 12 {
            libc::_exit(1);
        }
        if fd < 0 {
            let pause = libc::timespec {
                tv_sec: 0,
                tv_nsec: BACKOFF.as_nanos() as libc::c_long,
            };
            libc::nanosleep(&pause, std::ptr::null_mut()); // the backoff under test
        }
    }
}

/// In a forked child: moves `listener` to descriptor 3 and `pipe` to 4 and
/// closes every other descriptor above stderr. Copies of the parent's other
/// sockets (other scenarios run in other threads) would keep them open.
unsafe fn keep_only(listener: i32, pipe: i32) {
    let (high_listener, high_pipe) = (100, 101);
    libc::dup2(listener, high_listener);
    libc::dup2(pipe, high_pipe);
    libc::syscall(libc::SYS_close_range, 3u32, 99u32, 0u32);
    libc::syscall(libc::SYS_close_range, 102u32, u32::MAX, 0u32);
    libc::dup2(high_listener, 3);
    libc::dup2(high_pipe, 4);
    libc::close(high_listener);
    libc::close(high_pipe);
}

unsafe fn set_nofile(limit: u64) {
    let rlimit = libc::rlimit {
        rlim_cur: limit,
        rlim_max: limit,
    };
    libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit);
}

unsafe fn now_ms() -> i64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
    ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
}

/// `N` bytes from a child's pipe, waited for at most
/// [`wait::DEFAULT_DEADLINE`](crate::wait::DEFAULT_DEADLINE): a child that
/// reports nothing stops the scenario instead of holding it. The read runs
/// on a thread of its own, which ends when the child's end of the pipe
/// closes (the child is killed on every path).
fn read_within<const N: usize>(pipe: &std::fs::File) -> io::Result<[u8; N]> {
    let mut pipe = pipe.try_clone()?;
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; N];
        let _ = sender.send(pipe.read_exact(&mut buf).map(|()| buf));
    });
    receiver.recv_timeout(crate::wait::DEFAULT_DEADLINE).map_err(|_| {
        io::Error::new(
            io::ErrorKind::TimedOut,
            "the child reported nothing within its deadline",
        )
    })?
}

struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl Pipe {
    fn new() -> io::Result<Pipe> {
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills two descriptors, which we then own.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(unsafe {
            Pipe {
                read: OwnedFd::from_raw_fd(fds[0]),
                write: OwnedFd::from_raw_fd(fds[1]),
            }
        })
    }
}
