//! Every scenario, run on this kernel with packet capture: every claim must
//! be checked and confirmed. Capture needs CAP_NET_RAW; CI runs as root.

use tcpclose::scenario::{self, Options};
use tcpclose::transcript::{Transcript, Verdict};

fn run_confirmed(id: &str) -> Transcript {
    let scenario = scenario::find(id).unwrap_or_else(|| panic!("no scenario {id}"));
    let transcript = scenario.run(&Options {
        hold: None,
        capture: true,
    });
    for check in &transcript.checks {
        assert_eq!(
            check.verdict,
            Verdict::Confirmed,
            "{id}: {}\nobserved: {}",
            check.claim,
            check.observed
        );
    }
    assert!(transcript.error.is_none(), "{id} stopped early: {:?}", transcript.error);
    transcript
}

#[test]
fn every_scenario_is_tested_here() {
    let source = include_str!("scenarios.rs");
    for s in scenario::ALL {
        let name = s.id.replace('-', "_");
        assert!(
            source.contains(&format!("fn {name}()")),
            "no test for scenario {}",
            s.id
        );
    }
}

#[test]
fn eof_close_wait() {
    let t = run_confirmed("eof-close-wait");
    assert!(t.check("read returns Ok(0)").is_some());
    assert!(t.check("the client sent a FIN, and no FIN left the server").is_some());
    assert!(t.check("dropping the stream sent the server's FIN").is_some());
}

#[test]
fn broken_pipe() {
    let t = run_confirmed("broken-pipe");
    assert!(t.check("the first write succeeds").is_some());
    assert!(t
        .check("on the wire: the 1024 bytes from the server, then an RST")
        .is_some());
    assert!(t.check("the second write fails with ErrorKind::BrokenPipe").is_some());
    assert!(t.check("a read returns Ok(0)").is_some());
    assert!(t.check("the process is alive").is_some());
}

#[test]
fn use_after_close() {
    let t = run_confirmed("use-after-close");
    assert!(t.check("the clone's read returns Ok(0)").is_some());
    assert!(t.check("the clone's write fails with ErrorKind::BrokenPipe").is_some());
    assert!(t.check("on the wire: the client's FIN and no data").is_some());
}

#[test]
fn unread_data_rst() {
    let t = run_confirmed("unread-data-rst");
    assert!(t.check("closing with unread bytes sends RST, not FIN").is_some());
    assert!(t.check("then its read fails with ErrorKind::ConnectionReset").is_some());
    assert!(t.check("the rest of the response is lost").is_some());
    assert!(t.check("the kernel counts the abort").is_some());
}

#[test]
fn reset_while_reading() {
    let t = run_confirmed("reset-while-reading");
    assert!(t
        .check("bytes that arrived before the RST are still readable")
        .is_some());
    assert!(t.check("only once: every later read returns Ok(0)").is_some());
}

#[test]
fn linger_zero() {
    let t = run_confirmed("linger-zero");
    assert!(t.check("the client's socket is gone at once").is_some());
    assert!(t.check("the close sent an RST and no FIN").is_some());
}

#[test]
fn linger_timeout() {
    let t = run_confirmed("linger-timeout");
    assert!(t.check("close blocks until the linger time has passed").is_some());
    assert!(t.check("when the time ran out, Linux sent no RST").is_some());
    assert!(t.check("the server, reading at last, receives every byte").is_some());
}

#[test]
fn lingering_close() {
    let t = run_confirmed("lingering-close");
    assert!(t.check("with lingering_close no client loses a byte").is_some());
    assert!(t.check("no RST on the wire").is_some());
}

#[test]
fn connect_refused() {
    let t = run_confirmed("connect-refused");
    assert!(t.check("connect fails with ErrorKind::ConnectionRefused").is_some());
    assert!(t.check("the SYN was answered with RST ACK").is_some());
}

#[test]
fn half_close() {
    let t = run_confirmed("half-close");
    assert!(t.check("shutdown(Write) sends the FIN").is_some());
    assert!(t.check("after shutdown(Write) the client still reads").is_some());
    assert!(t.check("a write after shutdown(Write) fails at once").is_some());
    assert!(t.check("shutdown(Read) sends nothing").is_some());
}

#[test]
fn try_clone() {
    let t = run_confirmed("try-clone");
    assert!(t.check("dropping one of two handles sends nothing").is_some());
    assert!(t
        .check("shutdown on one handle wakes a thread blocked in read")
        .is_some());
    assert!(t.check("the FIN left with the last handle").is_some());
}

#[test]
fn time_wait() {
    let t = run_confirmed("time-wait");
    assert!(t.check("the client, which closed first, keeps TIME_WAIT").is_some());
    assert!(t.check("its timer starts at 60 s").is_some());
}

#[test]
fn rebind() {
    let t = run_confirmed("rebind");
    assert!(t.check("a socket2 socket without SO_REUSEADDR cannot bind").is_some());
    assert!(t.check("std's TcpListener::bind succeeds").is_some());
    assert!(t.check("once TIME_WAIT holds every port").is_some());
    assert!(t.check("with tcp_tw_reuse").is_some());
}

#[test]
fn fin_wait_2_timeout() {
    let t = run_confirmed("fin-wait-2-timeout");
    assert!(t.check("the orphan is dropped after TCP_LINGER2").is_some());
    assert!(t
        .check("the socket still held after shutdown(Write) stays in FIN_WAIT_2")
        .is_some());
    assert!(t.check("the answer to the server's data is an RST").is_some());
}

#[test]
fn keepalive_dead_peer() {
    let t = run_confirmed("keepalive-dead-peer");
    assert!(t
        .check("with keepalive, the blocked read fails with ErrorKind::TimedOut")
        .is_some());
    assert!(t
        .check("meanwhile, a connection without keepalive noticed nothing")
        .is_some());
    assert!(t.check("the client sent 2 unanswered keepalive probes").is_some());
}

#[test]
fn user_timeout() {
    let t = run_confirmed("user-timeout");
    assert!(t
        .check("with unacknowledged data, TCP_USER_TIMEOUT ends the connection")
        .is_some());
    assert!(t.check("meanwhile, keepalive alone did not end").is_some());
}

#[test]
fn fd_exhaustion() {
    let t = run_confirmed("fd-exhaustion");
    assert!(t.check("then accept fails with EMFILE").is_some());
    assert!(t.check("every accepted connection is left in CLOSE_WAIT").is_some());
    assert!(t.check("a server that backs off").is_some());
    assert!(t.check("a loop that retries at once spins").is_some());
}

#[test]
fn scenario_ids_are_kebab_case_and_unique() {
    let mut ids: Vec<_> = scenario::ALL.iter().map(|s| s.id).collect();
    for id in &ids {
        assert!(
            id.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{id}"
        );
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), scenario::ALL.len());
}
