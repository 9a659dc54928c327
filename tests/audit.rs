//! Every page of the book has an audit record in AUDIT.md: when it was
//! last read sentence by sentence against the kernel or library source or
//! an experiment, and what that found. A new page needs one too.

use std::path::Path;

fn read(path: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The pages SUMMARY.md lists, as `name.md`.
fn pages() -> Vec<String> {
    read("src/SUMMARY.md")
        .split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .map(str::to_string)
        .collect()
}

/// The sections of AUDIT.md: `## page.md`, then its lines.
fn sections() -> Vec<(String, String)> {
    read("AUDIT.md")
        .split("\n## ")
        .skip(1)
        .map(|s| {
            let (head, body) = s.split_once('\n').unwrap_or((s, ""));
            (head.trim().to_string(), body.to_string())
        })
        .collect()
}

#[test]
fn every_page_has_an_audit_record() {
    let sections = sections();
    let mut problems = Vec::new();
    for page in pages() {
        match sections.iter().find(|(name, _)| *name == page) {
            None => problems.push(format!("{page}: no section `## {page}`")),
            Some((_, body)) => {
                let dated = body.lines().any(|l| {
                    l.strip_prefix("Audited ")
                        .and_then(|rest| rest.get(..10))
                        .is_some_and(|d| d.len() == 10 && d.chars().filter(|c| *c == '-').count() == 2)
                });
                let findings = body.lines().filter(|l| l.starts_with("- ")).count();
                if !dated {
                    problems.push(format!("{page}: no line `Audited YYYY-MM-DD against ...`"));
                }
                if findings == 0 {
                    problems.push(format!(
                        "{page}: no finding (`- \"sentence\": against what; kept or changed`)"
                    ));
                }
            }
        }
    }
    for (name, _) in &sections {
        if !pages().contains(name) {
            problems.push(format!("AUDIT.md: `## {name}` is not a page of the book"));
        }
    }
    assert!(problems.is_empty(), "AUDIT.md:\n{}", problems.join("\n"));
}
