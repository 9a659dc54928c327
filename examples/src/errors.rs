//! The "Reading the errors" table as data: what a program sees, what
//! happened on the wire, what to do, and the checks of the lab that prove
//! the row and its advice on the reader's kernel. The book's page is
//! rendered from it ([`table`]), and the book's tests compare every row
//! with the checks it names.

use std::io::ErrorKind;

/// What a call returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    Ok(&'static str),
    /// An error kind and, when the kernel made it, its errno.
    Err(ErrorKind, Option<i32>),
    /// An errno that std gives no stable kind.
    Errno(i32),
    /// An error with no errno, known by its text: rustls' (with its
    /// kind), hyper's (`None`: a `hyper::Error`, recorded by the lab as
    /// kind `Other`).
    Text(Option<ErrorKind>, &'static str),
}

/// Where the error belongs in a service's logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Part of connections ending: a debug line, a counter.
    Routine,
    /// Something is wrong on this host or on the path: worth an alarm.
    Alarm,
}

/// One row of the table.
pub struct ErrorRow {
    /// The call, in Markdown: "`read`".
    pub call: &'static str,
    pub seen: Seen,
    pub wire: &'static str,
    pub advice: &'static str,
    /// Checks whose expectation is exactly `seen`.
    pub proofs: &'static [&'static str],
    /// Checks that prove the advice.
    pub advice_proofs: &'static [&'static str],
    /// A test on the errors page itself (its anchor), for rows no scenario
    /// produces.
    pub on_this_page: Option<&'static str>,
    /// Routine or worth an alarm, and why (its checks are the row's).
    pub level: (Level, &'static str),
}

/// Every row, in the page's order.
pub const ROWS: &[ErrorRow] = &[
    ErrorRow {
        call: "`read`",
        seen: Seen::Ok("0"),
        wire: "the peer sent a FIN: it will send nothing more",
        advice: "stop reading; finish writing if the protocol allows; drop the stream",
        proofs: &["eof-close-wait/read-returns-ok-0-the-client-s-fin-has"],
        advice_proofs: &["eof-close-wait/dropping-the-stream-closes-it-the-server-s-socket"],
        on_this_page: None,
        level: (Level::Routine, "the peer finished"),
    },
    ErrorRow {
        call: "`read_exact`",
        seen: Seen::Err(ErrorKind::UnexpectedEof, None),
        wire: "a FIN came before the bytes you asked for",
        advice: "the message is truncated: treat it as a protocol error",
        proofs: &[],
        advice_proofs: &[],
        on_this_page: Some("unexpectedeof-is-not-an-os-error"),
        level: (Level::Alarm, "a message was cut: a crashed peer or a protocol error"),
    },
    ErrorRow {
        call: "`write`",
        seen: Seen::Err(ErrorKind::BrokenPipe, Some(32)),
        wire: "the peer reset the connection after its FIN (an RST in CLOSE_WAIT), or you shut down writing yourself",
        advice: "stop writing, drop the stream: every later write fails the same way",
        proofs: &[
            "broken-pipe/the-second-write-fails-with-errorkind-brokenpipe-os-error",
            "use-after-close/the-clone-s-write-fails-with-errorkind-brokenpipe-os",
        ],
        advice_proofs: &["broken-pipe/every-later-write-fails-the-same-way"],
        on_this_page: None,
        level: (Level::Routine, "the peer left before your write"),
    },
    ErrorRow {
        call: "`read` or `write`",
        seen: Seen::Err(ErrorKind::ConnectionReset, Some(104)),
        wire: "an RST while ESTABLISHED: the peer closed with unread data, with a zero linger, or crashed",
        advice: "drop the stream; data may be missing; the next read returns `Ok(0)`",
        proofs: &[
            "unread-data-rst/then-its-read-fails-with-errorkind-connectionreset-os-error",
            "reset-while-reading/then-read-fails-with-errorkind-connectionreset-os-error-104",
            "linger-zero/the-server-s-read-fails-with-errorkind-connectionreset-os",
        ],
        advice_proofs: &[
            "unread-data-rst/the-rest-of-the-response-is-lost-bytes-the",
            "reset-while-reading/only-once-every-later-read-returns-ok-0",
        ],
        on_this_page: None,
        level: (Level::Routine, "a peer that left with unread data or crashed; many at once point at a proxy or a crash"),
    },
    ErrorRow {
        call: "any call",
        seen: Seen::Err(ErrorKind::ConnectionAborted, Some(103)),
        wire: "your own kernel destroyed the socket (here: `ss -K`); nothing came from the peer",
        advice: "drop the stream",
        proofs: &[],
        advice_proofs: &[],
        on_this_page: Some("connectionaborted-comes-from-your-own-side"),
        level: (Level::Alarm, "something on this host killed the socket"),
    },
    ErrorRow {
        call: "`connect`",
        seen: Seen::Err(ErrorKind::ConnectionRefused, Some(111)),
        wire: "the SYN was answered with an RST ACK: nobody listens",
        advice: "retry later with a backoff, or report",
        proofs: &["connect-refused/connect-fails-with-errorkind-connectionrefused-os-error-111"],
        advice_proofs: &[],
        on_this_page: None,
        level: (Level::Alarm, "the service you call is down"),
    },
    ErrorRow {
        call: "`read` or `write`",
        seen: Seen::Err(ErrorKind::TimedOut, Some(110)),
        wire: "keepalive probes, or data under `TCP_USER_TIMEOUT`, went unanswered: the kernel gave up on the peer and closed the socket",
        advice: "drop the stream: it is dead (a retried read gets only `Ok(0)`, a write `BrokenPipe`)",
        proofs: &[
            "keepalive-dead-peer/with-keepalive-the-blocked-read-fails-with-errorkind-timedout",
            "user-timeout/with-unacknowledged-data-tcp-user-timeout-ends-the-connection",
        ],
        advice_proofs: &[
            "keepalive-dead-peer/the-connection-is-dead-a-read-retried-after-timedout",
            "keepalive-dead-peer/and-a-write-fails-with-errorkind-brokenpipe-os-error",
        ],
        on_this_page: None,
        level: (Level::Alarm, "the peer or the path died"),
    },
    ErrorRow {
        call: "`read` after `set_read_timeout`",
        seen: Seen::Err(ErrorKind::WouldBlock, Some(11)),
        wire: "nothing arrived in time; on Linux the timeout is EAGAIN, not ETIMEDOUT",
        advice: "the connection lives on: read again, or end it by your own rule",
        proofs: &[],
        advice_proofs: &[],
        on_this_page: Some("a-read-timeout-is-wouldblock-and-the-connection-lives-on"),
        level: (Level::Routine, "your own timeout"),
    },
    ErrorRow {
        call: "`bind`",
        seen: Seen::Err(ErrorKind::AddrInUse, Some(98)),
        wire: "the port has sockets in TIME_WAIT, and the new socket lacks `SO_REUSEADDR`",
        advice: "`set_reuse_address(true)` before `bind` (std's `TcpListener::bind` does it)",
        proofs: &["rebind/a-socket2-socket-without-so-reuseaddr-cannot-bind-the"],
        advice_proofs: &[
            "rebind/with-set-reuse-address-true-it-binds-and-listens",
            "rebind/std-s-tcplistener-bind-succeeds-it-sets-so-reuseaddr",
        ],
        on_this_page: None,
        level: (Level::Alarm, "the server cannot start"),
    },
    ErrorRow {
        call: "`connect`",
        seen: Seen::Err(ErrorKind::AddrNotAvailable, Some(99)),
        wire: "no local port is free: TIME_WAIT sockets hold every port of `ip_local_port_range`",
        advice: "reuse connections instead of opening many short ones; `tcp_tw_reuse`",
        proofs: &["rebind/once-time-wait-holds-every-port-of-the-range"],
        advice_proofs: &["rebind/with-tcp-tw-reuse-connect-takes-over-a-port"],
        on_this_page: None,
        level: (Level::Alarm, "the host ran out of ports"),
    },
    ErrorRow {
        call: "`accept`",
        seen: Seen::Errno(24),
        wire: "nothing on the wire: the process ran out of descriptors, often to leaked CLOSE_WAIT sockets",
        advice: "back off before the next `accept`, and fix the leak; match on `raw_os_error()`: the kind is not a stable one",
        proofs: &["fd-exhaustion/then-accept-fails-with-emfile-too-many-open-files"],
        advice_proofs: &["fd-exhaustion/only-after-its-pause-100-ms-not-in-a"],
        on_this_page: None,
        level: (Level::Alarm, "descriptors leak, or the limit is too low"),
    },
    ErrorRow {
        call: "`shutdown` or `peer_addr`",
        seen: Seen::Err(ErrorKind::NotConnected, Some(107)),
        wire: "the connection is over (reset, or closed on both sides)",
        advice: "drop the stream",
        proofs: &["reset-while-reading/peer-addr-fails-with-errorkind-notconnected-os-error-107"],
        advice_proofs: &[],
        on_this_page: None,
        level: (Level::Routine, "the connection was already over"),
    },
    ErrorRow {
        call: "`read` on a rustls stream",
        seen: Seen::Text(
            Some(ErrorKind::UnexpectedEof),
            "peer closed connection without sending TLS close_notify: \
             https://docs.rs/rustls/latest/rustls/manual/_03_howto/index.html#unexpected-eof",
        ),
        wire: "a FIN with no close_notify before it: the peer dropped its TLS stream, crashed, or something cut the connection",
        advice: "after a complete message that carries its length, go on; when the close marks the message's end, the message is cut",
        proofs: &[
            "tls-truncation/over-tls-the-cut-shows-the-read-fails-with",
            "tls-truncation/every-later-read-fails-the-same-way",
        ],
        advice_proofs: &[
            "tls-truncation/with-content-length-the-client-knows-read-exact-of",
            "tls-truncation/over-plain-tcp-the-same-cut-reads-as-the",
        ],
        on_this_page: None,
        level: (Level::Routine, "after a complete message; an alarm when the close marks the message's end"),
    },
    ErrorRow {
        call: "hyper's `serve_connection`",
        seen: Seen::Text(None, "connection closed before message completed"),
        wire: "the client's FIN arrived before the response: it left, or it half-closed after its request",
        advice: "if your clients end their requests with a FIN, `half_close(true)`",
        proofs: &["hyper-half-close/hyper-ends-the-connection-with-incompletemessage-connection-closed-before"],
        advice_proofs: &["hyper-half-close/with-half-close-true-the-client-gets-its-response"],
        on_this_page: None,
        level: (Level::Routine, "a client that left mid-request"),
    },
    ErrorRow {
        call: "hyper-util's pooled `Client::request`",
        seen: Seen::Text(
            None,
            "client error (SendRequest): connection closed before message completed",
        ),
        wire: "the pooled connection was closed by the server as the request went out (its idle timeout): a FIN, then an RST",
        advice: "retry an idempotent request once; keep the pool's idle timeout below the server's",
        proofs: &["hyper-pool-race/the-request-on-the-pooled-connection-fails-connection-closed"],
        advice_proofs: &[
            "hyper-pool-race/retrying-the-idempotent-request-once-on-that-error-gets",
            "hyper-pool-race/with-the-pool-s-idle-timeout-100-ms-below",
        ],
        on_this_page: None,
        level: (Level::Routine, "when rare; often, the pool outlives the server's idle timeout"),
    },
    ErrorRow {
        call: "hyper's client connection",
        seen: Seen::Text(
            None,
            "error writing a body to connection: Broken pipe (os error 32)",
        ),
        wire: "the server answered before reading the body, then reset the connection",
        advice: "use the response the server sent: it arrived before the reset",
        proofs: &["hyper-early-reply/the-client-s-connection-ends-with-the-body-s"],
        advice_proofs: &["hyper-early-reply/the-client-gets-the-response-413-while-its-body"],
        on_this_page: None,
        level: (Level::Routine, "the server refused the body, with its reason in the response"),
    },
];

impl ErrorRow {
    /// The first column: "`write` → `BrokenPipe` (32)".
    pub fn sees(&self) -> String {
        match self.seen {
            Seen::Ok(value) => format!("{} → `Ok({value})`", self.call),
            Seen::Errno(errno) => format!("{} → os error {errno}", self.call),
            Seen::Err(kind, Some(errno)) => format!("{} → `{kind:?}` ({errno})", self.call),
            Seen::Err(kind, None) => format!("{} → `{kind:?}`", self.call),
            Seen::Text(Some(kind), text) => format!("{} → `{kind:?}`: \"{text}\"", self.call),
            Seen::Text(None, text) => format!("{} → \"{text}\"", self.call),
        }
    }
}

/// The table in Markdown, each proof a link to the chapter of its check.
pub fn table() -> String {
    let mut out = String::from(
        "<!-- Generated by the lab from tcpclose::errors: cargo run -- bless -->\n\n\
         | your program sees | what happened on the wire | what to do | in the logs | proof |\n|---|---|---|---|---|\n",
    );
    for row in ROWS {
        let mut links: Vec<String> = Vec::new();
        for id in row.proofs.iter().chain(row.advice_proofs) {
            let scenario = id.split('/').next().and_then(crate::scenario::find);
            if let Some(s) = scenario {
                let link = format!("[`{}`]({})", s.id, s.chapter);
                if !links.contains(&link) {
                    links.push(link);
                }
            }
        }
        if let Some(anchor) = row.on_this_page {
            links.push(format!("[below](#{anchor})"));
        }
        let level = match row.level {
            (Level::Routine, why) => format!("routine: {why}"),
            (Level::Alarm, why) => format!("**alarm**: {why}"),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {level} | {} |\n",
            row.sees(),
            row.wire,
            row.advice,
            links.join(", ")
        ));
    }
    out
}
