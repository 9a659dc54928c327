//! tcpclose-reference-client: a complete client for `tcpclose-reference-server` that applies
//! the book's rules. It sends each argument as a line, ends its side with a
//! FIN, prints every answer up to the server's FIN, and tells a complete
//! exchange from a cut one. Only `std`.
//!
//!     cargo run -p tcpclose --bin tcpclose-reference-client -- 127.0.0.1:7878 hello world

// ANCHOR: client
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait for the next bytes of an answer.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the whole exchange may take: a server that drips bytes never
/// lets a read time out.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest answer: the server's longest line, and its newline.
const MAX_ANSWER: usize = 1025;

const USAGE: &str = "usage: tcpclose-reference-client ADDR LINE...";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("-h" | "--help") => {
            println!("Sends each LINE to a tcpclose-reference-server, ends its side with a FIN, and prints every answer up to the server's FIN.\n\n{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some("-V" | "--version") => {
            println!("tcpclose-reference-client {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    let Some((addr, lines)) = args.split_first() else {
        eprintln!("tcpclose-reference-client: {USAGE}");
        return ExitCode::from(2);
    };
    let Ok(addr) = addr.parse::<SocketAddr>() else {
        eprintln!("tcpclose-reference-client: {addr:?} is not an address such as 127.0.0.1:7878");
        return ExitCode::from(2);
    };
    match exchange(addr, lines) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tcpclose-reference-client: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Sends the lines, then reads the answers to the end of the stream.
fn exchange(addr: SocketAddr, lines: &[String]) -> io::Result<()> {
    let stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot connect to {addr}: {e}")))?;
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let mut writer = &stream;
    for line in lines {
        writer.write_all(line.as_bytes())?;
        writer.write_all(b"\n")?;
    }
    // Half-close: our FIN tells the server that every line is sent; its
    // answers still come.
    stream.shutdown(Shutdown::Write)?;
    // One answer per line, each of bounded length, then the server's FIN:
    // a server that floods or never ends cannot hold the client.
    let mut reader = BufReader::new(Bounded {
        stream: &stream,
        deadline: Instant::now() + EXCHANGE_TIMEOUT,
    });
    let mut answer = Vec::new();
    for answers in 0..lines.len() {
        answer.clear();
        // A reset here means the answers after this point are lost.
        let cut =
            |e: io::Error| io::Error::new(e.kind(), format!("cut after {answers} of {} answers: {e}", lines.len()));
        let read = (&mut reader)
            .take(MAX_ANSWER as u64)
            .read_until(b'\n', &mut answer)
            .map_err(cut)?;
        if read == 0 {
            // Ok(0): the server's FIN came before every answer did.
            return Err(io::Error::other(format!(
                "the server closed after {answers} of {} answers",
                lines.len()
            )));
        }
        if !answer.ends_with(b"\n") {
            return Err(io::Error::other(format!(
                "answer {} is longer than {MAX_ANSWER} bytes or cut",
                answers + 1
            )));
        }
        print!("{}", String::from_utf8_lossy(&answer));
    }
    // Every answer came; the server's FIN ends the exchange.
    match reader.read(&mut [0u8; 1]) {
        Ok(0) => Ok(()),
        Ok(_) => Err(io::Error::other(format!(
            "the server sent more than {} answers",
            lines.len()
        ))),
        Err(e) => Err(io::Error::new(e.kind(), format!("no end after the answers: {e}"))),
    }
}

/// The stream, read within what is left of the exchange's time.
struct Bounded<'a> {
    stream: &'a TcpStream,
    deadline: Instant,
}

impl Read for Bounded<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "the exchange took too long"));
        }
        self.stream.set_read_timeout(Some(left.min(READ_TIMEOUT)))?;
        (&mut &*self.stream).read(buf)
    }
}
// ANCHOR_END: client
