//! SVG drawn by braid itself (no layout engine): the dependency graph in
//! layers, left to right from what starts first, and the timeline.

use std::fmt::Write as _;

use super::graph::{layers, state_colour, state_of};
use super::session::Session;
use super::timeline::{Phase, Timeline};

/// Escapes text for SVG content and attributes.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const NODE_W: f64 = 170.0;
const NODE_H: f64 = 44.0;
const COL_GAP: f64 = 90.0;
const ROW_GAP: f64 = 26.0;
const MARGIN: f64 = 20.0;

fn edge_colour(kind: &str) -> &'static str {
    match kind {
        "hard" | "prepared-by" | "milestone" => "#37474f",
        "waits-for" | "soft" => "#607d8b",
        "log" | "consumer" | "chain" => "#1565c0",
        _ => "#9e9e9e",
    }
}

fn edge_dash(kind: &str) -> &'static str {
    match kind {
        "waits-for" => " stroke-dasharray=\"6 3\"",
        "soft" | "after" | "before" => " stroke-dasharray=\"2 3\"",
        _ => "",
    }
}

/// The dependency graph: services that wait for nothing in the left
/// column, each other service one column right of the deepest it waits
/// for; a box per service (name, face and state, filled by state), an
/// arrow per link from the dependent to what it needs, labelled with the
/// kind.
pub fn graph(session: &Session) -> String {
    let mut names: Vec<&str> = session.services.iter().map(|s| s.name.as_str()).collect();
    for e in &session.edges {
        for n in [&e.from, &e.to] {
            if !names.contains(&n.as_str()) {
                names.push(n);
            }
        }
    }
    let layer = layers(session, &names);
    let columns = layer.values().copied().max().map_or(1, |m| m + 1);
    let mut rows_in = vec![0usize; columns];
    let mut place = std::collections::HashMap::new();
    for name in &names {
        let col = layer.get(*name).copied().unwrap_or(0);
        let row = rows_in[col];
        rows_in[col] += 1;
        let x = MARGIN + col as f64 * (NODE_W + COL_GAP);
        let y = MARGIN + 60.0 + row as f64 * (NODE_H + ROW_GAP);
        place.insert(name.to_string(), (x, y));
    }
    let rows = rows_in.iter().copied().max().unwrap_or(1).max(1);
    let width = MARGIN * 2.0 + columns as f64 * NODE_W + (columns as f64 - 1.0) * COL_GAP;
    let height = MARGIN * 2.0 + 60.0 + rows as f64 * (NODE_H + ROW_GAP);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"sans-serif\">"
    );
    out.push_str("<title>braid: service dependency graph</title>\n");
    out.push_str("<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"8\" markerHeight=\"8\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#37474f\"/></marker></defs>\n");
    let _ = writeln!(
        out,
        "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n<text x=\"{MARGIN}\" y=\"{:.0}\" font-size=\"14\" fill=\"#263238\">dependencies: an arrow points from a service to what it waits for</text>",
        MARGIN + 10.0
    );
    for e in &session.edges {
        let (Some(&(fx, fy)), Some(&(tx, ty))) = (place.get(&e.from), place.get(&e.to)) else {
            continue;
        };
        // From the dependent's left side to the dependency's right side
        // (or between the closest sides within a column).
        let (x1, x2) = if fx > tx {
            (fx, tx + NODE_W)
        } else if fx < tx {
            (fx + NODE_W, tx)
        } else {
            (fx + NODE_W, tx + NODE_W)
        };
        let (y1, y2) = (fy + NODE_H / 2.0, ty + NODE_H / 2.0);
        // Within a column, bow out to the right; across several columns,
        // arch over the boxes in between.
        let bend_x = if fx == tx { NODE_W / 3.0 } else { 0.0 };
        let bend_y = if (fx - tx).abs() > NODE_W + COL_GAP + 1.0 {
            -(NODE_H + ROW_GAP)
        } else {
            0.0
        };
        let (cx, cy) = ((x1 + x2) / 2.0 + bend_x, (y1 + y2) / 2.0 + bend_y);
        // The curve's midpoint, where the label goes.
        let (mx, my) = ((x1 + 2.0 * cx + x2) / 4.0, (y1 + 2.0 * cy + y2) / 4.0);
        let _ = writeln!(
            out,
            "<g class=\"edge\" data-from=\"{}\" data-to=\"{}\" data-kind=\"{}\"><path d=\"M{x1:.1},{y1:.1} Q{cx:.1},{cy:.1} {x2:.1},{y2:.1}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\"{} marker-end=\"url(#arrow)\"/><text x=\"{mx:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\" fill=\"#455a64\">{}</text></g>",
            esc(&e.from),
            esc(&e.to),
            esc(&e.kind),
            edge_colour(&e.kind),
            edge_dash(&e.kind),
            my - 4.0,
            esc(&e.kind)
        );
    }
    for name in &names {
        let (x, y) = place[*name];
        let state = state_of(session, name);
        let face = session.find(name).map_or("", |s| s.face.name());
        let _ = writeln!(
            out,
            "<g class=\"node\" data-name=\"{n}\" data-state=\"{s}\"><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{NODE_W}\" height=\"{NODE_H}\" rx=\"8\" fill=\"{c}\" stroke=\"#546e7a\"/><text x=\"{tx:.1}\" y=\"{ty1:.1}\" font-size=\"13\" font-weight=\"bold\" text-anchor=\"middle\" fill=\"#263238\">{n}</text><text x=\"{tx:.1}\" y=\"{ty2:.1}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#455a64\">{f} · {s}</text></g>",
            n = esc(name),
            s = esc(&state),
            c = state_colour(&state),
            f = esc(face),
            tx = x + NODE_W / 2.0,
            ty1 = y + 18.0,
            ty2 = y + 35.0,
        );
    }
    out.push_str("</svg>\n");
    out
}

const NAME_W: f64 = 150.0;
const ROW_H: f64 = 26.0;
const PLOT_W: f64 = 900.0;

fn phase_colour(p: Phase) -> &'static str {
    match p {
        Phase::Waiting => "#fff3b0",
        Phase::Launched => "#ffcc80",
        Phase::Ready => "#81c784",
        Phase::Stopping => "#bdbdbd",
    }
}

/// The timeline: one row per service, time to the right; a bar per phase
/// (waiting for dependencies, launched but not ready, ready, stopping), a
/// red tick per restart, and the critical path's services in bold with a
/// red outline on their bars.
pub fn timeline(t: &Timeline) -> String {
    let span = t.span.max(0.001);
    let scale = PLOT_W / span;
    let top = 50.0;
    let height = top + t.rows.len() as f64 * ROW_H + 70.0;
    let width = NAME_W + PLOT_W + 2.0 * MARGIN;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"sans-serif\">"
    );
    out.push_str("<title>braid: session timeline</title>\n<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n");
    let x0 = MARGIN + NAME_W;
    let _ = writeln!(
        out,
        "<text x=\"{MARGIN}\" y=\"22\" font-size=\"14\" fill=\"#263238\">{}</text>",
        esc(&t.title)
    );
    // Axis with ticks.
    let step = tick_step(span);
    let mut tick = 0.0;
    while tick <= span + 1e-9 {
        let x = x0 + tick * scale;
        let _ = writeln!(
            out,
            "<g class=\"tick\"><line x1=\"{x:.1}\" y1=\"{:.0}\" x2=\"{x:.1}\" y2=\"{:.0}\" stroke=\"#eceff1\"/><text x=\"{x:.1}\" y=\"{:.0}\" font-size=\"10\" text-anchor=\"middle\" fill=\"#607d8b\">{}</text></g>",
            top - 6.0,
            top + t.rows.len() as f64 * ROW_H,
            top - 10.0,
            tick_label(tick, step)
        );
        tick += step;
    }
    for (i, row) in t.rows.iter().enumerate() {
        let y = top + i as f64 * ROW_H;
        let weight = if row.critical { "bold" } else { "normal" };
        let _ = writeln!(
            out,
            "<g class=\"row\" data-service=\"{n}\" data-critical=\"{c}\"><text x=\"{MARGIN}\" y=\"{:.1}\" font-size=\"12\" font-weight=\"{weight}\" fill=\"#263238\">{n}</text>",
            y + 17.0,
            n = esc(&row.name),
            c = row.critical
        );
        for bar in &row.bars {
            let bx = x0 + bar.from * scale;
            let bw = ((bar.to - bar.from) * scale).max(1.5);
            let stroke = if row.critical && bar.phase == Phase::Ready {
                " stroke=\"#c62828\" stroke-width=\"2\""
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "<rect class=\"bar\" data-phase=\"{p}\" x=\"{bx:.1}\" y=\"{:.1}\" width=\"{bw:.1}\" height=\"{:.1}\" fill=\"{}\"{stroke}><title>{n}: {p} {:.3}s–{:.3}s</title></rect>",
                y + 4.0,
                ROW_H - 8.0,
                phase_colour(bar.phase),
                bar.from,
                bar.to,
                p = bar.phase.name(),
                n = esc(&row.name),
            );
        }
        for &r in &row.restarts {
            let x = x0 + r * scale;
            let _ = writeln!(
                out,
                "<line class=\"restart\" x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#d32f2f\" stroke-width=\"2\"><title>{}: restarted at {r:.3}s</title></line>",
                y + 1.0,
                y + ROW_H - 1.0,
                esc(&row.name)
            );
        }
        out.push_str("</g>\n");
    }
    let ly = top + t.rows.len() as f64 * ROW_H + 25.0;
    let mut lx = MARGIN;
    for p in [
        Phase::Waiting,
        Phase::Launched,
        Phase::Ready,
        Phase::Stopping,
    ] {
        let _ = writeln!(
            out,
            "<rect x=\"{lx:.0}\" y=\"{:.0}\" width=\"14\" height=\"12\" fill=\"{}\"/><text x=\"{:.0}\" y=\"{ly:.0}\" font-size=\"11\" fill=\"#263238\">{}</text>",
            ly - 10.0,
            phase_colour(p),
            lx + 18.0,
            p.name()
        );
        lx += 110.0;
    }
    let _ = writeln!(
        out,
        "<line x1=\"{lx:.0}\" y1=\"{:.0}\" x2=\"{lx:.0}\" y2=\"{:.0}\" stroke=\"#d32f2f\" stroke-width=\"2\"/><text x=\"{:.0}\" y=\"{ly:.0}\" font-size=\"11\" fill=\"#263238\">restart</text>",
        ly - 11.0,
        ly + 2.0,
        lx + 6.0
    );
    if !t.critical_path.is_empty() {
        let _ = writeln!(
            out,
            "<text class=\"critical-path\" x=\"{MARGIN}\" y=\"{:.0}\" font-size=\"12\" fill=\"#c62828\">critical path to {}: {}</text>",
            ly + 24.0,
            esc(&t.gate),
            esc(&t.critical_path.join(" → "))
        );
    }
    out.push_str("</svg>\n");
    out
}

/// A round step giving about eight ticks over `span` seconds.
pub fn tick_step(span: f64) -> f64 {
    let raw = span / 8.0;
    let mag = 10f64.powf(raw.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if raw <= m * mag {
            return m * mag;
        }
    }
    10.0 * mag
}

fn tick_label(t: f64, step: f64) -> String {
    if step >= 1.0 {
        format!("{t:.0}s")
    } else if step >= 0.1 {
        format!("{t:.1}s")
    } else {
        format!("{t:.2}s")
    }
}
