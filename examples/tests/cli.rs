//! The lab CLI as a reader uses it: exit codes, one-line errors, JSON and
//! pcap output (read back with tcpdump, not with our own parser).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use tcpclose::observe::State;
use tcpclose::transcript::{Step, Transcript, Verdict};

fn tcpclose(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tcpclose"))
        .args(args)
        .output()
        .expect("tcpclose runs")
}

fn is_root() -> bool {
    // SAFETY: geteuid only reads.
    unsafe { libc::geteuid() == 0 }
}

/// A command that runs as an ordinary user: as `nobody` when the tests run
/// as root (with a copy of the binary in a directory `nobody` can read),
/// as is otherwise. PATH has no /usr/sbin, as for most users.
fn as_ordinary_user(program: &str) -> Command {
    let mut command = if is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", program]);
        c
    } else {
        Command::new(program)
    };
    command.env("PATH", "/usr/bin:/bin");
    command
}

/// The lab binary where an ordinary user can run it, in a directory of
/// the test `name`. Copied by `install` in a process of its own: a file
/// this process had open for writing could be inherited by a child another
/// test thread is forking, and executing it would fail with ETXTBSY.
fn lab_for_ordinary_user(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tcpclose-{name}-{}", std::process::id()));
    let copy = dir.join("tcpclose");
    let status = Command::new("install")
        .args(["-D", "-m", "755", env!("CARGO_BIN_EXE_tcpclose")])
        .arg(&copy)
        .status()
        .expect("install (coreutils) runs");
    assert!(status.success());
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    copy
}

/// Whether `tool` is installed; when CI is set, it must be.
fn installed(tool: &str, package: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(std::env::var_os("CI").is_none(), "{tool} is missing: install {package}");
        eprintln!("NOT RUN: {tool} is missing; install the {package} package to run this test");
    }
    found
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
    assert!(
        stdout.contains(" 0 refuted, 0 not checked; 0 scenarios stopped"),
        "{stdout}"
    );
}

#[test]
fn an_ordinary_user_confirms_every_claim_packets_included() {
    let lab = lab_for_ordinary_user("user");
    let out = as_ordinary_user(lab.to_str().unwrap()).output().unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("in a private user and network namespace"), "{stdout}");
    assert!(
        stdout.contains(" 0 refuted, 0 not checked; 0 scenarios stopped"),
        "{stdout}"
    );
    assert!(
        stdout.contains("confirmed    closing with unread bytes sends RST, not FIN"),
        "{stdout}"
    );
    std::fs::remove_dir_all(lab.parent().unwrap()).unwrap();
}

#[test]
fn without_a_namespace_claims_are_not_checked_never_refuted() {
    // What a kernel that refuses user namespaces gives an ordinary user.
    let lab = lab_for_ordinary_user("no-namespace");
    let out = as_ordinary_user(lab.to_str().unwrap())
        .env("TCPCLOSE_NO_NAMESPACE", "1")
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("no private network namespace") && stderr.contains("sudo"),
        "{stderr}"
    );
    assert!(!stdout.contains("REFUTED") && !stdout.contains("STOPPED"), "{stdout}");
    assert!(stdout.contains("not checked  every claim of rebind"), "{stdout}");
    assert!(stdout.contains("confirmed    read returns Ok(0)"), "{stdout}");
    std::fs::remove_dir_all(lab.parent().unwrap()).unwrap();
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
        &["run", "broken-pipe", "--pcap", "/nonexistent/dir/x.pcap"],
        &["run", "broken-pipe", "--svg", "/nonexistent/dir/x.svg"],
        &["bless", "--book", "/nonexistent"],
        &["bless", "no-such-scenario"],
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
    let runs: Vec<Transcript> = serde_json::from_slice(&out.stdout).expect("the run's record");
    let [run] = runs.as_slice() else {
        panic!("one run, not {}", runs.len())
    };
    assert_eq!(run.id, "eof-close-wait");
    assert!(
        run.checks.iter().all(|c| c.verdict == Verdict::Confirmed),
        "{:?}",
        run.checks
    );
    assert!(run.steps.iter().any(|s| matches!(
        s,
        Step::States {
            server: Some(State::CloseWait),
            ..
        }
    )));
}

#[test]
fn pcap_opens_in_tcpdump() {
    if !installed("tcpdump", "tcpdump") {
        return;
    }
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
fn hold_says_how_to_look_and_the_command_works_for_an_ordinary_user() {
    if !installed("ss", "iproute2") || !installed("nsenter", "util-linux") {
        return;
    }
    let lab = lab_for_ordinary_user("hold");
    let mut child = as_ordinary_user(lab.to_str().unwrap())
        .args(["run", "half-close", "connect-refused", "--hold", "3"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut said = String::new();
    let look = loop {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "no look: line in {said}");
        said.push_str(&line);
        if let Some(command) = line.trim().strip_prefix("look: ") {
            break command.to_string();
        }
    };
    assert!(said.contains("[half-close] holding 3 s"), "{said}");
    assert!(look.starts_with("nsenter -t "), "{look}");
    // The reader's own tools, as the reader: inside the scenario's namespace.
    let seen = as_ordinary_user("sh").args(["-c", &look]).output().unwrap();
    let table = text(&seen.stdout);
    assert!(seen.status.success(), "{look}: {table}{}", text(&seen.stderr));
    assert!(
        table.contains("FIN-WAIT-2") && table.contains("CLOSE-WAIT"),
        "{look}:\n{table}"
    );
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert!(child.wait().unwrap().success(), "{said}{rest}");
    assert!(
        (said + &rest).contains("[connect-refused] --hold: this scenario has no moment to pause at"),
        "{rest}"
    );
    std::fs::remove_dir_all(lab.parent().unwrap()).unwrap();
}

/// `bless ID` rewrites that scenario's four files and nothing else.
#[test]
fn bless_of_one_scenario_touches_only_its_files() {
    let book = std::env::temp_dir().join(format!("tcpclose-bless-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&book);
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../src");
    let copied = Command::new("cp")
        .arg("-r")
        .arg(&src)
        .arg(&book)
        .status()
        .expect("cp runs");
    assert!(copied.success());
    let listing = |dir: &PathBuf| -> Vec<(PathBuf, Vec<u8>)> {
        let mut files = Vec::new();
        let mut stack = vec![dir.clone()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap().map(Result::unwrap) {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    files.push((
                        path.strip_prefix(dir).unwrap().to_path_buf(),
                        std::fs::read(&path).unwrap(),
                    ));
                }
            }
        }
        files.sort();
        files
    };
    let before = listing(&book);
    // Made stale, so that a rewrite shows.
    for file in [
        "transcripts/half-close.txt",
        "transcripts/half-close.json",
        "diagrams/half-close.svg",
        "diagrams/half-close.wide.svg",
    ] {
        std::fs::write(book.join(file), "stale").unwrap();
    }
    let out = tcpclose(&["bless", "--book", book.to_str().unwrap(), "half-close"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let after = listing(&book);
    let changed: Vec<&PathBuf> = before
        .iter()
        .zip(&after)
        .filter(|(b, a)| b != a)
        .map(|(b, _)| &b.0)
        .collect();
    let rewritten = [
        "diagrams/half-close.svg",
        "diagrams/half-close.wide.svg",
        "transcripts/half-close.json",
        "transcripts/half-close.txt",
    ];
    for path in &changed {
        assert!(
            rewritten.iter().any(|r| path.ends_with(r)),
            "bless half-close changed {}",
            path.display()
        );
    }
    for file in rewritten {
        assert_ne!(
            std::fs::read(book.join(file)).unwrap(),
            b"stale",
            "{file} was not rewritten"
        );
    }
    assert_eq!(before.len(), after.len());
    let _ = std::fs::remove_dir_all(&book);
}
