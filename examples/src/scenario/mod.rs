//! The close scenarios. Each is a value with an id (the `tcpclose` argument,
//! the test name and the transcript file stem), a title, and a `run` that
//! performs it on real sockets over loopback and checks its claims.

/// What keepalive-dead-peer and user-timeout share.
mod dead_peer;

/// The check engine: a claim, what it expects, what was observed.
mod check;
/// The recorder: a run's connection, calls, states and packets.
mod record;

pub use check::TRAILING_SEGMENT_DEADLINE;
pub use record::{Packets, Run};

use std::io;
use std::time::Duration;

use crate::claim::{Expected, Verdict};
use crate::sandbox::Sandbox;
use crate::transcript::Transcript;

// The book's async samples, and the async scenarios, use these as
// `scenario::to_tokio` and `scenario::block_on`.
pub use crate::runtime::{block_on, to_tokio};

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

// TLS and HTTP (rustls, hyper).
mod tls_close_notify;
mod tls_truncation;
mod hyper_half_close;
mod hyper_pool_race;
mod hyper_early_reply;
mod graceful_streams;

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
        let mut run = Run::new(self.id, self.title, options, private);
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

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(transcript.outcome(), crate::claim::RunOutcome::Stopped);
        assert!(
            transcript.error.as_deref().is_some_and(|e| e.contains("panicked")),
            "{:?}",
            transcript.error
        );
    }
}
