//! Broken and hostile tar streams: checksums, truncation, lying sizes,
//! what follows the end, gzip and zstd framing, oversized headers, empty
//! archives, a failing input.

use super::*;

use ArchiveErrorKind::{Corrupt, Empty, Io, TooLarge};

const TARS: [ArchiveFormat; 3] = [
    ArchiveFormat::Tar,
    ArchiveFormat::TarGz,
    ArchiveFormat::TarZst,
];

fn compress(format: ArchiveFormat, tar: &[u8]) -> Vec<u8> {
    match format {
        ArchiveFormat::TarGz => gzip(tar),
        ArchiveFormat::TarZst => zstd(tar),
        _ => tar.to_vec(),
    }
}

fn refused_tar(format: ArchiveFormat, tar: &[u8]) -> ArchiveError {
    refused(format, &compress(format, tar), &ReadOptions::default())
}

/// a.txt (10 bytes) at 0, its data at 512, b.txt at 1024, its data at 1536,
/// the end blocks at 2048.
fn two_files() -> Vec<u8> {
    tar(&[file("a.txt", "0123456789"), file("b.txt", "bbbb")])
}

/// Rewrites the header at `at` through `change`, with a fresh checksum.
fn rewrite_header(bytes: &mut [u8], at: usize, change: impl FnOnce(&mut ::tar::Header)) {
    let mut header = ::tar::Header::new_old();
    header.as_mut_bytes().copy_from_slice(&bytes[at..at + 512]);
    change(&mut header);
    header.set_cksum();
    bytes[at..at + 512].copy_from_slice(header.as_bytes());
}

#[test]
fn a_bad_header_checksum_is_corrupt_and_says_where() {
    let mut bytes = two_files();
    bytes[1024 + 3] ^= 0x20;
    for format in TARS {
        let e = refused_tar(format, &bytes);
        assert_refused(format, &e, Corrupt, "entry after a.txt");
        assert!(e.to_string().contains("checksum"), "{e}");
    }
}

#[test]
fn truncated_archives_are_corrupt() {
    let bytes = two_files();
    for (cut, names) in [
        (1536 + 2, "b.txt"),
        (1024 + 100, "entry after a.txt"),
        (2048, "end-of-archive"),
        (700, "a.txt"),
    ] {
        for format in TARS {
            let e = refused_tar(format, &bytes[..cut]);
            assert_refused(format, &e, Corrupt, names);
        }
    }
    // A compressed stream cut short fails in the decompressor.
    for format in [ArchiveFormat::TarGz, ArchiveFormat::TarZst] {
        let whole = compress(format, &bytes);
        let e = refused(format, &whole[..whole.len() - 5], &ReadOptions::default());
        assert_eq!(e.kind(), Corrupt, "{format}: {e}");
    }
}

#[test]
fn a_size_field_larger_than_the_data_is_corrupt() {
    let mut bytes = two_files();
    rewrite_header(&mut bytes, 0, |h| h.set_size(600));
    for format in TARS {
        let e = refused_tar(format, &bytes);
        assert_refused(format, &e, Corrupt, "a.txt");
    }
    // At the end of the archive, the data runs out.
    let mut last = tar(&[file("only.txt", "0123456789")]);
    rewrite_header(&mut last, 0, |h| h.set_size(5000));
    for format in TARS {
        let e = refused_tar(format, &last);
        assert_refused(format, &e, Corrupt, "only.txt");
        assert!(e.to_string().contains("declared 5000 bytes"), "{e}");
    }
}

#[test]
fn data_after_the_end_block_is_corrupt() {
    let mut bytes = two_files();
    bytes.extend(b"hidden second archive");
    for format in TARS {
        let e = refused_tar(format, &bytes);
        assert_eq!(e.kind(), Corrupt, "{format}");
        assert_eq!(
            e.to_string(),
            "corrupt archive: data after the end-of-archive block"
        );
    }
}

#[test]
fn gzip_trailing_garbage_and_second_members_are_corrupt() {
    let mut garbage = gzip(&two_files());
    garbage.extend(b"trailing garbage");
    let e = refused(ArchiveFormat::TarGz, &garbage, &ReadOptions::default());
    assert_eq!(
        e.to_string(),
        "corrupt archive: trailing data after the gzip stream"
    );

    let mut members = gzip(&two_files());
    members.extend(gzip(b"more"));
    let e = refused(ArchiveFormat::TarGz, &members, &ReadOptions::default());
    assert_eq!(
        e.to_string(),
        "corrupt archive: a second gzip member after the first"
    );

    // A tar split across two members: the second half is never read.
    let tar = two_files();
    let mut split = gzip(&tar[..1024]);
    split.extend(gzip(&tar[1024..]));
    let e = refused(ArchiveFormat::TarGz, &split, &ReadOptions::default());
    assert_eq!(e.kind(), Corrupt, "{e}");
}

#[test]
fn a_gzip_crc_mismatch_is_corrupt() {
    let mut bytes = gzip(&two_files());
    let crc = bytes.len() - 8;
    bytes[crc] ^= 0xff;
    let e = refused(ArchiveFormat::TarGz, &bytes, &ReadOptions::default());
    assert_eq!(e.kind(), Corrupt, "{e}");
    let mut size = gzip(&two_files());
    let isize = size.len() - 2;
    size[isize] ^= 0x01;
    let e = refused(ArchiveFormat::TarGz, &size, &ReadOptions::default());
    assert_eq!(e.kind(), Corrupt, "{e}");
}

#[test]
fn zstd_trailing_garbage_is_corrupt() {
    let mut bytes = zstd(&two_files());
    bytes.extend(b"trailing garbage");
    let e = refused(ArchiveFormat::TarZst, &bytes, &ReadOptions::default());
    assert_eq!(e.kind(), Corrupt, "{e}");
}

#[test]
fn a_zstd_window_over_16_mib_is_refused_not_allocated() {
    use ::zstd::stream::raw::CParameter;
    let mut encoder = ::zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    encoder.set_parameter(CParameter::WindowLog(27)).unwrap();
    encoder
        .set_parameter(CParameter::EnableLongDistanceMatching(true))
        .unwrap();
    encoder.write_all(&two_files()).unwrap();
    let bytes = encoder.finish().unwrap();
    let e = refused(ArchiveFormat::TarZst, &bytes, &ReadOptions::default());
    assert_eq!(e.kind(), Corrupt, "{e}");
    assert!(e.to_string().contains("memory"), "{e}");
}

#[test]
fn huge_header_records_are_stopped_before_they_fill_memory() {
    for kind in [::tar::EntryType::GNULongName, ::tar::EntryType::XHeader] {
        let mut builder = ::tar::Builder::new(Vec::new());
        let mut first = ::tar::Header::new_gnu();
        first.set_path("ok.html").unwrap();
        first.set_size(2);
        first.set_cksum();
        builder.append(&first, &b"ok"[..]).unwrap();
        let mut long = ::tar::Header::new_gnu();
        long.set_path("././@LongLink").unwrap();
        long.set_entry_type(kind);
        long.set_size(4 << 20);
        long.set_cksum();
        builder
            .append(&long, std::io::repeat(b'a').take(4 << 20))
            .unwrap();
        let bytes = builder.into_inner().unwrap();
        // Letters compress well: only the header budget is tested here.
        let options = ReadOptions {
            limits: ArchiveLimits {
                max_ratio: u64::MAX,
                ..ArchiveLimits::default()
            },
            ..ReadOptions::default()
        };
        for format in TARS {
            let e = refused(format, &compress(format, &bytes), &options);
            assert_refused(format, &e, TooLarge, "entry after ok.html");
            assert!(e.to_string().contains("header bytes of one entry"), "{e}");
        }
    }
}

#[test]
fn sparse_entries_are_refused() {
    // 1 GiB of holes around four bytes of data.
    let mut header = ::tar::Header::new_gnu();
    header.set_path("holes.bin").unwrap();
    header.set_entry_type(::tar::EntryType::GNUSparse);
    header.set_size(4);
    let gnu = header.as_gnu_mut().unwrap();
    gnu.set_real_size(1 << 30);
    gnu.sparse[0].set_offset((1 << 30) - 4);
    gnu.sparse[0].set_length(4);
    header.set_cksum();
    let mut builder = ::tar::Builder::new(Vec::new());
    builder.append(&header, &b"data"[..]).unwrap();
    let bytes = builder.into_inner().unwrap();
    let e = refused(ArchiveFormat::Tar, &bytes, &ReadOptions::default());
    assert_eq!(
        e.to_string(),
        "holes.bin: sparse file entries are not allowed"
    );
}

#[test]
fn empty_archives_are_empty() {
    for format in TARS {
        let e = refused(format, b"", &ReadOptions::default());
        assert_refused(format, &e, Empty, "no files");
        let e = refused_tar(format, &tar(&[]));
        assert_eq!(e.kind(), Empty, "{format}: {e}");
        let e = refused_tar(format, &tar(&[dir("a/"), dir("a/b/")]));
        assert_eq!(e.kind(), Empty, "{format}: {e}");
    }
}

/// Yields `data`, then fails as a network would.
struct Failing<'a> {
    data: &'a [u8],
}

impl Read for Failing<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.data.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "connection reset",
            ));
        }
        self.data.read(buf)
    }
}

#[test]
fn a_failing_input_is_io_not_corrupt() {
    let big = tar(&[file("a.bin", vec![9u8; 300_000]), file("b.bin", "b")]);
    for format in TARS {
        let bytes = compress(format, &big);
        let input = Failing {
            data: &bytes[..bytes.len() / 2],
        };
        let e = read_tar(
            format.tar_compression().unwrap(),
            input,
            &ReadOptions::default(),
            &mut Collect::default(),
        )
        .unwrap_err();
        assert_eq!(e.kind(), Io, "{format}: {e}");
        let cause = std::error::Error::source(&e).unwrap().to_string();
        assert_eq!(cause, "connection reset");
    }
}
