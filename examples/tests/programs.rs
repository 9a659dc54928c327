//! The seed's programs, checked from outside the project's code: the
//! server's peer is bash's /dev/tcp, and the states come from `ss`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};

use tcpclose::inspect::{FindingKind, Report};
use tcpclose::observe::State;
use tcpclose::wait::DEFAULT_DEADLINE;

struct Server {
    child: Child,
    port: u16,
    /// The server's output, a line at a time, read by a thread.
    lines: Receiver<String>,
}

impl Server {
    fn start(on_eof: &str) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tcpclose-server"))
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
            env!("CARGO_BIN_EXE_tcpclose-server"),
            &["--listen", "--on-eof", "--hold", "close", "leak", "write"][..],
        ),
        (
            env!("CARGO_BIN_EXE_tcpclose-client"),
            &["--connect", "--send", "--hold"][..],
        ),
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

/// Every program the crate installs answers `--help` with its usage and
/// `--version` with its name and version, and starts nothing.
#[test]
fn every_program_answers_help_and_version() {
    for (bin, name) in [
        (env!("CARGO_BIN_EXE_tcpclose"), "tcpclose"),
        (env!("CARGO_BIN_EXE_tcpclose-server"), "tcpclose-server"),
        (env!("CARGO_BIN_EXE_tcpclose-client"), "tcpclose-client"),
        (
            env!("CARGO_BIN_EXE_tcpclose-graceful-server"),
            "tcpclose-graceful-server",
        ),
        (
            env!("CARGO_BIN_EXE_tcpclose-graceful-client"),
            "tcpclose-graceful-client",
        ),
        (
            env!("CARGO_BIN_EXE_tcpclose-reference-server"),
            "tcpclose-reference-server",
        ),
        (
            env!("CARGO_BIN_EXE_tcpclose-reference-client"),
            "tcpclose-reference-client",
        ),
        (
            env!("CARGO_BIN_EXE_tcpclose-reference-https-server"),
            "tcpclose-reference-https-server",
        ),
        (
            env!("CARGO_BIN_EXE_tcpclose-reference-https-client"),
            "tcpclose-reference-https-client",
        ),
    ] {
        let help = Command::new(bin).arg("--help").output().unwrap();
        assert_eq!(help.status.code(), Some(0), "{name} --help");
        let help = String::from_utf8_lossy(&help.stdout);
        assert!(
            help.to_lowercase().contains(&format!("usage: {name}")),
            "{name} --help: {help}"
        );
        let version = Command::new(bin).arg("--version").output().unwrap();
        assert_eq!(version.status.code(), Some(0), "{name} --version");
        assert_eq!(
            String::from_utf8_lossy(&version.stdout).trim(),
            format!("{name} {}", env!("CARGO_PKG_VERSION"))
        );
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
    let out = Command::new(env!("CARGO_BIN_EXE_tcpclose-client"))
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
    let (server, client) = (
        env!("CARGO_BIN_EXE_tcpclose-server"),
        env!("CARGO_BIN_EXE_tcpclose-client"),
    );
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
    let (graceful, load) = (
        env!("CARGO_BIN_EXE_tcpclose-graceful-server"),
        env!("CARGO_BIN_EXE_tcpclose-graceful-client"),
    );
    one_line_error(graceful, &["--listen", &taken], 1, "Address already in use");
    one_line_error(graceful, &["--work-ms", "soon"], 2, "invalid value");
    one_line_error(load, &["--connect", "127.0.0.1:1"], 1, "cannot connect to 127.0.0.1:1");
}

/// `tcpclose inspect ARGS`, its JSON read back as the report it prints.
fn inspect(args: &[&str]) -> Report {
    let out = Command::new(env!("CARGO_BIN_EXE_tcpclose"))
        .arg("inspect")
        .args(args)
        .arg("--json")
        .output()
        .expect("tcpclose runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("inspect --json prints JSON")
}

/// The descriptors of the findings of `kind`.
fn finding_fds(report: &Report, kind: FindingKind) -> Vec<i32> {
    report
        .findings
        .iter()
        .filter(|f| f.kind == kind)
        .filter_map(|f| f.fd)
        .collect()
}

/// Connects `n` clients to `port` and closes them; returns the server's ends.
fn connect_and_close(port: u16, n: usize) -> Vec<tcpclose::observe::End> {
    (0..n)
        .map(|_| {
            let client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            tcpclose::observe::End::of(&client).unwrap().peer()
        })
        .collect()
}

#[test]
fn inspect_finds_every_close_wait_of_a_leaking_server() {
    let mut server = Server::start("leak");
    connect_and_close(server.port, 3);
    for _ in 0..3 {
        server.expect_line("keeping the stream");
    }
    let report = inspect(&[&server.child.id().to_string()]);
    let close_wait: Vec<i32> = report
        .sockets
        .iter()
        .filter(|s| s.state == Some(State::CloseWait))
        .map(|s| s.fd)
        .collect();
    assert_eq!(close_wait.len(), 3, "{report:#?}");
    assert_eq!(finding_fds(&report, FindingKind::CloseWait), close_wait);
    let listener = report
        .sockets
        .iter()
        .find(|s| s.state == Some(State::Listen))
        .expect("the listener");
    assert_eq!(listener.local, Some(([127, 0, 0, 1], server.port).into()));
    assert_eq!(listener.remote, None);
    for s in report.sockets.iter().filter(|s| s.state == Some(State::CloseWait)) {
        assert!(s.local.is_some() && s.remote.is_some(), "{s:?}");
    }
    // Each finding points at its chapter in the published book, which exists.
    for f in &report.findings {
        assert_eq!(f.chapter, tcpclose::cli::chapter_url("eof-close-wait.md"));
    }
    let book = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../src/eof-close-wait.md");
    assert!(book.is_file(), "{}", book.display());
}

#[test]
fn inspect_reports_nothing_false_for_a_healthy_server() {
    let mut server = Server::start("close");
    let ends = connect_and_close(server.port, 3);
    for _ in 0..3 {
        server.expect_line("dropped the stream");
    }
    // The server's sockets pass through LAST_ACK: wait until they are gone.
    for end in ends {
        end.wait_gone().unwrap();
    }
    let report = inspect(&[&server.child.id().to_string()]);
    assert!(report.findings.is_empty(), "{report:#?}");
    let states: Vec<Option<State>> = report.sockets.iter().map(|s| s.state).collect();
    assert_eq!(states, [Some(State::Listen)]);
}

#[test]
fn inspect_finds_a_socket_gone_from_the_table_but_still_held() {
    use std::os::fd::AsRawFd;
    // This test's own process holds the socket.
    let (client, server) = tcpclose::pair().unwrap();
    let server_end = tcpclose::observe::End::of(&server).unwrap();
    socket2::SockRef::from(&client)
        .set_linger(Some(std::time::Duration::ZERO))
        .unwrap();
    drop(client); // an RST: the server's socket leaves the table
    server_end.wait_gone().unwrap();
    let report = inspect(&[&std::process::id().to_string()]);
    let fd = server.as_raw_fd();
    assert!(
        finding_fds(&report, FindingKind::NotInTable).contains(&fd),
        "{report:#?}"
    );
    let socket = report.sockets.iter().find(|s| s.fd == fd).unwrap();
    assert_eq!(socket.state, None);
}

#[test]
fn inspect_watch_times_close_wait_and_counts_resets() {
    let mut server = Server::start("leak");
    connect_and_close(server.port, 1);
    server.expect_line("keeping the stream");
    let mut watch = Command::new(env!("CARGO_BIN_EXE_tcpclose"))
        .args(["inspect", &server.child.id().to_string(), "--watch", "2", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once it has read the counters, an abort: a zero linger sends an RST.
    let mut said = BufReader::new(watch.stderr.take().unwrap());
    let mut line = String::new();
    said.read_line(&mut line).unwrap();
    assert!(line.contains("watching process"), "{line}");
    let (client, _server) = tcpclose::pair().unwrap();
    socket2::SockRef::from(&client)
        .set_linger(Some(std::time::Duration::ZERO))
        .unwrap();
    drop(client);
    let out = watch.wait_with_output().unwrap();
    assert!(out.status.success());
    let report: Report = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report.counters.get("TcpOutRsts") >= Some(&1), "{report:#?}");
    let close_wait = report
        .sockets
        .iter()
        .find(|s| s.state == Some(State::CloseWait))
        .unwrap();
    assert!(close_wait.seen_for >= Some(1.5), "{report:#?}");
}

#[test]
fn inspect_of_no_such_process_is_one_line_and_exit_2() {
    let lab = env!("CARGO_BIN_EXE_tcpclose");
    one_line_error(lab, &["inspect", "4194304"], 2, "no process 4194304");
    one_line_error(lab, &["inspect", "me"], 2, "invalid value 'me'");
}

#[test]
fn inspect_counts_orphans_on_the_process_ports() {
    // This test's own process: a listener, and a connection its server
    // side closed first, orphaned in FIN_WAIT_2 while the client holds on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    let server_end = tcpclose::observe::End::of(&server).unwrap();
    drop(server);
    server_end.wait_for(State::FinWait2).unwrap();
    let report = inspect(&[&std::process::id().to_string()]);
    assert!(
        report.without_descriptor.get(&State::FinWait2) >= Some(&1),
        "{report:#?}"
    );
    let orphans = report.findings.iter().find(|f| f.kind == FindingKind::Orphans);
    assert!(orphans.is_some(), "{report:#?}");
}

#[test]
fn a_reader_that_goes_away_ends_the_programs_quietly() {
    // `tcpclose list | head -1`, `server --help | head -1`: the pipe's
    // reader is gone before anything is written.
    for (bin, arg) in [
        (env!("CARGO_BIN_EXE_tcpclose"), "list"),
        (env!("CARGO_BIN_EXE_tcpclose"), "--help"),
        (env!("CARGO_BIN_EXE_tcpclose-server"), "--help"),
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(bin).arg(arg).stdout(writer).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{bin} {arg}: {stderr}");
        assert!(stderr.is_empty(), "{bin} {arg}: {stderr}");
    }
}

/// Runs tcpclose-graceful-server and tcpclose-graceful-client (`client_args`), stops the
/// server with `signal` once it has accepted `connections` and started
/// `busy` requests; returns the
/// server's output, the client's, and how long the server took to exit.
fn graceful_stop(
    signal: libc::c_int,
    (busy, connections): (usize, usize),
    client_args: &[&str],
) -> (String, String, std::time::Duration) {
    let mut server = Command::new(env!("CARGO_BIN_EXE_tcpclose-graceful-server"))
        .args(["--listen", "127.0.0.1:0", "--work-ms", "1000", "--grace-ms", "2000"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("tcpclose-graceful-server starts");
    let mut lines = BufReader::new(server.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok);
    let first = lines.next().expect("tcpclose-graceful-server says where it listens");
    let addr = first
        .strip_prefix("listening on ")
        .expect("listening on ADDR")
        .to_string();
    let mut client = Command::new(env!("CARGO_BIN_EXE_tcpclose-graceful-client"))
        .args(["--connect", &addr])
        .args(client_args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("tcpclose-graceful-client starts");
    let mut client_said = BufReader::new(client.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok);
    let connected = client_said.next().unwrap_or_default();
    assert!(connected.starts_with("connected: "), "the client said {connected:?}");
    // Every connection accepted, every busy request started: then the signal.
    let waited_for = [format!("accepted: {connections}"), format!("started: {busy}")];
    let mut said = Vec::new();
    for line in lines.by_ref() {
        said.push(line);
        if waited_for.iter().all(|w| said.contains(w)) {
            break;
        }
    }
    assert!(
        waited_for.iter().all(|w| said.contains(w)),
        "the server said: {said:#?}"
    );
    // SAFETY: signalling our own child.
    assert_eq!(unsafe { libc::kill(server.id() as libc::pid_t, signal) }, 0);
    let at = std::time::Instant::now();
    said.extend(lines);
    let status = server.wait().unwrap();
    let took = at.elapsed();
    assert!(
        status.success(),
        "tcpclose-graceful-server: {status}; it said: {said:#?}"
    );
    let client_said: Vec<String> = client_said.collect();
    let status = client.wait().unwrap();
    assert!(
        status.success(),
        "tcpclose-graceful-client: {status}; it said: {client_said:#?}"
    );
    (said.join("\n"), client_said.join("\n"), took)
}

#[test]
fn graceful_server_on_sigterm_delivers_every_response_and_cuts_the_unfinished() {
    let (server, client, took) = graceful_stop(
        libc::SIGTERM,
        (100, 121),
        &["--busy", "100", "--idle", "20", "--stall", "1"],
    );
    assert!(
        server.contains("stopping: accepting no more; 100 requests in progress"),
        "{server}"
    );
    assert!(
        server.contains("stopped: 100 responses after the stop, 20 idle connections closed, 1 cut at the deadline"),
        "{server}"
    );
    assert!(
        client.contains("busy: 100 responses of 100; idle: 20 closed of 20; stalled: 1 closed of 1"),
        "{client}"
    );
    // The unfinished request holds the exit until the grace period (2 s) ends.
    assert!(took >= std::time::Duration::from_millis(1900), "{took:?}");
}

#[test]
fn graceful_server_on_sigint_exits_as_soon_as_the_responses_are_out() {
    let (server, client, took) =
        graceful_stop(libc::SIGINT, (10, 15), &["--busy", "10", "--idle", "5", "--stall", "0"]);
    assert!(
        server.contains("stopped: 10 responses after the stop, 5 idle connections closed, 0 cut at the deadline"),
        "{server}"
    );
    assert!(
        client.contains("busy: 10 responses of 10; idle: 5 closed of 5"),
        "{client}"
    );
    // Idle connections do not hold the exit: the work (1 s) does, not the grace (2 s).
    assert!(took < std::time::Duration::from_millis(1900), "{took:?}");
}

/// The book's `inspect` example is what `tcpclose inspect` prints today for
/// the same leaking server.
/// `inspect`'s text ends with the published page that explains it, so a
/// reader on a production host, without the repository, can read it.
#[test]
fn inspect_text_ends_with_the_book_s_address() {
    let out = Command::new(env!("CARGO_BIN_EXE_tcpclose"))
        .args(["inspect", &std::process::id().to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().last(),
        Some(format!("how to read this: {}", tcpclose::cli::chapter_url("diagnosing.md")).as_str())
    );
}

/// `cargo install tcpclose` puts only `tcpclose` and `tcpclose-*` on the
/// PATH: the package's programs are the files of src/bin, and no
/// `[[bin]]` section names another.
#[test]
fn every_installed_program_is_named_tcpclose() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(root.join("src/bin"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 9, "{names:?}");
    for name in &names {
        assert!(name == "tcpclose" || name.starts_with("tcpclose-"), "{name}");
    }
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    assert!(
        !manifest.contains("[[bin]]"),
        "a [[bin]] section in examples/Cargo.toml"
    );
}

#[test]
fn inspect_example_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../src")
        .join(tcpclose::book::INSPECT_EXAMPLE);
    let fresh = tcpclose::inspect::demo(std::path::Path::new(env!("CARGO_BIN_EXE_tcpclose"))).expect("the demo runs");
    let stored = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        stored == fresh,
        "{} is stale: regenerate with `cargo run -- bless` and review the diff\n--- this run\n{fresh}",
        path.display()
    );
}
