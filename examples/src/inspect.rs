//! `tcpclose inspect PID`: a live process's TCP sockets, as the book would
//! diagnose them. Descriptors come from `/proc/PID/fd` (a socket's link is
//! `socket:[INODE]`); the sockets, with queues and timers, from the table
//! of the process's own network namespace: a sock_diag dump when that is
//! our namespace too, `/proc/PID/net/tcp` and `tcp6` otherwise. A socket
//! in no table is TCP if its `system.sockprotoname` attribute says so. The
//! counters come from `/proc/PID/net/netstat` and `snmp`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::CStr;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::observe::{State, TimerKind};

/// One row of a `/proc/net/tcp` table, or the same socket from a
/// sock_diag dump ([`Row::from_diag`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub state: State,
    pub send_q: u64,
    pub recv_q: u64,
    pub timer: Option<TimerKind>,
    /// Time left on the timer, in seconds.
    pub timer_left: f64,
    /// 0 for a socket no descriptor refers to (an orphan, TIME_WAIT).
    pub inode: u64,
}

/// A TCP socket of the process, by descriptor.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Socket {
    pub fd: i32,
    pub inode: u64,
    /// As the book names states (`CLOSE_WAIT`); `None` when the socket is
    /// in no table: closed by an RST or a timeout while still held, or
    /// never connected.
    pub state: Option<State>,
    pub local: Option<SocketAddr>,
    pub remote: Option<SocketAddr>,
    pub recv_q: u64,
    pub send_q: u64,
    pub timer: Option<TimerKind>,
    pub timer_left: Option<f64>,
    /// With `--watch`: how long the socket has been in this state, at
    /// least, in seconds.
    pub seen_for: Option<f64>,
}

/// A pattern the book explains, found in the process.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub fd: Option<i32>,
    pub what: String,
    pub advice: String,
    /// The chapter that proves it: its address in the published book.
    pub chapter: String,
}

/// What a finding is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    /// A socket in CLOSE_WAIT: the peer closed, the process holds on.
    CloseWait,
    /// A descriptor whose socket is in no table (reset, timed out).
    NotInTable,
    /// A socket whose peer's window is zero.
    ZeroWindow,
    /// Sockets on the process's ports that no descriptor holds.
    Orphans,
}

/// Everything `inspect` found.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub pid: u32,
    pub command: String,
    pub sockets: Vec<Socket>,
    /// Sockets on the process's ports that no descriptor refers to any
    /// more, by state: orphans (FIN_WAIT_1, FIN_WAIT_2, LAST_ACK, CLOSING)
    /// and TIME_WAIT.
    pub without_descriptor: BTreeMap<State, usize>,
    pub findings: Vec<Finding>,
    /// With `--watch`: the TCP counters of the process's network
    /// namespace that moved, and by how much.
    pub counters: BTreeMap<String, u64>,
    pub watched_seconds: Option<f64>,
}

/// The counters worth watching: aborts, resets and their causes.
pub const COUNTERS: [&str; 8] = [
    "TcpExtTCPAbortOnClose",
    "TcpExtTCPAbortOnData",
    "TcpExtTCPAbortOnTimeout",
    "TcpExtTCPAbortOnLinger",
    "TcpExtTCPAbortOnMemory",
    "TcpExtListenOverflows",
    "TcpOutRsts",
    "TcpEstabResets",
];

/// Inspects process `pid` once, or, with `watch`, samples it every second
/// for that long; `started` runs once the counters have been read.
pub fn inspect(pid: u32, watch: Option<Duration>, started: impl FnOnce(&str)) -> io::Result<Report> {
    let proc_dir = Path::new("/proc").join(pid.to_string());
    let command = std::fs::read_to_string(proc_dir.join("comm"))
        .map_err(|e| io::Error::new(e.kind(), format!("no process {pid}: {e}")))?
        .trim()
        .to_string();
    let start = Instant::now();
    // Only a watch reports counters.
    let counters_before = match watch {
        Some(_) => counters(&proc_dir)?,
        None => BTreeMap::new(),
    };
    started(&command);
    let mut first_seen: BTreeMap<(u64, State), Instant> = BTreeMap::new();
    let (mut sockets, mut rows) = sample(&proc_dir)?;
    if let Some(watch) = watch {
        loop {
            let now = Instant::now();
            for s in &sockets {
                if let Some(state) = s.state {
                    first_seen.entry((s.inode, state)).or_insert(now);
                }
            }
            if now.duration_since(start) >= watch {
                break;
            }
            // Sampling, not synchronising: a reading a second.
            std::thread::sleep(Duration::from_secs(1).min(watch - now.duration_since(start)));
            (sockets, rows) = sample(&proc_dir)?;
        }
        let now = Instant::now();
        for s in &mut sockets {
            s.seen_for = s
                .state
                .and_then(|state| first_seen.get(&(s.inode, state)))
                .map(|t| now.duration_since(*t).as_secs_f64());
        }
    }
    let mut moved = BTreeMap::new();
    if watch.is_some() {
        let after = counters(&proc_dir)?;
        for name in COUNTERS {
            let delta = after
                .get(name)
                .copied()
                .unwrap_or(0)
                .saturating_sub(counters_before.get(name).copied().unwrap_or(0));
            if delta > 0 {
                moved.insert(name.to_string(), delta);
            }
        }
    }
    let without_descriptor = without_descriptor(&sockets, &rows);
    let findings = findings(&sockets, &without_descriptor);
    Ok(Report {
        pid,
        command,
        sockets,
        without_descriptor,
        findings,
        counters: moved,
        watched_seconds: watch.map(|_| start.elapsed().as_secs_f64()),
    })
}

/// The process's TCP descriptors and its namespace's whole table.
fn sample(proc_dir: &Path) -> io::Result<(Vec<Socket>, Vec<Row>)> {
    let fd_dir = proc_dir.join("fd");
    // The table and the descriptors are independent: read them at once,
    // the table on a thread of its own (in this thread's namespaces).
    let (rows, descriptors) = std::thread::scope(|scope| {
        let rows = scope.spawn(|| namespace_rows(proc_dir));
        let mut descriptors = Vec::new();
        let listed = socket_descriptors(&fd_dir, |fd, inode| descriptors.push((fd, inode)));
        let rows = rows.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        listed.map(|()| (rows, descriptors))
    })?;
    let rows = rows?;
    let mut by_inode = HashMap::with_capacity(rows.len());
    for row in rows.iter().filter(|r| r.inode != 0) {
        by_inode.insert(row.inode, row);
    }
    let mut sockets = Vec::with_capacity(descriptors.len());
    for (fd, inode) in descriptors {
        let row = by_inode.get(&inode).copied();
        // A socket in a TCP table is TCP; one in none may be too.
        if row.is_none() && !is_tcp(&fd_dir.join(fd.to_string())) {
            continue;
        }
        sockets.push(Socket {
            fd,
            inode,
            state: row.map(|r| r.state),
            local: row.map(|r| r.local),
            remote: row.filter(|r| r.state != State::Listen).map(|r| r.remote),
            recv_q: row.map_or(0, |r| r.recv_q),
            send_q: row.map_or(0, |r| r.send_q),
            timer: row.and_then(|r| r.timer),
            timer_left: row.and_then(|r| r.timer.map(|_| r.timer_left)),
            seen_for: None,
        });
    }
    sockets.sort_by_key(|s| s.fd);
    Ok((sockets, rows))
}

/// The TCP table of the process's network namespace: when it is the
/// calling thread's, from a sock_diag dump, which is what `ss` reads and
/// is much faster for a large table than the text the kernel writes for
/// `/proc/PID/net/tcp`; otherwise (or if the dump fails: a kernel without
/// `tcp_diag`) from that text.
fn namespace_rows(proc_dir: &Path) -> io::Result<Vec<Row>> {
    if same_network_namespace(proc_dir) {
        if let Ok(rows) = diag_rows() {
            return Ok(rows);
        }
    }
    let mut rows = table(&proc_dir.join("net/tcp"))?;
    rows.extend(table(&proc_dir.join("net/tcp6"))?);
    Ok(rows)
}

/// Whether process `proc_dir` lives in the calling thread's network
/// namespace: the same namespace file (device and inode).
fn same_network_namespace(proc_dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (
        std::fs::metadata(proc_dir.join("ns/net")),
        std::fs::metadata("/proc/thread-self/ns/net"),
    ) {
        (Ok(theirs), Ok(ours)) => (theirs.dev(), theirs.ino()) == (ours.dev(), ours.ino()),
        _ => false,
    }
}

/// The TCP sockets of the calling thread's network namespace, IPv4 then
/// IPv6, from a sock_diag dump, as [`table`] reads them from
/// `/proc/net/tcp` and `tcp6`.
pub fn diag_rows() -> io::Result<Vec<Row>> {
    let mut rows = Vec::new();
    crate::sockdiag::dump_tcp(|m| rows.push(Row::from_diag(m)))?;
    Ok(rows)
}

impl Row {
    /// A socket of a sock_diag dump, with the values `/proc/net/tcp` shows
    /// for it. The two differ in two places: for a listener sock_diag sends
    /// the backlog's limit as the send queue, where the text shows the
    /// bytes sent and not acknowledged, none; and it counts a timer's time
    /// left in milliseconds, where the text counts ticks of 10 ms, rounded
    /// down.
    pub fn from_diag(m: &crate::sockdiag::Message) -> Row {
        let state = State::from_kernel(m.state);
        Row {
            local: m.local,
            remote: m.remote,
            state,
            send_q: if state == State::Listen { 0 } else { m.wqueue.into() },
            recv_q: m.rqueue.into(),
            timer: TimerKind::from_kernel(m.timer),
            timer_left: f64::from(m.expires_ms / 10) / 100.0,
            inode: m.inode.into(),
        }
    }
}

/// Calls `each` with every descriptor in `fd_dir` (`/proc/PID/fd`) that
/// is a socket, and the socket's inode. Thousands of descriptors: one
/// `readlinkat` each, relative to the open directory, and no allocation.
fn socket_descriptors(fd_dir: &Path, mut each: impl FnMut(i32, u64)) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    struct Dir(*mut libc::DIR);
    impl Drop for Dir {
        fn drop(&mut self) {
            // SAFETY: the stream came from opendir and is closed once.
            unsafe { libc::closedir(self.0) };
        }
    }
    let path = std::ffi::CString::new(fd_dir.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: a NUL-terminated path.
    let dir = Dir(unsafe { libc::opendir(path.as_ptr()) });
    if dir.0.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: an open directory stream.
    let dir_fd = unsafe { libc::dirfd(dir.0) };
    let mut link = [0u8; 64];
    loop {
        // readdir tells its end from an error by errno alone.
        // SAFETY: errno is this thread's; the stream is open.
        let entry = unsafe {
            *libc::__errno_location() = 0;
            libc::readdir(dir.0)
        };
        if entry.is_null() {
            return match io::Error::last_os_error() {
                e if e.raw_os_error() == Some(0) => Ok(()),
                e => Err(e),
            };
        }
        // SAFETY: readdir returned an entry, valid until the next call,
        // whose name is NUL-terminated.
        let name = unsafe { CStr::from_ptr((*entry).d_name.as_ptr()) };
        // `.` and `..` are no descriptors.
        let Some(fd) = std::str::from_utf8(name.to_bytes())
            .ok()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: a name in the open directory; the buffer's length is passed.
        let len = unsafe { libc::readlinkat(dir_fd, name.as_ptr(), link.as_mut_ptr().cast(), link.len()) };
        // A descriptor may close between the listing and the look.
        let Ok(len) = usize::try_from(len) else { continue };
        if let Some(inode) = socket_inode(&link[..len]) {
            each(fd, inode);
        }
    }
}

/// The inode of a descriptor's link `socket:[INODE]`; `None` for other files.
fn socket_inode(link: &[u8]) -> Option<u64> {
    let digits = link.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Whether the socket behind a `/proc/PID/fd` link is TCP (`TCP`, `TCPv6`).
fn is_tcp(link: &Path) -> bool {
    let Ok(path) = std::ffi::CString::new(link.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    let mut name = [0u8; 32];
    // SAFETY: both strings are NUL-terminated; the buffer's length is passed.
    let len = unsafe {
        libc::getxattr(
            path.as_ptr(),
            c"system.sockprotoname".as_ptr(),
            name.as_mut_ptr().cast(),
            name.len(),
        )
    };
    len > 0 && name.starts_with(b"TCP")
}

/// Parses a `/proc/net/tcp` or `tcp6` table; a missing file (no IPv6) is
/// an empty table.
pub fn table(path: &Path) -> io::Result<Vec<Row>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(text.lines().skip(1).filter_map(parse_row).collect())
}

/// One line: `sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...`.
fn parse_row(line: &str) -> Option<Row> {
    let f: Vec<&str> = line.split_whitespace().collect();
    let (send_q, recv_q) = f.get(4)?.split_once(':')?;
    let (timer, when) = f.get(5)?.split_once(':')?;
    let timer = TimerKind::from_kernel(u8::from_str_radix(timer, 16).ok()?);
    Some(Row {
        local: parse_addr(f.get(1)?)?,
        remote: parse_addr(f.get(2)?)?,
        state: State::from_kernel(u8::from_str_radix(f.get(3)?, 16).ok()?),
        send_q: u64::from_str_radix(send_q, 16).ok()?,
        recv_q: u64::from_str_radix(recv_q, 16).ok()?,
        timer,
        // In clock ticks of 10 ms.
        timer_left: u64::from_str_radix(when, 16).ok()? as f64 / 100.0,
        inode: f.get(9)?.parse().ok()?,
    })
}

/// `0100007F:1F90` is 127.0.0.1:8080: the address in the kernel's byte
/// order, 32 bits at a time, then the port.
fn parse_addr(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words: Option<Vec<[u8; 4]>> = (0..ip.len() / 8)
        .map(|i| {
            u32::from_str_radix(&ip[i * 8..i * 8 + 8], 16)
                .ok()
                .map(u32::to_ne_bytes)
        })
        .collect();
    let bytes: Vec<u8> = words?.concat();
    let ip = match bytes.len() {
        4 => IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3])),
        16 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// The TCP counters of the calling thread's network namespace (a
/// scenario's own), by their nstat names, as [`COUNTERS`] spells them.
pub fn thread_counters() -> io::Result<BTreeMap<String, u64>> {
    counters(Path::new("/proc/thread-self"))
}

/// How much counter `name` (an nstat name) moved from `before` to
/// `after`; an error when this kernel has no such counter.
pub fn counter_moved(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>, name: &str) -> io::Result<u64> {
    match (before.get(name), after.get(name)) {
        (Some(before), Some(after)) => Ok(after.saturating_sub(*before)),
        _ => Err(io::Error::other(format!("no counter {name} on this kernel"))),
    }
}

/// The namespace's TCP counters, `TcpExtName` and `TcpName`.
fn counters(proc_dir: &Path) -> io::Result<BTreeMap<String, u64>> {
    let mut all = BTreeMap::new();
    for file in ["net/netstat", "net/snmp"] {
        let text = std::fs::read_to_string(proc_dir.join(file))?;
        let lines: Vec<&str> = text.lines().collect();
        // Each table is a line of names, then a line of values.
        for pair in lines.chunks(2) {
            let [names, values] = pair else { continue };
            let (Some((prefix, names)), Some((_, values))) = (names.split_once(": "), values.split_once(": ")) else {
                continue;
            };
            for (name, value) in names.split_whitespace().zip(values.split_whitespace()) {
                if let Ok(value) = value.parse::<u64>() {
                    all.insert(format!("{prefix}{name}"), value);
                }
            }
        }
    }
    Ok(all)
}

/// Sockets on the process's local addresses that no descriptor holds.
fn without_descriptor(sockets: &[Socket], rows: &[Row]) -> BTreeMap<State, usize> {
    let ports: HashSet<u16> = sockets.iter().filter_map(|s| s.local.map(|a| a.port())).collect();
    let mut counts = BTreeMap::new();
    for row in rows.iter().filter(|r| r.inode == 0 && ports.contains(&r.local.port())) {
        *counts.entry(row.state).or_insert(0) += 1;
    }
    counts
}

fn findings(sockets: &[Socket], without_descriptor: &BTreeMap<State, usize>) -> Vec<Finding> {
    let mut found = Vec::new();
    for s in sockets {
        let seen = s.seen_for.map_or(String::new(), |t| format!(", seen for {t:.0} s"));
        match s.state {
            Some(State::CloseWait) => found.push(Finding {
                kind: FindingKind::CloseWait,
                fd: Some(s.fd),
                // The receive queue counts the peer's FIN as one byte until
                // a read reaches it; a read that returns the last bytes
                // takes a FIN queued behind them, without returning Ok(0).
                what: match s.recv_q {
                    0 => format!("CLOSE_WAIT{seen}: the peer closed, this process read everything, the end included, and still holds the stream"),
                    1 => format!("CLOSE_WAIT{seen}: the peer closed, and no read of this process has returned Ok(0) yet"),
                    n => format!(
                        "CLOSE_WAIT{seen}: the peer closed, and this process stopped reading: {} bytes and the end of the stream are unread",
                        n - 1
                    ),
                },
                advice: "treat Ok(0) as the end: drop the stream, and remove it from every map and clone".into(),
                chapter: crate::cli::chapter_url("eof-close-wait.md"),
            }),
            None => found.push(Finding {
                kind: FindingKind::NotInTable,
                fd: Some(s.fd),
                what: "a TCP socket in no table: reset or timed out while this process still holds it (or never connected); ss cannot show it".into(),
                advice: "an error ends the connection, not the descriptor: drop the stream after BrokenPipe, ConnectionReset or TimedOut".into(),
                chapter: crate::cli::chapter_url("eof-close-wait.md"),
            }),
            Some(_) if s.timer == Some(TimerKind::ZeroWindowProbe) => found.push(Finding {
                kind: FindingKind::ZeroWindow,
                fd: Some(s.fd),
                what: format!("{} bytes waiting to be sent: the peer's window is zero, it stopped reading", s.send_q),
                advice: "bound the wait: TCP_USER_TIMEOUT, or a write timeout of your own".into(),
                chapter: crate::cli::chapter_url("dead-peers.md"),
            }),
            Some(_) => {}
        }
    }
    let orphans: usize = [State::FinWait1, State::FinWait2, State::LastAck, State::Closing]
        .iter()
        .filter_map(|state| without_descriptor.get(state))
        .sum();
    if orphans > 0 {
        found.push(Finding {
            kind: FindingKind::Orphans,
            fd: None,
            what: format!("{orphans} orphaned sockets on its ports: closed by the process, not yet finished by the kernel"),
            advice: "orphans end on the kernel's timers (tcp_fin_timeout, tcp_orphan_retries); many of them mean peers that do not close or read".into(),
            chapter: crate::cli::chapter_url("fin-wait-2.md"),
        });
    }
    found
}

/// The report as a person reads it.
pub fn to_text(report: &Report) -> String {
    let mut out = format!(
        "process {} ({}): {} TCP sockets\n",
        report.pid,
        report.command,
        report.sockets.len()
    );
    if !report.sockets.is_empty() {
        out.push_str(&format!(
            "  {:>4}  {:<12} {:<24} {:<24} {:>7} {:>7}  timer\n",
            "fd", "state", "local", "remote", "recv-q", "send-q"
        ));
    }
    for s in &report.sockets {
        let addr = |a: Option<SocketAddr>| a.map_or("*".to_string(), |a| a.to_string());
        let timer = match (s.timer, s.timer_left) {
            (Some(kind), Some(left)) => format!("{kind:?} {left:.1} s"),
            _ => String::new(),
        };
        out.push_str(&format!(
            "  {:>4}  {:<12} {:<24} {:<24} {:>7} {:>7}  {timer}\n",
            s.fd,
            s.state.map_or("(no table)", State::name),
            addr(s.local),
            addr(s.remote),
            s.recv_q,
            s.send_q
        ));
    }
    if !report.without_descriptor.is_empty() {
        let counts: Vec<String> = report
            .without_descriptor
            .iter()
            .map(|(s, n)| format!("{n} {s}"))
            .collect();
        out.push_str(&format!("without a descriptor, on its ports: {}\n", counts.join(", ")));
    }
    if report.findings.is_empty() {
        out.push_str("findings: none\n");
    } else {
        out.push_str("findings:\n");
    }
    for f in &report.findings {
        let fd = f.fd.map_or(String::new(), |fd| format!("fd {fd}: "));
        out.push_str(&format!(
            "  {fd}{}\n    -> {} (book: {})\n",
            f.what, f.advice, f.chapter
        ));
    }
    if let Some(seconds) = report.watched_seconds {
        let moved: Vec<String> = report.counters.iter().map(|(n, d)| format!("{n} +{d}")).collect();
        let moved = if moved.is_empty() {
            "none".to_string()
        } else {
            moved.join(", ")
        };
        out.push_str(&format!("counters that moved in {seconds:.0} s: {moved}\n"));
    }
    out.push_str(&format!(
        "how to read this: {}\n",
        crate::cli::chapter_url("diagnosing.md")
    ));
    out
}

/// The server port of [`leak_demo`].
pub const DEMO_PORT: u16 = 8080;

/// Makes this process a small leaking server, for the book's example:
/// a listener on 127.0.0.1:8080; two clients (ports 50001 and 50002) that
/// connect and close, whose streams the server keeps in CLOSE_WAIT; and a
/// third (50003) that resets its connection, whose stream the server
/// keeps too, gone from the table. Fixed ports: run it in a network
/// namespace of its own. Returns what must stay open.
pub fn leak_demo() -> io::Result<(std::net::TcpListener, Vec<std::net::TcpStream>)> {
    use crate::observe::End;
    use socket2::{Domain, SockRef, Socket, Type};
    // Descriptors inherited from whoever started us (cargo's jobserver
    // pipes, say) would shift the numbers the book shows: close them.
    // SAFETY: this process owns nothing yet beyond standard input, output
    // and error; close_range leaves those open.
    if unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, DEMO_PORT))?;
    let mut kept = Vec::new();
    for (port, reset) in [(50001, false), (50002, false), (50003, true)] {
        let client = Socket::new(Domain::IPV4, Type::STREAM, None)?;
        client.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)).into())?;
        client.connect(&listener.local_addr()?.into())?;
        let client: std::net::TcpStream = client.into();
        let (server, _) = listener.accept()?;
        let server_end = End::of(&server)?;
        if reset {
            SockRef::from(&client).set_linger(Some(Duration::ZERO))?;
        }
        drop(client);
        if reset {
            server_end.wait_gone()?;
        } else {
            server_end.wait_for(State::CloseWait)?;
        }
        kept.push(server);
    }
    Ok((listener, kept))
}

/// The report of the demo process `pid` as the book shows it: its PID,
/// which varies, written `PID`.
pub fn demo_text(report: &Report) -> String {
    to_text(report).replacen(&format!("process {} ", report.pid), "process PID ", 1)
}

/// Runs `lab leak-demo` (the `tcpclose` binary), inspects it and returns
/// the report as the book shows it.
pub fn demo(lab: &Path) -> io::Result<String> {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let mut child = Command::new(lab)
        .arg("leak-demo")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        // The child waits for its states with deadlines, then says ready or exits.
        std::io::BufReader::new(out).read_line(&mut line)?;
    }
    let report = if line.trim() == "ready" {
        inspect(child.id(), None, |_| {})
    } else {
        Err(io::Error::other(format!("{} leak-demo did not start", lab.display())))
    };
    drop(child.stdin.take());
    child.wait()?;
    Ok(demo_text(&report?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_row_of_proc_net_tcp() {
        let line =
            "   1: 0100007F:9582 0100007F:91B1 08 0000000A:00000004 04:000007F3 00000000     0        0 4242 3 0";
        let row = parse_row(line).unwrap();
        assert_eq!(row.local, "127.0.0.1:38274".parse().unwrap());
        assert_eq!(row.remote, "127.0.0.1:37297".parse().unwrap());
        assert_eq!(row.state, State::CloseWait);
        assert_eq!((row.send_q, row.recv_q), (10, 4));
        assert_eq!(row.timer, Some(TimerKind::ZeroWindowProbe));
        assert_eq!(row.timer_left, 20.35);
        assert_eq!(row.inode, 4242);
    }

    /// `inspect` reads its rows from a sock_diag dump or from the text
    /// tables: both must say the same of the same sockets, in every state
    /// the book shows, IPv4 and IPv6.
    #[test]
    fn a_sock_diag_dump_reads_as_the_text_tables() {
        // In a network namespace of its own when it may make one (root, the
        // lab's sandbox); as an ordinary user, in the machine's, among its
        // other sockets (the comparison keeps only the test's own).
        match crate::netns::isolated(dump_and_text_agree) {
            Ok(result) => result.unwrap(),
            Err(_) => dump_and_text_agree().unwrap(),
        }
    }

    fn dump_and_text_agree() -> io::Result<()> {
        use crate::observe::End;
        use std::io::Write;
        use std::net::{TcpListener, TcpStream};
        let (mut held, mut listeners) = (Vec::new(), Vec::new());
        let mut hosts = vec!["127.0.0.1"];
        if TcpListener::bind("[::1]:0").is_ok() {
            hosts.push("[::1]");
        }
        for host in hosts {
            let listener = TcpListener::bind(format!("{host}:0"))?;
            let connect = || TcpStream::connect(listener.local_addr()?);
            // ESTABLISHED, 5 bytes unread; and a keepalive timer.
            let mut client = connect()?;
            let (server, _) = listener.accept()?;
            client.write_all(b"hello")?;
            let mut unread = [0u8; 5];
            while server.peek(&mut unread)? < unread.len() {}
            socket2::SockRef::from(&client).set_keepalive(true)?;
            held.extend([client, server]);
            // CLOSE_WAIT, the FIN counted in the receive queue; its peer
            // orphaned in FIN_WAIT_2.
            let client = connect()?;
            let (server, _) = listener.accept()?;
            let client_end = End::of(&client)?;
            drop(client);
            End::of(&server)?.wait_for(State::CloseWait)?;
            client_end.wait_for(State::FinWait2)?;
            held.push(server);
            // TIME_WAIT: the side that closed first, after its peer.
            let client = connect()?;
            let (server, _) = listener.accept()?;
            let client_end = End::of(&client)?;
            drop(client);
            End::of(&server)?.wait_for(State::CloseWait)?;
            drop(server);
            client_end.wait_for(State::TimeWait)?;
            // A zero window: bytes waiting to be sent, probed.
            let client = connect()?;
            let (mut server, _) = listener.accept()?;
            crate::sockopt::fill(&mut server)?;
            End::of(&server)?.wait_for_timer(TimerKind::ZeroWindowProbe)?;
            held.extend([client, server]);
            // LISTEN, one connection not accepted yet.
            held.push(connect()?);
            listeners.push(listener);
        }

        let ports: Vec<u16> = listeners
            .iter()
            .map(|l| l.local_addr().map(|a| a.port()))
            .collect::<io::Result<_>>()?;
        let ours = |r: &Row| ports.contains(&r.local.port()) || ports.contains(&r.remote.port());
        let mut diag = diag_rows()?;
        let mut text = table(Path::new("/proc/thread-self/net/tcp"))?;
        text.extend(table(Path::new("/proc/thread-self/net/tcp6"))?);
        diag.retain(ours);
        text.retain(ours);
        let key = |r: &Row| (r.local, r.remote);
        diag.sort_by_key(key);
        text.sort_by_key(key);
        let keys = |rows: &[Row]| rows.iter().map(key).collect::<Vec<_>>();
        assert_eq!(keys(&diag), keys(&text), "{diag:#?}\n{text:#?}");
        for (d, t) in diag.iter().zip(&text) {
            // The timers ran on between the two readings.
            assert!((d.timer_left - t.timer_left).abs() < 1.0, "{d:?}\n{t:?}");
            let same = Row {
                timer_left: t.timer_left,
                ..d.clone()
            };
            assert_eq!(&same, t);
        }
        let states = [
            State::Listen,
            State::Established,
            State::CloseWait,
            State::FinWait2,
            State::TimeWait,
        ];
        for state in &states {
            assert!(diag.iter().any(|r| r.state == *state), "no {state:?} in {diag:#?}");
        }
        let has = |f: &dyn Fn(&Row) -> bool| diag.iter().any(f);
        assert!(has(&|r| r.state == State::Listen && r.recv_q == 1 && r.inode != 0));
        assert!(has(&|r| r.recv_q == 5 && r.timer.is_none()));
        assert!(has(&|r| r.state == State::CloseWait && r.recv_q == 1));
        assert!(has(&|r| r.send_q > 0 && r.timer == Some(TimerKind::ZeroWindowProbe)));
        assert!(has(&|r| r.timer == Some(TimerKind::Keepalive) && r.timer_left > 1000.0));
        assert!(has(&|r| r.timer == Some(TimerKind::TimeWait)
            && r.inode == 0
            && r.timer_left > 1.0));
        drop((held, listeners));
        Ok(())
    }

    #[test]
    fn parses_an_ipv6_address() {
        let loopback = "00000000000000000000000001000000:1F90";
        assert_eq!(parse_addr(loopback), Some("[::1]:8080".parse().unwrap()));
    }
}
