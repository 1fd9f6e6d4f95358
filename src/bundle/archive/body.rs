//! Hands one file's bytes to the sink and holds them to the declared size.
//!
//! The sink only reads; whether the archive lied is decided here. A body
//! that ends early (a truncated archive, a lying size field) or goes on past
//! its size is an error even if the sink read happily, and a failure below
//! (a crossed cap, a CRC mismatch found at the entry's end) is reported as
//! itself rather than as whatever the sink made of it. When the sink stops
//! before the end, the rest is read here so the archive is still checked.

use std::io::{self, Read};

use super::EntrySink;
use super::error::ArchiveError;
use super::limits::Meter;

/// What went wrong under the sink's reads.
enum Fault {
    Short { got: u64 },
    Long,
    Read(io::Error),
}

struct Body<'a> {
    inner: &'a mut dyn Read,
    declared: u64,
    remaining: u64,
    /// Whether the end was confirmed (the inner reader said end of data).
    ended: bool,
    fault: Option<Fault>,
}

impl Body<'_> {
    fn fail(&mut self, fault: Fault) -> io::Error {
        let message = match &fault {
            Fault::Short { got } => format!("ended after {got} of {} bytes", self.declared),
            Fault::Long => format!("longer than its {} bytes", self.declared),
            Fault::Read(e) => e.to_string(),
        };
        self.fault.get_or_insert(fault);
        io::Error::new(io::ErrorKind::InvalidData, message)
    }
}

impl Read for Body<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.fault.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "archive entry already failed",
            ));
        }
        if buf.is_empty() || self.ended {
            return Ok(0);
        }
        if self.remaining == 0 {
            // Reading one byte more makes the layers below check the end:
            // zip compares the CRC there, a lying size shows up as data.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe) {
                Ok(0) => {
                    self.ended = true;
                    Ok(0)
                }
                Ok(_) => Err(self.fail(Fault::Long)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
                Err(e) => Err(self.fail(Fault::Read(e))),
            };
        }
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        match self.inner.read(&mut buf[..want]) {
            Ok(0) => {
                let got = self.declared - self.remaining;
                Err(self.fail(Fault::Short { got }))
            }
            Ok(n) => {
                self.remaining -= n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => Err(self.fail(Fault::Read(e))),
        }
    }
}

/// Gives `inner`, which must yield exactly `size` bytes, to the sink as
/// the file `path`.
pub(super) fn deliver(
    sink: &mut dyn EntrySink,
    path: &str,
    size: u64,
    inner: &mut dyn Read,
    meter: &Meter,
) -> Result<(), ArchiveError> {
    let mut body = Body {
        inner,
        declared: size,
        remaining: size,
        ended: false,
        fault: None,
    };
    let stored = sink.file(path, size, &mut body);
    if body.fault.is_none() && !body.ended {
        // The sink stopped early, or failed: read the rest to check it, and
        // so that a sink failure is not blamed for a broken archive.
        let _ = io::copy(&mut body, &mut io::sink());
    }
    let entry = Some(path.to_owned());
    match body.fault {
        Some(Fault::Read(e)) => return Err(meter.error(entry, e)),
        Some(Fault::Short { got }) => {
            meter.check(entry.clone())?;
            return Err(ArchiveError::corrupt(
                entry,
                format!("the entry ends after {got} of its declared {size} bytes"),
            ));
        }
        Some(Fault::Long) => {
            return Err(ArchiveError::corrupt(
                entry,
                format!("the entry holds more than its declared {size} bytes"),
            ));
        }
        None => {}
    }
    meter.check(entry)?;
    stored.map_err(|source| ArchiveError::Sink {
        entry: path.to_owned(),
        source,
    })
}
