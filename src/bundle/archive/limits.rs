//! The caps an archive must stay under, and the meter that enforces them
//! while the bytes stream.
//!
//! A decompression bomb is stopped by counting, not by trusting headers:
//! every byte that leaves a decompressor passes through [`Inflated`], which
//! fails the read that crosses a cap, and every byte taken from the input
//! passes through [`Source`]. Both report into one [`Meter`] shared by the
//! layers of one read. The crates in between (tar, flate2, zstd, zip) wrap
//! or rephrase the I/O errors they see, so the meter keeps the first real
//! cause — a crossed cap, a failing input — and the reader asks it, not the
//! error that surfaced, what went wrong.

use std::cell::RefCell;
use std::io::{self, Read, Seek, SeekFrom};
use std::rc::Rc;

use super::error::{ArchiveError, Limit};

/// The ratio cap applies once this many bytes came out of the decompressor:
/// small archives of repetitive text legitimately compress very well.
pub const RATIO_GRACE_BYTES: u64 = 1 << 20;

/// Caps on one archive. Counted while streaming; a read stops at the first
/// cap crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveLimits {
    /// Regular files taken (under the root).
    pub max_files: u64,
    /// Bytes of one file.
    pub max_file_bytes: u64,
    /// Bytes out of the decompressor, headers and skipped entries included
    /// (for zip: the bytes of the entries read). Set it above the bundle's
    /// own total so tar headers fit.
    pub max_total_bytes: u64,
    /// Decompressed bytes per compressed byte, once past
    /// [`RATIO_GRACE_BYTES`].
    pub max_ratio: u64,
    /// Path segments of one entry (`a/b/c.txt` is 3).
    pub max_depth: usize,
    /// Bytes of one entry's path, relative to the root.
    pub max_path_bytes: usize,
}

impl Default for ArchiveLimits {
    /// Cloudflare's Workers for Platforms limits (100,000 files, 25 MiB a
    /// file), 2 GiB in all, a ratio no real site reaches, S3's key length.
    fn default() -> Self {
        ArchiveLimits {
            max_files: 100_000,
            max_file_bytes: 25 << 20,
            max_total_bytes: 2 << 30,
            max_ratio: 200,
            max_depth: 32,
            max_path_bytes: crate::bundle::path::MAX_PATH_BYTES,
        }
    }
}

/// The first thing that went wrong below the archive crates.
#[derive(Debug)]
enum Fault {
    Limit { limit: Limit, value: u64, max: u64 },
    Source(io::Error),
}

impl Fault {
    fn into_error(self, entry: Option<String>) -> ArchiveError {
        match self {
            Fault::Limit { limit, value, max } => ArchiveError::Limit {
                entry,
                limit,
                value,
                max,
            },
            Fault::Source(source) => ArchiveError::Io { entry, source },
        }
    }
}

/// Where a budget counts: the archive's own bytes or decompressed ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Layer {
    Input,
    Output,
}

/// A cap on the bytes one phase of reading may take.
#[derive(Debug, Clone, Copy)]
pub(super) struct Budget {
    pub(super) limit: Limit,
    pub(super) layer: Layer,
    pub(super) max: u64,
}

#[derive(Debug)]
struct State {
    limits: ArchiveLimits,
    /// Bytes read from the input.
    input: u64,
    /// Compressed bytes behind what was decompressed so far.
    compressed: u64,
    decompressed: u64,
    /// What the current phase may read (tar headers, a zip's directory).
    budget: Option<Budget>,
    budget_used: u64,
    fault: Option<Fault>,
}

/// Counters and the first fault of one archive read, shared by its layers.
#[derive(Debug, Clone)]
pub(super) struct Meter(Rc<RefCell<State>>);

impl Meter {
    pub(super) fn new(limits: ArchiveLimits) -> Self {
        Meter(Rc::new(RefCell::new(State {
            limits,
            input: 0,
            compressed: 0,
            decompressed: 0,
            budget: None,
            budget_used: 0,
            fault: None,
        })))
    }

    pub(super) fn limits(&self) -> ArchiveLimits {
        self.0.borrow().limits
    }

    pub(super) fn input_bytes(&self) -> u64 {
        self.0.borrow().input
    }

    /// What an I/O error that surfaced from the archive crates means: the
    /// fault recorded below them if there is one (a cap, the input), else
    /// the archive's bytes are malformed.
    pub(super) fn error(&self, entry: Option<String>, e: io::Error) -> ArchiveError {
        match self.0.borrow_mut().fault.take() {
            Some(fault) => fault.into_error(entry),
            None => ArchiveError::corrupt(entry, e.to_string()),
        }
    }

    /// A fault recorded but swallowed by the crates above (none should,
    /// but a wrong answer must not pass for a right one).
    pub(super) fn check(&self, entry: Option<String>) -> Result<(), ArchiveError> {
        match self.0.borrow_mut().fault.take() {
            Some(fault) => Err(fault.into_error(entry)),
            None => Ok(()),
        }
    }

    /// Lets the next reads take at most `budget.max` bytes in all; `None`
    /// lifts the budget.
    pub(super) fn set_budget(&self, budget: Option<Budget>) {
        let mut state = self.0.borrow_mut();
        state.budget = budget;
        state.budget_used = 0;
    }

    fn spend(state: &mut State, layer: Layer, n: usize) -> Option<Fault> {
        let budget = state.budget.filter(|b| b.layer == layer)?;
        state.budget_used = state.budget_used.saturating_add(n as u64);
        (state.budget_used > budget.max).then_some(Fault::Limit {
            limit: budget.limit,
            value: state.budget_used,
            max: budget.max,
        })
    }

    /// Counts compressed bytes a zip entry is about to be read from.
    pub(super) fn add_compressed(&self, n: u64) {
        let mut state = self.0.borrow_mut();
        state.compressed = state.compressed.saturating_add(n);
    }

    fn trip(state: &mut State, fault: Fault) -> io::Error {
        let message = match &fault {
            Fault::Limit { limit, .. } => format!("over {limit}"),
            Fault::Source(e) => format!("input failed: {e}"),
        };
        state.fault.get_or_insert(fault);
        io::Error::other(message)
    }

    fn counted_input(&self, result: io::Result<usize>, compressed: bool) -> io::Result<usize> {
        let mut state = self.0.borrow_mut();
        match result {
            Ok(n) => {
                state.input = state.input.saturating_add(n as u64);
                if compressed {
                    state.compressed = state.compressed.saturating_add(n as u64);
                }
                match Self::spend(&mut state, Layer::Input, n) {
                    Some(fault) => Err(Self::trip(&mut state, fault)),
                    None => Ok(n),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => Err(Self::trip(&mut state, Fault::Source(e))),
        }
    }

    fn counted_output(&self, n: usize) -> io::Result<usize> {
        let mut state = self.0.borrow_mut();
        state.decompressed = state.decompressed.saturating_add(n as u64);
        let State {
            limits,
            decompressed,
            compressed,
            ..
        } = *state;
        let fault = if decompressed > limits.max_total_bytes {
            Some(Fault::Limit {
                limit: Limit::TotalBytes,
                value: decompressed,
                max: limits.max_total_bytes,
            })
        } else if decompressed > RATIO_GRACE_BYTES
            && decompressed / compressed.max(1) > limits.max_ratio
        {
            Some(Fault::Limit {
                limit: Limit::Ratio,
                value: decompressed / compressed.max(1),
                max: limits.max_ratio,
            })
        } else {
            Self::spend(&mut state, Layer::Output, n)
        };
        match fault {
            Some(fault) => Err(Self::trip(&mut state, fault)),
            None => Ok(n),
        }
    }
}

/// The archive's own bytes, counted; a failure is recorded as the input's.
/// `compressed` says whether its bytes count towards the ratio (tar streams:
/// yes; zip: each entry's compressed size is counted instead).
pub(super) struct Source<R> {
    inner: R,
    meter: Meter,
    compressed: bool,
}

impl<R> Source<R> {
    pub(super) fn new(inner: R, meter: Meter, compressed: bool) -> Self {
        Source {
            inner,
            meter,
            compressed,
        }
    }
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let result = self.inner.read(buf);
        self.meter.counted_input(result, self.compressed)
    }
}

impl<R: Seek> Seek for Source<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner
            .seek(pos)
            .map_err(|e| Meter::trip(&mut self.meter.0.borrow_mut(), Fault::Source(e)))
    }
}

/// Bytes out of a decompressor, counted against the total and ratio caps.
pub(super) struct Inflated<R> {
    inner: R,
    meter: Meter,
    /// Whether a read returned end of stream.
    at_end: bool,
}

impl<R> Inflated<R> {
    pub(super) fn new(inner: R, meter: Meter) -> Self {
        Inflated {
            inner,
            meter,
            at_end: false,
        }
    }

    pub(super) fn at_end(&self) -> bool {
        self.at_end
    }

    pub(super) fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for Inflated<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.at_end = true;
        }
        self.meter.counted_output(n)
    }
}
