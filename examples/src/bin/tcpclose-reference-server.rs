//! tcpclose-reference-server: a complete server that applies every rule of the
//! book's checklist. It answers each line a client sends with the same line
//! in upper case, and closes every connection correctly: on `Ok(0)`, on an
//! error, on a silent client, on a line too long. Only `std` and `socket2`.
//!
//!     cargo run -p tcpclose --bin tcpclose-reference-server -- 127.0.0.1:7878
//!     cargo run -p tcpclose --bin tcpclose-reference-client -- 127.0.0.1:7878 hello world
//!
//! Arguments: the address to listen on (default 127.0.0.1:7878; port 0
//! picks a free one) and how many seconds a client may stay silent
//! (default 30).

// ANCHOR: server
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use socket2::{SockRef, TcpKeepalive};

/// How long a write may wait for a client that does not read.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the lingering close waits for the client's FIN.
const LINGER: Duration = Duration::from_secs(2);
/// The longest line the server answers.
const MAX_LINE: usize = 1024;

const USAGE: &str = "usage: tcpclose-reference-server [ADDR] [IDLE_SECONDS]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("-h" | "--help") => {
            println!("Answers each line with the same line in upper case, and closes every connection as the book's checklist says.\n\n{USAGE}\n\nADDR: where to listen (default 127.0.0.1:7878; port 0 picks a free one)\nIDLE_SECONDS: how long a client may stay silent (default 30)");
            return ExitCode::SUCCESS;
        }
        Some("-V" | "--version") => {
            println!("tcpclose-reference-server {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    let addr = args.first().cloned().unwrap_or_else(|| "127.0.0.1:7878".into());
    let idle = match args.get(1).map(|s| s.parse::<f64>()) {
        None => Duration::from_secs(30),
        Some(Ok(secs)) if secs > 0.0 && secs < 1e6 && args.len() == 2 => Duration::from_secs_f64(secs),
        Some(_) => {
            eprintln!("tcpclose-reference-server: {USAGE}");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(&addr) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("tcpclose-reference-server: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        Ok(local) => println!("listening on {local}"),
        Err(e) => eprintln!("tcpclose-reference-server: {e}"),
    }
    serve(&listener, idle)
}

// ANCHOR: accept
/// Accepts for ever, one thread per connection.
fn serve(listener: &TcpListener, idle: Duration) -> ! {
    let mut backoff = Duration::from_millis(10);
    loop {
        match listener.accept() {
            Ok((stream, peer)) => {
                backoff = Duration::from_millis(10);
                // The thread owns the stream: when `handle` returns, the
                // stream is dropped, which closes it. Nothing else holds it.
                let spawned = thread::Builder::new().spawn(move || {
                    if let Err(e) = handle(stream, idle) {
                        eprintln!("{peer}: {e}");
                    }
                });
                if let Err(e) = spawned {
                    eprintln!("{peer}: no thread for it ({e}), closed");
                }
            }
            // Out of descriptors or memory, accept fails at once, again and
            // again, while the connection waits in the backlog: back off
            // instead of spinning, and keep serving.
            Err(e) if out_of_resources(&e) => {
                eprintln!("accept: {e}; retrying in {} ms", backoff.as_millis());
                thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
            // A client that gave up before accept (ECONNABORTED): go on.
            Err(e) => eprintln!("accept: {e}"),
        }
    }
}

fn out_of_resources(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}
// ANCHOR_END: accept

// ANCHOR: handle
/// Answers each line until the client's FIN, an error, a silence longer
/// than `idle` or a line too long, then closes without losing an answer.
fn handle(stream: TcpStream, idle: Duration) -> io::Result<()> {
    stream.set_read_timeout(Some(idle))?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    // A client whose machine vanished sends no FIN and no RST: keepalive
    // probes find it (here after 60 s idle, then 3 probes 10 s apart).
    let keepalive = TcpKeepalive::new()
        .with_time(Duration::from_secs(60))
        .with_interval(Duration::from_secs(10))
        .with_retries(3);
    SockRef::from(&stream).set_tcp_keepalive(&keepalive)?;

    let mut reader = BufReader::new(&stream);
    let mut writer = &stream;
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = (&mut reader).take(MAX_LINE as u64 + 1).read_until(b'\n', &mut line);
        match read {
            // The client's FIN: it will send nothing more. Every line has
            // been answered; close.
            Ok(0) => break,
            Ok(_) if line.len() > MAX_LINE => {
                writer.write_all(b"ERR line too long\n")?;
                break;
            }
            Ok(_) => {
                line.make_ascii_uppercase();
                if !line.ends_with(b"\n") {
                    line.push(b'\n');
                }
                writer.write_all(&line)?;
            }
            // Silent for longer than `idle`: close.
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            // Reset or broken: nothing can reach the client any more; the
            // stream is dropped on return.
            Err(e) => return Err(e),
        }
    }
    lingering_close(&stream)
}
// ANCHOR_END: handle

// ANCHOR: lingering_close
/// Ends our side with a FIN, then reads and discards what the client still
/// sends until its FIN, for at most `LINGER`. Closing with unread bytes
/// would send an RST, and the client could lose the answers still on
/// their way.
fn lingering_close(stream: &TcpStream) -> io::Result<()> {
    stream.shutdown(Shutdown::Write)?;
    let deadline = Instant::now() + LINGER;
    let mut sink = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        stream.set_read_timeout(Some(left))?;
        match (&*stream).read(&mut sink) {
            Ok(0) => return Ok(()),
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}
// ANCHOR_END: lingering_close
// ANCHOR_END: server
