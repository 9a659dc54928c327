//! How long `tcpclose inspect PID` takes next to `ss -tanp`, on a process
//! holding 7,500 TCP descriptors in a network namespace of 10,000 sockets.
//!
//!     cargo build --release -p tcpclose --bin tcpclose
//!     cargo bench -p tcpclose --bench inspect [-- --runs N]
//!
//! The scene lives in a private network namespace (a user namespace too,
//! for an ordinary user; see `tcpclose::sandbox`): this program re-executes
//! itself twice as a holder, one holding 3,750 connected pairs over
//! loopback (both ends, 7,500 descriptors), the other 1,250 pairs (2,500).
//! Then it runs the release `tcpclose inspect HOLDER_PID` and `ss -tanp`,
//! interleaved, N times each (7 by default) after one untimed run of each,
//! their output to /dev/null, and prints the medians and their ratio.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// The inspected process's pairs: 7,500 descriptors.
const INSPECTED_PAIRS: usize = 3_750;
/// The other process's pairs: the namespace holds 10,000 sockets in all.
const OTHER_PAIRS: usize = 1_250;
const DEFAULT_RUNS: usize = 7;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--holder") {
        let pairs = args.get(i + 1).and_then(|n| n.parse().ok()).unwrap_or(0);
        return match hold(pairs) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("inspect bench holder: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let runs = match args.iter().position(|a| a == "--runs") {
        Some(i) => match args.get(i + 1).and_then(|n| n.parse::<usize>().ok()) {
            Some(n) if n > 0 => n,
            _ => return fail("--runs takes a number of runs, 1 or more"),
        },
        None => DEFAULT_RUNS,
    };
    // First, while this process has one thread.
    let sandbox = tcpclose::sandbox::enter();
    if !sandbox.is_private() {
        return fail(&format!("the scene needs a private network namespace: {sandbox}"));
    }
    match bench(runs) {
        Ok(code) => code,
        Err(e) => fail(&e.to_string()),
    }
}

fn fail(what: &str) -> ExitCode {
    eprintln!("inspect bench: {what}");
    ExitCode::FAILURE
}

fn bench(runs: usize) -> std::io::Result<ExitCode> {
    let Some(tcpclose) = release_binary() else {
        return Ok(fail(
            "no release tcpclose next to this benchmark: run `cargo build --release -p tcpclose --bin tcpclose` first",
        ));
    };
    let Some(ss) = in_path("ss") else {
        return Ok(fail("no `ss` in PATH (iproute2): nothing to compare with"));
    };
    // Each holder holds its sockets, a listener, and what it inherits.
    raise_nofile((2 * INSPECTED_PAIRS + 64) as u64)?;
    let inspected = Holder::start(INSPECTED_PAIRS)?;
    let _other = Holder::start(OTHER_PAIRS)?;
    let pid = inspected.child.id().to_string();
    println!(
        "tcpclose inspect {pid}: {} TCP descriptors, {} sockets in the namespace; {runs} runs each, interleaved",
        2 * INSPECTED_PAIRS,
        2 * (INSPECTED_PAIRS + OTHER_PAIRS)
    );

    let mut inspect_cmd = Command::new(&tcpclose);
    inspect_cmd.args(["inspect", &pid]);
    let mut ss_cmd = Command::new(&ss);
    ss_cmd.arg("-tanp");
    // Untimed: the first look at /proc/PID/fd builds the kernel's entries.
    time(&mut inspect_cmd)?;
    time(&mut ss_cmd)?;
    let (mut inspect_times, mut ss_times) = (Vec::new(), Vec::new());
    for run in 0..runs {
        // Alternate which goes first, so that neither always follows the other.
        if run % 2 == 0 {
            inspect_times.push(time(&mut inspect_cmd)?);
            ss_times.push(time(&mut ss_cmd)?);
        } else {
            ss_times.push(time(&mut ss_cmd)?);
            inspect_times.push(time(&mut inspect_cmd)?);
        }
    }
    let (inspect_ms, ss_ms) = (median_ms(&mut inspect_times), median_ms(&mut ss_times));
    println!("tcpclose inspect: median {inspect_ms:.1} ms");
    println!("ss -tanp:         median {ss_ms:.1} ms");
    println!("ratio inspect/ss: {:.2}", inspect_ms / ss_ms);
    Ok(ExitCode::SUCCESS)
}

/// `target/release/tcpclose`: the benchmark runs from `target/release/deps`.
fn release_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    [dir, dir.parent()?]
        .iter()
        .map(|d| d.join("tcpclose"))
        .find(|p| p.is_file())
}

fn in_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// One run, its output discarded; a failure is an error.
fn time(command: &mut Command) -> std::io::Result<Duration> {
    let start = Instant::now();
    let out = command.stdout(Stdio::null()).stderr(Stdio::piped()).output()?;
    let took = start.elapsed();
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(took)
}

fn median_ms(times: &mut [Duration]) -> f64 {
    times.sort();
    let n = times.len();
    let median = if n % 2 == 1 {
        times[n / 2]
    } else {
        (times[n / 2 - 1] + times[n / 2]) / 2
    };
    median.as_secs_f64() * 1000.0
}

/// Raises this process's soft limit on descriptors to `at_least` (the
/// holders inherit it), the hard limit too when it is lower and we may.
fn raise_nofile(at_least: u64) -> std::io::Result<()> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if limit.rlim_cur >= at_least {
            return Ok(());
        }
        limit.rlim_cur = at_least;
        limit.rlim_max = limit.rlim_max.max(at_least);
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
            let e = std::io::Error::last_os_error();
            return Err(std::io::Error::other(format!(
                "cannot raise the limit on open files to {at_least} ({e}): `ulimit -Hn` is lower"
            )));
        }
    }
    Ok(())
}

/// A re-execution of this program holding `pairs` connected pairs.
struct Holder {
    child: Child,
}

impl Holder {
    fn start(pairs: usize) -> std::io::Result<Holder> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["--holder", &pairs.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            BufReader::new(out).read_line(&mut line)?;
        }
        let holder = Holder { child };
        if line.trim() != "ready" {
            return Err(std::io::Error::other(format!(
                "the holder of {pairs} pairs did not start"
            )));
        }
        Ok(holder)
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        // Its standard input closes: it exits.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// The holder: `pairs` connected pairs over loopback, both ends kept, its
/// listener closed; says `ready` and waits for its standard input to close.
fn hold(pairs: usize) -> std::io::Result<()> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let addr = listener.local_addr()?;
    let mut held = Vec::with_capacity(2 * pairs);
    for _ in 0..pairs {
        let client = TcpStream::connect(addr)?;
        let (server, _) = listener.accept()?;
        held.push(client);
        held.push(server);
    }
    drop(listener);
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    drop(out);
    std::io::copy(&mut std::io::stdin(), &mut std::io::sink())?;
    drop(held);
    Ok(())
}
