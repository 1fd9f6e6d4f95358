//! The producer and consumer examples under `examples/`, run as a platform
//! team would run them, against the real broker and a real worker: a job
//! each one publishes deploys, and each sees its outcome. Each validates the
//! job against the contract's JSON Schema first, so a broken job is refused
//! before anything is published.
//!
//! The tools come from `.ci/run`: pika, jsonschema and check-jsonschema in
//! the project's virtualenv, amqplib and Ajv in `examples/node`
//! (`npm ci`), Debian's amqp-tools.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::helpers::amqp::TEST_AMQP_URL;
use crate::helpers::app::TestApp;
use crate::helpers::files::repo_path;
use crate::helpers::s3::S3Server;

/// A program of the project's virtualenv.
fn venv(program: &str) -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".cache/wfp-deployer/venv/bin").join(program)
}

/// A command with the broker names of `app` in its environment, and the
/// virtualenv first on its `PATH`.
fn example(app: &TestApp, program: impl Into<PathBuf>) -> Command {
    let program = program.into();
    let mut cmd = Command::new(&program);
    let path = std::env::var("PATH").unwrap_or_default();
    let venv_bin = venv("python3");
    let venv_dir = venv_bin.parent().expect("the venv's bin");
    cmd.env("PATH", format!("{}:{path}", venv_dir.display()))
        .env("AMQP_URL", TEST_AMQP_URL)
        .env("WFP_JOBS_EXCHANGE", &app.settings.amqp.jobs_exchange)
        .env("WFP_JOBS_ROUTING_KEY", &app.settings.amqp.jobs_routing_key)
        .env("WFP_EVENTS_EXCHANGE", &app.settings.amqp.events_exchange)
        .env("WFP_WAIT_SECONDS", "60");
    cmd
}

fn run(mut cmd: Command, what: &str, hint: &str) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("{what}: {e}; {hint}"))
}

/// An app with a one-page site and a job for it, written to a file.
async fn app_with_job(job_id: &str) -> (TestApp, Value, tempfile::NamedTempFile) {
    let app = TestApp::spawn(S3Server::Moto).await;
    let prefix = format!("{job_id}/");
    app.bucket
        .put(format!("{prefix}index.html"), b"<h1>example</h1>".to_vec())
        .await;
    let job = app.job(job_id, job_id, &prefix);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), job.to_string()).unwrap();
    (app, job, file)
}

/// The last line of a program's standard output, as JSON.
fn last_json_line(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_else(|| {
        panic!(
            "no output; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"))
}

fn assert_succeeded(event: &Value, job_id: &str) {
    assert_eq!(event["type"], "wfp.deploy.succeeded", "{event}");
    assert_eq!(event["id"], format!("{job_id}:succeeded"));
}

#[tokio::test(flavor = "multi_thread")]
async fn python_producer_and_watcher_deploy_a_job_and_see_it() {
    const HINT: &str = "install the examples' tools: pip install -r examples/python/requirements.txt into ~/.cache/wfp-deployer/venv (as .ci/run does)";
    let (mut app, job, file) = app_with_job("py-example-1").await;
    let dir = repo_path("examples/python");

    // The watcher binds first and says so; then nothing can be missed.
    let mut watcher = example(&app, venv("python3"));
    watcher
        .arg(dir.join("watch_events.py"))
        .args(["--job-id", "py-example-1", "--timeout", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut watcher = watcher
        .spawn()
        .unwrap_or_else(|e| panic!("watcher: {e}; {HINT}"));
    let mut stderr = BufReader::new(watcher.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    assert!(first.starts_with("watching "), "watcher: {first}");

    let mut producer = example(&app, venv("python3"));
    producer.arg(dir.join("producer.py")).arg(file.path());
    let out = run(producer, "producer", HINT);
    assert!(
        out.status.success(),
        "producer: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let watched = watcher.wait_with_output().unwrap();
    assert_eq!(watched.status.code(), Some(0), "the watcher saw no success");
    let events: Vec<Value> = String::from_utf8_lossy(&watched.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.first().unwrap()["type"], "wfp.deploy.started");
    assert_succeeded(events.last().unwrap(), "py-example-1");
    assert_eq!(
        app.terminal_event().await.json["id"],
        "py-example-1:succeeded"
    );

    // A broken job is refused before publishing, naming the field.
    let mut broken = job.clone();
    broken["script_name"] = "Not A Script".into();
    std::fs::write(file.path(), broken.to_string()).unwrap();
    let mut producer = example(&app, venv("python3"));
    producer.arg(dir.join("producer.py")).arg(file.path());
    let out = run(producer, "producer", HINT);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("script_name"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn node_producer_deploys_a_job_and_gets_its_outcome_on_reply_to() {
    const HINT: &str = "install node and the example's packages: (cd examples/node && npm ci)";
    assert!(
        repo_path("examples/node/node_modules/amqplib").is_dir(),
        "examples/node/node_modules is missing; {HINT}"
    );
    let (mut app, job, file) = app_with_job("node-example-1").await;
    let mut producer = example(&app, "node");
    producer
        .arg(repo_path("examples/node/producer.mjs"))
        .arg(file.path());
    let out = run(producer, "node producer", HINT);
    assert!(
        out.status.success(),
        "node producer: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_succeeded(&last_json_line(&out), "node-example-1");
    assert_eq!(
        app.terminal_event().await.json["id"],
        "node-example-1:succeeded"
    );

    let mut broken = job.clone();
    broken["labels"] = serde_json::json!({"k": 1});
    std::fs::write(file.path(), broken.to_string()).unwrap();
    let mut producer = example(&app, "node");
    producer
        .arg(repo_path("examples/node/producer.mjs"))
        .arg(file.path());
    let out = run(producer, "node producer", HINT);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/labels/k"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn shell_example_deploys_a_job_and_gets_its_outcome_on_reply_to() {
    const HINT: &str = "install amqp-tools (apt-get install amqp-tools) and check-jsonschema (pip, in ~/.cache/wfp-deployer/venv), as .ci/run does";
    let (mut app, job, file) = app_with_job("sh-example-1").await;
    let mut script = example(&app, "bash");
    script
        .arg(repo_path("examples/shell/publish.sh"))
        .arg(file.path());
    let out = run(script, "shell example", HINT);
    assert!(
        out.status.success(),
        "shell example: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_succeeded(&last_json_line(&out), "sh-example-1");
    assert_eq!(
        app.terminal_event().await.json["id"],
        "sh-example-1:succeeded"
    );

    let mut broken = job.clone();
    broken["bundle"]["prefix"] = "/absolute".into();
    std::fs::write(file.path(), broken.to_string()).unwrap();
    let mut script = example(&app, "bash");
    script
        .arg(repo_path("examples/shell/publish.sh"))
        .arg(file.path());
    let out = run(script, "shell example", HINT);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("prefix"));
    app.stop().await;
}
