//! The `stephost` command: parses the arguments (`cli::args`) and runs the
//! subcommand (`cli::dispatch`). Every error leaves here as one line on
//! stderr: `error: …`, or `{"error": "…"}` when `--json` was given.

mod cli;

use anyhow::Context;
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    forget_empty_stephost_variables();
    // Read from argv before parsing, so that clap's own errors are JSON too.
    let json = std::env::args_os().skip(1).take_while(|a| a != "--").any(|a| a == "--json");
    let cli = match cli::args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if json && error.use_stderr() => {
            return cli::output::fail(json, &cli::output::clap_line(&error));
        }
        Err(error) => error.exit(), // --help, --version, and usage errors for people
    };
    if cli.command.only_reads_local_files() {
        // `stephost apps list | head -1` ends quietly, as `ls` would, instead
        // of panicking on the closed pipe. Commands that use the network keep
        // SIGPIPE ignored: a peer closing a socket is an error they report.
        // SAFETY: nothing else runs yet; SIG_DFL is a valid disposition.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    // One run at a time goes fastest on one thread (no cross-thread
    // wake-ups on the egress path); the server runs many at once.
    let runtime = if cli.command.runs_many_at_once() {
        tokio::runtime::Builder::new_multi_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    };
    let result =
        runtime.context("cannot start the async runtime").and_then(|rt| rt.block_on(cli::dispatch(cli)));
    match result {
        Ok(code) => code,
        Err(error) => cli::output::fail(json, &cli::output::one_line(&error)),
    }
}

/// An empty `STEPHOST_DATA=` (or any `STEPHOST_` variable) means "not set",
/// not "a value is required".
fn forget_empty_stephost_variables() {
    for (name, value) in std::env::vars_os() {
        if value.is_empty() && name.to_string_lossy().starts_with("STEPHOST_") {
            // SAFETY: no other thread runs yet.
            unsafe { std::env::remove_var(name) };
        }
    }
}
