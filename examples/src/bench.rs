//! `tcpclose bench`: what each way of closing costs, on loopback. Clients
//! make connections that carry one small request and one small response,
//! then close in the way under test; each run has a network namespace of
//! its own, so that the TIME_WAIT sockets it leaves are its own to count.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use socket2::SockRef;

use crate::close::lingering_close;
use crate::inspect::table;
use crate::observe::State;

/// A way of closing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// The client drops after the response; the server drops at its Ok(0).
    ClientFirst,
    /// The server drops after writing the response; the client reads to Ok(0).
    ServerFirst,
    /// The server aborts after writing the response: zero linger, an RST.
    ZeroLinger,
    /// The server shuts down writing, reads to the client's FIN, drops.
    Lingering,
}

pub const STRATEGIES: [Strategy; 4] = [
    Strategy::ClientFirst,
    Strategy::ServerFirst,
    Strategy::ZeroLinger,
    Strategy::Lingering,
];

pub const CONCURRENCY: [usize; 3] = [1, 8, 64];

impl Strategy {
    pub fn name(self) -> &'static str {
        match self {
            Strategy::ClientFirst => "client closes first",
            Strategy::ServerFirst => "server closes first",
            Strategy::ZeroLinger => "zero linger (RST)",
            Strategy::Lingering => "lingering close",
        }
    }
}

const REQUEST: &[u8] = &[b'q'; 100];
const RESPONSE: &[u8] = &[b'r'; 100];

/// What one run measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Run {
    pub connections_per_second: f64,
    /// From the first side's close to the other side's read seeing the end
    /// (`Ok(0)`, or the reset), in microseconds.
    pub p50_close_to_eof_us: f64,
    pub p99_close_to_eof_us: f64,
    pub time_wait_server: usize,
    pub time_wait_client: usize,
    /// CPU time of the process (user and system) per connection, in µs.
    pub cpu_us_per_connection: f64,
}

/// The median of several runs of one strategy at one concurrency, with
/// the smallest and largest value of each figure.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Row {
    pub strategy: Strategy,
    pub concurrency: usize,
    pub runs: Vec<Run>,
    pub median: Run,
}

/// The whole benchmark, and where it ran.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub machine: String,
    pub date: String,
    pub kernel: String,
    pub cpus: usize,
    pub connections_per_run: usize,
    pub rows: Vec<Row>,
}

/// Runs every strategy at every concurrency, `runs` times, each run with
/// `connections` connections; `progress` hears about each run as it starts.
pub fn bench(runs: usize, connections: usize, mut progress: impl FnMut(&str)) -> io::Result<Report> {
    let mut rows = Vec::new();
    let total = STRATEGIES.len() * CONCURRENCY.len() * runs;
    let mut done = 0;
    for strategy in STRATEGIES {
        for concurrency in CONCURRENCY {
            let mut measured = Vec::new();
            for _ in 0..runs {
                done += 1;
                progress(&format!(
                    "run {done} of {total}: {}, {concurrency} at a time",
                    strategy.name()
                ));
                measured.push(crate::netns::isolated(|| one_run(strategy, concurrency, connections))??);
            }
            let median = median_run(&measured);
            rows.push(Row {
                strategy,
                concurrency,
                runs: measured,
                median,
            });
        }
    }
    Ok(Report {
        machine: machine(),
        date: today(),
        kernel: crate::transcript::kernel_release(),
        cpus: thread::available_parallelism().map_or(1, |n| n.get()),
        connections_per_run: connections,
        rows,
    })
}

/// Instants by the client's port: when a side closed, when the other saw it.
type Instants = Mutex<HashMap<u16, Instant>>;

/// One run, in the calling thread's network namespace.
fn one_run(strategy: Strategy, concurrency: usize, connections: usize) -> io::Result<Run> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let server = listener.local_addr()?;
    let (closes, ends): (Instants, Instants) = Default::default();
    // Worker i makes (and accepts) its share; the first few one more.
    let share = |i: usize| connections / concurrency + usize::from(i < connections % concurrency);
    let cpu_before = cpu_time();
    let start = Instant::now();
    thread::scope(|scope| -> io::Result<()> {
        let mut workers = Vec::new();
        for i in 0..concurrency {
            let (listener, closes, ends) = (&listener, &closes, &ends);
            workers.push(scope.spawn(move || -> io::Result<()> {
                for _ in 0..share(i) {
                    let (stream, client) = listener.accept()?;
                    serve(stream, strategy, client.port(), (closes, ends))?;
                }
                Ok(())
            }));
            workers.push(scope.spawn(move || -> io::Result<()> {
                for _ in 0..share(i) {
                    exchange(server, strategy, (closes, ends))?;
                }
                Ok(())
            }));
        }
        for worker in workers {
            worker
                .join()
                .map_err(|_| io::Error::other("a benchmark thread panicked"))??;
        }
        Ok(())
    })?;
    let elapsed = start.elapsed();
    let cpu = cpu_time().saturating_sub(cpu_before);
    let made = connections;
    let ends = ends.into_inner().unwrap_or_else(PoisonError::into_inner);
    let mut latencies: Vec<Duration> = closes
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .filter_map(|(port, closed)| Some(ends.get(port)?.saturating_duration_since(*closed)))
        .collect();
    latencies.sort_unstable();
    let (time_wait_server, time_wait_client) = time_wait(server)?;
    Ok(Run {
        connections_per_second: made as f64 / elapsed.as_secs_f64(),
        p50_close_to_eof_us: percentile(&latencies, 0.50),
        p99_close_to_eof_us: percentile(&latencies, 0.99),
        time_wait_server,
        time_wait_client,
        cpu_us_per_connection: cpu.as_secs_f64() * 1e6 / made as f64,
    })
}

fn note(instants: &Instants, port: u16) {
    let now = Instant::now();
    instants
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(port, now);
}

/// Reads until the end of the stream: `Ok(0)`, or the peer's reset.
fn read_to_end(stream: &mut TcpStream) -> io::Result<()> {
    let mut rest = [0u8; 64];
    loop {
        match stream.read(&mut rest) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// The server's side of one connection with the client at port `client`.
fn serve(
    mut stream: TcpStream,
    strategy: Strategy,
    client: u16,
    (closes, ends): (&Instants, &Instants),
) -> io::Result<()> {
    let mut request = [0u8; 100];
    stream.read_exact(&mut request)?;
    stream.write_all(RESPONSE)?;
    match strategy {
        Strategy::ClientFirst => {
            read_to_end(&mut stream)?;
            note(ends, client);
        }
        Strategy::ServerFirst => note(closes, client),
        Strategy::ZeroLinger => {
            SockRef::from(&stream).set_linger(Some(Duration::ZERO))?;
            note(closes, client);
        }
        Strategy::Lingering => {
            note(closes, client);
            lingering_close(stream, Duration::from_secs(5))?;
        }
    }
    Ok(())
}

/// The client's side of one connection.
fn exchange(server: SocketAddr, strategy: Strategy, (closes, ends): (&Instants, &Instants)) -> io::Result<()> {
    let mut stream = TcpStream::connect(server)?;
    let port = stream.local_addr()?.port();
    stream.write_all(REQUEST)?;
    let mut response = [0u8; 100];
    stream.read_exact(&mut response)?;
    match strategy {
        Strategy::ClientFirst => note(closes, port),
        Strategy::ServerFirst | Strategy::ZeroLinger | Strategy::Lingering => {
            read_to_end(&mut stream)?;
            note(ends, port);
        }
    }
    Ok(())
}

/// TIME_WAIT sockets in this namespace: on the server's port, and on others.
fn time_wait(server: SocketAddr) -> io::Result<(usize, usize)> {
    let rows = table(Path::new("/proc/thread-self/net/tcp"))?;
    let waiting = rows.iter().filter(|r| r.state == State::TimeWait);
    let (on_server, on_client): (Vec<_>, Vec<_>) = waiting.partition(|r| r.local == server);
    Ok((on_server.len(), on_client.len()))
}

/// The process's CPU time, user and system.
fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// The value below which `fraction` of the sorted `values` lie, in µs.
fn percentile(values: &[Duration], fraction: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let index = ((values.len() - 1) as f64 * fraction).round() as usize;
    values[index].as_secs_f64() * 1e6
}

/// Each figure's median over the runs.
fn median_run(runs: &[Run]) -> Run {
    let median = |f: &dyn Fn(&Run) -> f64| {
        let mut values: Vec<f64> = runs.iter().map(f).collect();
        values.sort_by(f64::total_cmp);
        values.get(values.len() / 2).copied().unwrap_or(0.0)
    };
    Run {
        connections_per_second: median(&|r| r.connections_per_second),
        p50_close_to_eof_us: median(&|r| r.p50_close_to_eof_us),
        p99_close_to_eof_us: median(&|r| r.p99_close_to_eof_us),
        time_wait_server: median(&|r| r.time_wait_server as f64) as usize,
        time_wait_client: median(&|r| r.time_wait_client as f64) as usize,
        cpu_us_per_connection: median(&|r| r.cpu_us_per_connection),
    }
}

/// The report as the book's table: one row per strategy and concurrency,
/// each figure the median of the runs, the range of connections per second
/// beside it.
pub fn markdown(report: &Report, command: &str) -> String {
    let (machine, date) = (&report.machine, &report.date);
    let mut out = format!(
        "Measured on {machine} ({} CPUs), Linux {}, on {date}, with `{command}`. \
         Each figure is the median of {} runs of {} connections.\n\n",
        report.cpus,
        report.kernel,
        report.rows.first().map_or(0, |r| r.runs.len()),
        report.connections_per_run
    );
    out.push_str("| closing | at a time | connections/s (range) | close → EOF p50 / p99 (µs) | TIME_WAIT server / client | CPU µs per connection |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|\n");
    for row in &report.rows {
        let per_second: Vec<f64> = row.runs.iter().map(|r| r.connections_per_second).collect();
        let low = per_second.iter().copied().fold(f64::INFINITY, f64::min);
        let high = per_second.iter().copied().fold(0.0, f64::max);
        let m = &row.median;
        out.push_str(&format!(
            "| {} | {} | {:.0} ({:.0}–{:.0}) | {:.0} / {:.0} | {} / {} | {:.0} |\n",
            row.strategy.name(),
            row.concurrency,
            m.connections_per_second,
            low,
            high,
            m.p50_close_to_eof_us,
            m.p99_close_to_eof_us,
            m.time_wait_server,
            m.time_wait_client,
            m.cpu_us_per_connection
        ));
    }
    out
}

/// The machine's processor, as /proc/cpuinfo names it.
pub fn machine() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_else(|| "an unnamed processor".into())
}

/// Today's date in UTC, `YYYY-MM-DD`.
pub fn today() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_medians_pick_the_middle() {
        let ms = |n: u64| Duration::from_millis(n);
        let values = [ms(1), ms(2), ms(3), ms(4), ms(100)];
        assert_eq!(percentile(&values, 0.5), 3000.0);
        assert_eq!(percentile(&values, 0.99), 100_000.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
        let run = |per_second| Run {
            connections_per_second: per_second,
            p50_close_to_eof_us: 0.0,
            p99_close_to_eof_us: 0.0,
            time_wait_server: 0,
            time_wait_client: 0,
            cpu_us_per_connection: 0.0,
        };
        assert_eq!(median_run(&[run(3.0), run(1.0), run(2.0)]).connections_per_second, 2.0);
    }

    #[test]
    fn today_is_a_date() {
        let date = today();
        assert_eq!(date.len(), 10, "{date}");
        assert!(date.starts_with("20"), "{date}");
    }
}
