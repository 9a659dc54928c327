//! reference-client: a complete client for `reference-server` that applies
//! the book's rules. It sends each argument as a line, ends its side with a
//! FIN, prints every answer up to the server's FIN, and tells a complete
//! exchange from a cut one. Only `std`.
//!
//!     cargo run -p tcpclose --bin reference-client -- 127.0.0.1:7878 hello world

// ANCHOR: client
use std::io::{self, BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait for the next answer.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((addr, lines)) = args.split_first() else {
        eprintln!("reference-client: usage: reference-client ADDR LINE...");
        return ExitCode::from(2);
    };
    let Ok(addr) = addr.parse::<SocketAddr>() else {
        eprintln!("reference-client: {addr:?} is not an address such as 127.0.0.1:7878");
        return ExitCode::from(2);
    };
    match exchange(addr, lines) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("reference-client: {e}");
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
    let mut answers = 0;
    for answer in BufReader::new(&stream).lines() {
        // A reset here means the answers after this point are lost.
        let answer = answer
            .map_err(|e| io::Error::new(e.kind(), format!("cut after {answers} of {} answers: {e}", lines.len())))?;
        println!("{answer}");
        answers += 1;
    }
    // `lines` ended on Ok(0): the server's FIN. Did every answer come?
    if answers != lines.len() {
        return Err(io::Error::other(format!(
            "the server closed after {answers} of {} answers",
            lines.len()
        )));
    }
    Ok(())
}
// ANCHOR_END: client
