//! One event as one line for a person: what `watch` prints, and what
//! `enqueue --wait` shows while it waits.
//!
//! `10:00:01.123  failed     customers/acme  acme-42  bundle_not_found at list: ...`
//!
//! The kind is coloured on a terminal (green succeeded, red failed, yellow
//! retrying, cyan started), so a failure stands out in a busy stream; the
//! rest is plain text that greps well.

use std::io::IsTerminal;

use anstyle::{AnsiColor, Style};
use chrono::Local;

use crate::console::event::{FeedEvent, Progress};

/// Whether to colour: `auto` colours a terminal unless `NO_COLOR` is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// Decides for standard output (`watch`) or standard error (`enqueue`).
    pub fn enabled(self, stream: &impl IsTerminal) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => stream.is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }
}

fn style(kind: &str) -> Style {
    let color = match kind {
        "succeeded" => AnsiColor::Green,
        "failed" => AnsiColor::Red,
        "retrying" => AnsiColor::Yellow,
        "started" => AnsiColor::Cyan,
        _ => return Style::new().dimmed(),
    };
    color.on_default().bold()
}

/// `1.2 MiB`, `512 B`: sizes as a person reads them.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

fn progress_text(p: &Progress) -> String {
    let mut parts = vec![p.step.clone().unwrap_or_else(|| "working".into())];
    if let (Some(done), Some(total)) = (p.files_done, p.files_total) {
        parts.push(format!("{done}/{total} files"));
    }
    if let (Some(done), Some(total)) = (p.bytes_done, p.bytes_total) {
        parts.push(format!("{}/{}", bytes(done), bytes(total)));
    }
    parts.join(" ")
}

/// What the line says after the job: the part each kind adds.
fn detail(event: &FeedEvent) -> String {
    let attempt = event.attempt.map(|a| format!("attempt {a}"));
    if let Some(error) = event.error() {
        let step = error.step.map(|s| format!(" at {s}")).unwrap_or_default();
        let retry = match error.retryable {
            Some(true) => " (retryable)",
            _ => "",
        };
        let attempt = attempt.map(|a| format!(", {a}")).unwrap_or_default();
        return format!("{}{step}: {}{retry}{attempt}", error.code, error.message);
    }
    if let Some(progress) = event.progress() {
        return progress_text(&progress);
    }
    if event.kind == "succeeded" {
        let data = event.data();
        let mut parts = Vec::new();
        if let Some(files) = data.pointer("/manifest/files").and_then(|v| v.as_u64()) {
            let size = data
                .pointer("/manifest/bytes")
                .and_then(|v| v.as_u64())
                .unwrap_or(0);
            parts.push(format!("{files} files, {}", bytes(size)));
        }
        if let Some(uploaded) = data.pointer("/upload/files").and_then(|v| v.as_u64()) {
            parts.push(format!("{uploaded} uploaded"));
        }
        if let Some(ms) = event.duration_ms() {
            parts.push(format!("{ms} ms"));
        }
        return parts.join(", ");
    }
    attempt.unwrap_or_default()
}

/// The event as one line, coloured or not.
pub fn render(event: &FeedEvent, color: bool) -> String {
    let time = event
        .time
        .map(|t| t.with_timezone(&Local).format("%H:%M:%S%.3f").to_string())
        .unwrap_or_else(|| "--:--:--.---".into());
    let kind = format!("{:<9}", event.kind);
    let kind = if color {
        let style = style(&event.kind);
        format!("{style}{kind}{style:#}")
    } else {
        kind
    };
    let line = format!(
        "{time}  {kind}  {}  {}  {}",
        event.site(),
        event.job_id,
        detail(event)
    );
    line.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(kind: &str, data: serde_json::Value) -> FeedEvent {
        let body = json!({"id": format!("j:{kind}"), "type": format!("wfp.deploy.{kind}"),
                          "time": "2026-11-25T10:00:00.000Z", "data": data});
        FeedEvent::parse("deploy.x", body.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn lines_say_what_each_kind_adds() {
        let failed = event(
            "failed",
            json!({"job_id": "j", "namespace": "ns", "script_name": "s", "attempt": 1,
                   "error": {"code": "bundle_not_found", "message": "empty", "step": "list", "retryable": true}}),
        );
        let line = render(&failed, false);
        assert!(
            line.contains(
                "failed     ns/s  j  bundle_not_found at list: empty (retryable), attempt 1"
            ),
            "{line}"
        );
        let ok = event(
            "succeeded",
            json!({"job_id": "j", "namespace": "ns", "script_name": "s", "attempt": 1, "duration_ms": 812,
                   "manifest": {"files": 37, "bytes": 1_843_200}, "upload": {"files": 5}}),
        );
        assert!(render(&ok, false).ends_with("37 files, 1.8 MiB, 5 uploaded, 812 ms"));
        let progress = event(
            "progress",
            json!({"job_id": "j", "step": "upload", "files_done": 2, "files_total": 5,
                   "bytes_done": 2048, "bytes_total": 4096}),
        );
        assert!(render(&progress, false).ends_with("upload 2/5 files 2.0 KiB/4.0 KiB"));
        let coloured = render(&failed, true);
        assert!(coloured.contains("\u{1b}["), "{coloured}");
    }

    #[test]
    fn sizes_read_as_a_person_reads_them() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }
}
