//! The lingering-close experiment: many request/response exchanges over
//! loopback in which the server answers before it has read the whole
//! request, then closes. Counts the responses the clients did not get.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use serde::Serialize;

use crate::close::{lingering_close, lingering_close_async};

/// How the server closes after writing its response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum CloseStyle {
    /// `drop(stream)` at once, the request body still unread.
    Naive,
    /// [`lingering_close`]: shutdown(Write), read to EOF, drop.
    Lingering,
}

/// The request: a header the server reads, then a body it never reads.
pub const REQUEST_BODY: usize = 16 * 1024;
/// The response the server writes before closing.
pub const RESPONSE: usize = 256 * 1024;

/// What the clients saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub exchanges: usize,
    /// Exchanges in which the client received less than the whole response.
    pub incomplete: usize,
    /// Exchanges in which the client's read ended with `ConnectionReset`
    /// instead of `Ok(0)`.
    pub reset: usize,
}

/// Runs `exchanges` exchanges one after another, the server closing in
/// `style`. Binds 127.0.0.1 on a port the kernel picks.
pub fn run(exchanges: usize, style: CloseStyle) -> io::Result<Outcome> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server = thread::spawn(move || -> io::Result<()> {
        let response = vec![b'r'; RESPONSE];
        for _ in 0..exchanges {
            let (mut stream, _) = listener.accept()?;
            // Read the start of the request, as a server that answers from
            // the header alone does; the body stays unread.
            let _ = stream.read(&mut [0u8; 1024]);
            if stream.write_all(&response).is_err() {
                continue;
            }
            match style {
                CloseStyle::Naive => drop(stream),
                CloseStyle::Lingering => {
                    let _ = lingering_close(stream, Duration::from_secs(5));
                }
            }
        }
        Ok(())
    });

    let outcome = clients(addr, exchanges);
    server
        .join()
        .map_err(|_| io::Error::other("the experiment's server thread panicked"))??;
    outcome
}

/// The same experiment with a tokio server: the naive close drops the
/// stream, the lingering one awaits [`lingering_close_async`].
pub fn run_async(exchanges: usize, style: CloseStyle) -> io::Result<Outcome> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    let server = thread::spawn(move || -> io::Result<()> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        crate::runtime::block_on(async {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            let response = vec![b'r'; RESPONSE];
            for _ in 0..exchanges {
                let (mut stream, _) = listener.accept().await?;
                let _ = stream.read(&mut [0u8; 1024]).await;
                if stream.write_all(&response).await.is_err() {
                    continue;
                }
                match style {
                    CloseStyle::Naive => drop(stream),
                    CloseStyle::Lingering => {
                        let _ = lingering_close_async(stream, Duration::from_secs(5)).await;
                    }
                }
            }
            Ok(())
        })?
    });
    let outcome = clients(addr, exchanges);
    server
        .join()
        .map_err(|_| io::Error::other("the experiment's server thread panicked"))??;
    outcome
}

/// The clients: one exchange after another, each a careful client that
/// sends the whole request and reads whatever comes back.
fn clients(addr: std::net::SocketAddr, exchanges: usize) -> io::Result<Outcome> {
    let mut request = b"POST /upload HTTP/1.1\r\n\r\n".to_vec();
    request.resize(request.len() + REQUEST_BODY, b'b');
    let mut outcome = Outcome {
        exchanges,
        ..Outcome::default()
    };
    let mut buf = vec![0u8; 64 * 1024];
    for _ in 0..exchanges {
        let mut stream = TcpStream::connect(addr)?;
        // A careful client: even if sending fails, it reads what came back.
        let _ = stream.write_all(&request);
        let mut received = 0;
        let reset = loop {
            match stream.read(&mut buf) {
                Ok(0) => break false,
                Ok(n) => received += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break true,
            }
        };
        outcome.incomplete += usize::from(received < RESPONSE);
        outcome.reset += usize::from(reset);
    }
    Ok(outcome)
}
