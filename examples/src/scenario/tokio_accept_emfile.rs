//! `tokio-accept-emfile`: a tokio accept loop out of descriptors. With no
//! descriptor left, `accept().await` fails with EMFILE at once, again and
//! again, while the listener stays readable: a loop that logs and goes on
//! spins (tokio#3529, tokio#4782). A `Semaphore` whose permits leave
//! room under the limit keeps `accept` from ever failing: the connections
//! beyond it wait in the backlog until a permit is free.
//!
//! The limit (RLIMIT_NOFILE) belongs to the whole process: the scenario
//! runs alone, lowers it for its own time and restores it; the client
//! sockets are made before, so that only `accept` needs new descriptors.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::observe::{End, State};
use crate::scenario::{block_on, Run, Scenario};
use crate::transcript::Role::{Client, Server};

pub const SCENARIO: Scenario = Scenario {
    id: "tokio-accept-emfile",
    title: "tokio: an accept loop out of descriptors spins on EMFILE; a Semaphore keeps it under the limit",
    chapter: "async-accept-emfile.md#tokio-accept-emfile",
    alone: true,
    perform,
};

/// Descriptors the accept loop may take before the limit.
const ROOM: u64 = 4;
/// Clients: more than the room.
const CLIENTS: usize = 8;

/// Lowers RLIMIT_NOFILE to `open + room` for as long as it lives.
struct Limit {
    saved: libc::rlimit,
}

impl Limit {
    fn lower(room: u64) -> io::Result<Limit> {
        let lowest_free = std::fs::File::open("/dev/null")?.as_raw_fd() as u64;
        let mut saved = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit and setrlimit read and write the given structs.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut saved) != 0 {
                return Err(io::Error::last_os_error());
            }
            let lowered = libc::rlimit {
                rlim_cur: lowest_free + room,
                rlim_max: saved.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lowered) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(Limit { saved })
    }
}

impl Drop for Limit {
    fn drop(&mut self) {
        // SAFETY: restores the limit read in `lower`.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &self.saved) };
    }
}

/// Client sockets, made now, connected later.
fn clients(n: usize) -> io::Result<Vec<Socket>> {
    (0..n).map(|_| Socket::new(Domain::IPV4, Type::STREAM, None)).collect()
}

fn connect_all(clients: &[Socket], server: SocketAddr) -> io::Result<()> {
    clients.iter().try_for_each(|c| c.connect(&server.into()))
}

pub fn perform(run: &mut Run) -> anyhow::Result<()> {
    run.no_packets("many connections; the claims are about calls and counts");
    block_on(async {
        // The naive loop: accept, keep, and on an error log and go on.
        let listener = run.listen_tokio()?;
        let server = run.server_addr()?;
        let sockets = clients(CLIENTS)?;
        let limit = Limit::lower(ROOM)?;
        connect_all(&sockets, server)?;
        run.record_ok(Client, "8 clients connect; the server may open only 4 more descriptors");
        let mut kept = Vec::new();
        // Every accept has a deadline: a client that never comes, or a limit
        // that is never reached, stops the scenario instead of holding it.
        let deadline = crate::wait::DEFAULT_DEADLINE;
        let first = loop {
            match tokio::time::timeout(deadline, listener.accept()).await? {
                Ok((stream, _)) => kept.push(stream),
                Err(e) => break e,
            }
        };
        let failed: io::Result<()> = Err(first);
        run.call(
            Server,
            "loop { listener.accept().await }, keeping every stream",
            &failed,
        );
        let claim = "accept fails with EMFILE once the 4 descriptors are taken: errno";
        run.check_eq(
            claim,
            failed.as_ref().err().and_then(io::Error::raw_os_error),
            Some(libc::EMFILE),
        );
        run.check_eq("after accepting 4 connections", kept.len(), ROOM as usize);
        let start = Instant::now();
        let mut failures = 0u64;
        while start.elapsed() < Duration::from_millis(50) {
            if tokio::time::timeout(deadline, listener.accept()).await?.is_err() {
                failures += 1;
            }
        }
        let claim = "a loop that retries at once spins: accept().await fails again and again, in 50 ms";
        run.check_at_least(claim, failures, 100, "failures");
        drop(kept); // (a look at the socket table needs a descriptor too)
        let waiting = End {
            local: sockets[CLIENTS - 1].local_addr()?.as_socket().expect("an IPv4 address"),
            remote: server,
        };
        let claim = "meanwhile the clients not accepted wait in the backlog, ESTABLISHED";
        run.check_eq(claim, waiting.state()?, Some(State::Established));
        drop((sockets, listener));
        drop(limit);

        // The fix: a permit per connection, as many permits as there is room.
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let server = listener.local_addr()?;
        let sockets = clients(CLIENTS)?;
        let limit = Limit::lower(ROOM)?;
        connect_all(&sockets, server)?;
        let permits = Arc::new(Semaphore::new(ROOM as usize));
        let mut served = Vec::new();
        // Until no permit is left: a server's loop would then wait for one.
        while permits.available_permits() > 0 {
            let permit = tokio::time::timeout(deadline, Arc::clone(&permits).acquire_owned()).await?;
            let permit = permit.map_err(io::Error::other)?;
            let (stream, _) = tokio::time::timeout(deadline, listener.accept()).await??; // an error would stop the scenario
            served.push((stream, permit));
        }
        run.record(
            Server,
            "second server: loop { permits.acquire_owned().await; listener.accept().await }, 4 permits",
            "(waiting for a permit)".into(),
        );
        let claim = "with a Semaphore of 4 permits, accept never fails: connections accepted";
        run.check_eq(claim, served.len(), ROOM as usize);
        drop((served, sockets, listener));
        drop(limit);
        anyhow::Ok(())
    })?
}
