//! tcpclose-reference-https-client: a complete HTTPS client (hyper-util's pooled
//! client, the one reqwest is built on, over rustls) that applies the TLS
//! and HTTP rules of the book's checklist. It sends `GET` for each path,
//! one after another on the pool's connections, and prints each body.
//!
//!     cargo run -p tcpclose --bin tcpclose-reference-https-client -- 127.0.0.1:8443 server.der / /
//!
//! Arguments: the server's address, the server's certificate in DER (the
//! only one it trusts, for the name `localhost`), the paths, and with
//! `--pause SECONDS` how long to wait between requests (default 0).
//! Exits 0 when every request got its response, 1 otherwise, with one line
//! per failure on standard error.

// ANCHOR: client
use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use tcpclose::http::TlsConnector;

/// The pool keeps idle connections for less time than the reference
/// server keeps them (30 s by default), so it never reuses one the server
/// is closing.
const POOL_IDLE: Duration = Duration::from_secs(20);
/// How long connecting, the handshake, and each response may take.
const DEADLINE: Duration = Duration::from_secs(10);

type Pooled = Client<TlsConnector, Empty<Bytes>>;

/// An HTTPS client (hyper-util's pool over rustls) that applies the
/// book's TLS and HTTP rules: `GET` for each path, one after another, each
/// body printed.
#[derive(Parser)]
#[command(name = "tcpclose-reference-https-client", version)]
struct Args {
    /// The server's address.
    #[arg(value_name = "ADDR")]
    addr: SocketAddr,
    /// The server's certificate, in DER: the only one trusted, for the
    /// name `localhost`.
    #[arg(value_name = "CERT_FILE")]
    cert_file: String,
    /// The paths to get, each starting with `/`.
    #[arg(value_name = "PATH", required = true, value_parser = path)]
    paths: Vec<String>,
    /// How long to wait between requests, in seconds.
    #[arg(long, value_name = "SECONDS", default_value = "0", value_parser = tcpclose::cli::seconds)]
    pause: Duration,
}

fn path(text: &str) -> Result<String, String> {
    match text.starts_with('/') {
        true => Ok(text.to_string()),
        false => Err(format!("{text:?} is not a path: it starts with /")),
    }
}

fn main() -> ExitCode {
    let args: Args = tcpclose::cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("tcpclose-reference-https-client: no runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args.addr, &args.cert_file, &args.paths, args.pause)) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("tcpclose-reference-https-client: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Sends each request; returns how many failed.
async fn run(server: SocketAddr, cert_file: &str, paths: &[String], pause: Duration) -> io::Result<usize> {
    let certificate = std::fs::read(cert_file)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot read the certificate {cert_file}: {e}")))?;
    let config = tcpclose::tls::client_trusting(certificate.into())?;
    let connector = TlsConnector {
        server,
        config,
        deadline: DEADLINE,
    };
    let client: Pooled = Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(POOL_IDLE)
        .build(connector);
    let mut failed = 0;
    for (i, path) in paths.iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(pause).await; // the pause the user asked for
        }
        match get_with_one_retry(&client, server, path).await {
            Ok(body) => print!("{body}"),
            Err(e) => {
                eprintln!("GET {path}: {e}");
                failed += 1;
            }
        }
    }
    Ok(failed)
}

/// `GET path`, and its body. A `GET` is idempotent: when the pooled
/// connection was closed under the request, it is sent once more, on a
/// new connection.
async fn get_with_one_retry(client: &Pooled, server: SocketAddr, path: &str) -> io::Result<String> {
    match get(client, server, path).await {
        Err(e) if e.to_string().ends_with("connection closed before message completed") => {
            get(client, server, path).await
        }
        done => done,
    }
}

async fn get(client: &Pooled, server: SocketAddr, path: &str) -> io::Result<String> {
    let uri: hyper::Uri = format!("https://localhost:{}{path}", server.port())
        .parse()
        .map_err(io::Error::other)?;
    let response = async {
        let response = client.get(uri).await.map_err(tcpclose::http::error)?;
        let status = response.status();
        let body = response.into_body().collect().await.map_err(tcpclose::http::error)?;
        let body = String::from_utf8_lossy(&body.to_bytes()).into_owned();
        if status.is_success() {
            Ok(body)
        } else {
            Err(io::Error::other(format!("{status}: {}", body.trim_end())))
        }
    };
    tokio::time::timeout(DEADLINE, response).await?
}
// ANCHOR_END: client
