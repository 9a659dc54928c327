//! mdbook-checks: the book's preprocessor for proof markers
//! (`{{#check ID}}`, `{{#value ID}}`, `{{#test PATH}}`, ...; see tcpclose::proof). mdBook runs it
//! as `mdbook-checks supports RENDERER`, then with `[context, book]` as JSON
//! on standard input, and reads the book back from standard output. It also
//! inlines the chapters' SVG images, so that the theme colours them.

use std::io::{self, Read};
use std::process::ExitCode;

use serde_json::Value;

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
    let checks = load_checks(&src)?;
    // mdBook 0.4 calls the list "sections", 0.5 "items".
    for key in ["items", "sections"] {
        if let Some(items) = book.get_mut(key) {
            render_items(items, &checks, &src);
        }
    }
    serde_json::to_writer(io::stdout(), &book).map_err(io::Error::other)
}

/// Every `transcripts/*.checks.json` of the book's source, as one list.
fn load_checks(src: &std::path::Path) -> io::Result<Value> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(src.join("transcripts"))? {
        let path = entry?.path();
        if path.to_string_lossy().ends_with(".checks.json") {
            let text = std::fs::read_to_string(&path)?;
            let checks: Value =
                serde_json::from_str(&text).map_err(|e| io::Error::other(format!("{}: {e}", path.display())))?;
            all.extend(checks.as_array().cloned().unwrap_or_default());
        }
    }
    Ok(Value::Array(all))
}

fn render_items(items: &mut Value, checks: &Value, src: &std::path::Path) {
    let Some(items) = items.as_array_mut() else { return };
    for item in items {
        if let Some(chapter) = item.get_mut("Chapter") {
            if let Some(Value::String(content)) = chapter.get_mut("content") {
                let rendered = tcpclose::proof::render(content, |id| tcpclose::book::observed_value(checks, id));
                *content = tcpclose::book::inline_svg_images(&rendered, src);
            }
            if let Some(sub_items) = chapter.get_mut("sub_items") {
                render_items(sub_items, checks, src);
            }
        }
    }
}
