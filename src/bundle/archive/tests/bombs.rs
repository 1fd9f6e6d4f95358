//! Decompression bombs and the count caps: the reader stops as soon as a
//! cap is crossed, which the tests prove by counting the compressed bytes it
//! consumed (the bombs are compressed lazily, so a reader that did not stop
//! would take minutes, not fail an assertion).

use std::io::{Seek, SeekFrom};

use super::*;

use ArchiveErrorKind::TooLarge;

/// Counts the bytes read through it.
struct Counting<R> {
    inner: R,
    read: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

impl<R: Seek> Seek for Counting<R> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

/// A tar stream of one file of `size` zeros, produced as it is read.
fn zeros_tar(size: u64) -> impl Read {
    let mut header = ::tar::Header::new_gnu();
    header.set_path("zeros.bin").unwrap();
    header.set_size(size);
    header.set_cksum();
    let header = header.as_bytes().to_vec();
    let padding = (512 - size % 512) % 512;
    Cursor::new(header).chain(std::io::repeat(0).take(size + padding + 1024))
}

/// Limits that let a huge file through, so the stream caps are what trip.
fn generous() -> ArchiveLimits {
    ArchiveLimits {
        max_file_bytes: u64::MAX,
        max_total_bytes: u64::MAX,
        ..ArchiveLimits::default()
    }
}

fn lazily_compressed(compression: TarCompression, size: u64) -> Box<dyn Read> {
    match compression {
        TarCompression::Gzip => Box::new(flate2::read::GzEncoder::new(
            zeros_tar(size),
            flate2::Compression::best(),
        )),
        TarCompression::Zstd => {
            Box::new(::zstd::stream::read::Encoder::new(zeros_tar(size), 19).unwrap())
        }
        TarCompression::None => Box::new(zeros_tar(size)),
    }
}

fn read_counting(
    compression: TarCompression,
    size: u64,
    limits: ArchiveLimits,
) -> (ArchiveError, u64) {
    let mut input = Counting {
        inner: lazily_compressed(compression, size),
        read: 0,
    };
    let options = ReadOptions { root: None, limits };
    let e = read_tar(compression, &mut input, &options, &mut Collect::default()).unwrap_err();
    (e, input.read)
}

#[test]
fn a_10_gib_gzip_or_zstd_bomb_trips_the_ratio_cap_after_a_few_blocks() {
    for compression in [TarCompression::Gzip, TarCompression::Zstd] {
        let (e, consumed) = read_counting(compression, 10 << 30, generous());
        assert!(
            matches!(
                e,
                ArchiveError::Limit {
                    limit: Limit::Ratio,
                    ..
                }
            ),
            "{e}"
        );
        assert_refused(ArchiveFormat::TarGz, &e, TooLarge, "zeros.bin");
        assert!(
            consumed < 1 << 20,
            "{compression:?}: read {consumed} compressed bytes"
        );
    }
}

#[test]
fn the_absolute_cap_stops_a_stream_the_ratio_lets_through() {
    let limits = ArchiveLimits {
        max_total_bytes: 8 << 20,
        max_ratio: u64::MAX,
        ..generous()
    };
    for compression in [
        TarCompression::None,
        TarCompression::Gzip,
        TarCompression::Zstd,
    ] {
        let (e, consumed) = read_counting(compression, 1 << 30, limits);
        let ArchiveError::Limit {
            limit, value, max, ..
        } = &e
        else {
            panic!("{e}");
        };
        assert_eq!((*limit, *max), (Limit::TotalBytes, 8 << 20), "{e}");
        assert!(*value <= (8 << 20) + (128 << 10), "{e}");
        let bound = if compression == TarCompression::None {
            9 << 20
        } else {
            1 << 20
        };
        assert!(consumed < bound, "{compression:?}: read {consumed} bytes");
    }
}

#[test]
fn a_file_over_the_size_cap_is_refused_before_its_bytes_are_read() {
    for compression in [TarCompression::None, TarCompression::Gzip] {
        let (e, consumed) = read_counting(compression, 1 << 30, ArchiveLimits::default());
        assert!(
            matches!(
                e,
                ArchiveError::Limit {
                    limit: Limit::FileBytes,
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(
            e.to_string(),
            "zeros.bin: 1073741824, over max_file_bytes 26214400"
        );
        assert!(
            consumed <= 64 << 10,
            "{compression:?}: read {consumed} bytes"
        );
    }
    let bytes = zip(&[file("big.bin", vec![0u8; 2 << 20])]);
    let options = ReadOptions {
        limits: ArchiveLimits {
            max_file_bytes: 1 << 20,
            ..ArchiveLimits::default()
        },
        ..ReadOptions::default()
    };
    let e = refused(ArchiveFormat::Zip, &bytes, &options);
    assert_refused(
        ArchiveFormat::Zip,
        &e,
        TooLarge,
        "big.bin: 2097152, over max_file_bytes",
    );
}

#[test]
fn too_many_files_are_refused_at_the_first_one_over() {
    let specs: Vec<Spec> = (0..4).map(|i| file(format!("f{i}.txt"), "x")).collect();
    let options = ReadOptions {
        limits: ArchiveLimits {
            max_files: 3,
            ..ArchiveLimits::default()
        },
        ..ReadOptions::default()
    };
    for format in ArchiveFormat::ALL {
        let e = refused(format, &build(format, &specs), &options);
        assert_refused(format, &e, TooLarge, "f3.txt: 4, over max_files 3");
    }
}

#[test]
fn small_archives_of_repetitive_text_are_not_bombs() {
    // Within the grace of the ratio cap, any ratio is fine.
    let text = vec![b'a'; (RATIO_GRACE_BYTES - 4096) as usize];
    for format in ArchiveFormat::ALL {
        let files = read(format, &build(format, &[file("a.txt", &text)]));
        assert_eq!(files[0].1.len(), text.len(), "{format}");
    }
}

#[test]
fn a_zip_bomb_trips_the_ratio_cap_before_the_end_of_its_data() {
    let bytes = zip(&[file("zeros.bin", vec![0u8; 64 << 20])]);
    let mut input = Counting {
        inner: Cursor::new(&bytes),
        read: 0,
    };
    let options = ReadOptions {
        root: None,
        limits: generous(),
    };
    let e = read_zip(&mut input, &options, &mut Collect::default()).unwrap_err();
    assert!(
        matches!(
            e,
            ArchiveError::Limit {
                limit: Limit::Ratio,
                ..
            }
        ),
        "{e}"
    );
    assert_refused(ArchiveFormat::Zip, &e, TooLarge, "zeros.bin");
    assert!(
        input.read < bytes.len() as u64 / 2,
        "read {} of {}",
        input.read,
        bytes.len()
    );
}
