//! RFC 9293's state diagram with the resets the lab observes, drawn twice:
//! wide for a laptop's column and narrow for a phone's, the figure showing
//! whichever fits (theme/diagrams.css, a container query).

use std::fmt::Write as _;

use crate::diagram::{markers, tspans, wrap, ARROWS};

/// Where one drawing puts each state; labels that the rule below would put
/// over another line are placed by hand.
struct Layout {
    /// The drawing's class and the prefix of its markers' ids, so that two
    /// drawings on one page do not share an id.
    name: &'static str,
    width: i32,
    /// Half a state box's width.
    half: i32,
    nodes: &'static [(&'static str, i32, i32)],
    /// Where the resets lead: CLOSED, drawn a second time.
    reset: (i32, i32),
    placed: &'static [Placed],
    /// The states whose "→ CLOSED" ends write their text to the left.
    ends_left: &'static [&'static str],
}

/// A label placed by hand: the edge it belongs to (from, to), its
/// baseline's start, its anchor, and its lines.
struct Placed {
    edge: (&'static str, &'static str),
    x: i32,
    y: i32,
    anchor: &'static str,
    lines: &'static [&'static str],
}

const WIDE: Layout = Layout {
    name: "tcp-wide",
    width: 800,
    half: 60,
    nodes: &[
        ("CLOSED", 400, 40),
        ("LISTEN", 400, 120),
        ("SYN_RECV", 190, 200),
        ("SYN_SENT", 610, 200),
        ("ESTABLISHED", 400, 280),
        ("FIN_WAIT_1", 190, 370),
        ("CLOSE_WAIT", 610, 370),
        ("FIN_WAIT_2", 110, 460),
        ("CLOSING", 300, 460),
        ("LAST_ACK", 610, 460),
        ("TIME_WAIT", 190, 550),
    ],
    reset: (740, 280),
    placed: &[],
    ends_left: &[],
};

/// Three columns of 96 px boxes in a phone's 360 px; the opening states
/// to the sides, the resets' CLOSED to the right of ESTABLISHED's path.
const NARROW: Layout = Layout {
    name: "tcp-narrow",
    width: 370,
    half: 48,
    nodes: &[
        ("CLOSED", 180, 24),
        ("LISTEN", 60, 94),
        ("SYN_RECV", 60, 164),
        ("SYN_SENT", 300, 94),
        ("ESTABLISHED", 160, 234),
        ("FIN_WAIT_1", 60, 324),
        ("CLOSE_WAIT", 300, 324),
        ("FIN_WAIT_2", 52, 414),
        ("CLOSING", 160, 414),
        ("LAST_ACK", 300, 414),
        ("TIME_WAIT", 106, 504),
    ],
    reset: (318, 164),
    placed: &[
        Placed {
            edge: ("LISTEN", "SYN_RECV"),
            x: 66,
            y: 133,
            anchor: "start",
            lines: &["SYN / SYN ACK"],
        },
        Placed {
            edge: ("SYN_SENT", "ESTABLISHED"),
            x: 236,
            y: 160,
            anchor: "end",
            lines: &["SYN ACK / ACK"],
        },
        Placed {
            edge: ("ESTABLISHED", "CLOSED"),
            x: 216,
            y: 230,
            anchor: "start",
            lines: &["RST; close,", "unread data", "/ RST"],
        },
        Placed {
            edge: ("CLOSE_WAIT", "CLOSED"),
            x: 316,
            y: 272,
            anchor: "start",
            lines: &["RST"],
        },
        Placed {
            edge: ("ESTABLISHED", "CLOSE_WAIT"),
            x: 236,
            y: 298,
            anchor: "end",
            lines: &["FIN / ACK"],
        },
        Placed {
            edge: ("FIN_WAIT_1", "FIN_WAIT_2"),
            x: 50,
            y: 362,
            anchor: "end",
            lines: &["ACK of", "FIN"],
        },
    ],
    ends_left: &["LAST_ACK"],
};

/// The transitions of RFC 9293's diagram: from, to, event / action, and
/// whether the label goes under the arrow (where two labels would meet
/// above).
const EDGES: &[(&str, &str, &str, bool)] = &[
    ("CLOSED", "LISTEN", "passive open", false),
    ("CLOSED", "SYN_SENT", "connect / SYN", false),
    ("LISTEN", "SYN_RECV", "SYN / SYN ACK", false),
    ("SYN_SENT", "ESTABLISHED", "SYN ACK / ACK", false),
    ("SYN_RECV", "ESTABLISHED", "ACK", false),
    ("ESTABLISHED", "FIN_WAIT_1", "close / FIN", false),
    ("ESTABLISHED", "CLOSE_WAIT", "FIN / ACK", false),
    ("FIN_WAIT_1", "FIN_WAIT_2", "ACK of FIN", false),
    ("FIN_WAIT_1", "CLOSING", "FIN / ACK", false),
    ("FIN_WAIT_2", "TIME_WAIT", "FIN / ACK", true),
    ("CLOSING", "TIME_WAIT", "ACK of FIN", true),
    ("CLOSE_WAIT", "LAST_ACK", "close / FIN", false),
];

/// The resets the lab observes: from, and event / action. Each ends in
/// CLOSED at once.
const RESETS: &[(&str, &str)] = &[
    ("SYN_SENT", "RST"),
    ("ESTABLISHED", "RST; close, unread data / RST"),
    ("CLOSE_WAIT", "RST"),
];

const LEGEND: [(&str, &str); 4] = [
    ("state", "a state the lab observed: follow it to the scenarios"),
    ("unseen", "a state no scenario records (tests hold each still)"),
    ("seg", "event / what the socket sends"),
    ("rst", "a reset: the connection ends at once (CLOSED, right)"),
];

/// The state diagram, each state a link to `#state-NAME` when `observed`
/// names it (`#state-close-wait`): a figure with a wide drawing and a
/// narrow one. Meant to be inlined in a page, so that the links work and
/// the theme colours it.
pub fn state_machine_svg(observed: &[&str]) -> String {
    format!(
        "<figure class=\"diagram\">\n{}{}</figure>\n",
        draw(&WIDE, observed),
        draw(&NARROW, observed)
    )
}

fn draw(layout: &Layout, observed: &[&str]) -> String {
    let half = layout.half;
    let at = |name: &str| {
        layout
            .nodes
            .iter()
            .find(|n| n.0 == name)
            .map(|n| (n.1, n.2))
            .expect("a known state")
    };
    let bottom = layout.nodes.iter().map(|n| n.2).max().unwrap_or(0);
    let legend_width = ((layout.width - 66) / 7) as usize;
    let legend: Vec<(&str, Vec<String>)> = LEGEND.iter().map(|(k, t)| (*k, wrap(t, legend_width))).collect();
    let legend_top = bottom + 70;
    let height = legend_top + legend.iter().map(|(_, l)| l.len() as i32 * 14 + 4).sum::<i32>() + 8;
    let (width, ids) = (layout.width, layout.name);
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="tcp-states {ids}" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="monospace" font-size="12" role="img" aria-label="The TCP state diagram of RFC 9293, with the resets the lab observes">
<defs>{markers}</defs>
"##,
        markers = markers(ids),
    );
    let mut edge = |(from, to): (&str, &str),
                    (x1, y1): (i32, i32),
                    (x2, y2): (i32, i32),
                    label: &str,
                    under: bool,
                    kind: (&str, &str)| {
        // Leave each box at its top or bottom, or at its side when level.
        let (dy1, dy2) = match y2.cmp(&y1) {
            std::cmp::Ordering::Greater => (14, -14),
            std::cmp::Ordering::Less => (-14, 14),
            std::cmp::Ordering::Equal => (0, 0),
        };
        let (dx1, dx2) = match (y1 == y2, x2 > x1) {
            (true, true) => (half, -half),
            (true, false) => (-half, half),
            _ => (0, 0),
        };
        // A label to the left of a vertical arrow, above a level one, else
        // beside the arrow's middle on the side where it stays clear of it:
        // above a falling line's middle, to the right of one falling to
        // the right; under, to the left.
        let falls_right = (x2 - x1) * (y2 - y1) > 0;
        let (mx, my) = ((x1 + x2) / 2, (y1 + y2) / 2);
        let (tx, ty, anchor) = match (x1 == x2, y1 == y2, falls_right != under) {
            (true, _, _) => (x1 - 6, my + 4, "end"),
            (_, true, _) => ((x1 + dx1 + x2 + dx2) / 2, y1 - 6, "middle"),
            (_, _, true) => (mx + 8, if under { my + 12 } else { my - 4 }, "start"),
            (_, _, false) => (mx - 8, if under { my + 12 } else { my - 4 }, "end"),
        };
        let placed = layout.placed.iter().find(|p| p.edge == (from, to));
        let (tx, ty, anchor, lines) = match placed {
            Some(p) => (p.x, p.y, p.anchor, p.lines.to_vec()),
            None => (tx, ty, anchor, vec![label]),
        };
        writeln!(
            svg,
            r##"<line class="tcp-{kind}" x1="{a}" y1="{b}" x2="{c}" y2="{d}" stroke="{colour}" stroke-width="1.2" marker-end="url(#{ids}-{kind})"/><text class="{text_class} tcp-halo" x="{tx}" y="{ty}" text-anchor="{anchor}" fill="{colour}">{text}</text>"##,
            kind = kind.0,
            colour = kind.1,
            text_class = if kind.0 == "rst" { "tcp-rst" } else { "tcp-text" },
            a = x1 + dx1,
            b = y1 + dy1,
            c = x2 + dx2,
            d = y2 + dy2,
            text = tspans(tx, &lines, 14),
        )
        .unwrap();
    };
    for (from, to, label, under) in EDGES {
        edge((from, to), at(from), at(to), label, *under, ARROWS[2]);
    }
    for (from, label) in RESETS {
        edge((from, "CLOSED"), at(from), layout.reset, label, false, ARROWS[1]);
    }
    // TIME_WAIT and LAST_ACK end in CLOSED, drawn again at the bottom.
    for (from, label) in [("TIME_WAIT", "60 s"), ("LAST_ACK", "ACK of FIN")] {
        let (x, y) = at(from);
        let (tx, anchor) = if layout.ends_left.contains(&from) {
            (x - 6, "end")
        } else {
            (x + 6, "start")
        };
        writeln!(
            svg,
            r##"<line class="tcp-seg" x1="{x}" y1="{b}" x2="{x}" y2="{d}" stroke="#444444" stroke-width="1.2" marker-end="url(#{ids}-seg)"/><text class="tcp-text tcp-halo" x="{tx}" y="{ty}" text-anchor="{anchor}" fill="#000000">{label} → CLOSED</text>"##,
            b = y + 14,
            d = y + 50,
            ty = y + 40,
        )
        .unwrap();
    }
    let reset_node = ("CLOSED", layout.reset.0, layout.reset.1);
    for (name, x, y) in layout.nodes.iter().chain([&reset_node]) {
        let seen = observed.contains(name);
        let (class, fill, stroke) = if seen {
            ("tcp-state", "#fdf3d0", "#8a6d1e")
        } else {
            ("tcp-state-unseen", "#ffffff", "#888888")
        };
        let box_ = format!(
            r##"<rect class="{class}" x="{rx}" y="{ry}" width="{w}" height="28" rx="6" fill="{fill}" stroke="{stroke}"/><text class="tcp-text" x="{x}" y="{ty}" text-anchor="middle" font-weight="bold" fill="#000000">{name}</text>"##,
            rx = x - half,
            ry = y - 14,
            w = 2 * half,
            ty = y + 4,
        );
        if seen {
            let anchor = name.to_lowercase().replace('_', "-");
            writeln!(svg, r##"<a href="#state-{anchor}">{box_}</a>"##).unwrap();
        } else {
            writeln!(svg, "{box_}").unwrap();
        }
    }
    let mut y = legend_top;
    for (kind, lines) in &legend {
        let sample = match *kind {
            "state" => r##"<rect class="tcp-state" x="20" y="Y" width="36" height="14" rx="3" fill="#fdf3d0" stroke="#8a6d1e"/>"##.to_string(),
            "unseen" => r##"<rect class="tcp-state-unseen" x="20" y="Y" width="36" height="14" rx="3" fill="#ffffff" stroke="#888888"/>"##.to_string(),
            kind => {
                let (class, colour) = if kind == "rst" { ARROWS[1] } else { ARROWS[2] };
                format!(r#"<line class="tcp-{class}" x1="20" y1="Y7" x2="56" y2="Y7" stroke="{colour}" stroke-width="1.2" marker-end="url(#{ids}-{class})"/>"#)
            }
        };
        let sample = sample
            .replace("Y7", &(y - 4).to_string())
            .replace("\"Y\"", &format!("\"{}\"", y - 11));
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        writeln!(
            svg,
            r##"{sample}<text class="tcp-text" x="66" y="{y}" fill="#000000">{}</text>"##,
            tspans(66, &lines, 14)
        )
        .unwrap();
        y += lines.len() as i32 * 14 + 4;
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The boxes of a layout, as (left, top, right, bottom).
    fn boxes(layout: &Layout) -> Vec<(&str, i32, i32, i32, i32)> {
        let reset = ("CLOSED", layout.reset.0, layout.reset.1);
        layout
            .nodes
            .iter()
            .chain([&reset])
            .map(|(n, x, y)| (*n, x - layout.half, y - 14, x + layout.half, y + 14))
            .collect()
    }

    #[test]
    fn each_layout_keeps_its_boxes_apart_and_inside_the_drawing() {
        for layout in [&WIDE, &NARROW] {
            let boxes = boxes(layout);
            for (i, a) in boxes.iter().enumerate() {
                assert!(
                    a.1 >= 0 && a.3 <= layout.width,
                    "{}: {} leaves the drawing",
                    layout.name,
                    a.0
                );
                for b in &boxes[i + 1..] {
                    let apart = a.3 + 8 <= b.1 || b.3 + 8 <= a.1 || a.4 + 8 <= b.2 || b.4 + 8 <= a.2;
                    assert!(apart, "{}: {} and {} meet", layout.name, a.0, b.0);
                }
            }
        }
    }

    #[test]
    fn each_layout_draws_every_state_and_places_labels_only_on_its_edges() {
        // The name prefixes the markers' ids: two drawings on one page.
        assert_ne!(WIDE.name, NARROW.name);
        for layout in [&WIDE, &NARROW] {
            let mut drawn: Vec<&str> = layout.nodes.iter().map(|n| n.0).collect();
            drawn.sort();
            let mut every: Vec<&str> = EDGES.iter().flat_map(|e| [e.0, e.1]).collect();
            every.sort();
            every.dedup();
            assert_eq!(drawn, every, "{}", layout.name);
            for placed in layout.placed {
                let known = EDGES.iter().any(|e| (e.0, e.1) == placed.edge)
                    || RESETS.iter().any(|r| (r.0, "CLOSED") == placed.edge);
                assert!(known, "{}: a label for no edge: {:?}", layout.name, placed.edge);
            }
        }
    }
}
