//! The lab CLI as a reader uses it: exit codes, one-line errors, JSON and
//! pcap output (read back with tcpdump, not with our own parser).

use std::process::{Command, Output};

fn tcpclose(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tcpclose"))
        .args(args)
        .output()
        .expect("tcpclose runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn no_arguments_runs_every_scenario_and_exits_0() {
    let out = tcpclose(&[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    for s in tcpclose::scenario::ALL {
        assert!(stdout.contains(s.id), "{} missing from:\n{stdout}", s.id);
    }
    assert!(!stdout.contains("REFUTED"), "{stdout}");
    assert!(stdout.contains(" 0 refuted"), "{stdout}");
}

#[test]
fn list_prints_one_id_per_line() {
    let out = tcpclose(&["list"]);
    assert!(out.status.success());
    let ids: Vec<String> = text(&out.stdout)
        .lines()
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    let expected: Vec<String> = tcpclose::scenario::ALL.iter().map(|s| s.id.to_string()).collect();
    assert_eq!(ids, expected);
}

#[test]
fn bad_usage_is_one_line_and_exit_2() {
    for args in [
        &["run", "no-such-scenario"][..],
        &["--bogus"],
        &["run"],
        &["run", "broken-pipe", "--hold", "soon"],
        &["run", "broken-pipe", "half-close", "--svg", "x.svg"],
        &["frobnicate"],
    ] {
        let out = tcpclose(args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("tcpclose: "), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn help_documents_every_flag() {
    let out = tcpclose(&["run", "--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for flag in ["--pcap", "--svg", "--json", "--hold"] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

#[test]
fn json_transcript_parses() {
    let out = tcpclose(&["run", "eof-close-wait", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    let first = &json[0];
    assert_eq!(first["id"], "eof-close-wait");
    assert!(first["checks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["verdict"] == "confirmed"));
    assert!(first["steps"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["server"] == "CLOSE_WAIT"));
}

#[test]
fn pcap_opens_in_tcpdump() {
    let dir = std::env::temp_dir().join(format!("tcpclose-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("broken-pipe.pcap");
    let out = tcpclose(&["run", "broken-pipe", "--pcap", pcap.to_str().unwrap()]);
    assert!(out.status.success(), "needs root for capture: {}", text(&out.stderr));
    let read = Command::new("tcpdump")
        .args(["-nn", "-r"])
        .arg(&pcap)
        .output()
        .expect("tcpdump is installed");
    let lines = text(&read.stdout);
    assert!(read.status.success(), "{}", text(&read.stderr));
    assert!(lines.lines().any(|l| l.contains("Flags [R]")), "no RST in:\n{lines}");
    assert!(lines.lines().any(|l| l.contains("length 1024")), "no data in:\n{lines}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn without_cap_net_raw_calls_and_states_are_still_checked() {
    // setpriv (util-linux) runs the lab with CAP_NET_RAW taken away, as for
    // a reader who is not root.
    let out = Command::new("setpriv")
        .args(["--bounding-set", "-net_raw", "--inh-caps", "-net_raw"])
        .arg(env!("CARGO_BIN_EXE_tcpclose"))
        .args(["run", "eof-close-wait"])
        .output()
        .expect("setpriv (util-linux) is installed");
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("CAP_NET_RAW"), "{stderr}");
    assert!(stdout.contains("not checked"), "{stdout}");
    assert!(stdout.contains("confirmed    read returns Ok(0)"), "{stdout}");

    let pcap = std::env::temp_dir().join(format!("tcpclose-nocap-{}.pcap", std::process::id()));
    let out = Command::new("setpriv")
        .args(["--bounding-set", "-net_raw", "--inh-caps", "-net_raw"])
        .arg(env!("CARGO_BIN_EXE_tcpclose"))
        .args(["run", "eof-close-wait", "--pcap"])
        .arg(&pcap)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out.stderr).lines().count(), 1, "{}", text(&out.stderr));
    assert!(!pcap.exists());
}

#[test]
fn svg_draws_the_scenario() {
    let path = std::env::temp_dir().join(format!("tcpclose-cli-{}.svg", std::process::id()));
    let out = tcpclose(&["run", "half-close", "--svg", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let drawing = std::fs::read_to_string(&path).unwrap();
    assert!(
        drawing.starts_with("<svg") && drawing.contains("FIN_WAIT_2"),
        "{drawing}"
    );
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn hold_pauses_at_the_scenario_moment_and_says_how_to_look() {
    let out = tcpclose(&["run", "half-close", "connect-refused", "--hold", "0.05"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("[half-close] holding 0.05 s"), "{stderr}");
    assert!(stderr.contains("look: ss -tan"), "{stderr}");
    assert!(
        stderr.contains("[connect-refused] --hold: this scenario has no moment to pause at"),
        "{stderr}"
    );
}
