//! The costs figure of the book, drawn from `tcpclose bench`'s report like
//! the sequence diagrams: inline SVG as narrow as a phone's column, text in
//! the theme's colours, each way of closing told apart by its marker and
//! its dash as well as its colour, and named at the end of its line.

use std::fmt::Write;

use crate::bench::{Report, Strategy, CONCURRENCY};

const WIDTH: f64 = 360.0;
/// Where a panel's plot area starts and ends; the labels of the lines'
/// ends go to its right.
const LEFT: f64 = 46.0;
const RIGHT: f64 = 226.0;
const LABELS: f64 = 244.0;
const PLOT_HEIGHT: f64 = 120.0;
/// The least distance between two labels' baselines, in px: 12 px text.
const LABEL_GAP: f64 = 14.0;

/// A way of closing as the figure draws it: the colours are the
/// Okabe–Ito palette's, darkened for light themes (theme/diagrams.css), and
/// the marker and dash tell the lines apart without colour.
struct Series {
    strategy: Strategy,
    label: &'static str,
    marker: Marker,
    dash: &'static str,
    colour: &'static str,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Marker {
    Circle,
    Square,
    Triangle,
    Diamond,
}

const SERIES: [Series; 4] = [
    Series {
        strategy: Strategy::ClientFirst,
        label: "client first",
        marker: Marker::Circle,
        dash: "none",
        colour: "#0072b2",
    },
    Series {
        strategy: Strategy::ServerFirst,
        label: "server first",
        marker: Marker::Square,
        dash: "6 3",
        colour: "#b84a00",
    },
    Series {
        strategy: Strategy::ZeroLinger,
        label: "zero linger",
        marker: Marker::Triangle,
        dash: "2 3",
        colour: "#007a5a",
    },
    Series {
        strategy: Strategy::Lingering,
        label: "lingering close",
        marker: Marker::Diamond,
        dash: "8 3 2 3",
        colour: "#a8448f",
    },
];

/// A label at a line's end: which series, and the baseline it is drawn on.
#[derive(Debug, Clone, PartialEq)]
pub struct EndLabel {
    pub label: &'static str,
    pub y: f64,
}

/// One panel: a figure of the report by concurrency, one line per way of
/// closing.
struct Panel {
    title: &'static str,
    value: fn(&crate::bench::Run) -> f64,
}

const PANELS: [Panel; 2] = [
    Panel {
        title: "connections per second (more is better)",
        value: |run| run.connections_per_second,
    },
    Panel {
        title: "close → EOF, median µs (less is better)",
        value: |run| run.p50_close_to_eof_us,
    },
];

/// The figure: connections per second and the median time from a close to
/// the peer's end of stream, by connections at a time, and the TIME_WAIT
/// sockets each side kept.
pub fn costs_svg(report: &Report) -> String {
    let mut body = String::new();
    let mut top = 0.0;
    for panel in &PANELS {
        top = draw_panel(&mut body, report, panel, top) + 22.0;
    }
    let height = draw_time_wait(&mut body, report, top);
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="tcp-plot" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="monospace" font-size="12" role="img" aria-label="Connections per second and the median time from a close to the peer's end of stream, by connections at a time, one line per way of closing; and the TIME_WAIT sockets each side kept">
<style>.tcp-text {{ fill: #000000; }} .plot-axis {{ stroke: #555555; }} .plot-grid {{ stroke: #555555; stroke-opacity: 0.25; }}</style>
{body}</svg>
"##
    )
}

/// The y of each line's end label in a panel whose plot area is
/// `top..top + PLOT_HEIGHT`: at its line's last point, moved apart where
/// two would overlap, and kept inside the panel.
pub fn end_labels(ends: &[(&'static str, f64)], top: f64) -> Vec<EndLabel> {
    let mut labels: Vec<EndLabel> = ends.iter().map(|(label, y)| EndLabel { label, y: y + 4.0 }).collect();
    labels.sort_by(|a, b| a.y.total_cmp(&b.y));
    for i in 1..labels.len() {
        labels[i].y = labels[i].y.max(labels[i - 1].y + LABEL_GAP);
    }
    // Pushed past the bottom: move the stack up, keeping the gaps.
    let bottom = top + PLOT_HEIGHT + 4.0;
    if let Some(last) = labels.last().map(|l| l.y) {
        let over = (last - bottom).max(0.0);
        for label in &mut labels {
            label.y -= over;
        }
    }
    labels
}

/// The largest value's axis: a round step and the top it reaches.
fn axis(largest: f64) -> (f64, f64) {
    let raw = (largest / 4.0).max(1.0);
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    (step, step * (largest / step).ceil().max(1.0))
}

fn tick(value: f64) -> String {
    if value >= 1000.0 && value % 1000.0 == 0.0 {
        format!("{}k", value / 1000.0)
    } else {
        format!("{value}")
    }
}

fn x_of(index: usize) -> f64 {
    LEFT + 8.0 + index as f64 * (RIGHT - LEFT - 16.0) / (CONCURRENCY.len() - 1) as f64
}

/// Draws a panel from `top`; returns where it ends.
fn draw_panel(svg: &mut String, report: &Report, panel: &Panel, top: f64) -> f64 {
    let plot_top = top + 24.0;
    let largest = report.rows.iter().map(|r| (panel.value)(&r.median)).fold(0.0, f64::max);
    let (step, highest) = axis(largest);
    let y_of = |v: f64| plot_top + PLOT_HEIGHT - v / highest * PLOT_HEIGHT;
    let _ = writeln!(
        svg,
        r##"<text class="tcp-text" x="4" y="{}" font-weight="bold">{}</text>"##,
        top + 12.0,
        panel.title
    );
    let mut v = 0.0;
    while v <= highest + step / 2.0 {
        let y = y_of(v);
        let _ = writeln!(
            svg,
            r##"<line class="plot-grid" x1="{LEFT}" y1="{y:.1}" x2="{RIGHT}" y2="{y:.1}" stroke="#555555" stroke-opacity="0.25"/><text class="tcp-text" x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT - 4.0,
            y + 4.0,
            tick(v)
        );
        v += step;
    }
    let axis_y = plot_top + PLOT_HEIGHT;
    let _ = writeln!(
        svg,
        r##"<line class="plot-axis" x1="{LEFT}" y1="{axis_y}" x2="{RIGHT}" y2="{axis_y}" stroke="#555555"/>"##
    );
    for (i, c) in CONCURRENCY.iter().enumerate() {
        let _ = writeln!(
            svg,
            r##"<text class="tcp-text" x="{:.1}" y="{}" text-anchor="middle">{c}</text>"##,
            x_of(i),
            axis_y + 16.0
        );
    }
    let _ = writeln!(
        svg,
        r##"<text class="tcp-text" x="{}" y="{}" text-anchor="middle">connections at a time</text>"##,
        (LEFT + RIGHT) / 2.0,
        axis_y + 32.0
    );
    let mut ends = Vec::new();
    for (n, series) in SERIES.iter().enumerate() {
        let points: Vec<(f64, f64)> = report
            .rows
            .iter()
            .filter(|r| r.strategy == series.strategy)
            .enumerate()
            .map(|(i, r)| (x_of(i), y_of((panel.value)(&r.median))))
            .collect();
        let path: Vec<String> = points.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
        let _ = writeln!(
            svg,
            r##"<polyline class="plot-s{n}" points="{}" fill="none" stroke="{}" stroke-width="2" stroke-dasharray="{}"/>"##,
            path.join(" "),
            series.colour,
            series.dash
        );
        for (x, y) in &points {
            svg.push_str(&marker(series, n, *x, *y));
        }
        if let Some((_, y)) = points.last() {
            ends.push((series.label, *y));
        }
    }
    for label in end_labels(&ends, plot_top) {
        let (n, series) = SERIES
            .iter()
            .enumerate()
            .find(|(_, s)| s.label == label.label)
            .expect("a label names its series");
        let _ = writeln!(
            svg,
            r##"{}<text class="tcp-text" x="{}" y="{:.1}">{}</text>"##,
            marker(series, n, RIGHT + 6.0, label.y - 4.0),
            LABELS,
            label.y,
            label.label
        );
    }
    axis_y + 32.0
}

/// A series' marker, centred on (x, y).
fn marker(series: &Series, n: usize, x: f64, y: f64) -> String {
    let colour = series.colour;
    let shape = match series.marker {
        Marker::Circle => format!(r#"<circle cx="{x:.1}" cy="{y:.1}" r="4""#),
        Marker::Square => format!(r#"<rect x="{:.1}" y="{:.1}" width="7" height="7""#, x - 3.5, y - 3.5),
        Marker::Triangle => format!(
            r#"<path d="M {x:.1} {:.1} L {:.1} {:.1} L {:.1} {:.1} Z""#,
            y - 4.5,
            x + 4.5,
            y + 3.5,
            x - 4.5,
            y + 3.5
        ),
        Marker::Diamond => format!(
            r#"<path d="M {x:.1} {:.1} L {:.1} {y:.1} L {x:.1} {:.1} L {:.1} {y:.1} Z""#,
            y - 5.0,
            x + 5.0,
            y + 5.0,
            x - 5.0
        ),
    };
    format!(r#"{shape} class="plot-s{n}" fill="{colour}" stroke="{colour}"/>"#)
}

/// The TIME_WAIT sockets each side kept, from `top`: one row per way of
/// closing, a bar for the server and one for the client, as a share of
/// the run's connections. Returns the figure's height.
fn draw_time_wait(svg: &mut String, report: &Report, top: f64) -> f64 {
    let connections = report.connections_per_run.max(1) as f64;
    let (server_x, client_x, bar) = (136.0, 252.0, 66.0);
    let _ = writeln!(
        svg,
        r##"<text class="tcp-text" x="4" y="{}" font-weight="bold">TIME_WAIT sockets left by {connections} connections</text>"##,
        top + 12.0
    );
    for (x, side) in [(server_x, "server"), (client_x, "client")] {
        let _ = writeln!(
            svg,
            r##"<text class="tcp-text" x="{x}" y="{}">{side}</text>"##,
            top + 32.0
        );
    }
    let mut y = top + 40.0;
    for (n, series) in SERIES.iter().enumerate() {
        let row = report.rows.iter().find(|r| r.strategy == series.strategy);
        let (server, client) = row.map_or((0, 0), |r| (r.median.time_wait_server, r.median.time_wait_client));
        let _ = writeln!(
            svg,
            r##"{}<text class="tcp-text" x="16" y="{:.1}">{}</text>"##,
            marker(series, n, 6.0, y + 8.0),
            y + 12.0,
            series.label
        );
        for (x, count) in [(server_x, server), (client_x, client)] {
            let width = (count as f64 / connections * bar).min(bar);
            let _ = writeln!(
                svg,
                r##"<rect class="plot-s{n}" x="{x}" y="{:.1}" width="{width:.1}" height="10" fill="{}"/><text class="tcp-text" x="{:.1}" y="{:.1}">{count}</text>"##,
                y + 3.0,
                series.colour,
                x + width + 4.0,
                y + 12.0
            );
        }
        y += 20.0;
    }
    y + 4.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::STRATEGIES;

    #[test]
    fn labels_at_line_ends_never_overlap_and_stay_in_the_panel() {
        // Two lines end 3 px apart, a third at the very bottom.
        let labels = end_labels(&[("a", 50.0), ("b", 53.0), ("c", 120.0), ("d", 119.0)], 0.0);
        for pair in labels.windows(2) {
            assert!(pair[1].y - pair[0].y >= LABEL_GAP, "{labels:?}");
        }
        assert!(labels.iter().all(|l| l.y <= PLOT_HEIGHT + 4.0), "{labels:?}");
        // Labels that do not meet stay at their line's end.
        let apart = end_labels(&[("a", 10.0), ("b", 60.0)], 0.0);
        assert_eq!(
            apart,
            [EndLabel { label: "a", y: 14.0 }, EndLabel { label: "b", y: 64.0 }]
        );
    }

    #[test]
    fn an_axis_is_a_round_step_above_the_largest_value() {
        assert_eq!(axis(35_060.0), (10_000.0, 40_000.0));
        assert_eq!(axis(737.0), (200.0, 800.0));
        assert_eq!(axis(0.0), (1.0, 1.0));
    }

    #[test]
    fn every_way_of_closing_has_a_series_of_its_own() {
        let drawn: Vec<Strategy> = SERIES.iter().map(|s| s.strategy).collect();
        assert_eq!(drawn, STRATEGIES);
        let looks: Vec<(Marker, &str)> = SERIES.iter().map(|s| (s.marker, s.dash)).collect();
        for (i, look) in looks.iter().enumerate() {
            assert!(
                !looks[..i].contains(look),
                "each series is told apart without its colour: {looks:?}"
            );
        }
    }
}
