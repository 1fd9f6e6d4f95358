//! The soak's jobs: which script and build each one deploys, the small
//! build each one's bundle holds in S3 (put before the run), its contract v1
//! body, and the malformed messages published among them.
//!
//! Every build's `index.html` names its script and build, so the bytes the
//! simulator serves for a script say which job's build is live.

use anyhow::Context;
use aws_sdk_s3::primitives::ByteStream;
use futures::{StreamExt, TryStreamExt, stream};
use serde_json::{Value, json};

/// One job of the run.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub id: String,
    pub script: String,
    /// Builds of one script are numbered in publishing order.
    pub build: usize,
}

impl JobSpec {
    pub fn prefix(&self, run: &str) -> String {
        format!("soak/{run}/{}/b{}/", self.script, self.build)
    }

    /// The bytes of the build's `index.html`.
    pub fn index_html(&self, run: &str) -> Vec<u8> {
        let mut page = format!(
            "<!doctype html><h1>soak {run}: {} build {}</h1>\n",
            self.script, self.build
        );
        // A little text, so a build is more than a header.
        for line in 0..40 {
            page.push_str(&format!(
                "<p>line {line} of {} {}</p>\n",
                self.script, self.build
            ));
        }
        page.into_bytes()
    }

    /// The build's files: (path below the prefix, bytes). `common.css` is
    /// the same in every build of a script, as unchanged files are.
    fn files(&self, run: &str) -> Vec<(String, Vec<u8>)> {
        vec![
            ("index.html".into(), self.index_html(run)),
            (
                "common.css".into(),
                format!("/* {} */ body {{ margin: 0 }}\n", self.script).into_bytes(),
            ),
            (
                "app.js".into(),
                format!("console.log({:?}, {});\n", self.script, self.build).into_bytes(),
            ),
        ]
    }

    /// The job's body, with `created_at` as given.
    pub fn body(&self, run: &str, namespace: &str, bucket: &str, created_at: &str) -> Vec<u8> {
        json!({
            "version": 1,
            "job_id": self.id,
            "namespace": namespace,
            "script_name": self.script,
            "bundle": {"bucket": bucket, "prefix": self.prefix(run)},
            "labels": {"soak": run},
            "created_at": created_at,
        })
        .to_string()
        .into_bytes()
    }
}

/// `regular` jobs spread over `scripts` scripts (job `i` to script
/// `i % scripts`), then `bursts` bursts of `burst_len` builds of one script
/// each.
pub fn plan(
    run: &str,
    regular: usize,
    scripts: usize,
    bursts: usize,
    burst_len: usize,
) -> (Vec<JobSpec>, Vec<Vec<JobSpec>>) {
    let regular_jobs = (0..regular)
        .map(|i| JobSpec {
            id: format!("soak-{run}-{i}"),
            script: format!("s{}", i % scripts),
            build: i / scripts,
        })
        .collect();
    let bursts = (0..bursts)
        .map(|b| {
            (0..burst_len)
                .map(|n| JobSpec {
                    id: format!("soak-{run}-burst{b}-{n}"),
                    script: format!("burst{b}"),
                    build: n,
                })
                .collect()
        })
        .collect();
    (regular_jobs, bursts)
}

/// Puts every job's build in `bucket`, 16 objects at a time.
pub async fn put_builds(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    run: &str,
    jobs: &[JobSpec],
) -> anyhow::Result<()> {
    let objects: Vec<(String, Vec<u8>)> = jobs
        .iter()
        .flat_map(|job| {
            let prefix = job.prefix(run);
            job.files(run)
                .into_iter()
                .map(move |(path, bytes)| (format!("{prefix}{path}"), bytes))
        })
        .collect();
    stream::iter(objects)
        .map(|(key, bytes)| async move {
            s3.put_object()
                .bucket(bucket)
                .key(&key)
                .body(ByteStream::from(bytes))
                .send()
                .await
                .map_err(|e| {
                    anyhow::anyhow!("{key}: {}", aws_sdk_s3::error::DisplayErrorContext(e))
                })
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await
        .context("putting the builds")?;
    Ok(())
}

/// A malformed message: its id (the AMQP `message_id`) and its exact body.
#[derive(Debug, Clone)]
pub struct Malformed {
    pub id: String,
    pub kind: &'static str,
    pub body: Vec<u8>,
}

/// One message of each kind a producer could get wrong: not JSON, not
/// UTF-8, wrong types, missing fields, and a body over `amqp.max_job_bytes`.
pub fn malformed(run: &str, namespace: &str, bucket: &str, max_job_bytes: usize) -> Vec<Malformed> {
    let id = |kind: &str| format!("soak-{run}-bad-{kind}");
    let mut invalid_utf8 = br#"{"version": 1, "job_id": "bad-utf8-"#.to_vec();
    invalid_utf8.extend_from_slice(&[0xff, 0xfe, 0xc3, 0x28]);
    invalid_utf8.extend_from_slice(br#"", "namespace": "x"}"#);
    let oversize: Value = json!({
        "version": 1,
        "job_id": id("oversize"),
        "namespace": namespace,
        "script_name": "oversize",
        "bundle": {"bucket": bucket, "prefix": "soak/none/"},
        "labels": {"pad": "a".repeat(max_job_bytes + max_job_bytes / 2)},
    });
    vec![
        Malformed {
            id: id("not-json"),
            kind: "not JSON",
            body: b"soak: this is not JSON {".to_vec(),
        },
        Malformed {
            id: id("utf8"),
            kind: "invalid UTF-8",
            body: invalid_utf8,
        },
        Malformed {
            id: id("types"),
            kind: "wrong types",
            body: json!({
                "version": "1",
                "job_id": id("types"),
                "namespace": 7,
                "script_name": ["x"],
                "bundle": "nope",
            })
            .to_string()
            .into_bytes(),
        },
        Malformed {
            id: id("missing"),
            kind: "missing fields",
            body: json!({"version": 1, "job_id": id("missing")})
                .to_string()
                .into_bytes(),
        },
        Malformed {
            id: id("oversize"),
            kind: "oversize body",
            body: oversize.to_string().into_bytes(),
        },
    ]
}
