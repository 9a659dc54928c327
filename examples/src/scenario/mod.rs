//! The close scenarios. Each is a value with an id (the `tcpclose` argument,
//! the test name and the transcript file stem), a title, and a `run` that
//! performs it on real sockets over loopback and checks its claims.

/// What keepalive-dead-peer and user-timeout share.
mod dead_peer;

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

use crate::observe::{describe, End, State};
use crate::sandbox::Sandbox;
use crate::transcript::{
    check_id, outcome, CallResult, Check, Expected, Role, SegmentCount, Step, Transcript, Verdict,
};
use crate::wait;
use crate::wire::{Capture, Segment};

/// A std stream as a tokio one; inside a tokio runtime.
pub fn to_tokio(stream: TcpStream) -> io::Result<tokio::net::TcpStream> {
    stream.set_nonblocking(true)?;
    tokio::net::TcpStream::from_std(stream)
}

/// Runs `future` to completion on a runtime of one thread: the scenario's
/// own, in its network namespace.
pub fn block_on<F: std::future::Future>(future: F) -> io::Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    Ok(runtime.block_on(future))
}

/// How long a packet check waits for the segments it expects before it
/// judges what it has: far above loopback's delivery time, so that a
/// loaded machine does not refute a claim the kernel keeps a moment late.
pub const TRAILING_SEGMENT_DEADLINE: Duration = Duration::from_secs(3);

/// One close scenario.
pub struct Scenario {
    pub id: &'static str,
    pub title: &'static str,
    /// The book chapter that explains it, relative to the book's `src/`.
    pub chapter: &'static str,
    /// Runs while no other scenario runs: it forks, and a forked child
    /// holds a copy of every descriptor of the process until it closes
    /// them, so another scenario's `drop` would not close its socket.
    pub alone: bool,
    perform: fn(&mut Run) -> anyhow::Result<()>,
}

// Every scenario, in the book's order: its module, one file with its
// `SCENARIO`. Adding a scenario is its file and one line here; the build
// script (examples/build.rs) lists these modules in `ALL`. (rustfmt.toml
// keeps rustfmt from sorting them.)

// The std chapters.
mod eof_close_wait;
mod broken_pipe;
mod use_after_close;
mod unread_data_rst;
mod reset_while_reading;
mod linger_zero;
mod linger_timeout;
mod lingering_close;
mod connect_refused;
mod half_close;
mod try_clone;
mod time_wait;
mod rebind;
mod fin_wait_2_timeout;
mod syn_meets_old_socket;
mod keepalive_dead_peer;
mod user_timeout;
mod fd_exhaustion;

// Async Rust (tokio).
mod tokio_drop_vs_shutdown;
mod tokio_split_halves;
mod tokio_close_wait_task;
mod tokio_copy_bidirectional;
mod tokio_early_reply;
mod tokio_zero_linger;
mod tokio_timeouts;
mod tokio_keepalive_race;
mod tokio_graceful_shutdown;
mod tokio_accept_emfile;

// In production: sockets that refuse to die.
mod zero_window;
mod orphan_fin_wait_1;
mod syn_retries;
mod backlog_overflow;
mod idle_timeout_chain;

include!(concat!(env!("OUT_DIR"), "/all_scenarios.rs"));

/// Runs `scenarios`, each on a thread and in a network namespace of its
/// own: first those that must run alone, one after another, then all the
/// others side by side. Returns the transcripts in the given order.
pub fn run_all(scenarios: &[&'static Scenario], options: &Options) -> Vec<Transcript> {
    let mut transcripts: Vec<Option<Transcript>> = vec![None; scenarios.len()];
    for (slot, scenario) in transcripts.iter_mut().zip(scenarios) {
        if scenario.alone {
            *slot = Some(scenario.run(options));
        }
    }
    std::thread::scope(|scope| {
        let running: Vec<_> = transcripts
            .iter_mut()
            .zip(scenarios)
            .filter(|(slot, _)| slot.is_none())
            .map(|(slot, scenario)| scope.spawn(move || *slot = Some(scenario.run(options))))
            .collect();
        for thread in running {
            // A scenario's panic is caught in Scenario::run; nothing else can.
            let _ = thread.join();
        }
    });
    transcripts
        .into_iter()
        .zip(scenarios)
        .map(|(t, s)| t.unwrap_or_else(|| s.failed("the scenario's thread panicked".into())))
        .collect()
}

/// The scenario with this id.
pub fn find(id: &str) -> Option<&'static Scenario> {
    ALL.iter().find(|s| s.id == id)
}

/// How to run a scenario.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Pause at the scenario's interesting moment so a person can look with
    /// `ss` or Wireshark.
    pub hold: Option<Duration>,
    /// Capture packets; when false, packet claims are not checked.
    pub capture: bool,
}

impl Scenario {
    /// Runs the scenario on a thread of its own, in a network namespace of
    /// its own when the process may make one (see [`crate::sandbox`]): its
    /// sockets are alone in their table, and what it changes there (sysctls,
    /// filters) ends with it. A scenario that cannot finish (a state never
    /// reached, a call that failed unexpectedly) returns a transcript with
    /// `error` set.
    pub fn run(&self, options: &Options) -> Transcript {
        std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name(self.id.into())
                .spawn_scoped(scope, || {
                    let start = std::time::Instant::now();
                    let private = match crate::sandbox::current() {
                        Some(Sandbox::Shared { why }) => Err(why.clone()),
                        _ => crate::netns::enter_new().map_err(|e| e.to_string()),
                    };
                    let mut transcript = self.run_here(options, private);
                    transcript.seconds = start.elapsed().as_secs_f64();
                    transcript
                })
                .and_then(|thread| thread.join().map_err(|_| io::Error::other("panicked")))
                .unwrap_or_else(|e| self.failed(format!("the scenario's thread failed: {e}")))
        })
    }

    /// A transcript for a scenario that could not run at all.
    fn failed(&self, error: String) -> Transcript {
        Transcript {
            error: Some(error),
            ..Transcript::empty(self.id, self.title)
        }
    }

    fn run_here(&self, options: &Options, private: Result<(), String>) -> Transcript {
        let mut run = Run {
            options: options.clone(),
            private,
            held: false,
            capture: Err(if options.capture {
                "not started".into()
            } else {
                "capture not requested".into()
            }),
            transcript: Transcript::empty(self.id, self.title),
        };
        let result = (self.perform)(&mut run);
        match result {
            // Without the privileges a scenario needs, it checks nothing and
            // refutes nothing: say so.
            Err(e) if needs_privileges(&e) => {
                let claim = format!("every claim of {}", self.id);
                run.push_check(&claim, Expected::Nothing, Verdict::NotChecked, format!("{e:#}"), false);
                run.finish(None)
            }
            result => run.finish(result.err().map(|e| format!("{e:#}"))),
        }
    }
}

fn needs_privileges(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|cause| cause.downcast_ref::<io::Error>())
        .any(|io| io.kind() == io::ErrorKind::PermissionDenied)
}

/// A scenario in progress: records what happens and checks claims.
pub struct Run {
    options: Options,
    /// `Err` holds why the scenario shares the machine's network namespace.
    private: Result<(), String>,
    /// Whether the scenario paused for `--hold`.
    held: bool,
    capture: Result<Capture, String>,
    transcript: Transcript,
}

impl Run {
    /// Binds a listener on 127.0.0.1, port 0, starts capturing its port,
    /// connects a client and accepts it: `(client, server)`.
    pub fn connect(&mut self) -> io::Result<(TcpStream, TcpStream)> {
        self.connect_recorded(("TcpStream::connect(server)", "listener.accept()"))
    }

    /// [`Run::connect`] as tokio streams, recorded with `.await`s; inside a
    /// tokio runtime (see [`block_on`]).
    pub fn connect_tokio(&mut self) -> io::Result<(tokio::net::TcpStream, tokio::net::TcpStream)> {
        let (client, server) =
            self.connect_recorded(("TcpStream::connect(server).await", "listener.accept().await"))?;
        Ok((to_tokio(client)?, to_tokio(server)?))
    }

    /// [`Run::listen`] as a tokio listener; inside a tokio runtime.
    pub fn listen_tokio(&mut self) -> io::Result<tokio::net::TcpListener> {
        let listener = self.listen()?;
        listener.set_nonblocking(true)?;
        tokio::net::TcpListener::from_std(listener)
    }

    fn connect_recorded(&mut self, (connect, accept): (&str, &str)) -> io::Result<(TcpStream, TcpStream)> {
        let listener = self.listen()?;
        let client = TcpStream::connect(listener.local_addr()?)?;
        self.record(Role::Client, connect, "Ok(stream)".into());
        let (server, _) = listener.accept()?;
        self.record(Role::Server, accept, "Ok((stream, client))".into());
        self.transcript.client = Some(client.local_addr()?);
        self.states()?;
        Ok((client, server))
    }

    /// Binds a listener on 127.0.0.1, port 0, and starts capturing its port.
    pub fn listen(&mut self) -> io::Result<TcpListener> {
        self.listen_backlog(128)
    }

    /// [`Run::listen`] with a listen backlog of `backlog` connections.
    pub fn listen_backlog(&mut self, backlog: i32) -> io::Result<TcpListener> {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
        socket.set_reuse_address(true)?;
        socket.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
        socket.listen(backlog)?;
        let listener: TcpListener = socket.into();
        let addr = listener.local_addr()?;
        self.transcript.server = Some(addr);
        if self.options.capture {
            self.capture = Capture::start(addr).map_err(|e| e.to_string());
            self.transcript.capture = self.capture.as_ref().map(|_| ()).map_err(Clone::clone);
        }
        Ok(listener)
    }

    /// Fails with `PermissionDenied` (the scenario's claims are then "not
    /// checked") unless the scenario has a network namespace of its own, as
    /// socket filters and sysctls need.
    pub fn require_private_network(&self) -> io::Result<()> {
        self.private
            .clone()
            .map_err(|why| io::Error::new(io::ErrorKind::PermissionDenied, why))
    }

    /// The server's address (the listener's).
    pub fn server_addr(&self) -> io::Result<SocketAddr> {
        self.transcript
            .server
            .ok_or_else(|| io::Error::other("no listener yet"))
    }

    /// For scenarios whose claims are not about packets: capture nothing.
    pub fn no_packets(&mut self, why: &str) {
        self.options.capture = false;
        self.capture = Err(why.into());
        self.transcript.capture = Err(why.into());
    }

    /// Names the client's address when the scenario made the client
    /// socket itself (not through [`Run::connect`]).
    pub fn set_client(&mut self, addr: SocketAddr) {
        self.transcript.client = Some(addr);
    }

    /// The client's end and the server's end of the connection.
    pub fn ends(&self) -> io::Result<(End, End)> {
        match (self.transcript.client, self.transcript.server) {
            (Some(client), Some(server)) => Ok((
                End {
                    local: client,
                    remote: server,
                },
                End {
                    local: server,
                    remote: client,
                },
            )),
            _ => Err(io::Error::other("no connection yet")),
        }
    }

    /// Adds a step with the time it was recorded, so that a diagram can
    /// place it among the packets.
    fn push_step(&mut self, step: Step) {
        self.transcript.steps.push(step);
        self.transcript.step_times.push(std::time::SystemTime::now());
    }

    /// Records a call and its result.
    pub fn call<T: std::fmt::Debug>(&mut self, who: Role, call: &str, result: &io::Result<T>) {
        self.push_step(Step::Call {
            who,
            call: call.into(),
            result: CallResult::of(result.as_ref()),
            started: None,
        });
    }

    /// Makes a call and records it with the time it started and the time
    /// it returned, so that a diagram draws it before the segments it sent.
    pub fn perform<T: std::fmt::Debug>(
        &mut self,
        who: Role,
        call: &str,
        f: impl FnOnce() -> io::Result<T>,
    ) -> io::Result<T> {
        let started = std::time::SystemTime::now();
        let result = f();
        self.push_step(Step::Call {
            who,
            call: call.into(),
            result: CallResult::of(result.as_ref()),
            started: Some(started),
        });
        result
    }

    /// Drops `value` (a stream, a socket: its close) and records the drop
    /// with the time it started.
    pub fn drop<T>(&mut self, who: Role, call: &str, value: T) {
        let started = std::time::SystemTime::now();
        drop(value);
        self.push_step(Step::Call {
            who,
            call: call.into(),
            result: CallResult::Shown { text: String::new() },
            started: Some(started),
        });
    }

    /// Records a call the scenario made in its own way, with what to show
    /// of its result (empty: nothing, as for a drop).
    pub fn record(&mut self, who: Role, call: &str, result: String) {
        self.push_step(Step::Call {
            who,
            call: call.into(),
            result: CallResult::Shown { text: result },
            started: None,
        });
    }

    /// How many segments the capture holds so far (0 without a capture).
    pub fn segment_count(&mut self) -> io::Result<usize> {
        match &mut self.capture {
            Ok(capture) => capture.len(),
            Err(_) => Ok(0),
        }
    }

    /// Records a measured quantity.
    pub fn measured(&mut self, what: &str, value: impl std::fmt::Display) {
        self.push_step(Step::Measured {
            what: what.into(),
            value: value.to_string(),
        });
    }

    /// Marks the scenario as a bulk transfer: its transcript lists only
    /// the segments with SYN, FIN or RST.
    pub fn bulk(&mut self) {
        self.transcript.bulk = true;
    }

    /// Records the current state of both ends.
    pub fn states(&mut self) -> io::Result<(Option<State>, Option<State>)> {
        let (client, server) = self.ends()?;
        let states = (client.state()?, server.state()?);
        self.push_step(Step::States {
            client: states.0,
            server: states.1,
        });
        Ok(states)
    }

    /// Records a check: the claim, what it expects, what was observed.
    fn push_check(&mut self, claim: &str, expected: Expected, verdict: Verdict, observed: String, packets: bool) {
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
        use crate::transcript::SegmentKind::Any;
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
        let other = match who {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        };
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

    /// Waits until the captured segments satisfy `done` (no-op without a
    /// capture): a segment sent in reply by the kernel's softirq may be
    /// queued a moment after the syscall that caused it returned.
    pub fn wait_packets(&mut self, what: &str, done: impl Fn(&Packets) -> bool) -> io::Result<()> {
        let (client, server) = self.ends()?;
        match &mut self.capture {
            Ok(capture) => capture.wait_for(what, |segments| {
                done(&Packets {
                    segments,
                    client: client.local,
                    server: server.local,
                })
            }),
            Err(_) => Ok(()),
        }
    }

    /// Waits until the capture holds the ACK of the last FIN `who` sent:
    /// the close is over on the wire, and no segment of it can be captured
    /// after the story has moved on.
    pub fn wait_fin_acked(&mut self, who: Role) -> io::Result<()> {
        let other = match who {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        };
        self.wait_packets("the ACK of the last FIN", move |p| {
            let acked = p
                .from(who)
                .filter(|s| s.flags.fin)
                .last()
                .map(|s| s.seq.wrapping_add(s.len + 1));
            p.from(other).any(|s| Some(s.ack) == acked)
        })
    }

    /// Keeps everything as it is for the requested time, so a person can run
    /// `ss` or look at the capture: a pause for people, never for the tests.
    pub fn hold(&mut self, now: &str) {
        let Some(hold) = self.options.hold else { return };
        self.held = true;
        let port = self.transcript.server.map_or(0, |a| a.port());
        let enter = match self.private {
            Ok(()) => format!("{} ", crate::sandbox::nsenter_prefix(crate::sandbox::thread_id())),
            Err(_) => String::new(),
        };
        eprintln!(
            "[{}] holding {} s: {now}\n    look: {enter}ss -tanpo '( sport = :{port} or dport = :{port} )'\n    \
             watch: {enter}tcpdump -ni lo port {port}",
            self.transcript.id,
            hold.as_secs_f64()
        );
        std::thread::sleep(hold); // hold: the user asked to look
    }

    fn finish(mut self, error: Option<String>) -> Transcript {
        if self.options.hold.is_some() && !self.held {
            eprintln!(
                "[{}] --hold: this scenario has no moment to pause at",
                self.transcript.id
            );
        }
        if let Ok(capture) = self.capture {
            match capture.finish() {
                Ok(segments) => self.transcript.segments = segments,
                Err(e) => self.transcript.capture = Err(format!("reading the capture failed: {e}")),
            }
        }
        self.transcript.error = error;
        self.transcript
    }
}

/// The captured segments of one connection, with helpers to ask about them.
pub struct Packets<'a> {
    pub segments: &'a [Segment],
    pub client: SocketAddr,
    pub server: SocketAddr,
}

impl Packets<'_> {
    /// The segments `who` sent.
    pub fn from(&self, who: Role) -> impl Iterator<Item = &Segment> {
        let addr = match who {
            Role::Client => self.client,
            Role::Server => self.server,
        };
        self.segments.iter().filter(move |s| s.src == addr)
    }

    /// How many segments `who` sent that match `pick`.
    pub fn count(&self, who: Role, pick: impl Fn(&Segment) -> bool) -> usize {
        self.from(who).filter(|s| pick(s)).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run with no connection and no capture, to call checks on.
    fn bare_run() -> Run {
        Run {
            options: Options::default(),
            private: Ok(()),
            held: false,
            capture: Err("no capture".into()),
            transcript: Transcript::empty("test", "checks"),
        }
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
        run.check_ok("ok, not err", &Err::<usize, _>(io::Error::from_raw_os_error(32)), 4);
        run.check_err("err", &Ok::<usize, io::Error>(3), io::ErrorKind::BrokenPipe, 32);
        let reset = io::Error::from_raw_os_error(104);
        run.check_err("other err", &Err::<usize, _>(reset), io::ErrorKind::BrokenPipe, 32);
        let verdicts: Vec<_> = run
            .transcript
            .checks
            .iter()
            .map(|c| (c.claim.as_str(), c.verdict.clone()))
            .collect();
        assert!(verdicts.iter().all(|(_, v)| *v == Verdict::Refuted), "{verdicts:?}");
        assert_eq!(verdicts.len(), 8);
        assert_eq!(run.transcript.outcome(), crate::transcript::RunOutcome::Refuted);
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
            &Err::<usize, _>(io::Error::from_raw_os_error(32)),
            io::ErrorKind::BrokenPipe,
            32,
        );
        assert!(run.transcript.checks.iter().all(|c| c.verdict == Verdict::Confirmed));
        assert_eq!(run.transcript.outcome(), crate::transcript::RunOutcome::Confirmed);
    }

    /// Without a capture, a claim about packets is not checked: neither
    /// confirmed nor refuted.
    #[test]
    fn packet_claims_without_a_capture_are_not_checked() {
        let mut run = bare_run();
        run.transcript.client = Some("127.0.0.1:1".parse().unwrap());
        run.transcript.server = Some("127.0.0.1:2".parse().unwrap());
        let fin = SegmentCount::exactly(Role::Client, crate::transcript::SegmentKind::Fin, 1);
        run.check_segments("a FIN", &[fin]).unwrap();
        run.check_packets_eq("equal", |_| (1, 1)).unwrap();
        assert!(run.transcript.checks.iter().all(|c| c.verdict == Verdict::NotChecked));
        assert_eq!(run.transcript.outcome(), crate::transcript::RunOutcome::NotChecked);
    }

    fn panics(_: &mut Run) -> anyhow::Result<()> {
        panic!("a scenario that panics");
    }

    /// A scenario whose thread dies is reported as stopped, with why, and
    /// never as confirmed.
    #[test]
    fn a_panicking_scenario_is_stopped_not_confirmed() {
        let scenario = Scenario {
            id: "panics",
            title: "a scenario that panics",
            chapter: "none.md",
            alone: false,
            perform: panics,
        };
        let transcript = scenario.run(&Options::default());
        assert_eq!(transcript.outcome(), crate::transcript::RunOutcome::Stopped);
        assert!(
            transcript.error.as_deref().is_some_and(|e| e.contains("panicked")),
            "{:?}",
            transcript.error
        );
    }
}
