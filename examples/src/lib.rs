//! The TCP close lab: real sockets on loopback, observed through the
//! kernel's socket table ([`observe`]) and on the wire ([`wire`]), arranged
//! into the book's scenarios ([`scenario`]) whose runs produce
//! [`transcript`]s.

pub mod bench;
pub mod book;
pub mod claim;
pub mod cli;
pub mod close;
pub mod diagram;
pub mod errors;
pub mod experiment;
pub mod graceful;
pub mod http;
pub mod hostile;
pub mod inspect;
pub mod netns;
pub mod observe;
pub mod plot;
pub mod proof;
pub mod runtime;
pub mod sandbox;
pub mod scenario;
pub mod sockdiag;
pub mod sockopt;
pub mod tls;
pub mod state_diagram;
pub mod transcript;
pub mod wait;
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
