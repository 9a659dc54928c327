//! client: the article's client, in Rust. It connects, optionally sends a
//! line, and closes: `drop` sends the FIN.
//!
//!     cargo run -p tcpclose --bin client -- --connect 127.0.0.1:8081

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tcpclose::cli;

/// Connects to a TCP server and closes the connection at once (or after
/// sending a line, or after a pause): the active closer of the article.
#[derive(Parser)]
#[command(name = "client", version)]
struct Args {
    /// Address of the server.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8081")]
    connect: SocketAddr,
    /// Send this text before closing.
    #[arg(long, value_name = "TEXT")]
    send: Option<String>,
    /// Stay connected SECS before closing, to look at ESTABLISHED in ss.
    #[arg(long, value_name = "SECS", value_parser = cli::seconds)]
    hold: Option<Duration>,
}

fn main() -> ExitCode {
    let args: Args = cli::parse();
    match connect_and_close(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("client: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn connect_and_close(args: &Args) -> anyhow::Result<()> {
    let mut stream = TcpStream::connect(args.connect).with_context(|| format!("cannot connect to {}", args.connect))?;
    println!("connected {} -> {}", stream.local_addr()?, args.connect);
    if let Some(text) = &args.send {
        stream.write_all(text.as_bytes()).context("cannot send")?;
        println!("sent {} bytes", text.len());
    }
    if let Some(hold) = args.hold {
        println!("holding {} s before closing", hold.as_secs_f64());
        io::stdout().flush()?;
        thread::sleep(hold); // hold: for the person watching
    }
    drop(stream);
    println!("closed: FIN sent");
    Ok(())
}
