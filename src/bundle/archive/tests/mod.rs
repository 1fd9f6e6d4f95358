//! Tests of the archive readers: archives are built here, in memory, with
//! the same crates' writers (and, in `tools`, by GNU tar, zip and Python),
//! then read back; hostile ones are built by writing raw header bytes or
//! patching good archives.

mod bombs;
mod good;
mod paths;
mod props;
mod tar_hostile;
mod tools;
mod zip_hostile;

use std::io::{Cursor, Read, Write};

use super::*;

/// What one test entry is.
#[derive(Debug, Clone)]
pub(super) enum Node {
    File(Vec<u8>),
    Dir,
    Symlink,
    HardLink,
    Fifo,
    CharDevice,
    BlockDevice,
}

#[derive(Debug, Clone)]
pub(super) struct Spec {
    pub(super) name: Vec<u8>,
    pub(super) node: Node,
}

pub(super) fn file(name: impl AsRef<[u8]>, data: impl AsRef<[u8]>) -> Spec {
    Spec {
        name: name.as_ref().to_vec(),
        node: Node::File(data.as_ref().to_vec()),
    }
}

pub(super) fn dir(name: impl AsRef<[u8]>) -> Spec {
    special(name, Node::Dir)
}

pub(super) fn special(name: impl AsRef<[u8]>, node: Node) -> Spec {
    Spec {
        name: name.as_ref().to_vec(),
        node,
    }
}

/// A tar archive of `specs`; names up to 100 bytes are written raw into the
/// header (so hostile names get through), longer ones as GNU long names.
pub(super) fn tar(specs: &[Spec]) -> Vec<u8> {
    let mut builder = ::tar::Builder::new(Vec::new());
    for spec in specs {
        let mut header = ::tar::Header::new_gnu();
        header.set_mtime(1_700_000_000);
        header.set_mode(0o644);
        let (kind, data): (_, &[u8]) = match &spec.node {
            Node::File(data) => (::tar::EntryType::Regular, data),
            Node::Dir => (::tar::EntryType::Directory, b""),
            Node::Symlink => (::tar::EntryType::Symlink, b""),
            Node::HardLink => (::tar::EntryType::Link, b""),
            Node::Fifo => (::tar::EntryType::Fifo, b""),
            Node::CharDevice => (::tar::EntryType::Char, b""),
            Node::BlockDevice => (::tar::EntryType::Block, b""),
        };
        header.set_entry_type(kind);
        header.set_size(data.len() as u64);
        if matches!(spec.node, Node::Symlink | Node::HardLink) {
            header.set_link_name("target").unwrap();
        }
        if spec.name.len() <= 100 {
            header.as_gnu_mut().unwrap().name[..spec.name.len()].copy_from_slice(&spec.name);
            header.set_cksum();
            builder.append(&header, data).unwrap();
        } else {
            let name = std::str::from_utf8(&spec.name).unwrap();
            builder.append_data(&mut header, name, data).unwrap();
        }
    }
    builder.into_inner().unwrap()
}

pub(super) fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

pub(super) fn zstd(bytes: &[u8]) -> Vec<u8> {
    ::zstd::encode_all(bytes, 3).unwrap()
}

/// A zip of `specs`, deflated; a name that is not UTF-8 is written with a
/// placeholder of the same length, then patched in.
pub(super) fn zip(specs: &[Spec]) -> Vec<u8> {
    zip_with(specs, ::zip::CompressionMethod::Deflated)
}

pub(super) fn zip_with(specs: &[Spec], method: ::zip::CompressionMethod) -> Vec<u8> {
    use ::zip::write::SimpleFileOptions;
    let mut writer = ::zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .compression_method(method)
        .system(::zip::System::Unix);
    let mut patches = Vec::new();
    for spec in specs {
        let name = match std::str::from_utf8(&spec.name) {
            Ok(name) => name.to_owned(),
            Err(_) => {
                let placeholder: Vec<u8> = spec
                    .name
                    .iter()
                    .map(|&b| if b < 0x80 { b } else { b'~' })
                    .collect();
                patches.push((placeholder.clone(), spec.name.clone()));
                String::from_utf8(placeholder).unwrap()
            }
        };
        let mode = |kind: u32| options.external_attributes((kind | 0o644) << 16);
        match &spec.node {
            Node::File(data) => {
                writer.start_file(name, options).unwrap();
                writer.write_all(data).unwrap();
            }
            Node::Dir => writer.add_directory(name, options).unwrap(),
            Node::Symlink => writer.add_symlink(name, "target", options).unwrap(),
            Node::Fifo => writer.start_file(name, mode(0o010_000)).unwrap(),
            Node::CharDevice => writer.start_file(name, mode(0o020_000)).unwrap(),
            Node::BlockDevice => writer.start_file(name, mode(0o060_000)).unwrap(),
            Node::HardLink => panic!("zip has no hard links"),
        }
    }
    let mut bytes = writer.finish().unwrap().into_inner();
    for (from, to) in patches {
        patch_all(&mut bytes, &from, &to);
    }
    bytes
}

/// Replaces every occurrence of `from` with `to` (same length).
pub(super) fn patch_all(bytes: &mut [u8], from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    let at: Vec<usize> = positions(bytes, from);
    assert!(!at.is_empty(), "{from:?} not found");
    for i in at {
        bytes[i..i + to.len()].copy_from_slice(to);
    }
}

pub(super) fn positions(bytes: &[u8], needle: &[u8]) -> Vec<usize> {
    bytes
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect()
}

/// `specs` as an archive of `format`.
pub(super) fn build(format: ArchiveFormat, specs: &[Spec]) -> Vec<u8> {
    match format {
        ArchiveFormat::Tar => tar(specs),
        ArchiveFormat::TarGz => gzip(&tar(specs)),
        ArchiveFormat::TarZst => zstd(&tar(specs)),
        ArchiveFormat::Zip => zip(specs),
    }
}

/// A sink that keeps every file, checking it was given the declared size.
#[derive(Debug, Default)]
pub(super) struct Collect {
    pub(super) files: Vec<(String, Vec<u8>)>,
}

impl EntrySink for Collect {
    fn file(&mut self, path: &str, size: u64, body: &mut dyn Read) -> Result<(), SinkError> {
        let mut data = Vec::new();
        body.read_to_end(&mut data)?;
        assert_eq!(data.len() as u64, size, "{path}");
        self.files.push((path.to_owned(), data));
        Ok(())
    }
}

pub(super) type Files = Vec<(String, Vec<u8>)>;

pub(super) fn read_with(
    format: ArchiveFormat,
    bytes: &[u8],
    options: &ReadOptions<'_>,
) -> Result<(Files, ArchiveSummary), ArchiveError> {
    let mut sink = Collect::default();
    let summary = match format.tar_compression() {
        Some(compression) => read_tar(compression, bytes, options, &mut sink),
        None => read_zip(Cursor::new(bytes), options, &mut sink),
    }?;
    Ok((sink.files, summary))
}

/// The files of a good archive, in archive order.
pub(super) fn read(format: ArchiveFormat, bytes: &[u8]) -> Files {
    match read_with(format, bytes, &ReadOptions::default()) {
        Ok((files, _)) => files,
        Err(e) => panic!("{format}: {e:#}"),
    }
}

/// The error reading `bytes` gives; panics if it reads.
pub(super) fn refused(
    format: ArchiveFormat,
    bytes: &[u8],
    options: &ReadOptions<'_>,
) -> ArchiveError {
    match read_with(format, bytes, options) {
        Ok((files, _)) => panic!("{format}: read {files:?}"),
        Err(e) => e,
    }
}

/// Asserts the error's kind and that its message names `entry`.
#[track_caller]
pub(super) fn assert_refused(
    format: ArchiveFormat,
    e: &ArchiveError,
    kind: ArchiveErrorKind,
    entry: &str,
) {
    let message = e.to_string();
    assert_eq!(e.kind(), kind, "{format}: {message}");
    assert!(
        message.contains(entry),
        "{format}: {message:?} does not name {entry:?}"
    );
}

pub(super) fn owned(files: &[(&str, &[u8])]) -> Files {
    files
        .iter()
        .map(|(p, d)| (p.to_string(), d.to_vec()))
        .collect()
}
