//! The reproduction scripts, run as a reader runs them (as root, so that
//! tcpdump captures), checked on what they print from ss and tcpdump.

use std::path::PathBuf;
use std::process::Command;

fn run_script(name: &str, args: &[&str]) -> String {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let pcap = std::env::temp_dir().join(format!(
        "tcpclose-{name}-{}-{}.pcap",
        args.join("-"),
        std::process::id()
    ));
    let out = Command::new("bash")
        .arg(dir.join("scripts").join(name))
        .args(args)
        .env("ADDR", "127.0.0.1:0")
        .env("PCAP", &pcap)
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{name} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !stdout.contains("tcpdump cannot capture"),
        "{name}: tcpdump could not capture; run the tests as root:\n{stdout}"
    );
    assert!(pcap.exists(), "{name} wrote no pcap");
    std::fs::remove_file(&pcap).unwrap();
    stdout
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

#[test]
fn eof_close_wait_leak() {
    let out = run_script("eof-close-wait.sh", &["leak"]);
    let port = port(&out);
    let ss = section(&out, "ss ");
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
    let out = run_script("eof-close-wait.sh", &["close"]);
    let port = port(&out);
    let ss = section(&out, "ss ");
    assert!(!ss.iter().any(|l| l.starts_with("CLOSE-WAIT")), "{ss:#?}");
    assert!(ss.iter().any(|l| l.starts_with("TIME-WAIT")), "{ss:#?}");
    let packets = section(&out, "tcpdump");
    let from_server = format!("127.0.0.1.{port} >");
    assert!(
        packets
            .iter()
            .any(|l| l.contains(&from_server) && l.contains("Flags [F.]")),
        "no server FIN: {packets:#?}"
    );
}

#[test]
fn broken_pipe() {
    let out = run_script("broken-pipe.sh", &[]);
    let port = port(&out);
    assert!(out.contains("-> Ok(1024)"), "{out}");
    assert!(
        out.contains("-> Err(BrokenPipe) \"Broken pipe (os error 32)\""),
        "{out}"
    );
    let ss = section(&out, "ss ");
    assert!(
        ss.iter().all(|l| l.starts_with("State") || l.starts_with("LISTEN")),
        "{ss:#?}"
    );
    let packets = section(&out, "tcpdump");
    let to_server = format!("> 127.0.0.1.{port}: Flags [R]");
    assert!(
        packets.iter().any(|l| l.contains(&to_server)),
        "no RST from the client: {packets:#?}"
    );
    assert!(packets.iter().any(|l| l.contains("length 1024")), "{packets:#?}");
}

#[test]
fn bad_arguments_exit_2() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts");
    for (script, arg) in [("eof-close-wait.sh", "sometimes"), ("broken-pipe.sh", "extra")] {
        let out = Command::new("bash").arg(dir.join(script)).arg(arg).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{script}");
    }
}
