//! What a scenario did and saw: the calls with their results, the states of
//! both ends, the segments on the wire and the claims checked against them.
//! Rendered as text for people (normalised: no ports, no timestamps,
//! sequence numbers relative) and as JSON for programs.

use std::fmt::{self, Write as _};
use std::io;
use std::net::SocketAddr;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

pub use crate::claim::{
    anchor, check_id, Check, Expected, Named, RunOutcome, SegmentCount, SegmentKind, Verdict, OBSERVED,
};
use crate::observe::{describe, State};
use crate::wire::{Flags, Segment};

/// Who made a call: the side that connected or the side that accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Client,
    Server,
}

impl Role {
    /// The other side of the connection.
    pub fn other(self) -> Role {
        match self {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Role::Client => "client",
            Role::Server => "server",
        })
    }
}

/// What a call returned, as data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum CallResult {
    /// `Ok` with this value, in its Debug form.
    Ok { value: String },
    /// An error: its kind (Debug form), its OS error number if it has one,
    /// and its message.
    Err {
        kind: String,
        errno: Option<i32>,
        message: String,
    },
    /// What the scenario wrote down for a call it made in its own way (a
    /// drop, a loop, a sysctl): shown as it is; empty for nothing to show.
    Shown { text: String },
}

impl CallResult {
    /// The outcome of a call's result.
    pub fn of<T: fmt::Debug>(result: Result<&T, &io::Error>) -> CallResult {
        match result {
            Ok(value) => CallResult::Ok {
                value: format!("{value:?}"),
            },
            Err(e) => CallResult::Err {
                kind: format!("{:?}", e.kind()),
                errno: e.raw_os_error(),
                message: e.to_string(),
            },
        }
    }
}

impl fmt::Display for CallResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallResult::Ok { value } => write!(f, "Ok({value})"),
            CallResult::Err { kind, message, .. } => write!(f, "Err({kind}) \"{message}\""),
            CallResult::Shown { text } => f.write_str(text),
        }
    }
}

/// One line of the story.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Step {
    /// A call and what it returned; `started` when the call was made, if
    /// the scenario recorded it (the step's own time is when it returned).
    Call {
        who: Role,
        call: String,
        result: CallResult,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        started: Option<SystemTime>,
    },
    /// The kernel's state of both ends (`None`: not in the table).
    States {
        client: Option<State>,
        server: Option<State>,
    },
    /// A quantity measured in this run (bytes, seconds, counts) that
    /// varies from run to run.
    Measured { what: String, value: String },
}

/// A run's record without what varies from run to run: see
/// [`Transcript::comparable`].
#[derive(Debug, PartialEq)]
pub struct Comparable {
    pub id: String,
    pub title: String,
    pub steps: Vec<Step>,
    pub checks: Vec<Check>,
    /// The segments as the transcript's rows: `client → server  FIN ACK seq=1 ack=1`.
    pub rows: Vec<String>,
    pub capture: Result<(), String>,
    pub bulk: bool,
    pub error: Option<String>,
}

/// Everything one run of a scenario produced: the run's record, from
/// which the transcript text, the diagram and the book's checks are drawn.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Transcript {
    pub id: String,
    pub title: String,
    pub client: Option<SocketAddr>,
    pub server: Option<SocketAddr>,
    pub steps: Vec<Step>,
    /// For each step, when it was recorded: the clock of the capture's
    /// timestamps, so that a diagram can draw steps and segments in the
    /// order they happened.
    pub step_times: Vec<SystemTime>,
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
    /// The kernel the run came from (`uname -r`).
    pub kernel: String,
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
            step_times: Vec::new(),
            checks: Vec::new(),
            capture: Err("not started".into()),
            segments: Vec::new(),
            bulk: false,
            error: None,
            seconds: 0.0,
            kernel: kernel_release(),
        }
    }

    /// How the run ended: refuted if a claim failed, stopped if it could not
    /// finish, not checked if some claim could not be checked here.
    pub fn outcome(&self) -> RunOutcome {
        RunOutcome::of(&self.checks, self.error.is_some())
    }

    /// True when the run finished and no claim was refuted.
    pub fn confirmed(&self) -> bool {
        self.error.is_none() && self.checks.iter().all(|c| c.verdict != Verdict::Refuted)
    }

    /// The run's record, as the book keeps it: in a bulk transfer only the
    /// segments with SYN, FIN or RST, the only ones its text and diagram show.
    pub fn record(&self) -> Transcript {
        let mut record = self.clone();
        if record.bulk {
            record.segments.retain(|s| s.flags.syn || s.flags.fin || s.flags.rst);
        }
        record
    }

    /// What two runs of the same scenario on the same kernel share: the
    /// record without its times, ports, kernel release and measured values
    /// (the values of measurements, and what a check of a range or a
    /// minimum observed), and its segments as rows with relative numbers.
    pub fn comparable(&self) -> Comparable {
        let steps = self
            .steps
            .iter()
            .map(|step| match step {
                Step::Measured { what, .. } => Step::Measured {
                    what: what.clone(),
                    value: String::new(),
                },
                Step::Call { who, call, result, .. } => Step::Call {
                    who: *who,
                    call: call.clone(),
                    result: result.clone(),
                    started: None,
                },
                states => states.clone(),
            })
            .collect();
        let mut checks = self.checks.clone();
        for check in checks.iter_mut().filter(|c| c.measured()) {
            check.observed.clear();
            check.value = None;
        }
        let rows = self
            .packet_rows()
            .into_iter()
            .map(|r| format!("{} → {}  {}", r.src, r.dst, r.text))
            .collect();
        Comparable {
            id: self.id.clone(),
            title: self.title.clone(),
            steps,
            checks,
            rows,
            capture: self.capture.clone(),
            bulk: self.bulk,
            error: self.error.clone(),
        }
    }

    /// The check with this id.
    pub fn check(&self, id: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
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
    /// sent again, varies from run to run. A run of identical segments
    /// (retransmissions, probes) is one row, with its `repeats`: how many
    /// there are depends on timers.
    pub fn packet_rows(&self) -> Vec<PacketRow> {
        // Each direction of each connection counts from its own first
        // sequence number.
        let mut isn: Vec<((SocketAddr, SocketAddr), u32)> = Vec::new();
        let mut first_seq = |from: SocketAddr, to: SocketAddr, seq: u32| -> u32 {
            match isn.iter().find(|(d, _)| *d == (from, to)) {
                Some((_, s)) => *s,
                None => {
                    isn.push(((from, to), seq));
                    seq
                }
            }
        };
        // A SYN on the addresses of an earlier connection starts a new one
        // on the same 4-tuple: from then on a segment's numbers may belong
        // to either, and are left out.
        let mut reused: Vec<(SocketAddr, SocketAddr)> = Vec::new();
        let mut rows: Vec<PacketRow> = Vec::new();
        for (index, s) in self.segments.iter().enumerate() {
            let pair = (s.src.min(s.dst), s.src.max(s.dst));
            // (A SYN sent again before any answer opens nothing new.)
            let opened = |e: &Segment| e.flags.syn && !e.flags.ack;
            let earlier = |e: &Segment| (e.src.min(e.dst), e.src.max(e.dst)) == pair && !opened(e);
            if opened(s) && self.segments[..index].iter().any(earlier) && !reused.contains(&pair) {
                reused.push(pair);
            }
            if self.bulk && !(s.flags.syn || s.flags.fin || s.flags.rst) {
                first_seq(s.src, s.dst, s.seq);
                continue;
            }
            let seq = s.seq.wrapping_sub(first_seq(s.src, s.dst, s.seq));
            if self.bulk {
                // Only which of SYN, FIN and RST each side sent, each once:
                // under load a FIN may be sent again, or ride on data or not
                // (so PSH, which marks data, is left out).
                let kind = Flags { psh: false, ..s.flags };
                let (src, dst) = (self.role_of(s.src), self.role_of(s.dst));
                let same_kind = |r: &PacketRow| {
                    let f = &self.segments[r.index].flags;
                    r.src == src && (f.syn, f.fin, f.rst) == (s.flags.syn, s.flags.fin, s.flags.rst)
                };
                if !rows.iter().any(same_kind) {
                    rows.push(PacketRow {
                        index,
                        src,
                        dst,
                        text: kind.to_string(),
                        repeats: Vec::new(),
                    });
                }
                continue;
            }
            let mut text = format!("{:<11}", s.flags.to_string());
            if !s.flags.syn && !self.bulk && !reused.contains(&pair) {
                write!(text, " seq={seq}").unwrap();
                if s.flags.ack {
                    let ack = s.ack.wrapping_sub(first_seq(s.dst, s.src, s.ack.wrapping_sub(1)));
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
                repeats: Vec::new(),
            };
            // The same segment again: between the same two addresses (two
            // other endpoints share a name, not a lifeline).
            let same_ends = |last: &PacketRow| {
                let first = &self.segments[last.index];
                (first.src, first.dst) == (s.src, s.dst)
            };
            match rows.last_mut() {
                Some(last) if same_ends(last) && last.text == row.text => last.repeats.push(index),
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
            if !row.repeats.is_empty() {
                lines.push(REPEATED.to_string());
            }
        }
        lines
    }

    /// The calls and states, a line each: `client  drop(stream)`,
    /// `        states: client FIN_WAIT_2, server CLOSE_WAIT`.
    pub fn step_lines(&self) -> Vec<String> {
        self.steps
            .iter()
            .map(|step| match step {
                Step::Call {
                    who,
                    call,
                    result: CallResult::Shown { text },
                    ..
                } if text.is_empty() => format!("{who}  {call}"),
                Step::Call { who, call, result, .. } => format!("{who}  {call:<34} -> {result}"),
                Step::Measured { what, value } => format!("        measured: {what}: {value}"),
                Step::States { client, server } => {
                    format!(
                        "        states: client {}, server {}",
                        describe(*client),
                        describe(*server)
                    )
                }
            })
            .collect()
    }

    /// What the packet lines are, or why there are none.
    pub fn packets_heading(&self) -> String {
        match &self.capture {
            Ok(()) if self.bulk => {
                "SYN, FIN and RST, in the order each side first sent them (data, bare ACKs and PSH left out)".into()
            }
            Ok(()) => "packets (sequence numbers relative)".into(),
            Err(why) => format!("packets: not captured ({why})"),
        }
    }

    /// The transcript as text, normalised so that two runs on the same
    /// kernel print the same thing.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        writeln!(out, "{}: {}", self.id, self.title).unwrap();
        writeln!(out, "{KERNEL}{}", self.kernel).unwrap();
        writeln!(out, "\ncalls and states").unwrap();
        for line in self.step_lines() {
            writeln!(out, "  {line}").unwrap();
        }
        writeln!(out, "\n{}", self.packets_heading()).unwrap();
        if self.capture.is_ok() {
            for line in self.packet_lines() {
                writeln!(out, "  {line}").unwrap();
            }
        }
        writeln!(out, "\nclaims").unwrap();
        for check in &self.checks {
            let mark = match check.verdict {
                Verdict::Confirmed => "confirmed  ",
                Verdict::Refuted => "REFUTED    ",
                Verdict::NotChecked => "not checked",
            };
            writeln!(out, "  {mark}  {}", check.statement()).unwrap();
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
    /// The indexes in `Transcript::segments` of the same segment sent
    /// again, right after it.
    pub repeats: Vec<usize>,
}

/// Marks a run of identical segments (retransmissions, probes).
const REPEATED: &str = "  (the same segment again, one or more times)";

/// The line that names the kernel a transcript came from.
const KERNEL: &str = "on Linux ";

/// This machine's kernel release, as `uname -r` prints it.
pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease").map_or_else(|_| "?".into(), |s| s.trim().to_string())
}

/// A call's result as the transcript prints it: `Ok(0)`, or
/// `Err(BrokenPipe) "Broken pipe (os error 32)"`.
pub fn outcome<T: fmt::Debug>(result: Result<&T, &io::Error>) -> String {
    CallResult::of(result).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(flags: (bool, bool, bool), len: u32, window: u16) -> Segment {
        let (syn, fin, rst) = flags;
        Segment {
            time: std::time::SystemTime::now(),
            src: "127.0.0.1:1".parse().unwrap(),
            dst: "127.0.0.1:2".parse().unwrap(),
            flags: Flags {
                syn,
                ack: true,
                fin,
                rst,
                psh: false,
            },
            seq: 0,
            ack: 0,
            len,
            window,
            packet: Vec::new(),
        }
    }

    /// A SYN on the 4-tuple of a connection that got further than its own
    /// SYN opens a new one: its numbers, and those after it on that
    /// 4-tuple, are left out. A SYN sent again before any answer is not one.
    #[test]
    fn numbers_are_left_out_once_a_four_tuple_is_used_again() {
        let (client, server): (SocketAddr, SocketAddr) =
            ("127.0.0.1:1".parse().unwrap(), "127.0.0.1:2".parse().unwrap());
        let at = |src, dst, syn, ack, seq| Segment {
            src,
            dst,
            seq,
            ack: 0,
            flags: Flags {
                syn,
                ack,
                fin: false,
                rst: false,
                psh: false,
            },
            ..segment((false, false, false), 0, 512)
        };
        let mut t = Transcript::empty("t", "numbers");
        t.client = Some(client);
        t.server = Some(server);
        t.segments = vec![
            at(client, server, true, false, 100),
            at(client, server, true, false, 100),
            at(server, client, true, true, 500),
            at(client, server, false, true, 101),
        ];
        let numbered = |t: &Transcript| t.packet_rows().iter().filter(|r| r.text.contains("seq=")).count();
        assert_eq!(numbered(&t), 1, "{:?}", t.packet_lines());
        t.segments.push(at(client, server, true, false, 9000));
        t.segments.push(at(client, server, false, true, 9001));
        assert_eq!(numbered(&t), 1, "{:?}", t.packet_lines());
    }

    /// Each kind of segment matches exactly the segments it names.
    #[test]
    fn segment_kinds_match_what_they_name() {
        let bare = segment((false, false, false), 0, 512);
        let syn = segment((true, false, false), 0, 512);
        let fin = segment((false, true, false), 0, 512);
        let rst = segment((false, false, true), 0, 0);
        let data = segment((false, false, false), 10, 512);
        let closed = segment((false, false, false), 0, 0);
        let kinds = |s: &Segment| {
            [
                SegmentKind::Syn,
                SegmentKind::Fin,
                SegmentKind::Rst,
                SegmentKind::Data,
                SegmentKind::DataOf(10),
                SegmentKind::ZeroWindow,
                SegmentKind::Bare,
                SegmentKind::Any,
            ]
            .map(|k| k.matches(s))
        };
        assert_eq!(kinds(&bare), [false, false, false, false, false, false, true, true]);
        assert_eq!(kinds(&syn), [true, false, false, false, false, false, false, true]);
        assert_eq!(kinds(&fin), [false, true, false, false, false, false, false, true]);
        assert_eq!(kinds(&rst), [false, false, true, false, false, false, false, true]);
        assert_eq!(kinds(&data), [false, false, false, true, true, false, false, true]);
        assert_eq!(kinds(&closed), [false, false, false, false, false, true, true, true]);
    }

    /// Two runs compare equal when only what a measurement observed
    /// differs: a range, a minimum, a count of segments with a minimum;
    /// any other observation counts.
    #[test]
    fn only_measured_observations_are_left_out_of_the_comparison() {
        let fins = |at_least| Expected::Segments {
            counts: vec![SegmentCount {
                at_least,
                ..SegmentCount::exactly(Role::Client, SegmentKind::Fin, 1)
            }],
        };
        let range = Expected::Range {
            low: 1.0,
            high: 2.0,
            unit: "s".into(),
        };
        let at_least = Expected::AtLeast {
            low: 1.0,
            unit: "s".into(),
        };
        let ok = Expected::Ok { value: "7".into() };
        let run = |expected: &Expected, observed: &str| {
            let mut t = Transcript::empty("sample", "a sample");
            t.checks.push(Check {
                id: "sample/claim".into(),
                claim: "claim".into(),
                expected: expected.clone(),
                verdict: Verdict::Confirmed,
                observed: observed.into(),
                value: None,
                packets: false,
            });
            t.comparable()
        };
        let same = |expected: &Expected| run(expected, "one") == run(expected, "two");
        let kinds = [&range, &at_least, &fins(true), &fins(false), &ok];
        assert_eq!(kinds.map(same), [true, true, true, false, false]);
    }

    #[test]
    fn the_same_segment_from_another_endpoint_is_a_row_of_its_own_not_a_repeat() {
        let mut t = Transcript::empty("sample", "a sample");
        t.server = Some("127.0.0.1:2".parse().unwrap());
        // A SYN from 127.0.0.1:1 to the server, sent again, then one from :3.
        let first = segment((true, false, false), 0, 512);
        let mut other = first.clone();
        other.src = "127.0.0.1:3".parse().unwrap();
        t.segments = vec![first.clone(), first, other];
        let rows: Vec<(usize, Vec<usize>)> = t.packet_rows().into_iter().map(|r| (r.index, r.repeats)).collect();
        assert_eq!(rows, [(0, vec![1]), (2, vec![])]);
    }
}
