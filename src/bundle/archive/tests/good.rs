//! Good archives in every format read back byte-exactly, with the root
//! option, long names and the formats' own variants (PAX, GNU, data
//! descriptors, zstd frames).

use super::*;

fn site() -> Vec<Spec> {
    vec![
        dir("./"),
        file("./index.html", "<h1>hi</h1>"),
        dir("./assets/"),
        dir("./assets/css/"),
        file("./assets/css/site.css", "body{}"),
        file("./assets/empty.js", ""),
        file("./a/b/c/d/e/deep.txt", "deep"),
        file("./ünïcode/файл.html", "utf-8"),
        file("./with space/plus+sign.txt", [0u8, 1, 2, 255].repeat(1000)),
    ]
}

fn site_files() -> Files {
    owned(&[
        ("index.html", b"<h1>hi</h1>"),
        ("assets/css/site.css", b"body{}"),
        ("assets/empty.js", b""),
        ("a/b/c/d/e/deep.txt", b"deep"),
        ("ünïcode/файл.html", b"utf-8"),
        ("with space/plus+sign.txt", &[0u8, 1, 2, 255].repeat(1000)),
    ])
}

#[test]
fn every_format_reads_nested_dirs_and_empty_files_exactly() {
    for format in ArchiveFormat::ALL {
        let bytes = build(format, &site());
        let (files, summary) = read_with(format, &bytes, &ReadOptions::default()).unwrap();
        assert_eq!(files, site_files(), "{format}");
        assert_eq!(summary.files, 6, "{format}");
        assert_eq!(summary.bytes, 11 + 6 + 4 + 5 + 4000, "{format}");
        // Zip reads its end records and local headers more than once.
        match format {
            ArchiveFormat::Zip => assert!(summary.input_bytes < 3 * bytes.len() as u64),
            _ => assert_eq!(summary.input_bytes, bytes.len() as u64, "{format}"),
        }
    }
}

#[test]
fn root_takes_only_its_files_relative_to_it() {
    let specs = [
        file("README.md", "outside"),
        special("node_modules/.bin/tool", Node::Symlink),
        file("../outside-the-root-is-not-checked", "x"),
        dir("dist/"),
        file("dist/index.html", "in"),
        file("dist/js/app.js", "app"),
        file("distant/x.html", "not dist"),
        file("./dist/css/a.css", "css"),
    ];
    for format in ArchiveFormat::ALL {
        let bytes = build(format, &specs);
        for root in ["dist", "dist/"] {
            let options = ReadOptions {
                root: Some(root),
                ..ReadOptions::default()
            };
            let (files, summary) = read_with(format, &bytes, &options).unwrap();
            let want = owned(&[
                ("index.html", b"in"),
                ("js/app.js", b"app"),
                ("css/a.css", b"css"),
            ]);
            assert_eq!(files, want, "{format} {root}");
            assert_eq!(summary.files, 3);
        }
    }
}

#[test]
fn root_that_matches_nothing_gives_no_files() {
    for format in ArchiveFormat::ALL {
        let bytes = build(format, &site());
        let options = ReadOptions {
            root: Some("public"),
            ..ReadOptions::default()
        };
        let (files, summary) = read_with(format, &bytes, &options).unwrap();
        assert!(files.is_empty(), "{format}");
        assert_eq!(summary.files, 0);
    }
}

#[test]
fn root_must_follow_the_path_rules() {
    for root in ["../x", "/abs", "a//b", ""] {
        let bytes = build(ArchiveFormat::Tar, &site());
        let options = ReadOptions {
            root: Some(root),
            ..ReadOptions::default()
        };
        let e = refused(ArchiveFormat::Tar, &bytes, &options);
        assert_eq!(e.kind(), ArchiveErrorKind::Invalid, "{root}: {e}");
        assert!(e.to_string().starts_with("root "), "{e}");
    }
}

#[test]
fn gnu_long_names_work_in_tar_and_long_names_in_zip() {
    let long = format!("{}/{}.html", "d".repeat(150), "n".repeat(150));
    for format in ArchiveFormat::ALL {
        let bytes = build(format, &[file(&long, "long")]);
        assert_eq!(read(format, &bytes), owned(&[(&long, b"long")]), "{format}");
    }
}

#[test]
fn pax_long_names_and_sizes_work() {
    let long = format!("{}/ünï-{}.txt", "p".repeat(120), "q".repeat(200));
    let mut builder = ::tar::Builder::new(Vec::new());
    for (path, data) in [(long.as_str(), &b"pax body"[..]), ("short.txt", b"s")] {
        builder
            .append_pax_extensions([("path", path.as_bytes()), ("mtime", b"1700000000.5")])
            .unwrap();
        let mut header = ::tar::Header::new_ustar();
        header.set_path("placeholder").unwrap();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }
    let bytes = builder.into_inner().unwrap();
    for format in [
        ArchiveFormat::Tar,
        ArchiveFormat::TarGz,
        ArchiveFormat::TarZst,
    ] {
        let bytes = match format {
            ArchiveFormat::TarGz => gzip(&bytes),
            ArchiveFormat::TarZst => zstd(&bytes),
            _ => bytes.clone(),
        };
        let want = owned(&[(&long, b"pax body"), ("short.txt", b"s")]);
        assert_eq!(read(format, &bytes), want, "{format}");
    }
}

#[test]
fn pax_global_headers_are_ignored() {
    // `git archive` starts with one carrying the commit id.
    let mut builder = ::tar::Builder::new(Vec::new());
    let mut global = ::tar::Header::new_ustar();
    let record = b"52 comment=0123456789abcdef0123456789abcdef01234567\n";
    global.set_path("pax_global_header").unwrap();
    global.set_entry_type(::tar::EntryType::XGlobalHeader);
    global.set_size(record.len() as u64);
    global.set_cksum();
    builder.append(&global, &record[..]).unwrap();
    let mut header = ::tar::Header::new_ustar();
    header.set_path("site/index.html").unwrap();
    header.set_size(2);
    header.set_cksum();
    builder.append(&header, &b"ok"[..]).unwrap();
    let bytes = builder.into_inner().unwrap();
    assert_eq!(
        read(ArchiveFormat::Tar, &bytes),
        owned(&[("site/index.html", b"ok")])
    );
}

#[test]
fn zstd_several_frames_are_one_stream() {
    let tar = tar(&[file("a.txt", "aaaa"), file("b.txt", "bbbb")]);
    let (first, second) = tar.split_at(700);
    let mut bytes = zstd(first);
    bytes.extend(zstd(second));
    let want = owned(&[("a.txt", b"aaaa"), ("b.txt", b"bbbb")]);
    assert_eq!(read(ArchiveFormat::TarZst, &bytes), want);
}

#[test]
fn tar_padding_after_the_end_block_is_fine() {
    let mut bytes = tar(&[file("a.txt", "a")]);
    bytes.extend([0u8; 10240]);
    assert_eq!(read(ArchiveFormat::Tar, &bytes), owned(&[("a.txt", b"a")]));
}

#[test]
fn zip_stored_and_streamed_entries_work() {
    let specs = [
        file("stored.txt", "plain"),
        file("big.bin", vec![7u8; 100_000]),
    ];
    let stored = zip_with(&specs, ::zip::CompressionMethod::Stored);
    let want = owned(&[("stored.txt", b"plain"), ("big.bin", &[7u8; 100_000])]);
    assert_eq!(read(ArchiveFormat::Zip, &stored), want);

    // A streamed zip: sizes and CRCs in data descriptors after the data.
    let mut writer = ::zip::ZipWriter::new_stream(Vec::new());
    let options = ::zip::write::SimpleFileOptions::default();
    for (name, data) in [("stored.txt", &b"plain"[..]), ("big.bin", &[7u8; 100_000])] {
        writer.start_file(name, options).unwrap();
        writer.write_all(data).unwrap();
    }
    let streamed = writer.finish().unwrap().into_inner();
    assert_eq!(read(ArchiveFormat::Zip, &streamed), want);
}

#[test]
fn the_same_directory_twice_is_fine() {
    let specs = [dir("a/"), file("a/x", "x"), dir("a/"), dir("./a")];
    for format in [
        ArchiveFormat::Tar,
        ArchiveFormat::TarGz,
        ArchiveFormat::TarZst,
    ] {
        assert_eq!(
            read(format, &build(format, &specs)),
            owned(&[("a/x", b"x")])
        );
    }
}

#[test]
fn formats_come_from_extensions_or_names() {
    let cases = [
        ("site.tar", Some(ArchiveFormat::Tar)),
        ("builds/42/SITE.TAR.GZ", Some(ArchiveFormat::TarGz)),
        ("site.tgz", Some(ArchiveFormat::TarGz)),
        ("site.tar.zst", Some(ArchiveFormat::TarZst)),
        ("site.TZST", Some(ArchiveFormat::TarZst)),
        ("dist.Zip", Some(ArchiveFormat::Zip)),
        ("site.gz", None),
        ("site.zst", None),
        ("site", None),
        ("tar", None),
        (".zip", None),
        ("zip/site.html", None),
    ];
    for (key, want) in cases {
        assert_eq!(ArchiveFormat::from_name(key), want, "{key}");
    }
    for format in ArchiveFormat::ALL {
        assert_eq!(ArchiveFormat::parse(format.as_str()), Some(format));
        assert_eq!(format.to_string(), format.as_str());
    }
    for bad in ["TAR", "tgz", "gz", "tar.bz2", ""] {
        assert_eq!(ArchiveFormat::parse(bad), None, "{bad}");
    }
    assert_eq!(ArchiveFormat::Zip.tar_compression(), None);
    assert_eq!(
        ArchiveFormat::TarZst.tar_compression(),
        Some(TarCompression::Zstd)
    );
}

/// A sink that reads only part of each body: the reader still checks the
/// rest of the entry.
struct Lazy(Vec<String>);

impl EntrySink for Lazy {
    fn file(&mut self, path: &str, _size: u64, body: &mut dyn Read) -> Result<(), SinkError> {
        let mut first = [0u8; 1];
        let _ = body.read(&mut first)?;
        self.0.push(path.to_owned());
        Ok(())
    }
}

#[test]
fn a_sink_that_stops_early_still_gets_every_file() {
    for format in ArchiveFormat::ALL {
        let bytes = build(format, &site());
        let mut sink = Lazy(Vec::new());
        let summary = match format.tar_compression() {
            Some(c) => read_tar(c, &bytes[..], &ReadOptions::default(), &mut sink),
            None => read_zip(Cursor::new(&bytes), &ReadOptions::default(), &mut sink),
        }
        .unwrap();
        assert_eq!(sink.0.len(), 6, "{format}");
        assert_eq!(summary.files, 6);
    }
}

/// A sink whose disk is full.
struct Full;

impl EntrySink for Full {
    fn file(&mut self, _path: &str, _size: u64, _body: &mut dyn Read) -> Result<(), SinkError> {
        Err(std::io::Error::other("no space left on device").into())
    }
}

#[test]
fn a_sink_failure_names_the_file_and_keeps_its_cause() {
    for format in ArchiveFormat::ALL {
        let bytes = build(format, &site());
        let e = match format.tar_compression() {
            Some(c) => read_tar(c, &bytes[..], &ReadOptions::default(), &mut Full),
            None => read_zip(Cursor::new(&bytes), &ReadOptions::default(), &mut Full),
        }
        .unwrap_err();
        assert_refused(format, &e, ArchiveErrorKind::Sink, "index.html");
        let cause = std::error::Error::source(&e).unwrap().to_string();
        assert_eq!(cause, "no space left on device");
    }
}
