//! The table printed at the end of a run: each server's limits and figures,
//! then the targets with PASS/MISS beside them.

use std::fmt::Write;

use crate::report::Results;

/// The printed table: the limits and figures of each server, then targets.
pub fn table(results: &Results) -> String {
    let mut out = String::new();
    for s in &results.servers {
        let _ = writeln!(out, "\n== {} ({})", s.server, s.endpoint);
        let _ = writeln!(
            out,
            "{:<16} {:>6} {:>8} | {:>8} {:>8} {:>8} {:>7} {:>7} {:>7} | {:>7} {:>8} {:>6} {:>6} {:>8} {:>9}",
            "first deploy",
            "files",
            "MiB",
            "sha256",
            "s3 GET",
            "GET/s",
            "upload",
            "gzip",
            "rd+up",
            "wall s",
            "MiB/s",
            "ratio",
            "r/step",
            "RSS MiB",
            "CPU s/GiB"
        );
        for (shape, d) in &s.first_deploy {
            let limits = d.limits.as_ref().map_or_else(
                || {
                    format!(
                        "{:>8} {:>8} {:>8} {:>7} {:>7} {:>7}",
                        "-", "-", "-", "-", "-", "-"
                    )
                },
                |l| {
                    format!(
                        "{:>8.1} {:>8.1} {:>8.0} {:>7.1} {:>7} {:>7.1}",
                        l.sha256_limit_mbps,
                        l.s3_get_limit_mbps,
                        l.s3_get_limit_objects_per_s,
                        l.upload_limit_mbps,
                        l.gzip_limit_mbps
                            .map_or_else(|| "-".to_string(), |g| format!("{g:.1}")),
                        l.read_then_upload_limit_mbps
                    )
                },
            );
            let figures = match (&d.measured, &d.skipped) {
                (Some(m), _) => format!(
                    "{:>7.2} {:>8.1} {:>6.2} {:>6.2} {:>8.1} {:>9.1}",
                    m.wall_s,
                    m.mbps,
                    m.ratio_to_limit,
                    m.ratio_to_slowest_step,
                    m.peak_rss_mib,
                    m.cpu_s_per_gib
                ),
                (None, Some(why)) => format!("skipped: {why}"),
                (None, None) => "-".into(),
            };
            let _ = writeln!(
                out,
                "{shape:<16} {:>6} {:>8.1} | {limits} | {figures}",
                d.files,
                crate::data::mib(d.bytes)
            );
        }
        let r = &s.unchanged_redeploy;
        let _ = writeln!(
            out,
            "unchanged redeploy of {} files ({:.1} MiB): {:.2} s (listing alone {:.2} s; first deploy {:.2} s), read {:.1} MiB = {:.4} of the bytes ({}), peak RSS {:.1} MiB",
            r.files,
            crate::data::mib(r.bytes),
            r.wall_s,
            r.list_limit_s,
            r.first_deploy_wall_s,
            crate::data::mib(r.bytes_read),
            r.bytes_read_ratio,
            r.bytes_read_source,
            r.peak_rss_mib
        );
        let b = &s.new_build_1pct_changed;
        let _ = writeln!(
            out,
            "new build, {} of {} files changed, new prefix: {:.2} s, read {:.4} of the bytes, {} files uploaded",
            b.changed_files,
            b.files,
            b.wall_s,
            b.bytes_read_ratio,
            b.files_uploaded
                .map_or_else(|| "?".to_string(), |f| f.to_string())
        );
        let k = &s.broker;
        let _ = writeln!(
            out,
            "broker: {} jobs ({} files each, {} sites), one worker: {:.2} s = {:.1} jobs/s ({} succeeded, {} failed), worker peak RSS {:.1} MiB",
            k.jobs,
            k.files_per_job,
            k.sites,
            k.wall_s,
            k.jobs_per_s,
            k.succeeded,
            k.failed,
            k.worker_peak_rss_mib
        );
        let t = &s.stress;
        let _ = writeln!(
            out,
            "stress: {} bundles of {} files ({:.1} MiB) at once, one worker of concurrency {}: {:.2} s, worker peak RSS {:.1} MiB",
            t.jobs,
            t.files_per_job,
            crate::data::mib(t.bytes_per_job),
            t.jobs,
            t.wall_s,
            t.worker_peak_rss_mib
        );
        let h = &s.huge;
        let _ = writeln!(
            out,
            "huge: {} bundles of {} files ({:.1} MiB, tar.gz) at once, one worker of concurrency {}: {:.2} s, worker peak RSS {:.1} MiB",
            h.jobs,
            h.files_per_job,
            crate::data::mib(h.bytes_per_job),
            h.jobs,
            h.wall_s,
            h.worker_peak_rss_mib
        );
        let _ = writeln!(out, "targets:");
        for t in &s.targets {
            let value = t
                .value
                .map_or_else(|| "-".to_string(), |v| format!("{v:.4}"));
            let _ = writeln!(
                out,
                "  {:<48} {:>10} {:>2} {:<6} {}",
                t.figure, value, t.op, t.target, t.result
            );
        }
    }
    out
}
