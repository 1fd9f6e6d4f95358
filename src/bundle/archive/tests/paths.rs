//! Hostile names and name conflicts, the same in every format: each case
//! gives its error kind and names the entry.

use super::*;

use ArchiveErrorKind::{Invalid, TooLarge};

/// Reads `specs` as every format and checks the error.
#[track_caller]
fn refused_everywhere(specs: &[Spec], kind: ArchiveErrorKind, entry: &str) {
    refused_everywhere_with(specs, &ReadOptions::default(), kind, entry);
}

#[track_caller]
fn refused_everywhere_with(
    specs: &[Spec],
    options: &ReadOptions<'_>,
    kind: ArchiveErrorKind,
    entry: &str,
) {
    for format in ArchiveFormat::ALL {
        let e = refused(format, &build(format, specs), options);
        assert_refused(format, &e, kind, entry);
    }
}

fn ok() -> Spec {
    file("ok.html", "ok")
}

#[test]
fn dot_dot_segments_are_refused() {
    refused_everywhere(
        &[ok(), file("../etc/passwd", "x")],
        Invalid,
        "../etc/passwd",
    );
    refused_everywhere(&[ok(), file("a/../../b", "x")], Invalid, "a/../../b");
    refused_everywhere(&[ok(), dir("a/../")], Invalid, "a/../");
}

#[test]
fn absolute_paths_are_refused() {
    let e = refused(
        ArchiveFormat::Tar,
        &tar(&[file("/etc/passwd", "x")]),
        &ReadOptions::default(),
    );
    assert!(matches!(e, ArchiveError::Absolute { .. }), "{e}");
    refused_everywhere(&[ok(), file("/etc/passwd", "x")], Invalid, "/etc/passwd");
    refused_everywhere(
        &[ok(), file("//server/share", "x")],
        Invalid,
        "//server/share",
    );
}

#[test]
fn a_leading_dot_slash_is_stripped_but_nothing_more() {
    for format in ArchiveFormat::ALL {
        let files = read(format, &build(format, &[file("./a.html", "a")]));
        assert_eq!(files, owned(&[("a.html", b"a")]), "{format}");
    }
    refused_everywhere(&[file("././a.html", "a")], Invalid, "././a.html");
    refused_everywhere(&[file("a/./b.html", "a")], Invalid, "a/./b.html");
    refused_everywhere(&[file("a//b.html", "a")], Invalid, "a//b.html");
}

#[test]
fn backslashes_are_refused() {
    refused_everywhere(&[ok(), file("a\\b.html", "x")], Invalid, "a\\\\b.html");
    refused_everywhere(
        &[ok(), file("..\\..\\evil", "x")],
        Invalid,
        "..\\\\..\\\\evil",
    );
}

#[test]
fn nul_and_control_characters_are_refused_and_shown_escaped() {
    // A NUL ends a tar name field, so tar cannot carry one; zip can.
    let e = refused(
        ArchiveFormat::Zip,
        &zip(&[ok(), file("nul\0.html", "x")]),
        &ReadOptions::default(),
    );
    assert_refused(ArchiveFormat::Zip, &e, Invalid, "nul\\u{0}.html");
    refused_everywhere(&[ok(), file("tab\there", "x")], Invalid, "tab\\there");
    refused_everywhere(&[ok(), file("line\nbreak", "x")], Invalid, "line\\nbreak");
    refused_everywhere(&[ok(), file("esc\x1b[31m", "x")], Invalid, "esc\\u{1b}[31m");
    refused_everywhere(&[ok(), file("del\x7f", "x")], Invalid, "del\\u{7f}");
}

#[test]
fn names_that_are_not_utf8_are_refused() {
    let specs = [ok(), file(b"latin1-caf\xe9.html", "x")];
    for format in ArchiveFormat::ALL {
        let e = refused(format, &build(format, &specs), &ReadOptions::default());
        assert!(matches!(e, ArchiveError::NotUtf8 { .. }), "{format}: {e}");
        assert_refused(format, &e, Invalid, "latin1-caf\u{FFFD}.html");
    }
}

#[test]
fn deep_nesting_is_refused() {
    let deep = format!("{}f.txt", "d/".repeat(32));
    refused_everywhere(&[ok(), file(&deep, "x")], Invalid, "33 levels deep");
    let at_limit = format!("{}f.txt", "d/".repeat(31));
    for format in ArchiveFormat::ALL {
        let files = read(format, &build(format, &[file(&at_limit, "x")]));
        assert_eq!(files.len(), 1, "{format}");
    }
    let options = ReadOptions {
        limits: ArchiveLimits {
            max_depth: 3,
            ..ArchiveLimits::default()
        },
        ..ReadOptions::default()
    };
    refused_everywhere_with(&[dir("a/b/c/d/")], &options, Invalid, "a/b/c/d/");
}

#[test]
fn long_paths_are_too_large() {
    let options = ReadOptions {
        limits: ArchiveLimits {
            max_path_bytes: 20,
            ..ArchiveLimits::default()
        },
        ..ReadOptions::default()
    };
    let long = "abcdefghij/klmnopqrstu.html";
    refused_everywhere_with(&[ok(), file(long, "x")], &options, TooLarge, long);
    let e = refused(ArchiveFormat::Tar, &tar(&[file(long, "x")]), &options);
    assert!(e.to_string().contains("max_path_bytes"), "{e}");
}

#[test]
fn the_same_path_twice_is_refused() {
    // zip's writer refuses a name twice: the zip case is patched in
    // `zip_hostile`.
    for format in [
        ArchiveFormat::Tar,
        ArchiveFormat::TarGz,
        ArchiveFormat::TarZst,
    ] {
        let specs = [file("a/x.html", "1"), ok(), file("./a/x.html", "2")];
        let e = refused(format, &build(format, &specs), &ReadOptions::default());
        assert!(matches!(e, ArchiveError::Duplicate { .. }), "{e}");
        assert_refused(format, &e, Invalid, "a/x.html");
    }
}

#[test]
fn a_file_and_a_directory_with_one_path_are_refused() {
    refused_everywhere(
        &[file("a", "file"), dir("a/")],
        Invalid,
        "a: both a file and a directory",
    );
    refused_everywhere(
        &[dir("a/"), file("a", "file")],
        Invalid,
        "a: both a file and a directory",
    );
    refused_everywhere(&[file("a", "file"), file("a/b", "under")], Invalid, "a/b");
    refused_everywhere(
        &[file("a/b/c", "under"), file("a/b", "file")],
        Invalid,
        "a/b",
    );
    refused_everywhere(&[file("x/a", "file"), dir("x/a/b/")], Invalid, "x/a/b");
}

#[test]
fn paths_that_collide_once_normalised_are_refused() {
    let nfc = "caf\u{e9}.html";
    let nfd = "cafe\u{301}.html";
    refused_everywhere(&[file(nfc, "1"), file(nfd, "2")], Invalid, nfd);
    refused_everywhere(&[file(nfd, "1"), file(nfc, "2")], Invalid, nfc);
    // Directories too, implied by their files.
    let specs = [file("\u{e9}/a.html", "1"), file("e\u{301}/b.html", "2")];
    refused_everywhere(&specs, Invalid, "e\u{301}");
    for format in ArchiveFormat::ALL {
        let e = refused(format, &build(format, &specs), &ReadOptions::default());
        assert!(
            matches!(e, ArchiveError::NormalizationCollision { .. }),
            "{e}"
        );
    }
    // One spelling alone is fine, as it is.
    for format in ArchiveFormat::ALL {
        let files = read(format, &build(format, &[file(nfd, "x")]));
        assert_eq!(files, owned(&[(nfd, b"x")]), "{format}");
    }
}

#[test]
fn links_are_refused_under_the_root_and_skipped_outside() {
    for node in [
        Node::Symlink,
        Node::Fifo,
        Node::CharDevice,
        Node::BlockDevice,
    ] {
        let specs = [ok(), special("site/link", node.clone())];
        refused_everywhere(&specs, Invalid, "site/link");
        let options = ReadOptions {
            root: Some("public"),
            ..ReadOptions::default()
        };
        for format in ArchiveFormat::ALL {
            let mut specs = specs.to_vec();
            specs.push(file("public/a.html", "a"));
            let bytes = build(format, &specs);
            let (files, _) = read_with(format, &bytes, &options).unwrap();
            assert_eq!(files, owned(&[("a.html", b"a")]), "{format} {node:?}");
        }
    }
}

#[test]
fn messages_say_what_the_entry_is() {
    let cases = [
        (Node::Symlink, "symbolic link"),
        (Node::Fifo, "FIFO"),
        (Node::CharDevice, "character device"),
        (Node::BlockDevice, "block device"),
    ];
    for (node, what) in cases {
        for format in ArchiveFormat::ALL {
            let e = refused(
                format,
                &build(format, &[special("x", node.clone())]),
                &ReadOptions::default(),
            );
            assert_eq!(
                e.to_string(),
                format!("x: {what} entries are not allowed"),
                "{format}"
            );
        }
    }
    let e = refused(
        ArchiveFormat::Tar,
        &tar(&[special("hard", Node::HardLink)]),
        &ReadOptions::default(),
    );
    assert_eq!(e.to_string(), "hard: hard link entries are not allowed");
}

#[test]
fn invisible_characters_are_shown_escaped() {
    // Allowed in paths (their fate is the bundle layer's), but an error
    // about such an entry must show them.
    let name = "a\u{202e}lmth.exe/x";
    let specs = [file("a\u{202e}lmth.exe", "f"), file(name, "under")];
    for format in ArchiveFormat::ALL {
        let e = refused(format, &build(format, &specs), &ReadOptions::default());
        assert!(e.to_string().contains("a\\u{202e}lmth.exe"), "{e}");
    }
}
