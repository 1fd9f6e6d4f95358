//! The chart: each figure as a bar against its limit or target, one row
//! each, one block per S3 server.
//!
//! Written by hand: the chart is a few dozen rectangles and labels, and the
//! maintained plotting crate (`plotters`) would add a dependency tree to
//! every developer's test build (examples build with the tests) for what
//! fits in this file. Each row has its own scale (the larger of the figure
//! and its reference), since the figures have different units.

use std::fmt::Write;

use crate::report::{Results, ServerResults};

const WIDTH: f64 = 1040.0;
const LABEL_X: f64 = 10.0;
const BAR_X: f64 = 350.0;
const BAR_W: f64 = 360.0;
const TEXT_X: f64 = 722.0;
const ROW_H: f64 = 24.0;
const HEAD_H: f64 = 30.0;
const PASS: &str = "#2e7d32";
const MISS: &str = "#c62828";

/// One row: a figure, what it is held against, and how.
struct Row {
    label: String,
    value: Option<f64>,
    reference: f64,
    /// What the reference is ("limit: s3_get", "target").
    reference_label: String,
    /// The pass line, where it is not the reference itself (0.7 × limit).
    goal: Option<f64>,
    higher_is_better: bool,
    unit: &'static str,
    /// Shown instead of a bar.
    note: Option<String>,
}

impl Row {
    fn target(label: String, value: f64, target: f64, higher: bool, unit: &'static str) -> Row {
        Row {
            label,
            value: Some(value),
            reference: target,
            reference_label: "target".into(),
            goal: None,
            higher_is_better: higher,
            unit,
            note: None,
        }
    }

    fn pass(&self, value: f64) -> bool {
        let line = self.goal.unwrap_or(self.reference);
        if self.higher_is_better {
            value >= line
        } else {
            value <= line
        }
    }
}

fn rows(server: &ServerResults) -> Vec<Row> {
    let mut rows = Vec::new();
    for (shape, d) in &server.first_deploy {
        let what = format!(
            "first deploy {shape} ({} files, {:.0} MiB)",
            d.files,
            crate::data::mib(d.bytes)
        );
        match (&d.measured, &d.limits) {
            (Some(m), Some(l)) => {
                rows.push(Row {
                    label: format!("{what}: MiB/s"),
                    value: Some(m.mbps),
                    reference: l.binding_limit_mbps,
                    reference_label: format!("limit: {}", l.binding),
                    goal: Some(0.7 * l.binding_limit_mbps),
                    higher_is_better: true,
                    unit: "MiB/s",
                    note: None,
                });
                rows.push(Row::target(
                    format!("{shape}: peak RSS"),
                    m.peak_rss_mib,
                    128.0,
                    false,
                    "MiB",
                ));
            }
            _ => rows.push(Row {
                label: what,
                value: None,
                reference: 0.0,
                reference_label: String::new(),
                goal: None,
                higher_is_better: true,
                unit: "",
                note: Some(format!(
                    "skipped: {}",
                    d.skipped.as_deref().unwrap_or("not measured")
                )),
            }),
        }
    }
    let r = &server.unchanged_redeploy;
    rows.push(Row::target(
        format!("unchanged redeploy ({} files): wall", r.files),
        r.wall_s,
        2.0,
        false,
        "s",
    ));
    rows.push(Row::target(
        "unchanged redeploy: bytes read".into(),
        100.0 * r.bytes_read_ratio,
        1.0,
        false,
        "%",
    ));
    let b = &server.new_build_1pct_changed;
    rows.push(Row::target(
        format!("new build, {} changed: bytes read", b.changed_files),
        100.0 * b.bytes_read_ratio,
        2.0,
        false,
        "%",
    ));
    rows.push(Row::target(
        format!("broker ({} jobs, 1 worker): jobs/s", server.broker.jobs),
        server.broker.jobs_per_s,
        50.0,
        true,
        "jobs/s",
    ));
    rows
}

/// The whole chart as an SVG document.
pub fn chart(results: &Results) -> String {
    let blocks: Vec<(&ServerResults, Vec<Row>)> =
        results.servers.iter().map(|s| (s, rows(s))).collect();
    let height = 70.0
        + blocks
            .iter()
            .map(|(_, r)| HEAD_H + ROW_H * r.len() as f64 + 10.0)
            .sum::<f64>();
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let mode = if results.quick { ", quick mode" } else { "" };
    let _ = writeln!(
        svg,
        r#"<text x="{LABEL_X}" y="22" font-size="15" font-weight="bold">wfp-deployer make bench, {}{mode}</text>"#,
        escape(&results.date)
    );
    let _ = writeln!(
        svg,
        r##"<text x="{LABEL_X}" y="42" fill="#555">grey: the limit or target; bar: the figure (green PASS, red MISS); black tick: 0.7 x limit. Each row has its own scale.</text>"##
    );
    let mut y = 60.0;
    for (server, rows) in &blocks {
        let _ = writeln!(
            svg,
            r#"<text x="{LABEL_X}" y="{}" font-size="14" font-weight="bold">{} ({})</text>"#,
            y + 18.0,
            escape(&server.server),
            escape(&server.endpoint)
        );
        y += HEAD_H;
        for row in rows {
            draw(&mut svg, row, y);
            y += ROW_H;
        }
        y += 10.0;
    }
    svg.push_str("</svg>\n");
    svg
}

fn draw(svg: &mut String, row: &Row, y: f64) {
    let text_y = y + 16.0;
    let _ = writeln!(
        svg,
        r#"<text x="{LABEL_X}" y="{text_y}">{}</text>"#,
        escape(&row.label)
    );
    let Some(value) = row.value else {
        let note = row.note.as_deref().unwrap_or_default();
        let _ = writeln!(
            svg,
            r##"<text x="{BAR_X}" y="{text_y}" fill="#777">{}</text>"##,
            escape(note)
        );
        return;
    };
    let scale = value
        .max(row.reference)
        .max(row.goal.unwrap_or(0.0))
        .max(f64::MIN_POSITIVE)
        * 1.05;
    let w = |v: f64| (v / scale * BAR_W).max(0.0);
    let _ = writeln!(
        svg,
        r##"<rect x="{BAR_X}" y="{}" width="{:.1}" height="16" fill="#d0d0d0"/>"##,
        y + 3.0,
        w(row.reference)
    );
    let pass = row.pass(value);
    let colour = if pass { PASS } else { MISS };
    let _ = writeln!(
        svg,
        r#"<rect x="{BAR_X}" y="{}" width="{:.1}" height="8" fill="{colour}"/>"#,
        y + 7.0,
        w(value).max(1.0)
    );
    if let Some(goal) = row.goal {
        let x = BAR_X + w(goal);
        let _ = writeln!(
            svg,
            r#"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{}" stroke="black" stroke-width="2"/>"#,
            y + 1.0,
            y + 21.0
        );
    }
    let verdict = if pass { "PASS" } else { "MISS" };
    let _ = writeln!(
        svg,
        r#"<text x="{TEXT_X}" y="{text_y}"><tspan fill="{colour}" font-weight="bold">{verdict}</tspan> {} of {} {} ({})</text>"#,
        number(value),
        number(row.reference),
        row.unit,
        escape(&row.reference_label)
    );
}

/// Three significant digits or so.
fn number(v: f64) -> String {
    match v.abs() {
        a if a >= 100.0 => format!("{v:.0}"),
        a if a >= 10.0 => format!("{v:.1}"),
        a if a >= 0.1 => format!("{v:.2}"),
        _ => format!("{v:.3}"),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
