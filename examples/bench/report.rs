//! The results: what `target/bench/results.json` holds, and the targets
//! each figure is judged by (PASS/MISS); `table.rs` prints them.

use std::collections::BTreeMap;

use serde::Serialize;

/// A whole run.
#[derive(Debug, Serialize)]
pub struct Results {
    pub date: String,
    pub quick: bool,
    pub seed: u64,
    /// Each first deploy and limit is the best of this many runs.
    pub tries: usize,
    pub machine: Machine,
    /// Whether the binary knows the digest cache's settings (`cache.*`).
    pub digest_cache_settings: bool,
    pub servers: Vec<ServerResults>,
}

#[derive(Debug, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub mem_gib: f64,
    /// The 1-minute load average when the run started: other work on the
    /// machine shows in every figure.
    pub load_average: f64,
}

/// Every figure measured against one S3 server.
#[derive(Debug, Serialize)]
pub struct ServerResults {
    pub server: String,
    pub endpoint: String,
    /// `small_files`, `large_files`, `archive_tar_gz`.
    pub first_deploy: BTreeMap<String, FirstDeploy>,
    pub unchanged_redeploy: Redeploy,
    pub new_build_1pct_changed: NewBuild,
    pub broker: Broker,
    /// The many small files, four bundles at once: memory under load.
    pub stress: Stress,
    /// Four bundles at Cloudflare's file limit at once.
    pub huge: Huge,
    pub targets: Vec<Target>,
}

/// The limits of one shape, each measured on its data.
#[derive(Debug, Clone, Serialize)]
pub struct Limits {
    pub sha256_limit_mbps: f64,
    pub s3_get_limit_mbps: f64,
    pub s3_get_limit_objects_per_s: f64,
    pub upload_limit_mbps: f64,
    /// Inflating the archive (the `tar.gz` shape only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gzip_limit_mbps: Option<f64>,
    /// The slowest single step: the smallest of the MiB/s limits above.
    pub slowest_step: &'static str,
    pub slowest_step_limit_mbps: f64,
    /// The steps in the order the protocol imposes: every file is read
    /// and hashed (S3, inflating and SHA-256 stream together, so the
    /// slowest of them) before the upload session can be opened, since
    /// the session needs every file's hash; only then is anything
    /// uploaded. So a deploy takes at least the read pass plus the upload:
    /// 1 / (1 / read + 1 / upload).
    pub read_then_upload_limit_mbps: f64,
    /// The limit the deploy is held against: `read_then_upload`, which no
    /// order of the steps can beat.
    pub binding: &'static str,
    pub binding_limit_mbps: f64,
}

impl Limits {
    pub fn new(sha256: f64, s3_mbps: f64, s3_objects: f64, upload: f64) -> Limits {
        Limits {
            sha256_limit_mbps: sha256,
            s3_get_limit_mbps: s3_mbps,
            s3_get_limit_objects_per_s: s3_objects,
            upload_limit_mbps: upload,
            gzip_limit_mbps: None,
            slowest_step: "sha256",
            slowest_step_limit_mbps: f64::INFINITY,
            read_then_upload_limit_mbps: f64::INFINITY,
            binding: "read_then_upload",
            binding_limit_mbps: f64::INFINITY,
        }
        .bound()
    }

    /// The same limits with inflating the archive as one more.
    pub fn with_gzip(mut self, gzip: f64) -> Limits {
        self.gzip_limit_mbps = Some(gzip);
        self.bound()
    }

    /// Names the slowest step, and derives the binding limit.
    fn bound(mut self) -> Limits {
        let slowest = |limits: &[(&'static str, Option<f64>)]| {
            limits
                .iter()
                .filter_map(|&(name, v)| v.map(|v| (name, v)))
                .fold(("sha256", f64::INFINITY), |low, (name, v)| {
                    if v < low.1 { (name, v) } else { low }
                })
        };
        let read = [
            ("sha256", Some(self.sha256_limit_mbps)),
            ("s3_get", Some(self.s3_get_limit_mbps)),
            ("gzip", self.gzip_limit_mbps),
        ];
        let (_, read_limit) = slowest(&read);
        let mut all = read.to_vec();
        all.push(("upload", Some(self.upload_limit_mbps)));
        (self.slowest_step, self.slowest_step_limit_mbps) = slowest(&all);
        self.read_then_upload_limit_mbps = 1.0 / (1.0 / read_limit + 1.0 / self.upload_limit_mbps);
        self.binding = "read_then_upload";
        self.binding_limit_mbps = self.read_then_upload_limit_mbps;
        self
    }
}

/// A first deploy of one shape; `skipped` says why it was not measured.
#[derive(Debug, Serialize)]
pub struct FirstDeploy {
    pub files: usize,
    pub bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub measured: Option<Measured>,
}

/// The figures of a first deploy.
#[derive(Debug, Serialize)]
pub struct Measured {
    pub wall_s: f64,
    pub pipeline_s: Option<f64>,
    pub mbps: f64,
    pub ratio_to_limit: f64,
    /// `mbps` / the slowest single step's limit: what the deploy would
    /// reach if the protocol let reading and uploading overlap.
    pub ratio_to_slowest_step: f64,
    pub peak_rss_mib: f64,
    pub cpu_s_per_gib: f64,
}

/// Where a `bytes_read` came from.
pub const READ_FROM_EVENT: &str = "event: data.manifest.bytes_read";
pub const READ_ASSUMED: &str =
    "assumed every byte: the succeeded event has no data.manifest.bytes_read";

/// The unchanged redeploy of many small files.
#[derive(Debug, Serialize)]
pub struct Redeploy {
    pub files: usize,
    pub bytes: u64,
    pub first_deploy_wall_s: f64,
    /// Listing the same prefix with the same client, nothing else: the
    /// limit of a redeploy that reads nothing.
    pub list_limit_s: f64,
    pub wall_s: f64,
    pub pipeline_s: Option<f64>,
    pub bytes_read: u64,
    pub bytes_read_ratio: f64,
    pub bytes_read_source: &'static str,
    pub cache_hits: Option<u64>,
    pub peak_rss_mib: f64,
}

/// A new build under a new prefix with 1% of the files changed.
#[derive(Debug, Serialize)]
pub struct NewBuild {
    pub files: usize,
    pub changed_files: usize,
    pub bytes: u64,
    pub wall_s: f64,
    pub pipeline_s: Option<f64>,
    pub bytes_read: u64,
    pub bytes_read_ratio: f64,
    pub bytes_read_source: &'static str,
    pub files_uploaded: Option<u64>,
}

/// Small unchanged redeploys through RabbitMQ, one worker process.
#[derive(Debug, Serialize)]
pub struct Broker {
    pub jobs: usize,
    pub sites: usize,
    pub files_per_job: usize,
    pub wall_s: f64,
    pub jobs_per_s: f64,
    pub succeeded: usize,
    pub failed: usize,
    pub worker_peak_rss_mib: f64,
    /// The worker's CPU time over its whole life (warm-up included).
    pub worker_cpu_s: f64,
}

/// Four large bundles at once through one worker of concurrency 4.
#[derive(Debug, Serialize)]
pub struct Stress {
    pub jobs: usize,
    pub files_per_job: usize,
    pub bytes_per_job: u64,
    pub wall_s: f64,
    pub worker_peak_rss_mib: f64,
}

/// Four bundles of 100,000 files (archives) at once through one worker of
/// concurrency 4.
#[derive(Debug, Serialize)]
pub struct Huge {
    pub jobs: usize,
    pub files_per_job: usize,
    pub bytes_per_job: u64,
    pub wall_s: f64,
    pub worker_peak_rss_mib: f64,
}

/// One figure against its target.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub figure: String,
    pub value: Option<f64>,
    /// `>=`, `<=` or `<`.
    pub op: &'static str,
    pub target: f64,
    /// `PASS`, `MISS`, or `SKIPPED` (not measured).
    pub result: &'static str,
}

impl Target {
    fn new(figure: String, value: Option<f64>, op: &'static str, target: f64) -> Target {
        let result = match value {
            None => "SKIPPED",
            Some(v) => {
                let pass = match op {
                    ">=" => v >= target,
                    "<=" => v <= target,
                    _ => v < target,
                };
                if pass { "PASS" } else { "MISS" }
            }
        };
        Target {
            figure,
            value,
            op,
            target,
            result,
        }
    }
}

/// The targets, judged on one server's figures.
pub fn targets(
    first: &BTreeMap<String, FirstDeploy>,
    redeploy: &Redeploy,
    build: &NewBuild,
    broker: &Broker,
    stress: &Stress,
    huge: &Huge,
) -> Vec<Target> {
    let mut out = Vec::new();
    for (shape, deploy) in first {
        let m = deploy.measured.as_ref();
        out.push(Target::new(
            format!("first_deploy.{shape}.ratio_to_limit"),
            m.map(|m| m.ratio_to_limit),
            ">=",
            0.7,
        ));
        out.push(Target::new(
            format!("first_deploy.{shape}.peak_rss_mib"),
            m.map(|m| m.peak_rss_mib),
            "<=",
            128.0,
        ));
    }
    out.push(Target::new(
        "unchanged_redeploy.wall_s".into(),
        Some(redeploy.wall_s),
        "<=",
        2.0,
    ));
    out.push(Target::new(
        "unchanged_redeploy.bytes_read_ratio".into(),
        Some(redeploy.bytes_read_ratio),
        "<",
        0.01,
    ));
    out.push(Target::new(
        "new_build_1pct_changed.bytes_read_ratio".into(),
        Some(build.bytes_read_ratio),
        "<",
        0.02,
    ));
    out.push(Target::new(
        "broker.jobs_per_s".into(),
        Some(broker.jobs_per_s),
        ">=",
        50.0,
    ));
    out.push(Target::new(
        "stress.worker_peak_rss_mib".into(),
        Some(stress.worker_peak_rss_mib),
        "<=",
        128.0,
    ));
    out.push(huge_target(huge));
    out
}

/// The huge shape's one figure against the 128 MiB.
pub fn huge_target(huge: &Huge) -> Target {
    Target::new(
        "huge.worker_peak_rss_mib".into(),
        Some(huge.worker_peak_rss_mib),
        "<=",
        128.0,
    )
}
