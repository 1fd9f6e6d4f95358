//! The worker processes under soak: `wfp-deployer worker` children of the
//! release binary, each with an instance name of the run (so its broker
//! connections can be told apart from every other process's), its own ops
//! port (to wait for `/readyz`), and a log appended to across restarts.
//! Killed with SIGKILL, stopped with SIGTERM and started again.

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::process::{self, Guarded};
use crate::stack::{Stack, free_port};

/// How long a worker may take to become ready, and to exit after SIGTERM
/// (its `shutdown_grace` plus room for closing).
const READY_TIMEOUT: Duration = Duration::from_secs(90);
const EXIT_TIMEOUT: Duration = Duration::from_secs(60);

struct Worker {
    child: Option<Guarded>,
    ops: String,
}

pub struct Fleet<'a> {
    stack: &'a Stack,
    /// Variables over the stack's environment (broker names, delays).
    env: Vec<(String, String)>,
    /// Every instance name starts so.
    pub instance_prefix: String,
    workers: Vec<Worker>,
    /// Graceful stops that did not exit 0 in time.
    pub bad_exits: Vec<String>,
    pub restarts: usize,
}

impl<'a> Fleet<'a> {
    pub fn new(stack: &'a Stack, env: Vec<(String, String)>, run: &str) -> Fleet<'a> {
        Fleet {
            stack,
            env,
            instance_prefix: format!("soak-{run}-w"),
            workers: Vec::new(),
            bad_exits: Vec::new(),
            restarts: 0,
        }
    }

    fn log(&self, i: usize) -> PathBuf {
        self.stack.run_dir.join(format!("worker-{i}.log"))
    }

    /// Starts `count` workers and waits until each is ready.
    pub async fn start(&mut self, count: usize) -> anyhow::Result<()> {
        for i in 0..count {
            let worker = self.spawn(i)?;
            self.workers.push(worker);
        }
        for i in 0..count {
            self.wait_ready(i).await?;
        }
        Ok(())
    }

    fn spawn(&self, i: usize) -> anyhow::Result<Worker> {
        let ops = format!("127.0.0.1:{}", free_port()?);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log(i))?;
        let child = self
            .stack
            .command()
            .arg("worker")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("WFP__OPS__LISTEN", &ops)
            .env(
                "WFP__WORKER__INSTANCE",
                format!("{}{i}", self.instance_prefix),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting wfp-deployer worker")?;
        Ok(Worker {
            child: Some(Guarded::new(child)),
            ops,
        })
    }

    /// Polls worker `i`'s `/readyz` until it answers 200.
    pub async fn wait_ready(&self, i: usize) -> anyhow::Result<()> {
        let http = reqwest::Client::new();
        let url = format!("http://{}/readyz", self.workers[i].ops);
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            let answer = http.get(&url).send().await;
            if answer.is_ok_and(|a| a.status().is_success()) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        bail!(
            "worker {i} was not ready on {url} within {READY_TIMEOUT:?} (log: {})",
            self.log(i).display()
        )
    }

    /// SIGKILL to worker `i` (dropping its guard kills and reaps it), then
    /// a new worker in its place.
    pub async fn kill_and_restart(&mut self, i: usize) -> anyhow::Result<()> {
        drop(self.workers[i].child.take());
        self.workers[i] = self.spawn(i)?;
        self.restarts += 1;
        self.wait_ready(i).await
    }

    /// SIGTERM to worker `i`, waits for it to exit; a status other than 0
    /// (or no exit in time) is noted in `bad_exits`.
    pub async fn stop(&mut self, i: usize) -> anyhow::Result<()> {
        let Some(guard) = self.workers[i].child.take() else {
            return Ok(());
        };
        let pid = guard.pid().context("the worker is gone")?;
        process::terminate(pid)?;
        let mut child = guard.disarm().context("the worker is gone")?;
        let started = Instant::now();
        let status: Option<ExitStatus> = tokio::task::spawn_blocking(move || {
            loop {
                match child.try_wait() {
                    Ok(Some(status)) => return Some(status),
                    Ok(None) if started.elapsed() < EXIT_TIMEOUT => {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        return None;
                    }
                }
            }
        })
        .await?;
        match status {
            Some(s) if s.success() => {}
            Some(s) => self
                .bad_exits
                .push(format!("worker {i}: SIGTERM ended it with {s}")),
            None => self.bad_exits.push(format!(
                "worker {i}: still running {EXIT_TIMEOUT:?} after SIGTERM (killed)"
            )),
        }
        Ok(())
    }

    /// Stops each worker with SIGTERM and starts its successor, one at a
    /// time, as a rolling deployment does.
    pub async fn rolling_restart(&mut self) -> anyhow::Result<()> {
        for i in 0..self.workers.len() {
            self.stop(i).await?;
            self.workers[i] = self.spawn(i)?;
            self.restarts += 1;
            self.wait_ready(i).await?;
        }
        Ok(())
    }

    /// Stops every worker with SIGTERM.
    pub async fn stop_all(&mut self) -> anyhow::Result<()> {
        for i in 0..self.workers.len() {
            self.stop(i).await?;
        }
        Ok(())
    }
}
