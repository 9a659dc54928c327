//! `hyper-pool-race`: the keep-alive race as hyper's users meet it.
//! hyper-util's pooled client (what reqwest is built on) keeps an idle
//! connection for 90 s; the server closes connections idle for less. A
//! request written on the pooled connection just as the server's FIN
//! arrives fails with "connection closed before message completed". The
//! lab makes that moment happen every time (it holds the request's write
//! until the FIN has arrived), measures how often it happens by itself,
//! and checks the two fixes: a pool idle timeout below the server's, and
//! one retry of an idempotent request.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::observe::{End, State};
use crate::scenario::{block_on, Run, Scenario};
use crate::transcript::Role::{Client as ClientRole, Server};
use crate::transcript::SegmentKind::Rst;

pub const SCENARIO: Scenario = Scenario {
    id: "hyper-pool-race",
    title: "hyper-util's pool reuses a connection the server has just closed: \"connection closed before message completed\"",
    chapter: "http.md#hyper-pool-race",
    alone: false,
    perform,
};

/// The server closes connections idle this long (a proxy's keep-alive
/// timeout, shortened); the pool keeps them 90 s unless told otherwise.
const SERVER_IDLE: Duration = Duration::from_millis(300);
/// The fix: a pool idle timeout below the server's.
const POOL_IDLE: Duration = Duration::from_millis(100);
/// Requests sent by themselves, one every `RACE_IDLE`, for the frequency.
const REQUESTS: usize = 100;
const RACE_IDLE: Duration = Duration::from_millis(30);
const DEADLINE: Duration = Duration::from_secs(10);

/// The message a pooled request gets when the race is lost, as a log
/// line shows hyper-util's error and its source.
pub const LOST: &str = "client error (SendRequest): connection closed before message completed";

type Pooled = Client<Connector, Empty<Bytes>>;

/// Answers "OK" to each request; closes a connection idle for `idle`.
async fn serve(listener: tokio::net::TcpListener, idle: Duration) -> io::Result<()> {
    loop {
        let (mut stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            while let Ok(Ok(1..)) = tokio::time::timeout(idle, stream.read(&mut buf)).await {
                stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")
                    .await?;
            }
            io::Result::Ok(())
        });
    }
}

/// The server on a thread and a runtime of its own, so that the client's
/// thread may wait inside a write: `(its address, a handle that stops it)`.
fn start_server(listener: std::net::TcpListener, idle: Duration) -> io::Result<tokio::sync::oneshot::Sender<()>> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    listener.set_nonblocking(true)?;
    std::thread::Builder::new()
        .name("hyper-pool-race-server".into())
        .spawn(move || {
            crate::runtime::block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                tokio::select! {
                    served = serve(listener, idle) => served,
                    _ = stopped => Ok(()),
                }
            })
        })?;
    Ok(stop)
}

/// Connects to one server, counting connections; when `trap` is set, the
/// next write (the scenario arms it just before a request on a pooled
/// connection) waits until the server's FIN has reached that connection:
/// the race, lost.
#[derive(Clone)]
struct Connector {
    server: SocketAddr,
    trap: Arc<AtomicBool>,
    connections: Arc<AtomicUsize>,
    first_client: Arc<std::sync::OnceLock<SocketAddr>>,
}

impl Connector {
    fn new(server: SocketAddr) -> Connector {
        Connector {
            server,
            trap: Arc::default(),
            connections: Arc::default(),
            first_client: Arc::default(),
        }
    }
}

impl tower_service::Service<hyper::Uri> for Connector {
    type Response = Trapped;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Trapped>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: hyper::Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let stream = tokio::net::TcpStream::connect(this.server).await?;
            this.connections.fetch_add(1, SeqCst);
            let _ = this.first_client.set(stream.local_addr()?);
            let end = End {
                local: stream.local_addr()?,
                remote: this.server,
            };
            Ok(Trapped {
                io: TokioIo::new(stream),
                end,
                trap: this.trap,
            })
        })
    }
}

/// A pooled connection, with the trap of [`Connector`].
struct Trapped {
    io: TokioIo<tokio::net::TcpStream>,
    end: End,
    trap: Arc<AtomicBool>,
}

impl Connection for Trapped {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl hyper::rt::Read for Trapped {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Trapped {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.trap.swap(false, SeqCst) {
            // The lab's hold: this thread waits (the server runs on its own)
            // until the server's idle close has reached this connection.
            let end = self.end;
            crate::wait::until("the server's FIN", DEADLINE, || {
                Ok(end.state()?.filter(|s| *s == State::CloseWait))
            })?;
        }
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// A pooled client whose idle connections live `pool_idle`, or as long
/// as hyper-util's default (90 s).
fn pooled(connector: Connector, pool_idle: Option<Duration>) -> Pooled {
    let mut builder = Client::builder(TokioExecutor::new());
    builder.pool_timer(TokioTimer::new());
    if let Some(idle) = pool_idle {
        builder.pool_idle_timeout(idle);
    }
    builder.build(connector)
}

/// `GET /` and the response's body.
async fn get(client: &Pooled, server: SocketAddr) -> io::Result<String> {
    let uri: hyper::Uri = format!("http://{server}/").parse().map_err(io::Error::other)?;
    let response = client.get(uri).await.map_err(crate::http::error)?;
    let body = response.into_body().collect().await.map_err(crate::http::error)?;
    Ok(String::from_utf8_lossy(&body.to_bytes()).into_owned())
}

/// `GET /` again once, on a new connection, if the pooled one was closed
/// under it: safe only for an idempotent request.
async fn get_with_one_retry(client: &Pooled, server: SocketAddr) -> (io::Result<String>, usize) {
    match get(client, server).await {
        Err(e) if e.to_string() == LOST => (get(client, server).await, 2),
        done => (done, 1),
    }
}

pub fn perform(run: &mut Run) -> anyhow::Result<()> {
    let listener = run.listen()?;
    let server = run.server_addr()?;
    let stop = start_server(listener, SERVER_IDLE)?;
    run.record(
        Server,
        "server: answers requests, closes connections idle for 300 ms",
        "(running)".into(),
    );
    block_on(async {
        let connector = Connector::new(server);
        let client = pooled(connector.clone(), None);
        let first = get(&client, server).await;
        if let Some(addr) = connector.first_client.get() {
            run.set_client(*addr);
        }
        run.call(
            ClientRole,
            "client.get(uri).await (the default pool: idle connections kept 90 s)",
            &first,
        );
        run.check_ok(
            "the first request gets its response on a new connection",
            &first,
            "OK".into(),
        );
        connector.trap.store(true, SeqCst);
        let second = get(&client, server).await;
        run.call(
            ClientRole,
            "client.get(uri).await, written as the server's FIN arrives",
            &second,
        );
        let claim = "the request on the pooled connection fails: connection closed before message completed";
        run.check_err_text(claim, &second, io::ErrorKind::Other, LOST);
        run.check_eq(
            "no new connection was made for it",
            connector.connections.load(SeqCst),
            1,
        );
        anyhow::Ok(())
    })??;
    let claim = "the server's closed socket answered the request with an RST";
    run.check_segments(claim, &[Server.sent(Rst, 1)])?;
    let claim = "the RST ends both sockets: neither is left in the table";
    run.expect_states(claim, None, None)?;
    let _ = stop.send(());

    // The race by itself, and the fixes, against a server of their own (not captured).
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let server = listener.local_addr()?;
    let stop = start_server(listener, RACE_IDLE)?;
    block_on(async {
        let client = pooled(Connector::new(server), None);
        let mut results = Vec::new();
        for _ in 0..REQUESTS {
            results.push(get(&client, server).await);
            tokio::time::sleep(RACE_IDLE).await; // the client's idle time, the server's timeout
        }
        let lost = results.iter().filter(|r| r.is_err()).count();
        run.measured(
            "requests lost, of 100 sent one every 30 ms to a server closing after 30 ms idle",
            lost,
        );
        anyhow::Ok(())
    })??;
    let _ = stop.send(());

    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let server = listener.local_addr()?;
    let stop = start_server(listener, SERVER_IDLE)?;
    block_on(async {
        let connector = Connector::new(server);
        let client = pooled(connector.clone(), Some(POOL_IDLE));
        let first = get(&client, server).await;
        run.call(ClientRole, "pool idle timeout 100 ms: client.get(uri).await", &first);
        tokio::time::sleep(2 * POOL_IDLE).await; // idle longer than the pool's timeout, not the server's
        let second = get(&client, server).await;
        run.call(ClientRole, "200 ms later: client.get(uri).await", &second);
        let claim =
            "with the pool's idle timeout (100 ms) below the server's (300 ms), the request after 200 ms idle succeeds";
        run.check_ok(claim, &second, "OK".into());
        let claim = "on a new connection: the pool had retired the idle one";
        run.check_eq(claim, connector.connections.load(SeqCst), 2);

        let connector = Connector::new(server);
        let client = pooled(connector.clone(), None);
        let first = get(&client, server).await;
        run.call(ClientRole, "default pool: client.get(uri).await", &first);
        connector.trap.store(true, SeqCst);
        let (retried, attempts) = get_with_one_retry(&client, server).await;
        run.call(
            ClientRole,
            "get_with_one_retry(&client, uri).await, the race lost",
            &retried,
        );
        let claim = "retrying the idempotent request once, on that error, gets the response";
        run.check_ok(claim, &retried, "OK".into());
        let refused = {
            let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
            let client = pooled(Connector::new(closed), None);
            get_with_one_retry(&client, closed).await
        };
        run.call(
            ClientRole,
            "get_with_one_retry(..) to a port nobody listens on",
            &refused.0,
        );
        let claim = "a request that failed for another reason is not retried: one attempt";
        run.check_eq(claim, refused.1, 1);
        run.check_eq(
            "in two attempts, on two connections",
            crate::named!("attempts": attempts, "connections": connector.connections.load(SeqCst)),
            crate::named!("attempts": 2, "connections": 2),
        );
        anyhow::Ok(())
    })??;
    let _ = stop.send(());
    Ok(())
}
