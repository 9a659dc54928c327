//! Every scenario of the lab, run once on this kernel inside the lab's
//! sandbox (no root needed): every claim must be checked and confirmed,
//! and what the book shows of the run (its transcript, its diagram, the
//! state-machine page) must be current.
//!
//! The tests are generated from `tcpclose::scenario::ALL`: a new scenario
//! is tested without an edit here. To regenerate the book's files after a
//! change: `cargo run -- bless`, then review the diff.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use libtest_mimic::{Arguments, Failed, Trial};
use tcpclose::scenario::{self, Options};
use tcpclose::transcript::{Check, Expected, RunOutcome, Transcript, Verdict};
use tcpclose::{book, diagram, sandbox};

const BLESS: &str = "regenerate with `cargo run -- bless` and review the diff";

fn main() {
    // First, while the process has one thread.
    let sandbox = sandbox::enter();
    let args = Arguments::from_args();
    let mut selected: Vec<_> = scenario::ALL
        .iter()
        .filter(|s| is_selected(&args, &trial_name(s.id)))
        .collect();
    // A filter that names no scenario selects a test about all of them.
    if selected.is_empty() {
        selected = scenario::ALL.iter().collect();
    }
    if let Some(mutated) = only_the_mutated_scenario() {
        selected = vec![mutated];
    }
    // A tokio runtime with signal support opens a socket pair once, for the
    // whole process, and keeps it: open it before counting.
    scenario::block_on(async {}).expect("a tokio runtime");
    // So does the socket that keeps the kernel stamping packets on arrival.
    tcpclose::wire::stamp_on_arrival().expect("a UDP socket on loopback");
    let descriptors_before = sandbox::open_descriptors().expect("/proc/self/fd");
    let limit_before = descriptor_limit();
    let transcripts = scenario::run_all(
        &selected,
        &Options {
            hold: None,
            capture: true,
        },
    );
    let descriptors_after = sandbox::open_descriptors().expect("/proc/self/fd");
    let limit_after = descriptor_limit();
    let descriptors_listed = descriptor_links();
    let children_after = child_processes();

    let checks: Vec<_> = transcripts.iter().flat_map(|t| &t.checks).collect();
    let checks_by_scenario: Vec<Vec<Check>> = transcripts.iter().map(|t| t.checks.clone()).collect();
    let on_the_wire = checks.iter().filter(|c| c.packets && c.verdict == Verdict::Confirmed);
    eprintln!(
        "scenarios: {} run in {sandbox}; {} of {} claims confirmed, {} of them about packets",
        transcripts.len(),
        checks.iter().filter(|c| c.verdict == Verdict::Confirmed).count(),
        checks.len(),
        on_the_wire.count()
    );

    // The state page and the errors table need every run at once.
    let all_ran = transcripts.len() == scenario::ALL.len();
    let state_page = all_ran.then(|| book::state_page(&transcripts));
    let mut trials: Vec<Trial> = transcripts
        .into_iter()
        .map(|t| {
            Trial::test(trial_name(&t.id.clone()), move || {
                scenario_holds_and_book_is_current(&t)
            })
        })
        .collect();
    trials.push(Trial::test("no_child_process_is_left_after_the_scenarios", move || {
        if !children_after.is_empty() {
            return Err(format!("child processes left running or unreaped: {children_after:?}").into());
        }
        Ok(())
    }));
    trials.push(Trial::test(
        "descriptors_are_all_closed_after_the_scenarios",
        move || {
            if descriptors_after > descriptors_before {
                return Err(format!(
                    "{descriptors_before} descriptors open before the scenarios, {descriptors_after} after: {descriptors_listed:?}"
                )
                .into());
            }
            Ok(())
        },
    ));
    // A scenario that lowers the process's descriptor limit (it runs
    // alone) must give it back: the scenarios after it share the process.
    trials.push(Trial::test(
        "the_descriptor_limit_is_restored_after_the_scenarios",
        move || {
            if limit_after != limit_before {
                return Err(format!(
                    "RLIMIT_NOFILE (soft, hard) was {limit_before:?} before the scenarios, {limit_after:?} after"
                )
                .into());
            }
            Ok(())
        },
    ));
    if let Some(page) = state_page {
        trials.push(Trial::test("state_machine_page_is_current", move || {
            let path = src().join(book::STATE_PAGE);
            if read(&path) != page {
                return Err(format!("{} is stale: {BLESS}", path.display()).into());
            }
            Ok(())
        }));
    }
    trials.push(Trial::test(
        "every_scenario_has_its_chapter_anchor_transcript_and_diagram",
        every_scenario_has_its_chapter,
    ));
    trials.push(Trial::test(
        "values_the_book_shows_satisfy_their_checks",
        values_the_book_shows_satisfy_their_checks,
    ));
    trials.push(Trial::test("generated_pages_are_current", generated_pages_are_current));
    trials.push(Trial::test(
        "every_listing_has_a_caption_of_its_own",
        every_listing_has_a_caption_of_its_own,
    ));
    if all_ran {
        let all_checks: Vec<Check> = checks_by_scenario.iter().flatten().cloned().collect();
        let marked_checks = all_checks.clone();
        trials.push(Trial::test("every_row_of_the_errors_table_is_proven", move || {
            every_row_of_the_errors_table_is_proven(&all_checks)
        }));
        trials.push(Trial::test("prose_markers_name_proofs_that_hold", move || {
            prose_markers_name_proofs_that_hold(&marked_checks)
        }));
    }
    trials.push(Trial::test("claims_agree_with_their_expectations", move || {
        claims_agree_with_their_expectations(&checks_by_scenario)
    }));
    libtest_mimic::run(&args, trials).exit();
}

/// This process's limit on open descriptors, soft and hard.
fn descriptor_limit() -> (u64, u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given.
    let read = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    assert_eq!(read, 0, "getrlimit: {}", std::io::Error::last_os_error());
    (limit.rlim_cur, limit.rlim_max)
}

/// What each open descriptor of this process refers to.
fn descriptor_links() -> Vec<String> {
    let entries = std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd");
    entries
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|link| link.to_string_lossy().into_owned())
        .collect()
}

/// The children of every thread of this process, running or not yet reaped.
fn child_processes() -> Vec<String> {
    let tasks = std::fs::read_dir("/proc/self/task").expect("/proc/self/task");
    tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|children| children.split_whitespace().map(String::from).collect::<Vec<_>>())
        .collect()
}

fn trial_name(id: &str) -> String {
    format!("scenario::{}", id.replace('-', "_"))
}

/// Under mutation testing, `.ci/run` names the unmutated tree in
/// `TCPCLOSE_PRISTINE_TREE`. A mutant in a scenario's own file can change
/// only that scenario's run, so only it runs; a mutant anywhere else (the
/// check engine, a helper several scenarios share) runs them all.
fn only_the_mutated_scenario() -> Option<&'static scenario::Scenario> {
    let pristine = PathBuf::from(std::env::var_os("TCPCLOSE_PRISTINE_TREE")?).join("examples/src");
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("../src");
    let mut files = Vec::new();
    rust_files(&here, Path::new(""), &mut files);
    let changed: Vec<PathBuf> = files
        .into_iter()
        .filter(|f| std::fs::read(here.join(f)).ok() != std::fs::read(pristine.join(f)).ok())
        .collect();
    let [one] = changed.as_slice() else { return None };
    scenario::ALL
        .iter()
        .find(|s| Path::new("scenario").join(format!("{}.rs", s.id.replace('-', "_"))) == *one)
}

/// The `.rs` files under `root/dir`, as paths relative to `root`.
fn rust_files(root: &Path, dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(root.join(dir)).into_iter().flatten().flatten() {
        let path = dir.join(entry.file_name());
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            rust_files(root, &path, found);
        } else if path.extension().is_some_and(|x| x == "rs") {
            found.push(path);
        }
    }
}

fn is_selected(args: &Arguments, name: &str) -> bool {
    match &args.filter {
        None => true,
        Some(filter) if args.exact => name == filter,
        Some(filter) => name.contains(filter.as_str()),
    }
}

/// Whether the stored run of scenario `id` gives its diagram something to
/// draw besides calls: a segment or a socket's state.
fn draws_something(id: &str) -> bool {
    let record = read(&src().join(book::record_path(id)));
    serde_json::from_str::<Transcript>(&record).is_ok_and(|t| {
        diagram::sequence(&t)
            .legend_items()
            .iter()
            .any(|kind| ["fin", "rst", "seg", "state"].contains(kind))
    })
}

/// The book's source, beside the examples crate.
fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../src")
}

/// A page of the book as its messages name it: `src/time-wait.md`.
fn page_name(page: &Path) -> String {
    format!("src/{}", page.file_name().unwrap_or_default().to_string_lossy())
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn scenario_holds_and_book_is_current(t: &Transcript) -> Result<(), Failed> {
    if let Some(error) = &t.error {
        return Err(format!("{} stopped: {error}\n{}", t.id, t.to_text()).into());
    }
    for check in &t.checks {
        if check.verdict != Verdict::Confirmed {
            return Err(format!(
                "{}: {:?}: {}\nobserved: {}\n{}",
                t.id,
                check.verdict,
                check.claim,
                check.observed,
                t.to_text()
            )
            .into());
        }
    }
    if t.outcome() != RunOutcome::Confirmed {
        return Err(format!("{}: the run's outcome is {:?}", t.id, t.outcome()).into());
    }
    // An expectation reads as words and values, never as a Debug tuple
    // whose fields the reader must guess (named! names them).
    for check in &t.checks {
        if let Expected::Equal { value } | Expected::Ok { value } = &check.expected {
            if (value.starts_with('(') && value != "()") || value.contains("[(") {
                return Err(format!("{}: {:?} expects a tuple, {value}: name its values", t.id, check.claim).into());
            }
        }
    }
    // A check's id names it in the book: two checks may not share one.
    for (i, check) in t.checks.iter().enumerate() {
        if let Some(other) = t.checks[..i].iter().find(|c| c.id == check.id) {
            return Err(format!(
                "{}: two checks share the id {}: {:?} and {:?}",
                t.id, check.id, other.claim, check.claim
            )
            .into());
        }
    }
    if let Some(why) = book::stale(&src(), t) {
        return Err(format!("{why}\n{BLESS}").into());
    }
    // The book's diagram is what the stored record draws (stale says so):
    // its drawing's model is checked, and this run's.
    let path = src().join(book::record_path(&t.id));
    let stored: Transcript = serde_json::from_str(&read(&path)).map_err(|e| format!("{}: {e}", path.display()))?;
    let drawn = diagram::sequence(t);
    diagram_in_time_order(&format!("{}'s diagram in the book", t.id), &diagram::sequence(&stored))?;
    diagram_in_time_order(&format!("{}'s diagram of this run", t.id), &drawn)?;
    every_flag_labelled(t, &drawn)?;
    every_segment_drawn_when_sent(t, &drawn)?;
    every_arrow_from_its_source_to_its_destination(t, &drawn)
}

/// Outside a bulk transfer, each captured segment is drawn once, a segment
/// sent again included, at the time it was captured.
fn every_segment_drawn_when_sent(t: &Transcript, drawn: &diagram::Sequence) -> Result<(), Failed> {
    if t.bulk {
        return Ok(());
    }
    let mut arrows: Vec<(usize, std::time::Duration)> = drawn.arrows().map(|(at, a)| (a.segment, at)).collect();
    arrows.sort_by_key(|&(index, _)| index);
    let indexes: Vec<usize> = arrows.iter().map(|&(index, _)| index).collect();
    if indexes != (0..t.segments.len()).collect::<Vec<_>>() {
        return Err(format!(
            "{}: {} segments captured, the diagram draws segments {indexes:?}",
            t.id,
            t.segments.len()
        )
        .into());
    }
    // Times since the first segment, in the run and in the drawing.
    let Some(&(_, first_drawn)) = arrows.first() else {
        return Ok(());
    };
    for (index, at) in arrows {
        let sent = t.segments[index]
            .time
            .duration_since(t.segments[0].time)
            .unwrap_or_default();
        let drawn_at = at.saturating_sub(first_drawn);
        if sent != drawn_at {
            return Err(format!("{}: segment {index}, sent at {sent:?}, is drawn at {drawn_at:?}", t.id).into());
        }
    }
    Ok(())
}

/// Each arrow runs from the lifeline of its segment's source address to
/// that of its destination. The client's address has the client's
/// lifeline, leftmost, the server's the server's, rightmost, and every other
/// address one of its own between them, labelled without its port, `other`,
/// `other 2`, ... in the order the arrows first reach them.
fn every_arrow_from_its_source_to_its_destination(t: &Transcript, drawn: &diagram::Sequence) -> Result<(), Failed> {
    let mut others: Vec<SocketAddr> = Vec::new();
    for (_, arrow) in drawn.arrows() {
        let segment = &t.segments[arrow.segment];
        for addr in [segment.src, segment.dst] {
            if Some(addr) != t.client && Some(addr) != t.server && !others.contains(&addr) {
                others.push(addr);
            }
        }
    }
    let label = |addr: SocketAddr| {
        if Some(addr) == t.server {
            "server".to_string()
        } else if Some(addr) == t.client {
            "client".to_string()
        } else {
            match others.iter().position(|&a| a == addr) {
                Some(0) => "other".to_string(),
                Some(i) => format!("other {}", i + 1),
                None => unreachable!("every address an arrow reaches is listed"),
            }
        }
    };
    let mut want: Vec<(String, Option<SocketAddr>)> = vec![("client".into(), t.client)];
    want.extend(others.iter().map(|&a| (label(a), Some(a))));
    want.push(("server".into(), t.server));
    let lifelines: Vec<(String, Option<SocketAddr>)> =
        drawn.lifelines.iter().map(|l| (l.label.clone(), l.address)).collect();
    if lifelines != want {
        return Err(format!(
            "{}: the diagram's lifelines are {lifelines:?}, the run's ends {want:?}",
            t.id
        )
        .into());
    }
    if !drawn.lifelines.windows(2).all(|pair| pair[0].x < pair[1].x) {
        return Err(format!("{}: lifelines not left to right: {:?}", t.id, drawn.lifelines).into());
    }
    for (_, arrow) in drawn.arrows() {
        let segment = &t.segments[arrow.segment];
        let (from, to) = (&drawn.lifelines[arrow.from], &drawn.lifelines[arrow.to]);
        if (from.address, to.address) != (Some(segment.src), Some(segment.dst)) {
            return Err(format!(
                "{}: segment {} ({}) goes from {} to {}, its arrow from {} to {}",
                t.id,
                arrow.segment,
                segment.flags,
                label(segment.src),
                label(segment.dst),
                from.label,
                to.label
            )
            .into());
        }
    }
    Ok(())
}

/// A diagram draws its events in the order of their timestamps.
fn diagram_in_time_order(what: &str, drawn: &diagram::Sequence) -> Result<(), Failed> {
    if drawn.events.is_empty() {
        return Err(format!("{what}: no events drawn").into());
    }
    for pair in drawn.events.windows(2) {
        if pair[1].at < pair[0].at {
            return Err(format!(
                "{what}: {:?} (at {:?}) is drawn below {:?} (at {:?}), which happened later",
                pair[1].shown, pair[1].at, pair[0].shown, pair[0].at
            )
            .into());
        }
    }
    Ok(())
}

/// Each arrow is labelled with every flag of its segment (a bulk diagram
/// leaves PSH out, which only marks data), and no label is cut.
fn every_flag_labelled(t: &Transcript, drawn: &diagram::Sequence) -> Result<(), Failed> {
    for event in &drawn.events {
        let text = match &event.shown {
            diagram::Shown::Arrow(arrow) => &arrow.label,
            diagram::Shown::Call { text, .. } => text,
            diagram::Shown::States { .. } => continue,
        };
        if text.contains('…') {
            return Err(format!("{}: a label is cut: {text}", t.id).into());
        }
    }
    // A call's label breaks between tokens, never inside brackets or an
    // `os error N`.
    for event in &drawn.events {
        let diagram::Shown::Call { text, .. } = &event.shown else {
            continue;
        };
        // Each break: after a comma, or where no bracket is open.
        let lines = diagram::call_lines(text);
        let mut depth = 0i32;
        for line in &lines[..lines.len().saturating_sub(1)] {
            depth += line.matches(['(', '[']).count() as i32 - line.matches([')', ']']).count() as i32;
            let errno_cut = line.ends_with(" os") || line.ends_with("os error");
            if (depth != 0 && !line.ends_with(',')) || errno_cut {
                return Err(format!("{}: the label {text:?} breaks inside a token after {line:?}", t.id).into());
            }
        }
    }
    for (_, arrow) in drawn.arrows() {
        let index = arrow.segment;
        let mut flags = t.segments[index].flags;
        flags.psh &= !t.bulk;
        let label: Vec<&str> = arrow
            .label
            .split_whitespace()
            .take_while(|w| !w.contains('='))
            .collect();
        let want = flags.to_string();
        let want: Vec<&str> = want.split_whitespace().collect();
        if label
            .iter()
            .filter(|w| !w.starts_with('('))
            .copied()
            .collect::<Vec<_>>()
            != want
        {
            return Err(format!(
                "{}: segment {index} has flags {want:?}, labelled {:?}",
                t.id, arrow.label
            )
            .into());
        }
    }
    Ok(())
}

fn every_scenario_has_its_chapter() -> Result<(), Failed> {
    let summary = read(&src().join("SUMMARY.md"));
    let index = read(&src().join("scenarios.md"));
    for s in scenario::ALL {
        let (file, anchor) = s.chapter.split_once('#').unwrap_or((s.chapter, ""));
        let chapter = read(&src().join(file));
        let missing = [
            (chapter.is_empty(), format!("no src/{file}")),
            (
                !summary.contains(&format!("({file})")),
                format!("src/{file} is not in SUMMARY.md"),
            ),
            (
                !chapter.contains(&format!("{{{{#include transcripts/{}.txt}}}}", s.id)),
                format!("src/{file} does not show the transcript of {}", s.id),
            ),
            (
                !chapter
                    .lines()
                    .any(|l| (l.contains("-- run ") || l.contains("tcpclose run ")) && l.contains(s.id)),
                format!("src/{file} does not say how to run {}", s.id),
            ),
            (
                draws_something(s.id) && !chapter.contains(&format!("](diagrams/{}.svg)", s.id)),
                format!("src/{file} does not show the diagram of {}", s.id),
            ),
            (
                !draws_something(s.id) && chapter.contains(&format!("](diagrams/{}.svg)", s.id)),
                format!(
                    "src/{file} shows the diagram of {}, which draws neither a segment nor a state, only what the transcript lists",
                    s.id
                ),
            ),
            (
                !index.contains(&format!("[`{}`]({})", s.id, s.chapter)),
                format!("src/scenarios.md (Every scenario) has no row for {}", s.id),
            ),
            (
                !anchor.is_empty() && !chapter.contains(&format!("{{#{anchor}}}")),
                format!("src/{file} has no heading {{#{anchor}}}"),
            ),
        ];
        if let Some((_, problem)) = missing.iter().find(|(bad, _)| *bad) {
            return Err(problem.clone().into());
        }
    }
    Ok(())
}

/// The book shows measured values (left out of the staleness comparison),
/// in its transcripts and where `{{#value ID}}` quotes them: each stored
/// record's must still satisfy the bounds of its check, as a check would.
/// (The transcripts are drawn from the records.)
fn values_the_book_shows_satisfy_their_checks() -> Result<(), Failed> {
    let mut seen = 0;
    for s in scenario::ALL {
        let path = src().join(book::record_path(s.id));
        let record: Transcript = serde_json::from_str(&read(&path)).map_err(|e| format!("{}: {e}", path.display()))?;
        for check in record.checks {
            let holds = match (&check.expected, check.value) {
                (Expected::Range { .. } | Expected::AtLeast { .. }, Some(value)) => check.expected.admits(value),
                (Expected::Range { .. } | Expected::AtLeast { .. }, None) => false,
                _ => continue,
            };
            if !holds {
                return Err(format!(
                    "{}: the value shown does not satisfy its check: {check:?}",
                    path.display()
                )
                .into());
            }
            seen += 1;
        }
    }
    if seen == 0 {
        return Err("no measured value found in the transcripts".into());
    }
    Ok(())
}

/// A claim's sentence may name an `ErrorKind`, an errno or an `Ok(n)`; if
/// it does, it must be the one the check expects. Check ids are unique.
fn claims_agree_with_their_expectations(scenarios: &[Vec<Check>]) -> Result<(), Failed> {
    for checks in scenarios {
        let mut ids: Vec<&str> = checks.iter().map(|c| c.id.as_str()).collect();
        ids.sort_unstable();
        if let Some(pair) = ids.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("two checks share the id {}", pair[0]).into());
        }
        for check in checks {
            if contradicts(&check.claim, &check.expected, false) {
                return Err(format!(
                    "{}: the sentence contradicts its check: {}",
                    check.id,
                    check.statement()
                )
                .into());
            }
        }
    }
    Ok(())
}

/// Pages generated from data alone, without a run.
fn generated_pages_are_current() -> Result<(), Failed> {
    let path = src().join(book::ERRORS_TABLE);
    if read(&path) != tcpclose::errors::table() {
        return Err(format!("{} is stale: {BLESS}", path.display()).into());
    }
    Ok(())
}

/// Every row of the errors table names checks that ran here, were
/// confirmed, and expect exactly the row's result; its advice names
/// confirmed checks too. A row no scenario produces points at a test on the
/// page itself.
fn every_row_of_the_errors_table_is_proven(checks: &[Check]) -> Result<(), Failed> {
    use tcpclose::errors::{Seen, ROWS};
    let page = read(&src().join("errors.md"));
    for row in ROWS {
        let confirmed = |id: &str| -> Result<&Check, Failed> {
            let check = checks
                .iter()
                .find(|c| c.id == id)
                .ok_or_else(|| format!("{}: no check {id}", row.sees()))?;
            if check.verdict != Verdict::Confirmed {
                return Err(format!("{}: {id} was not confirmed", row.sees()).into());
            }
            Ok(check)
        };
        for id in row.proofs {
            let check = confirmed(id)?;
            let agrees = match (&row.seen, &check.expected) {
                (Seen::Ok(value), Expected::Ok { value: expected }) => value == expected,
                (Seen::Err(kind, Some(errno)), Expected::Err { kind: k, errno: e }) => {
                    format!("{kind:?}") == *k && errno == e
                }
                (Seen::Errno(errno), Expected::Equal { value }) => errno.to_string() == *value,
                (Seen::Text(kind, text), Expected::ErrText { kind: k, message }) => {
                    kind.map_or("Other".to_string(), |kind| format!("{kind:?}")) == *k && text == message
                }
                _ => false,
            };
            if !agrees {
                return Err(format!("{}: {id} expects {}", row.sees(), check.expected).into());
            }
        }
        for id in row.advice_proofs {
            confirmed(id)?;
        }
        match row.on_this_page {
            Some(anchor) if !page.contains(&format!("{{#{anchor}}}")) => {
                return Err(format!("{}: errors.md has no heading {{#{anchor}}}", row.sees()).into());
            }
            None if row.proofs.is_empty() => {
                return Err(format!("{}: no proof", row.sees()).into());
            }
            _ => {}
        }
    }
    Ok(())
}

/// Whether `sentence` contradicts what `expected` holds: it names an
/// `ErrorKind`, an errno or an `Ok(n)` other than the expected one, or
/// durations none of which lies in the expected range. In `prose` (a
/// marker's sentence) that quotes values with a unit, a number the check
/// expects exactly must be among them.
fn contradicts(sentence: &str, expected: &Expected, prose: bool) -> bool {
    let named = |prefix: &str, end: char| -> Vec<&str> {
        sentence
            .match_indices(prefix)
            .filter_map(|(at, _)| sentence[at + prefix.len()..].split(end).next())
            .map(|word| word.trim_end_matches(|c: char| !c.is_ascii_alphanumeric()))
            .collect()
    };
    let words: Vec<&str> = sentence
        .split(|c: char| c.is_whitespace() || "(),;:`".contains(c))
        .filter(|w| !w.is_empty())
        .collect();
    match expected {
        // In prose, each name must be backed by some proof of the sentence
        // instead: a sentence may name several results, each with its check.
        Expected::Err { kind, errno } if !prose => {
            named("ErrorKind::", ' ').iter().any(|k| k != kind)
                || named("os error ", ')').iter().any(|e| {
                    !e.starts_with(&errno.to_string()) || e[errno.to_string().len()..].starts_with(char::is_numeric)
                })
        }
        Expected::Ok { value } if !prose => named("Ok(", ')').iter().any(|v| v != value),
        Expected::Range { low, high, unit } if unit == "s" && !prose => {
            let seconds: Vec<f64> = words
                .windows(2)
                .filter(|w| ["s", "seconds", "s."].contains(&w[1]))
                .filter_map(|w| w[0].parse().ok())
                .collect();
            !seconds.is_empty() && !seconds.iter().any(|s| (*low..=*high).contains(s))
        }
        Expected::Equal { value } if prose => {
            let value = value.trim_matches('"');
            // Values as prose quotes them: a number and its unit.
            let units = ["s", "ms", "seconds", "probes", "bytes", "ports"];
            let quoted: Vec<&str> = words
                .windows(2)
                .filter(|w| units.contains(&w[1].trim_end_matches('.')) && w[0].parse::<f64>().is_ok())
                .map(|w| w[0])
                .collect();
            value.parse::<f64>().is_ok() && !quoted.is_empty() && !quoted.contains(&value)
        }
        _ => false,
    }
}

/// The book's proof markers ({{#check ID}}, {{#test PATH}}, {{#snippet}},
/// {{#unchecked WHY}}), taken as the cluster that closes a sentence: each
/// check ran here, was confirmed and does not contradict the sentence; each
/// test and snippet exists, runs and asserts; and every state, `ErrorKind`,
/// errno and `Ok(n)` the sentence names is named by one of its proofs.
/// Every sentence, table row and rule that names one carries a marker.
/// Each Rust block of a page has a caption (`{{#listing CAPTION}}` on the
/// line above its fence), none the same as another's on its page, and
/// naming no behaviour (a state, an error, a segment, `Ok(n)`) that its
/// listing's code does not name.
fn every_listing_has_a_caption_of_its_own() -> Result<(), Failed> {
    use tcpclose::proof::{behaviour_words, included_code, listing_captions, snippet_at, snippet_names};
    let mut problems = Vec::new();
    for page in book_pages()? {
        let text = read(&page);
        let listings = listing_captions(&text);
        let captions: Vec<Option<&str>> = listings.iter().map(|(_, c)| *c).collect();
        for (n, (fence, caption)) in listings.iter().enumerate() {
            let code =
                snippet_at(&text, fence.saturating_sub(1), false).and_then(|(_, body)| included_code(body, &src()));
            for word in caption.map(behaviour_words).unwrap_or_default() {
                if !code.as_deref().is_some_and(|code| snippet_names(code, &word)) {
                    problems.push(format!(
                        "{}: the caption of listing {} names {word}, which its code does not",
                        page_name(&page),
                        n + 1
                    ));
                }
            }
            match caption {
                None => problems.push(format!(
                    "{}: listing {} has no caption: put {{{{#listing CAPTION}}}} on the line above its fence",
                    page_name(&page),
                    n + 1
                )),
                Some(c) if captions[..n].contains(caption) => {
                    problems.push(format!("{}: two listings have the caption \"{c}\"", page_name(&page)))
                }
                Some(_) => {}
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n").into())
    }
}

/// The book's pages, SUMMARY.md apart, in order of their names.
fn book_pages() -> Result<Vec<PathBuf>, Failed> {
    let mut pages: Vec<PathBuf> = std::fs::read_dir(src())?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "md") && !p.ends_with("SUMMARY.md"))
        .collect();
    pages.sort();
    Ok(pages)
}

fn prose_markers_name_proofs_that_hold(checks: &[Check]) -> Result<(), Failed> {
    use tcpclose::proof::{behaviour_words, clusters, markers, names_a_behaviour, sentence_before, sentences, Marker};
    let pages = book_pages()?;
    let mut seen = 0;
    let mut problems = Vec::new();
    for page in &pages {
        let text = read(page);
        for (at, cluster) in clusters(&text) {
            seen += cluster.len();
            let sentence = sentence_before(&text, at);
            let mut proofs: Vec<String> = Vec::new();
            // Values shown in the sentence are proofs of it too.
            let values = markers(sentence)
                .into_iter()
                .map(|(_, m)| m)
                .filter(|m| matches!(m, Marker::Value(_)));
            for marker in cluster.into_iter().chain(values) {
                match proof_text(&text, at, &marker, checks, sentence) {
                    Ok(text) => proofs.push(text),
                    Err(problem) => problems.push(format!("{}: {problem}", page_name(page))),
                }
            }
            let backed = |word: &String| proofs.iter().any(|p| p == UNCHECKED || names(p, word));
            if let Some(word) = behaviour_words(sentence).into_iter().find(|w| !backed(w)) {
                problems.push(format!(
                    "{}: {sentence:?} names {word}, which none of its proofs does",
                    page_name(page)
                ));
            }
            // A duration the sentence quotes is one a check measured or
            // expects, or one its snippet or test uses.
            let cluster_checks: Vec<&Check> = clusters_checks(&text, at, checks);
            for (seconds, quoted) in quoted_durations(sentence) {
                let in_check = cluster_checks.iter().any(|c| match &c.expected {
                    Expected::Range { low, high, unit } if unit == "s" => (*low..=*high).contains(&seconds),
                    Expected::Equal { value } => value.trim_matches('"').parse::<f64>() == Ok(seconds),
                    _ => false,
                });
                let mut words = quoted.split_whitespace();
                let number = words.next().unwrap_or_default().trim_start_matches('(');
                let unit = match words
                    .next()
                    .unwrap_or_default()
                    .trim_end_matches([',', '.', ';', ')', ':'])
                {
                    "seconds" | "second" => "s",
                    unit => unit,
                };
                let in_proof = |p: &String| match p.split_once(" → ") {
                    // A check's sentence may quote a setting of its run.
                    Some((claim, _)) => claim.contains(&format!("{number} {unit}")),
                    None => p == UNCHECKED || p.contains(number),
                };
                let in_code = proofs.iter().any(in_proof);
                if !in_check && !in_code {
                    problems.push(format!(
                        "{}: {sentence:?} quotes {quoted}, which none of its proofs measures or expects",
                        page_name(page)
                    ));
                }
            }
        }
    }
    // Every value names a confirmed check, wherever it stands.
    for page in &pages {
        let text = read(page);
        for (at, marker) in markers(&text) {
            if let Marker::Value(_) = marker {
                let sentence = sentence_before(&text, at);
                if let Err(problem) = proof_text(&text, at, &marker, checks, sentence) {
                    problems.push(format!("{}: {problem}", page_name(page)));
                }
            }
        }
    }
    let checklist = read(&src().join("checklist.md"));
    for rule in checklist.split("\n- ").skip(1) {
        if markers(rule).is_empty() {
            return Err(format!("checklist.md: a rule with no proof marker: {rule:?}").into());
        }
    }
    // A rule or a table row shows each of its checks in the check's own
    // words ({{#claim ID}}), so that its meaning cannot turn round while
    // its marker stays put.
    let rules = checklist
        .split("\n- ")
        .skip(1)
        .map(|rule| ("checklist.md".to_string(), rule.to_string()));
    let rows = pages.iter().flat_map(|page| {
        read(page)
            .lines()
            .filter(|line| line.trim_start().starts_with('|'))
            .map(|row| (page_name(page), row.to_string()))
            .collect::<Vec<_>>()
    });
    for (page, statement) in rules.chain(rows) {
        if let Some((_, Marker::Check(id))) = markers(&statement)
            .into_iter()
            .find(|(_, m)| matches!(m, Marker::Check(_)))
        {
            problems.push(format!(
                "{page}: a rule or table row marks {id} without its words: write {{{{#claim {id}}}}}: {statement:?}"
            ));
        }
    }
    let mut unbound = Vec::new();
    for page in &pages {
        for sentence in sentences(&read(page)) {
            if let Some(named) = names_a_behaviour(&sentence) {
                if markers(&sentence).is_empty() {
                    unbound.push(format!(
                        "{}: names {named:?} with no proof marker: {sentence:?}",
                        page_name(page)
                    ));
                }
            }
        }
    }
    problems.extend(unbound);
    if !problems.is_empty() {
        return Err(format!(
            "{} problems with the book's proofs:\n{}",
            problems.len(),
            problems.join("\n")
        )
        .into());
    }
    if seen == 0 {
        return Err("no proof marker in the book".into());
    }
    Ok(())
}

const UNCHECKED: &str = "\u{0}unchecked";

/// The checks of the marker cluster at `at`.
fn clusters_checks<'a>(text: &str, at: usize, checks: &'a [Check]) -> Vec<&'a Check> {
    use tcpclose::proof::{clusters, Marker};
    clusters(text)
        .into_iter()
        .filter(|(start, _)| *start == at)
        .flat_map(|(_, cluster)| cluster)
        .filter_map(|m| match m {
            Marker::Check(id) | Marker::Claim(id) | Marker::Value(id) => checks.iter().find(|c| c.id == id),
            _ => None,
        })
        .collect()
}

/// The durations `sentence` quotes, in seconds, with the words quoted.
fn quoted_durations(sentence: &str) -> Vec<(f64, String)> {
    let words: Vec<&str> = sentence.split_whitespace().collect();
    words
        .windows(2)
        .filter_map(|w| {
            let number: f64 = w[0].trim_start_matches('(').parse().ok()?;
            let scale = match w[1].trim_end_matches([',', '.', ';', ')', ':']) {
                "s" | "seconds" | "second" => 1.0,
                "ms" => 0.001,
                "minutes" => 60.0,
                "hours" => 3600.0,
                _ => return None,
            };
            Some((number * scale, format!("{} {}", w[0], w[1])))
        })
        .collect()
}

/// What a marker's proof says, as text in which the sentence's words are
/// looked for, or why the marker is wrong.
fn proof_text(
    page: &str,
    at: usize,
    marker: &tcpclose::proof::Marker,
    checks: &[Check],
    sentence: &str,
) -> Result<String, String> {
    use tcpclose::proof::{function_body, snippet_at, Marker};
    match marker {
        Marker::Check(id) | Marker::Claim(id) | Marker::Value(id) => {
            let check = checks
                .iter()
                .find(|c| c.id == *id)
                .ok_or_else(|| format!("no check {id} (after {sentence:?})"))?;
            if check.verdict != Verdict::Confirmed {
                return Err(format!("{id} was not confirmed"));
            }
            // A value shows the check's own observation: nothing to contradict.
            let shown = matches!(marker, Marker::Value(_));
            if !shown && (contradicts(sentence, &check.expected, true) || reverses(sentence, &check.claim)) {
                return Err(format!("{sentence:?} contradicts {id}: {}", check.statement()));
            }
            Ok(format!("{} {}", check.statement(), errno_names(&check.statement())))
        }
        Marker::Test(path) => {
            // PATH or PATH::function.
            let (file, function) = path
                .split_once("::")
                .map_or((path.as_str(), None), |(f, n)| (f, Some(n)));
            let source = read(&src().join("..").join(file));
            let body = match function {
                None => Some(source.as_str()),
                Some(name) => function_body(&source, name),
            };
            let body = body
                .filter(|b| !b.is_empty())
                .ok_or_else(|| format!("no test {path} (after {sentence:?})"))?;
            // A compile-fail test proves the compiler's recorded output; its
            // cases are named from its package, the folder above its `tests/`.
            let package = Path::new(file).parent().and_then(Path::parent).unwrap_or(Path::new(""));
            let recorded: String = body
                .match_indices("compile_fail(\"")
                .filter_map(|(at, call)| body[at + call.len()..].split('"').next())
                .map(|case| read(&src().join("..").join(package).join(case.replace(".rs", ".stderr"))))
                .collect();
            Ok(format!("{body}{recorded}"))
        }
        Marker::Snippet { above } => {
            let (header, code) = snippet_at(page, at, *above).ok_or_else(|| format!("no snippet for {sentence:?}"))?;
            let runs = header == "rust" || header == "rust,should_panic";
            if !runs || !code.contains("assert") {
                return Err(format!(
                    "the snippet for {sentence:?} is not a running, asserting `rust` block ({header:?})"
                ));
            }
            Ok(code.to_string())
        }
        Marker::Unchecked(why) if why.split_whitespace().count() >= 3 => Ok(UNCHECKED.into()),
        Marker::Unchecked(_) => Err(format!("{sentence:?} is unchecked without a reason")),
    }
}

/// Whether a proof's text names `word` as prose writes it.
fn names(proof: &str, word: &str) -> bool {
    tcpclose::proof::snippet_names(proof, word)
}

/// The errno names of the OS errors `text` quotes ("os error 32" is EPIPE).
fn errno_names(text: &str) -> String {
    const ERRNOS: [(&str, i32); 8] = [
        ("EPIPE", libc::EPIPE),
        ("ECONNRESET", libc::ECONNRESET),
        ("ECONNABORTED", libc::ECONNABORTED),
        ("ECONNREFUSED", libc::ECONNREFUSED),
        ("ETIMEDOUT", libc::ETIMEDOUT),
        ("EAGAIN", libc::EAGAIN),
        ("EMFILE", libc::EMFILE),
        ("ENFILE", libc::ENFILE),
    ];
    ERRNOS
        .iter()
        .filter(|(_, n)| text.contains(&format!("os error {n}")) || text.ends_with(&format!("→ {n}")))
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `sentence` says the opposite of `claim` in one of the ways a
/// sentence about closing can be turned round: a clause of the claim that
/// names a state or result the sentence names too (or else the whole claim) says
/// "first" and the sentence only "second", and so on.
fn reverses(sentence: &str, claim: &str) -> bool {
    use tcpclose::proof::behaviour_words;
    const OPPOSITES: [(&str, &str); 3] = [("first", "second"), ("succeeds", "fails"), ("never", "always")];
    let has = |text: &str, word: &str| text.split(|c: char| !c.is_ascii_alphanumeric()).any(|w| w == word);
    let named = behaviour_words(sentence);
    let mut clauses: Vec<&str> = claim
        .split([';', ':'])
        .filter(|clause| behaviour_words(clause).iter().any(|w| named.contains(w)))
        .collect();
    if clauses.is_empty() {
        clauses.push(claim);
    }
    clauses.into_iter().any(|clause| {
        OPPOSITES.iter().any(|(a, b)| {
            let turned = |x: &str, y: &str| has(clause, x) && !has(clause, y) && has(sentence, y) && !has(sentence, x);
            turned(a, b) || turned(b, a)
        })
    })
}
