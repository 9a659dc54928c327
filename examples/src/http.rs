//! HTTP/1.1 with hyper over the lab's streams: a server connection with a
//! handler, and hyper's errors as the `io::Error`s the lab records, with
//! the text a log line shows.

use std::convert::Infallible;
use std::future::Future;
use std::io;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// A response body held in memory.
pub type Body = Full<Bytes>;

/// An error as the lab records it: kind `Other`, and the message of the
/// error and of each of its sources, joined with ": " as a log line that
/// prints the chain shows it (`{:#}` in anyhow).
pub fn error(e: impl std::error::Error) -> io::Error {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    io::Error::other(text)
}

/// A response with this status and body.
pub fn respond(status: u16, body: &'static [u8]) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from_static(body)));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    response
}

/// Serves HTTP/1.1 on `stream` with `builder`'s settings until the
/// connection ends; `handle` answers each request.
pub async fn serve<F, R>(builder: hyper::server::conn::http1::Builder, stream: TcpStream, handle: F) -> io::Result<()>
where
    F: Fn(Request<Incoming>) -> R,
    R: Future<Output = Result<Response<Body>, Infallible>>,
{
    let service = hyper::service::service_fn(handle);
    builder
        .serve_connection(TokioIo::new(stream), service)
        .await
        .map_err(error)
}
