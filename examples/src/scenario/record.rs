//! The recorder: a scenario's run, the connection it makes, and what it
//! records of its calls, its states and its packets, each with the time it
//! happened. The checks a run makes are in `check.rs`.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};

use super::Options;
use crate::observe::{End, State};
use crate::runtime::to_tokio;
use crate::transcript::{CallResult, Role, Step, Transcript};
use crate::wire::{Capture, Segment};

/// The two ends of [`Run::connect_tls`].
pub type TlsClient = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;
pub type TlsServer = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;

/// A scenario in progress: records what happens and checks claims.
pub struct Run {
    pub(super) options: Options,
    /// `Err` holds why the scenario shares the machine's network namespace.
    pub(super) private: Result<(), String>,
    /// Whether the scenario paused for `--hold`.
    pub(super) held: bool,
    pub(super) capture: Result<Capture, String>,
    pub(super) transcript: Transcript,
}

impl Run {
    /// A run of scenario `id` that has recorded nothing yet; `private` is
    /// `Err(why)` when it shares the machine's network namespace.
    pub(super) fn new(id: &str, title: &str, options: &Options, private: Result<(), String>) -> Run {
        Run {
            options: options.clone(),
            private,
            held: false,
            capture: Err(if options.capture {
                "not started".into()
            } else {
                "capture not requested".into()
            }),
            transcript: Transcript::empty(id, title),
        }
    }

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

    /// [`Run::connect_tokio`] with TLS on it (rustls, a certificate made
    /// now), the handshake recorded and acknowledged: the client's
    /// Finished has a delayed ACK, which is let go out alone before
    /// anything is written.
    pub async fn connect_tls(&mut self) -> io::Result<(TlsClient, TlsServer)> {
        let (client, server) = self.connect_tokio()?;
        let (client, server) = crate::tls::Configs::new()?.handshake(client, server).await?;
        let connect = "TlsConnector::connect(\"localhost\", stream).await";
        self.record(Role::Client, connect, "Ok(tls)".into());
        self.record(Role::Server, "TlsAcceptor::accept(stream).await", "Ok(tls)".into());
        self.wait_packets("the handshake, acknowledged", |p| {
            p.all_acked(Role::Client) && p.all_acked(Role::Server)
        })?;
        Ok((client, server))
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
    pub(super) fn push_step(&mut self, step: Step) {
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
        self.push_performed(who, call, &result, started);
        result
    }

    /// [`Run::perform`] for a call that is awaited.
    pub async fn perform_async<T: std::fmt::Debug>(
        &mut self,
        who: Role,
        call: &str,
        f: impl std::future::Future<Output = io::Result<T>>,
    ) -> io::Result<T> {
        let started = std::time::SystemTime::now();
        let result = f.await;
        self.push_performed(who, call, &result, started);
        result
    }

    fn push_performed<T: std::fmt::Debug>(
        &mut self,
        who: Role,
        call: &str,
        result: &io::Result<T>,
        started: std::time::SystemTime,
    ) {
        self.push_step(Step::Call {
            who,
            call: call.into(),
            result: CallResult::of(result.as_ref()),
            started: Some(started),
        });
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

    /// Records a call the scenario made in its own way that returned
    /// `Ok(())`.
    pub fn record_ok(&mut self, who: Role, call: &str) {
        self.record(who, call, "Ok(())".into());
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
        let other = who.other();
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

    pub(super) fn finish(mut self, error: Option<String>) -> Transcript {
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
        let addr = self.addr(who);
        self.segments.iter().filter(move |s| s.src == addr)
    }

    /// The address `who` sends from.
    pub fn addr(&self, who: Role) -> SocketAddr {
        match who {
            Role::Client => self.client,
            Role::Server => self.server,
        }
    }

    /// Whether the other side acknowledged every byte (and FIN) `who` sent.
    pub fn all_acked(&self, who: Role) -> bool {
        let Some(first) = self.from(who).next() else {
            return false;
        };
        // The furthest sequence number `who` used (a SYN and a FIN count
        // one), measured from its first segment, as sequence numbers wrap.
        let end = self
            .from(who)
            .map(|s| s.seq.wrapping_add(s.len + u32::from(s.flags.syn || s.flags.fin)))
            .max_by_key(|end| end.wrapping_sub(first.seq));
        self.from(who.other()).any(|s| s.flags.ack && Some(s.ack) == end)
    }

    /// How many segments `who` sent that match `pick`.
    pub fn count(&self, who: Role, pick: impl Fn(&Segment) -> bool) -> usize {
        self.from(who).filter(|s| pick(s)).count()
    }
}
