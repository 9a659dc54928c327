//! The seed's programs, checked from outside the project's code: the
//! server's peer is bash's /dev/tcp, and the states come from `ss`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};

use tcpclose::wait::DEFAULT_DEADLINE;

struct Server {
    child: Child,
    port: u16,
    /// The server's output, a line at a time, read by a thread.
    lines: Receiver<String>,
}

impl Server {
    fn start(on_eof: &str) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_server"))
            .args(["--listen", "127.0.0.1:0", "--on-eof", on_eof])
            .stdout(Stdio::piped())
            .spawn()
            .expect("server starts");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Server { child, port: 0, lines };
        let first = server.expect_line("listening on");
        server.port = first.rsplit(':').next().unwrap().parse().expect("listening on ADDR");
        server
    }

    /// Reads the server's output until a line contains `text`; fails
    /// (rather than waits for ever) when none comes within the deadline.
    fn expect_line(&mut self, text: &str) -> String {
        let mut seen = Vec::new();
        loop {
            match self.lines.recv_timeout(DEFAULT_DEADLINE * 2) {
                Ok(line) if line.contains(text) => return line,
                Ok(line) => seen.push(line),
                Err(e) => panic!("the server printed no {text:?} ({e}); it printed: {seen:#?}"),
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An ordinary client: bash opens a connection and closes it.
fn bash_connect_and_close(port: u16) {
    let status = Command::new("bash")
        .args(["-c", &format!("exec 3<>/dev/tcp/127.0.0.1/{port}; exec 3>&-")])
        .status()
        .unwrap();
    assert!(status.success());
}

/// `ss -tanH state STATE '( sport = :PORT )'`: the sockets with that local port in that state.
fn ss_count(state: &str, port: u16) -> usize {
    let out = Command::new("ss")
        .args(["-tanH", "state", state, &format!("( sport = :{port} )")])
        .output()
        .expect("ss is installed");
    String::from_utf8_lossy(&out.stdout).lines().count()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    tcpclose::wait::until(what, tcpclose::wait::DEFAULT_DEADLINE, || Ok(done().then_some(()))).unwrap();
}

#[test]
fn leak_leaves_close_wait() {
    let mut server = Server::start("leak");
    bash_connect_and_close(server.port);
    server.expect_line("read -> Ok(0)");
    server.expect_line("keeping the stream");
    wait_until("the server's socket in CLOSE-WAIT", || {
        ss_count("close-wait", server.port) == 1
    });
}

#[test]
fn close_sends_fin() {
    let mut server = Server::start("close");
    bash_connect_and_close(server.port);
    server.expect_line("dropped the stream");
    // The server's FIN ends its socket: nothing with its port but the listener.
    wait_until("no CLOSE-WAIT and no LAST-ACK", || {
        ss_count("close-wait", server.port) == 0 && ss_count("last-ack", server.port) == 0
    });
    // Nothing but the listener: no connection of the server's port in any
    // state but TIME-WAIT (which an earlier, unrelated listener that had the
    // same port may have left, and which the server's close would not make).
    for state in [
        "established",
        "fin-wait-1",
        "fin-wait-2",
        "closing",
        "close-wait",
        "last-ack",
    ] {
        assert_eq!(ss_count(state, server.port), 0, "{state}");
    }
}

#[test]
fn write_mode_reports_broken_pipe() {
    let mut server = Server::start("write");
    bash_connect_and_close(server.port);
    assert!(server.expect_line("write(1024 bytes)").ends_with("-> Ok(1024)"));
    server.expect_line("answered with RST");
    let second = server.expect_line("write(1024 bytes)");
    assert!(
        second.ends_with("-> Err(BrokenPipe) \"Broken pipe (os error 32)\""),
        "{second}"
    );
}

#[test]
fn help_documents_every_flag_and_bad_flags_exit_2() {
    for (bin, flags) in [
        (
            env!("CARGO_BIN_EXE_server"),
            &["--listen", "--on-eof", "--hold", "close", "leak", "write"][..],
        ),
        (env!("CARGO_BIN_EXE_client"), &["--connect", "--send", "--hold"][..]),
    ] {
        let help = Command::new(bin).arg("--help").output().unwrap();
        assert!(help.status.success());
        let help = String::from_utf8_lossy(&help.stdout);
        for flag in flags {
            assert!(help.contains(flag), "{bin}: {flag} missing from --help");
        }
        let bad = Command::new(bin).arg("--nope").output().unwrap();
        assert_eq!(bad.status.code(), Some(2));
        assert_eq!(String::from_utf8_lossy(&bad.stderr).lines().count(), 1);
    }
}

#[test]
fn client_reports_a_refused_connection_in_one_line() {
    // Find a port nobody listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new(env!("CARGO_BIN_EXE_client"))
        .args(["--connect", &format!("127.0.0.1:{port}")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("Connection refused"), "{stderr}");
}

/// Runs `bin` with `args`: it must print one line on stderr, exit with
/// `code` and never panic.
fn one_line_error(bin: &str, args: &[&str], code: i32, says: &str) {
    let out = Command::new(bin).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{bin} {args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{bin} {args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{bin} {args:?}: {stderr}");
    assert!(stderr.contains(says), "{bin} {args:?}: {stderr} lacks {says:?}");
}

#[test]
fn bad_input_is_one_line_and_a_non_zero_exit() {
    let (server, client) = (env!("CARGO_BIN_EXE_server"), env!("CARGO_BIN_EXE_client"));
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = taken.local_addr().unwrap().to_string();
    one_line_error(server, &["--listen", "localhost:http"], 2, "invalid socket address");
    one_line_error(server, &["--listen", &taken], 1, "Address already in use");
    one_line_error(
        server,
        &["--listen", "203.0.113.7:0"],
        1,
        "Cannot assign requested address",
    );
    one_line_error(server, &["--hold", "soon"], 2, "is not a number of seconds");
    one_line_error(server, &["--hold", "99999999"], 2, "between 0 and 86400");
    one_line_error(client, &["--connect", "nowhere"], 2, "invalid socket address");
    one_line_error(client, &["--connect", "127.0.0.1:0"], 1, "");
}
