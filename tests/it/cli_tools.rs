//! The operator commands (`enqueue`, `watch`, `dlq`), run as the binary
//! against the real broker, with a real worker ([`TestApp`]) deploying
//! from a real S3 server to the simulator.
//!
//! The binary gets a clean environment naming the test's own broker names,
//! so tests run in parallel on one broker like every other test.

use std::process::Stdio;
use std::time::Duration;

use secrecy::ExposeSecret;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use wfp_deployer::config::Settings;

pub mod dlq;
mod docs;
mod enqueue;
mod progress;
mod watch;

/// How long a command may take before the test fails.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// What a clean environment needs for the binary to use `settings`' broker
/// and names (and find `PATH` and the config directory).
pub fn broker_env(settings: &Settings) -> Vec<(&'static str, String)> {
    let amqp = &settings.amqp;
    vec![
        ("PATH", std::env::var("PATH").unwrap_or_default()),
        (
            "WFP_CONFIG_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config").to_string(),
        ),
        ("AMQP_URL", amqp.url.expose_secret().to_string()),
        ("WFP__AMQP__JOBS_EXCHANGE", amqp.jobs_exchange.clone()),
        ("WFP__AMQP__JOBS_ROUTING_KEY", amqp.jobs_routing_key.clone()),
        ("WFP__AMQP__JOBS_QUEUE", amqp.jobs_queue.clone()),
        (
            "WFP__AMQP__DEAD_LETTER_EXCHANGE",
            amqp.dead_letter_exchange.clone(),
        ),
        (
            "WFP__AMQP__DEAD_LETTER_QUEUE",
            amqp.dead_letter_queue.clone(),
        ),
        ("WFP__AMQP__EVENTS_EXCHANGE", amqp.events_exchange.clone()),
        ("WFP__AMQP__EVENTS_LOG_QUEUE", amqp.events_log_queue.clone()),
    ]
}

/// The binary with a clean environment pointing at `settings`' broker and
/// names; it is killed if the test drops it.
pub fn wfp(settings: &Settings) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wfp-deployer"));
    cmd.env_clear()
        .envs(broker_env(settings))
        .env("WFP__AMQP__CONFIRM_TIMEOUT", "5s")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// What a finished command printed, and how it ended.
#[derive(Debug)]
pub struct Finished {
    pub success: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the binary with `args` to its end (at most [`COMMAND_TIMEOUT`]).
pub async fn run(settings: &Settings, args: &[&str]) -> Finished {
    run_with(wfp(settings).args(args)).await
}

/// Runs a prepared command to its end.
pub async fn run_with(cmd: &mut Command) -> Finished {
    let output = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).output();
    let output = tokio::time::timeout(COMMAND_TIMEOUT, output)
        .await
        .expect("the command ends within 60 s")
        .expect("the binary runs");
    Finished {
        success: output.status.success(),
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A long-running command (`watch`), read line by line.
pub struct Running {
    _child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Running {
    /// Starts the binary and waits until it wrote `ready` on standard error
    /// (so a test publishes only once it is subscribed).
    pub async fn start(mut cmd: Command, ready: &str) -> Running {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let waited = tokio::time::timeout(COMMAND_TIMEOUT, async {
            let mut seen = String::new();
            while let Ok(Some(line)) = stderr.next_line().await {
                seen.push_str(&line);
                seen.push('\n');
                if line.contains(ready) {
                    return Ok(());
                }
            }
            Err(seen)
        })
        .await
        .expect("the command gets ready within 60 s");
        if let Err(seen) = waited {
            panic!("the command ended before {ready:?}: {seen}");
        }
        // Later warnings still have somewhere to go.
        tokio::spawn(async move { while let Ok(Some(_)) = stderr.next_line().await {} });
        let stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        Running {
            _child: child,
            stdout,
        }
    }

    /// The next line on standard output (fails the test after 60 s).
    pub async fn line(&mut self) -> String {
        tokio::time::timeout(COMMAND_TIMEOUT, self.stdout.next_line())
            .await
            .expect("a line within 60 s")
            .expect("reading stdout")
            .expect("the command is still running")
    }
}
