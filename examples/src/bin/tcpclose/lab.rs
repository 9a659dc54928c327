//! tcpclose: run the book's TCP close scenarios on this kernel.
//!
//!     cargo run                          every scenario: is each claim confirmed here?
//!     cargo run -- list                  the scenario ids
//!     cargo run -- run broken-pipe       one scenario's transcript
//!     cargo run -- run eof-close-wait --pcap eof.pcap --hold 30
//!     cargo run -- bless                 regenerate the book's transcripts and diagrams
//!
//! Needs no root: the lab moves into a private user and network namespace
//! first thing (see tcpclose::sandbox).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use tcpclose::cli;
use tcpclose::sandbox::{self, Sandbox};
use tcpclose::scenario::{self, Options};
use tcpclose::transcript::{RunOutcome, Transcript, Verdict};
use tcpclose::wire::{self, Capture};

/// Runs the TCP close scenarios of the book on this machine's kernel, over
/// loopback, and reports whether each claim holds here.
///
/// With no command, runs every scenario and prints each claim with its
/// verdict. Exit status: 0 every claim confirmed, 1 a claim refuted, 2 bad
/// usage, 3 something could not run or could not be checked here.
#[derive(Parser)]
#[command(name = "tcpclose", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// With no command: print every transcript as JSON (with each
    /// scenario's duration) instead of the claims.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Print every scenario id with its title.
    List,
    /// Run scenarios and print their transcripts: calls, states, packets, claims.
    Run {
        /// Scenario ids, as `tcpclose list` prints them.
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
        /// Write the captured packets to this pcap file (needs CAP_NET_RAW).
        #[arg(long, value_name = "FILE")]
        pcap: Option<PathBuf>,
        /// Draw the scenario's sequence diagram (packets, states, calls) to this SVG file; one ID only.
        #[arg(long, value_name = "FILE")]
        svg: Option<PathBuf>,
        /// Print the transcripts as JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Pause for SECS at each scenario's key moment, so you can look with ss or Wireshark.
        #[arg(long, value_name = "SECS", value_parser = cli::seconds)]
        hold: Option<Duration>,
    },
    /// List a live process's TCP sockets by descriptor, with their states,
    /// queues and timers, and flag what the book explains: CLOSE_WAIT,
    /// sockets gone from the table but still held, orphans, zero windows.
    /// Needs the right to read /proc/PID/fd: your own processes, or root.
    Inspect {
        /// The process to look at.
        pid: u32,
        /// Sample every second for SECS: how long each CLOSE_WAIT lasts,
        /// and which reset and abort counters move meanwhile.
        #[arg(long, value_name = "SECS", value_parser = cli::seconds)]
        watch: Option<Duration>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Measure what each way of closing costs on loopback: connections per
    /// second, the time from a close to the peer seeing it, the TIME_WAIT
    /// sockets left and the CPU time, at 1, 8 and 64 connections at a time.
    Bench {
        /// Runs of each strategy at each concurrency; each figure is their median.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=100))]
        runs: u16,
        /// Connections in each run.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(64..=100_000))]
        connections: u32,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Write the book's table and plot into this directory (src/bench).
        #[arg(long, value_name = "DIR")]
        book: Option<PathBuf>,
    },
    /// Become the leaking server of the book's inspect example, print
    /// `ready`, and wait for standard input to close.
    #[command(hide = true)]
    LeakDemo,
    /// Run every scenario and write what the book shows of them: the
    /// transcripts, the sequence diagrams and the state-machine page.
    Bless {
        /// The book's source directory [default: src/ of the book whose
        /// book.toml is in this directory or above]
        #[arg(long, value_name = "DIR")]
        book: Option<PathBuf>,
        /// Rewrite every scenario's files, also those that still describe
        /// this run (after a change to how they are drawn).
        #[arg(long)]
        all: bool,
        /// Only these scenarios (ids as `tcpclose list` prints them): their
        /// transcript, checks and diagram, and nothing shared.
        ids: Vec<String>,
    },
}

pub fn main() -> ExitCode {
    // Parsing starts no thread: the sandbox can still be entered after it.
    let cli: Cli = cli::parse();
    if let Some(Command::Inspect { pid, watch, json }) = cli.command {
        // Another process is looked at from the machine's own namespaces.
        return match inspect(pid, watch, json) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("tcpclose: {e:#}");
                ExitCode::from(2)
            }
        };
    }
    if let Some(Command::LeakDemo) = cli.command {
        return match leak_demo() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("tcpclose: {e:#}");
                ExitCode::from(2)
            }
        };
    }
    // First, while the process has one thread: see tcpclose::sandbox.
    let sandbox = sandbox::enter();
    if let Some(notice) = sandbox.notice() {
        eprintln!("tcpclose: {notice}");
    }
    match run(cli, sandbox) {
        Ok(outcome) => ExitCode::from(exit_status(outcome)),
        Err(e) => {
            eprintln!("tcpclose: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// 0 confirmed, 1 refuted, 3 stopped or not checked.
fn exit_status(outcome: RunOutcome) -> u8 {
    match outcome {
        RunOutcome::Confirmed => 0,
        RunOutcome::Refuted => 1,
        RunOutcome::Stopped | RunOutcome::NotChecked => 3,
    }
}

/// The worst outcome of a set of runs.
fn worst(transcripts: &[Transcript]) -> RunOutcome {
    transcripts
        .iter()
        .map(Transcript::outcome)
        .min()
        .unwrap_or(RunOutcome::Confirmed)
}

fn run(cli: Cli, sandbox: &Sandbox) -> anyhow::Result<RunOutcome> {
    match cli.command {
        None => catalogue(cli.json, sandbox),
        Some(Command::List) => {
            for s in scenario::ALL {
                tcpclose::outln!("{:<20} {}", s.id, s.title);
            }
            Ok(RunOutcome::Confirmed)
        }
        Some(Command::Run {
            ids,
            pcap,
            svg,
            json,
            hold,
        }) => run_some(&ids, pcap, svg, json, hold),
        Some(Command::Bless { book, all, ids }) => {
            let book = book_source(book)?;
            if ids.is_empty() {
                bless(&book, all)
            } else {
                bless_only(&book, &ids)
            }
        }
        Some(Command::Inspect { pid, watch, json }) => inspect(pid, watch, json).map(|()| RunOutcome::Confirmed),
        Some(Command::LeakDemo) => leak_demo().map(|()| RunOutcome::Confirmed),
        Some(Command::Bench {
            runs,
            connections,
            json,
            book,
        }) => bench(runs.into(), connections as usize, json, book).map(|()| RunOutcome::Confirmed),
    }
}

fn bench(runs: usize, connections: usize, json: bool, book: Option<PathBuf>) -> anyhow::Result<()> {
    use tcpclose::bench;
    if let Some(dir) = &book {
        // Fail now, not after minutes of measuring.
        std::fs::create_dir_all(dir).with_context(|| format!("cannot write into {}", dir.display()))?;
    }
    // A progress line on a terminal; nothing in a log.
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let report = bench::bench(runs, connections, |now| {
        if terminal {
            eprint!("\rtcpclose bench: {now:<60}");
        }
    })?;
    if terminal {
        eprintln!("\rtcpclose bench: done{:<60}", "");
    }
    let command = format!("cargo run --release -- bench --runs {runs} --connections {connections}");
    let table = bench::markdown(&report, &command);
    if let Some(dir) = book {
        let svg = tcpclose::plot::costs_svg(&report);
        for (name, text) in [("results.fragment", &table), ("close-costs.svg", &svg)] {
            let path = dir.join(name);
            std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        }
        let json_path = dir.join("results.json");
        std::fs::write(&json_path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("cannot write {}", json_path.display()))?;
    }
    if json {
        tcpclose::outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        tcpclose::cli::out(format_args!("{table}"));
    }
    Ok(())
}

fn leak_demo() -> anyhow::Result<()> {
    let _open = tcpclose::inspect::leak_demo().context("cannot set up the leaking server")?;
    tcpclose::outln!("ready");
    // Until the one who started us closes our standard input.
    std::io::copy(&mut std::io::stdin(), &mut std::io::sink())?;
    Ok(())
}

fn inspect(pid: u32, watch: Option<Duration>, json: bool) -> anyhow::Result<()> {
    let report = tcpclose::inspect::inspect(pid, watch, |command| {
        if let Some(watch) = watch {
            eprintln!(
                "tcpclose: watching process {pid} ({command}) for {} s",
                watch.as_secs_f64()
            );
        }
    })
    .with_context(|| format!("cannot inspect process {pid} (your own processes, or root)"))?;
    if json {
        tcpclose::outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        tcpclose::cli::out(format_args!("{}", tcpclose::inspect::to_text(&report)));
    }
    Ok(())
}

fn options() -> Options {
    Options {
        hold: None,
        capture: true,
    }
}

/// The runs' records, as the book keeps them (`src/transcripts/ID.json`).
fn records_json(transcripts: &[tcpclose::transcript::Transcript]) -> serde_json::Result<String> {
    let records: Vec<_> = transcripts.iter().map(|t| t.record()).collect();
    serde_json::to_string_pretty(&records)
}

fn catalogue(json: bool, sandbox: &Sandbox) -> anyhow::Result<RunOutcome> {
    let scenarios: Vec<_> = scenario::ALL.iter().collect();
    let transcripts = scenario::run_all(&scenarios, &options());
    if json {
        tcpclose::outln!("{}", records_json(&transcripts)?);
        return Ok(worst(&transcripts));
    }
    let (mut confirmed, mut refuted, mut unchecked, mut stopped) = (0, 0, 0, 0);
    for t in &transcripts {
        tcpclose::outln!("{}  {}", t.id, t.title);
        for c in &t.checks {
            let mark = match c.verdict {
                Verdict::Confirmed => {
                    confirmed += 1;
                    "confirmed  "
                }
                Verdict::Refuted => {
                    refuted += 1;
                    "REFUTED    "
                }
                Verdict::NotChecked => {
                    unchecked += 1;
                    "not checked"
                }
            };
            tcpclose::outln!("  {mark}  {}", c.claim);
            if c.verdict != Verdict::Confirmed {
                tcpclose::outln!("               observed: {}", c.observed);
            }
        }
        if let Some(e) = &t.error {
            stopped += 1;
            tcpclose::outln!("  STOPPED      {e}");
        }
    }
    let seconds: f64 = transcripts.iter().map(|t| t.seconds).fold(0.0, f64::max);
    tcpclose::outln!(
        "\n{} scenarios on Linux {}, in {sandbox}, {seconds:.1} s: {confirmed} claims confirmed, \
         {refuted} refuted, {unchecked} not checked; {stopped} scenarios stopped",
        transcripts.len(),
        tcpclose::transcript::kernel_release(),
    );
    Ok(worst(&transcripts))
}

/// Fails with one line, before anything runs, when `path` cannot be written.
fn writable(path: &Option<PathBuf>, flag: &str) -> anyhow::Result<()> {
    if let Some(path) = path {
        File::create(path).with_context(|| format!("cannot write {flag} {}", path.display()))?;
    }
    Ok(())
}

fn run_some(
    ids: &[String],
    pcap: Option<PathBuf>,
    svg: Option<PathBuf>,
    json: bool,
    hold: Option<Duration>,
) -> anyhow::Result<RunOutcome> {
    if svg.is_some() && ids.len() != 1 {
        bail!("--svg draws one scenario: give one ID");
    }
    let scenarios = ids
        .iter()
        .map(|id| scenario::find(id).with_context(|| format!("no scenario {id:?}; `tcpclose list` prints the ids")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if pcap.is_some() {
        if let Err(e) = Capture::start("127.0.0.1:0".parse()?) {
            bail!("cannot write --pcap: {e}");
        }
    }
    writable(&pcap, "--pcap")?;
    writable(&svg, "--svg")?;
    let transcripts = scenario::run_all(&scenarios, &Options { hold, capture: true });
    if json {
        tcpclose::outln!("{}", records_json(&transcripts)?);
    } else {
        for t in &transcripts {
            tcpclose::outln!("{}", t.to_text());
        }
    }
    if let Some(path) = svg {
        let drawing = tcpclose::diagram::sequence_svg(&transcripts[0], &tcpclose::diagram::WIDE);
        std::fs::write(&path, drawing).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("tcpclose: drew {} (open it in a browser)", path.display());
    }
    if let Some(path) = pcap {
        let segments: Vec<_> = transcripts.iter().flat_map(|t| t.segments.iter().cloned()).collect();
        wire::write_pcap(&path, &segments).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!(
            "tcpclose: wrote {} packets to {} (open it with wireshark or `tshark -r`)",
            segments.len(),
            path.display()
        );
    }
    Ok(worst(&transcripts))
}

/// The book's source: `book`, or the `src/` beside the book.toml of this
/// directory or the nearest above it (the repository, wherever the lab is
/// installed). Fails unless it holds a SUMMARY.md.
fn book_source(book: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let book = match book {
        Some(book) => book,
        None => {
            let here = std::env::current_dir().context("cannot read the current directory")?;
            let Some(root) = here.ancestors().find(|dir| dir.join("book.toml").is_file()) else {
                bail!(
                    "no book.toml in {} or above: run bless in the book's repository, or give --book DIR",
                    here.display()
                );
            };
            root.join("src")
        }
    };
    if !book.join("SUMMARY.md").is_file() {
        bail!(
            "{} is not the book's source (no SUMMARY.md): give --book DIR",
            book.display()
        );
    }
    Ok(book)
}

/// Fails, writing nothing, unless every run confirmed every claim.
fn every_claim_confirmed(transcripts: &[tcpclose::transcript::Transcript]) -> anyhow::Result<()> {
    if let Some(t) = transcripts.iter().find(|t| t.outcome() != RunOutcome::Confirmed) {
        bail!(
            "{} did not confirm every claim here ({:?}); nothing written:\n{}",
            t.id,
            t.outcome(),
            t.to_text()
        );
    }
    Ok(())
}

/// Runs the named scenarios and rewrites their own files only: the pages
/// that every scenario feeds (the errors table, the state machine, the
/// inspect example) need a run of them all.
fn bless_only(book: &Path, ids: &[String]) -> anyhow::Result<RunOutcome> {
    let mut scenarios = Vec::new();
    for id in ids {
        match scenario::find(id) {
            Some(s) => scenarios.push(s),
            None => bail!("no scenario {id:?}: `tcpclose list` names them"),
        }
    }
    let transcripts = scenario::run_all(&scenarios, &options());
    every_claim_confirmed(&transcripts)?;
    for t in &transcripts {
        for (path, text) in tcpclose::book::scenario_files(t) {
            let path = book.join(path);
            std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    eprintln!(
        "tcpclose: rewrote the files of {} under {}; the pages every scenario feeds need `tcpclose bless`",
        ids.join(", "),
        book.display()
    );
    Ok(RunOutcome::Confirmed)
}

/// Regenerates what the book shows of every scenario. Refuses unless every
/// claim is confirmed: the book shows only runs in which all hold.
fn bless(book: &Path, all: bool) -> anyhow::Result<RunOutcome> {
    let scenarios: Vec<_> = scenario::ALL.iter().collect();
    let transcripts = scenario::run_all(&scenarios, &options());
    every_claim_confirmed(&transcripts)?;
    // A scenario whose files still describe this run keeps them, measured
    // times and all: the diff shows only what changed.
    let (current, stale): (Vec<_>, Vec<_>) = transcripts
        .iter()
        .partition(|t| !all && tcpclose::book::stale(book, t).is_none());
    let kept: Vec<PathBuf> = current
        .iter()
        .flat_map(|t| tcpclose::book::scenario_files(t))
        .map(|(path, _)| path)
        .collect();
    let mut files = tcpclose::book::generated_files(&transcripts);
    files.retain(|(path, _)| !kept.contains(path));
    for (path, text) in files {
        let path = book.join(path);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    // The costs plot is drawn again from the data the last bench wrote.
    let data = book.join("bench/results.json");
    if let Ok(json) = std::fs::read_to_string(&data) {
        let report: tcpclose::bench::Report =
            serde_json::from_str(&json).with_context(|| format!("{} is not a bench report", data.display()))?;
        let path = book.join("bench/close-costs.svg");
        std::fs::write(&path, tcpclose::plot::costs_svg(&report))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let example = tcpclose::inspect::demo(&std::env::current_exe()?).context("the inspect example")?;
    let path = book.join(tcpclose::book::INSPECT_EXAMPLE);
    std::fs::write(&path, example).with_context(|| format!("cannot write {}", path.display()))?;
    let stale_ids: Vec<&str> = stale.iter().map(|t| t.id.as_str()).collect();
    if all {
        eprintln!("tcpclose: rewrote every scenario's files under {}", book.display());
    } else {
        eprintln!(
            "tcpclose: rewrote {} of {} scenarios' files under {} (the others still describe this run){}{}",
            stale.len(),
            transcripts.len(),
            book.display(),
            if stale.is_empty() { "" } else { ": " },
            stale_ids.join(", ")
        );
    }
    Ok(RunOutcome::Confirmed)
}
