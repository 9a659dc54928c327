//! What a scenario did and saw: the calls with their results, the states of
//! both ends, the segments on the wire and the claims checked against them.
//! Rendered as text for people (normalised: no ports, no timestamps,
//! sequence numbers relative) and as JSON for programs.

use std::fmt::{self, Write as _};
use std::io;
use std::net::SocketAddr;

use serde::Serialize;

use crate::observe::{describe, State};
use crate::wire::{Flags, Segment};

/// Who made a call: the side that connected or the side that accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Client,
    Server,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Role::Client => "client",
            Role::Server => "server",
        })
    }
}

/// One line of the story.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Step {
    /// A call and what it returned.
    Call { who: Role, call: String, result: String },
    /// The kernel's state of both ends (`None`: not in the table).
    States {
        client: Option<State>,
        server: Option<State>,
    },
    /// A quantity measured in this run (bytes, seconds, counts) that
    /// varies from run to run.
    Measured { what: String, value: String },
}

/// Whether this kernel confirmed a claim.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Confirmed,
    Refuted,
    /// The claim is about packets and nothing could be captured.
    NotChecked,
}

/// How one run of a scenario ended, worst first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// A claim does not hold on this kernel.
    Refuted,
    /// The scenario could not finish (an event never came, a call failed).
    Stopped,
    /// Some claims could not be checked here (no capture, no namespace).
    NotChecked,
    /// Every claim was checked and holds.
    Confirmed,
}

/// A sentence the book says, and what this run observed.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub claim: String,
    pub verdict: Verdict,
    pub observed: String,
    /// Whether the claim is about the packets on the wire.
    pub packets: bool,
}

/// Everything one run of a scenario produced.
#[derive(Clone, Debug, Serialize)]
pub struct Transcript {
    pub id: String,
    pub title: String,
    pub client: Option<SocketAddr>,
    pub server: Option<SocketAddr>,
    pub steps: Vec<Step>,
    /// For each step, how many segments had been captured when it was
    /// recorded: where it falls among the packets.
    #[serde(skip)]
    pub step_positions: Vec<usize>,
    pub checks: Vec<Check>,
    /// `Err` holds why nothing was captured.
    pub capture: Result<(), String>,
    pub segments: Vec<Segment>,
    /// Bulk transfers: print only the segments with SYN, FIN or RST, since
    /// the number of data segments varies from run to run.
    pub bulk: bool,
    /// Set when the scenario stopped early.
    pub error: Option<String>,
    /// How long the run took, in seconds (not shown in the text).
    pub seconds: f64,
}

impl Transcript {
    /// The transcript of a scenario that has not done anything yet.
    pub fn empty(id: &str, title: &str) -> Transcript {
        Transcript {
            id: id.into(),
            title: title.into(),
            client: None,
            server: None,
            steps: Vec::new(),
            step_positions: Vec::new(),
            checks: Vec::new(),
            capture: Err("not started".into()),
            segments: Vec::new(),
            bulk: false,
            error: None,
            seconds: 0.0,
        }
    }

    /// How the run ended: refuted if a claim failed, stopped if it could not
    /// finish, not checked if some claim could not be checked here.
    pub fn outcome(&self) -> RunOutcome {
        if self.checks.iter().any(|c| c.verdict == Verdict::Refuted) {
            RunOutcome::Refuted
        } else if self.error.is_some() {
            RunOutcome::Stopped
        } else if self.checks.iter().any(|c| c.verdict == Verdict::NotChecked) {
            RunOutcome::NotChecked
        } else {
            RunOutcome::Confirmed
        }
    }

    /// True when the run finished and no claim was refuted.
    pub fn confirmed(&self) -> bool {
        self.error.is_none() && self.checks.iter().all(|c| c.verdict != Verdict::Refuted)
    }

    /// The check whose claim starts with `prefix`.
    pub fn check(&self, prefix: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.claim.starts_with(prefix))
    }

    fn role_of(&self, addr: SocketAddr) -> &'static str {
        if Some(addr) == self.server {
            "server"
        } else if Some(addr) == self.client {
            "client"
        } else {
            "other"
        }
    }

    /// The segments as rows a reader can follow, with sequence numbers
    /// relative to each side's first, as Wireshark shows them. In a bulk
    /// transcript, only which of SYN, FIN and RST each side sent, in order,
    /// each once: how the data was cut into segments, and whether a FIN was
    /// sent again, varies from run to run. A run of
    /// identical segments (retransmissions, probes) is one row, marked
    /// `repeated`: how many there are depends on timers.
    pub fn packet_rows(&self) -> Vec<PacketRow> {
        let mut isn: Vec<(SocketAddr, u32)> = Vec::new();
        let mut first_seq = |addr: SocketAddr, seq: u32| -> u32 {
            match isn.iter().find(|(a, _)| *a == addr) {
                Some((_, s)) => *s,
                None => {
                    isn.push((addr, seq));
                    seq
                }
            }
        };
        let mut rows: Vec<PacketRow> = Vec::new();
        for (index, s) in self.segments.iter().enumerate() {
            if self.bulk && !(s.flags.syn || s.flags.fin || s.flags.rst) {
                first_seq(s.src, s.seq);
                continue;
            }
            let seq = s.seq.wrapping_sub(first_seq(s.src, s.seq));
            if self.bulk {
                // Only which of SYN, FIN and RST each side sent, each once:
                // under load a FIN may be sent again, or ride on data or not.
                let kind = Flags {
                    syn: s.flags.syn,
                    fin: s.flags.fin,
                    rst: s.flags.rst,
                    ..Flags::default()
                };
                let (src, dst) = (self.role_of(s.src), self.role_of(s.dst));
                if !rows.iter().any(|r| r.src == src && r.text == kind.to_string()) {
                    rows.push(PacketRow {
                        index,
                        src,
                        dst,
                        text: kind.to_string(),
                        repeated: false,
                    });
                }
                continue;
            }
            let mut text = format!("{:<11}", s.flags.to_string());
            if !s.flags.syn && !self.bulk {
                write!(text, " seq={seq}").unwrap();
                if s.flags.ack {
                    let ack = s.ack.wrapping_sub(first_seq(s.dst, s.ack.wrapping_sub(1)));
                    write!(text, " ack={ack}").unwrap();
                }
            }
            if s.len > 0 && !self.bulk {
                write!(text, " len={}", s.len).unwrap();
            }
            let row = PacketRow {
                index,
                src: self.role_of(s.src),
                dst: self.role_of(s.dst),
                text: text.trim_end().to_string(),
                repeated: false,
            };
            match rows.last_mut() {
                Some(last) if last.src == row.src && last.text == row.text => last.repeated = true,
                _ => rows.push(row),
            }
        }
        rows
    }

    /// The segments as lines `client → server  FIN ACK     seq=1 ack=1`.
    pub fn packet_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for row in self.packet_rows() {
            lines.push(format!("{} → {}  {}", row.src, row.dst, row.text));
            if row.repeated {
                lines.push(REPEATED.to_string());
            }
        }
        lines
    }

    /// The transcript as text, normalised so that two runs on the same
    /// kernel print the same thing.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        writeln!(out, "{}: {}", self.id, self.title).unwrap();
        writeln!(out, "\ncalls and states").unwrap();
        for step in &self.steps {
            match step {
                Step::Call { who, call, result } if result.is_empty() => writeln!(out, "  {who}  {call}").unwrap(),
                Step::Call { who, call, result } => writeln!(out, "  {who}  {call:<34} -> {result}").unwrap(),
                Step::Measured { what, value } => writeln!(out, "          measured: {what}: {value}").unwrap(),
                Step::States { client, server } => writeln!(
                    out,
                    "          states: client {}, server {}",
                    describe(*client),
                    describe(*server)
                )
                .unwrap(),
            }
        }
        match &self.capture {
            Ok(()) => {
                if self.bulk {
                    writeln!(
                        out,
                        "\nSYN, FIN and RST, in the order each side first sent them (data and ACKs left out)"
                    )
                    .unwrap();
                } else {
                    writeln!(out, "\npackets (sequence numbers relative)").unwrap();
                }
                for line in self.packet_lines() {
                    writeln!(out, "  {line}").unwrap();
                }
            }
            Err(why) => writeln!(out, "\npackets: not captured ({why})").unwrap(),
        }
        writeln!(out, "\nclaims").unwrap();
        for check in &self.checks {
            let mark = match check.verdict {
                Verdict::Confirmed => "confirmed  ",
                Verdict::Refuted => "REFUTED    ",
                Verdict::NotChecked => "not checked",
            };
            writeln!(out, "  {mark}  {}", check.claim).unwrap();
            if check.verdict != Verdict::Confirmed {
                writeln!(out, "               observed: {}", check.observed).unwrap();
            }
        }
        if let Some(error) = &self.error {
            writeln!(out, "\nstopped early: {error}").unwrap();
        }
        out
    }
}

/// One row of the packet list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketRow {
    /// The index in `Transcript::segments` of the (first) segment.
    pub index: usize,
    pub src: &'static str,
    pub dst: &'static str,
    /// Flags and numbers: `FIN ACK     seq=1 ack=1`.
    pub text: String,
    /// The same segment followed, one or more times.
    pub repeated: bool,
}

/// Marks a run of identical segments (retransmissions, probes).
const REPEATED: &str = "  (the same segment again, one or more times)";

/// Replaces measured values by `…`, so that two transcripts of the same
/// kernel compare equal although their measurements differ.
pub fn mask_measurements(text: &str) -> String {
    text.lines()
        .map(|line| match line.split_once("measured: ") {
            Some((head, rest)) => {
                let what = rest.rsplit_once(": ").map_or(rest, |(what, _)| what);
                format!("{head}measured: {what}: …")
            }
            None => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// A call's result as the transcript prints it: `Ok(0)`, or
/// `Err(BrokenPipe) "Broken pipe (os error 32)"`.
pub fn outcome<T: fmt::Debug>(result: Result<&T, &io::Error>) -> String {
    match result {
        Ok(value) => format!("Ok({value:?})"),
        Err(e) => format!("Err({:?}) \"{e}\"", e.kind()),
    }
}
