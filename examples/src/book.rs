//! What the book shows of the scenarios, generated from their runs: each
//! scenario's transcript and sequence diagram, and the state-machine page.
//! `tcpclose bless` writes these files; the book's tests compare them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::diagram::{NARROW, WIDE};
use crate::observe::State;
use crate::scenario;
use crate::transcript::{Check, Step, Transcript};

/// Every generated file of the book, relative to its `src/`, with its text.
pub fn generated_files(transcripts: &[Transcript]) -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    for t in transcripts {
        files.extend(scenario_files(t));
    }
    files.push((PathBuf::from(STATE_PAGE), state_page(transcripts)));
    files.push((PathBuf::from(ERRORS_TABLE), crate::errors::table()));
    files
}

/// A scenario's files: its record, and the transcript text and sequence
/// diagram drawn from it.
pub fn scenario_files(t: &Transcript) -> Vec<(PathBuf, String)> {
    let record = t.record();
    vec![
        (transcript_path(&t.id), record.to_text()),
        (diagram_path(&t.id), crate::diagram::sequence_svg(&record, &NARROW)),
        (wide_diagram_path(&t.id), crate::diagram::sequence_svg(&record, &WIDE)),
        (record_path(&t.id), record_json(&record)),
    ]
}

/// Why the files the book (its `src/`) shows of a scenario no longer
/// describe this run, or `None` when they still do. The stored record is
/// compared with this run's, without what varies from run to run (see
/// [`Transcript::comparable`]); the text and the diagram must be what the
/// stored record draws.
pub fn stale(src: &Path, t: &Transcript) -> Option<String> {
    let read = |path: &Path| std::fs::read_to_string(src.join(path)).unwrap_or_default();
    let path = record_path(&t.id);
    let stored: Transcript = match serde_json::from_str(&read(&path)) {
        Ok(stored) => stored,
        Err(e) => return Some(format!("{} is stale: not a record ({e})", path.display())),
    };
    if stored.comparable() != t.comparable() {
        return Some(format!(
            "{} is stale\n--- shown\n{}\n--- this run\n{}",
            path.display(),
            stored.to_text(),
            t.record().to_text()
        ));
    }
    for (path, drawn) in [
        (transcript_path(&t.id), stored.to_text()),
        (diagram_path(&t.id), crate::diagram::sequence_svg(&stored, &NARROW)),
        (wide_diagram_path(&t.id), crate::diagram::sequence_svg(&stored, &WIDE)),
    ] {
        if read(&path) != drawn {
            return Some(format!("{} is stale: not what its record draws", path.display()));
        }
    }
    None
}

/// Where the book keeps a scenario's transcript.
pub fn transcript_path(id: &str) -> PathBuf {
    PathBuf::from(format!("transcripts/{id}.txt"))
}

/// Where the book keeps a scenario's record: what its transcript and
/// diagram are drawn from, and whose checks the prose's markers show.
pub fn record_path(id: &str) -> PathBuf {
    PathBuf::from(format!("transcripts/{id}.json"))
}

/// A run's record as JSON.
pub fn record_json(t: &Transcript) -> String {
    serde_json::to_string_pretty(t).unwrap_or_default() + "\n"
}

/// The checks of every scenario record (`transcripts/*.json`) under the
/// book's `src`, as one list.
pub fn load_checks(src: &Path) -> std::io::Result<Vec<Check>> {
    let mut all = Vec::new();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(src.join("transcripts"))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path)?;
        let record: Transcript =
            serde_json::from_str(&text).map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))?;
        all.extend(record.checks);
    }
    Ok(all)
}

/// Where the book keeps a scenario's sequence diagram (narrow: the one
/// a chapter names, for a phone's column).
pub fn diagram_path(id: &str) -> PathBuf {
    PathBuf::from(format!("diagrams/{id}.svg"))
}

/// Where the book keeps the wide drawing of a scenario's sequence
/// diagram, shown beside the narrow one where the column is wide enough.
pub fn wide_diagram_path(id: &str) -> PathBuf {
    PathBuf::from(format!("diagrams/{id}.wide.svg"))
}

/// The report of `tcpclose inspect` on a leaking server, included by
/// `src/diagnosing.md`.
pub const INSPECT_EXAMPLE: &str = "transcripts/inspect-leak.txt";

/// The errors page's table, included by `src/errors.md`.
pub const ERRORS_TABLE: &str = "diagrams/errors-table.fragment";

/// The state-machine page's generated part, included by `src/states.md`.
pub const STATE_PAGE: &str = "diagrams/tcp-states.fragment";

/// RFC 9293's state diagram, each state that a run showed linked to the
/// scenarios in which the lab observed it.
pub fn state_page(transcripts: &[Transcript]) -> String {
    let mut observed: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for t in transcripts {
        for step in &t.steps {
            let Step::States { client, server } = step else {
                continue;
            };
            for state in [client, server] {
                observed
                    .entry(state.map_or("CLOSED", State::name))
                    .or_default()
                    .insert(&t.id);
            }
        }
    }
    let names: Vec<&str> = observed.keys().copied().collect();
    let mut page = String::from("<!-- Generated by the lab: cargo run -- bless -->\n");
    page.push_str(&crate::state_diagram::state_machine_svg(&names));
    for (state, ids) in &observed {
        let anchor = state.to_lowercase().replace('_', "-");
        page.push_str(&format!("\n<h3 id=\"state-{anchor}\">{state}</h3>\n<p>Observed in:"));
        let links: Vec<String> = ids
            .iter()
            .filter_map(|id| scenario::find(id))
            .map(|s| {
                let chapter = s.chapter.replacen(".md", ".html", 1);
                format!(" <a href=\"{chapter}\"><code>{}</code></a>", s.id)
            })
            .collect();
        page.push_str(&links.join(","));
        page.push_str("</p>\n");
    }
    page
}

/// A chapter with each transcript block (a `text` code block that holds
/// only `{{#include transcripts/ID.txt}}`) replaced by the transcript drawn
/// from the run's record, `transcripts/ID.json`, as HTML: see
/// [`transcript_html`]. A block whose record is missing stays as it is.
pub fn transcripts_as_html(chapter: &str, src: &Path) -> String {
    let lines: Vec<&str> = chapter.split_inclusive('\n').collect();
    let mut out = String::with_capacity(chapter.len());
    let mut i = 0;
    while i < lines.len() {
        let record = match lines.get(i..i + 3) {
            Some([open, include, close]) if open.trim_end() == "```text" && close.trim_end() == "```" => include
                .trim()
                .strip_prefix("{{#include transcripts/")
                .and_then(|rest| rest.strip_suffix(".txt}}"))
                .and_then(|id| std::fs::read_to_string(src.join(record_path(id))).ok())
                .and_then(|json| serde_json::from_str::<Transcript>(&json).ok()),
            _ => None,
        };
        match record {
            Some(t) => {
                out.push_str(&transcript_html(&t));
                i += 3;
            }
            None => {
                out.push_str(lines[i]);
                i += 1;
            }
        }
    }
    out
}

/// A run's transcript as the book shows it: a line naming the scenario
/// and the kernel, the claims as a list, each with what it expects first
/// and an anchor that the claim's marks link to, then the calls and
/// states and the packets, folded (the diagram above shows them).
pub fn transcript_html(t: &Transcript) -> String {
    use crate::transcript::Verdict;
    let e = escape_html;
    let mut out = format!(
        "<div class=\"transcript\">\n<p class=\"transcript-head\"><code>{}</code>: {}; on Linux {}</p>\n<ul class=\"claims\">\n",
        e(&t.id),
        e(&t.title),
        e(&t.kernel)
    );
    for check in &t.checks {
        let (class, mark) = match check.verdict {
            Verdict::Confirmed => ("confirmed", "confirmed"),
            Verdict::Refuted => ("refuted", "REFUTED"),
            Verdict::NotChecked => ("not-checked", "not checked"),
        };
        let observed = if check.measured() || check.verdict != Verdict::Confirmed {
            format!(", observed {}", check.observed)
        } else {
            String::new()
        };
        out.push_str(&format!(
            "<li id=\"{}\" class=\"{class}\"><span class=\"verdict\">{mark}</span> <span class=\"expected\">→ {}{}</span> {}</li>\n",
            crate::claim::anchor(&check.id),
            e(&check.expected.to_string()),
            e(&observed),
            e(&check.claim)
        ));
    }
    out.push_str("</ul>\n");
    let fold = |summary: &str, lines: &[String]| {
        let body: Vec<String> = lines.iter().map(|l| e(l)).collect();
        format!(
            "<details><summary>{}</summary>\n<pre><code class=\"nohighlight\">{}</code></pre>\n</details>\n",
            e(summary),
            body.join("\n")
        )
    };
    out.push_str(&fold("calls and states", &t.step_lines()));
    if t.capture.is_ok() {
        out.push_str(&fold(&t.packets_heading(), &t.packet_lines()));
    } else {
        out.push_str(&format!("<p>{}</p>\n", e(&t.packets_heading())));
    }
    if let Some(error) = &t.error {
        out.push_str(&format!("<p>stopped early: {}</p>\n", e(error)));
    }
    out.push_str("</div>\n");
    out
}

/// Where a test `PATH` or `PATH::function` of the repository at `root`
/// is shown in the repository `repository` (its `git-repository-url`):
/// the file, at the line of the function when one is named; `None` when
/// the function is not in the file.
pub fn test_url(repository: &str, root: &Path, path: &str) -> Option<String> {
    let (file, function) = path.split_once("::").map_or((path, None), |(f, n)| (f, Some(n)));
    let source = std::fs::read_to_string(root.join(file)).ok()?;
    let line = match function {
        None => String::new(),
        Some(name) => {
            let at = source.lines().position(|l| l.contains(&format!("fn {name}(")))?;
            format!("#L{}", at + 1)
        }
    };
    Some(format!("{}/blob/main/{file}{line}", repository.trim_end_matches('/')))
}

/// Text as HTML shows it.
pub(crate) fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A chapter with each image line `![alt](NAME.svg)` replaced by the SVG
/// itself, inline in a `<figure class="diagram">` numbered and captioned
/// with the image's text (`Figure 1. ...`), so that the theme's CSS
/// colours it and its text can be searched and selected: black in the file
/// becomes the page's text colour. Lines that are not a local SVG image
/// are left as they are.
pub fn inline_svg_images(chapter: &str, src: &std::path::Path) -> String {
    let mut out = String::with_capacity(chapter.len());
    // Numbered in the chapter's order, each with its image's text as caption.
    let mut figures = 0;
    for line in chapter.split_inclusive('\n') {
        let image = line
            .trim_end()
            .strip_prefix("![")
            .and_then(|rest| rest.split_once("]("))
            .and_then(|(alt, rest)| Some((alt, rest.strip_suffix(')')?)))
            .filter(|(_, path)| path.ends_with(".svg") && !path.contains("://") && !path.contains(".."));
        let svg = image.and_then(|(_, path)| std::fs::read_to_string(src.join(path)).ok());
        // A wide drawing beside it (NAME.wide.svg) goes in the same figure.
        let wide = image.and_then(|(_, path)| {
            let wide = path.strip_suffix(".svg")?.to_string() + ".wide.svg";
            std::fs::read_to_string(src.join(wide)).ok()
        });
        let svg = svg.map(|svg| match &wide {
            Some(wide) => format!("{svg}\n{wide}"),
            None => svg,
        });
        match (image, svg) {
            (Some((alt, _)), Some(svg)) => {
                // The file's own style is for the file on its own; the
                // theme's colours the diagram in the book.
                let mut svg = svg;
                while let (Some(start), Some(end)) = (svg.find("<style>"), svg.find("</style>")) {
                    if end < start {
                        break;
                    }
                    svg = format!("{}{}", &svg[..start], &svg[end + "</style>".len()..]);
                }
                let svg = svg
                    .replace(r##"fill="#000000""##, r#"fill="currentColor""#)
                    .replace(r##"stroke="#000000""##, r#"stroke="currentColor""#);
                // A blank line would end the HTML block in Markdown.
                let svg: Vec<&str> = svg.lines().filter(|l| !l.trim().is_empty()).collect();
                figures += 1;
                out.push_str(&format!(
                    "<figure class=\"diagram\" id=\"figure-{figures}\" aria-label=\"{alt}\">\n{}\n<figcaption>Figure {figures}. {alt}</figcaption>\n</figure>\n",
                    svg.join("\n"),
                    alt = escape_html(alt),
                ));
            }
            _ => out.push_str(line),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claim::Expected;
    use crate::transcript::Role;

    fn run(result: &str, seconds: &str) -> Transcript {
        let mut t = Transcript::empty("sample", "a sample");
        for step in [
            Step::Call {
                who: Role::Server,
                call: "read".into(),
                result: crate::transcript::CallResult::Shown { text: result.into() },
                started: None,
            },
            Step::Measured {
                what: "close took".into(),
                value: seconds.into(),
            },
        ] {
            t.steps.push(step);
            t.step_times.push(std::time::SystemTime::now());
        }
        t
    }

    /// A test's mark leads to its file in the repository, at the line of
    /// its function.
    #[test]
    fn a_test_is_linked_at_its_function_s_line() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let repo = "https://example.org/lab/";
        let url = test_url(
            repo,
            &root,
            "examples/src/book.rs::a_test_is_linked_at_its_function_s_line",
        )
        .unwrap();
        let line = include_str!("book.rs")
            .lines()
            .position(|l| l.contains("fn a_test_is_linked_at_its_function_s_line("))
            .unwrap();
        assert_eq!(
            url,
            format!("https://example.org/lab/blob/main/examples/src/book.rs#L{}", line + 1)
        );
        assert_eq!(
            test_url(repo, &root, "examples/src/book.rs").as_deref(),
            Some("https://example.org/lab/blob/main/examples/src/book.rs")
        );
        assert_eq!(test_url(repo, &root, "examples/src/book.rs::no_such_test"), None);
    }

    /// The book's transcript: each claim an item whose id is the claim's
    /// anchor, what it expects before its sentence; the calls folded. A
    /// block whose record is missing stays a block of text.
    #[test]
    fn a_transcript_is_drawn_from_its_record_with_an_anchor_per_claim() {
        let mut t = run("Ok(0)", "1.000 s");
        for (claim, expected) in [
            ("read returns Ok(0) <at once>", Expected::Ok { value: "0".into() }),
            (
                "the close took about a second",
                Expected::Range {
                    low: 0.9,
                    high: 2.0,
                    unit: "s".into(),
                },
            ),
        ] {
            t.checks.push(Check {
                id: crate::claim::check_id("sample", claim),
                claim: claim.into(),
                expected,
                verdict: crate::claim::Verdict::Confirmed,
                observed: "1.000 s".into(),
                value: Some(1.0),
                packets: false,
            });
        }
        let html = transcript_html(&t);
        assert_eq!(html.matches("<li id=").count(), 2, "{html}");
        assert!(html.contains("→ 0.9 s to 2 s, observed 1.000 s"), "{html}");
        for check in &t.checks {
            let item = format!("<li id=\"{}\"", crate::claim::anchor(&check.id));
            let at = html.find(&item).unwrap_or_else(|| panic!("no {item} in {html}"));
            let line = &html[at..at + html[at..].find("</li>").unwrap()];
            let expected = line
                .find(&escape_html(&check.expected.to_string()))
                .expect("what it expects");
            let claim = line.find(&escape_html(&check.claim)).expect("its sentence");
            assert!(expected < claim, "{line}");
        }
        assert!(html.contains("<details><summary>calls and states</summary>"), "{html}");
        let dir = std::env::temp_dir().join(format!("tcpclose-transcript-html-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("transcripts")).unwrap();
        std::fs::write(dir.join(record_path("sample")), record_json(&t)).unwrap();
        let chapter = "Text.\n\n```text\n{{#include transcripts/sample.txt}}\n```\n\n```text\n{{#include transcripts/none.txt}}\n```\n";
        let drawn = transcripts_as_html(chapter, &dir);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(drawn.starts_with("Text.\n\n<div class=\"transcript\">"), "{drawn}");
        assert!(
            drawn.ends_with("```text\n{{#include transcripts/none.txt}}\n```\n"),
            "{drawn}"
        );
    }

    #[test]
    /// A diagram's wide drawing (NAME.wide.svg) is inlined in the same
    /// figure, after the narrow one, each without its own style.
    fn an_inlined_diagram_leaves_its_own_style_to_the_theme() {
        let src = std::env::temp_dir().join(format!("tcpclose-inline-{}", std::process::id()));
        std::fs::create_dir_all(&src).unwrap();
        let svg = "<svg><style>\n@media (prefers-color-scheme: dark) { .tcp-bg { fill: #0d1117; } }\n</style><text fill=\"#000000\">x</text></svg>";
        std::fs::write(src.join("d.svg"), svg).unwrap();
        std::fs::write(src.join("w.svg"), svg).unwrap();
        std::fs::write(src.join("w.wide.svg"), svg.replace(">x<", ">wide<")).unwrap();
        let page = inline_svg_images("Before.\n![a diagram](d.svg)\n![two drawings](w.svg)\n", &src);
        std::fs::remove_dir_all(&src).unwrap();
        assert_eq!(
            page,
            "Before.\n<figure class=\"diagram\" id=\"figure-1\" aria-label=\"a diagram\">\n<svg><text fill=\"currentColor\">x</text></svg>\n<figcaption>Figure 1. a diagram</figcaption>\n</figure>\n\
             <figure class=\"diagram\" id=\"figure-2\" aria-label=\"two drawings\">\n<svg><text fill=\"currentColor\">x</text></svg>\n\
             <svg><text fill=\"currentColor\">wide</text></svg>\n<figcaption>Figure 2. two drawings</figcaption>\n</figure>\n"
        );
    }

    #[test]
    fn a_run_is_stale_when_what_it_shows_differs_and_not_when_a_measurement_does() {
        let src = std::env::temp_dir().join(format!("tcpclose-book-{}", std::process::id()));
        std::fs::create_dir_all(src.join("transcripts")).unwrap();
        std::fs::create_dir_all(src.join("diagrams")).unwrap();
        for (path, text) in scenario_files(&run("Ok(0)", "1.00 s")) {
            std::fs::write(src.join(path), text).unwrap();
        }
        let verdict = |t: &Transcript| stale(&src, t).map(|why| why.lines().next().unwrap_or_default().to_string());
        let mut verdicts = vec![
            verdict(&run("Ok(0)", "1.00 s")),
            verdict(&run("Ok(0)", "1.02 s")),
            verdict(&run("Ok(5)", "1.00 s")),
        ];
        for (path, layout) in [(diagram_path("sample"), &NARROW), (wide_diagram_path("sample"), &WIDE)] {
            let current = std::fs::read_to_string(src.join(&path)).unwrap();
            let diagram = crate::diagram::sequence_svg(&run("Ok(5)", "1.00 s"), layout);
            std::fs::write(src.join(&path), diagram).unwrap();
            verdicts.push(verdict(&run("Ok(0)", "1.00 s")));
            std::fs::write(src.join(&path), current).unwrap();
        }
        std::fs::write(src.join(record_path("sample")), r#"{"id": "planted"}"#).unwrap();
        verdicts.push(verdict(&run("Ok(0)", "1.00 s")).map(|why| why.split(" (").next().unwrap_or_default().into()));
        std::fs::remove_dir_all(&src).unwrap();
        assert_eq!(
            verdicts,
            [
                None,
                None,
                Some("transcripts/sample.json is stale".to_string()),
                Some("diagrams/sample.svg is stale: not what its record draws".to_string()),
                Some("diagrams/sample.wide.svg is stale: not what its record draws".to_string()),
                Some("transcripts/sample.json is stale: not a record".to_string()),
            ]
        );
    }
}
