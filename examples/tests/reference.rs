//! The reference server and client (`src/bin/reference-*.rs`, shown in the
//! book's "A reference server and client") apply every rule of the
//! checklist; each test proves one rule on the running programs.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use tcpclose::observe::{End, TimerKind};
use tcpclose::wait;

/// A running reference server, killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    /// The lines the server writes to standard error, each with the time
    /// it was read.
    log: Receiver<(Instant, String)>,
}

impl Server {
    fn start(idle_seconds: &str) -> Server {
        Server::start_with(idle_seconds, None)
    }

    /// Starts the server; with `max_descriptors`, under that
    /// RLIMIT_NOFILE.
    fn start_with(idle_seconds: &str, max_descriptors: Option<u64>) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tcpclose-reference-server"));
        command
            .args(["127.0.0.1:0", idle_seconds])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(limit) = max_descriptors {
            use std::os::unix::process::CommandExt;
            let limit = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            // SAFETY: setrlimit is async-signal-safe and touches no memory
            // of the parent.
            unsafe {
                command.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        let mut child = command.spawn().expect("tcpclose-reference-server starts");
        let mut first = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut first)
            .expect("the server's first line");
        let addr = first
            .trim()
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("the server said {first:?}, not \"listening on ADDR\""));
        let (send, log) = mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if send.send((Instant::now(), line)).is_err() {
                    return;
                }
            }
        });
        Server { child, addr, log }
    }

    /// Waits for a line of the server's log that contains `text`; returns
    /// every line seen up to it, with the time each was read.
    fn wait_log(&self, text: &str) -> Vec<(Instant, String)> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = Vec::new();
        while let Ok((at, line)) = self
            .log
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            let found = line.contains(text);
            seen.push((at, line));
            if found {
                return seen;
            }
        }
        panic!("the server never logged {text:?}; it logged {seen:?}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `request`, ends the client's side, and reads to the server's FIN.
fn exchange(stream: &TcpStream, request: &[u8]) -> std::io::Result<Vec<u8>> {
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    (&*stream).write_all(request)?;
    stream.shutdown(Shutdown::Write)?;
    let mut answer = Vec::new();
    (&*stream).read_to_end(&mut answer)?;
    Ok(answer)
}

#[test]
fn the_client_gets_every_answer_and_exits_0() {
    let server = Server::start("30");
    let out = Command::new(env!("CARGO_BIN_EXE_tcpclose-reference-client"))
        .args([&server.addr.to_string(), "hello", "closing time"])
        .output()
        .expect("tcpclose-reference-client runs");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "HELLO\nCLOSING TIME\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_client_reports_a_refused_connection_in_one_line_and_exits_1() {
    let unused = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tcpclose-reference-client"))
        .args([&unused.to_string(), "x"])
        .output()
        .expect("tcpclose-reference-client runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("cannot connect") && stderr.contains("os error 111"),
        "{stderr}"
    );
}

#[test]
fn on_ok_0_the_server_answers_closes_and_keeps_no_close_wait() {
    let server = Server::start("30");
    let stream = TcpStream::connect(server.addr).unwrap();
    let server_end = End::of(&stream).unwrap().peer();
    // The server's read returned Ok(0) at the client's FIN, after both
    // lines; read_to_end returns: the server's FIN came after the answers.
    assert_eq!(exchange(&stream, b"one\ntwo\n").unwrap(), b"ONE\nTWO\n");
    // The server closed second: its socket is gone, none in CLOSE_WAIT.
    wait::until("the server's socket to be gone", wait::DEFAULT_DEADLINE, || {
        Ok(server_end.state()?.is_none().then_some(()))
    })
    .unwrap();
}

#[test]
fn a_line_too_long_is_answered_and_the_lingering_close_sends_no_rst() {
    let server = Server::start("30");
    let stream = TcpStream::connect(server.addr).unwrap();
    // 256 KiB without a newline: the server stops reading after 1 KiB,
    // answers, and closes while most of it is still unread.
    let request = vec![b'x'; 256 * 1024];
    let answer = exchange(&stream, &request).expect("no reset: every write and read succeeds");
    assert_eq!(answer, b"ERR line too long\n");
}

#[test]
fn a_silent_client_is_closed_after_the_idle_time() {
    let server = Server::start("1");
    let stream = TcpStream::connect(server.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let start = Instant::now();
    let read = (&stream).read(&mut [0u8; 16]);
    let waited = start.elapsed();
    assert_eq!(read.unwrap(), 0, "the server's FIN");
    assert!(
        waited >= Duration::from_millis(900),
        "closed after {waited:?}, before the idle time of 1 s"
    );
}

#[test]
fn accepted_connections_have_keepalive() {
    let server = Server::start("30");
    let stream = TcpStream::connect(server.addr).unwrap();
    let server_end = End::of(&stream).unwrap().peer();
    // The kernel runs the keepalive timer only when SO_KEEPALIVE is on; it
    // starts at the idle time the server set (60 s).
    let left = server_end.wait_for_timer(TimerKind::Keepalive).unwrap();
    assert!(
        left > Duration::from_secs(50) && left <= Duration::from_secs(60),
        "keepalive timer at {left:?}"
    );
}

#[test]
fn out_of_descriptors_the_server_backs_off_and_recovers() {
    // Descriptors 0 to 3 are the standard streams and the listener: room
    // for two connections.
    let server = Server::start_with("30", Some(6));
    let held: Vec<TcpStream> = (0..2)
        .map(|_| {
            let stream = TcpStream::connect(server.addr).unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            (&stream).write_all(b"ping\n").unwrap();
            let mut answer = [0u8; 5];
            (&stream).read_exact(&mut answer).unwrap();
            assert_eq!(&answer, b"PING\n");
            stream
        })
        .collect();
    // The third waits in the backlog while accept fails with EMFILE.
    let third = TcpStream::connect(server.addr).unwrap();
    let log = server.wait_log("retrying in 320 ms");
    let failures: Vec<Instant> = log
        .iter()
        .filter(|(_, l)| l.contains("Too many open files"))
        .map(|(at, _)| *at)
        .collect();
    assert_eq!(failures.len(), 6, "one failure per pause, not a tight loop: {log:?}");
    // Between the first failure and the sixth, the server paused 10, 20,
    // 40, 80 and 160 ms.
    let paused = failures[5] - failures[0];
    assert!(
        paused >= Duration::from_millis(300),
        "six failures in {paused:?}: no pauses"
    );
    // Free the two descriptors: the third is accepted and served.
    drop(held);
    assert_eq!(exchange(&third, b"pong\n").unwrap(), b"PONG\n");
}

#[test]
fn bad_arguments_are_one_line_and_exit_2() {
    for (bin, args) in [
        (
            env!("CARGO_BIN_EXE_tcpclose-reference-server"),
            &["127.0.0.1:0", "soon"][..],
        ),
        (env!("CARGO_BIN_EXE_tcpclose-reference-client"), &["nowhere", "x"][..]),
        (env!("CARGO_BIN_EXE_tcpclose-reference-client"), &[][..]),
    ] {
        let out = Command::new(bin).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bin} {args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{bin} {args:?}: {stderr}");
    }
}

#[test]
fn each_stream_has_one_owner() {
    // No clone of a stream anywhere: the thread that handles a connection
    // owns it, and dropping it there closes it.
    for source in [
        include_str!("../src/bin/tcpclose-reference-server.rs"),
        include_str!("../src/bin/tcpclose-reference-client.rs"),
    ] {
        assert!(!source.contains("try_clone"));
    }
}
