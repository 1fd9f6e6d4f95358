//! Broken and hostile zips: headers that disagree, overlapping entries,
//! names twice, encryption, other methods, CRC and size lies, a central
//! directory too large, empty archives, a failing input.

use std::io::{Seek, SeekFrom};

use super::*;

use ArchiveErrorKind::{Corrupt, Empty, Invalid, Io, TooLarge};

const ZIP: ArchiveFormat = ArchiveFormat::Zip;

fn stored(specs: &[Spec]) -> Vec<u8> {
    zip_with(specs, ::zip::CompressionMethod::Stored)
}

fn refused_zip(bytes: &[u8]) -> ArchiveError {
    refused(ZIP, bytes, &ReadOptions::default())
}

/// Where each central directory record starts.
fn central(bytes: &[u8]) -> Vec<usize> {
    positions(bytes, b"PK\x01\x02")
}

fn set_u32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

fn set_u16(bytes: &mut [u8], at: usize, value: u16) {
    bytes[at..at + 2].copy_from_slice(&value.to_le_bytes());
}

/// a.txt stored at 0 (30 + 5 bytes of header, 10 of data), b.txt after.
fn two_files() -> Vec<u8> {
    stored(&[file("a.txt", "0123456789"), file("b.txt", "bbbbbbbbbb")])
}

#[test]
fn local_and_central_names_that_disagree_are_refused() {
    let mut bytes = two_files();
    bytes[30..35].copy_from_slice(b"x.txt");
    let e = refused_zip(&bytes);
    assert!(matches!(e, ArchiveError::HeaderMismatch { .. }), "{e}");
    assert_refused(ZIP, &e, Corrupt, "a.txt");
    assert!(e.to_string().contains("filename mismatch"), "{e}");
}

#[test]
fn local_and_central_sizes_that_disagree_are_refused() {
    for field in [18, 22] {
        let mut bytes = two_files();
        set_u32(&mut bytes, field, 11);
        let e = refused_zip(&bytes);
        assert!(matches!(e, ArchiveError::HeaderMismatch { .. }), "{e}");
        assert_refused(ZIP, &e, Corrupt, "a.txt");
    }
}

#[test]
fn a_size_lying_in_both_headers_is_corrupt() {
    for size in [5, 20] {
        let mut bytes = zip(&[file("a.txt", "0123456789".repeat(10))]);
        set_u32(&mut bytes, 22, size);
        let at = central(&bytes)[0];
        set_u32(&mut bytes, at + 24, size);
        let e = refused_zip(&bytes);
        assert_refused(ZIP, &e, Corrupt, "a.txt");
    }
}

#[test]
fn a_crc_mismatch_is_corrupt() {
    let mut bytes = two_files();
    bytes[35 + 4] ^= 0x01;
    let e = refused_zip(&bytes);
    assert_refused(ZIP, &e, Corrupt, "a.txt");
    assert!(e.to_string().contains("checksum"), "{e}");
}

#[test]
fn two_entries_at_one_offset_overlap() {
    let mut bytes = two_files();
    let b = central(&bytes)[1];
    set_u32(&mut bytes, b + 42, 0);
    let e = refused_zip(&bytes);
    assert!(matches!(e, ArchiveError::Overlap { .. }), "{e}");
    assert_refused(ZIP, &e, Corrupt, "a.txt");
    assert!(e.to_string().contains("b.txt"), "{e}");
}

#[test]
fn data_that_covers_the_next_entry_overlaps() {
    // a.txt's data made to run over b.txt's header and data, the way
    // "quoted" zip bombs reuse bytes.
    let mut bytes = two_files();
    let a = central(&bytes)[0];
    for at in [18, 22, a + 20, a + 24] {
        set_u32(&mut bytes, at, 10 + 35 + 10);
    }
    let e = refused_zip(&bytes);
    assert_refused(ZIP, &e, Corrupt, "a.txt: its bytes overlap b.txt");
    // The last entry's data running into the central directory.
    let mut bytes = two_files();
    let b = central(&bytes)[1];
    for at in [45 + 18, 45 + 22, b + 20, b + 24] {
        set_u32(&mut bytes, at, 100);
    }
    let e = refused_zip(&bytes);
    assert_refused(
        ZIP,
        &e,
        Corrupt,
        "b.txt: its bytes overlap the central directory",
    );
}

#[test]
fn a_name_listed_twice_is_refused_and_named() {
    let mut bytes = two_files();
    patch_all(&mut bytes, b"b.txt", b"a.txt");
    let e = refused_zip(&bytes);
    assert!(matches!(e, ArchiveError::Duplicate { .. }), "{e}");
    assert_eq!(e.to_string(), "a.txt: appears twice");
}

#[test]
fn encrypted_entries_are_refused() {
    use ::zip::unstable::write::FileOptionsExt;
    let mut writer = ::zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = ::zip::write::SimpleFileOptions::default()
        .with_deprecated_encryption(b"secret")
        .unwrap();
    writer.start_file("secret.txt", options).unwrap();
    writer.write_all(b"hidden").unwrap();
    let bytes = writer.finish().unwrap().into_inner();
    let e = refused_zip(&bytes);
    assert!(matches!(e, ArchiveError::Encrypted { .. }), "{e}");
    assert_refused(ZIP, &e, Invalid, "secret.txt");
}

#[test]
fn methods_other_than_stored_and_deflate_are_refused() {
    let mut bytes = two_files();
    set_u16(&mut bytes, 8, 12);
    let a = central(&bytes)[0];
    set_u16(&mut bytes, a + 10, 12);
    let e = refused_zip(&bytes);
    assert!(matches!(e, ArchiveError::Compression { .. }), "{e}");
    assert_refused(ZIP, &e, Invalid, "a.txt");
}

#[test]
fn empty_zips_are_empty() {
    let writer = ::zip::ZipWriter::new(Cursor::new(Vec::new()));
    let none = writer.finish().unwrap().into_inner();
    for bytes in [Vec::new(), none, zip(&[dir("a/"), dir("a/b/")])] {
        let e = refused_zip(&bytes);
        assert_eq!(e.kind(), Empty, "{e}");
    }
}

#[test]
fn bytes_that_are_not_a_zip_are_corrupt() {
    for bytes in [
        &b"not a zip at all"[..],
        &gzip(b"x"),
        &tar(&[file("a", "a")]),
    ] {
        assert_eq!(refused_zip(bytes).kind(), Corrupt);
    }
    // Cut anywhere, the central directory is lost or the data short.
    let bytes = two_files();
    for cut in [1, 40, bytes.len() - 30, bytes.len() - 1] {
        assert_eq!(refused_zip(&bytes[..cut]).kind(), Corrupt, "{cut}");
    }
}

#[test]
fn a_central_directory_larger_than_the_limits_allow_is_stopped() {
    let specs: Vec<Spec> = (0..4000)
        .map(|i| file(format!("f{i:05}.txt"), ""))
        .collect();
    let bytes = stored(&specs);
    let options = ReadOptions {
        limits: ArchiveLimits {
            max_files: 10,
            max_path_bytes: 16,
            ..ArchiveLimits::default()
        },
        ..ReadOptions::default()
    };
    let e = refused(ZIP, &bytes, &options);
    assert_eq!(e.kind(), TooLarge, "{e}");
    assert!(e.to_string().contains("central directory bytes"), "{e}");
}

/// A file whose reads fail past an offset, as a dropped ranged GET would.
struct Failing {
    inner: Cursor<Vec<u8>>,
    fail_from: u64,
}

impl Read for Failing {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let position = self.inner.position();
        if position >= self.fail_from {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "ranged GET timed out",
            ));
        }
        let room = usize::try_from(self.fail_from - position).unwrap_or(usize::MAX);
        let n = buf.len().min(room);
        self.inner.read(&mut buf[..n])
    }
}

impl Seek for Failing {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

#[test]
fn a_failing_input_is_io_not_corrupt() {
    let bytes = stored(&[file("a.bin", vec![1u8; 100_000]), file("b.bin", "b")]);
    for fail_from in [0, 50_000, bytes.len() as u64 - 10] {
        let input = Failing {
            inner: Cursor::new(bytes.clone()),
            fail_from,
        };
        let e = read_zip(input, &ReadOptions::default(), &mut Collect::default()).unwrap_err();
        assert_eq!(e.kind(), Io, "{fail_from}: {e}");
        let cause = std::error::Error::source(&e).unwrap().to_string();
        assert_eq!(cause, "ranged GET timed out");
    }
}
