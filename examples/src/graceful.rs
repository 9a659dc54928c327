//! A tokio server that stops gracefully: when told to stop it accepts no
//! more connections, closes the idle ones at once, lets every request in
//! progress finish and its response reach the client, and after a grace
//! period cuts what is left. The `tcpclose-graceful-server` program runs it on
//! SIGTERM or SIGINT; the `tokio-graceful-shutdown` scenario in-process.
//!
//! The protocol: a request is one line; the server works on it for a
//! while, then answers `done\n`; a connection may carry several requests.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::timeout;

use crate::close::lingering_close_async;

/// How the server behaves.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// How long each request takes.
    pub work: Duration,
    /// After the stop, how long requests may take before they are cut.
    pub grace: Duration,
    /// How long a client may stay silent, take to send a request, or
    /// leave a response unread, before its connection is closed.
    pub idle: Duration,
}

/// The longest request line the server reads; a longer one closes the
/// connection.
pub const MAX_LINE: u64 = 1024;

/// What happened after the stop.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Requests in progress at the stop whose response was sent.
    pub finished: usize,
    /// Idle connections, closed at once.
    pub idle_closed: usize,
    /// Connections still busy when the grace period ran out, cut.
    pub cut: usize,
}

/// Counts of the connections in each state, shared with their tasks.
#[derive(Default)]
pub struct Counts {
    /// Connections accepted since the server started, to watch.
    pub accepted: watch::Sender<usize>,
    /// Requests started since the server started, to watch.
    pub started: watch::Sender<usize>,
    /// Requests being worked on now.
    pub in_progress: AtomicUsize,
    finished_after_stop: AtomicUsize,
    idle_closed: AtomicUsize,
}

// ANCHOR: serve
/// A server's stop: Ctrl-C, and on Unix SIGTERM too. The handlers are
/// installed by this call, before the future is polled, so that a signal
/// sent as soon as the server says it listens is not lost (or fatal).
/// Call it inside the runtime.
pub fn stop_signals() -> std::io::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
        })
    }
    #[cfg(windows)]
    {
        let mut ctrl_c = tokio::signal::windows::ctrl_c()?;
        Ok(async move {
            ctrl_c.recv().await;
        })
    }
}

/// Serves on `listener` until `stop` completes, then shuts down gracefully
/// (see the module's documentation). `counts` lets the caller watch.
pub async fn serve(
    listener: TcpListener,
    stop: impl Future<Output = ()>,
    settings: Settings,
    counts: Arc<Counts>,
) -> std::io::Result<Summary> {
    let (stopping, stopped) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => {
                let (stream, _) = accepted?;
                counts.accepted.send_modify(|accepted| *accepted += 1);
                connections.spawn(connection(stream, stopped.clone(), settings, Arc::clone(&counts)));
            }
        }
    }
    drop(listener); // no new connections: clients now get ECONNREFUSED
    stopping.send_replace(true);
    let deadline = tokio::time::sleep(settings.grace);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            next = connections.join_next() => if next.is_none() { break },
            () = &mut deadline => break,
        }
    }
    let cut = connections.len();
    connections.shutdown().await; // cut what is left: each task's stream is dropped
    Ok(Summary {
        finished: counts.finished_after_stop.load(Ordering::SeqCst),
        idle_closed: counts.idle_closed.load(Ordering::SeqCst),
        cut,
    })
}

/// Whether bytes (or the client's FIN) wait in the socket that the
/// runtime has not yet seen: a look at the kernel's queue, not at tokio's
/// cached readiness.
fn arrived(stream: &TcpStream) -> bool {
    let mut byte = [std::mem::MaybeUninit::new(0u8)];
    !matches!(
        socket2::SockRef::from(stream).peek(&mut byte),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
    )
}

/// One connection: requests one after another until the client closes,
/// stays silent for `settings.idle`, or the server stops while the
/// connection is idle.
async fn connection(stream: TcpStream, mut stopped: watch::Receiver<bool>, settings: Settings, counts: Arc<Counts>) {
    let mut stream = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        // Idle: wait for the first bytes of a request, or for the stop.
        let idle = tokio::select! {
            filled = stream.fill_buf() => filled.map(|bytes| bytes.is_empty()),
            _ = async { stopped.wait_for(|stop| *stop).await.map(|_| ()) } => Ok(stream.buffer().is_empty() && !arrived(stream.get_ref())),
            () = tokio::time::sleep(settings.idle) => break, // silent too long: close
        };
        match idle {
            Ok(true) if *stopped.borrow() => {
                counts.idle_closed.fetch_add(1, Ordering::SeqCst);
                break;
            }
            Ok(true) | Err(_) => return, // the client closed
            Ok(false) => {}
        }
        // Part of a request has come: the grace period is its to finish,
        // within the idle time and the longest line.
        let mut request = (&mut stream).take(MAX_LINE + 1);
        match timeout(settings.idle, request.read_line(&mut line)).await {
            Ok(Ok(0) | Err(_)) => return,
            Ok(Ok(_)) if line.len() as u64 > MAX_LINE => break, // too long: close
            Ok(Ok(_)) if !line.ends_with('\n') => return,       // the client closed mid-request
            Ok(Ok(_)) => {}
            Err(_) => break, // a request that never ends: close
        }
        // Busy: a stop now waits for the response.
        counts.in_progress.fetch_add(1, Ordering::SeqCst);
        counts.started.send_modify(|started| *started += 1);
        tokio::time::sleep(settings.work).await; // the request's work
                                                 // A client that does not read its responses is closed, not waited for.
        let answered = match timeout(settings.idle, stream.get_mut().write_all(b"done\n")).await {
            Ok(written) => written,
            Err(elapsed) => Err(elapsed.into()),
        };
        counts.in_progress.fetch_sub(1, Ordering::SeqCst);
        let stopping = *stopped.borrow();
        if stopping {
            if answered.is_ok() {
                counts.finished_after_stop.fetch_add(1, Ordering::SeqCst);
            }
            break; // one response after the stop, then close
        }
        if answered.is_err() {
            return;
        }
    }
    // Close without losing the response: FIN, read to the client's FIN.
    let _ = lingering_close_async(stream.into_inner(), Duration::from_secs(1)).await;
}
// ANCHOR_END: serve
