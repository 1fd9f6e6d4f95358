//! Decompression bombs through S3: a gzip whose tar declares a 10 GiB file
//! and holds gigabytes of zeros is refused as `bundle_too_large` after a
//! few KiB taken from S3, whether the declared size gives it away (the
//! default `limits.max_file_bytes`) or only the inflation ratio does
//! (limits raised past it). The refusal says how much of the archive was
//! read; the process's peak memory stays far below what was declared. The
//! archive module's own tests prove the early stop for every format.

use serde_json::json;
use wfp_deployer::config::Settings;
use wfp_deployer::sim::SimConfig;

use super::{archive_job, assert_refused, on_both_servers};
use crate::helpers::app::TestApp;
use crate::helpers::archives::gzip_bomb;
use crate::helpers::s3::S3Server;

const TEN_GIB: u64 = 10 << 30;

/// `(bytes read, archive size)` from "stopped after reading N of the
/// archive's M bytes".
fn read_of(message: &str) -> (u64, u64) {
    let rest = message
        .split("stopped after reading ")
        .nth(1)
        .unwrap_or_else(|| panic!("no read count in {message:?}"));
    let numbers: Vec<u64> = rest
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse().ok())
        .collect();
    (numbers[0], numbers[1])
}

/// The process's peak resident memory (`VmHWM`), in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .unwrap_or_else(|| panic!("no VmHWM in /proc/self/status"))
}

/// Limits past which only the ratio can stop the bomb.
fn raised(settings: &mut Settings) {
    settings.limits.max_file_bytes = 20 << 30;
    settings.limits.max_total_bytes = 20 << 30;
    settings.limits.max_archive_bytes = 20 << 30;
}

async fn a_declared_ten_gib_bomb_is_stopped_after_a_few_kib(server: S3Server) {
    // 4 GiB of zeros written (about 4 MB compressed), 10 GiB declared.
    let bomb = gzip_bomb("zeros.bin", TEN_GIB, 4096);
    let size = bomb.len() as u64;
    let cases = [
        ("by its declared size", false, "limits.max_file_bytes"),
        ("by its ratio", true, "limits.max_archive_ratio"),
    ];
    for (label, limits_raised, setting) in cases {
        let mut app = TestApp::spawn_with(server, SimConfig::for_tests(), |s| {
            if limits_raised {
                raised(s);
            }
        })
        .await;
        app.bucket.put("bomb.tar.gz", bomb.clone()).await;
        let job = archive_job(&app, "bomb-1", "bomb", "bomb.tar.gz", json!({}));
        assert_refused(
            &mut app,
            label,
            &job,
            "bundle_too_large",
            "bomb.tar.gz: zeros.bin: ",
        )
        .await;
        let again = archive_job(&app, "bomb-2", "bomb", "bomb.tar.gz", json!({}));
        let event = app.deploy(&again).await;
        let message = event.data()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(message.contains(setting), "{label}: {message}");
        let (read, of) = read_of(&message);
        assert_eq!(of, size, "{label}: {message}");
        assert!(
            read <= 256 << 10,
            "{label}: read {read} of {size} bytes: {message}"
        );

        // The worker goes on.
        app.bucket.put("fine/index.html", "<p>fine</p>").await;
        app.deploy_ok(&app.job("after-bomb", "after", "fine/"))
            .await;
        app.stop().await;
    }
    let peak = peak_rss();
    assert!(
        peak < 256 << 20,
        "peak RSS {peak} bytes while refusing a 10 GiB bomb"
    );
}

on_both_servers!(a_declared_ten_gib_bomb_is_stopped_after_a_few_kib);
