//! Sequence diagrams drawn from a transcript: two lifelines, every segment
//! as an arrow labelled with its flags, the states of both sockets along
//! their lifelines, the calls beside them. Plain SVG, the same for two runs
//! on the same kernel, so the book can show it and a test can check it.

use std::fmt::Write as _;

use crate::observe::describe;
use crate::transcript::{PacketRow, Role, Step, Transcript};

const WIDTH: i32 = 980;
const CLIENT_X: i32 = 350;
const SERVER_X: i32 = 630;
const ROW: i32 = 26;
const TOP: i32 = 64;
/// Characters of a call's text that fit beside a lifeline.
const CALL_CHARS: usize = 46;

enum Event<'a> {
    Segment(&'a PacketRow),
    Step(&'a Step),
}

/// The transcript's sequence diagram, as an SVG document.
pub fn sequence_svg(t: &Transcript) -> String {
    let rows = t.packet_rows();
    let events = merge(t, &rows);
    let mut body = String::new();
    let mut y = TOP;
    let mut shown = (String::new(), String::new());
    for event in &events {
        match event {
            Event::Segment(row) => {
                draw_segment(&mut body, row, y);
                y += ROW;
            }
            Event::Step(Step::Call { who, call, result }) => {
                draw_call(&mut body, *who, call, result, y);
                y += ROW;
            }
            Event::Step(Step::States { client, server }) => {
                let now = (describe(*client), describe(*server));
                if now != shown {
                    draw_state(&mut body, CLIENT_X, &now.0, y);
                    draw_state(&mut body, SERVER_X, &now.1, y);
                    shown = now;
                    y += ROW;
                }
            }
            Event::Step(Step::Measured { .. }) => {}
        }
    }
    let height = y + 24;
    let mut svg = String::new();
    write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="monospace" font-size="12" role="img" aria-label="{id}: packets and socket states">
<title>{id}: packets and socket states, from a run of the lab</title>
<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#333"/></marker></defs>
<rect width="100%" height="100%" fill="#ffffff"/>
<text x="{cx}" y="24" text-anchor="middle" font-weight="bold" font-size="14">client</text>
<text x="{sx}" y="24" text-anchor="middle" font-weight="bold" font-size="14">server</text>
<line x1="{cx}" y1="34" x2="{cx}" y2="{end}" stroke="#999" stroke-dasharray="4 3"/>
<line x1="{sx}" y1="34" x2="{sx}" y2="{end}" stroke="#999" stroke-dasharray="4 3"/>
"##,
        id = escape(&t.id),
        cx = CLIENT_X,
        sx = SERVER_X,
        end = height - 12,
    )
    .unwrap();
    svg.push_str(&body);
    svg.push_str("</svg>\n");
    svg
}

/// Segments and steps in the order they happened. Steps are placed among
/// the segments that calls send (data, SYN, FIN, RST); a bare ACK, which the
/// kernel may send a moment sooner or later, always follows the segment it
/// acknowledges, so that two runs draw the same picture. A step recorded
/// when `n` such segments had been captured comes before the next one; a
/// call comes before the segments captured since the step before it, which
/// it sent.
fn merge<'a>(t: &'a Transcript, rows: &'a [PacketRow]) -> Vec<Event<'a>> {
    let bare_ack = |i: usize| {
        let f = t.segments[i].flags;
        f.ack && !f.syn && !f.fin && !f.rst && t.segments[i].len == 0
    };
    // How many segments other than bare ACKs are among the first `n`.
    let sent_before = |n: usize| (0..n.min(t.segments.len())).filter(|&i| !bare_ack(i)).count();
    let mut previous = 0;
    let positions: Vec<usize> = t
        .steps
        .iter()
        .zip(&t.step_positions)
        .map(|(step, &at)| {
            let at = sent_before(at);
            let position = if matches!(step, Step::Call { .. }) {
                previous
            } else {
                at
            };
            previous = at;
            position
        })
        .collect();
    let mut events = Vec::new();
    let mut steps = t.steps.iter().zip(positions).peekable();
    for row in rows {
        if !bare_ack(row.index) {
            let before = sent_before(row.index);
            while let Some((step, _)) = steps.next_if(|(_, at)| *at <= before) {
                events.push(Event::Step(step));
            }
        }
        events.push(Event::Segment(row));
    }
    events.extend(steps.map(|(step, _)| Event::Step(step)));
    events
}

fn draw_segment(svg: &mut String, row: &PacketRow, y: i32) {
    let (x1, x2) = if row.src == "client" {
        (CLIENT_X, SERVER_X)
    } else {
        (SERVER_X, CLIENT_X)
    };
    let colour = if row.text.contains("RST") {
        "#c0392b"
    } else if row.text.contains("FIN") {
        "#1f5fa8"
    } else {
        "#333"
    };
    let label = if row.repeated {
        format!("{} (repeated)", row.text)
    } else {
        row.text.clone()
    };
    let dash = if row.repeated { r#" stroke-dasharray="6 3""# } else { "" };
    write!(
        svg,
        r#"<line x1="{x1}" y1="{y}" x2="{x2}" y2="{y2}" stroke="{colour}" stroke-width="1.5"{dash} marker-end="url(#arrow)"/>
<text x="{mid}" y="{ty}" text-anchor="middle" fill="{colour}">{label}</text>
"#,
        y2 = y + 12,
        mid = (CLIENT_X + SERVER_X) / 2,
        ty = y - 3,
        label = escape(&squeeze(&label)),
    )
    .unwrap();
}

fn draw_call(svg: &mut String, who: Role, call: &str, result: &str, y: i32) {
    // The kind of result, without the message: `Err(BrokenPipe)`.
    let result = result.split(" \"").next().unwrap_or(result);
    let mut text = if result.is_empty() {
        call.to_string()
    } else {
        format!("{call} → {result}")
    };
    if text.chars().count() > CALL_CHARS {
        text = text.chars().take(CALL_CHARS - 1).collect::<String>() + "…";
    }
    let (x, anchor) = match who {
        Role::Client => (CLIENT_X - 10, "end"),
        Role::Server => (SERVER_X + 10, "start"),
    };
    writeln!(
        svg,
        r##"<text x="{x}" y="{ty}" text-anchor="{anchor}" fill="#555">{text}</text>"##,
        ty = y + 9,
        text = escape(&text),
    )
    .unwrap();
}

fn draw_state(svg: &mut String, x: i32, state: &str, y: i32) {
    let width = 8 * state.len() as i32 + 12;
    write!(
        svg,
        r##"<rect x="{rx}" y="{ry}" width="{width}" height="18" rx="4" fill="#fdf3d0" stroke="#b08d2c"/>
<text x="{x}" y="{ty}" text-anchor="middle" font-weight="bold">{state}</text>
"##,
        rx = x - width / 2,
        ry = y - 4,
        ty = y + 9,
        state = escape(state),
    )
    .unwrap();
}

/// Collapses the column padding of a packet row's text.
fn squeeze(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A state of RFC 9293's diagram: its name, where it is drawn, and whether
/// the lab observed it (then it is drawn filled and links to its entry).
struct Node {
    name: &'static str,
    x: i32,
    y: i32,
}

const NODES: &[Node] = &[
    Node {
        name: "CLOSED",
        x: 400,
        y: 40,
    },
    Node {
        name: "LISTEN",
        x: 400,
        y: 120,
    },
    Node {
        name: "SYN_RECV",
        x: 190,
        y: 200,
    },
    Node {
        name: "SYN_SENT",
        x: 610,
        y: 200,
    },
    Node {
        name: "ESTABLISHED",
        x: 400,
        y: 280,
    },
    Node {
        name: "FIN_WAIT_1",
        x: 190,
        y: 370,
    },
    Node {
        name: "CLOSE_WAIT",
        x: 610,
        y: 370,
    },
    Node {
        name: "FIN_WAIT_2",
        x: 110,
        y: 460,
    },
    Node {
        name: "CLOSING",
        x: 300,
        y: 460,
    },
    Node {
        name: "LAST_ACK",
        x: 610,
        y: 460,
    },
    Node {
        name: "TIME_WAIT",
        x: 190,
        y: 550,
    },
];

/// The transitions of RFC 9293's diagram: from, to, event / action.
const EDGES: &[(&str, &str, &str)] = &[
    ("CLOSED", "LISTEN", "passive open"),
    ("CLOSED", "SYN_SENT", "connect / SYN"),
    ("LISTEN", "SYN_RECV", "SYN / SYN ACK"),
    ("SYN_SENT", "ESTABLISHED", "SYN ACK / ACK"),
    ("SYN_RECV", "ESTABLISHED", "ACK"),
    ("ESTABLISHED", "FIN_WAIT_1", "close / FIN"),
    ("ESTABLISHED", "CLOSE_WAIT", "FIN / ACK"),
    ("FIN_WAIT_1", "FIN_WAIT_2", "ACK of FIN"),
    ("FIN_WAIT_1", "CLOSING", "FIN / ACK"),
    ("FIN_WAIT_2", "TIME_WAIT", "FIN / ACK"),
    ("CLOSING", "TIME_WAIT", "ACK of FIN"),
    ("CLOSE_WAIT", "LAST_ACK", "close / FIN"),
];

/// RFC 9293's state diagram, each state a link to `#state-NAME` when
/// `observed` names it (lower case, hyphens: `#state-close-wait`). Meant to
/// be inlined in a page, so that the links work.
pub fn state_machine_svg(observed: &[&str]) -> String {
    let (width, height) = (800, 640);
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="monospace" font-size="12" role="img" aria-label="The TCP state diagram of RFC 9293">
<defs><marker id="state-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>
"##
    );
    let at = |name: &str| {
        NODES
            .iter()
            .find(|n| n.name == name)
            .map(|n| (n.x, n.y))
            .expect("a known state")
    };
    for (from, to, label) in EDGES {
        let ((x1, y1), (x2, y2)) = (at(from), at(to));
        let (dy1, dy2) = if y2 > y1 {
            (14, -14)
        } else if y2 < y1 {
            (-14, 14)
        } else {
            (0, 0)
        };
        let (dx1, dx2) = if y1 == y2 {
            if x2 > x1 {
                (60, -60)
            } else {
                (-60, 60)
            }
        } else {
            (0, 0)
        };
        writeln!(
            svg,
            r##"<line x1="{a}" y1="{b}" x2="{c}" y2="{d}" stroke="#555" marker-end="url(#state-arrow)"/><text x="{tx}" y="{ty}" text-anchor="middle" fill="#555" font-size="11">{label}</text>"##,
            a = x1 + dx1,
            b = y1 + dy1,
            c = x2 + dx2,
            d = y2 + dy2,
            tx = (x1 + x2) / 2 + if x2 >= x1 { 8 } else { -8 },
            ty = (y1 + y2) / 2 + 4,
            label = escape(label),
        )
        .unwrap();
    }
    // TIME_WAIT and LAST_ACK end in CLOSED, drawn again at the bottom.
    for (from, label) in [("TIME_WAIT", "60 s"), ("LAST_ACK", "ACK of FIN")] {
        let (x, y) = at(from);
        writeln!(
            svg,
            r##"<line x1="{x}" y1="{b}" x2="{x}" y2="{d}" stroke="#555" marker-end="url(#state-arrow)"/><text x="{tx}" y="{ty}" fill="#555" font-size="11">{label} → CLOSED</text>"##,
            b = y + 14,
            d = y + 50,
            tx = x + 8,
            ty = y + 40,
        )
        .unwrap();
    }
    for node in NODES {
        let seen = observed.contains(&node.name);
        let (fill, stroke) = if seen {
            ("#fdf3d0", "#b08d2c")
        } else {
            ("#f4f4f4", "#aaa")
        };
        let box_ = format!(
            r##"<rect x="{rx}" y="{ry}" width="120" height="28" rx="6" fill="{fill}" stroke="{stroke}"/><text x="{x}" y="{ty}" text-anchor="middle" font-weight="bold">{name}</text>"##,
            rx = node.x - 60,
            ry = node.y - 14,
            x = node.x,
            ty = node.y + 4,
            name = node.name,
        );
        if seen {
            let anchor = node.name.to_lowercase().replace('_', "-");
            writeln!(svg, r##"<a href="#state-{anchor}">{box_}</a>"##).unwrap();
        } else {
            writeln!(svg, "{box_}").unwrap();
        }
    }
    svg.push_str("</svg>\n");
    svg
}
