//! Async code in the lab: a tokio runtime of one thread, made on the
//! calling thread (a scenario's, in its network namespace), and std streams
//! moved into it.

use std::io;
use std::net::TcpStream;

/// A std stream as a tokio one; inside a tokio runtime.
pub fn to_tokio(stream: TcpStream) -> io::Result<tokio::net::TcpStream> {
    stream.set_nonblocking(true)?;
    tokio::net::TcpStream::from_std(stream)
}

/// Runs `future` to completion on a runtime of one thread, this thread's.
pub fn block_on<F: std::future::Future>(future: F) -> io::Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    Ok(runtime.block_on(future))
}
