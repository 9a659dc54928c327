//! `tls-close-notify`: TLS has its own end of stream, the close_notify
//! alert. A rustls server that awaits `shutdown()` sends it, then its FIN,
//! and the client's read returns `Ok(0)`. (A server that drops its stream
//! sends only the FIN: see `tls-truncation`.)

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::observe::State;
use crate::scenario::{block_on, Packets, Run, Scenario};
use crate::transcript::Role::{self, Client, Server};
use crate::transcript::SegmentKind::Rst;

pub const SCENARIO: Scenario = Scenario {
    id: "tls-close-notify",
    title: "rustls: shutdown() sends close_notify, then the FIN; the client reads the response, then Ok(0)",
    chapter: "tls.md#tls-close-notify",
    alone: false,
    perform,
};

/// rustls' message for a stream that ended without close_notify.
pub const NO_CLOSE_NOTIFY: &str = "peer closed connection without sending TLS close_notify: \
                                   https://docs.rs/rustls/latest/rustls/manual/_03_howto/index.html#unexpected-eof";

/// A TLS 1.3 alert record on the wire: a 5-byte header, the 2-byte alert,
/// the 1-byte inner content type and the 16-byte AEAD tag.
pub const ALERT_RECORD: u32 = 5 + 2 + 1 + 16;

/// How many bytes `who` sent after the first `since` segments, its FIN
/// among them (TCP sends nothing after a FIN); `None` without a FIN.
pub fn bytes_before_fin(p: &Packets, who: Role, since: usize) -> Option<u32> {
    let addr = p.addr(who);
    let later: Vec<_> = p.segments[since.min(p.segments.len())..]
        .iter()
        .filter(|s| s.src == addr)
        .collect();
    later
        .iter()
        .any(|s| s.flags.fin)
        .then(|| later.iter().map(|s| s.len).sum())
}

pub fn perform(run: &mut Run) -> anyhow::Result<()> {
    block_on(async {
        let (mut client, mut server) = run.connect_tls().await?;
        server.write_all(b"response").await?;
        server.flush().await?;
        run.record_ok(Server, "tls.write_all(b\"response\").await");
        run.wait_packets("the response, acknowledged", |p| p.all_acked(Server))?;
        let since = run.segment_count()?;
        run.perform_async(Server, "tls.shutdown().await", server.shutdown())
            .await?;
        let mut response = Vec::new();
        let read = client.read_to_end(&mut response).await;
        run.call(Client, "tls.read_to_end(&mut response).await", &read);
        let claim = "read_to_end returns the response's 8 bytes: the stream ended cleanly";
        run.check_ok(claim, &read, 8);
        let again = client.read(&mut [0u8; 64]).await;
        run.call(Client, "tls.read(&mut buf).await", &again);
        run.check_ok("every later read returns Ok(0): the end of the stream", &again, 0);
        let claim = "shutdown() sends one 24-byte record (an encrypted alert: close_notify), then the FIN";
        run.check_packets_eq(claim, |p| {
            let sent = bytes_before_fin(p, Server, since);
            (
                crate::named!("bytes, then the FIN": sent),
                crate::named!("bytes, then the FIN": Some(ALERT_RECORD)),
            )
        })?;
        run.drop(Client, "drop(tls)", client);
        run.drop(Server, "drop(tls)", server);
        let claim = "the server closed first and keeps TIME_WAIT; the client's socket is gone";
        run.expect_states(claim, None, Some(State::TimeWait))?;
        run.wait_fin_acked(Client)?;

        run.check_segments(
            "no RST on the wire: both sides closed with a FIN",
            &[Client.sent(Rst, 0), Server.sent(Rst, 0)],
        )?;
        anyhow::Ok(())
    })?
}
