//! Markers that bind the book's prose to its proofs: `{{#check ID}}` names a
//! check of a scenario (`scenario-id/words-of-the-claim`), `{{#test PATH}}`
//! a test file of the repository. The `mdbook-checks` preprocessor renders
//! them as small links; the lab's tests make sure each names a proof that
//! exists and, for a check, was confirmed and agrees with the sentence.
//! `{{#claim ID}}` is a check shown in its own words: the claim and its
//! expectation, rendered from the check, so that a rule or a table row
//! cannot turn round while its marker stays put.

use crate::transcript::Check;

/// A marker in a page's Markdown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Marker {
    Check(String),
    /// A check shown in its own words (claim and expectation), then linked.
    Claim(String),
    /// The value a check observed in the run that generated the book,
    /// shown in place, with the link of a check.
    Value(String),
    Test(String),
    /// The code block after the marker (or before it, `{{#snippet above}}`),
    /// which the book's tests run and which must assert what the sentence says.
    Snippet {
        above: bool,
    },
    /// A statement the lab cannot check on this kernel (another system's
    /// behaviour, a definition), with the reason: shown as such.
    Unchecked(String),
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
            Some(("claim", id)) => found.push((at, Marker::Claim(id.trim().into()))),
            Some(("value", id)) => found.push((at, Marker::Value(id.trim().into()))),
            Some(("test", path)) => found.push((at, Marker::Test(path.trim().into()))),
            Some(("snippet", "above")) => found.push((at, Marker::Snippet { above: true })),
            Some(("unchecked", why)) => found.push((at, Marker::Unchecked(why.trim().into()))),
            None if inner == "snippet" => found.push((at, Marker::Snippet { above: false })),
            _ => {}
        }
    }
    found
}

/// `text` with its markers rendered as Markdown links: a check to the
/// chapter of its scenario, a test as its path; a value as what the check
/// `check(id)` observed, and a claim as the check's statement, each
/// followed by the check's link.
pub fn render<'a>(text: &str, check: impl Fn(&str) -> Option<&'a Check>) -> String {
    render_linked(text, check, |_| None)
}

/// [`render`], with a test's mark a link to where `test_url(PATH)` says
/// the test is (its file and line in the repository), every Rust block
/// numbered, `Listing N. CAPTION` above it with the id `listing-N`, and a
/// snippet's mark a link to its block's listing.
pub fn render_linked<'a>(
    text: &str,
    check: impl Fn(&str) -> Option<&'a Check>,
    test_url: impl Fn(&str) -> Option<String>,
) -> String {
    let fences = rust_fences(text);
    let marks = markers(text);
    // The code block each snippet mark leads to, by its fence's offset.
    let target = |at: usize, above: bool| {
        if above {
            fences.iter().rposition(|&f| f < at)
        } else {
            fences.iter().position(|&f| f > at)
        }
    };
    let mut out = String::with_capacity(text.len());
    let mut from = 0;
    // Copies text[from..to], with its listing's number and caption (from
    // the `{{#listing CAPTION}}` line above the fence) before each fence.
    let copy = |out: &mut String, from: usize, to: usize| {
        let mut at = from;
        for (k, &fence) in fences.iter().enumerate() {
            if (from..to).contains(&fence) {
                let (caption_line, caption) = caption_above(text, fence);
                out.push_str(&text[at..caption_line.max(at)]);
                let line = &text[fence..];
                let indent = &line[..line.len() - line.trim_start_matches(' ').len()];
                let caption = caption.map_or_else(String::new, |c| format!(" {}", inline_code(c)));
                // A blank line after it: an HTML line would otherwise take the fence in.
                out.push_str(&format!(
                    "{indent}<p class=\"listing\" id=\"listing-{n}\"><span class=\"listing-number\">Listing {n}.</span>{caption}</p>\n\n",
                    n = k + 1
                ));
                at = fence;
            }
        }
        out.push_str(&text[at..to]);
    };
    // A sentence's proofs: a bare mark each (a check, a test, a snippet),
    // one after the other with only white space between them.
    let mut cluster: Vec<Proof> = Vec::new();
    let mut listed: Vec<Vec<Proof>> = Vec::new();
    let flush = |out: &mut String, cluster: &mut Vec<Proof>, listed: &mut Vec<Vec<Proof>>| match cluster.len() {
        0 => {}
        1 => out.push_str(&cluster.remove(0).mark()),
        n => {
            // ‡ where part of the sentence is not checked.
            let glyph = if cluster.iter().all(|p| p.checked) {
                "✓✓"
            } else {
                "✓‡"
            };
            listed.push(std::mem::take(cluster));
            let k = listed.len();
            out.push_str(&format!(
                "<sup><a href=\"#proofs-{k}\" id=\"proved-{k}\" title=\"{n} proofs: the list under Proofs, at the end of the page\">{glyph}</a></sup>"
            ));
        }
    };
    let mut last_end = 0;
    for (at, marker) in marks {
        let end = at + text[at..].find("}}").map_or(0, |e| e + 2);
        let proof = match &marker {
            Marker::Check(id) => Some(Proof::check(id, check(id))),
            Marker::Test(path) => Some(Proof {
                url: test_url(path),
                title: format!("proven by the test {path}"),
                listed: format!("the test {path}"),
                checked: true,
            }),
            Marker::Unchecked(why) => Some(Proof {
                url: None,
                title: format!("not checked by the lab: {why}"),
                listed: format!("not checked by the lab: {why}"),
                checked: false,
            }),
            Marker::Snippet { above } => {
                let which = if *above { "above" } else { "below" };
                Some(match target(at, *above) {
                    Some(k) => Proof {
                        url: Some(format!("#listing-{}", k + 1)),
                        title: format!("proven by listing {}, {which}, run as a test", k + 1),
                        listed: format!("Listing {}, run as a test", k + 1),
                        checked: true,
                    },
                    None => Proof {
                        url: None,
                        title: format!("proven by the snippet {which}, run as a test"),
                        listed: format!("the snippet {which}, run as a test"),
                        checked: true,
                    },
                })
            }
            _ => None,
        };
        let joined = proof.is_some() && !cluster.is_empty() && text[last_end..at].trim().is_empty();
        if !joined {
            flush(&mut out, &mut cluster, &mut listed);
            copy(&mut out, from, at);
        }
        (last_end, from) = (end, end);
        if let Some(proof) = proof {
            cluster.push(proof);
            continue;
        }
        // A value or a claim is shown in place; its check's mark follows
        // it and may begin a sentence's proofs.
        match &marker {
            Marker::Value(id) => {
                let value = check(id).map_or_else(|| format!("(no value for {id})"), |c| c.shown_value());
                out.push_str(&value);
                cluster.push(Proof::check(id, check(id)));
            }
            Marker::Claim(id) => {
                let statement = check(id).map_or_else(|| format!("(no check {id})"), Check::statement);
                out.push_str(&format!(
                    "<q class=\"claim\">{}</q>",
                    crate::book::escape_html(&statement)
                ));
                cluster.push(Proof::check(id, check(id)));
            }
            _ => {}
        }
    }
    flush(&mut out, &mut cluster, &mut listed);
    copy(&mut out, from, text.len());
    if !listed.is_empty() {
        out.push_str(&proofs_section(&listed));
    }
    out
}

/// What a bare mark proves a sentence by: where it leads, what its
/// tooltip says, and how the list of a sentence's proofs names it.
struct Proof {
    url: Option<String>,
    title: String,
    listed: String,
    /// False for a statement the lab cannot check (‡).
    checked: bool,
}

impl Proof {
    /// A check's proof: the claim in its scenario's transcript.
    fn check(id: &str, check: Option<&Check>) -> Proof {
        let url = id.split('/').next().and_then(crate::scenario::find).map(|s| {
            format!(
                "{}#{}",
                s.chapter.split('#').next().unwrap_or(s.chapter),
                crate::claim::anchor(id)
            )
        });
        let scenario = id.split('/').next().unwrap_or(id);
        Proof {
            url,
            title: format!("checked on the kernel by the lab: {id}"),
            listed: match check {
                Some(c) => format!("{scenario}: {}", c.statement()),
                None => format!("the check {id}"),
            },
            checked: true,
        }
    }

    /// The mark alone: a link where it leads, else its tooltip.
    fn mark(&self) -> String {
        let glyph = if self.checked { "✓" } else { "‡" };
        match &self.url {
            Some(url) => format!("<sup>[{glyph}]({url} \"{}\")</sup>", self.title),
            None => format!("<sup title=\"{}\">{glyph}</sup>", self.title),
        }
    }
}

/// The end of a page whose sentences have several proofs: one numbered
/// item per such sentence, each proof a link, and a link back.
fn proofs_section(listed: &[Vec<Proof>]) -> String {
    let mut section = String::from(
        "\n\n## Proofs\n\n<p>Each ✓✓ above leads to one of these items: the proofs of its sentence.</p>\n\n<ol class=\"proofs\">\n",
    );
    for (k, proofs) in listed.iter().enumerate() {
        let k = k + 1;
        section.push_str(&format!("<li id=\"proofs-{k}\"><ul>\n"));
        for proof in proofs {
            let text = crate::book::escape_html(&proof.listed);
            match &proof.url {
                Some(url) => section.push_str(&format!("<li><a href=\"{url}\">{text}</a></li>\n")),
                None => section.push_str(&format!("<li>{text}</li>\n")),
            }
        }
        section.push_str(&format!(
            "</ul><a href=\"#proved-{k}\" title=\"back to the sentence\">↩ back</a></li>\n"
        ));
    }
    section.push_str("</ol>\n");
    section
}

/// The caption of the listing whose fence is at `fence`: the line above
/// it when that line is `{{#listing CAPTION}}`, with where that line
/// starts; else no caption, and the fence's offset.
fn caption_above(text: &str, fence: usize) -> (usize, Option<&str>) {
    let before = text[..fence].strip_suffix('\n').unwrap_or(&text[..fence]);
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    let caption = before[start..]
        .trim()
        .strip_prefix("{{#listing ")
        .and_then(|rest| rest.strip_suffix("}}"))
        .map(str::trim);
    match caption {
        Some(caption) => (start, Some(caption)),
        None => (fence, None),
    }
}

/// The captions of a page's Rust listings, in order (`None` for one
/// without its `{{#listing CAPTION}}` line), each with its fence's offset.
pub fn listing_captions(text: &str) -> Vec<(usize, Option<&str>)> {
    rust_fences(text)
        .into_iter()
        .map(|f| (f, caption_above(text, f).1))
        .collect()
}

/// The code of a block whose body is `{{#include PATH}}` or
/// `{{#include PATH:ANCHOR}}` (mdBook's anchors: the lines between
/// `ANCHOR: NAME` and `ANCHOR_END: NAME`), read relative to `src`; any
/// other body as it is.
pub fn included_code(body: &str, src: &std::path::Path) -> Option<String> {
    let Some(target) = body
        .trim()
        .strip_prefix("{{#include ")
        .and_then(|r| r.strip_suffix("}}"))
    else {
        return Some(body.to_string());
    };
    let (path, anchor) = match target.rsplit_once(':') {
        Some((path, anchor)) if !anchor.contains('/') => (path, Some(anchor)),
        _ => (target, None),
    };
    let file = std::fs::read_to_string(src.join(path)).ok()?;
    let Some(anchor) = anchor else { return Some(file) };
    let start = file.find(&format!("ANCHOR: {anchor}\n"))?;
    let end = file[start..].find(&format!("ANCHOR_END: {anchor}"))? + start;
    Some(file[start..end].to_string())
}

/// Text for HTML, with its `code spans` as `<code>`.
fn inline_code(text: &str) -> String {
    crate::book::escape_html(text)
        .split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                format!("<code>{part}</code>")
            } else {
                part.to_string()
            }
        })
        .collect()
}

/// The offsets of the lines that open a `rust` code block.
fn rust_fences(text: &str) -> Vec<usize> {
    let mut found = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_start_matches(' ').starts_with("```rust") {
            found.push(offset);
        }
        offset += line.len();
    }
    found
}

/// The markers of `text` grouped as they close sentences: markers with
/// only white space between them form one cluster, at the first one's
/// offset. Values (`{{#value ID}}`) stand inside sentences and close none.
pub fn clusters(text: &str) -> Vec<(usize, Vec<Marker>)> {
    let mut found: Vec<(usize, Vec<Marker>)> = Vec::new();
    let mut last_end = 0;
    // A value stands in the sentence: it closes nothing.
    let closing = markers(text)
        .into_iter()
        .filter(|(_, m)| !matches!(m, Marker::Value(_)));
    for (at, marker) in closing {
        let end = at + text[at..].find("}}").map_or(0, |e| e + 2);
        match found.last_mut() {
            Some((_, cluster)) if last_end > 0 && text[last_end..at].trim().is_empty() => cluster.push(marker),
            _ => found.push((at, vec![marker])),
        }
        last_end = end;
    }
    found
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
    // Nor does it reach back past an earlier marker (a value stands in it).
    let previous_marker = markers(head)
        .into_iter()
        .rfind(|(_, m)| !matches!(m, Marker::Value(_)))
        .map(|(i, _)| i + head[i..].find("}}").map_or(0, |e| e + 2));
    let start = ["\n- ", "\n\n", "\n|"]
        .iter()
        .filter_map(|b| head.rfind(b).map(|i| i + b.len()))
        .chain(full_stop)
        .chain(previous_marker)
        .max()
        .unwrap_or(0);
    head[start..].trim()
}

/// The prose of a page, one sentence (or table row) at a time: what the
/// book asserts outside its code blocks, headings, includes and pictures.
/// A marker written right after a sentence's full stop belongs to it.
pub fn sentences(page: &str) -> Vec<String> {
    let mut prose = String::new();
    let mut rows = Vec::new();
    let mut in_code = false;
    for line in page.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") {
            in_code = !in_code;
            prose.push('\n');
            continue;
        }
        // A listing's caption is held against its listing's code instead.
        let skipped = ["#", "{{#include", "{{#listing", "![", "<", "|---", "| ---"];
        if in_code || skipped.iter().any(|s| trimmed.starts_with(s)) {
            prose.push('\n');
            continue;
        }
        if trimmed.starts_with('|') {
            // A table row is a statement of its own, however many cells.
            rows.push(trimmed.to_string());
            prose.push('\n');
            continue;
        }
        // A bullet starts a statement of its own.
        if trimmed.starts_with("- ") {
            prose.push('\n');
        }
        prose.push_str(line);
        prose.push('\n');
    }
    let mut found = Vec::new();
    for paragraph in prose.split("\n\n") {
        let paragraph = paragraph.split_whitespace().collect::<Vec<_>>().join(" ");
        let mut start = 0;
        let bytes = paragraph.as_bytes();
        for i in 1..bytes.len().saturating_sub(1) {
            let ends = matches!(bytes[i - 1], b'.' | b':' | b';' | b'?' | b'!') && bytes[i] == b' ';
            // A parenthesis of links after a full stop still belongs to it.
            let links = bytes[i + 1..].starts_with(b"([");
            let next_starts = !links && (bytes[i + 1].is_ascii_uppercase() || b"`(*\"[".contains(&bytes[i + 1]));
            if ends && next_starts {
                found.push(paragraph[start..i].trim().to_string());
                start = i + 1;
            }
        }
        found.push(paragraph[start..].trim().to_string());
    }
    found.extend(rows);
    found.retain(|s| !s.is_empty());
    found
}

/// What in `text` makes it a claim about behaviour: a state, an
/// `ErrorKind`, an errno, a segment (FIN, RST, SYN), a compiler error
/// code, an `Ok(n)` or a duration.
pub fn names_a_behaviour(text: &str) -> Option<String> {
    let text = without_markers(text);
    if let Some(word) = behaviour_words(&text).into_iter().next() {
        return Some(word);
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    words.windows(2).find_map(|w| {
        let number = w[0].trim_start_matches('(').parse::<f64>().is_ok();
        let unit = ["s", "ms", "seconds", "minutes", "hours"].contains(&w[1].trim_end_matches([',', '.', ';', ')']));
        (number && unit).then(|| format!("{} {}", w[0], w[1]))
    })
}

/// The TCP states the book names, as it writes them.
pub const STATES: [&str; 10] = [
    "CLOSE_WAIT",
    "FIN_WAIT_1",
    "FIN_WAIT_2",
    "TIME_WAIT",
    "LAST_ACK",
    "CLOSING",
    "ESTABLISHED",
    "SYN_SENT",
    "SYN_RECV",
    "LISTEN",
];

/// The `ErrorKind`s the book names.
pub const KINDS: [&str; 10] = [
    "BrokenPipe",
    "ConnectionReset",
    "ConnectionAborted",
    "ConnectionRefused",
    "TimedOut",
    "WouldBlock",
    "AddrInUse",
    "AddrNotAvailable",
    "NotConnected",
    "UnexpectedEof",
];

/// The segments the book names by their flag.
pub const SEGMENTS: [&str; 3] = ["FIN", "RST", "SYN"];

const ERRNOS: [&str; 9] = [
    "EPIPE",
    "ECONNRESET",
    "ECONNABORTED",
    "ECONNREFUSED",
    "ETIMEDOUT",
    "EAGAIN",
    "EMFILE",
    "ENFILE",
    "os error",
];

/// The states, `ErrorKind`s, errnos and `Ok(n)`s `text` names, in the
/// order of the lists above.
pub fn behaviour_words(text: &str) -> Vec<String> {
    let mut found: Vec<String> = STATES
        .iter()
        .chain(&KINDS)
        .chain(&ERRNOS)
        .chain(&SEGMENTS)
        .filter(|w| text.match_indices(*w).any(|(at, _)| is_whole_word(text, at, w.len())))
        .map(|w| w.to_string())
        .collect();
    // Compiler error codes: E0382.
    for (at, _) in text.match_indices('E') {
        let code = text.get(at..at + 5).unwrap_or_default();
        if code.len() == 5 && code[1..].chars().all(|c| c.is_ascii_digit()) && is_whole_word(text, at, 5) {
            found.push(code.to_string());
        }
    }
    for (at, _) in text.match_indices("Ok(") {
        // A value (`Ok(0)`, `Ok(())`), not a placeholder (`Ok(n)`).
        let Some(end) = text[at..].find(')') else { continue };
        let value = &text[at + 3..at + end];
        if value.is_empty() || value == "(" || value.parse::<u64>().is_ok() {
            let close = if value == "(" { end + 2 } else { end + 1 };
            found.push(text[at..(at + close).min(text.len())].to_string());
        }
    }
    found
}

fn is_whole_word(text: &str, at: usize, len: usize) -> bool {
    let word_char = |c: char| c.is_ascii_alphanumeric() || c == '_';
    !text[..at].ends_with(word_char) && !text[at + len..].starts_with(word_char)
}

fn without_markers(text: &str) -> String {
    let mut out = text.to_string();
    while let Some(at) = out.find("{{#") {
        let end = out[at..].find("}}").map_or(out.len(), |e| at + e + 2);
        out.replace_range(at..end, "");
    }
    out
}

/// The Rust block a `{{#snippet}}` marker at `at` points at: the next one,
/// or with `above`, the one before; with the words after its opening
/// fence (`rust`, `rust,ignore`, ...).
pub fn snippet_at(page: &str, at: usize, above: bool) -> Option<(&str, &str)> {
    let fences: Vec<usize> = page
        .match_indices("```")
        .filter(|(i, _)| *i == 0 || page[..*i].ends_with('\n'))
        .map(|(i, _)| i)
        .collect();
    // Rust blocks only: a console or text block is no proof.
    let blocks: Vec<(usize, usize)> = fences
        .chunks(2)
        .filter(|c| c.len() == 2 && page[c[0] + 3..].starts_with("rust"))
        .map(|c| (c[0], c[1]))
        .collect();
    let (open, close) = if above {
        *blocks.iter().rev().find(|(_, close)| *close < at)?
    } else {
        *blocks.iter().find(|(open, _)| *open > at)?
    };
    let header_end = open + page[open..].find('\n')?;
    Some((page[open + 3..header_end].trim(), &page[header_end + 1..close]))
}

/// How a snippet writes what prose names: `CLOSE_WAIT` is
/// `State::CloseWait`, `Ok(0)` is a zero compared in an assert.
pub fn snippet_names(code: &str, word: &str) -> bool {
    // FIN in FIN_WAIT_2 is a state's name, not the segment's.
    let whole = |w: &str| code.match_indices(w).any(|(at, _)| is_whole_word(code, at, w.len()));
    if SEGMENTS.contains(&word) {
        // `SegmentKind::Fin`, `s.flags.fin`, tcpdump's `Flags [F.]`.
        let (camel, lower, tcpdump) = match word {
            "FIN" => ("Fin", "flags.fin", "Flags [F"),
            "RST" => ("Rst", "flags.rst", "Flags [R"),
            _ => ("Syn", "flags.syn", "Flags [S"),
        };
        return whole(word) || whole(camel) || code.contains(lower) || code.contains(tcpdump);
    }
    if code.contains(word) {
        return true;
    }
    if STATES.contains(&word) {
        let camel: String = word
            .split('_')
            .map(|part| {
                let lower = part.to_lowercase();
                let mut chars = lower.chars();
                chars
                    .next()
                    .map_or(String::new(), |c| c.to_ascii_uppercase().to_string() + chars.as_str())
            })
            .collect();
        return code.contains(&camel);
    }
    if let Some(value) = word.strip_prefix("Ok(").and_then(|v| v.strip_suffix(')')) {
        return code.contains(&format!(", {value})")) || code.contains(&format!("== {value}"));
    }
    false
}

/// The source of the function `name` in `source`, from `fn` to its closing
/// brace.
pub fn function_body<'a>(source: &'a str, name: &str) -> Option<&'a str> {
    let start = source.find(&format!("fn {name}("))?;
    let mut depth = 0;
    for (i, c) in source[start..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 1 => return Some(&source[start..start + i + 1]),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every Rust block is a numbered listing, its number and caption (from
    /// the marker line above its fence) on a line of its own, indented as
    /// the block is; a snippet's mark leads to its block's listing, above
    /// or below; a test's mark leads where `test_url` says.
    #[test]
    fn a_snippet_mark_leads_to_its_block_and_a_test_mark_to_the_test() {
        let text = "Above {{#snippet}}:\n\n{{#listing Calls `a` & stops}}\n```rust\nfn a() {}\n```\n\n- Item:\n\n  {{#listing B}}\n  ```rust\n  fn b() {}\n  ```\n\n  Both {{#snippet above}}, by {{#test t.rs::f}}.\n\n```rust\nfn c() {}\n```\n";
        let shown = render_linked(text, |_| None, |path| Some(format!("https://x/{path}")));
        assert_eq!(
            shown,
            "Above <sup>[✓](#listing-1 \"proven by listing 1, below, run as a test\")</sup>:\n\n\
             <p class=\"listing\" id=\"listing-1\"><span class=\"listing-number\">Listing 1.</span> Calls <code>a</code> &amp; stops</p>\n\n\
             ```rust\nfn a() {}\n```\n\n- Item:\n\n  \
             <p class=\"listing\" id=\"listing-2\"><span class=\"listing-number\">Listing 2.</span> B</p>\n\n  ```rust\n  fn b() {}\n  ```\n\n  \
             Both <sup>[✓](#listing-2 \"proven by listing 2, above, run as a test\")</sup>, by \
             <sup>[✓](https://x/t.rs::f \"proven by the test t.rs::f\")</sup>.\n\n\
             <p class=\"listing\" id=\"listing-3\"><span class=\"listing-number\">Listing 3.</span></p>\n\n```rust\nfn c() {}\n```\n"
        );
        let captions: Vec<Option<&str>> = listing_captions(text).into_iter().map(|(_, c)| c).collect();
        assert_eq!(captions, [Some("Calls `a` & stops"), Some("B"), None]);
    }

    /// A sentence with several proofs has one mark, leading to the item of
    /// the list at the end of the page that links each proof and leads
    /// back; ✓‡ where part of it is not checked. A value's text keeps its
    /// space from the mark before it, and a claim's check joins the marks
    /// after it.
    #[test]
    fn a_sentence_with_several_proofs_has_one_mark_and_an_item_listing_them() {
        let text = "One {{#test a.rs}}. Two {{#test b.rs}} {{#test c.rs}}. Three {{#test d.rs}} {{#value x/y}}. \
                    Four {{#claim x/y}} {{#unchecked elsewhere}}.\n";
        let shown = render_linked(text, |_| None, |path| Some(format!("https://x/{path}")));
        let (prose, list) = shown.split_once("\n\n## Proofs\n\n").expect("a list of proofs");
        assert_eq!(
            prose,
            "One <sup>[✓](https://x/a.rs \"proven by the test a.rs\")</sup>. \
             Two <sup><a href=\"#proofs-1\" id=\"proved-1\" title=\"2 proofs: the list under Proofs, at the end of the page\">✓✓</a></sup>. \
             Three <sup>[✓](https://x/d.rs \"proven by the test d.rs\")</sup> (no value for x/y)\
             <sup title=\"checked on the kernel by the lab: x/y\">✓</sup>. \
             Four <q class=\"claim\">(no check x/y)</q>\
             <sup><a href=\"#proofs-2\" id=\"proved-2\" title=\"2 proofs: the list under Proofs, at the end of the page\">✓‡</a></sup>.\n"
        );
        assert!(
            list.contains(
                "<li id=\"proofs-1\"><ul>\n<li><a href=\"https://x/b.rs\">the test b.rs</a></li>\n\
                 <li><a href=\"https://x/c.rs\">the test c.rs</a></li>\n</ul><a href=\"#proved-1\""
            ),
            "{list}"
        );
        assert!(list.contains("<li>not checked by the lab: elsewhere</li>"), "{list}");
        assert_eq!(list.matches("<li id=").count(), 2, "{list}");
    }

    /// A segment is named by its flag as a word, by `Fin`, by `flags.fin`
    /// or by tcpdump's `Flags [F`; not inside FIN_WAIT_2 or `[Some(`.
    #[test]
    fn segments_are_named_as_words() {
        assert!(snippet_names("the client's FIN: 1", "FIN"));
        assert!(snippet_names("SegmentCount::exactly(Client, Fin, 1)", "FIN"));
        assert!(snippet_names("l.contains(\"Flags [R\")", "RST"));
        assert!(snippet_names("s.flags.syn", "SYN"));
        assert!(!snippet_names("client FIN_WAIT_2, server CLOSE_WAIT", "FIN"));
        assert!(!snippet_names("[Some(Established)]", "SYN"));
        assert!(!snippet_names("Finished", "FIN"));
        assert_eq!(behaviour_words("the RST; error E0382"), vec!["RST", "E0382"]);
    }

    #[test]
    fn a_marker_after_a_full_stop_and_links_belongs_to_its_sentence() {
        let page = "# T\n\nFirst `Ok(0)` here. Then CLOSE_WAIT stays.\n([a](a.md))\n{{#check a/b}}\n\n```rust\nassert!(true);\n```\n";
        let found = sentences(page);
        assert_eq!(
            found,
            [
                "First `Ok(0)` here.",
                "Then CLOSE_WAIT stays. ([a](a.md)) {{#check a/b}}"
            ]
        );
    }

    #[test]
    fn table_rows_are_statements_and_code_is_not_prose() {
        let page = "| a | b |\n|---|---|\n| x: `Ok(1)` | y. Z |\n\n```text\nTIME_WAIT\n```\n";
        assert_eq!(sentences(page), ["| a | b |", "| x: `Ok(1)` | y. Z |"]);
    }

    #[test]
    fn markers_with_only_space_between_them_form_one_cluster() {
        let text = "A {{#check x/y}} {{#snippet}}. B {{#test t.rs}}";
        let found = clusters(text);
        assert_eq!(found.len(), 2);
        assert_eq!(
            found[0].1,
            [Marker::Check("x/y".into()), Marker::Snippet { above: false }]
        );
        assert_eq!(sentence_before(text, found[1].0), "B");
    }

    #[test]
    fn behaviour_words_are_states_kinds_errnos_and_values() {
        let words = behaviour_words("CLOSE_WAIT, not CLOSE_WAITING; `Ok(0)`, `Ok(n)`, `Ok(())`, EPIPE");
        assert_eq!(words, ["CLOSE_WAIT", "EPIPE", "Ok(0)", "Ok(())"]);
        assert_eq!(names_a_behaviour("after 60 seconds"), Some("60 seconds".into()));
        assert_eq!(names_a_behaviour("nothing to see"), None);
    }

    #[test]
    fn snippets_name_states_in_rust_and_values_in_asserts() {
        assert!(snippet_names("wait_for(State::CloseWait)", "CLOSE_WAIT"));
        assert!(!snippet_names("wait_for(State::TimeWait)", "CLOSE_WAIT"));
        assert!(snippet_names("assert_eq!(n, 0);", "Ok(0)"));
        assert!(!snippet_names("assert_eq!(n, 10);", "Ok(0)"));
        let page = "```rust\nfirst\n```\n```text\nno\n```\ntext {{#snippet above}} {{#snippet}}\n```rust,ignore\nsecond\n```\n";
        let at = page.find("{{#snippet above").unwrap();
        assert_eq!(snippet_at(page, at, true), Some(("rust", "first\n")));
        assert_eq!(snippet_at(page, at, false), Some(("rust,ignore", "second\n")));
    }

    #[test]
    fn a_claim_is_shown_in_its_check_s_own_words() {
        use crate::transcript::{Check, Expected, Verdict};
        let check = Check {
            id: "x/y".into(),
            claim: "a read returns <nothing>".into(),
            expected: Expected::Ok { value: "0".into() },
            verdict: Verdict::Confirmed,
            observed: "0".into(),
            value: None,
            packets: false,
        };
        let shown = render("Rule. {{#claim x/y}}", |id| (id == "x/y").then_some(&check));
        assert_eq!(
            shown,
            "Rule. <q class=\"claim\">a read returns &lt;nothing&gt; → Ok(0)</q><sup title=\"checked on the kernel by the lab: x/y\">✓</sup>"
        );
        assert_eq!(
            render("{{#value x/y}} s", |_| Some(&check)),
            "0<sup title=\"checked on the kernel by the lab: x/y\">✓</sup> s"
        );
        assert_eq!(markers("{{#claim a/b}}"), [(0, Marker::Claim("a/b".into()))]);
    }

    #[test]
    fn a_function_body_ends_at_its_closing_brace() {
        let source = "fn a() { if x { y } }\nfn b() {}";
        assert_eq!(function_body(source, "a"), Some("fn a() { if x { y } }"));
        assert_eq!(function_body(source, "c"), None);
    }
}
