//! Property: whatever bytes are mutated or cut in a valid archive, reading
//! it never panics, and when it succeeds what it gave is still a valid
//! bundle (checked, distinct paths; sizes that add up).

use std::collections::HashSet;
use std::sync::LazyLock;

use proptest::prelude::*;
use proptest::sample::Index;

use super::*;
use crate::bundle::path::check_relative;

fn specs() -> Vec<Spec> {
    vec![
        dir("site/"),
        file("site/index.html", "<!doctype html><h1>hello</h1>"),
        dir("site/assets/"),
        file("site/assets/app.js", "console.log(1);".repeat(40)),
        file("site/assets/empty.css", ""),
        file(format!("site/{}.txt", "long".repeat(40)), "long name"),
        file("site/bin.dat", (0..=255u8).collect::<Vec<_>>()),
    ]
}

/// One valid archive per format, and the tar they share.
static SEEDS: LazyLock<(Vec<u8>, Vec<Vec<u8>>)> = LazyLock::new(|| {
    let specs = specs();
    let seeds = ArchiveFormat::ALL
        .iter()
        .map(|&f| build(f, &specs))
        .collect();
    (tar(&specs), seeds)
});

/// Small caps, so a mutated size field cannot make a case slow.
fn options() -> ReadOptions<'static> {
    ReadOptions {
        root: None,
        limits: ArchiveLimits {
            max_files: 50,
            max_file_bytes: 64 << 10,
            max_total_bytes: 1 << 20,
            max_ratio: 100,
            max_depth: 8,
            max_path_bytes: 256,
        },
    }
}

fn mutate(mut bytes: Vec<u8>, mutations: &[(Index, u8)], cut: Option<Index>) -> Vec<u8> {
    if !bytes.is_empty() {
        for (at, byte) in mutations {
            let i = at.index(bytes.len());
            bytes[i] = *byte;
        }
    }
    if let Some(cut) = cut {
        bytes.truncate(cut.index(bytes.len() + 1));
    }
    bytes
}

fn check_outcome(format: ArchiveFormat, bytes: &[u8]) -> Result<(), TestCaseError> {
    let Ok((files, summary)) = read_with(format, bytes, &options()) else {
        return Ok(());
    };
    let mut seen = HashSet::new();
    for (path, _) in &files {
        prop_assert_eq!(check_relative(path), Ok(()), "{}", path);
        prop_assert!(seen.insert(path.clone()), "{} twice", path);
    }
    prop_assert_eq!(summary.files, files.len() as u64);
    let bytes: u64 = files.iter().map(|(_, d)| d.len() as u64).sum();
    prop_assert_eq!(summary.bytes, bytes);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Mutations of the archive as stored: most break the compression.
    #[test]
    fn mutated_archives_never_panic(
        which in 0..ArchiveFormat::ALL.len(),
        mutations in prop::collection::vec((any::<Index>(), any::<u8>()), 0..8),
        cut in any::<Option<Index>>(),
    ) {
        let bytes = mutate(SEEDS.1[which].clone(), &mutations, cut);
        check_outcome(ArchiveFormat::ALL[which], &bytes)?;
    }

    /// Mutations of the tar under the compression, which reach the tar
    /// parser itself.
    #[test]
    fn mutated_tars_under_compression_never_panic(
        compression in prop::sample::select(vec![ArchiveFormat::TarGz, ArchiveFormat::TarZst]),
        mutations in prop::collection::vec((any::<Index>(), any::<u8>()), 1..8),
        cut in any::<Option<Index>>(),
    ) {
        let tar = mutate(SEEDS.0.clone(), &mutations, cut);
        let bytes = match compression {
            ArchiveFormat::TarGz => gzip(&tar),
            _ => zstd(&tar),
        };
        check_outcome(compression, &bytes)?;
    }
}

#[test]
fn the_seeds_are_valid() {
    for (i, format) in ArchiveFormat::ALL.into_iter().enumerate() {
        let (files, _) = read_with(format, &SEEDS.1[i], &options()).unwrap();
        assert_eq!(files.len(), 5, "{format}");
    }
}
