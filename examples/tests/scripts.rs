//! The reproduction scripts, run as a reader runs them, checked on what
//! they print from ss and tcpdump. Each runs in a network namespace of its
//! own (`unshare -n` as root; otherwise a user namespace that keeps the
//! user's own id and hands its capabilities to the script's programs, so
//! that tcpdump captures and writes its file as that user), where tcpdump
//! may capture without root and the port's table holds only the script's
//! sockets. The tools are required when CI is set; elsewhere a missing one
//! is named in the test's output.

use std::path::PathBuf;
use std::process::Command;

/// The tools the scripts use, each with its Debian package.
const TOOLS: [(&str, &str); 6] = [
    ("tcpdump", "tcpdump"),
    ("ss", "iproute2"),
    ("nstat", "iproute2"),
    ("lsof", "lsof"),
    ("netstat", "net-tools"),
    ("unshare", "util-linux"),
];

/// Whether every tool is installed; when CI is set, they must be.
fn tools_installed() -> bool {
    let missing: Vec<String> = TOOLS
        .iter()
        .filter(|(tool, _)| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(|(tool, package)| format!("{tool} (package {package})"))
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "missing: {}", missing.join(", "));
    eprintln!("NOT RUN: the scripts need {}", missing.join(", "));
    false
}

/// Runs a script in a new network namespace with `lo` up; `None` when a
/// tool is missing (outside CI).
fn run_script(name: &str, args: &[&str]) -> Option<String> {
    if !tools_installed() {
        return None;
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let pcap = std::env::temp_dir().join(format!(
        "tcpclose-{name}-{}-{}.pcap",
        args.join("-"),
        std::process::id()
    ));
    // SAFETY: geteuid only reads.
    let namespace: &[&str] = if unsafe { libc::geteuid() } == 0 {
        &["-n"]
    } else {
        &["-Un", "--map-current-user", "--keep-caps"]
    };
    let out = Command::new("unshare")
        .args(namespace)
        .args(["sh", "-c", "ip link set lo up && exec bash \"$0\" \"$@\""])
        .arg(dir.join("scripts").join(name))
        .args(args)
        .env(
            "PATH",
            format!("{}:/usr/sbin:/sbin", std::env::var("PATH").unwrap_or_default()),
        )
        .env("ADDR", "127.0.0.1:0")
        .env("PCAP", &pcap)
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    // Captured by the test harness, and shown when an assertion fails.
    println!("{name} {args:?} printed:\n{stdout}");
    assert!(
        out.status.success(),
        "{name} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !stdout.contains("tcpdump cannot capture"),
        "{name}: tcpdump could not capture:\n{stdout}"
    );
    assert!(pcap.exists(), "{name} wrote no pcap");
    std::fs::remove_file(&pcap).unwrap();
    Some(stdout)
}

/// The lines of one `== title` section of a script's output.
fn section<'a>(output: &'a str, title: &str) -> Vec<&'a str> {
    output
        .split("\n== ")
        .find(|s| s.starts_with(title))
        .unwrap_or_else(|| panic!("no section {title} in:\n{output}"))
        .lines()
        .skip(1)
        .collect()
}

/// The port the script's server listened on.
fn port(output: &str) -> String {
    output
        .lines()
        .find_map(|l| l.strip_prefix("server listening on port "))
        .expect("a port")
        .to_string()
}

/// The `ss` lines of the script's own connection: the port's table may
/// also hold a TIME-WAIT of an earlier connection of another test to a
/// listener that had the same port.
fn connection<'a>(output: &str, ss: &[&'a str]) -> Vec<&'a str> {
    let client = output
        .lines()
        .find_map(|l| l.strip_prefix("connected ").and_then(|l| l.split(' ').next()))
        .expect("the client says which address it connected from");
    ss.iter()
        .copied()
        .filter(|l| l.contains(&format!("{client} ")))
        .collect()
}

#[test]
fn eof_close_wait_leak() {
    let Some(out) = run_script("eof-close-wait.sh", &["leak"]) else {
        return;
    };
    let port = port(&out);
    let ss = connection(&out, &section(&out, "ss "));
    assert!(
        ss.iter()
            .any(|l| l.starts_with("CLOSE-WAIT") && l.contains(&format!("127.0.0.1:{port} "))),
        "{ss:#?}"
    );
    assert!(ss.iter().any(|l| l.starts_with("FIN-WAIT-2")), "{ss:#?}");
    let packets = section(&out, "tcpdump");
    let from_server = format!("127.0.0.1.{port} >");
    assert!(
        packets
            .iter()
            .any(|l| !l.contains(&from_server) && l.contains("Flags [F.]")),
        "no client FIN: {packets:#?}"
    );
    assert!(
        !packets
            .iter()
            .any(|l| l.contains(&from_server) && l.contains("Flags [F")),
        "a server FIN: {packets:#?}"
    );
}

#[test]
fn eof_close_wait_close() {
    let Some(out) = run_script("eof-close-wait.sh", &["close"]) else {
        return;
    };
    let port = port(&out);
    let packets = section(&out, "tcpdump");
    let from_server = format!("127.0.0.1.{port} >");
    assert!(
        packets
            .iter()
            .any(|l| l.contains(&from_server) && l.contains("Flags [F.]")),
        "no server FIN: {packets:#?}"
    );
    let ends = [
        "the client in TIME-WAIT",
        "the client's TIME-WAIT ended by the server's RST",
    ];
    assert!(ends.contains(&client_after_close(&out)), "{}", client_after_close(&out));
}

/// What is left of the client once both sides have closed: its socket in
/// TIME_WAIT (ss prints TIME-WAIT), or, now and then, nothing. The server's
/// kernel may send one more ACK after its FIN; the client's TIME_WAIT
/// answers it, the server, whose socket is gone, answers that with an RST,
/// and an RST ends a TIME_WAIT at once (net.ipv4.tcp_rfc1337 = 0, the
/// default).
fn client_after_close(out: &str) -> &'static str {
    let port = port(out);
    let ss = connection(out, &section(out, "ss "));
    let reset = section(out, "tcpdump")
        .iter()
        .any(|l| l.contains(&format!("127.0.0.1.{port} >")) && l.contains("Flags [R]"));
    // The server's socket may still be listed in LAST-ACK for a moment
    // after the capture shows the client's last ACK; it never is CLOSE-WAIT.
    let time_wait = ss.iter().any(|l| l.starts_with("TIME-WAIT"));
    let close_wait = ss.iter().any(|l| l.starts_with("CLOSE-WAIT"));
    match (close_wait, time_wait, ss.is_empty() && reset) {
        (false, true, _) => "the client in TIME-WAIT",
        (false, false, true) => "the client's TIME-WAIT ended by the server's RST",
        _ => "something else",
    }
}

#[test]
fn a_reset_may_end_the_time_wait_of_eof_close_wait_close() {
    let seen = include_str!("fixtures/eof-close-wait-close-time-wait-reset.txt");
    assert_eq!(
        client_after_close(seen),
        "the client's TIME-WAIT ended by the server's RST"
    );
    // Without the RST, a missing TIME-WAIT is not explained.
    let without_reset: Vec<&str> = seen.lines().filter(|l| !l.contains("Flags [R]")).collect();
    assert_eq!(client_after_close(&without_reset.join("\n")), "something else");
}

#[test]
fn broken_pipe() {
    let Some(out) = run_script("broken-pipe.sh", &[]) else {
        return;
    };
    let port = port(&out);
    assert!(out.contains("-> Ok(1024)"), "{out}");
    assert!(
        out.contains("-> Err(BrokenPipe) \"Broken pipe (os error 32)\""),
        "{out}"
    );
    // The RST ended both sockets of the connection.
    let ss = connection(&out, &section(&out, "ss "));
    assert!(ss.is_empty(), "{ss:#?}");
    let packets = section(&out, "tcpdump");
    let to_server = format!("> 127.0.0.1.{port}: Flags [R]");
    assert!(
        packets.iter().any(|l| l.contains(&to_server)),
        "no RST from the client: {packets:#?}"
    );
    assert!(packets.iter().any(|l| l.contains("length 1024")), "{packets:#?}");
}

#[test]
fn unread_data_rst() {
    let Some(out) = run_script("unread-data-rst.sh", &[]) else {
        return;
    };
    let port = port(&out);
    assert!(out.contains("bytes unread: the kernel sends RST"), "{out}");
    let client = section(&out, "client ");
    assert!(
        client.iter().any(|l| l.contains("then read -> Err(ConnectionReset)")),
        "{client:#?}"
    );
    let packets = section(&out, "tcpdump");
    let from_server = format!("127.0.0.1.{port} >");
    assert!(
        packets
            .iter()
            .any(|l| l.contains(&from_server) && l.contains("Flags [R.]")),
        "{packets:#?}"
    );
    assert!(
        !packets
            .iter()
            .any(|l| l.contains(&from_server) && l.contains("Flags [F")),
        "{packets:#?}"
    );
    let counter = section(&out, "nstat");
    let (before, after) = counter[0]
        .trim_start_matches("before: ")
        .split_once(", after: ")
        .expect("before, after");
    assert!(
        after.parse::<u64>().unwrap() > before.parse::<u64>().unwrap(),
        "{counter:#?}"
    );
}

#[test]
fn reset_while_reading() {
    let Some(out) = run_script("reset-while-reading.sh", &[]) else {
        return;
    };
    let port = port(&out);
    assert!(
        out.contains("read 10 bytes, then read -> Err(ConnectionReset)"),
        "{out}"
    );
    let packets = section(&out, "tcpdump");
    let from_server = format!("127.0.0.1.{port} >");
    assert!(
        packets
            .iter()
            .any(|l| l.contains(&from_server) && l.contains("length 10")),
        "{packets:#?}"
    );
    assert!(
        packets
            .iter()
            .any(|l| l.contains(&from_server) && l.contains("Flags [R.]")),
        "{packets:#?}"
    );
}

#[test]
fn linger_zero() {
    let Some(out) = run_script("linger-zero.sh", &[]) else {
        return;
    };
    let port = port(&out);
    assert!(out.contains("read 0 bytes, then read -> Err(ConnectionReset)"), "{out}");
    // No TIME-WAIT, nothing at all of the connection.
    let ss = connection(&out, &section(&out, "ss "));
    assert!(ss.is_empty(), "{ss:#?}");
    let packets = section(&out, "tcpdump");
    assert!(
        packets
            .iter()
            .any(|l| l.contains(&format!("> 127.0.0.1.{port}: Flags [R.]"))),
        "{packets:#?}"
    );
    assert!(!packets.iter().any(|l| l.contains("Flags [F")), "{packets:#?}");
}

#[test]
fn linger_timeout() {
    let Some(out) = run_script("linger-timeout.sh", &[]) else {
        return;
    };
    let port = port(&out);
    let took = out
        .lines()
        .find_map(|l| {
            l.split_once("close took ")
                .map(|(_, t)| t.trim_end_matches(" s").parse::<f64>().unwrap())
        })
        .expect("the client says how long close took");
    assert!((0.9..3.0).contains(&took), "close took {took} s");
    let ss = connection(&out, &section(&out, "ss "));
    assert!(ss.iter().any(|l| l.starts_with("FIN-WAIT-1")), "{ss:#?}");
    let queued: usize = out
        .lines()
        .find_map(|l| l.strip_prefix("queued ").and_then(|l| l.split(' ').next()))
        .and_then(|n| n.parse().ok())
        .expect("the client says how much it queued");
    assert!(
        out.contains(&format!("read {queued} bytes, then read -> Ok(0)")),
        "{out}"
    );
    let packets = section(&out, "tcpdump");
    assert!(
        packets
            .iter()
            .any(|l| l.contains(&format!("> 127.0.0.1.{port}: Flags [F"))),
        "{packets:#?}"
    );
    assert!(!packets.iter().any(|l| l.contains("Flags [R")), "{packets:#?}");
}

#[test]
fn lingering_close_naive() {
    let Some(out) = run_script("lingering-close.sh", &["naive"]) else {
        return;
    };
    assert!(out.contains("then read -> Err(ConnectionReset)"), "{out}");
    let packets = section(&out, "tcpdump");
    assert!(packets.iter().any(|l| l.contains("Flags [R.]")), "{packets:#?}");
}

#[test]
fn lingering_close_lingering() {
    let Some(out) = run_script("lingering-close.sh", &["lingering"]) else {
        return;
    };
    assert!(out.contains("read 262144 bytes, then read -> Ok(0)"), "{out}");
    let packets = section(&out, "tcpdump");
    assert_eq!(
        packets.iter().filter(|l| l.contains("Flags [F")).count(),
        2,
        "{packets:#?}"
    );
    assert!(!packets.iter().any(|l| l.contains("Flags [R")), "{packets:#?}");
}

#[test]
fn connect_refused() {
    let Some(out) = run_script("connect-refused.sh", &[]) else {
        return;
    };
    let port = port(&out);
    assert!(out.contains("Connection refused (os error 111)"), "{out}");
    let packets = section(&out, "tcpdump");
    assert!(packets.iter().any(|l| l.contains("Flags [S]")), "{packets:#?}");
    assert!(
        packets
            .iter()
            .any(|l| l.contains(&format!("127.0.0.1.{port} >")) && l.contains("Flags [R.]")),
        "{packets:#?}"
    );
}

#[test]
fn every_script_is_tested_and_refuses_bad_arguments() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts");
    let source = include_str!("scripts.rs");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name == "lib.sh" || !name.ends_with(".sh") {
            continue;
        }
        assert!(source.contains(&format!("run_script(\"{name}\"")), "{name} has no test");
        let out = Command::new("bash")
            .arg(dir.join(&name))
            .args(["a", "b"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name} accepted bad arguments");
    }
}

#[test]
fn diagnose() {
    let Some(out) = run_script("diagnose.sh", &[]) else {
        return;
    };
    let port = port(&out);
    let ss = section(&out, "ss -tanpo state close-wait");
    let leaked: Vec<&&str> = ss
        .iter()
        .filter(|l| l.contains("users:((\"tcpclose-server\""))
        .collect();
    assert_eq!(leaked.len(), 2, "{ss:#?}");
    let descriptors = section(&out, "the sockets among");
    assert_eq!(
        descriptors.iter().filter(|l| l.contains("-> socket:[")).count(),
        3,
        "{descriptors:#?}"
    );
    let lsof = section(&out, "lsof");
    assert_eq!(
        lsof.iter().filter(|l| l.contains("(CLOSE_WAIT)")).count(),
        2,
        "{lsof:#?}"
    );
    let nstat = section(&out, "nstat");
    let counter = |name: &str| -> Option<u64> {
        let line = nstat.iter().find(|l| l.starts_with(name))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    assert_eq!(counter("TcpPassiveOpens"), Some(2), "{nstat:#?}");
    assert_eq!(counter("TcpOutRsts"), Some(0), "{nstat:#?}");
    let packets = section(&out, "tcpdump");
    let from_server = format!("127.0.0.1.{port} >");
    assert_eq!(
        packets.iter().filter(|l| l.contains("Flags [F.]")).count(),
        2,
        "{packets:#?}"
    );
    assert!(!packets.iter().any(|l| l.contains(&from_server)), "{packets:#?}");
    let inspect = section(&out, "tcpclose inspect");
    assert_eq!(
        inspect.iter().filter(|l| l.contains("CLOSE_WAIT:")).count(),
        2,
        "{inspect:#?}"
    );
}
