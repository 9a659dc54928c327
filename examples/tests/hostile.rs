//! Every program that serves connections meets hostile peers: one that
//! stays silent, one that sends and never reads, one that sends a request
//! and its FIN, one that half-closes at once, one that resets in the middle
//! of a request, one that floods. After each, the server must have let go
//! of the connection within a deadline (no socket left ESTABLISHED or in
//! CLOSE_WAIT on its side), hold no more descriptors than before, and have
//! burnt no CPU while the peer held it (no busy loop).

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use socket2::SockRef;
use tcpclose::observe::{describe, End, State};

/// How long a server may take to let go of a hostile peer: its idle or
/// write timeout (at most 10 s in these runs), its lingering close (2 s),
/// and a margin for a loaded machine.
const LET_GO: Duration = Duration::from_secs(25);

/// The CPU time a server may use over one second in which a peer holds a
/// connection and does nothing: a blocked server uses none, a spinning one
/// the whole second.
const IDLE_CPU_BUDGET: Duration = Duration::from_millis(100);

/// A server program under test.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    /// Starts `bin` with `args`; it prints `listening on ADDR` first, on
    /// standard output.
    fn start(bin: &str, args: &[&str]) -> Server {
        let mut child = Command::new(bin)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{bin} starts: {e}"));
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut first = String::new();
        stdout.read_line(&mut first).expect("the server's first line");
        let addr = first
            .trim()
            .rsplit(' ')
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("{bin} said {first:?}, not \"listening on ADDR\""));
        // Keep reading its output, so that it never blocks on a full pipe.
        std::thread::spawn(move || for _ in stdout.lines().map_while(Result::ok) {});
        Server { child, addr }
    }

    fn descriptors(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .map(|dir| dir.count())
            .unwrap_or(0)
    }

    /// User and system CPU time the process has used so far.
    fn cpu(&self) -> Duration {
        tcpclose::hostile::cpu_time(format!("/proc/{}/stat", self.child.id()))
    }

    /// Fails unless the server used less than the idle budget of CPU over
    /// a second in which it has nothing left to do for the peer at
    /// `stream`'s other end: measured once its end of the connection has
    /// settled (see [`Server::settle`]).
    fn assert_idle(&self, peer: &str, stream: &TcpStream) {
        self.settle(peer, stream);
        let before = self.cpu();
        std::thread::sleep(Duration::from_secs(1)); // the window measured, not a wait for an event
        let used = self.cpu().saturating_sub(before);
        assert!(
            used < IDLE_CPU_BUDGET,
            "{peer}: the server used {used:?} of CPU in the second the peer held the connection (a busy loop)"
        );
    }

    /// Waits until the server's end of the connection with `stream` has
    /// settled: its state and queues unchanged over 200 ms, so the server
    /// reads nothing more and is blocked or done. A peer that left data
    /// behind gets it processed first: answering 256 KiB of requests takes
    /// the server (a debug build, on a loaded machine) more CPU than the
    /// idle budget, and was counted as a busy loop when the window began
    /// at once. A spinning server settles too, and burns its second.
    fn settle(&self, peer: &str, stream: &TcpStream) {
        const STILL: Duration = Duration::from_millis(200);
        let end = End {
            local: self.addr,
            remote: stream.local_addr().expect("the peer's address"),
        };
        // What the end looks like, and since when it has looked so.
        let mut last = None;
        let mut since = Instant::now();
        let (view, still) = tcpclose::wait::settle(
            LET_GO,
            || {
                let now = end.view()?.map(|v| (v.state, v.send_queue, v.recv_queue));
                if last != Some(now) {
                    (last, since) = (Some(now), Instant::now());
                }
                Ok((now, since.elapsed()))
            },
            |(_, still)| *still >= STILL,
        )
        .expect("the server's socket table");
        assert!(
            still >= STILL,
            "{peer}: after {LET_GO:?} the server's end of the connection still moves: {view:?}"
        );
    }

    /// Waits until the server's end of the connection from `peer_addr` is
    /// neither ESTABLISHED nor CLOSE_WAIT (the server closed it, or it is
    /// gone) and its descriptors are back to `descriptors`.
    fn assert_let_go(&self, peer: &str, peer_addr: SocketAddr, descriptors: usize) {
        let end = End {
            local: self.addr,
            remote: peer_addr,
        };
        let start = Instant::now();
        let (mut state, mut fds);
        loop {
            state = end.state().expect("the server's socket table");
            fds = self.descriptors();
            let held = matches!(state, Some(State::Established | State::CloseWait));
            if !held && fds <= descriptors {
                return;
            }
            assert!(
                start.elapsed() < LET_GO,
                "{peer}: after {LET_GO:?} the server's socket is {} and it holds {fds} descriptors (before: {descriptors})",
                describe(state)
            );
            std::thread::sleep(Duration::from_millis(20)); // polling interval
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A hostile peer: what it does with a fresh connection. It returns the
/// stream it still holds, if it holds one, while the server is judged.
type Peer = fn(&Server, TcpStream) -> Option<TcpStream>;

/// Connects and says nothing.
fn silent(server: &Server, stream: TcpStream) -> Option<TcpStream> {
    server.assert_idle("silent", &stream);
    Some(stream)
}

/// Sends 256 KiB of requests (less if its send buffer fills first), never
/// reading the answers.
fn sends_never_reads(server: &Server, stream: TcpStream) -> Option<TcpStream> {
    stream.set_nonblocking(true).unwrap();
    let line = b"a request that is answered but whose answer is never read\n";
    for _ in 0..(256 * 1024 / line.len()) {
        match (&stream).write(line) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(_) => return None, // the server already closed
        }
    }
    server.assert_idle("sends, never reads", &stream);
    Some(stream)
}

/// Sends one request and its FIN, then reads to the server's end.
fn sends_then_fin(_: &Server, mut stream: TcpStream) -> Option<TcpStream> {
    stream.write_all(b"hello\n").unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    stream.set_read_timeout(Some(LET_GO)).unwrap();
    let _ = stream.read_to_end(&mut Vec::new());
    None
}

/// Half-closes at once, sending nothing, and keeps its descriptor.
fn half_closes(server: &Server, stream: TcpStream) -> Option<TcpStream> {
    stream.shutdown(Shutdown::Write).unwrap();
    server.assert_idle("half-closes", &stream);
    Some(stream)
}

/// Sends half a request, then resets the connection.
fn resets_mid_request(_: &Server, mut stream: TcpStream) -> Option<TcpStream> {
    stream.write_all(b"half a req").unwrap();
    SockRef::from(&stream).set_linger(Some(Duration::ZERO)).unwrap();
    None
}

/// Sends 4 MiB of one line with no end, as fast as the server takes it,
/// without reading.
fn floods(server: &Server, stream: TcpStream) -> Option<TcpStream> {
    stream.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    let chunk = [b'x'; 64 * 1024];
    for _ in 0..64 {
        if (&stream).write_all(&chunk).is_err() {
            break; // the server stopped reading or closed: its right
        }
    }
    server.assert_idle("floods", &stream);
    Some(stream)
}

const PEERS: [(&str, Peer); 6] = [
    ("silent", silent),
    ("sends, never reads", sends_never_reads),
    ("sends then FIN", sends_then_fin),
    ("half-closes", half_closes),
    ("resets mid-request", resets_mid_request),
    ("floods", floods),
];

/// Each peer in turn against a fresh `server`.
fn meets_every_hostile_peer(start: impl Fn() -> Server) {
    for (name, peer) in PEERS {
        let server = start();
        let descriptors = server.descriptors();
        let stream = TcpStream::connect(server.addr).expect("connect");
        let local = stream.local_addr().unwrap();
        let held = peer(&server, stream);
        server.assert_let_go(name, local, descriptors);
        drop(held);
    }
}

#[test]
fn reference_server_meets_hostile_peers() {
    meets_every_hostile_peer(|| Server::start(env!("CARGO_BIN_EXE_tcpclose-reference-server"), &["127.0.0.1:0", "1"]));
}

#[test]
fn graceful_server_meets_hostile_peers() {
    meets_every_hostile_peer(|| {
        Server::start(
            env!("CARGO_BIN_EXE_tcpclose-graceful-server"),
            &["--listen", "127.0.0.1:0", "--work-ms", "0", "--idle-ms", "1000"],
        )
    });
}

#[test]
fn server_meets_hostile_peers() {
    meets_every_hostile_peer(|| {
        Server::start(
            env!("CARGO_BIN_EXE_tcpclose-server"),
            &["--listen", "127.0.0.1:0", "--on-eof", "close", "--idle", "1"],
        )
    });
}

/// A file of its own for a certificate, in the system's temporary folder.
fn cert_file(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("hostile-{name}-{}.der", std::process::id()))
}

#[test]
fn reference_https_server_meets_hostile_peers() {
    let cert = cert_file("https-server");
    let cert_arg = cert.to_string_lossy().into_owned();
    meets_every_hostile_peer(|| {
        Server::start(
            env!("CARGO_BIN_EXE_tcpclose-reference-https-server"),
            &["127.0.0.1:0", &cert_arg, "1"],
        )
    });
    let _ = std::fs::remove_file(&cert);
}

/// A hostile server for a client: what it does with the one connection it
/// accepts, on a thread of its own.
type HostileServer = fn(TcpStream);

/// Accepts and says nothing, for longer than any client waits.
fn stays_silent(stream: TcpStream) {
    // The client's first message (a line, or a TLS client's first flight,
    // which is more than a line), then a wait for the client to give up.
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let _ = (&stream).read(&mut [0u8; 4096]);
    let _ = (&stream).read(&mut [0u8; 4096]);
}

/// Resets the connection at once.
fn resets(stream: TcpStream) {
    let _ = SockRef::from(&stream).set_linger(Some(Duration::ZERO));
}

/// Closes without answering.
fn closes_without_answering(stream: TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = (&stream).read_to_end(&mut Vec::new());
}

/// Sends one endless line, as fast as the client takes it.
fn floods_one_line(mut stream: TcpStream) {
    let chunk = [b'x'; 64 * 1024];
    let start = Instant::now();
    while start.elapsed() < LET_GO && stream.write_all(&chunk).is_ok() {}
}

/// Answers, then goes on answering lines nobody sent.
fn floods_lines(mut stream: TcpStream) {
    let start = Instant::now();
    while start.elapsed() < LET_GO && stream.write_all(b"MORE\n").is_ok() {}
}

/// Sends a byte every 5 s, never a whole answer: no read ever times out.
fn drips(mut stream: TcpStream) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) && stream.write_all(b"x").is_ok() {
        std::thread::sleep(Duration::from_secs(5)); // the drip is the behaviour, not a wait
    }
}

const HOSTILE_SERVERS: [(&str, HostileServer); 6] = [
    ("stays silent", stays_silent),
    ("resets", resets),
    ("closes without answering", closes_without_answering),
    ("floods one line", floods_one_line),
    ("floods lines", floods_lines),
    ("drips", drips),
];

/// The longest a client may take against a hostile server: its exchange
/// time limit (30 s) and a margin for a loaded machine.
const CLIENT_DEADLINE: Duration = Duration::from_secs(45);

/// `tcpclose-reference-client` against each hostile server: it must exit with
/// status 1 and one line of error within its deadline, without a busy
/// loop while it waits.
#[test]
fn reference_client_meets_hostile_servers() {
    meets_every_hostile_server(
        env!("CARGO_BIN_EXE_tcpclose-reference-client"),
        &["{addr}", "hello"],
        |_| &[1],
    );
}

/// `tcpclose-reference-https-client` against each hostile server, none of which
/// speaks TLS: status 1 and one line of error within its deadline.
#[test]
fn reference_https_client_meets_hostile_servers() {
    let cert = cert_file("https-client");
    let configs = tcpclose::tls::Configs::new().expect("a certificate");
    std::fs::write(&cert, configs.certificate.as_ref()).expect("the certificate written");
    let cert_arg = cert.to_string_lossy().into_owned();
    meets_every_hostile_server(
        env!("CARGO_BIN_EXE_tcpclose-reference-https-client"),
        &["{addr}", &cert_arg, "/"],
        |_| &[1],
    );
    let _ = std::fs::remove_file(&cert);
}

/// `client --send hello --read` against each hostile server. Where the
/// server never ends its answer (silent, dripping) the client gives up at
/// its `--timeout`, and an answer longer than `--max-answer` (a flood) is
/// an error, each with status 1 and one line; a reset or an early close is
/// what it reports, with status 0 (a reset that comes before its connect
/// has returned fails the connect, with status 1).
#[test]
fn client_meets_hostile_servers() {
    meets_every_hostile_server(
        env!("CARGO_BIN_EXE_tcpclose-client"),
        &[
            "--connect",
            "{addr}",
            "--send",
            "hello",
            "--read",
            "--timeout",
            "10",
            "--max-answer",
            "65536",
        ],
        |server| match server {
            "resets" => &[0, 1],
            "closes without answering" => &[0],
            _ => &[1],
        },
    );
}

/// `tcpclose-graceful-client` with one busy connection against each hostile server:
/// where the server never ends the connection (silent, dripping) the
/// client gives up at its `--timeout`, and an answer longer than a
/// response (a flood) is an error, each with status 1 and one line; a
/// reset or an early close it reports as a closed connection, with status
/// 0 (or, when the reset comes before its connect has returned, as a
/// failed connect, with status 1).
#[test]
fn graceful_client_meets_hostile_servers() {
    meets_every_hostile_server(
        env!("CARGO_BIN_EXE_tcpclose-graceful-client"),
        &[
            "--connect",
            "{addr}",
            "--busy",
            "1",
            "--idle",
            "0",
            "--stall",
            "0",
            "--timeout",
            "10",
        ],
        |server| match server {
            "resets" => &[0, 1],
            "closes without answering" => &[0],
            _ => &[1],
        },
    );
}

/// Runs the client `bin` (`args`, with `{addr}` the server's address)
/// against each hostile server at once. Each run must end within
/// [`CLIENT_DEADLINE`] with a status `expect` gives for the server, one
/// line on stderr if the status is not 0 and no panic, and use less than
/// [`IDLE_CPU_BUDGET`] of CPU in its first second (no busy loop).
fn meets_every_hostile_server(bin: &'static str, args: &[&str], expect: fn(&str) -> &'static [i32]) {
    let runs: Vec<_> = HOSTILE_SERVERS
        .iter()
        .map(|&(name, serve)| {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap().to_string();
            let args: Vec<String> = args.iter().map(|a| a.replace("{addr}", &addr)).collect();
            std::thread::spawn(move || {
                let server = std::thread::spawn(move || {
                    if let Ok((stream, _)) = listener.accept() {
                        serve(stream);
                    }
                });
                let start = Instant::now();
                let mut client = Command::new(bin)
                    .args(&args)
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap_or_else(|e| panic!("{bin} starts: {e}"));
                let cpu = |pid: u32| {
                    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                    let fields: Vec<&str> = stat
                        .rsplit_once(')')
                        .map_or("", |(_, f)| f)
                        .split_whitespace()
                        .collect();
                    [11, 12]
                        .iter()
                        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
                        .sum::<u64>()
                };
                let before = cpu(client.id());
                std::thread::sleep(Duration::from_secs(1)); // the window measured
                let used_ticks = cpu(client.id()).saturating_sub(before);
                let status = loop {
                    if let Some(status) = client.try_wait().unwrap() {
                        break Some(status);
                    }
                    if start.elapsed() > CLIENT_DEADLINE {
                        let _ = client.kill();
                        break None;
                    }
                    std::thread::sleep(Duration::from_millis(20)); // polling interval
                };
                let mut stderr = String::new();
                let _ = client.stderr.take().unwrap().read_to_string(&mut stderr);
                let _ = client.wait();
                drop(server);
                (name, status.and_then(|s| s.code()), stderr, used_ticks, start.elapsed())
            })
        })
        .collect();
    // SAFETY: sysconf has no preconditions.
    let tick = Duration::from_secs(1) / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u32;
    for run in runs {
        let (name, code, stderr, used_ticks, took) = run.join().unwrap();
        let expected = expect(name);
        assert!(
            code.is_some_and(|code| expected.contains(&code)),
            "{bin} against a server that {name}: exit status {code:?} (expected one of {expected:?}) after {took:?}; stderr: {stderr}"
        );
        let lines = if code == Some(0) { 0 } else { 1 };
        assert_eq!(stderr.lines().count(), lines, "{bin}, {name}: {stderr}");
        assert!(!stderr.contains("panicked"), "{bin}, {name}: {stderr}");
        let used = tick * used_ticks as u32;
        assert!(
            used < IDLE_CPU_BUDGET,
            "{bin}, {name}: the client used {used:?} of CPU in its first second (a busy loop)"
        );
    }
}

/// The book's `writer_task` before it read in its `select!` (async-close-wait.md,
/// until commit b91f0e9): it waited for readiness and never read. Kept here
/// as the sample the spin detector of `tcpclose::hostile` must catch:
/// `ready()` consumes nothing, so once the peer has sent a byte every
/// `ready()` resolves at once and the loop never yields.
async fn spinning_writer_task(
    stream: tokio::net::TcpStream,
    mut work: tokio::sync::mpsc::Receiver<Vec<u8>>,
) -> std::io::Result<()> {
    use tokio::io::Interest;
    loop {
        tokio::select! {
            bytes = work.recv() => match bytes {
                Some(bytes) => { stream.writable().await?; let _ = stream.try_write(&bytes); }
                None => return Ok(()),
            },
            ready = stream.ready(Interest::READABLE) => {
                if ready?.is_read_closed() {
                    return Ok(()); // the peer's FIN: drop the stream
                }
            },
        }
    }
}

/// The old `writer_task` fails the harness the samples meet: against every
/// peer that sends bytes without a FIN, the ticker beside it stalls.
#[test]
fn the_old_writer_task_spins_and_the_harness_says_so() {
    use tcpclose::hostile::{meet_every_peer_within, Budgets, Fault, Peer};
    // A spinning task on a current_thread runtime never sees the peer leave:
    // its work ends after WORK_LASTS, from another thread, so that it stops.
    const WORK_LASTS: Duration = Duration::from_secs(5);
    let budgets = Budgets {
        // This process runs other tests beside this one, which open
        // descriptors of their own.
        count_descriptors: false,
        ..Budgets::default()
    };
    let findings = meet_every_peer_within(budgets, |stream| {
        let (work, inbox) = tokio::sync::mpsc::channel(1);
        std::thread::spawn(move || {
            std::thread::sleep(WORK_LASTS); // the work's lifetime, not a wait for an event
            drop(work);
        });
        spinning_writer_task(stream, inbox)
    })
    .expect_err("the old writer_task spins");
    // Whether it spins against "sends then FIN" depends on whether the
    // runtime saw the line before the FIN.
    let findings: Vec<_> = findings
        .faults()
        .into_iter()
        .filter(|(peer, _)| *peer != Peer::SendsThenFin)
        .collect();
    assert_eq!(
        findings,
        [
            (Peer::SendsNeverReads, Fault::Spins),
            (Peer::ResetsMidRequest, Fault::Spins),
            (Peer::Floods, Fault::Spins),
        ]
    );
}
