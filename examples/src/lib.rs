//! The TCP close lab: real sockets on loopback, observed through the
//! kernel's socket table ([`observe`]) and on the wire ([`wire`]), arranged
//! into the book's scenarios ([`scenario`]) whose runs produce
//! [`transcript`]s.

// Portable: what the book's programs for other systems use (TLS, HTTP,
// the graceful server, argument parsing, the lingering close).
pub mod cli;
pub mod close;
pub mod graceful;
pub mod http;
pub mod runtime;
pub mod tls;
pub mod wait;

// The lab itself: namespaces, sock_diag, packet capture, /proc. Linux's.
#[cfg(target_os = "linux")]
pub mod bench;
#[cfg(target_os = "linux")]
pub mod book;
#[cfg(target_os = "linux")]
pub mod claim;
#[cfg(target_os = "linux")]
pub mod diagram;
#[cfg(target_os = "linux")]
pub mod errors;
#[cfg(target_os = "linux")]
pub mod experiment;
#[cfg(target_os = "linux")]
pub mod hostile;
#[cfg(target_os = "linux")]
pub mod inspect;
#[cfg(target_os = "linux")]
pub mod netns;
#[cfg(target_os = "linux")]
pub mod observe;
#[cfg(target_os = "linux")]
pub mod plot;
#[cfg(target_os = "linux")]
pub mod proof;
#[cfg(target_os = "linux")]
pub mod sandbox;
#[cfg(target_os = "linux")]
pub mod scenario;
#[cfg(target_os = "linux")]
pub mod sockdiag;
#[cfg(target_os = "linux")]
pub mod sockopt;
#[cfg(target_os = "linux")]
pub mod state_diagram;
#[cfg(target_os = "linux")]
pub mod transcript;
#[cfg(target_os = "linux")]
pub mod wire;

use std::io;
use std::net::{TcpListener, TcpStream};

/// A connected pair over loopback, `(client, server)`: the listener binds
/// 127.0.0.1 on a port the kernel picks, and is closed before returning.
pub fn pair() -> io::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let client = TcpStream::connect(listener.local_addr()?)?;
    let (server, _) = listener.accept()?;
    Ok((client, server))
}
