//! HTTP/1.1 with hyper over the lab's streams: a server connection with a
//! handler, an event stream that ends when told to, and hyper's errors as
//! the `io::Error`s the lab records, with the text a log line shows.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::watch;

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

/// The event [`Events`] sends when told to stop.
pub const LAST_EVENT: &str = "event: bye\ndata: the server stops\n\n";

/// Server-sent events, one every 50 ms, until `stop` fires: then
/// [`LAST_EVENT`], and the end of the body.
pub struct Events {
    every: tokio::time::Interval,
    stop: Pin<Box<dyn Future<Output = ()> + Send + Sync>>,
    ended: bool,
}

impl Events {
    /// Events that end when `stop` changes, or never with `None`.
    pub fn new(stop: Option<watch::Receiver<bool>>) -> Events {
        let stop: Pin<Box<dyn Future<Output = ()> + Send + Sync>> = match stop {
            Some(mut stop) => Box::pin(async move {
                let _ = stop.changed().await;
            }),
            None => Box::pin(std::future::pending()),
        };
        Events {
            every: tokio::time::interval(std::time::Duration::from_millis(50)),
            stop,
            ended: false,
        }
    }
}

impl hyper::body::Body for Events {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        if self.stop.as_mut().poll(cx).is_ready() {
            self.ended = true;
            return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(LAST_EVENT.as_bytes())))));
        }
        match self.every.poll_tick(cx) {
            Poll::Ready(_) => Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"data: tick\n\n"))))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Connects hyper-util's pooled client to one server over TLS (the
/// handshake for `localhost`), each step under a deadline.
#[derive(Clone)]
pub struct TlsConnector {
    pub server: std::net::SocketAddr,
    pub config: std::sync::Arc<rustls::ClientConfig>,
    pub deadline: std::time::Duration,
}

impl tower_service::Service<hyper::Uri> for TlsConnector {
    type Response = TlsConnection;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<TlsConnection>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: hyper::Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let connecting = async {
                let stream = TcpStream::connect(this.server).await?;
                crate::tls::connect(this.config, stream).await
            };
            let tls = tokio::time::timeout(this.deadline, connecting).await??;
            Ok(TlsConnection(TokioIo::new(tls)))
        })
    }
}

/// A TLS stream as hyper-util's pool holds it.
pub struct TlsConnection(TokioIo<tokio_rustls::client::TlsStream<TcpStream>>);

impl hyper_util::client::legacy::connect::Connection for TlsConnection {
    fn connected(&self) -> hyper_util::client::legacy::connect::Connected {
        hyper_util::client::legacy::connect::Connected::new()
    }
}

impl hyper::rt::Read for TlsConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for TlsConnection {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
