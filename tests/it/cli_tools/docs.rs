//! The binary explains itself: `--help` with examples on every command,
//! shell completions and man pages generated from the same definitions.

use super::run;
use crate::helpers::amqp::unique_settings;

const COMMANDS: &[&[&str]] = &[
    &["worker"],
    &["cloudflare-sim"],
    &["deploy"],
    &["enqueue"],
    &["upload-bundle"],
    &["check-config"],
    &["watch"],
    &["dlq"],
    &["dlq", "list"],
    &["dlq", "show"],
    &["dlq", "requeue"],
    &["dlq", "purge"],
    &["console"],
    &["completions"],
    &["man"],
];

#[tokio::test]
async fn every_command_has_help_with_an_example() {
    let (settings, _topology) = unique_settings();
    for command in COMMANDS {
        let mut args = command.to_vec();
        args.push("--help");
        let out = run(&settings, &args).await;
        assert!(out.success, "{command:?}: {out:?}");
        assert!(
            out.stdout.contains("Example"),
            "{command:?} --help has no example: {}",
            out.stdout
        );
        assert!(
            out.stdout.contains("wfp-deployer "),
            "{command:?}: {}",
            out.stdout
        );
    }
    let top = run(&settings, &["--help"]).await;
    assert!(
        top.stdout.contains("wfp-deployer enqueue job.json --wait"),
        "{}",
        top.stdout
    );
}

#[tokio::test]
async fn completions_for_bash_zsh_and_fish() {
    let (settings, _topology) = unique_settings();
    for shell in ["bash", "zsh", "fish"] {
        let out = run(&settings, &["completions", shell]).await;
        assert!(out.success, "{shell}: {out:?}");
        for word in ["enqueue", "watch", "dlq", "console", "older-than"] {
            assert!(out.stdout.contains(word), "{shell} completion lacks {word}");
        }
    }
    let unknown = run(&settings, &["completions", "tcsh"]).await;
    assert!(!unknown.success);
    assert!(
        unknown.stderr.contains("possible values"),
        "{}",
        unknown.stderr
    );
}

#[tokio::test]
async fn man_pages_for_the_binary_and_each_command() {
    let (settings, _topology) = unique_settings();
    let page = run(&settings, &["man"]).await;
    assert!(page.success, "{page:?}");
    assert!(
        page.stdout.starts_with(".ie"),
        "roff: {}",
        &page.stdout[..40.min(page.stdout.len())]
    );
    assert!(
        page.stdout.contains(".TH wfp-deployer 1"),
        "{}",
        page.stdout
    );
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().to_str().unwrap();
    let out = run(&settings, &["man", "--dir", dir_arg]).await;
    assert!(out.success, "{out:?}");
    for name in [
        "wfp-deployer.1",
        "wfp-deployer-enqueue.1",
        "wfp-deployer-dlq-requeue.1",
    ] {
        let page = std::fs::read_to_string(dir.path().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(page.contains(".SH"), "{name}");
    }
}
