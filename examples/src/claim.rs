//! Claims and how they are judged: a check (a sentence of the book, what
//! it expects, what a run observed, the verdict), the expectations a check
//! can have, the segment counts they are made of, and how a run's checks
//! make its outcome. The engine that makes checks during a run is
//! `scenario/check.rs`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::observe::{describe, State};
use crate::transcript::Role;
use crate::wire::Segment;

/// Whether this kernel confirmed a claim.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

impl RunOutcome {
    /// How a run ended, from its checks and whether it `stopped` before
    /// its end: refuted if a claim failed, stopped if it could not finish,
    /// not checked if some claim could not be checked here.
    pub fn of(checks: &[Check], stopped: bool) -> RunOutcome {
        if checks.iter().any(|c| c.verdict == Verdict::Refuted) {
            RunOutcome::Refuted
        } else if stopped {
            RunOutcome::Stopped
        } else if checks.iter().any(|c| c.verdict == Verdict::NotChecked) {
            RunOutcome::NotChecked
        } else {
            RunOutcome::Confirmed
        }
    }
}

/// A sentence the book says, what it expects (typed, and rendered after
/// the sentence, so that the two cannot disagree) and what this run
/// observed, in the same terms.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// `scenario-id/words-of-the-claim`: what the book's prose points at.
    pub id: String,
    pub claim: String,
    pub expected: Expected,
    pub verdict: Verdict,
    pub observed: String,
    /// The number observed, in the expectation's unit, for a range or a
    /// minimum: what `observed` shows, as data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Whether the claim is about the packets on the wire.
    pub packets: bool,
}

impl Check {
    /// What the check observed, as the book shows it (`"7200"` is 7200).
    pub fn shown_value(&self) -> String {
        self.observed.trim_matches('"').to_string()
    }

    /// Whether what the check observes varies from run to run: a range, a
    /// minimum, or a count of segments with a minimum (a FIN sent again).
    pub fn measured(&self) -> bool {
        match &self.expected {
            Expected::Range { .. } | Expected::AtLeast { .. } => true,
            Expected::Segments { counts } => counts.iter().any(|c| c.at_least),
            _ => false,
        }
    }

    /// The claim as the transcript prints it: the sentence, then what it
    /// expects.
    /// A measured value (a range or a minimum) also shows what this run
    /// observed; the book's tests check the shown value against the shown
    /// bounds.
    pub fn statement(&self) -> String {
        match &self.expected {
            Expected::Nothing => self.claim.clone(),
            expected @ (Expected::Range { .. } | Expected::AtLeast { .. }) => {
                format!("{} → {expected}, {OBSERVED}{}", self.claim, self.observed)
            }
            expected => format!("{} → {expected}", self.claim),
        }
    }
}

/// What a check expects to observe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Expected {
    /// A call returns `Ok` with this value (its Debug form).
    Ok { value: String },
    /// A call fails with this kind and OS error.
    Err { kind: String, errno: i32 },
    /// A call fails with this kind and exactly this message: an error
    /// with no OS error number (rustls', hyper's).
    ErrText { kind: String, message: String },
    /// Both ends in these states (`None`: gone from the table).
    States {
        client: Option<State>,
        server: Option<State>,
    },
    /// A measured quantity within these bounds (inclusive), in the same unit.
    Range { low: f64, high: f64, unit: String },
    /// A measured quantity of at least this much.
    AtLeast { low: f64, unit: String },
    /// A value equal to this one (its Debug form).
    Equal { value: String },
    /// A count of segments of each kind, per side.
    Segments { counts: Vec<SegmentCount> },
    /// Nothing could be expected: the scenario could not run here.
    Nothing,
}

impl Expected {
    /// Whether a measured number satisfies a range or a minimum (never
    /// another kind of expectation).
    pub fn admits(&self, value: f64) -> bool {
        match self {
            Expected::Range { low, high, .. } => (*low..=*high).contains(&value),
            Expected::AtLeast { low, .. } => value >= *low,
            _ => false,
        }
    }
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expected::Ok { value } => write!(f, "Ok({value})"),
            Expected::Err { kind, errno } => write!(f, "Err({kind}), os error {errno}"),
            Expected::ErrText { kind, message } => write!(f, "Err({kind}) \"{message}\""),
            Expected::States { client, server } => {
                write!(f, "client {}, server {}", describe(*client), describe(*server))
            }
            Expected::Range { low, high, unit } => write!(f, "{low} {unit} to {high} {unit}"),
            Expected::AtLeast { low, unit } => write!(f, "at least {low} {unit}"),
            Expected::Equal { value } => f.write_str(value),
            Expected::Segments { counts } => {
                let counts: Vec<String> = counts.iter().map(ToString::to_string).collect();
                f.write_str(&counts.join(", "))
            }
            Expected::Nothing => f.write_str("nothing"),
        }
    }
}

/// Several values compared at once, each with its name: shown
/// `probes 2, RSTs 1`, where a tuple would show `(2, 1)`. Made by
/// [`named!`](crate::named).
#[derive(Clone, PartialEq, Eq)]
pub struct Named(pub Vec<(&'static str, String)>);

impl fmt::Debug for Named {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: Vec<String> = self.0.iter().map(|(name, value)| format!("{name} {value}")).collect();
        f.write_str(&shown.join(", "))
    }
}

/// Values with their names, for a check that compares several at once:
/// `named!("probes": probes, "RSTs": rsts)`, each value in its Debug form.
#[macro_export]
macro_rules! named {
    ($($name:literal: $value:expr),+ $(,)?) => {
        $crate::claim::Named(vec![$(($name, format!("{:?}", $value))),+])
    };
}

/// A kind of segment, for counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SegmentKind {
    Syn,
    Fin,
    Rst,
    /// A segment that carries data.
    Data,
    /// A segment that carries exactly this many bytes.
    DataOf(u32),
    /// A segment that advertises a closed (zero) window.
    ZeroWindow,
    /// A segment with no data and no SYN, FIN or RST: an ACK alone, or a
    /// window probe.
    Bare,
    /// Any segment at all.
    Any,
}

impl SegmentKind {
    pub fn matches(self, s: &Segment) -> bool {
        match self {
            SegmentKind::Syn => s.flags.syn,
            SegmentKind::Fin => s.flags.fin,
            SegmentKind::Rst => s.flags.rst,
            SegmentKind::Data => s.len > 0,
            SegmentKind::DataOf(len) => s.len == len,
            SegmentKind::ZeroWindow => s.window == 0 && !s.flags.rst,
            SegmentKind::Bare => s.len == 0 && !(s.flags.syn || s.flags.fin || s.flags.rst),
            SegmentKind::Any => true,
        }
    }
}

impl fmt::Display for SegmentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SegmentKind::Syn => f.write_str("SYN"),
            SegmentKind::Fin => f.write_str("FIN"),
            SegmentKind::Rst => f.write_str("RST"),
            SegmentKind::Data => f.write_str("data segments"),
            SegmentKind::DataOf(len) => write!(f, "segments of {len} bytes"),
            SegmentKind::ZeroWindow => f.write_str("zero-window segments"),
            SegmentKind::Bare => f.write_str("bare ACKs"),
            SegmentKind::Any => f.write_str("segments"),
        }
    }
}

/// How many segments of a kind one side sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentCount {
    pub from: Role,
    pub kind: SegmentKind,
    pub count: usize,
    /// `count` is a minimum, not an exact number.
    pub at_least: bool,
}

impl SegmentCount {
    /// Exactly `count` segments of `kind` from `from`.
    pub fn exactly(from: Role, kind: SegmentKind, count: usize) -> SegmentCount {
        SegmentCount {
            from,
            kind,
            count,
            at_least: false,
        }
    }

    /// At least `count` segments of `kind` from `from`.
    pub fn at_least(from: Role, kind: SegmentKind, count: usize) -> SegmentCount {
        SegmentCount {
            at_least: true,
            ..SegmentCount::exactly(from, kind, count)
        }
    }

    /// Whether `observed` segments satisfy this count.
    pub fn holds(&self, observed: usize) -> bool {
        if self.at_least {
            observed >= self.count
        } else {
            observed == self.count
        }
    }
}

impl Role {
    /// Exactly `count` segments of `kind` from this side:
    /// `Client.sent(Fin, 1)`.
    pub fn sent(self, kind: SegmentKind, count: usize) -> SegmentCount {
        SegmentCount::exactly(self, kind, count)
    }

    /// At least `count` segments of `kind` from this side.
    pub fn sent_at_least(self, kind: SegmentKind, count: usize) -> SegmentCount {
        SegmentCount::at_least(self, kind, count)
    }
}

impl fmt::Display for SegmentCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let least = if self.at_least { "at least " } else { "" };
        write!(f, "{} {}: {least}{}", self.from, self.kind, self.count)
    }
}

/// What precedes a measured value on a claim's line.
pub const OBSERVED: &str = "observed ";

/// The id of the element that shows claim `id` in its scenario's
/// transcript in the book: `claim-half-close--the-server-reads`.
pub fn anchor(id: &str) -> String {
    format!("claim-{}", id.replacen('/', "--", 1))
}

/// The id of a claim of scenario `scenario`: its first words, in kebab case.
pub fn check_id(scenario: &str, claim: &str) -> String {
    let words: Vec<String> = claim
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(9)
        .map(str::to_ascii_lowercase)
        .collect();
    format!("{scenario}/{}", words.join("-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_values_show_their_names_not_a_tuple() {
        let shown = format!("{:?}", crate::named!("probes": 2, "state": Some(State::TimeWait)));
        assert_eq!(shown, "probes 2, state Some(TimeWait)");
        assert_ne!(crate::named!("a": 1, "b": 2), crate::named!("a": 1, "b": 3));
    }

    #[test]
    fn segment_counts_hold_only_for_their_number() {
        let exactly = SegmentCount::exactly(Role::Client, SegmentKind::Fin, 1);
        assert!(exactly.holds(1));
        assert!(!exactly.holds(0) && !exactly.holds(2));
        let at_least = SegmentCount::at_least(Role::Server, SegmentKind::Data, 2);
        assert!(at_least.holds(2) && at_least.holds(3));
        assert!(!at_least.holds(1));
    }
}
