//! `half-close`: `shutdown(Write)` sends a FIN and leaves reading open, the
//! request/response pattern of `nc -N`. A later write fails at once with
//! EPIPE, without any RST. `shutdown(Read)` sends nothing and discards
//! nothing queued; but once both directions are shut, the kernel answers
//! new data with an RST, as for a closed socket.

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;

use crate::observe::{End, State};
use crate::scenario::{Packets, Run, Scenario};
use crate::transcript::Role::{Client, Server};
use crate::transcript::SegmentKind::{Data, Rst};

/// Waits until `end` has `bytes` received and unread, at most `deadline`.
fn wait_for_unread(end: End, bytes: u32, deadline: std::time::Duration) -> std::io::Result<()> {
    crate::wait::until(&format!("{bytes} unread bytes at {end}"), deadline, || {
        Ok(end.view()?.filter(|v| v.recv_queue == bytes).map(|_| ()))
    })
}

/// Whether the client acknowledged the server's last segment of `len` bytes.
fn client_acked(p: &Packets, len: u32) -> bool {
    let end = p
        .from(Server)
        .filter(|s| s.len == len)
        .map(|s| s.seq.wrapping_add(len))
        .last();
    p.from(Client).any(|s| Some(s.ack) == end)
}

pub const SCENARIO: Scenario = Scenario {
    id: "half-close",
    title: "shutdown(Write): a FIN, and reading goes on; shutdown(Read) sends nothing",
    chapter: "half-close.md",
    alone: false,
    perform,
};

pub fn perform(run: &mut Run) -> anyhow::Result<()> {
    let (mut client, mut server) = run.connect()?;

    run.perform(Client, "stream.write_all(b\"request\")", || {
        client.write_all(b"request")
    })?;
    run.perform(Client, "stream.shutdown(Shutdown::Write)", || {
        client.shutdown(Shutdown::Write)
    })?;
    let claim = "shutdown(Write) sends the FIN: client FIN_WAIT_2, server CLOSE_WAIT";
    run.expect_states(claim, Some(State::FinWait2), Some(State::CloseWait))?;

    run.hold("half-closed: client FIN_WAIT_2, server CLOSE_WAIT, and both can still talk");
    let mut request = Vec::new();
    let read = run.perform(Server, "stream.read_to_end(&mut request)", || {
        server.read_to_end(&mut request)
    });
    let claim = "the server reads the whole request, to the client's FIN (read_to_end)";
    run.check_ok(claim, &read, 7);
    run.perform(Server, "stream.write_all(b\"response\")", || {
        server.write_all(b"response")
    })?;

    let mut buf = [0u8; 64];
    let answer = run.perform(Client, "stream.read(&mut [0; 64])", || client.read(&mut buf));
    run.check_ok("after shutdown(Write) the client still reads the response", &answer, 8);

    let late = run.perform(Client, "stream.write(b\"more\")", || client.write(b"more"));
    let claim = "a write after shutdown(Write) fails at once with ErrorKind::BrokenPipe (os error 32)";
    run.check_err(claim, &late, ErrorKind::BrokenPipe, libc::EPIPE);

    let claim = "no RST so far, and the refused write sent nothing: the EPIPE was the client's own kernel refusing";
    run.check_segments(claim, &[Client.sent(Rst, 0), Server.sent(Rst, 0), Client.sent(Data, 1)])?;

    // Bytes already queued when the client shuts down reading.
    run.perform(Server, "stream.write_all(b\"queued\")", || server.write_all(b"queued"))?;
    let client_end = run.ends()?.0;
    wait_for_unread(client_end, 6, crate::wait::DEFAULT_DEADLINE)?;
    // (The client's ACK of them must be in the capture before the count,
    // or it could land between the count and the check.)
    run.wait_packets("the client's ACK of the queued bytes", |p| client_acked(p, 6))?;
    let before = run.segment_count()?;
    run.perform(Client, "stream.shutdown(Shutdown::Read)", || {
        client.shutdown(Shutdown::Read)
    })?;
    run.check_nothing_sent_since("shutdown(Read) sends nothing: no segment left either side", before)?;
    let read = run.perform(Client, "stream.read(&mut [0; 64])", || client.read(&mut buf));
    let claim = "shutdown(Read) discards nothing already queued: the 6 bytes are read";
    run.check_ok(claim, &read, 6);
    let after_read = run.perform(Client, "stream.read(&mut [0; 64])", || client.read(&mut buf));
    let claim = "then read returns Ok(0) at once, although the server sent no FIN";
    run.check_ok(claim, &after_read, 0);

    // Both directions of the client are now shut: new data is unwelcome.
    run.perform(Server, "stream.write_all(b\"later\")", || server.write_all(b"later"))?;
    let claim = "with both directions shut, the client's kernel answers new data with an RST, which ends both sockets";
    run.expect_states(claim, None, None)?;
    let claim = "on the wire: the server's 5 bytes, then one RST from the client (the last two segments)";
    run.check_packets_eq(claim, |p| {
        let last_two: Vec<_> = p.segments[p.segments.len().saturating_sub(2)..]
            .iter()
            .map(|s| {
                let from = if s.src == p.client { "client" } else { "server" };
                format!("{from} {} len={}", s.flags, s.len)
            })
            .collect();
        (
            last_two,
            vec!["server PSH ACK len=5".to_string(), "client RST len=0".to_string()],
        )
    })?;
    let late = run.perform(Server, "stream.write(b\"more\")", || server.write(b"more"));
    let claim =
        "the RST reached the server in CLOSE_WAIT: its next write fails with ErrorKind::BrokenPipe (os error 32)";
    run.check_err(claim, &late, ErrorKind::BrokenPipe, libc::EPIPE);
    drop(client);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Duration;

    fn segment(from: &str, to: &str, seq: u32, ack: u32, len: u32) -> crate::wire::Segment {
        crate::wire::Segment {
            time: std::time::SystemTime::now(),
            src: from.parse().unwrap(),
            dst: to.parse().unwrap(),
            flags: Default::default(),
            seq,
            ack,
            len,
            window: 1,
            packet: Vec::new(),
        }
    }

    #[test]
    fn the_client_acked_the_bytes_only_when_its_ack_is_past_them() {
        let (client, server) = ("127.0.0.1:5000", "127.0.0.1:80");
        let data = segment(server, client, 100, 1, 6);
        let packets = |ack| {
            let segments = vec![data.clone(), segment(client, server, 1, ack, 0)];
            client_acked(
                &Packets {
                    segments: &segments,
                    client: client.parse().unwrap(),
                    server: server.parse().unwrap(),
                },
                6,
            )
        };
        assert!(packets(106));
        assert!(!packets(100));
    }

    #[test]
    fn waiting_for_unread_bytes_waits_for_them() {
        let (mut client, server) = crate::pair().unwrap();
        let server_end = End::of(&server).unwrap();
        assert!(wait_for_unread(server_end, 6, Duration::from_millis(50)).is_err());
        client.write_all(b"queued").unwrap();
        wait_for_unread(server_end, 6, crate::wait::DEFAULT_DEADLINE).unwrap();
    }
}
