//! server: the article's server, in Rust, with the modes the book's
//! chapters need. It accepts connections one at a time and, for each,
//! either reads until the client closes and then does what `--on-eof` says,
//! or (`--respond`) answers the first bytes of a request and closes.
//!
//! Run it in one terminal and `client` in another, then look with `ss`:
//!
//!     cargo run -p tcpclose --bin tcpclose-server -- --on-eof leak
//!     cargo run -p tcpclose --bin tcpclose-client
//!     ss -tan '( sport = :8081 or dport = :8081 )'

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use socket2::SockRef;
use tcpclose::cli::{self, say};
use tcpclose::close::lingering_close;
use tcpclose::observe::End;
use tcpclose::transcript::outcome;

/// Accepts TCP connections (one at a time) and closes each in the way you
/// choose, so you can watch it with `ss` and tcpdump.
#[derive(Parser)]
#[command(name = "tcpclose-server", version)]
struct Args {
    /// Address to listen on (port 0 picks a free port, printed at start).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
    /// Read until the client closes (Ok(0)), then do this.
    #[arg(long, value_enum, default_value_t = OnEof::Close)]
    on_eof: OnEof,
    /// Instead of reading to the end: read once (the start of a request),
    /// write BYTES of response, then close as --close says.
    #[arg(long, value_name = "BYTES", conflicts_with = "on_eof")]
    respond: Option<usize>,
    /// With --respond: how to close after writing the response.
    #[arg(long, value_enum, default_value_t = CloseHow::Drop, requires = "respond")]
    close: CloseHow,
    /// Set SO_LINGER to SECS before closing (0: close with an RST).
    #[arg(long, value_name = "SECS", value_parser = cli::seconds)]
    linger: Option<Duration>,
    /// Pause SECS after accepting, before reading: the socket sits unread,
    /// so you can look at it with ss (the article's server slept 5 s).
    #[arg(long, value_name = "SECS", value_parser = cli::seconds)]
    hold: Option<Duration>,
    /// Close a connection whose client stays silent, or leaves the
    /// response unread, for SECS (a read or write timeout).
    #[arg(long, value_name = "SECS", value_parser = cli::positive_seconds, default_value = "30")]
    idle: Duration,
}

/// The first and the longest pause after `accept` fails for lack of descriptors.
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OnEof {
    /// Drop the stream: the server sends its FIN and the connection ends.
    Close,
    /// Keep the stream for ever: the socket stays CLOSE-WAIT, no FIN leaves.
    Leak,
    /// Write 1024 bytes twice: the first draws an RST, the second fails with BrokenPipe.
    Write,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CloseHow {
    /// drop(stream) at once, whatever is still unread (unread bytes: RST).
    Drop,
    /// shutdown(Write), read to the client's FIN (at most 5 s), then drop.
    Lingering,
}

pub fn main() -> ExitCode {
    let args: Args = cli::parse();
    match serve(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tcpclose-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: &Args) -> anyhow::Result<()> {
    let listener = TcpListener::bind(args.listen).with_context(|| format!("cannot listen on {}", args.listen))?;
    say(format!("listening on {}", listener.local_addr()?));
    let mut leaked = Vec::new();
    let mut pause = BACKOFF_START;
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(accepted) => {
                pause = BACKOFF_START;
                accepted
            }
            // Out of descriptors: retrying at once would fail again at once.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                say(format!("accept failed: {e}; pausing {} ms", pause.as_millis()));
                thread::sleep(pause); // backoff, not synchronisation
                pause = (pause * 2).min(BACKOFF_MAX);
                continue;
            }
            Err(e) => {
                say(format!("accept failed: {e}"));
                continue;
            }
        };
        say(format!("accepted {peer}"));
        // A client that never sends its FIN, or never reads, must not hold
        // this one-at-a-time server for ever.
        stream.set_read_timeout(Some(args.idle))?;
        stream.set_write_timeout(Some(args.idle))?;
        if let Some(hold) = args.hold {
            say(format!("{peer}: holding {} s before reading", hold.as_secs_f64()));
            thread::sleep(hold); // hold: for the person watching
        }
        let served = match args.respond {
            Some(bytes) => respond(stream, peer, bytes, args).map(|()| None),
            None => on_eof(stream, peer, args),
        };
        match served {
            Ok(Some(kept)) => leaked.push(kept),
            Ok(None) => {}
            Err(e) => say(format!("{peer}: {e:#}")),
        }
    }
}

/// Reads to the client's FIN, then closes, leaks or writes; returns the
/// stream when it is to be kept (leaked).
fn on_eof(mut stream: TcpStream, peer: SocketAddr, args: &Args) -> anyhow::Result<Option<TcpStream>> {
    if read_to_eof(&mut stream, peer).is_err() {
        return Ok(None);
    }
    match args.on_eof {
        OnEof::Close => close(stream, peer, args, "dropped the stream: FIN sent"),
        OnEof::Leak => {
            say(format!(
                "{peer}: keeping the stream: this socket stays CLOSE-WAIT until the server exits"
            ));
            Ok(Some(stream))
        }
        OnEof::Write => {
            let end = End {
                local: stream.local_addr()?,
                remote: peer,
            };
            let first = stream.write(&[0u8; 1024]);
            say(format!("{peer}: write(1024 bytes) -> {}", outcome(first.as_ref())));
            // The client answers the data with RST; the RST removes our socket.
            match end.wait_gone() {
                Ok(()) => say(format!(
                    "{peer}: the client answered with RST: the socket is gone from the table"
                )),
                Err(e) => say(format!("{peer}: no RST yet ({e})")),
            }
            let second = stream.write(&[0u8; 1024]);
            say(format!("{peer}: write(1024 bytes) -> {}", outcome(second.as_ref())));
            Ok(None)
        }
    }
}

/// Reads the start of a request, writes `bytes` of response, closes.
fn respond(mut stream: TcpStream, peer: SocketAddr, bytes: usize, args: &Args) -> anyhow::Result<()> {
    let first = stream.read(&mut [0u8; 1024]);
    say(format!("{peer}: read(1024 bytes) -> {}", outcome(first.as_ref())));
    let written = stream.write_all(&vec![b'r'; bytes]);
    say(format!(
        "{peer}: write_all({bytes} bytes) -> {}",
        outcome(written.as_ref())
    ));
    match args.close {
        CloseHow::Drop => {
            let unread = End {
                local: stream.local_addr()?,
                remote: peer,
            }
            .view()?
            .map_or(0, |v| v.recv_queue);
            let what = if unread > 0 {
                format!("dropped the stream with {unread} bytes unread: the kernel sends RST, not FIN")
            } else {
                "dropped the stream: FIN sent".to_string()
            };
            close(stream, peer, args, &what).map(|_| ())
        }
        CloseHow::Lingering => {
            set_linger(&stream, args)?;
            match lingering_close(stream, Duration::from_secs(5)) {
                Ok(discarded) => say(format!(
                    "{peer}: lingering close: FIN sent, {discarded} unread bytes discarded up to the client's FIN"
                )),
                Err(e) => say(format!("{peer}: lingering close -> Err({:?}) \"{e}\"", e.kind())),
            }
            Ok(())
        }
    }
}

/// Drops the stream after setting `--linger`, and says what that sent.
fn close(stream: TcpStream, peer: SocketAddr, args: &Args, what: &str) -> anyhow::Result<Option<TcpStream>> {
    set_linger(&stream, args)?;
    drop(stream);
    match args.linger {
        Some(linger) if linger.is_zero() => say(format!("{peer}: dropped the stream with SO_LINGER 0: RST sent")),
        _ => say(format!("{peer}: {what}")),
    }
    Ok(None)
}

fn set_linger(stream: &TcpStream, args: &Args) -> io::Result<()> {
    match args.linger {
        Some(linger) => SockRef::from(stream).set_linger(Some(linger)),
        None => Ok(()),
    }
}

/// Reads until `Ok(0)` or an error, and says how much arrived and which.
fn read_to_eof(stream: &mut TcpStream, peer: SocketAddr) -> io::Result<()> {
    let mut buf = [0u8; 64 * 1024];
    let mut total = 0;
    loop {
        match stream.read(&mut buf) {
            // Ok(0): the peer sent FIN; nothing more will arrive.
            Ok(0) => {
                say(format!(
                    "{peer}: read {total} bytes, then read -> Ok(0): the client closed its side (FIN)"
                ));
                return Ok(());
            }
            // Data: count it and keep reading.
            Ok(n) => total += n,
            // A signal interrupted the call: try again.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                say(format!(
                    "{peer}: read {total} bytes, then read -> Err({:?}) \"{e}\"",
                    e.kind()
                ));
                return Err(e);
            }
        }
    }
}
