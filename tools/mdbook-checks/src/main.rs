//! mdbook-checks: the book's preprocessor for proof markers
//! (`{{#check ID}}`, `{{#value ID}}`, `{{#test PATH}}`, ...; see tcpclose::proof). mdBook runs it
//! as `mdbook-checks supports RENDERER`, then with `[context, book]` as JSON
//! on standard input, and reads the book back from standard output. It also
//! draws each transcript from its run's record (before mdBook's own
//! `{{#include}}`, which would paste the text), and inlines the chapters'
//! SVG images, so that the theme colours them.

use std::io::{self, Read};
use std::process::ExitCode;

use serde_json::Value;
use tcpclose::transcript::Check;

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        Some("supports") => return ExitCode::SUCCESS, // plain Markdown: every renderer
        Some("-h" | "--help") => {
            println!(
                "The book's mdBook preprocessor, run by `mdbook build` (book.toml).\n\n\
                 usage: mdbook-checks supports RENDERER\n       mdbook-checks < [context, book] (JSON)"
            );
            return ExitCode::SUCCESS;
        }
        Some("-V" | "--version") => {
            println!("mdbook-checks {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mdbook-checks: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> io::Result<()> {
    let mut input = String::new();
    io::stdin().read_to_string(&mut input)?;
    let value: Value = serde_json::from_str(&input).map_err(io::Error::other)?;
    let mut book = value
        .get(1)
        .cloned()
        .ok_or_else(|| io::Error::other("expected [context, book] on standard input"))?;
    // The checks of the run that generated the book, for `{{#value ID}}`.
    let root = value[0]["root"].as_str().unwrap_or(".");
    let src = value[0]["config"]["book"]["src"].as_str().unwrap_or("src");
    let src = std::path::Path::new(root).join(src);
    let checks = tcpclose::book::load_checks(&src)?;
    // A test's mark leads to the test in the repository, when the book names one.
    let repository = value[0]["config"]["output"]["html"]["git-repository-url"]
        .as_str()
        .map(str::to_string);
    let links = Links {
        checks: &checks,
        src: &src,
        root: std::path::Path::new(root),
        repository: repository.as_deref(),
    };
    // mdBook 0.4 calls the list "sections", 0.5 "items".
    for key in ["items", "sections"] {
        if let Some(items) = book.get_mut(key) {
            render_items(items, &links);
        }
    }
    serde_json::to_writer(io::stdout(), &book).map_err(io::Error::other)
}

/// What the marks of a chapter lead to.
struct Links<'a> {
    checks: &'a [Check],
    src: &'a std::path::Path,
    root: &'a std::path::Path,
    repository: Option<&'a str>,
}

fn render_items(items: &mut Value, links: &Links) {
    let Some(items) = items.as_array_mut() else { return };
    for item in items {
        if let Some(chapter) = item.get_mut("Chapter") {
            if let Some(Value::String(content)) = chapter.get_mut("content") {
                let drawn = tcpclose::book::transcripts_as_html(content, links.src);
                let rendered = tcpclose::proof::render_linked(
                    &drawn,
                    |id| links.checks.iter().find(|c| c.id == id),
                    |path| tcpclose::book::test_url(links.repository?, links.root, path),
                );
                *content = tcpclose::book::inline_svg_images(&rendered, links.src);
            }
            if let Some(sub_items) = chapter.get_mut("sub_items") {
                render_items(sub_items, links);
            }
        }
    }
}
