//! The Chinese edition (po/zh-CN.po, po/README.md): every message is
//! translated and none is fuzzy; each translation keeps what a proof or a
//! link depends on (markers, code spans, link targets, states, flags,
//! `ErrorKind`s, errnos, `Ok(n)`, numbers with a unit); the glossary's
//! checked terms are used. That the catalogue holds every message of
//! today's source is .ci/run's `msgcmp`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use tcpclose::proof::{KINDS, SEGMENTS, STATES};

/// The catalogue's messages with their translations, the header apart.
fn catalogue(path: &str) -> Vec<(String, String, bool)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    let catalog = polib::po_file::parse(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    catalog
        .messages()
        .filter(|m| !m.msgid().is_empty())
        .map(|m| {
            let msgstr = m.msgstr().unwrap_or_default().to_string();
            (m.msgid().to_string(), msgstr, m.flags().is_fuzzy())
        })
        .collect()
}

/// The flags a translation keeps: the segments the book names, and ACK.
const FLAGS: [&str; 4] = [SEGMENTS[0], SEGMENTS[1], SEGMENTS[2], "ACK"];
const UNITS: [&str; 8] = ["ms", "µs", "ns", "s", "min", "KiB", "MiB", "GiB"];

/// Each piece of `text` between `open` and the next `close`, both included.
fn spans(text: &str, open: &str, close: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(close) else { break };
        found.push(format!("{open}{}{close}", &after[..end]));
        rest = &after[end + close.len()..];
    }
    found
}

/// The words of `text`: runs of ASCII letters, digits, `_` and `µ`.
fn words(text: &str) -> Vec<&str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == 'µ'))
        .filter(|w| !w.is_empty())
        .collect()
}

/// What a translation must keep of its message, by kind: the markers and
/// link targets each as often, the rest each at least once.
fn kept(text: &str) -> BTreeMap<&'static str, Vec<String>> {
    let mut kinds = BTreeMap::new();
    kinds.insert("marker", spans(text, "{{#", "}}"));
    kinds.insert("link target", spans(text, "](", ")"));
    kinds.insert("code span", spans(text, "`", "`"));
    kinds.insert("Ok(n)", spans(text, "Ok(", ")"));
    let w = words(text);
    let pick =
        |list: &[&str]| -> Vec<String> { w.iter().filter(|x| list.contains(x)).map(|x| x.to_string()).collect() };
    kinds.insert("state", pick(&STATES));
    // "SYNs" is the flag too: a translation says "SYN".
    let flags = w
        .iter()
        .map(|x| x.strip_suffix('s').filter(|stem| FLAGS.contains(stem)).unwrap_or(x))
        .filter(|x| FLAGS.contains(x))
        .map(|x| x.to_string())
        .collect();
    kinds.insert("flag", flags);
    kinds.insert("ErrorKind", pick(&KINDS));
    let errnos = w
        .iter()
        .filter(|x| x.len() > 2 && x.starts_with('E') && x.chars().all(|c| c.is_ascii_uppercase()))
        .map(|x| x.to_string())
        .collect();
    kinds.insert("errno", errnos);
    // A number, then (after at most one space) a unit symbol: "60 s", "16 MiB".
    let mut numbers = Vec::new();
    for (at, _) in text.match_indices(|c: char| c.is_ascii_digit()) {
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_') {
            continue;
        }
        let digits: String = text[at..]
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let rest = &text[at + digits.len()..];
        let rest = rest.strip_prefix(' ').unwrap_or(rest);
        let unit: String = rest.chars().take_while(|c| c.is_alphanumeric()).collect();
        if UNITS.contains(&unit.as_str()) {
            numbers.push(format!("{} {unit}", digits.trim_end_matches('.')));
        }
    }
    kinds.insert("number with unit", numbers);
    kinds
}

/// What a translation lost or added of what its message must keep.
fn differences(msgid: &str, msgstr: &str) -> Vec<String> {
    let (source, translation) = (kept(msgid), kept(msgstr));
    let mut found = Vec::new();
    for (kind, wanted) in &source {
        let got = &translation[kind];
        let same = if ["marker", "link target"].contains(kind) {
            let (mut a, mut b) = (wanted.clone(), got.clone());
            a.sort();
            b.sort();
            a == b
        } else {
            wanted.iter().collect::<BTreeSet<_>>() == got.iter().collect::<BTreeSet<_>>()
        };
        if !same {
            found.push(format!("{kind}s {wanted:?} became {got:?}"));
        }
    }
    found
}

#[test]
fn every_message_is_translated_and_none_is_fuzzy() {
    let messages = catalogue("po/zh-CN.po");
    assert!(messages.len() > 1000, "{} messages", messages.len());
    let missing: Vec<&str> = messages
        .iter()
        .filter(|(_, msgstr, fuzzy)| msgstr.is_empty() || *fuzzy)
        .map(|(msgid, _, _)| msgid.as_str())
        .collect();
    assert!(
        missing.is_empty(),
        "{} untranslated or fuzzy: {missing:#?}",
        missing.len()
    );
}

#[test]
fn translations_keep_markers_code_and_names() {
    let mut problems = Vec::new();
    for (msgid, msgstr, _) in catalogue("po/zh-CN.po") {
        if msgstr.is_empty() {
            continue;
        }
        for difference in differences(&msgid, &msgstr) {
            problems.push(format!("{msgid:?}: {difference}"));
        }
    }
    assert!(
        problems.is_empty(),
        "{} translations:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The glossary's checked rows (po/README.md): the English term, the
/// Chinese one its translations use.
fn checked_terms() -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("po/README.md");
    let text = std::fs::read_to_string(path).unwrap();
    let glossary = text.split("## Glossary").nth(1).expect("a Glossary section");
    glossary
        .lines()
        .filter(|l| l.starts_with('|') && !l.starts_with("|---"))
        .filter_map(|row| {
            let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
            let [english, chinese, checked] = cells[..] else {
                return None;
            };
            let chinese = match checked.strip_prefix("checked") {
                Some(rest) if !rest.trim_start_matches(':').trim().is_empty() => {
                    rest.trim_start_matches(':').trim().to_string()
                }
                Some(_) => chinese.split(['、', '（']).next().unwrap_or_default().to_string(),
                None => return None,
            };
            let english = english.split([' ', ',', '(']).next().unwrap_or_default().to_lowercase();
            Some((english, chinese))
        })
        .collect()
}

/// `msgid` outside its code, markers and link targets, in lower case.
fn prose(msgid: &str) -> String {
    let mut text = msgid.to_lowercase();
    for span in spans(msgid, "{{#", "}}")
        .into_iter()
        .chain(spans(msgid, "`", "`"))
        .chain(spans(msgid, "](", ")"))
    {
        text = text.replace(&span.to_lowercase(), " ");
    }
    text
}

/// Whether `text` has a word that starts with `term`, not inside a name
/// such as `hyper-half-close`.
fn has_term(text: &str, term: &str) -> bool {
    text.match_indices(term).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        // "sockets", "peer's", not "socket2".
        let after = text[at + term.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && !after.is_some_and(|c| c.is_ascii_digit() || c == '-' || c == '_')
    })
}

/// A message that is a string literal of a listing's code (mdbook-xgettext
/// extracts them with the comments): `"text"`, `b"bytes"`, `'c'`.
fn is_literal(msgid: &str) -> bool {
    let body = msgid.strip_prefix('b').unwrap_or(msgid);
    (body.starts_with('"') && body.ends_with('"') && body.len() >= 2)
        || (body.starts_with('\'') && body.ends_with('\'') && body.len() >= 2)
}

/// The code the book shows is the code that runs: its string literals
/// stay as they are (what the programs print is what the transcripts show).
#[test]
fn string_literals_of_the_code_stay_as_they_are() {
    let changed: Vec<String> = catalogue("po/zh-CN.po")
        .into_iter()
        .filter(|(msgid, msgstr, _)| is_literal(msgid) && msgid != msgstr)
        .map(|(msgid, msgstr, _)| format!("{msgid} became {msgstr}"))
        .collect();
    assert!(
        changed.is_empty(),
        "{} literals:\n{}",
        changed.len(),
        changed.join("\n")
    );
}

#[test]
fn the_glossary_s_checked_terms_are_used() {
    let terms = checked_terms();
    assert!(terms.len() >= 8, "{terms:?}");
    let mut problems = Vec::new();
    for (msgid, msgstr, _) in catalogue("po/zh-CN.po") {
        if is_literal(&msgid) {
            continue;
        }
        let text = prose(&msgid);
        for (english, chinese) in &terms {
            if has_term(&text, english) && !msgstr.contains(chinese.as_str()) {
                problems.push(format!("{msgid:?} says {english}, its translation lacks {chinese}"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} translations:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn a_dropped_marker_or_a_changed_errno_is_found() {
    let msgid = "A write fails with `BrokenPipe` (EPIPE) after 60 s {{#check broken-pipe/x}}.";
    assert_eq!(
        differences(
            msgid,
            "60 s 后，写以 `BrokenPipe`（EPIPE）失败 {{#check broken-pipe/x}}。"
        ),
        Vec::<String>::new()
    );
    assert_eq!(
        differences(msgid, "60 s 后，写以 `BrokenPipe`（EPIPE）失败。"),
        ["markers [\"{{#check broken-pipe/x}}\"] became []"]
    );
    assert_eq!(
        differences(
            msgid,
            "60 s 后，写以 `BrokenPipe`（ECONNRESET）失败 {{#check broken-pipe/x}}。"
        ),
        ["errnos [\"EPIPE\"] became [\"ECONNRESET\"]"]
    );
    assert_eq!(
        differences(
            msgid,
            "60 秒后，写以 `BrokenPipe`（EPIPE）失败 {{#check broken-pipe/x}}。"
        ),
        ["number with units [\"60 s\"] became []"]
    );
}
