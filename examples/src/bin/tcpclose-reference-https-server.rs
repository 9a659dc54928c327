//! tcpclose-reference-https-server: a complete HTTPS server (rustls through
//! tokio-rustls, hyper 1) that applies the TLS and HTTP rules of the
//! book's checklist. `GET /` answers "hello"; `GET /events` streams
//! server-sent events until the server stops. It ends every connection
//! with close_notify, answers clients that half-close, closes idle
//! connections, and stops gracefully on Ctrl-C or SIGTERM: streams are
//! told, connections get a grace period, then the rest are cut.
//!
//!     cargo run -p tcpclose --bin tcpclose-reference-https-server -- 127.0.0.1:8443 server.der
//!     cargo run -p tcpclose --bin tcpclose-reference-https-client -- 127.0.0.1:8443 server.der / /
//!
//! Arguments: the address to listen on (default 127.0.0.1:8443; port 0
//! picks a free one), the file to write the server's certificate to, in
//! DER, for clients to trust (default reference-https.der; a new
//! certificate for `localhost` is made at each start), and how many
//! seconds a connection may stay idle (default 30).

// ANCHOR: server
use std::convert::Infallible;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use hyper::server::conn::http1;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;

use tcpclose::http::{respond, Events};

/// How long a client may take to finish the TLS handshake (or the idle
/// time, if shorter).
const HANDSHAKE: Duration = Duration::from_secs(10);
/// How long a client may take to send a request's headers.
const HEADERS: Duration = Duration::from_secs(10);
/// How long the stop waits for connections before it cuts them.
const GRACE: Duration = Duration::from_secs(5);

/// An HTTPS server (rustls, hyper) that applies the book's TLS and HTTP
/// rules: `GET /` answers "hello", `GET /events` streams events until the
/// server stops (Ctrl-C or SIGTERM).
#[derive(Parser)]
#[command(name = "tcpclose-reference-https-server", version)]
struct Args {
    /// The address to listen on (port 0 picks a free one).
    #[arg(value_name = "ADDR", default_value = "127.0.0.1:8443")]
    addr: String,
    /// The file to write the server's certificate to, in DER, for clients
    /// to trust (a new certificate for `localhost` at each start).
    #[arg(value_name = "CERT_FILE", default_value = "reference-https.der")]
    cert_file: String,
    /// How long a connection may stay idle, in seconds.
    #[arg(value_name = "IDLE_SECONDS", default_value = "30", value_parser = tcpclose::cli::positive_seconds)]
    idle: Duration,
}

fn main() -> ExitCode {
    let args: Args = tcpclose::cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("tcpclose-reference-https-server: no runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&args.addr, &args.cert_file, args.idle)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tcpclose-reference-https-server: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(addr: &str, cert_file: &str, idle: Duration) -> std::io::Result<()> {
    let configs = tcpclose::tls::Configs::new()?;
    std::fs::write(cert_file, configs.certificate.as_ref())
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot write the certificate to {cert_file}: {e}")))?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
    let stop_signal = tcpclose::graceful::stop_signals()?;
    tokio::pin!(stop_signal);
    println!("listening on {}", listener.local_addr()?);
    let acceptor = TlsAcceptor::from(configs.server.clone());
    let (stop, stopped) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut backoff = Duration::from_millis(10);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    backoff = Duration::from_millis(10);
                    let (acceptor, stopped) = (acceptor.clone(), stopped.clone());
                    connections.spawn(async move {
                        if let Err(e) = connection(stream, acceptor, stopped, idle).await {
                            eprintln!("{peer}: {e}");
                        }
                    });
                }
                // Out of descriptors: back off instead of spinning.
                Err(e) => {
                    eprintln!("accept: {e}; retrying in {} ms", backoff.as_millis());
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            },
            // Reap finished connections, so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = &mut stop_signal => break,
        }
    }
    drop(listener);
    // Every connection hears the stop, and streams end themselves.
    let _ = stop.send(true);
    println!("stopping: {} connections", connections.len());
    if timeout(GRACE + Duration::from_secs(1), async {
        while connections.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        connections.abort_all();
    }
    Ok(())
}

// ANCHOR_END: server

// ANCHOR: connection
/// One connection: the handshake under a deadline, then HTTP/1.1 until the
/// client leaves, the connection stays idle for `idle`, or the server
/// stops. Every graceful end goes through hyper's shutdown of the TLS
/// stream: close_notify, then the FIN.
async fn connection(
    stream: TcpStream,
    acceptor: TlsAcceptor,
    mut stopped: watch::Receiver<bool>,
    idle: Duration,
) -> std::io::Result<()> {
    let tls = timeout(HANDSHAKE.min(idle), acceptor.accept(stream)).await??;
    let activity = Arc::new(Notify::new());
    let told = stopped.clone();
    let heard = activity.clone();
    let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
        heard.notify_one();
        let events = (request.uri().path() == "/events").then(|| Events::new(Some(told.clone())));
        async move {
            Ok::<_, Infallible>(match events {
                Some(events) => Response::new(http_body_util::Either::Left(events)),
                None => respond(200, b"hello\n").map(http_body_util::Either::Right),
            })
        }
    });
    let mut builder = http1::Builder::new();
    // A client may end its request with its FIN and still get the response.
    builder
        .half_close(true)
        .timer(TokioTimer::new())
        .header_read_timeout(HEADERS);
    let connection = builder.serve_connection(TokioIo::new(tls), service);
    tokio::pin!(connection);
    let mut closing = false;
    loop {
        tokio::select! {
            done = &mut connection => return done.map_err(tcpclose::http::error),
            // A request: the connection is not idle.
            _ = activity.notified() => {}
            // Idle, or the stop: finish what is in progress, then close
            // with close_notify and a FIN.
            _ = tokio::time::sleep(idle), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
            _ = stopped.changed() => {
                connection.as_mut().graceful_shutdown();
                // The grace period; then the drop cuts the connection.
                return match timeout(GRACE, connection).await {
                    Ok(done) => done.map_err(tcpclose::http::error),
                    Err(_) => Err(std::io::Error::other("cut at the end of the grace period")),
                };
            }
        }
    }
}
// ANCHOR_END: connection
