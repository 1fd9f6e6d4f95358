//! Zip, read with random access: the central directory first, then each
//! taken entry, in the order their bytes are stored (sequential reads for a
//! ranged-GET reader).
//!
//! The `zip` crate parses the central directory and compares each local
//! header with it (name, sizes, CRC, flags, method); it inflates and checks
//! CRCs. This reader adds:
//! - a budget on the central directory, which the crate holds in memory:
//!   no more bytes than `max_files` entries with the longest paths need;
//! - refusal of names listed twice (the crate keeps one of them), of
//!   encrypted entries, of methods other than stored and deflate, of links
//!   and devices (from the entries' Unix modes);
//! - overlap: entries sorted by offset, each taken entry's header and data
//!   must end before the next entry (or the central directory) begins, so
//!   no byte is inflated twice (the "overlapping zip bomb");
//! - the caps of [`ArchiveLimits`] on the bytes inflated, the ratio being
//!   bytes out over the compressed sizes of the entries read.
//!
//! Entries outside the root are neither read nor checked; entries the sink
//! does not want ([`EntrySink::wants`]) are checked from the central
//! directory but not read.

use std::collections::HashSet;
use std::io::{Read, Seek, SeekFrom};

use zip::read::{ArchiveOffset, Config, ZipReadOptions};
use zip::result::ZipError;
use zip::{CompressionMethod, ZipArchive};

use super::body::deliver;
use super::error::{ArchiveError, Limit, shown};
use super::limits::{ArchiveLimits, Budget, Inflated, Layer, Meter, Source};
use super::names::{Located, Names};
use super::{ArchiveSummary, EntrySink, ReadOptions};

/// Central directory bytes allowed per file beyond its path: the fixed
/// record (46 bytes) and room for extra fields and a comment.
const CENTRAL_BYTES_PER_FILE: u64 = 46 + 512;

/// Room for the end records and the search for them (a comment of up to
/// 64 KiB may sit behind them).
const CENTRAL_SLACK_BYTES: u64 = 128 << 10;

/// Reads a zip archive from `input`, giving each regular file under
/// `options.root` to `sink`.
pub fn read_zip<R: Read + Seek>(
    input: R,
    options: &ReadOptions<'_>,
    sink: &mut dyn EntrySink,
) -> Result<ArchiveSummary, ArchiveError> {
    let meter = Meter::new(options.limits);
    let mut names = Names::new(options.root, options.limits)?;
    let mut source = Source::new(input, meter.clone(), false);
    let len = source
        .seek(SeekFrom::End(0))
        .and_then(|len| source.seek(SeekFrom::Start(0)).map(|_| len))
        .map_err(|e| meter.error(None, e))?;
    if len == 0 {
        return Err(ArchiveError::Empty);
    }
    meter.set_budget(Some(central_budget(&options.limits)));
    let config = Config {
        archive_offset: ArchiveOffset::Known(0),
    };
    let archive = ZipArchive::with_config(config, source);
    meter.set_budget(None);
    let mut archive = archive.map_err(|e| zip_error(&meter, None, e))?;
    // A failed read or a crossed budget that the crate caught (trying
    // another end record) still fails the archive.
    meter.check(None)?;
    if archive.has_duplicate_names() {
        let start = archive.central_directory_start();
        let entry = duplicate_name(&mut archive.into_inner(), start)
            .unwrap_or_else(|| "a name of the central directory".to_owned());
        return Err(ArchiveError::Duplicate { entry });
    }
    let plan = plan(&archive).map_err(|e| zip_error(&meter, None, e))?;
    let mut summary = ArchiveSummary::default();
    let central = archive.central_directory_start();
    for (k, entry) in plan.iter().enumerate() {
        let name = shown(&entry.raw);
        if k > 0 && plan[k - 1].header_start == entry.header_start {
            return Err(ArchiveError::Overlap {
                entry: name,
                other: shown(&plan[k - 1].raw),
            });
        }
        let path = match (
            &entry.kind,
            names.locate(&entry.raw, entry.kind == Kind::Directory),
        ) {
            (_, Located::Outside) | (Kind::Directory, Located::Root) => continue,
            (Kind::Refused(what), _) => {
                return Err(ArchiveError::EntryType {
                    entry: name,
                    what: what.clone(),
                });
            }
            (_, Located::Root) => continue,
            (_, Located::Inside(rel)) => names.check(&entry.raw, rel)?,
        };
        if entry.kind == Kind::Directory {
            names.add_dir(&path)?;
            continue;
        }
        let limits = meter.limits();
        check_file(entry, &path, &summary, &limits)?;
        names.add_file(&path)?;
        if !sink.wants(&path) {
            // Not read at all: a ranged reader fetches none of its bytes.
            summary.files += 1;
            summary.bytes += entry.size;
            continue;
        }
        let next = plan.get(k + 1).map(|n| (n.header_start, shown(&n.raw)));
        let options = ZipReadOptions::new().enforce_header_consistency(true);
        let file = archive
            .by_index_with_options(entry.index, options)
            .map_err(|e| zip_error(&meter, Some(path.clone()), e))?;
        let data_end = file
            .data_start()
            .and_then(|start| start.checked_add(entry.compressed_size));
        let (next_start, other) = next.unwrap_or((central, "the central directory".to_owned()));
        if data_end.is_none_or(|end| end > next_start) {
            return Err(ArchiveError::Overlap { entry: path, other });
        }
        meter.add_compressed(entry.compressed_size);
        deliver(
            sink,
            &path,
            entry.size,
            &mut Inflated::new(file, meter.clone()),
            &meter,
        )?;
        summary.files += 1;
        summary.bytes += entry.size;
    }
    if !plan.iter().any(|p| p.kind == Kind::File) {
        return Err(ArchiveError::Empty);
    }
    meter.check(None)?;
    summary.input_bytes = meter.input_bytes();
    Ok(summary)
}

fn central_budget(limits: &ArchiveLimits) -> Budget {
    let per_file = CENTRAL_BYTES_PER_FILE.saturating_add(limits.max_path_bytes as u64);
    Budget {
        limit: Limit::CentralDirectoryBytes,
        layer: Layer::Input,
        max: limits
            .max_files
            .saturating_mul(per_file)
            .saturating_add(CENTRAL_SLACK_BYTES),
    }
}

/// What one zip entry is to a bundle, from its name and Unix mode.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    File,
    Directory,
    Refused(String),
}

/// One central directory entry, as much as the loop needs.
struct Planned {
    index: usize,
    raw: Vec<u8>,
    kind: Kind,
    header_start: u64,
    compressed_size: u64,
    size: u64,
    encrypted: bool,
    compression: CompressionMethod,
}

/// The entries sorted by where their local header starts.
fn plan<R: Read + Seek>(archive: &ZipArchive<R>) -> Result<Vec<Planned>, ZipError> {
    let mut plan = (0..archive.len())
        .map(|index| {
            let entry = archive.by_index_data(index)?;
            let raw = entry.name_raw().to_vec();
            let named_dir = raw.ends_with(b"/");
            let kind = match entry.unix_mode().map(|mode| mode & 0o170_000) {
                None | Some(0) | Some(0o100_000) if named_dir => Kind::Directory,
                None | Some(0) | Some(0o100_000) => Kind::File,
                Some(0o040_000) => Kind::Directory,
                Some(0o120_000) => Kind::Refused("symbolic link".into()),
                Some(0o020_000) => Kind::Refused("character device".into()),
                Some(0o060_000) => Kind::Refused("block device".into()),
                Some(0o010_000) => Kind::Refused("FIFO".into()),
                Some(0o140_000) => Kind::Refused("socket".into()),
                Some(other) => Kind::Refused(format!("mode {other:o}")),
            };
            Ok(Planned {
                index,
                kind,
                header_start: entry.header_start(),
                compressed_size: entry.compressed_size(),
                size: entry.size(),
                encrypted: entry.encrypted(),
                compression: entry.compression(),
                raw,
            })
        })
        .collect::<Result<Vec<_>, ZipError>>()?;
    plan.sort_by_key(|p| p.header_start);
    Ok(plan)
}

fn check_file(
    entry: &Planned,
    path: &str,
    summary: &ArchiveSummary,
    limits: &ArchiveLimits,
) -> Result<(), ArchiveError> {
    if entry.encrypted {
        return Err(ArchiveError::Encrypted {
            entry: path.to_owned(),
        });
    }
    if !matches!(
        entry.compression,
        CompressionMethod::Stored | CompressionMethod::Deflated
    ) {
        return Err(ArchiveError::Compression {
            entry: path.to_owned(),
            method: entry.compression.to_string(),
        });
    }
    let too_large = |limit, value, max| ArchiveError::Limit {
        entry: Some(path.to_owned()),
        limit,
        value,
        max,
    };
    if summary.files >= limits.max_files {
        return Err(too_large(Limit::Files, summary.files + 1, limits.max_files));
    }
    if entry.size > limits.max_file_bytes {
        return Err(too_large(
            Limit::FileBytes,
            entry.size,
            limits.max_file_bytes,
        ));
    }
    Ok(())
}

fn zip_error(meter: &Meter, entry: Option<String>, e: ZipError) -> ArchiveError {
    match e {
        ZipError::Io(e) => meter.error(entry, e),
        e => {
            if let Err(fault) = meter.check(entry.clone()) {
                return fault;
            }
            let detail = e.to_string();
            match (
                entry,
                detail.strip_prefix("invalid Zip archive: header inconsistency detected: "),
            ) {
                (Some(entry), Some(what)) => ArchiveError::HeaderMismatch {
                    entry,
                    detail: what.to_owned(),
                },
                (entry, _) => ArchiveError::corrupt(entry, detail),
            }
        }
    }
}

/// The `zip` crate keeps one entry per name, so which name was listed twice
/// is found by walking the central directory's records (a fixed 46-byte
/// header, then name, extra field and comment, whose lengths it gives).
/// Best effort: `None` if the walk ends before finding it.
fn duplicate_name(reader: &mut (impl Read + Seek), start: u64) -> Option<String> {
    reader.seek(SeekFrom::Start(start)).ok()?;
    let mut seen = HashSet::new();
    loop {
        let mut fixed = [0u8; 46];
        reader.read_exact(&mut fixed).ok()?;
        if fixed[..4] != *b"PK\x01\x02" {
            return None;
        }
        let field = |at: usize| u16::from_le_bytes([fixed[at], fixed[at + 1]]);
        let mut name = vec![0u8; usize::from(field(28))];
        reader.read_exact(&mut name).ok()?;
        let rest = i64::from(field(30)) + i64::from(field(32));
        reader.seek(SeekFrom::Current(rest)).ok()?;
        if !seen.insert(name.clone()) {
            return Some(shown(&name));
        }
    }
}
