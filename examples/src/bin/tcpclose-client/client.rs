//! client: the article's client, in Rust, with the modes the book's
//! chapters need. It connects, optionally sends, optionally reads the
//! answer, and closes: `drop` sends the FIN (or, with `--linger 0`, an RST).
//!
//!     cargo run -p tcpclose --bin tcpclose-client -- --connect 127.0.0.1:8081

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use socket2::SockRef;
use tcpclose::cli::{self, say};
use tcpclose::transcript::outcome;

/// Connects to a TCP server, sends, reads and closes as you choose: the
/// active closer of the article.
#[derive(Parser)]
#[command(name = "tcpclose-client", version)]
struct Args {
    /// Address of the server.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8081")]
    connect: SocketAddr,
    /// Send this text.
    #[arg(long, value_name = "TEXT")]
    send: Option<String>,
    /// Send BYTES bytes (blocks until the server has taken them, at most
    /// --timeout).
    #[arg(long, value_name = "BYTES")]
    send_bytes: Option<usize>,
    /// Write without blocking until the socket buffers are full (a server
    /// that does not read), and say how much was queued.
    #[arg(long)]
    fill: bool,
    /// Stay connected SECS after sending, before reading or closing.
    #[arg(long, value_name = "SECS", value_parser = cli::seconds)]
    hold: Option<Duration>,
    /// Read the answer until the server closes (Ok(0)) or an error.
    #[arg(long)]
    read: bool,
    /// Set SO_LINGER to SECS before closing (0: close with an RST), and
    /// say how long the close took.
    #[arg(long, value_name = "SECS", value_parser = cli::seconds)]
    linger: Option<Duration>,
    /// Give up, with an error, when connecting, a write, or reading the
    /// whole answer takes longer than SECS (a server that stays silent,
    /// stops reading, or never stops sending).
    #[arg(long, value_name = "SECS", value_parser = cli::positive_seconds, default_value = "30")]
    timeout: Duration,
    /// With --read: give up, with an error, once the answer is longer than
    /// BYTES (a server that never stops sending).
    #[arg(long, value_name = "BYTES", default_value_t = 16 * 1024 * 1024)]
    max_answer: usize,
}

pub fn main() -> ExitCode {
    let args: Args = cli::parse();
    match talk(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tcpclose-client: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn talk(args: &Args) -> anyhow::Result<()> {
    let mut stream = TcpStream::connect_timeout(&args.connect, args.timeout)
        .with_context(|| format!("cannot connect to {}", args.connect))?;
    stream.set_write_timeout(Some(args.timeout))?;
    say(format!("connected {} -> {}", stream.local_addr()?, args.connect));
    if let Some(text) = &args.send {
        let sent = stream.write_all(text.as_bytes());
        stuck(&sent, args.timeout)?;
        say(format!("write_all({} bytes) -> {}", text.len(), outcome(sent.as_ref())));
    }
    if let Some(bytes) = args.send_bytes {
        let sent = stream.write_all(&vec![b's'; bytes]);
        stuck(&sent, args.timeout)?;
        say(format!("write_all({bytes} bytes) -> {}", outcome(sent.as_ref())));
    }
    if args.fill {
        say(format!(
            "queued {} bytes without blocking; the buffers are full",
            fill(&stream)?
        ));
    }
    if let Some(hold) = args.hold {
        say(format!("holding {} s", hold.as_secs_f64()));
        thread::sleep(hold); // hold: for the person watching
    }
    let reset = args.read && !read_answer(&mut stream, args.timeout, args.max_answer)?;
    if let Some(linger) = args.linger {
        SockRef::from(&stream)
            .set_linger(Some(linger))
            .context("cannot set SO_LINGER")?;
    }
    let start = Instant::now();
    drop(stream);
    let took = start.elapsed().as_secs_f64();
    match args.linger {
        Some(linger) if linger.is_zero() => say(format!("closed with SO_LINGER 0: RST sent ({took:.2} s)")),
        Some(linger) => say(format!(
            "closed with SO_LINGER {} s: close took {took:.2} s",
            linger.as_secs_f64()
        )),
        None if reset => say("closed: nothing sent, the connection was already over".to_string()),
        None => say("closed: FIN sent".to_string()),
    }
    Ok(())
}

/// Writes without blocking until the kernel takes no more; returns the bytes queued.
fn fill(mut stream: &TcpStream) -> io::Result<usize> {
    stream.set_nonblocking(true)?;
    let chunk = vec![b'f'; 64 * 1024];
    let mut queued = 0;
    loop {
        match stream.write(&chunk) {
            Ok(n) => queued += n,
            // WouldBlock: the send buffer and the peer's window are full.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    stream.set_nonblocking(false)?;
    Ok(queued)
}

/// Fails when a write gave up at the write timeout: the server took no
/// more bytes.
fn stuck(sent: &io::Result<()>, timeout: Duration) -> anyhow::Result<()> {
    match sent {
        Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => Err(anyhow::anyhow!(
            "the server took no more bytes for {} s (--timeout)",
            timeout.as_secs_f64()
        )),
        _ => Ok(()),
    }
}

/// Reads until Ok(0) (returns true) or an error (false), and says which;
/// fails when the answer has not ended within `timeout`, or is longer than
/// `max_answer` bytes.
fn read_answer(stream: &mut TcpStream, timeout: Duration, max_answer: usize) -> anyhow::Result<bool> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let gave_up = |total| {
            anyhow::anyhow!(
                "the answer did not end within {} s (--timeout); read {total} bytes",
                timeout.as_secs_f64()
            )
        };
        if left.is_zero() {
            return Err(gave_up(total));
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buf) {
            Ok(0) => {
                say(format!(
                    "read {total} bytes, then read -> Ok(0): the server closed (FIN)"
                ));
                return Ok(true);
            }
            Ok(n) if total + n > max_answer => {
                anyhow::bail!("the answer is longer than {max_answer} bytes (--max-answer)")
            }
            Ok(n) => total += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                return Err(gave_up(total))
            }
            Err(e) => {
                say(format!("read {total} bytes, then read -> Err({:?}) \"{e}\"", e.kind()));
                return Ok(false);
            }
        }
    }
}
