//! `wfp-deployer completions SHELL` and `wfp-deployer man`: shell
//! completions and man pages, generated from the same clap definitions as
//! `--help`, so none of them can drift from the flags the binary takes.

use std::path::PathBuf;

use anyhow::Context;
use clap::CommandFactory;

use super::Cli;

#[derive(Debug, Clone, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ManArgs {
    /// Write one page per command into this directory (wfp-deployer.1,
    /// wfp-deployer-enqueue.1, ...) instead of printing the main page.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Prints the completion script for `shell` on standard output.
pub fn completions(args: &CompletionsArgs) {
    let mut command = Cli::command();
    let name = command.get_name().to_string();
    clap_complete::generate(args.shell, &mut command, name, &mut std::io::stdout());
}

/// Prints the main man page, or writes every command's page to a directory.
pub fn man(args: &ManArgs) -> anyhow::Result<()> {
    let command = Cli::command();
    match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("{}: creating", dir.display()))?;
            clap_mangen::generate_to(command, dir)
                .with_context(|| format!("{}: writing the man pages", dir.display()))?;
            eprintln!(
                "man pages written to {} (man -l {}/wfp-deployer.1)",
                dir.display(),
                dir.display()
            );
            Ok(())
        }
        None => clap_mangen::Man::new(command)
            .render(&mut std::io::stdout())
            .context("writing the man page"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_explains_itself_with_an_example() {
        let mut command = Cli::command();
        command.build();
        let mut missing = Vec::new();
        fn walk(cmd: &clap::Command, path: String, missing: &mut Vec<String>) {
            for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
                let path = format!("{path} {}", sub.get_name());
                let example = sub
                    .get_after_help()
                    .map(|h| h.to_string())
                    .unwrap_or_default();
                if sub.get_about().is_none() || !example.contains("wfp-deployer ") {
                    missing.push(path.clone());
                }
                walk(sub, path, missing);
            }
        }
        walk(&command, "wfp-deployer".into(), &mut missing);
        assert!(missing.is_empty(), "no description or example: {missing:?}");
    }

    #[test]
    fn every_argument_is_documented() {
        let mut command = Cli::command();
        command.build();
        let mut missing = Vec::new();
        fn walk(cmd: &clap::Command, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if arg.get_help().is_none() && !matches!(id, "help" | "version") {
                    missing.push(format!("{} {id}", cmd.get_name()));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, missing);
            }
        }
        walk(&command, &mut missing);
        assert!(missing.is_empty(), "undocumented: {missing:?}");
    }

    #[test]
    fn completions_and_man_pages_name_the_commands() {
        let mut command = Cli::command();
        let mut script = Vec::new();
        clap_complete::generate(
            clap_complete::Shell::Bash,
            &mut command,
            "wfp-deployer",
            &mut script,
        );
        let script = String::from_utf8(script).unwrap();
        for name in ["enqueue", "watch", "dlq", "console", "requeue"] {
            assert!(script.contains(name), "bash completion lacks {name}");
        }
        let mut page = Vec::new();
        clap_mangen::Man::new(Cli::command())
            .render(&mut page)
            .unwrap();
        let page = String::from_utf8(page).unwrap();
        assert!(page.contains(".TH wfp-deployer"), "{page}");
        assert!(page.contains("enqueue"), "{page}");
    }
}
