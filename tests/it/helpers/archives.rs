//! Archives built by the tests themselves, good and hostile: tar (names
//! written raw into the header, so hostile ones get through), gzip, zstd
//! and zip (names patched in, fields patched after), and the byte-level
//! patches that break them in the ways the bundle corpus needs.

#![allow(dead_code)]

use std::io::{Cursor, Write};

/// What one archive entry is.
#[derive(Debug, Clone)]
pub enum Node {
    File(Vec<u8>),
    Dir,
    Symlink,
    HardLink,
    Fifo,
    CharDevice,
}

/// One entry: its name as raw bytes, and what it is.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: Vec<u8>,
    pub node: Node,
}

pub fn file(name: impl AsRef<[u8]>, data: impl AsRef<[u8]>) -> Entry {
    Entry {
        name: name.as_ref().to_vec(),
        node: Node::File(data.as_ref().to_vec()),
    }
}

pub fn node(name: impl AsRef<[u8]>, node: Node) -> Entry {
    Entry {
        name: name.as_ref().to_vec(),
        node,
    }
}

/// A tar of `entries`: names of up to 100 bytes raw in the header, longer
/// ones as GNU long names.
pub fn tar(entries: &[Entry]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(1_700_000_000);
        header.set_mode(0o644);
        let (kind, data): (_, &[u8]) = match &entry.node {
            Node::File(data) => (tar::EntryType::Regular, data),
            Node::Dir => (tar::EntryType::Directory, b""),
            Node::Symlink => (tar::EntryType::Symlink, b""),
            Node::HardLink => (tar::EntryType::Link, b""),
            Node::Fifo => (tar::EntryType::Fifo, b""),
            Node::CharDevice => (tar::EntryType::Char, b""),
        };
        header.set_entry_type(kind);
        header.set_size(data.len() as u64);
        if matches!(entry.node, Node::Symlink | Node::HardLink) {
            header.set_link_name("/etc/passwd").unwrap();
        }
        if entry.name.len() <= 100 {
            let gnu = header.as_gnu_mut().unwrap();
            gnu.name[..entry.name.len()].copy_from_slice(&entry.name);
            header.set_cksum();
            builder.append(&header, data).unwrap();
        } else {
            let name = std::str::from_utf8(&entry.name).unwrap();
            builder.append_data(&mut header, name, data).unwrap();
        }
    }
    builder.into_inner().unwrap()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

pub fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).unwrap()
}

/// A zip of `entries`, deflated (or `stored`); a name that is not UTF-8 is
/// written with a same-length placeholder, then patched in.
pub fn zip_with(entries: &[Entry], stored: bool) -> Vec<u8> {
    use zip::write::SimpleFileOptions;
    let method = if stored {
        zip::CompressionMethod::Stored
    } else {
        zip::CompressionMethod::Deflated
    };
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .compression_method(method)
        .system(zip::System::Unix);
    let mut patches = Vec::new();
    for entry in entries {
        let name = match std::str::from_utf8(&entry.name) {
            Ok(name) => name.to_owned(),
            Err(_) => {
                let placeholder: Vec<u8> = entry
                    .name
                    .iter()
                    .map(|&b| if b < 0x80 { b } else { b'~' })
                    .collect();
                patches.push((placeholder.clone(), entry.name.clone()));
                String::from_utf8(placeholder).unwrap()
            }
        };
        let mode = |kind: u32| options.external_attributes((kind | 0o644) << 16);
        match &entry.node {
            Node::File(data) => {
                writer.start_file(name, options).unwrap();
                writer.write_all(data).unwrap();
            }
            Node::Dir => writer.add_directory(name, options).unwrap(),
            Node::Symlink => writer.add_symlink(name, "/etc/passwd", options).unwrap(),
            Node::Fifo => writer.start_file(name, mode(0o010_000)).unwrap(),
            Node::CharDevice => writer.start_file(name, mode(0o020_000)).unwrap(),
            Node::HardLink => panic!("zip has no hard links"),
        }
    }
    let mut bytes = writer.finish().unwrap().into_inner();
    for (from, to) in patches {
        patch_all(&mut bytes, &from, &to);
    }
    bytes
}

pub fn zip(entries: &[Entry]) -> Vec<u8> {
    zip_with(entries, false)
}

/// The archive of `entries` in `format` (`tar`, `tar.gz`, `tar.zst`, `zip`).
pub fn build(format: &str, entries: &[Entry]) -> Vec<u8> {
    match format {
        "tar" => tar(entries),
        "tar.gz" => gzip(&tar(entries)),
        "tar.zst" => zstd(&tar(entries)),
        "zip" => zip(entries),
        other => panic!("no format {other}"),
    }
}

/// Every format, by `bundle.format` name.
pub const FORMATS: [&str; 4] = ["tar", "tar.gz", "tar.zst", "zip"];

/// Replaces every occurrence of `from` with `to` (same length).
pub fn patch_all(bytes: &mut [u8], from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    let at = positions(bytes, from);
    assert!(!at.is_empty(), "{from:?} not found");
    for i in at {
        bytes[i..i + to.len()].copy_from_slice(to);
    }
}

pub fn positions(bytes: &[u8], needle: &[u8]) -> Vec<usize> {
    bytes
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect()
}

pub fn set_u32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

pub fn set_u16(bytes: &mut [u8], at: usize, value: u16) {
    bytes[at..at + 2].copy_from_slice(&value.to_le_bytes());
}

/// Where each zip central directory record starts.
pub fn central(bytes: &[u8]) -> Vec<usize> {
    positions(bytes, b"PK\x01\x02")
}

/// A gzip member whose tar declares one file of `declared` bytes and holds
/// `written` zeros of it, cut off there (no end, no trailer): a reader that
/// trusts the header or inflates without a cap would go on for `declared`
/// bytes. Made of one flushed deflate block of a MiB of zeros repeated, so
/// gigabytes compress to a few megabytes without inflating anything here.
pub fn gzip_bomb(name: &str, declared: u64, written_mib: usize) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let mut header = tar::Header::new_gnu();
    header.set_path(name).unwrap();
    header.set_size(declared);
    header.set_mode(0o644);
    header.set_cksum();
    let deflate = |compress: &mut Compress, input: &[u8]| {
        let mut out = Vec::with_capacity(input.len() / 100 + 1024);
        let before = compress.total_in();
        compress
            .compress_vec(input, &mut out, FlushCompress::Full)
            .unwrap();
        assert_eq!(compress.total_in() - before, input.len() as u64);
        out
    };
    let mut compress = Compress::new(Compression::best(), false);
    let head = deflate(&mut compress, header.as_bytes());
    let zeros = vec![0u8; 1 << 20];
    let block = deflate(&mut compress, &zeros);
    // A full flush resets the window: the next MiB compresses the same.
    let again = deflate(&mut compress, &zeros);
    assert_eq!(block, again, "a flushed block repeats");
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    out.extend_from_slice(&head);
    for _ in 0..written_mib {
        out.extend_from_slice(&block);
    }
    out
}
