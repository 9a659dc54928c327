//! `tcpclose bench`: a short run checks what the costs chapter says of each
//! way of closing, and the chapter's table is the rendering of its data.
//! Runs in the lab's sandbox: each run needs a network namespace.

use std::path::Path;

use libtest_mimic::{Arguments, Failed, Trial};
use tcpclose::bench::{self, Report, Strategy, CONCURRENCY, STRATEGIES};

const CONNECTIONS: usize = 100;

fn main() {
    tcpclose::sandbox::enter();
    let args = Arguments::from_args();
    let trials = vec![
        Trial::test(
            "time_wait_stays_with_the_side_that_closes_first",
            time_wait_stays_with_the_side_that_closes_first,
        ),
        Trial::test("the_book_shows_its_data", the_book_shows_its_data),
    ];
    libtest_mimic::run(&args, trials).exit();
}

fn time_wait_stays_with_the_side_that_closes_first() -> Result<(), Failed> {
    let report = bench::bench(1, CONNECTIONS, |_| {})?;
    assert_eq!(report.rows.len(), STRATEGIES.len() * CONCURRENCY.len());
    for row in &report.rows {
        let m = &row.median;
        let expected = match row.strategy {
            Strategy::ClientFirst => (0, CONNECTIONS),
            Strategy::ServerFirst | Strategy::Lingering => (CONNECTIONS, 0),
            Strategy::ZeroLinger => (0, 0),
        };
        let what = format!("{:?} at {}: TIME_WAIT (server, client)", row.strategy, row.concurrency);
        assert_eq!((m.time_wait_server, m.time_wait_client), expected, "{what}");
        assert!(m.connections_per_second > 0.0, "{what}: {m:?}");
        assert!(
            m.p50_close_to_eof_us > 0.0 && m.p99_close_to_eof_us >= m.p50_close_to_eof_us,
            "{m:?}"
        );
    }
    Ok(())
}

fn the_book_shows_its_data() -> Result<(), Failed> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../src/bench");
    let json = std::fs::read_to_string(dir.join("results.json"))?;
    let report: Report = serde_json::from_str(&json)?;
    let shown = std::fs::read_to_string(dir.join("results.fragment"))?;
    let command = shown
        .split_once("with `")
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(command, _)| command)
        .ok_or("results.fragment names no command")?;
    if bench::markdown(&report, command) != shown {
        return Err("src/bench/results.fragment is not the rendering of results.json: run the command it names".into());
    }
    if tcpclose::plot::costs_svg(&report) != std::fs::read_to_string(dir.join("close-costs.svg"))? {
        return Err(
            "src/bench/close-costs.svg is not the plot of results.json: cargo run -- bless draws it again".into(),
        );
    }
    let rows: Vec<(Strategy, usize)> = report.rows.iter().map(|r| (r.strategy, r.concurrency)).collect();
    let every: Vec<(Strategy, usize)> = STRATEGIES
        .iter()
        .flat_map(|s| CONCURRENCY.iter().map(move |c| (*s, *c)))
        .collect();
    assert_eq!(rows, every);
    Ok(())
}
