//! Hostile peers for the book's async samples: [`meet_every_peer`] runs a
//! connection handler (a task that owns a `tokio::net::TcpStream`) against
//! each [`Peer`] in turn, and judges it by the budgets of
//! `examples/tests/hostile.rs`, which the programs meet:
//!
//! - no busy loop: over a second in which the peer holds the connection
//!   and does nothing, a ticker task on the handler's own `current_thread`
//!   runtime keeps ticking, and the runtime's thread uses less than
//!   [`Budgets::idle_cpu`] of CPU;
//! - when the peer leaves (FIN or RST), the handler returns within
//!   [`Budgets::deadline`];
//! - then the server's socket is neither ESTABLISHED nor in CLOSE_WAIT,
//!   no descriptor of the process refers to it, and the process holds no
//!   more descriptors than before the run.
//!
//! What a handler failed comes back as [`Findings`], typed, for a test to
//! compare with what it expects (the spinning `writer_task` of
//! `examples/tests/hostile.rs` is one).
//!
//! A handler that never yields cannot be stopped from outside: after the
//! deadline its thread is left behind, still running.

use std::fmt;
use std::future::Future;
use std::io::{self, ErrorKind, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use crate::observe::{describe, End, State};
use crate::wait;

/// A hostile peer: what it does with its connection before it leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Peer {
    /// Connects, says nothing, then closes.
    Silent,
    /// Sends up to 256 KiB (until its send buffer is full) and never reads
    /// what the server sends; then closes.
    SendsNeverReads,
    /// Sends one line and its FIN, then closes.
    SendsThenFin,
    /// Half-closes at once, sending nothing; then closes.
    HalfCloses,
    /// Sends half a request, then resets the connection (SO_LINGER 0).
    ResetsMidRequest,
    /// Sends 4 MiB of one line with no end, as fast as the server takes
    /// it, never reading; then closes.
    Floods,
}

impl Peer {
    /// Every peer, in the order they are met.
    pub const ALL: [Peer; 6] = [
        Peer::Silent,
        Peer::SendsNeverReads,
        Peer::SendsThenFin,
        Peer::HalfCloses,
        Peer::ResetsMidRequest,
        Peer::Floods,
    ];

    /// The peer in words.
    pub fn name(self) -> &'static str {
        match self {
            Peer::Silent => "silent",
            Peer::SendsNeverReads => "sends, never reads",
            Peer::SendsThenFin => "sends then FIN",
            Peer::HalfCloses => "half-closes",
            Peer::ResetsMidRequest => "resets mid-request",
            Peer::Floods => "floods",
        }
    }

    /// Its hostile act, on a fresh connection.
    fn act(self, stream: &TcpStream) -> io::Result<()> {
        match self {
            Peer::Silent => {}
            Peer::SendsNeverReads => {
                stream.set_nonblocking(true)?;
                let line = b"a request that is answered but whose answer is never read\n";
                for _ in 0..(256 * 1024 / line.len()) {
                    match (&*stream).write(line) {
                        Ok(_) => {}
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(_) => break, // the server already closed: its right
                    }
                }
            }
            Peer::SendsThenFin => {
                (&*stream).write_all(b"hello\n")?;
                stream.shutdown(Shutdown::Write)?;
            }
            Peer::HalfCloses => stream.shutdown(Shutdown::Write)?,
            Peer::ResetsMidRequest => (&*stream).write_all(b"half a req")?,
            Peer::Floods => {
                stream.set_write_timeout(Some(Duration::from_secs(2)))?;
                let chunk = [b'x'; 64 * 1024];
                for _ in 0..64 {
                    if (&*stream).write_all(&chunk).is_err() {
                        break; // the server stopped reading or closed: its right
                    }
                }
            }
        }
        Ok(())
    }

    /// Leaves: a close (a FIN, or an RST if the server's bytes lie unread
    /// here), or, for [`Peer::ResetsMidRequest`], an RST.
    fn leave(self, stream: TcpStream) -> io::Result<()> {
        if self == Peer::ResetsMidRequest {
            socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO))?;
        }
        drop(stream);
        Ok(())
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a handler did wrong against a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// A busy loop: in the idle second the ticker beside it stalled, or
    /// its thread used more CPU than the budget.
    Spins,
    /// It had not returned when the deadline ran out after the peer left.
    Hangs,
    /// It panicked.
    Panics,
    /// After it returned, the server's socket was still ESTABLISHED or in
    /// CLOSE_WAIT.
    HoldsSocket,
    /// After it returned, a descriptor still referred to the connection,
    /// or the process held more descriptors than before the run.
    LeaksDescriptor,
}

/// One fault against one peer, with what was measured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub peer: Peer,
    pub fault: Fault,
    pub detail: String,
}

/// Every fault a handler showed; empty for none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Findings(pub Vec<Finding>);

impl Findings {
    /// The faults alone, by peer, for comparing with an expected list.
    pub fn faults(&self) -> Vec<(Peer, Fault)> {
        self.0.iter().map(|f| (f.peer, f.fault)).collect()
    }

    /// The peers against which the handler showed `fault`.
    pub fn peers_with(&self, fault: Fault) -> Vec<Peer> {
        self.0.iter().filter(|f| f.fault == fault).map(|f| f.peer).collect()
    }
}

impl fmt::Display for Findings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the handler failed {} hostile-peer budget(s):", self.0.len())?;
        for finding in &self.0 {
            write!(f, " [{}: {:?}: {}]", finding.peer, finding.fault, finding.detail)?;
        }
        Ok(())
    }
}

impl std::error::Error for Findings {}

impl From<Findings> for io::Error {
    fn from(findings: Findings) -> io::Error {
        io::Error::other(findings)
    }
}

/// The budgets a handler is judged by. The defaults hold on a loaded
/// machine of two cores.
#[derive(Clone, Copy, Debug)]
pub struct Budgets {
    /// How long the handler may take to return once the peer has left.
    pub deadline: Duration,
    /// CPU time the runtime's thread may use in the idle second.
    pub idle_cpu: Duration,
    /// Ticks (one per 10 ms when nothing hogs the thread) the ticker must
    /// make in the idle second.
    pub min_ticks: u64,
    /// Whether to count every descriptor of the process. Leave it on in a
    /// process of its own (a book snippet); a test process that runs other
    /// tests beside this one opens descriptors of its own meanwhile. The
    /// connection's own descriptor is looked for either way.
    pub count_descriptors: bool,
}

impl Default for Budgets {
    fn default() -> Budgets {
        Budgets {
            deadline: Duration::from_secs(25),
            idle_cpu: Duration::from_millis(100),
            min_ticks: 20,
            count_descriptors: true,
        }
    }
}

/// The ticker's period.
const TICK: Duration = Duration::from_millis(10);

/// The window measured for a busy loop.
const IDLE_WINDOW: Duration = Duration::from_secs(1);

/// One run at a time per process: the descriptor counts would mix.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Runs `handler` against every [`Peer`] with the default [`Budgets`];
/// `Ok` if it met them all.
pub fn meet_every_peer<H, F>(handler: H) -> Result<(), Findings>
where
    H: Fn(tokio::net::TcpStream) -> F + Send + Sync + 'static,
    F: Future<Output = io::Result<()>> + 'static,
{
    meet_every_peer_within(Budgets::default(), handler)
}

/// [`meet_every_peer`] with the given budgets.
pub fn meet_every_peer_within<H, F>(budgets: Budgets, handler: H) -> Result<(), Findings>
where
    H: Fn(tokio::net::TcpStream) -> F + Send + Sync + 'static,
    F: Future<Output = io::Result<()>> + 'static,
{
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let handler = Arc::new(handler);
    let mut findings = Vec::new();
    for peer in Peer::ALL {
        let handler = Arc::clone(&handler);
        match meet(peer, budgets, move |stream| (*handler)(stream)) {
            Ok(found) => findings.extend(found),
            Err(e) => findings.push(Finding {
                peer,
                fault: Fault::Hangs,
                detail: format!("the harness could not run it: {e}"),
            }),
        }
    }
    if findings.is_empty() {
        Ok(())
    } else {
        Err(Findings(findings))
    }
}

/// What the handler's thread reports.
enum Report {
    /// The handler returned (an error is no fault: a peer that resets
    /// makes one).
    Returned,
    /// The runtime was dropped: the thread is done with every descriptor.
    Stopped,
}

/// One peer against a fresh run of the handler.
fn meet<H, F>(peer: Peer, budgets: Budgets, handler: H) -> io::Result<Vec<Finding>>
where
    H: FnOnce(tokio::net::TcpStream) -> F + Send + 'static,
    F: Future<Output = io::Result<()>> + 'static,
{
    let mut found = Vec::new();
    let finding = |fault, detail: String| Finding { peer, fault, detail };
    let before = descriptors()?.len();

    let listener = TcpListener::bind("127.0.0.1:0")?;
    let client = TcpStream::connect(listener.local_addr()?)?;
    let (server, _) = listener.accept()?;
    drop(listener);
    let end = End::of(&server)?;
    let inode = socket_inode(&server)?;
    server.set_nonblocking(true)?;

    let ticks = Arc::new(AtomicU64::new(0));
    let tid = Arc::new(AtomicI32::new(0));
    let (report, reports) = mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    {
        let (ticks, tid) = (Arc::clone(&ticks), Arc::clone(&tid));
        std::thread::Builder::new()
            .name(format!("hostile: {peer}"))
            .spawn(move || {
                // SAFETY: gettid has no preconditions.
                tid.store(unsafe { libc::gettid() }, Ordering::SeqCst);
                let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(runtime) => runtime,
                    Err(_) => return, // seen as a thread that ended without a result
                };
                runtime.block_on(async {
                    tokio::spawn(async move {
                        loop {
                            tokio::time::sleep(TICK).await;
                            ticks.fetch_add(1, Ordering::SeqCst);
                        }
                    });
                    if let Ok(stream) = tokio::net::TcpStream::from_std(server) {
                        let _ = handler(stream).await;
                        let _ = report.send(Report::Returned);
                    }
                    let _ = stopped.await; // the ticker goes on until the harness is done
                });
                drop(runtime);
                let _ = report.send(Report::Stopped);
            })?;
    }

    // The act, then a second in which the peer holds the connection and does nothing.
    peer.act(&client)?;
    let tid = wait::until("the handler's thread to start", budgets.deadline, || {
        Ok(Some(tid.load(Ordering::SeqCst)).filter(|&tid| tid != 0))
    })?;
    let (ticks_before, cpu_before) = (ticks.load(Ordering::SeqCst), thread_cpu(tid));
    std::thread::sleep(IDLE_WINDOW); // the window measured, not a wait for an event
    let ticked = ticks.load(Ordering::SeqCst) - ticks_before;
    let used = thread_cpu(tid).saturating_sub(cpu_before);
    if ticked < budgets.min_ticks || used >= budgets.idle_cpu {
        found.push(finding(
            Fault::Spins,
            format!("in the idle second the ticker ticked {ticked} times (at least {} expected) and the runtime's thread used {used:?} of CPU", budgets.min_ticks),
        ));
    }

    peer.leave(client)?;
    match reports.recv_timeout(budgets.deadline) {
        Ok(Report::Returned) => {}
        Ok(Report::Stopped) => unreachable!("the thread stops only after the handler returned"),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            found.push(finding(
                Fault::Panics,
                "the handler's thread ended without its result".into(),
            ));
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            let state = end.state()?;
            found.push(finding(
                Fault::Hangs,
                format!(
                    "{:?} after the peer left the handler had not returned; the server's socket is {}",
                    budgets.deadline,
                    describe(state)
                ),
            ));
            return Ok(found); // its thread is left behind: nothing more to judge
        }
    }
    // A drop closes at once: what is not closed soon after the return stays open.
    let remaining = wait::DEFAULT_DEADLINE;

    // The handler has returned: its stream must be closed.
    let mut state = None;
    let closed = wait::settle(
        remaining,
        || {
            state = end.state()?;
            Ok(!matches!(state, Some(State::Established | State::CloseWait)))
        },
        |closed| *closed,
    )?;
    if !closed {
        found.push(finding(
            Fault::HoldsSocket,
            format!(
                "the handler returned and the server's socket is still {}",
                describe(state)
            ),
        ));
    }
    let held = wait::settle(remaining, || holders(&inode), Vec::is_empty)?;
    if !held.is_empty() {
        found.push(finding(
            Fault::LeaksDescriptor,
            format!("the handler returned and descriptors {held:?} still refer to the connection"),
        ));
    }

    // The runtime goes: its own descriptors with it.
    let _ = stop.send(());
    let stopped = matches!(reports.recv_timeout(remaining), Ok(Report::Stopped));
    if budgets.count_descriptors && stopped {
        let mut now = 0;
        let back = wait::settle(
            remaining,
            || {
                now = descriptors()?.len();
                Ok(now <= before)
            },
            |back| *back,
        )?;
        if !back {
            found.push(finding(
                Fault::LeaksDescriptor,
                format!("the process holds {now} descriptors, {before} before the run"),
            ));
        }
    }
    Ok(found)
}

/// The process's open descriptors, each with what it refers to.
fn descriptors() -> io::Result<Vec<(String, String)>> {
    std::fs::read_dir("/proc/self/fd")?
        .filter_map(Result::ok)
        .map(|entry| {
            let target = std::fs::read_link(entry.path()).unwrap_or_default();
            Ok((
                entry.file_name().to_string_lossy().into_owned(),
                target.to_string_lossy().into_owned(),
            ))
        })
        .collect()
}

/// The inode of a socket, as `/proc/self/fd` shows it: `socket:[INODE]`.
fn socket_inode(stream: &TcpStream) -> io::Result<String> {
    use std::os::fd::AsRawFd;
    let link = std::fs::read_link(format!("/proc/self/fd/{}", stream.as_raw_fd()))?;
    Ok(link.to_string_lossy().into_owned())
}

/// The descriptors of the process that refer to `inode`.
fn holders(inode: &str) -> io::Result<Vec<String>> {
    Ok(descriptors()?
        .into_iter()
        .filter(|(_, target)| target == inode)
        .map(|(fd, _)| fd)
        .collect())
}

/// User and system CPU time a thread of this process has used so far.
fn thread_cpu(tid: i32) -> Duration {
    cpu_time(format!("/proc/self/task/{tid}/stat"))
}

/// User and system CPU time used so far by the process or thread whose
/// `/proc/.../stat` is at `stat`.
pub fn cpu_time(stat: impl AsRef<std::path::Path>) -> Duration {
    let stat = std::fs::read_to_string(stat).unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, f)| f)
        .split_whitespace()
        .collect();
    // SAFETY: sysconf has no preconditions.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
        .sum();
    Duration::from_secs_f64(ticks / tick)
}
