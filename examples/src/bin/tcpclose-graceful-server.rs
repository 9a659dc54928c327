//! tcpclose-graceful-server: a tokio server that stops gracefully on SIGTERM or
//! SIGINT (Ctrl-C): it stops accepting, closes idle connections at once,
//! finishes the requests in progress, and cuts what is left after the
//! grace period. See tcpclose::graceful.
//!
//!     cargo run -p tcpclose --bin tcpclose-graceful-server -- --work-ms 1000
//!     cargo run -p tcpclose --bin tcpclose-graceful-client -- --busy 100 --idle 20
//!     kill -TERM <pid>    (or Ctrl-C)

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tcpclose::cli::{self, say};
use tcpclose::graceful::{serve, Counts, Settings};

/// A server that answers each request line with `done` after some work,
/// and stops gracefully on SIGTERM or SIGINT.
#[derive(Parser)]
#[command(name = "tcpclose-graceful-server", version)]
struct Args {
    /// Address to listen on (port 0 picks a free port, printed at start).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8082")]
    listen: SocketAddr,
    /// How long each request takes, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    work_ms: u64,
    /// After the stop, how long requests may take before they are cut, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    grace_ms: u64,
    /// How long a client may stay silent, take to send a request line, or
    /// leave a response unread before it is closed, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 30_000)]
    idle_ms: u64,
}

fn main() -> ExitCode {
    let args: Args = cli::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tcpclose-graceful-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let stop_signal = tcpclose::graceful::stop_signals()?;
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        say(format!("listening on {}", listener.local_addr()?));
        let counts = Arc::new(Counts::default());
        // Progress, for people and tests: the latest counts as they change.
        for (what, count) in [("accepted", &counts.accepted), ("started", &counts.started)] {
            let mut count = count.subscribe();
            tokio::spawn(async move {
                while count.changed().await.is_ok() {
                    let n = *count.borrow_and_update();
                    say(format!("{what}: {n}"));
                }
            });
        }
        let stop = {
            let counts = Arc::clone(&counts);
            async move {
                stop_signal.await;
                say(format!(
                    "stopping: accepting no more; {} requests in progress",
                    counts.in_progress.load(std::sync::atomic::Ordering::SeqCst)
                ));
            }
        };
        let settings = Settings {
            work: Duration::from_millis(args.work_ms),
            grace: Duration::from_millis(args.grace_ms),
            idle: Duration::from_millis(args.idle_ms),
        };
        let summary = serve(listener, stop, settings, counts).await?;
        say(format!(
            "stopped: {} responses after the stop, {} idle connections closed, {} cut at the deadline",
            summary.finished, summary.idle_closed, summary.cut
        ));
        anyhow::Ok(())
    })
}
