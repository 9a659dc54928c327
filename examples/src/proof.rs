//! Markers that bind the book's prose to its proofs: `{{#check ID}}` names a
//! check of a scenario (`scenario-id/words-of-the-claim`), `{{#test PATH}}`
//! a test file of the repository. The `mdbook-checks` preprocessor renders
//! them as small links; the lab's tests make sure each names a proof that
//! exists and, for a check, was confirmed and agrees with the sentence.

/// A marker in a page's Markdown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Marker {
    Check(String),
    Test(String),
}

/// Every marker of `text`, with its byte offset.
pub fn markers(text: &str) -> Vec<(usize, Marker)> {
    let mut found = Vec::new();
    for (at, _) in text.match_indices("{{#") {
        let rest = &text[at + 3..];
        let Some(end) = rest.find("}}") else { continue };
        let inner = &rest[..end];
        match inner.split_once(' ') {
            Some(("check", id)) => found.push((at, Marker::Check(id.trim().into()))),
            Some(("test", path)) => found.push((at, Marker::Test(path.trim().into()))),
            _ => {}
        }
    }
    found
}

/// `text` with its markers rendered as Markdown links: a check to the
/// chapter of its scenario, a test as its path.
pub fn render(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut from = 0;
    for (at, marker) in markers(text) {
        let end = at + text[at..].find("}}").map_or(0, |e| e + 2);
        out.push_str(&text[from..at]);
        match &marker {
            Marker::Check(id) => {
                let scenario = id.split('/').next().and_then(crate::scenario::find);
                match scenario {
                    Some(s) => out.push_str(&format!(
                        "<sup>[✓]({} \"checked on the kernel by the lab: {id}\")</sup>",
                        s.chapter
                    )),
                    None => out.push_str(&format!("<sup>✓ {id}</sup>")),
                }
            }
            Marker::Test(path) => out.push_str(&format!("<sup title=\"proven by the test {path}\">✓</sup>")),
        }
        from = end;
    }
    out.push_str(&text[from..]);
    out
}

/// The sentence a marker closes: from the start of its bullet, paragraph
/// or sentence to the marker.
pub fn sentence_before(text: &str, at: usize) -> &str {
    let head = &text[..at];
    // A sentence ends at ". ", unless a parenthesis of links follows it.
    let full_stop = head
        .match_indices(". ")
        .filter(|(i, _)| !head[i + 2..].trim_start().starts_with('('))
        .map(|(i, _)| i + 2)
        .last();
    let start = ["\n- ", "\n\n"]
        .iter()
        .filter_map(|b| head.rfind(b).map(|i| i + b.len()))
        .chain(full_stop)
        .max()
        .unwrap_or(0);
    head[start..].trim()
}
