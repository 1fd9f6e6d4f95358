//! Tar, tar.gz and tar.zst, read in one pass from a stream.
//!
//! The `tar` crate parses headers (ustar, PAX, GNU long names) and checks
//! their checksums; `flate2` and `zstd` decompress. Around them this reader
//! adds what a hostile archive needs:
//! - the caps of [`ArchiveLimits`] on every decompressed byte, and a budget
//!   on the header records of one entry, since the `tar` crate reads PAX
//!   records and GNU long names into memory whatever their declared size;
//! - the end: an archive must close with its end-of-archive block, only
//!   zeros may follow it, a gzip stream must be exactly one member with
//!   nothing after it, and zstd refuses anything that is not a frame;
//! - a zstd window of at most [`MAX_ZSTD_WINDOW_LOG`] (16 MiB): larger ones
//!   (`zstd --long`, `--ultra -22`) are refused rather than allocated;
//! - sparse files are refused even outside the root, since their holes are
//!   zeros made up by the `tar` crate that no cap would count.

use std::io::{self, BufRead, BufReader, Read};

use ::tar::{Archive, EntryType};
use flate2::bufread::GzDecoder;

use super::body::deliver;
use super::error::{ArchiveError, ArchiveErrorKind, Limit, shown};
use super::limits::{Budget, Inflated, Layer, Meter, Source};
use super::names::{Located, Names};
use super::{ArchiveSummary, EntrySink, ReadOptions, TarCompression};

/// The input is read in blocks of this size; the ratio cap sees the bytes
/// read ahead as already used, so a bomb trips it a block early.
const INPUT_BUFFER: usize = 64 << 10;

/// Header records (PAX, GNU long names, the header blocks) of one entry.
const MAX_HEADER_BYTES: u64 = 1 << 20;

/// log2 of the largest zstd window accepted (16 MiB of decoder memory).
const MAX_ZSTD_WINDOW_LOG: u32 = 24;

/// Reads a tar archive, compressed as `compression`, from `input` in one
/// pass, giving each regular file under `options.root` to `sink`.
pub fn read_tar(
    compression: TarCompression,
    input: impl Read,
    options: &ReadOptions<'_>,
    sink: &mut dyn EntrySink,
) -> Result<ArchiveSummary, ArchiveError> {
    let meter = Meter::new(options.limits);
    let mut names = Names::new(options.root, options.limits)?;
    let source = BufReader::with_capacity(INPUT_BUFFER, Source::new(input, meter.clone(), true));
    let mut read = Reader {
        meter: &meter,
        names: &mut names,
        sink,
        summary: ArchiveSummary::default(),
        seen_files: 0,
    };
    let result = match compression {
        TarCompression::None => read.entries(Inflated::new(source, meter.clone())).map(drop),
        TarCompression::Gzip => {
            let stream = Inflated::new(GzDecoder::new(source), meter.clone());
            read.entries(stream)
                .and_then(|stream| gzip_end(&meter, stream.into_inner().into_inner()))
        }
        TarCompression::Zstd => zstd::stream::read::Decoder::with_buffer(source)
            .and_then(|mut decoder| {
                decoder.window_log_max(MAX_ZSTD_WINDOW_LOG)?;
                Ok(decoder)
            })
            .map_err(|e| meter.error(None, e))
            .and_then(|decoder| {
                read.entries(Inflated::new(decoder, meter.clone()))
                    .map(drop)
            }),
    };
    let mut summary = read.summary;
    summary.input_bytes = meter.input_bytes();
    match result {
        // No byte at all is an empty archive, not a broken one.
        Err(e) if e.kind() == ArchiveErrorKind::Corrupt && summary.input_bytes == 0 => {
            Err(ArchiveError::Empty)
        }
        Err(e) => Err(e),
        Ok(()) if read.seen_files == 0 => Err(ArchiveError::Empty),
        Ok(()) => meter.check(None).map(|()| summary),
    }
}

/// What one tar entry is to a bundle.
enum Kind {
    File,
    Directory,
    /// Metadata for the whole archive (`git archive` writes one): ignored.
    Global,
    Refused(String),
    /// Refused even outside the root: skipping a sparse file would read
    /// its holes, zeros the `tar` crate makes up and no cap counts.
    Sparse,
}

fn kind(entry_type: EntryType) -> Kind {
    match entry_type {
        EntryType::Regular | EntryType::Continuous => Kind::File,
        EntryType::Directory => Kind::Directory,
        EntryType::XGlobalHeader => Kind::Global,
        EntryType::Link => Kind::Refused("hard link".into()),
        EntryType::Symlink => Kind::Refused("symbolic link".into()),
        EntryType::Char => Kind::Refused("character device".into()),
        EntryType::Block => Kind::Refused("block device".into()),
        EntryType::Fifo => Kind::Refused("FIFO".into()),
        EntryType::GNUSparse => Kind::Sparse,
        other => Kind::Refused(format!("type {:?}", char::from(other.as_byte()))),
    }
}

struct Reader<'a> {
    meter: &'a Meter,
    names: &'a mut Names,
    sink: &'a mut dyn EntrySink,
    summary: ArchiveSummary,
    /// Regular files anywhere in the archive, the root's or not.
    seen_files: u64,
}

impl Reader<'_> {
    /// Reads every entry, then the end of the tar stream; gives the stream
    /// back for the compression's own end checks.
    fn entries<R: Read>(&mut self, stream: Inflated<R>) -> Result<Inflated<R>, ArchiveError> {
        let meter = self.meter;
        let mut archive = Archive::new(stream);
        let mut last: Option<String> = None;
        let after = |last: &Option<String>| last.as_ref().map(|l| format!("entry after {l}"));
        let mut entries = archive.entries().map_err(|e| meter.error(None, e))?;
        loop {
            meter.set_budget(Some(Budget {
                limit: Limit::HeaderBytes,
                layer: Layer::Output,
                max: MAX_HEADER_BYTES,
            }));
            let next = entries.next();
            meter.set_budget(None);
            let mut entry = match next {
                None => break,
                Some(Ok(entry)) => entry,
                Some(Err(e)) => return Err(meter.error(after(&last), e)),
            };
            meter.check(after(&last))?;
            let raw = entry.path_bytes().into_owned();
            last = Some(shown(&raw));
            let size = entry.size();
            match kind(entry.header().entry_type()) {
                Kind::File => {
                    self.seen_files += 1;
                    if let Located::Inside(rel) = self.names.locate(&raw, false) {
                        let path = self.names.check(&raw, rel)?;
                        if self.file(&path, size, &mut entry)? {
                            continue;
                        }
                    }
                }
                Kind::Directory => {
                    if let Located::Inside(rel) = self.names.locate(&raw, true) {
                        let path = self.names.check(&raw, rel)?;
                        self.names.add_dir(&path)?;
                    }
                }
                Kind::Global => {}
                Kind::Sparse => {
                    return Err(ArchiveError::EntryType {
                        entry: shown(&raw),
                        what: "sparse file".into(),
                    });
                }
                Kind::Refused(what) => {
                    if self.names.locate(&raw, false) != Located::Outside {
                        return Err(ArchiveError::EntryType {
                            entry: shown(&raw),
                            what,
                        });
                    }
                }
            }
            skip(meter, &mut entry, size, &last)?;
        }
        let mut stream = archive.into_inner();
        if stream.at_end() {
            return Err(ArchiveError::corrupt(
                None,
                "no end-of-archive block (truncated?)",
            ));
        }
        only_zeros(meter, &mut stream)?;
        Ok(stream)
    }

    /// Checks and records a file under the root and gives it to the sink
    /// if the sink wants it; `false` when it did not (its bytes are then
    /// skipped, and checked, by the caller).
    fn file(&mut self, path: &str, size: u64, body: &mut dyn Read) -> Result<bool, ArchiveError> {
        let limits = self.meter.limits();
        let too_large = |limit, value, max| ArchiveError::Limit {
            entry: Some(path.to_owned()),
            limit,
            value,
            max,
        };
        if self.summary.files >= limits.max_files {
            return Err(too_large(
                Limit::Files,
                self.summary.files + 1,
                limits.max_files,
            ));
        }
        if size > limits.max_file_bytes {
            return Err(too_large(Limit::FileBytes, size, limits.max_file_bytes));
        }
        self.names.add_file(path)?;
        self.summary.files += 1;
        self.summary.bytes += size;
        if !self.sink.wants(path) {
            return Ok(false);
        }
        deliver(self.sink, path, size, body, self.meter)?;
        Ok(true)
    }
}

/// Reads past an entry that is not given to the sink, checking it is whole.
fn skip(
    meter: &Meter,
    entry: &mut dyn Read,
    size: u64,
    last: &Option<String>,
) -> Result<(), ArchiveError> {
    let read = io::copy(entry, &mut io::sink()).map_err(|e| meter.error(last.clone(), e))?;
    if read != size {
        return Err(ArchiveError::corrupt(
            last.clone(),
            format!("the entry ends after {read} of its declared {size} bytes"),
        ));
    }
    Ok(())
}

/// After the end-of-archive block, tar writers pad with zeros; anything
/// else is content no tool shows, so it is refused.
fn only_zeros(meter: &Meter, stream: &mut dyn Read) -> Result<(), ArchiveError> {
    let mut buf = [0u8; 8192];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(meter.error(None, e)),
        };
        if buf[..n].iter().any(|&b| b != 0) {
            return Err(ArchiveError::corrupt(
                None,
                "data after the end-of-archive block",
            ));
        }
    }
}

/// The gzip member has ended (its CRC and length checked by `flate2`):
/// nothing may follow, neither a second member nor other bytes.
fn gzip_end(meter: &Meter, mut rest: impl BufRead) -> Result<(), ArchiveError> {
    let after = rest.fill_buf().map_err(|e| meter.error(None, e))?;
    match after {
        [] => Ok(()),
        [0x1f, 0x8b, ..] => Err(ArchiveError::corrupt(
            None,
            "a second gzip member after the first",
        )),
        _ => Err(ArchiveError::corrupt(
            None,
            "trailing data after the gzip stream",
        )),
    }
}
