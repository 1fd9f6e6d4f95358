//! The local stack one S3 server's run talks to: the simulator the deploys
//! go to (and fresh ones for the raw upload limit, [`Stack::raw_sim`]), the
//! environment every child `wfp-deployer` process gets, and the settings it
//! loads from it.
//!
//! The bench loads its own settings from the very environment it hands the
//! children ([`Settings::load_from`]), so the limits it measures use the
//! same client settings (timeouts, concurrency) as the deploys.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use lapin::Connection;
use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
use wfp_deployer::amqp::Topology;
use wfp_deployer::config::Settings;

use crate::process::Guarded;

/// The API token both simulators accept.
const TOKEN: &str = "bench-token";
/// The account deploys go to.
pub const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";

/// An S3 server of the local stack (started by `scripts/services.sh`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Moto,
    S3s,
}

impl Server {
    pub fn parse(name: &str) -> anyhow::Result<Server> {
        match name.trim() {
            "moto" => Ok(Server::Moto),
            "s3s" | "s3s-fs" => Ok(Server::S3s),
            other => bail!("BENCH_SERVERS: unknown server {other:?} (moto, s3s)"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Server::Moto => "moto",
            Server::S3s => "s3s-fs",
        }
    }

    pub fn endpoint(self) -> &'static str {
        match self {
            Server::Moto => "http://127.0.0.1:9000",
            Server::S3s => "http://127.0.0.1:9100",
        }
    }
}

/// What one server's run needs to start children and reach the simulators.
pub struct Stack {
    pub bin: PathBuf,
    pub server: Server,
    pub run_dir: PathBuf,
    /// The simulator the deploys go to.
    pub sim_url: String,
    /// Variables set on every child (over the inherited environment).
    pub env: Vec<(String, String)>,
    /// Whether this build knows the digest cache's settings.
    pub cache_settings: bool,
    pub settings: Settings,
    _sim: Guarded,
}

impl Stack {
    /// Starts the simulator and works out the children's environment.
    pub async fn start(
        bin: &Path,
        repo: &Path,
        server: Server,
        run_dir: &Path,
        bucket: &str,
    ) -> anyhow::Result<Stack> {
        // Logs and job files of this run only.
        let _ = std::fs::remove_dir_all(run_dir);
        std::fs::create_dir_all(run_dir)
            .with_context(|| format!("{}: creating", run_dir.display()))?;
        let (sim, sim_url) = start_sim(bin, &run_dir.join("sim.log")).await?;
        let spool = run_dir.join("spool");
        std::fs::create_dir_all(&spool)?;
        let mut env: Vec<(String, String)> = [
            ("WFP_CONFIG_DIR", repo.join("config").display().to_string()),
            ("AWS_ENDPOINT_URL_S3", server.endpoint().to_string()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "wfptest".into()),
            ("AWS_SECRET_ACCESS_KEY", "wfptestsecret".into()),
            ("WFP__S3__FORCE_PATH_STYLE", "true".into()),
            ("WFP__LOG__FILTER", "warn".into()),
            ("WFP__WORKER__SPOOL_DIR", spool.display().to_string()),
            ("CLOUDFLARE_API_TOKEN", TOKEN.into()),
            ("CLOUDFLARE_ACCOUNT_ID", ACCOUNT.into()),
            ("CLOUDFLARE_API_BASE_URL", format!("{sim_url}/client/v4")),
            // The worker is measured, not Cloudflare's API budget: with the
            // shipped pacing (200 requests a minute) a 2,000-file first
            // deploy (one request per bucket) takes a minute and the broker
            // shape (a session and a PUT per job) runs at 1.7 jobs/s
            // whatever the worker does. README's Benchmarks say what the
            // real budget allows.
            ("WFP__CLOUDFLARE__MAX_REQUESTS_PER_MINUTE", "0".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        // The digest cache must outlive each `deploy` process to help the
        // next one: its shared index goes to the bench bucket. The binary
        // is asked whether it knows those settings (a build without the
        // cache refuses unknown keys); without them it runs as it is.
        let cache = [
            ("WFP__CACHE__BUCKET".to_string(), bucket.to_string()),
            (
                "WFP__CACHE__PREFIX".to_string(),
                "digest-cache/".to_string(),
            ),
        ];
        let cache_settings = Command::new(bin)
            .arg("check-config")
            .envs(
                env.iter()
                    .chain(&cache)
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        let settings = load(&repo.join("config"), &env)?;
        if cache_settings {
            env.extend(cache);
        }
        Ok(Stack {
            bin: bin.to_path_buf(),
            server,
            run_dir: run_dir.to_path_buf(),
            sim_url,
            env,
            cache_settings,
            settings,
            _sim: sim,
        })
    }

    /// A `wfp-deployer` command with the stack's environment.
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.bin);
        command.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        command
    }

    /// The S3 client the worker would build, with the same settings.
    pub async fn s3(&self) -> aws_sdk_s3::Client {
        let mut s3 = self.settings.s3.clone();
        s3.endpoint_url = Some(self.server.endpoint().to_string());
        s3.force_path_style = true;
        s3.access_key_id = Some("wfptest".into());
        s3.secret_access_key = Some("wfptestsecret".to_string().into());
        wfp_deployer::bundle::S3Storage::new(&s3, &self.settings.retry, 1)
            .await
            .client()
            .clone()
    }

    /// A simulator of its own with an empty store, for one try of the raw
    /// upload limit; stopped when the guard drops.
    pub async fn raw_sim(&self, attempt: usize) -> anyhow::Result<(Guarded, String)> {
        let log = self.run_dir.join(format!("sim-raw-{attempt}.log"));
        start_sim(&self.bin, &log).await
    }

    pub fn token(&self) -> &'static str {
        TOKEN
    }
}

/// The settings a child sees: the inherited environment plus `overrides`.
fn load(config_dir: &Path, overrides: &[(String, String)]) -> anyhow::Result<Settings> {
    let mut env: HashMap<String, String> = std::env::vars().collect();
    env.extend(overrides.iter().cloned());
    Settings::load_from(config_dir, None, &env).context("loading the children's settings")
}

/// A free loopback port (another process may take it before we do; the
/// simulator then fails to start and says so).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Starts `cloudflare-sim` from the release binary and waits for its health.
async fn start_sim(bin: &Path, log: &Path) -> anyhow::Result<(Guarded, String)> {
    let port = free_port()?;
    let log_file = std::fs::File::create(log)?;
    let child = Command::new(bin)
        .args(["cloudflare-sim", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--api-token", TOKEN, "--account", ACCOUNT])
        // Workers Paid's file limit, the worker's `limits.max_files`: the
        // huge shape deploys bundles at it.
        .args(["--max-files", "100000"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .spawn()
        .with_context(|| format!("{}: starting the simulator", bin.display()))?;
    let guarded = Guarded::new(child);
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let health = http.get(format!("{url}/__sim/health")).send().await;
        if health.is_ok_and(|r| r.status().is_success()) {
            return Ok((guarded, url));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!(
        "the simulator did not answer on {url} within 10 s (log: {})",
        log.display()
    )
}

/// Settings whose broker names all end in `suffix` (a run's own), and the
/// variables that give a child process the same.
pub fn isolated(base: &Settings, suffix: &str) -> (Settings, Vec<(String, String)>) {
    let mut settings = base.clone();
    let amqp = &mut settings.amqp;
    let mut overrides = Vec::new();
    for (key, name) in [
        ("JOBS_EXCHANGE", &mut amqp.jobs_exchange),
        ("JOBS_QUEUE", &mut amqp.jobs_queue),
        ("DEAD_LETTER_EXCHANGE", &mut amqp.dead_letter_exchange),
        ("DEAD_LETTER_QUEUE", &mut amqp.dead_letter_queue),
        ("EVENTS_EXCHANGE", &mut amqp.events_exchange),
        ("EVENTS_LOG_QUEUE", &mut amqp.events_log_queue),
    ] {
        name.push_str(suffix);
        overrides.push((format!("WFP__AMQP__{key}"), name.clone()));
    }
    (settings, overrides)
}

/// Deletes a run's queues (the worker's own, and `extra` ones such as a
/// tap) and exchanges, best effort.
pub async fn delete_topology(connection: &Connection, settings: &Settings, extra: &[String]) {
    let amqp = &settings.amqp;
    let mut queues = Topology::new(settings).own_queues();
    queues.extend(extra.iter().cloned());
    // A failed delete closes its channel, so each gets a fresh one.
    for queue in queues {
        if let Ok(channel) = connection.create_channel().await {
            let _ = channel
                .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
    }
    for exchange in [
        &amqp.jobs_exchange,
        &amqp.dead_letter_exchange,
        &amqp.events_exchange,
    ] {
        if let Ok(channel) = connection.create_channel().await {
            let _ = channel
                .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
                .await;
        }
    }
}
