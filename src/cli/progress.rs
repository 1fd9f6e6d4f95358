//! The one progress display of every command that follows a deploy: fed a
//! [`ProgressSnapshot`] (the current step; files and bytes hashed, buckets,
//! files and bytes uploaded, with their totals once known), wherever the
//! snapshot comes from.
//!
//! - `enqueue --wait` builds snapshots from the worker's `deploy.progress`
//!   events ([`apply_event`]).
//! - A local deploy (`deploy`) hands its [`DeployObserver`] to
//!   [`follow_observer`], which redraws from it until
//!   [`Following::finish`]:
//!
//! ```no_run
//! # async fn demo(observer: &wfp_deployer::pipeline::DeployObserver) {
//! use wfp_deployer::cli::progress::{ProgressDisplay, follow_observer};
//! let following = follow_observer(observer, ProgressDisplay::stderr());
//! // ... run the deploy with `observer` ...
//! following.finish().await; // the last state drawn, the bar cleared
//! # }
//! ```
//!
//! On a terminal (standard error) the display is live (`indicatif`): the
//! step, a bar of the step's bytes, the counts, the rate and the ETA. Off
//! a terminal it writes plain lines instead, one at each step change and
//! at most one a second, which a log keeps readable.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::event_line::bytes;
use crate::console::event::FeedEvent;
use crate::contract::{ProgressData, Step};
use crate::pipeline::{DeployObserver, ProgressSnapshot};

/// Least time between two plain lines of one step.
const PLAIN_EVERY: Duration = Duration::from_secs(1);
/// How often [`follow_observer`] looks at its observer between step changes.
const REDRAW_EVERY: Duration = Duration::from_millis(100);

/// Where the progress goes: a live bar, or plain lines.
pub struct ProgressDisplay {
    mode: Mode,
}

enum Mode {
    Live {
        bar: ProgressBar,
        /// The step the bar is drawn for (a new one resets rate and ETA).
        step: Option<Step>,
    },
    Plain {
        out: Box<dyn Write + Send>,
        /// The last line written, and when.
        last: Option<(ProgressSnapshot, Instant)>,
    },
}

impl ProgressDisplay {
    /// On standard error: live on a terminal, plain lines otherwise.
    pub fn stderr() -> Self {
        if std::io::stderr().is_terminal() {
            Self::live()
        } else {
            Self::plain(Box::new(std::io::stderr()))
        }
    }

    /// A live `indicatif` display on standard error.
    pub fn live() -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(uncounted_style());
        // Until the first step is known (a queued job has none yet).
        bar.set_prefix("waiting");
        bar.enable_steady_tick(Duration::from_millis(120));
        Self {
            mode: Mode::Live { bar, step: None },
        }
    }

    /// Plain lines written to `out`.
    pub fn plain(out: Box<dyn Write + Send>) -> Self {
        Self {
            mode: Mode::Plain { out, last: None },
        }
    }

    /// Shows `snapshot`: redraws the bar, or writes a line if one is due.
    pub fn show(&mut self, snapshot: &ProgressSnapshot) {
        self.show_at(snapshot, Instant::now());
    }

    fn show_at(&mut self, snapshot: &ProgressSnapshot, now: Instant) {
        match &mut self.mode {
            Mode::Live { bar, step } => draw(bar, step, snapshot),
            Mode::Plain { out, last } => {
                let due = match last {
                    None => true,
                    Some((seen, _)) if seen.step != snapshot.step => true,
                    Some((seen, at)) => seen != snapshot && now >= *at + PLAIN_EVERY,
                };
                if due {
                    // A closed standard error is no reason to stop a deploy.
                    let _ = writeln!(out, "{}", line(snapshot));
                    *last = Some((*snapshot, now));
                }
            }
        }
    }

    /// Shows `snapshot` as the last state: a plain display writes it unless
    /// its last line already said the same, however recent that line.
    pub fn show_final(&mut self, snapshot: &ProgressSnapshot) {
        if let Mode::Plain { last, .. } = &mut self.mode
            && last.is_some_and(|(seen, _)| seen != *snapshot)
        {
            *last = None;
        }
        self.show(snapshot);
    }

    /// Writes a line of its own (an event, a note): above the live bar, or
    /// among the plain lines.
    pub fn println(&mut self, text: &str) {
        match &mut self.mode {
            Mode::Live { bar, .. } => bar.println(text),
            Mode::Plain { out, .. } => {
                let _ = writeln!(out, "{text}");
            }
        }
    }

    /// Clears the live bar (the plain lines stay as written).
    pub fn finish(self) {
        match self.mode {
            Mode::Live { bar, .. } => bar.finish_and_clear(),
            Mode::Plain { mut out, .. } => {
                let _ = out.flush();
            }
        }
    }
}

/// Steps that count nothing: a spinner, the step, its time.
fn uncounted_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {prefix:>8} {elapsed:>4}")
        .expect("a valid progress template")
}

/// `hash` and `upload`: a bar of the step's bytes, the counts, rate, ETA.
fn counted_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{spinner} {prefix:>8} [{bar:20}] {binary_bytes}/{binary_total_bytes} \
         {binary_bytes_per_sec} ETA {eta} {wide_msg}",
    )
    .expect("a valid progress template")
    .progress_chars("=> ")
}

fn draw(bar: &ProgressBar, shown: &mut Option<Step>, snapshot: &ProgressSnapshot) {
    if *shown != Some(snapshot.step) {
        *shown = Some(snapshot.step);
        bar.reset();
        bar.set_prefix(snapshot.step.as_str());
        bar.set_style(match snapshot.step {
            Step::Hash | Step::Upload => counted_style(),
            _ => uncounted_style(),
        });
    }
    let counts = StepCounts::of(snapshot);
    if let Some(total) = counts.bytes_total {
        bar.set_length(total);
    }
    bar.set_position(counts.bytes_done);
    bar.set_message(counts.files_text());
}

/// The current step's counts, whichever step it is.
struct StepCounts {
    files_done: u64,
    files_total: Option<u64>,
    bytes_done: u64,
    bytes_total: Option<u64>,
    buckets: Option<(u64, Option<u64>)>,
}

impl StepCounts {
    fn of(s: &ProgressSnapshot) -> Self {
        match s.step {
            Step::Hash => Self {
                files_done: s.files_hashed,
                files_total: s.files_to_hash,
                bytes_done: s.bytes_hashed,
                bytes_total: s.bytes_to_hash,
                buckets: None,
            },
            Step::Upload => Self {
                files_done: s.files_uploaded,
                files_total: s.files_to_upload,
                bytes_done: s.bytes_uploaded,
                bytes_total: s.bytes_to_upload,
                buckets: Some((s.buckets_uploaded, s.buckets_to_upload)),
            },
            _ => Self {
                files_done: 0,
                files_total: None,
                bytes_done: 0,
                bytes_total: None,
                buckets: None,
            },
        }
    }

    fn files_text(&self) -> String {
        let of = |done: u64, total: Option<u64>| match total {
            Some(total) => format!("{done}/{total}"),
            None => done.to_string(),
        };
        let mut text = format!("{} files", of(self.files_done, self.files_total));
        if let Some((done, total)) = self.buckets {
            text.push_str(&format!(", {} buckets", of(done, total)));
        }
        text
    }
}

/// The plain line of `snapshot`: `hash: 3/10 files, 1.0 KiB of 4.0 KiB`;
/// a step that counts nothing is its name alone.
pub fn line(snapshot: &ProgressSnapshot) -> String {
    let step = snapshot.step.as_str();
    if !matches!(snapshot.step, Step::Hash | Step::Upload) {
        return step.to_string();
    }
    let counts = StepCounts::of(snapshot);
    let size = match counts.bytes_total {
        Some(total) => format!("{} of {}", bytes(counts.bytes_done), bytes(total)),
        None => bytes(counts.bytes_done),
    };
    format!("{step}: {}, {size}", counts.files_text())
}

/// `snapshot` moved on by a `deploy.progress` event: its step, and that
/// step's counts (an event carries only the current step's). Other events,
/// and progress events of a newer worker's unknown step, leave it as it is.
pub fn apply_event(snapshot: &mut ProgressSnapshot, event: &FeedEvent) {
    if event.kind != "progress" {
        return;
    }
    let Ok(data) = serde_json::from_value::<ProgressData>(event.data().clone()) else {
        return;
    };
    let Some(step) = data.step else {
        return;
    };
    snapshot.step = step;
    match step {
        Step::Hash => {
            snapshot.files_hashed = data.files_done.unwrap_or(snapshot.files_hashed);
            snapshot.files_to_hash = data.files_total.or(snapshot.files_to_hash);
            snapshot.bytes_hashed = data.bytes_done.unwrap_or(snapshot.bytes_hashed);
            snapshot.bytes_to_hash = data.bytes_total.or(snapshot.bytes_to_hash);
        }
        Step::Upload => {
            snapshot.files_uploaded = data.files_done.unwrap_or(snapshot.files_uploaded);
            snapshot.files_to_upload = data.files_total.or(snapshot.files_to_upload);
            snapshot.bytes_uploaded = data.bytes_done.unwrap_or(snapshot.bytes_uploaded);
            snapshot.bytes_to_upload = data.bytes_total.or(snapshot.bytes_to_upload);
            snapshot.buckets_uploaded = data.buckets_done.unwrap_or(snapshot.buckets_uploaded);
            snapshot.buckets_to_upload = data.buckets_total.or(snapshot.buckets_to_upload);
        }
        Step::Validate | Step::List | Step::Session | Step::Deploy => {}
    }
}

/// A display following a local deploy; see [`follow_observer`].
pub struct Following {
    stop: oneshot::Sender<()>,
    task: JoinHandle<ProgressDisplay>,
}

/// Shows `observer`'s progress on `display` until [`Following::finish`]:
/// at once at each step change, and every 100 ms between (a plain display
/// still writes at most one line a second). Needs a tokio runtime.
pub fn follow_observer(observer: &DeployObserver, mut display: ProgressDisplay) -> Following {
    let observer = observer.clone();
    let (stop, mut stopped) = oneshot::channel();
    let task = tokio::spawn(async move {
        let mut changes = observer.changes();
        let mut redraw = tokio::time::interval(REDRAW_EVERY);
        loop {
            display.show(&observer.snapshot());
            tokio::select! {
                _ = &mut stopped => break,
                // The observer we hold keeps the sender: this never ends.
                Ok(()) = changes.changed() => {}
                _ = redraw.tick() => {}
            }
        }
        display.show_final(&observer.snapshot());
        display
    });
    Following { stop, task }
}

impl Following {
    /// Draws the last state, then clears the live bar.
    pub async fn finish(self) {
        let _ = self.stop.send(());
        if let Ok(display) = self.task.await {
            display.finish();
        }
    }
}

#[cfg(test)]
mod tests;
