//! Feeds arbitrary bytes to every archive reader: tar, tar.gz, tar.zst and
//! zip, with small caps. A reader may refuse the bytes; it must not panic,
//! hang, or allocate past libFuzzer's limit, and what it accepts must be a
//! valid bundle (checked, distinct paths, bodies of their declared size).
#![no_main]

use std::collections::HashSet;
use std::io::{Cursor, Read};

use libfuzzer_sys::fuzz_target;

#[allow(dead_code, unused_imports)]
#[path = "../src/bundle.rs"]
mod bundle;

use bundle::archive::{
    ArchiveLimits, EntrySink, ReadOptions, SinkError, TarCompression, read_tar, read_zip,
};

/// Checks what the sink is promised: each path once, each body exactly its
/// declared size.
#[derive(Default)]
struct Check {
    seen: HashSet<String>,
}

impl EntrySink for Check {
    fn file(&mut self, path: &str, size: u64, body: &mut dyn Read) -> Result<(), SinkError> {
        assert_eq!(bundle::path::check_relative(path), Ok(()), "{path:?}");
        assert!(self.seen.insert(path.to_owned()), "{path:?} twice");
        let read = std::io::copy(body, &mut std::io::sink())?;
        assert_eq!(read, size, "{path:?}");
        Ok(())
    }
}

fn options() -> ReadOptions<'static> {
    ReadOptions {
        root: None,
        limits: ArchiveLimits {
            max_files: 64,
            max_file_bytes: 1 << 20,
            max_total_bytes: 4 << 20,
            max_ratio: 200,
            max_depth: 16,
            max_path_bytes: 512,
        },
    }
}

fuzz_target!(|data: &[u8]| {
    for compression in [TarCompression::None, TarCompression::Gzip, TarCompression::Zstd] {
        let _ = read_tar(compression, data, &options(), &mut Check::default());
    }
    let _ = read_zip(Cursor::new(data), &options(), &mut Check::default());
});
