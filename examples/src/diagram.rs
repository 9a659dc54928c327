//! Sequence diagrams drawn from a transcript. Time runs down the page: every
//! event of the run (a segment, a call's result, a change of state) is drawn
//! in the order of its timestamp, all from one clock (the capture's kernel
//! timestamps and the lab's own `SystemTime`), and a pause long enough to
//! matter is drawn as a gap labelled with its length. A lifeline for the
//! client and one for the server, and between them one for each other
//! endpoint a segment drawn comes from or goes to (a pool's second
//! connection, another client); every segment an arrow from the lifeline of
//! its source address to that of its destination, labelled with its flags;
//! the calls beside their side; a legend. What is drawn is first a
//! [`Sequence`], which the tests check against the run, then SVG. Colours
//! come from CSS classes (`tcp-fin`, `tcp-rst`, ...) that the book's theme
//! sets; the file on its own has its own style, light or dark as the reader
//! prefers. 440 px wide, so that a phone shows it at a legible size.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use crate::observe::describe;
use crate::transcript::{CallResult, PacketRow, Role, Step, Transcript};

const WIDTH: i32 = 440;
const CLIENT_X: i32 = 110;
const SERVER_X: i32 = 330;
const FONT: i32 = 13;
/// The height of a line of text.
const LINE: i32 = 16;
const TOP: i32 = 44;
/// Characters on a line of a call's text; a longer one wraps.
const WRAP: usize = 46;
/// A pause between two events drawn as a gap with its length, in seconds.
const GAP_SHOWN: f64 = 0.2;
/// Lifelines closer than this have their labels on two rows, so that
/// neighbours' labels do not meet.
const LABELS_APART: i32 = 70;

/// Where a drawing puts its lifelines and its calls. The model's
/// lifelines stand where the narrow drawing puts them; a wider one spreads
/// them in proportion.
pub struct Layout {
    /// The drawing's class, beside `tcp-sequence`.
    pub class: &'static str,
    width: i32,
    client_x: i32,
    server_x: i32,
    /// Characters on a line of a call's text.
    wrap: usize,
}

/// For a phone's column: 440 px, shrinking with it; a long call crosses
/// a lifeline.
pub const NARROW: Layout = Layout {
    class: "tcp-narrow",
    width: WIDTH,
    client_x: CLIENT_X,
    server_x: SERVER_X,
    wrap: WRAP,
};

/// For a laptop's column (760 px, shrinking to 750): the client's calls in
/// a column left of its lifeline, the server's right of its own, each
/// line of 34 characters at most (a longer token stays whole).
pub const WIDE: Layout = Layout {
    class: "tcp-wide",
    width: 760,
    client_x: 280,
    server_x: 480,
    wrap: 34,
};

impl Layout {
    /// Where this drawing puts what the narrow one puts at `x`.
    fn x(&self, x: i32) -> i32 {
        self.client_x + (x - CLIENT_X) * (self.server_x - self.client_x) / (SERVER_X - CLIENT_X)
    }
}

/// What a sequence diagram draws, in the order it draws it: the SVG is
/// rendered from this, and the tests check it against the run.
#[derive(Clone, Debug, PartialEq)]
pub struct Sequence {
    pub id: String,
    /// Left to right: the client, the other endpoints in the order they
    /// first appear, the server.
    pub lifelines: Vec<Lifeline>,
    /// Top to bottom.
    pub events: Vec<Event>,
    /// Only SYN, FIN and RST drawn (the legend says so).
    pub bulk: bool,
    /// `Err` holds why nothing was captured (drawn below the events).
    pub capture: Result<(), String>,
}

/// A vertical line for one end of the run's connections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lifeline {
    /// `client`, `server`, `other`, `other 2`, ...: never a port, which
    /// varies from run to run.
    pub label: String,
    /// The address whose segments start or end on it; `None` for a client
    /// or server the run did not name.
    pub address: Option<SocketAddr>,
    pub x: i32,
    /// The row of its label: 1 under 0, where neighbours are close.
    pub label_row: i32,
}

/// One thing drawn, at its time since the first.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub at: Duration,
    pub shown: Shown,
}

/// What an event draws.
#[derive(Clone, Debug, PartialEq)]
pub enum Shown {
    Arrow(Arrow),
    /// A call's text beside its side.
    Call {
        who: Role,
        text: String,
    },
    /// Both ends' states, on the client's and the server's lifelines.
    States {
        client: String,
        server: String,
    },
}

/// A segment, drawn as an arrow between two lifelines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arrow {
    /// The index in `Sequence::lifelines` of the lifeline it starts from.
    pub from: usize,
    /// The index in `Sequence::lifelines` of the lifeline it points to.
    pub to: usize,
    /// The index of its segment in `Transcript::segments`.
    pub segment: usize,
    /// The transcript row's flags and numbers: `FIN ACK seq=1 ack=1`.
    pub label: String,
    pub kind: ArrowKind,
    /// The same segment as the arrow of its row above, sent again.
    pub again: bool,
    /// The first of a row sent again later.
    pub repeated: bool,
}

/// How an arrow is coloured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArrowKind {
    Fin,
    Rst,
    /// SYN, data, ACK.
    Other,
}

impl ArrowKind {
    /// Its CSS class (`tcp-fin`, ...) and colour on its own.
    fn style(self) -> (&'static str, &'static str) {
        match self {
            ArrowKind::Fin => ARROWS[0],
            ArrowKind::Rst => ARROWS[1],
            ArrowKind::Other => ARROWS[2],
        }
    }
}

impl Sequence {
    /// The arrows, top to bottom, each with its time.
    pub fn arrows(&self) -> impl Iterator<Item = (Duration, &Arrow)> {
        self.events.iter().filter_map(|e| match &e.shown {
            Shown::Arrow(arrow) => Some((e.at, arrow)),
            _ => None,
        })
    }
}

/// What the timeline holds before it is laid out: a segment is a row of
/// the transcript's packets and which of its segments (the first, or one
/// sent again).
enum Happened {
    Segment { row: usize, index: usize },
    Call { who: Role, text: String },
    States { client: String, server: String },
}

/// How long a call must take to be drawn as one that waited.
const CALL_PAUSE: Duration = Duration::from_millis(100);

/// The events of a run in the order of their timestamps. A segment and a
/// step with the same timestamp: the segment first (a step is recorded
/// after the call that sent or awaited it). A call whose start was
/// recorded is drawn at its start. A change of state is shown once; a
/// measured quantity is not shown.
fn timeline(t: &Transcript, rows: &[PacketRow]) -> Vec<(SystemTime, Happened)> {
    let mut events: Vec<(SystemTime, Happened)> = Vec::new();
    for (r, row) in rows.iter().enumerate() {
        for index in std::iter::once(row.index).chain(row.repeats.iter().copied()) {
            events.push((t.segments[index].time, Happened::Segment { row: r, index }));
        }
    }
    for (step, &at) in t.steps.iter().zip(&t.step_times) {
        let shown = match step {
            // A call is drawn where it started, before the segments it sent.
            // A call that waited (a pause, or a segment other than an ACK
            // reached its side meanwhile) also shows its result where it
            // returned.
            Step::Call {
                who,
                call,
                result,
                started: Some(started),
            } => {
                let side = match who {
                    Role::Client => t.client,
                    Role::Server => t.server,
                };
                let paused = at.duration_since(*started).unwrap_or_default() >= CALL_PAUSE;
                let waited = paused
                    || t.segments.iter().any(|s| {
                        let bare_ack = s.len == 0 && !(s.flags.syn || s.flags.fin || s.flags.rst);
                        Some(s.dst) == side && !bare_ack && (started..&at).contains(&&s.time)
                    });
                if waited {
                    let returned = match call_text("", result).trim() {
                        "" => "returns".to_string(),
                        text => text.to_string(),
                    };
                    let who = *who;
                    events.push((
                        *started,
                        Happened::Call {
                            who,
                            text: format!("{call}: waits"),
                        },
                    ));
                    events.push((at, Happened::Call { who, text: returned }));
                } else {
                    let text = call_text(call, result);
                    events.push((*started, Happened::Call { who: *who, text }));
                }
                continue;
            }
            Step::Call { who, call, result, .. } => Happened::Call {
                who: *who,
                text: call_text(call, result),
            },
            Step::States { client, server } => Happened::States {
                client: describe(*client),
                server: describe(*server),
            },
            Step::Measured { .. } => continue,
        };
        events.push((at, shown));
    }
    events.sort_by_key(|e| e.0);
    let mut shown_states = (String::new(), String::new());
    events.retain(|(_, happened)| match happened {
        Happened::States { client, server } => {
            let now = (client.clone(), server.clone());
            let changed = now != shown_states;
            shown_states = now;
            changed
        }
        _ => true,
    });
    events
}

/// The label of the `n`th other endpoint (from 1): `other`, `other 2`, ...
fn other_label(n: usize) -> String {
    if n == 1 {
        OTHER.to_string()
    } else {
        format!("{OTHER} {n}")
    }
}

/// What labels a lifeline of an endpoint that is neither the client nor
/// the server, as the transcript names it.
const OTHER: &str = "other";

/// The lifelines of a run whose segments drawn go from and to `addresses`,
/// in the order they appear: the client's and the server's, and one for
/// each other address, spread out between them.
fn lifelines(t: &Transcript, addresses: impl IntoIterator<Item = SocketAddr>) -> Vec<Lifeline> {
    let mut others: Vec<SocketAddr> = Vec::new();
    for addr in addresses {
        if Some(addr) != t.server && Some(addr) != t.client && !others.contains(&addr) {
            others.push(addr);
        }
    }
    let mut ends: Vec<(String, Option<SocketAddr>)> = vec![("client".into(), t.client)];
    ends.extend(others.iter().enumerate().map(|(i, &a)| (other_label(i + 1), Some(a))));
    ends.push(("server".into(), t.server));
    let gaps = ends.len() as i32 - 1;
    let apart = (SERVER_X - CLIENT_X) / gaps;
    ends.into_iter()
        .enumerate()
        .map(|(i, (label, address))| Lifeline {
            label,
            address,
            x: CLIENT_X + (SERVER_X - CLIENT_X) * i as i32 / gaps,
            label_row: if apart < LABELS_APART { i as i32 % 2 } else { 0 },
        })
        .collect()
}

/// The lifeline of an address: the client's, an other endpoint's, or the
/// server's.
fn lifeline_of(lifelines: &[Lifeline], addr: SocketAddr) -> usize {
    lifelines
        .iter()
        .position(|l| l.address == Some(addr))
        .expect("every address drawn has a lifeline")
}

/// What the transcript's diagram draws.
pub fn sequence(t: &Transcript) -> Sequence {
    let rows = t.packet_rows();
    let timeline = timeline(t, &rows);
    let start = timeline.first().map_or(SystemTime::UNIX_EPOCH, |e| e.0);
    let addresses = timeline.iter().flat_map(|(_, happened)| match happened {
        Happened::Segment { index, .. } => vec![t.segments[*index].src, t.segments[*index].dst],
        _ => Vec::new(),
    });
    let lifelines = lifelines(t, addresses);
    let events = timeline
        .into_iter()
        .map(|(at, happened)| {
            let shown = match happened {
                Happened::Segment { row, index } => {
                    let (row, segment) = (&rows[row], &t.segments[index]);
                    let flags = t.segments[row.index].flags;
                    let kind = if flags.rst {
                        ArrowKind::Rst
                    } else if flags.fin {
                        ArrowKind::Fin
                    } else {
                        ArrowKind::Other
                    };
                    Shown::Arrow(Arrow {
                        from: lifeline_of(&lifelines, segment.src),
                        to: lifeline_of(&lifelines, segment.dst),
                        segment: index,
                        label: squeeze(&row.text),
                        kind,
                        again: index != row.index,
                        repeated: !row.repeats.is_empty(),
                    })
                }
                Happened::Call { who, text } => Shown::Call { who, text },
                Happened::States { client, server } => Shown::States { client, server },
            };
            Event {
                at: at.duration_since(start).unwrap_or_default(),
                shown,
            }
        })
        .collect();
    Sequence {
        id: t.id.clone(),
        lifelines,
        events,
        bulk: t.bulk,
        capture: t.capture.clone(),
    }
}

/// A call and the kind of its result with its OS error number, without the
/// message: `write(b"x") → Err(BrokenPipe) os error 32`.
fn call_text(call: &str, result: &CallResult) -> String {
    match result {
        CallResult::Ok { value } => format!("{call} → Ok({value})"),
        CallResult::Err {
            kind,
            errno: Some(errno),
            ..
        } => format!("{call} → Err({kind}) os error {errno}"),
        CallResult::Err { kind, errno: None, .. } => format!("{call} → Err({kind})"),
        CallResult::Shown { text } if text.is_empty() => call.to_string(),
        CallResult::Shown { text } => format!("{call} → {text}"),
    }
}

/// The transcript's sequence diagram, as an SVG document.
pub fn sequence_svg(t: &Transcript, layout: &Layout) -> String {
    render(&sequence(t), layout)
}

/// A sequence diagram as an SVG document: every arrow from its `from`
/// lifeline to its `to`.
pub fn render(s: &Sequence, layout: &Layout) -> String {
    // Both drawings of a diagram stand on one page: their ids differ.
    let ids = format!("seq-{}-{}", s.id, layout.class);
    let label_rows = s.lifelines.iter().map(|l| l.label_row).max().unwrap_or(0);
    let mut body = String::new();
    let mut desc = Vec::new();
    if s.lifelines.len() > 2 {
        let labels: Vec<&str> = s.lifelines.iter().map(|l| l.label.as_str()).collect();
        desc.push(format!("{LIFELINES_MARK}{}", labels.join(", ")));
    }
    let mut y = TOP + LINE * label_rows;
    let mut last = Duration::ZERO;
    for event in &s.events {
        let gap = event.at.saturating_sub(last).as_secs_f64();
        if gap >= GAP_SHOWN {
            let text = format!("+{gap:.2} s");
            writeln!(
                body,
                r##"<text class="tcp-gap tcp-halo" x="{mid}" y="{ty}" text-anchor="middle" fill="#555555">⋮ {text} ⋮</text>"##,
                mid = (layout.client_x + layout.server_x) / 2,
                ty = y + 12,
            )
            .unwrap();
            desc.push(format!("{GAP_MARK}{text}"));
            y += 24;
        }
        last = event.at;
        let at = event.at.as_secs_f64();
        y += match &event.shown {
            Shown::Arrow(arrow) => {
                desc.push(arrow_line(s, arrow));
                draw_arrow(&mut body, &ids, s, arrow, at, y, layout)
            }
            Shown::Call { who, text } => {
                desc.push(format!("{who}: {text}"));
                draw_call(&mut body, *who, text, at, y, layout)
            }
            Shown::States { client, server } => {
                desc.push(format!("states: client {client}, server {server}"));
                draw_states(&mut body, client, server, at, y, layout)
            }
        };
    }
    if let Err(why) = &s.capture {
        let text = format!("packets not captured: {why}");
        let lines = wrap(&text, layout.wrap + 6);
        write!(
            body,
            r##"<text class="tcp-gap tcp-halo" x="{x}" y="{ty}" text-anchor="middle" fill="#555555">"##,
            x = layout.width / 2,
            ty = y + 14
        )
        .unwrap();
        push_tspans(&mut body, layout.width / 2, &lines);
        body.push_str("</text>\n");
        desc.push(text);
        y += LINE * lines.len() as i32 + 10;
    }
    let lifelines_end = y + 4;
    y += 20;
    let legend = legend(&ids, &s.legend_items(), y, layout.width);
    let height = y + legend.1;
    let mut svg = String::new();
    write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="tcp-sequence {class}" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="monospace" font-size="{FONT}" role="img" aria-label="{id}: packets, calls and socket states, in the order they happened">
<title>{id}: packets, calls and socket states, from a run of the lab, in the order they happened</title>
<desc>
{desc}
</desc>
<style>{STANDALONE_STYLE}</style>
<rect class="tcp-bg" width="100%" height="100%" fill="#ffffff"/>
<defs>{markers}</defs>
"##,
        class = layout.class,
        width = layout.width,
        id = escape(&s.id),
        desc = escape(&desc.join("\n")),
        markers = markers(&ids),
    )
    .unwrap();
    for l in &s.lifelines {
        writeln!(
            svg,
            r##"<text class="tcp-text" x="{x}" y="{ty}" text-anchor="middle" font-weight="bold" font-size="14" fill="#000000">{label}</text>"##,
            x = layout.x(l.x),
            ty = 18 + LINE * l.label_row,
            label = escape(&l.label),
        )
        .unwrap();
    }
    for l in &s.lifelines {
        writeln!(
            svg,
            r##"<line class="tcp-lifeline" x1="{x}" y1="{y1}" x2="{x}" y2="{lifelines_end}" stroke="#888888" stroke-dasharray="4 3"/>"##,
            x = layout.x(l.x),
            y1 = 26 + LINE * l.label_row,
        )
        .unwrap();
    }
    svg.push_str(&body);
    svg.push_str(&legend.0);
    svg.push_str("</svg>\n");
    svg
}

/// The style of a diagram file on its own: labels with a halo, and dark
/// colours where the reader prefers them. The book removes it and colours
/// the diagram from its theme (`theme/diagrams.css`).
const STANDALONE_STYLE: &str = "
.tcp-halo { paint-order: stroke; stroke: #ffffff; stroke-width: 4px; stroke-linejoin: round; }
@media (prefers-color-scheme: dark) {
  .tcp-bg { fill: #0d1117; }
  .tcp-halo { stroke: #0d1117; }
  .tcp-text, .tcp-call, text.tcp-seg, .tcp-seg-head { fill: #e6edf3; }
  line.tcp-seg { stroke: #e6edf3; }
  text.tcp-fin, .tcp-fin-head { fill: #79b8ff; }
  line.tcp-fin { stroke: #79b8ff; }
  text.tcp-rst, .tcp-rst-head { fill: #ff8a80; }
  line.tcp-rst { stroke: #ff8a80; }
  .tcp-gap { fill: #a9aeb6; }
  .tcp-lifeline { stroke: #a9aeb6; }
  rect.tcp-state { fill: #2d2a1e; stroke: #c9a64a; }
}
";

/// What starts a line of a diagram's description that is a pause, whose
/// length varies from run to run.
const GAP_MARK: &str = "pause ";

/// What starts a line of a diagram's description that is a segment sent
/// again: how many times depends on timers.
const AGAIN_MARK: &str = "again ";

/// What starts the line of a diagram's description that names its
/// lifelines, when there are more than the client's and the server's.
const LIFELINES_MARK: &str = "lifelines: ";

/// An arrow as a line of the diagram's description: the first of a row
/// says whether it was sent again.
fn arrow_line(s: &Sequence, arrow: &Arrow) -> String {
    let line = format!(
        "{} → {}  {}",
        s.lifelines[arrow.from].label, s.lifelines[arrow.to].label, arrow.label
    );
    if arrow.again {
        format!("{AGAIN_MARK}{line}")
    } else if arrow.repeated {
        format!("{line} (repeated)")
    } else {
        line
    }
}

/// The kinds of arrow: FIN, RST, anything else.
pub(crate) const ARROWS: [(&str, &str); 3] = [("fin", "#1f5fa8"), ("rst", "#b03a2e"), ("seg", "#444444")];

pub(crate) fn markers(ids: &str) -> String {
    ARROWS
        .iter()
        .map(|(kind, colour)| {
            format!(
                r#"<marker id="{ids}-{kind}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path class="tcp-{kind}-head" d="M 0 0 L 10 5 L 0 10 z" fill="{colour}"/></marker>"#
            )
        })
        .collect()
}

fn draw_arrow(svg: &mut String, ids: &str, s: &Sequence, arrow: &Arrow, at: f64, y: i32, layout: &Layout) -> i32 {
    let (x1, x2) = (layout.x(s.lifelines[arrow.from].x), layout.x(s.lifelines[arrow.to].x));
    let (kind, colour) = arrow.kind.style();
    let dash = if arrow.again { r#" stroke-dasharray="6 3""# } else { "" };
    let again = if arrow.again { " (again)" } else { "" };
    write!(
        svg,
        r#"<g class="tcp-event" data-t="{at:.6}" data-index="{index}">
<text class="tcp-{kind} tcp-halo" x="{mid}" y="{ty}" text-anchor="middle" fill="{colour}">{label}{again}</text>
<line class="tcp-{kind}" x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="{colour}" stroke-width="1.5"{dash} marker-end="url(#{ids}-{kind})"/>
</g>
"#,
        index = arrow.segment,
        mid = label_centre((x1 + x2) / 2, &format!("{}{again}", arrow.label), layout.width),
        ty = y + 11,
        y1 = y + 16,
        y2 = y + 26,
        label = escape(&arrow.label),
    )
    .unwrap();
    34
}

/// Where a label centred above `mid` is drawn so that it stays whole:
/// moved in from an edge it would cross (an arrow near the server's
/// lifeline, between close ones).
fn label_centre(mid: i32, label: &str, width: i32) -> i32 {
    // A character of the monospace font is about 0.6 em wide.
    let half = (label.chars().count() as i32 * FONT * 6 / 10 + 1) / 2 + 4;
    mid.clamp(half.min(width / 2), (width - half).max(width / 2))
}

fn draw_call(svg: &mut String, who: Role, text: &str, at: f64, y: i32, layout: &Layout) -> i32 {
    let (x, anchor) = match who {
        Role::Client => (6, "start"),
        Role::Server => (layout.width - 6, "end"),
    };
    let lines = wrap(text, layout.wrap);
    write!(
        svg,
        r##"<g class="tcp-event" data-t="{at:.6}">
<text class="tcp-call tcp-halo" x="{x}" y="{ty}" text-anchor="{anchor}" fill="#000000">"##,
        ty = y + 11,
    )
    .unwrap();
    push_tspans(svg, x, &lines);
    svg.push_str("</text>\n</g>\n");
    LINE * lines.len() as i32 + 8
}

/// Lines of text, one under the other at `x`, as the tspans of a `<text>`.
fn push_tspans(svg: &mut String, x: i32, lines: &[String]) {
    svg.push_str(&tspans(x, lines, LINE));
}

/// Lines of text, one under the other at `x`, `line_height` apart: the
/// tspans of a `<text>`.
pub(crate) fn tspans(x: i32, lines: &[impl AsRef<str>], line_height: i32) -> String {
    lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let dy = if i == 0 { 0 } else { line_height };
            format!(r#"<tspan x="{x}" dy="{dy}">{}</tspan>"#, escape(line.as_ref()))
        })
        .collect()
}

fn draw_states(svg: &mut String, client: &str, server: &str, at: f64, y: i32, layout: &Layout) -> i32 {
    writeln!(svg, r#"<g class="tcp-event" data-t="{at:.6}">"#).unwrap();
    for (x, state) in [(layout.client_x, client), (layout.server_x, server)] {
        let width = 8 * state.len() as i32 + 14;
        write!(
            svg,
            r##"<rect class="tcp-state" x="{rx}" y="{y}" width="{width}" height="20" rx="4" fill="#fdf3d0" stroke="#8a6d1e"/>
<text class="tcp-text" x="{x}" y="{ty}" text-anchor="middle" font-weight="bold" fill="#000000">{state}</text>
"##,
            rx = x - width / 2,
            ty = y + 14,
            state = escape(state),
        )
        .unwrap();
    }
    svg.push_str("</g>\n");
    28
}

/// The legend below a diagram, and its height.
/// Every item a legend can have, in its order, with its text.
const LEGEND: [(&str, &str); 8] = [
    ("fin", "FIN: no more data from this side"),
    ("rst", "RST: the connection is reset"),
    ("seg", "SYN, data, ACK; seq and ack relative"),
    ("again", "the same segment sent again"),
    ("state", "a socket's state, as the kernel reports it"),
    ("call", "a call, where it started → what it returned"),
    ("gap", "a pause; shorter ones are not drawn"),
    ("text", "data and bare ACKs left out: only SYN, FIN, RST"),
];

impl Sequence {
    /// The kinds of the legend's items that this diagram draws (`fin`,
    /// `rst`, `seg`, `again`, `state`, `call`, `gap`, and `text` for a bulk
    /// transfer's note), in the legend's order: a legend shows only these.
    pub fn legend_items(&self) -> Vec<&'static str> {
        let arrows = || {
            self.events.iter().filter_map(|e| match &e.shown {
                Shown::Arrow(a) => Some(a),
                _ => None,
            })
        };
        let mut last = Duration::ZERO;
        let gap = self.events.iter().any(|e| {
            let long = e.at.saturating_sub(last).as_secs_f64() >= GAP_SHOWN;
            last = e.at;
            long
        });
        let drawn = |kind: &str| match kind {
            "fin" => arrows().any(|a| a.kind == ArrowKind::Fin),
            "rst" => arrows().any(|a| a.kind == ArrowKind::Rst),
            "seg" => arrows().any(|a| a.kind == ArrowKind::Other),
            "again" => arrows().any(|a| a.again),
            "state" => self.events.iter().any(|e| matches!(e.shown, Shown::States { .. })),
            "call" => self.events.iter().any(|e| matches!(e.shown, Shown::Call { .. })),
            "gap" => gap,
            _ => self.bulk,
        };
        LEGEND
            .iter()
            .map(|(kind, _)| *kind)
            .filter(|kind| drawn(kind))
            .collect()
    }
}

fn legend(ids: &str, kinds: &[&str], y: i32, width: i32) -> (String, i32) {
    let items = LEGEND.iter().copied().filter(|(kind, _)| kinds.contains(kind));
    let mut svg = format!(
        r##"<g class="tcp-legend"><line class="tcp-lifeline" x1="0" y1="{y}" x2="{width}" y2="{y}" stroke="#888888"/>
"##
    );
    let mut row = y + 8;
    for (kind, text) in items {
        let sample = match kind {
            "fin" | "rst" | "seg" | "again" => {
                let (class, colour) = match kind {
                    "fin" => ARROWS[0],
                    "rst" => ARROWS[1],
                    _ => ARROWS[2],
                };
                let dash = if kind == "again" {
                    r#" stroke-dasharray="6 3""#
                } else {
                    ""
                };
                format!(
                    r#"<line class="tcp-{class}" x1="8" y1="{ly}" x2="44" y2="{ly}" stroke="{colour}" stroke-width="1.5"{dash} marker-end="url(#{ids}-{class})"/>"#,
                    ly = row + 8
                )
            }
            "state" => format!(
                r##"<rect class="tcp-state" x="8" y="{ry}" width="36" height="14" rx="3" fill="#fdf3d0" stroke="#8a6d1e"/>"##,
                ry = row + 1
            ),
            "call" => format!(
                r##"<text class="tcp-call" x="8" y="{ty}" fill="#000000">f()</text>"##,
                ty = row + 12
            ),
            "gap" => format!(
                r##"<text class="tcp-gap" x="8" y="{ty}" fill="#555555">⋮ +s</text>"##,
                ty = row + 12
            ),
            _ => String::new(),
        };
        writeln!(
            svg,
            r##"{sample}<text class="tcp-text" x="54" y="{ty}" fill="#000000">{text}</text>"##,
            ty = row + 12,
            text = escape(text),
        )
        .unwrap();
        row += 20;
    }
    svg.push_str("</g>\n");
    (svg, row - y + 8)
}

/// A call's label as the diagram wraps it into lines of at most
/// [`WRAP`] characters: see [`wrap`].
pub fn call_lines(text: &str) -> Vec<String> {
    wrap(text, WRAP)
}

/// `text` in lines of at most `width` characters, broken at spaces but
/// never inside a token: brackets, quotes and `os error N` hold together
/// (`Some(2 s)`, `[0; 64]`); a token wider than a line breaks after a
/// comma.
pub(crate) fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for token in tokens(text) {
        // A token wider than a line breaks after its commas, or before a
        // method call (`SockRef::from(&stream)` `.set_linger(..)`).
        let words: Vec<String> = if token.chars().count() <= width {
            vec![token]
        } else if token.contains(", ") {
            token.split_inclusive(", ").map(|w| w.trim_end().to_string()).collect()
        } else {
            token.replace(").", ")\n.").split('\n').map(String::from).collect()
        };
        for word in &words {
            match lines.last_mut() {
                // A method call goes on after its receiver, with no space.
                Some(line) if word.starts_with('.') && line.chars().count() + word.chars().count() <= width => {
                    line.push_str(word);
                }
                Some(line) if !word.starts_with('.') && line.chars().count() + 1 + word.chars().count() <= width => {
                    line.push(' ');
                    line.push_str(word);
                }
                _ => lines.push(word.to_string()),
            }
        }
    }
    lines
}

/// The words of `text`, those inside brackets or quotes, and `os error N`,
/// joined into one token each.
fn tokens(text: &str) -> Vec<String> {
    let mut tokens: Vec<String> = Vec::new();
    let (mut depth, mut quoted, mut inside) = (0i32, false, false);
    for word in text.split(' ') {
        let errno = |last: &String| {
            (word == "error" && last.ends_with("os"))
                || (last.ends_with("os error") && word.starts_with(|c: char| c.is_ascii_digit()))
        };
        match tokens.last_mut() {
            Some(last) if inside || errno(last) => {
                last.push(' ');
                last.push_str(word);
            }
            _ => tokens.push(word.to_string()),
        }
        for c in word.chars() {
            match c {
                '"' => quoted = !quoted,
                '(' | '[' | '{' if !quoted => depth += 1,
                ')' | ']' | '}' if !quoted => depth -= 1,
                _ => {}
            }
        }
        inside = depth > 0 || quoted;
    }
    tokens
}

/// Collapses the column padding of a packet row's text.
fn squeeze(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Flags, Segment};

    const CLIENT: &str = "127.0.0.1:40001";
    const SERVER: &str = "127.0.0.1:5000";
    const OTHER_1: &str = "127.0.0.1:40002";
    const OTHER_2: &str = "127.0.0.1:40003";

    /// A run whose server hears from its client and from another endpoint:
    /// SYN from the other, SYN ACK back, the client's SYN, then a RST to
    /// `reset`.
    fn three_clients(reset: &str) -> Transcript {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut t = Transcript::empty("sample", "a sample");
        t.client = Some(CLIENT.parse().unwrap());
        t.server = Some(SERVER.parse().unwrap());
        t.capture = Ok(());
        let segment = |ms: u64, src: &str, dst: &str, syn: bool, rst: bool| Segment {
            time: start + Duration::from_millis(ms),
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            flags: Flags {
                syn,
                ack: src == SERVER,
                fin: false,
                rst,
                psh: false,
            },
            seq: 0,
            ack: 1,
            len: 0,
            window: 100,
            packet: Vec::new(),
        };
        t.segments = vec![
            segment(1, OTHER_1, SERVER, true, false),
            segment(2, SERVER, OTHER_1, true, false),
            segment(3, CLIENT, SERVER, true, false),
            segment(4, SERVER, reset, false, true),
        ];
        t
    }

    /// What the diagram draws, top to bottom: calls as their text, arrows
    /// as their label.
    fn drawn_order(t: &Transcript) -> Vec<String> {
        sequence(t)
            .events
            .into_iter()
            .filter_map(|e| match e.shown {
                Shown::Call { text, .. } => Some(text),
                Shown::Arrow(arrow) => Some(arrow.label),
                Shown::States { .. } => None,
            })
            .collect()
    }

    /// A legend lists what its diagram draws and nothing else: SYNs and an
    /// RST here, no FIN, no state, no call, no pause, no segment sent again.
    #[test]
    fn a_legend_lists_only_what_is_drawn() {
        let drawn = sequence(&three_clients(CLIENT));
        assert_eq!(drawn.legend_items(), ["rst", "seg"]);
        let svg = render(&drawn, &NARROW);
        assert!(
            svg.contains("RST: the connection is reset") && !svg.contains("FIN: no more data"),
            "{svg}"
        );
        let mut late = drawn.clone();
        late.events[1].at += Duration::from_secs(2);
        assert_eq!(late.legend_items(), ["rst", "seg", "gap"]);
    }

    #[test]
    fn a_call_is_drawn_where_it_started_and_its_result_where_it_returned() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut t = three_clients(CLIENT);
        // The server's drop started at 3.5 ms and returned at 5 ms, after
        // the RST it sent at 4 ms; the client's read started at 3.2 ms,
        // after its SYN, waited for that RST and returned at 4.5 ms.
        let calls = [
            (
                Role::Server,
                "drop(stream)",
                CallResult::Shown { text: String::new() },
                3.5,
                5.0,
            ),
            (Role::Client, "read", CallResult::Ok { value: "0".into() }, 3.2, 4.5),
        ];
        for (who, call, result, started, returned) in calls {
            t.steps.push(Step::Call {
                who,
                call: call.into(),
                result,
                started: Some(at(0) + Duration::from_secs_f64(started / 1000.0)),
            });
            t.step_times.push(at(0) + Duration::from_secs_f64(returned / 1000.0));
        }
        let order = drawn_order(&t);
        let position = |text: &str| order.iter().position(|o| o.starts_with(text)).unwrap_or(usize::MAX);
        assert!(position("read: waits") < position("RST"), "{order:?}");
        assert!(position("drop(stream)") < position("RST"), "{order:?}");
        assert!(position("→ Ok(0)") > position("RST"), "{order:?}");
        assert!(
            !order.iter().any(|o| o == "returns"),
            "the drop waited for nothing: {order:?}"
        );
    }

    #[test]
    fn each_other_endpoint_has_a_lifeline_and_each_arrow_runs_from_its_source_to_its_destination() {
        let drawn = sequence(&three_clients(OTHER_2));
        let labels: Vec<&str> = drawn.lifelines.iter().map(|l| l.label.as_str()).collect();
        assert_eq!(labels, ["client", "other", "other 2", "server"]);
        let arrows: Vec<(&str, &str)> = drawn.arrows().map(|(_, a)| (labels[a.from], labels[a.to])).collect();
        assert_eq!(
            arrows,
            [
                ("other", "server"),
                ("server", "other"),
                ("client", "server"),
                ("server", "other 2")
            ]
        );
        // The SVG draws each arrow between its lifelines' x.
        let svg = render(&drawn, &NARROW);
        for (_, arrow) in drawn.arrows() {
            let (x1, x2) = (drawn.lifelines[arrow.from].x, drawn.lifelines[arrow.to].x);
            let group = format!(r#"data-index="{}">"#, arrow.segment);
            let line = svg
                .split_once(&group)
                .and_then(|(_, rest)| rest.split_once("<line "))
                .unwrap()
                .1;
            assert!(
                line.contains(&format!(r#"x1="{x1}" "#)) && line.contains(&format!(r#"x2="{x2}" "#)),
                "{line}"
            );
        }
        for lifeline in &drawn.lifelines {
            assert!(svg.contains(&format!(r#"<line class="tcp-lifeline" x1="{x}" "#, x = lifeline.x)));
        }
    }

    #[test]
    fn a_run_compares_equal_whichever_other_endpoint_a_segment_comes_from() {
        let shown = three_clients(OTHER_2).comparable();
        assert_eq!(
            shown.rows,
            [
                "other → server  SYN",
                "server → other  SYN ACK",
                "client → server  SYN",
                "server → other  RST ACK     seq=0 ack=1"
            ]
        );
        assert_eq!(shown, three_clients(OTHER_1).comparable());
    }

    /// The wide drawing's columns hold a call's line of `wrap` characters
    /// clear of the lifelines; the narrow one's lifelines stand where the
    /// model puts them.
    #[test]
    fn a_wide_drawing_keeps_each_side_s_calls_outside_its_lifeline() {
        let line = WIDE.wrap as i32 * FONT * 6 / 10;
        assert!(6 + line + 4 <= WIDE.client_x, "{line}");
        assert!(WIDE.width - 6 - line - 4 >= WIDE.server_x, "{line}");
        assert_eq!((WIDE.x(CLIENT_X), WIDE.x(SERVER_X)), (WIDE.client_x, WIDE.server_x));
        assert_eq!((NARROW.x(CLIENT_X), NARROW.x(220)), (CLIENT_X, 220));
    }

    #[test]
    fn an_arrow_label_near_an_edge_moves_in_and_stays_whole() {
        let label = "FIN PSH ACK seq=123456 ack=123456 len=65483";
        let width = label.len() as i32 * FONT * 6 / 10;
        let centre = label_centre(308, label, WIDTH);
        assert!(centre - width / 2 >= 0 && centre + width / 2 <= WIDTH, "{centre}");
        assert_eq!(label_centre(WIDTH / 2, label, WIDTH), WIDTH / 2);
        assert_eq!(label_centre(308, "FIN ACK", WIDTH), 308);
    }

    #[test]
    fn a_label_never_breaks_inside_a_token() {
        let lines = wrap("stream.read(&mut [0; 64]) → Err(ConnectionReset) os error 104", 30);
        assert_eq!(
            lines,
            ["stream.read(&mut [0; 64]) →", "Err(ConnectionReset)", "os error 104"]
        );
        assert_eq!(
            wrap("timeout(Some(2 s)) → Ok(())", 20),
            ["timeout(Some(2 s)) →", "Ok(())"]
        );
        // A token wider than a line breaks after its commas.
        assert_eq!(wrap("f(2 s idle, 1 s interval)", 14), ["f(2 s idle,", "1 s interval)"]);
        assert_eq!(
            wrap("a(&b).c(Some(2 s)) → Ok(())", 14),
            ["a(&b)", ".c(Some(2 s))", "→ Ok(())"]
        );
    }

    #[test]
    fn long_calls_wrap_at_spaces_and_are_never_cut() {
        let text = "set_tcp_keepalive(1 s idle, 1 s interval, 2 probes) → Ok(())";
        let lines = wrap(text, 30);
        assert!(lines.iter().all(|l| l.chars().count() <= 30), "{lines:?}");
        assert_eq!(lines.join(" "), text);
    }
}
