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
    if std::env::args().nth(1).as_deref() == Some("supports") {
        return ExitCode::SUCCESS; // plain Markdown: every renderer
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
    // mdBook 0.4 calls the list "sections", 0.5 "items".
    for key in ["items", "sections"] {
        if let Some(items) = book.get_mut(key) {
            render_items(items, &checks, &src);
        }
    }
    serde_json::to_writer(io::stdout(), &book).map_err(io::Error::other)
}

fn render_items(items: &mut Value, checks: &[Check], src: &std::path::Path) {
    let Some(items) = items.as_array_mut() else { return };
    for item in items {
        if let Some(chapter) = item.get_mut("Chapter") {
            if let Some(Value::String(content)) = chapter.get_mut("content") {
                let drawn = tcpclose::book::transcripts_as_html(content, src);
                let rendered = tcpclose::proof::render(&drawn, |id| checks.iter().find(|c| c.id == id));
                *content = tcpclose::book::inline_svg_images(&rendered, src);
            }
            if let Some(sub_items) = chapter.get_mut("sub_items") {
                render_items(sub_items, checks, src);
            }
        }
    }
}
