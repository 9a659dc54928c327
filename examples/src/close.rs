//! Ways to close a stream, as the book recommends them.

use std::io::{self, Read};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

// ANCHOR: lingering_close
/// Closes `stream` so that the peer receives everything written to it:
/// sends the FIN with `shutdown(Write)`, reads and discards whatever the
/// peer still sends until its FIN (`Ok(0)`) or until `timeout`, then drops
/// the stream. Returns how many bytes were discarded.
///
/// Closing a socket that still has unread bytes makes Linux send an RST,
/// which destroys the data this side has not yet delivered (RFC 2525,
/// 2.17). Reading to the peer's FIN first leaves nothing unread, so the
/// close is a FIN. The peer must close within `timeout`; if it does not,
/// the function returns `ErrorKind::TimedOut` and the drop may still reset.
pub fn lingering_close(mut stream: TcpStream, timeout: Duration) -> io::Result<usize> {
    stream.shutdown(Shutdown::Write)?;
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 8192];
    let mut discarded = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the peer did not close in time",
            ));
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buf) {
            // The peer's FIN: nothing is left unread, the drop sends no RST.
            Ok(0) => return Ok(discarded),
            Ok(n) => discarded += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // The read timeout: loop to check the deadline.
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => continue,
            Err(e) => return Err(e),
        }
    }
}
// ANCHOR_END: lingering_close

// ANCHOR: lingering_close_async
/// [`lingering_close`] for a tokio stream: `shutdown().await` sends the
/// FIN, then whatever the peer still sends is read and discarded until its
/// FIN or until `timeout`, and the stream is dropped. Returns how many
/// bytes were discarded; `ErrorKind::TimedOut` if the peer did not close.
pub async fn lingering_close_async(mut stream: tokio::net::TcpStream, timeout: Duration) -> io::Result<usize> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.shutdown().await?;
    let drain = async {
        let mut buf = [0u8; 8192];
        let mut discarded = 0;
        loop {
            match stream.read(&mut buf).await? {
                // The peer's FIN: nothing is left unread, the drop sends no RST.
                0 => return Ok(discarded),
                n => discarded += n,
            }
        }
    };
    tokio::time::timeout(timeout, drain).await.unwrap_or_else(|_| {
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the peer did not close in time",
        ))
    })
}
// ANCHOR_END: lingering_close_async
