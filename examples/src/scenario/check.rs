//! The check engine: each check compares what a run observed with what its
//! claim expects, and records the claim with its verdict.

use std::io;
use std::path::Path;
use std::time::Duration;

use super::{Packets, Run};
use crate::claim::{check_id, Check, Expected, SegmentCount, Verdict};
use crate::observe::{describe, State};
use crate::transcript::{outcome, Role, Step};
use crate::wait;
use crate::wire::Segment;

/// How long a packet check waits for the segments it expects before it
/// judges what it has: far above loopback's delivery time, so that a
/// loaded machine does not refute a claim the kernel keeps a moment late.
pub const TRAILING_SEGMENT_DEADLINE: Duration = Duration::from_secs(3);

impl Run {
    /// Records a check: the claim, what it expects, what was observed.
    pub(super) fn push_check(
        &mut self,
        claim: &str,
        expected: Expected,
        verdict: Verdict,
        observed: String,
        packets: bool,
    ) {
        self.transcript.checks.push(Check {
            id: check_id(&self.transcript.id, claim),
            claim: claim.into(),
            expected,
            verdict,
            observed,
            value: None,
            packets,
        });
    }

    /// Judges a measured number against a range or a minimum, and keeps it.
    fn judge_measured(&mut self, claim: &str, expected: Expected, value: f64, shown: String) {
        let holds = expected.admits(value);
        self.judge(claim, expected, holds, shown);
        if let Some(check) = self.transcript.checks.last_mut() {
            check.value = Some(value);
        }
    }

    fn judge(&mut self, claim: &str, expected: Expected, holds: bool, observed: String) {
        let verdict = if holds { Verdict::Confirmed } else { Verdict::Refuted };
        self.push_check(claim, expected, verdict, observed, false);
    }

    /// Checks that `observed` equals `expected`.
    pub fn check_eq<T: std::fmt::Debug + PartialEq>(&mut self, claim: &str, observed: T, expected: T) {
        let holds = observed == expected;
        self.judge(
            claim,
            Expected::Equal {
                value: format!("{expected:?}"),
            },
            holds,
            format!("{observed:?}"),
        );
    }

    /// Checks that a duration lies between `low` and `high` (inclusive),
    /// in seconds.
    pub fn check_seconds(&mut self, claim: &str, observed: Duration, low: f64, high: f64) {
        // The number kept is the one shown, to the millisecond.
        let secs = (observed.as_secs_f64() * 1000.0).round() / 1000.0;
        let unit = "s".to_string();
        self.judge_measured(claim, Expected::Range { low, high, unit }, secs, format!("{secs:.3} s"));
    }

    /// Checks that a duration a timer or deadline of `nominal` ends lies
    /// between 0.9 × `nominal` (the clock's grain) and `slack` × `nominal`
    /// (a loaded machine is late, never early).
    pub fn check_timer(&mut self, claim: &str, observed: Duration, nominal: Duration, slack: u32) {
        self.check_seconds(
            claim,
            observed,
            nominal.mul_f64(0.9).as_secs_f64(),
            (nominal * slack).as_secs_f64(),
        );
    }

    /// Checks that a count lies between `low` and `high` (inclusive).
    pub fn check_count(&mut self, claim: &str, observed: u64, low: u64, high: u64, unit: &str) {
        self.judge_measured(
            claim,
            Expected::Range {
                low: low as f64,
                high: high as f64,
                unit: unit.into(),
            },
            observed as f64,
            format!("{observed} {unit}"),
        );
    }

    /// Checks a kernel default (a sysctl under net/ipv4) as the scenario's
    /// fresh network namespace has it: the values the book quotes.
    pub fn check_kernel_default(&mut self, name: &str, expected: &str) -> io::Result<()> {
        let claim = format!("the kernel's default net.ipv4.{name}, in a new network namespace");
        self.check_sysctl(&claim, name, expected)
    }

    /// Checks `claim`, that the sysctl net.ipv4.`name` of the scenario's
    /// fresh network namespace reads `expected`; not checked where the
    /// kernel has no such sysctl, or the namespace is the machine's (which
    /// may have been tuned).
    pub fn check_sysctl(&mut self, claim: &str, name: &str, expected: &str) -> io::Result<()> {
        let value = Expected::Equal {
            value: format!("{expected:?}"),
        };
        if self.not_checked_in_a_shared_namespace(claim, value.clone()) {
            return Ok(());
        }
        match std::fs::read_to_string(Path::new("/proc/sys/net/ipv4").join(name)) {
            Ok(found) => self.check_eq(claim, found.trim(), expected),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let why = format!("this kernel has no sysctl net.ipv4.{name}");
                self.push_check(claim, value, Verdict::NotChecked, why, false);
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// Records `claim` as not checked when the scenario shares the machine's
    /// network namespace, where what it reads is not the scenario's alone (a
    /// namespace-wide counter, a sysctl someone may have tuned); returns
    /// whether it did.
    pub fn not_checked_in_a_shared_namespace(&mut self, claim: &str, expected: Expected) -> bool {
        match self.private.clone() {
            Ok(()) => false,
            Err(why) => {
                let why = format!("needs the scenario's own network namespace ({why})");
                self.push_check(claim, expected, Verdict::NotChecked, why, false);
                true
            }
        }
    }

    /// Checks that a count is at least `low`.
    pub fn check_at_least(&mut self, claim: &str, observed: u64, low: u64, unit: &str) {
        self.judge_measured(
            claim,
            Expected::AtLeast {
                low: low as f64,
                unit: unit.into(),
            },
            observed as f64,
            format!("{observed} {unit}"),
        );
    }

    /// Checks that `result` is `Ok(expected)`.
    pub fn check_ok<T: std::fmt::Debug + PartialEq>(&mut self, claim: &str, result: &io::Result<T>, expected: T) {
        let holds = matches!(result, Ok(v) if *v == expected);
        let expected = Expected::Ok {
            value: format!("{expected:?}"),
        };
        self.judge(claim, expected, holds, outcome(result.as_ref()));
    }

    /// Checks that `result` failed with `kind` and OS error `errno`.
    pub fn check_err<T: std::fmt::Debug>(
        &mut self,
        claim: &str,
        result: &io::Result<T>,
        kind: io::ErrorKind,
        errno: i32,
    ) {
        let holds = matches!(result, Err(e) if e.kind() == kind && e.raw_os_error() == Some(errno));
        let expected = Expected::Err {
            kind: format!("{kind:?}"),
            errno,
        };
        self.judge(claim, expected, holds, outcome(result.as_ref()));
    }

    /// Checks that `result` failed with `kind` and exactly `message`, for
    /// errors that carry no OS error number.
    pub fn check_err_text<T: std::fmt::Debug>(
        &mut self,
        claim: &str,
        result: &io::Result<T>,
        kind: io::ErrorKind,
        message: &str,
    ) {
        let holds =
            matches!(result, Err(e) if e.kind() == kind && e.raw_os_error().is_none() && e.to_string() == message);
        let expected = Expected::ErrText {
            kind: format!("{kind:?}"),
            message: message.into(),
        };
        self.judge(claim, expected, holds, outcome(result.as_ref()));
    }

    /// Waits until the client and the server are in the given states
    /// (`None`: gone from the kernel's table), records them, and checks the
    /// claim that they get there.
    pub fn expect_states(&mut self, claim: &str, client: Option<State>, server: Option<State>) -> io::Result<()> {
        let (client_end, server_end) = self.ends()?;
        let mut last = (None, None);
        let reached = wait::until(claim, wait::DEFAULT_DEADLINE, || {
            last = (client_end.state()?, server_end.state()?);
            Ok((last == (client, server)).then_some(()))
        });
        self.push_step(Step::States {
            client: last.0,
            server: last.1,
        });
        self.judge(
            claim,
            Expected::States { client, server },
            reached.is_ok(),
            format!("client {}, server {}", describe(last.0), describe(last.1)),
        );
        Ok(())
    }

    /// Checks how many segments of each kind each side sent so far.
    /// Without a capture the claim is recorded as not checked.
    pub fn check_segments(&mut self, claim: &str, counts: &[SegmentCount]) -> io::Result<()> {
        self.check_segments_since(claim, 0, counts)
    }

    /// The same, counting only the segments captured after the first
    /// `since` (see [`Run::segment_count`]). Waits for the counts to hold,
    /// up to [`TRAILING_SEGMENT_DEADLINE`], before judging (see
    /// [`Run::settled`]).
    pub fn check_segments_since(&mut self, claim: &str, since: usize, counts: &[SegmentCount]) -> io::Result<()> {
        let expected = Expected::Segments {
            counts: counts.to_vec(),
        };
        let (client, server) = self.ends()?;
        let observe = |segments: &[Segment]| -> Vec<(SegmentCount, usize)> {
            let later = &segments[since.min(segments.len())..];
            counts
                .iter()
                .map(|c| {
                    let from = if c.from == Role::Client {
                        client.local
                    } else {
                        server.local
                    };
                    (*c, later.iter().filter(|s| s.src == from && c.kind.matches(s)).count())
                })
                .collect()
        };
        let holds = |observed: &Vec<(SegmentCount, usize)>| observed.iter().all(|(c, n)| c.holds(*n));
        let Some(observed) = self.settled(claim, &expected, observe, holds)? else {
            return Ok(());
        };
        let verdict = if holds(&observed) {
            Verdict::Confirmed
        } else {
            Verdict::Refuted
        };
        let observed: Vec<String> = observed
            .iter()
            .map(|(c, n)| format!("{} {}: {n}", c.from, c.kind))
            .collect();
        self.push_check(claim, expected, verdict, observed.join(", "), true);
        Ok(())
    }

    /// Checks that neither side sent a segment after the first `since`.
    pub fn check_nothing_sent_since(&mut self, claim: &str, since: usize) -> io::Result<()> {
        use crate::claim::SegmentKind::Any;
        let nothing = [
            SegmentCount::exactly(Role::Client, Any, 0),
            SegmentCount::exactly(Role::Server, Any, 0),
        ];
        self.check_segments_since(claim, since, &nothing)
    }

    /// Checks a claim about the segments that counting cannot express (an
    /// order, a sequence number): `look` returns what was observed and what
    /// the claim expects, in the same terms. Waits for the two to agree, up
    /// to [`TRAILING_SEGMENT_DEADLINE`], before judging (see
    /// [`Run::settled`]). Without a capture the claim is recorded as not
    /// checked.
    pub fn check_packets_eq<T: std::fmt::Debug + PartialEq>(
        &mut self,
        claim: &str,
        look: impl Fn(&Packets) -> (T, T),
    ) -> io::Result<()> {
        let (client, server) = self.ends()?;
        let observe = |segments: &[Segment]| {
            look(&Packets {
                segments,
                client: client.local,
                server: server.local,
            })
        };
        let agree = |(observed, expected): &(T, T)| observed == expected;
        let Some(seen) = self.settled(claim, &Expected::Nothing, observe, agree)? else {
            return Ok(());
        };
        let holds = agree(&seen);
        let (observed, expected) = seen;
        let verdict = if holds { Verdict::Confirmed } else { Verdict::Refuted };
        let expected = Expected::Equal {
            value: format!("{expected:?}"),
        };
        self.push_check(claim, expected, verdict, format!("{observed:?}"), true);
        Ok(())
    }

    /// What `observe` makes of the captured segments once `holds` accepts
    /// it, or at [`TRAILING_SEGMENT_DEADLINE`] the last observation; `None`
    /// after recording the claim as not checked when there is no capture.
    ///
    /// A segment can trail the call that caused it: the kernel sends the
    /// keepalive RST in the same timer run that reports ETIMEDOUT, and the
    /// capture's copy passes through loopback's softirq after the read has
    /// already returned. A snapshot taken at once would miss it.
    fn settled<O>(
        &mut self,
        claim: &str,
        expected: &Expected,
        observe: impl Fn(&[Segment]) -> O,
        holds: impl Fn(&O) -> bool,
    ) -> io::Result<Option<O>> {
        let capture = match &mut self.capture {
            Ok(capture) => capture,
            Err(why) => {
                let why = why.clone();
                self.push_check(claim, expected.clone(), Verdict::NotChecked, why, true);
                return Ok(None);
            }
        };
        let observed = wait::settle(TRAILING_SEGMENT_DEADLINE, || Ok(observe(&capture.segments()?)), holds)?;
        Ok(Some(observed))
    }

    /// Checks that the other side acknowledged the last FIN `who` sent: an
    /// ACK one past the FIN's sequence number (the offset of the first
    /// such ACK from the FIN).
    pub fn check_fin_acked(&mut self, claim: &str, who: Role) -> io::Result<()> {
        let other = who.other();
        self.check_packets_eq(claim, |p| {
            let fin = p
                .from(who)
                .filter(|s| s.flags.fin)
                .last()
                .map(|s| s.seq.wrapping_add(s.len));
            let past = fin.and_then(|fin| {
                p.from(other)
                    .filter(|s| s.flags.ack)
                    .map(|s| s.ack.wrapping_sub(fin))
                    .find(|&past| past == 1)
            });
            (past, Some(1))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Options;

    /// A run with no connection and no capture, to call checks on.
    fn bare_run() -> Run {
        Run::new("test", "checks", &Options::default(), Ok(()))
    }

    /// In the machine's own network namespace a default or a counter is
    /// not the scenario's to read: the claim is recorded as not checked, in
    /// a private one it is checked.
    #[test]
    fn a_kernel_default_is_not_checked_in_a_shared_namespace() {
        let mut shared = Run {
            private: Err("no namespace".into()),
            ..bare_run()
        };
        shared.check_kernel_default("tcp_fin_timeout", "60").unwrap();
        assert_eq!(shared.transcript.checks[0].verdict, Verdict::NotChecked);
        // A sysctl this kernel lacks (an older kernel's case) is not checked either.
        let mut older = bare_run();
        older
            .check_sysctl("a sysctl of a later kernel", "no_such_sysctl", "1")
            .unwrap();
        let verdicts: Vec<(Verdict, &str)> = older
            .transcript
            .checks
            .iter()
            .map(|c| (c.verdict.clone(), c.observed.as_str()))
            .collect();
        assert_eq!(
            verdicts,
            [(Verdict::NotChecked, "this kernel has no sysctl net.ipv4.no_such_sysctl")]
        );
        // Any other failure to read it is an error: net.ipv4.conf is a directory.
        let unreadable = older.check_sysctl("not a sysctl", "conf", "1").map_err(|e| e.kind());
        assert_eq!(unreadable, Err(io::ErrorKind::IsADirectory));
        let mut private = bare_run();
        let expected = Expected::Equal { value: "\"60\"".into() };
        assert!(!private.not_checked_in_a_shared_namespace("a default", expected));
        assert!(private.transcript.checks.is_empty());
    }

    /// Negative controls: every kind of check refutes a wrong observation
    /// (a checker that always confirms would pass every correct run).
    #[test]
    fn every_check_refutes_what_it_does_not_expect() {
        let mut run = bare_run();
        run.check_eq("equal", 1, 2);
        run.check_seconds("in range", Duration::from_secs(5), 1.0, 2.0);
        run.check_count("count in range", 5, 1, 4, "ports");
        run.check_at_least("at least", 1, 2, "bytes");
        run.check_ok("ok", &Ok::<usize, io::Error>(3), 4);
        run.check_ok(
            "ok, not err",
            &Err::<usize, _>(io::Error::from_raw_os_error(libc::EPIPE)),
            4,
        );
        run.check_err(
            "err",
            &Ok::<usize, io::Error>(3),
            io::ErrorKind::BrokenPipe,
            libc::EPIPE,
        );
        let reset = io::Error::from_raw_os_error(libc::ECONNRESET);
        run.check_err(
            "other err",
            &Err::<usize, _>(reset),
            io::ErrorKind::BrokenPipe,
            libc::EPIPE,
        );
        let verdicts: Vec<_> = run
            .transcript
            .checks
            .iter()
            .map(|c| (c.claim.as_str(), c.verdict.clone()))
            .collect();
        assert!(verdicts.iter().all(|(_, v)| *v == Verdict::Refuted), "{verdicts:?}");
        assert_eq!(verdicts.len(), 8);
        assert_eq!(run.transcript.outcome(), crate::claim::RunOutcome::Refuted);
    }

    /// The same checks confirm what they expect.
    #[test]
    fn every_check_confirms_what_it_expects() {
        let mut run = bare_run();
        run.check_eq("equal", 2, 2);
        run.check_seconds("in range", Duration::from_millis(1500), 1.0, 2.0);
        run.check_count("count in range", 4, 1, 4, "ports");
        run.check_at_least("at least", 2, 2, "bytes");
        run.check_ok("ok", &Ok::<usize, io::Error>(4), 4);
        run.check_err(
            "err",
            &Err::<usize, _>(io::Error::from_raw_os_error(libc::EPIPE)),
            io::ErrorKind::BrokenPipe,
            libc::EPIPE,
        );
        assert!(run.transcript.checks.iter().all(|c| c.verdict == Verdict::Confirmed));
        assert_eq!(run.transcript.outcome(), crate::claim::RunOutcome::Confirmed);
    }

    /// Without a capture, a claim about packets is not checked: neither
    /// confirmed nor refuted.
    #[test]
    fn packet_claims_without_a_capture_are_not_checked() {
        let mut run = bare_run();
        run.transcript.client = Some("127.0.0.1:1".parse().unwrap());
        run.transcript.server = Some("127.0.0.1:2".parse().unwrap());
        let fin = SegmentCount::exactly(Role::Client, crate::claim::SegmentKind::Fin, 1);
        run.check_segments("a FIN", &[fin]).unwrap();
        run.check_packets_eq("equal", |_| (1, 1)).unwrap();
        assert!(run.transcript.checks.iter().all(|c| c.verdict == Verdict::NotChecked));
        assert_eq!(run.transcript.outcome(), crate::claim::RunOutcome::NotChecked);
    }
}
