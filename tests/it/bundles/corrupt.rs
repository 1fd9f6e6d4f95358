//! The corpus's cases of one format's own structure: tar headers and
//! streams, gzip members, zstd frames, zip directories, each broken the
//! way real hostile or damaged archives are.

use super::hostile::{Case, ok};
use crate::helpers::archives::{
    Node, central, file, gzip, node, patch_all, set_u16, set_u32, tar, zip_with, zstd,
};

/// Adds the cases of every format's own structure.
pub(super) fn cases(cases: &mut Vec<Case>) {
    let mut push = |label: &str, key: &str, bytes: Vec<u8>, code, names: &str| {
        cases.push(Case {
            label: label.into(),
            key: format!("hostile/{key}"),
            bytes,
            code,
            names: names.into(),
        });
    };
    let good = tar(&[ok(), file("b.html", "0123456789".repeat(100))]);
    push(
        "tar hard link",
        "hard.tar",
        tar(&[ok(), node("hard.html", Node::HardLink)]),
        "bundle_invalid",
        "hard.html: hard link entries are not allowed",
    );
    let mut bad_sum = good.clone();
    bad_sum[0] ^= 0x20;
    push(
        "tar checksum",
        "sum.tar",
        bad_sum,
        "bundle_invalid",
        "corrupt archive",
    );
    push(
        "tar truncated",
        "cut.tar",
        good[..1700].to_vec(),
        "bundle_invalid",
        "b.html: corrupt archive",
    );
    let mut lying = tar(&[ok()]);
    lying.truncate(1024);
    let size_field = 124;
    lying[size_field..size_field + 11].copy_from_slice(b"00000777777");
    let checksum = lying[..512]
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(b)
            }
        })
        .sum::<u32>();
    lying[148..156].copy_from_slice(format!("{checksum:06o}\0 ").as_bytes());
    push(
        "tar lying size",
        "lying.tar",
        lying,
        "bundle_invalid",
        "ok.html",
    );
    let gz = gzip(&good);
    push(
        "tar.gz truncated",
        "cut.tar.gz",
        gz[..gz.len() / 2].to_vec(),
        "bundle_invalid",
        "corrupt archive",
    );
    let mut trailing = gz.clone();
    trailing.extend_from_slice(b"garbage");
    push(
        "tar.gz trailing garbage",
        "trailing.tar.gz",
        trailing,
        "bundle_invalid",
        "trailing data after the gzip stream",
    );
    let mut members = gz.clone();
    members.extend_from_slice(&gzip(b"more"));
    push(
        "tar.gz two members",
        "members.tar.gz",
        members,
        "bundle_invalid",
        "a second gzip member after the first",
    );
    let zst = zstd(&good);
    push(
        "tar.zst truncated",
        "cut.tar.zst",
        zst[..zst.len() - 8].to_vec(),
        "bundle_invalid",
        "corrupt archive",
    );

    let two = || {
        zip_with(
            &[file("a.txt", "0123456789"), file("b.txt", "bbbbbbbbbb")],
            true,
        )
    };
    let mut crc = two();
    crc[35 + 4] ^= 0x01;
    push("zip crc", "crc.zip", crc, "bundle_invalid", "a.txt");
    let mut names = two();
    names[30..35].copy_from_slice(b"x.txt");
    push(
        "zip names disagree",
        "names.zip",
        names,
        "bundle_invalid",
        "a.txt: local header disagrees with the central directory",
    );
    let mut overlap = two();
    let b = central(&overlap)[1];
    set_u32(&mut overlap, b + 42, 0);
    push(
        "zip overlap",
        "overlap.zip",
        overlap,
        "bundle_invalid",
        "a.txt: its bytes overlap b.txt",
    );
    let mut encrypted = two();
    let a = central(&encrypted)[0];
    set_u16(&mut encrypted, 6, 1);
    set_u16(&mut encrypted, a + 8, 1);
    push(
        "zip encrypted",
        "encrypted.zip",
        encrypted,
        "bundle_invalid",
        "a.txt: encrypted entries are not allowed",
    );
    let mut twice = two();
    patch_all(&mut twice, b"b.txt", b"a.txt");
    push(
        "zip name twice",
        "twice.zip",
        twice,
        "bundle_invalid",
        "a.txt: appears twice",
    );
    push(
        "zip garbage",
        "garbage.zip",
        b"PK not really a zip at all".to_vec(),
        "bundle_invalid",
        "corrupt archive",
    );
    push(
        "zero-byte zip",
        "empty.zip",
        Vec::new(),
        "bundle_not_found",
        "the archive holds no files",
    );
}
