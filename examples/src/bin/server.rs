//! server: the article's server, in Rust. It accepts connections, reads each
//! until the client closes, and then does what `--on-eof` says.
//!
//! Run it in one terminal and `client` in another, then look with `ss`:
//!
//!     cargo run -p tcpclose --bin server -- --on-eof leak
//!     cargo run -p tcpclose --bin client
//!     ss -tan '( sport = :8081 or dport = :8081 )'

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use tcpclose::cli;
use tcpclose::observe::End;
use tcpclose::transcript::outcome;

/// Accepts TCP connections and reads each until the client closes it, then
/// closes it, leaks it, or writes to it, so you can watch each case with
/// `ss` and tcpdump.
#[derive(Parser)]
#[command(name = "server", version)]
struct Args {
    /// Address to listen on (port 0 picks a free port, printed at start).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
    /// What to do once read returns Ok(0), the client's FIN.
    #[arg(long, value_enum, default_value_t = OnEof::Close)]
    on_eof: OnEof,
    /// With `write`: pause SECS before the first write, as the article's
    /// server slept, so you can see CLOSE-WAIT in ss first.
    #[arg(long, value_name = "SECS", value_parser = cli::seconds)]
    hold: Option<Duration>,
}

#[derive(Clone, Copy, ValueEnum)]
enum OnEof {
    /// Drop the stream: the server sends its FIN and the connection ends.
    Close,
    /// Keep the stream for ever: the socket stays CLOSE-WAIT, no FIN leaves.
    Leak,
    /// Write 1024 bytes twice: the first draws an RST, the second fails with BrokenPipe.
    Write,
}

fn main() -> ExitCode {
    let args: Args = cli::parse();
    match serve(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: &Args) -> anyhow::Result<()> {
    let listener = TcpListener::bind(args.listen).with_context(|| format!("cannot listen on {}", args.listen))?;
    say(format!("listening on {}", listener.local_addr()?));
    let mut leaked = Vec::new();
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                say(format!("accept failed: {e}"));
                continue;
            }
        };
        let peer = stream.peer_addr()?;
        say(format!("accepted {peer}"));
        match handle(stream, args) {
            Ok(Some(kept)) => leaked.push(kept),
            Ok(None) => {}
            Err(e) => say(format!("{peer}: {e:#}")),
        }
    }
    Ok(())
}

/// Serves one connection; returns the stream when it is to be kept (leaked).
fn handle(mut stream: TcpStream, args: &Args) -> anyhow::Result<Option<TcpStream>> {
    let peer = stream.peer_addr()?;
    read_to_eof(&mut stream, peer)?;
    match args.on_eof {
        OnEof::Close => {
            drop(stream);
            say(format!("{peer}: dropped the stream: FIN sent"));
            Ok(None)
        }
        OnEof::Leak => {
            say(format!(
                "{peer}: keeping the stream: this socket stays CLOSE-WAIT until the server exits"
            ));
            Ok(Some(stream))
        }
        OnEof::Write => {
            if let Some(hold) = args.hold {
                say(format!(
                    "{peer}: holding {} s before writing (look with ss: CLOSE-WAIT)",
                    hold.as_secs_f64()
                ));
                thread::sleep(hold); // hold: for the person watching
            }
            let end = End::of(&stream)?;
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

/// Reads until `Ok(0)`, printing what arrives.
fn read_to_eof(stream: &mut TcpStream, peer: SocketAddr) -> io::Result<()> {
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            // Ok(0): the peer sent FIN; nothing more will arrive.
            Ok(0) => {
                say(format!("{peer}: read -> Ok(0): the client closed its side (FIN)"));
                return Ok(());
            }
            // Data: show how much and keep reading.
            Ok(n) => say(format!("{peer}: read -> Ok({n})")),
            // A signal interrupted the call: try again.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

fn say(line: String) {
    let mut out = io::stdout().lock();
    // A closed stdout must not kill the server; ignore its errors.
    let _ = writeln!(out, "{line}").and_then(|_| out.flush());
}
