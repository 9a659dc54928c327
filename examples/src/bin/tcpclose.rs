//! tcpclose: run the book's TCP close scenarios on this kernel.
//!
//!     cargo run                          every scenario: is each claim confirmed here?
//!     cargo run -- list                  the scenario ids
//!     cargo run -- run broken-pipe       one scenario's transcript
//!     sudo target/debug/tcpclose run eof-close-wait --pcap eof.pcap --hold 30

use std::path::PathBuf;
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use tcpclose::cli;
use tcpclose::scenario::{self, Options, Scenario};
use tcpclose::transcript::{Transcript, Verdict};
use tcpclose::wire::{self, Capture};

/// Runs the TCP close scenarios of the book on this machine's kernel, over
/// loopback, and reports whether each claim holds here.
///
/// With no command, runs every scenario and prints each claim with its
/// verdict; exits 0 when all are confirmed, 1 otherwise.
#[derive(Parser)]
#[command(name = "tcpclose", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
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
}

fn main() -> ExitCode {
    let cli: Cli = cli::parse();
    match run(cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("tcpclose: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<bool> {
    match cli.command {
        None => Ok(catalogue()),
        Some(Command::List) => {
            for s in scenario::ALL {
                println!("{:<18} {}", s.id, s.title);
            }
            Ok(true)
        }
        Some(Command::Run {
            ids,
            pcap,
            svg,
            json,
            hold,
        }) => run_some(&ids, pcap, svg, json, hold),
    }
}

/// Says in one line when packets cannot be captured; the scenarios then
/// mark their packet claims as not checked and check everything else.
fn capture_notice() {
    if let Err(e) = Capture::start(0) {
        eprintln!("tcpclose: packets are not captured ({e}); calls and states are still checked");
    }
}

/// Runs scenarios side by side, one thread each; transcripts in the given order.
fn run_all(scenarios: &[&'static Scenario], options: &Options) -> Vec<Transcript> {
    thread::scope(|scope| {
        let handles: Vec<_> = scenarios.iter().map(|s| scope.spawn(move || s.run(options))).collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a scenario thread panicked"))
            .collect()
    })
}

fn catalogue() -> bool {
    capture_notice();
    let options = Options {
        hold: None,
        capture: true,
    };
    let scenarios: Vec<_> = scenario::ALL.iter().collect();
    let transcripts = run_all(&scenarios, &options);
    let (mut confirmed, mut refuted, mut unchecked) = (0, 0, 0);
    for t in &transcripts {
        println!("{}  {}", t.id, t.title);
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
            println!("  {mark}  {}", c.claim);
            if c.verdict == Verdict::Refuted {
                println!("               observed: {}", c.observed);
            }
        }
        if let Some(e) = &t.error {
            refuted += 1;
            println!("  STOPPED      {e}");
        }
    }
    println!(
        "\n{} scenarios on Linux {}: {confirmed} claims confirmed, {refuted} refuted, {unchecked} not checked",
        transcripts.len(),
        kernel_release()
    );
    transcripts.iter().all(Transcript::confirmed)
}

fn run_some(
    ids: &[String],
    pcap: Option<PathBuf>,
    svg: Option<PathBuf>,
    json: bool,
    hold: Option<Duration>,
) -> anyhow::Result<bool> {
    if svg.is_some() && ids.len() != 1 {
        bail!("--svg draws one scenario: give one ID");
    }
    let scenarios = ids
        .iter()
        .map(|id| scenario::find(id).with_context(|| format!("no scenario {id:?}; `tcpclose list` prints the ids")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    match (&pcap, Capture::start(0)) {
        (Some(_), Err(e)) => bail!("cannot write --pcap: {e}"),
        (None, Err(_)) => capture_notice(),
        (_, Ok(_)) => {}
    }
    let transcripts = run_all(&scenarios, &Options { hold, capture: true });
    if json {
        println!("{}", serde_json::to_string_pretty(&transcripts)?);
    } else {
        for t in &transcripts {
            println!("{}", t.to_text());
        }
    }
    if let Some(path) = svg {
        let drawing = tcpclose::diagram::sequence_svg(&transcripts[0]);
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
    Ok(transcripts.iter().all(Transcript::confirmed))
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease").map_or_else(|_| "?".into(), |s| s.trim().to_string())
}
