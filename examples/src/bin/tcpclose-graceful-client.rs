//! tcpclose-graceful-client: loads a tcpclose-graceful-server with connections of three
//! kinds, and reports what each got once the server has stopped:
//! `--busy` connections each send a request and wait for its response,
//! `--idle` connections send nothing, `--stall` connections send half a
//! request and never the rest.
//!
//!     cargo run -p tcpclose --bin tcpclose-graceful-client -- --connect 127.0.0.1:8082 --busy 100 --idle 20 --stall 1

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tcpclose::cli::{self, say};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Opens connections to a tcpclose-graceful-server and says what each one got.
#[derive(Parser)]
#[command(name = "tcpclose-graceful-client", version)]
struct Args {
    /// The server's address.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8082")]
    connect: SocketAddr,
    /// Connections that send one request and wait for the response.
    #[arg(long, value_name = "N", default_value_t = 100)]
    busy: usize,
    /// Connections that send nothing.
    #[arg(long, value_name = "N", default_value_t = 20)]
    idle: usize,
    /// Connections that send half a request and never the rest.
    #[arg(long, value_name = "N", default_value_t = 1)]
    stall: usize,
    /// Give up, with an error, when the server has not ended every
    /// connection within SECS of the start (a server that stays silent or
    /// never stops sending).
    #[arg(long, value_name = "SECS", value_parser = cli::positive_seconds, default_value = "60")]
    timeout: std::time::Duration,
}

/// The longest answer read: a response is `done\n`; more is a server
/// that floods.
const MAX_ANSWER: usize = 1024;

/// What a connection got in the end.
#[derive(Debug, PartialEq, Eq)]
enum Ending {
    /// The whole response, then the end of the stream.
    Response,
    /// The end of the stream (or a reset) and no response.
    Closed,
}

fn main() -> ExitCode {
    let args: Args = cli::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tcpclose-graceful-client: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Reads until the end; what came back.
async fn answer(mut stream: TcpStream) -> std::io::Result<Ending> {
    let mut answer = Vec::new();
    let mut buf = [0u8; 64];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) if answer.len() + n > MAX_ANSWER => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("an answer longer than {MAX_ANSWER} bytes"),
                ))
            }
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => return Err(e),
        }
    }
    Ok(if answer == b"done\n" {
        Ending::Response
    } else {
        Ending::Closed
    })
}

fn run(args: &Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let within = |run| async move {
        tokio::time::timeout(args.timeout, run).await.unwrap_or_else(|_| {
            Err(anyhow::anyhow!(
                "the server had not ended every connection within {} s (--timeout)",
                args.timeout.as_secs_f64()
            ))
        })
    };
    runtime.block_on(within(async {
        let mut tasks = Vec::new();
        for (count, request, kind) in [
            (args.busy, &b"work\n"[..], "busy"),
            (args.idle, &b""[..], "idle"),
            (args.stall, &b"wo"[..], "stalled"),
        ] {
            for _ in 0..count {
                let mut stream = TcpStream::connect(args.connect)
                    .await
                    .with_context(|| format!("cannot connect to {}", args.connect))?;
                stream.write_all(request).await?;
                tasks.push((kind, tokio::spawn(answer(stream))));
            }
        }
        // Every connection is open and every request written.
        say(format!(
            "connected: {} busy, {} idle, {} stalled",
            args.busy, args.idle, args.stall
        ));
        let mut got = std::collections::BTreeMap::new();
        for (kind, task) in tasks {
            let ending = task.await??;
            *got.entry((kind, ending == Ending::Response)).or_insert(0usize) += 1;
        }
        let count = |kind, response| got.get(&(kind, response)).copied().unwrap_or(0);
        say(format!(
            "busy: {} responses of {}; idle: {} closed of {}; stalled: {} closed of {}",
            count("busy", true),
            args.busy,
            count("idle", false),
            args.idle,
            count("stalled", false),
            args.stall
        ));
        anyhow::Ok(())
    }))
}
