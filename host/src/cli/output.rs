//! The one place that chooses between text and JSON, and that writes an
//! error: `error: …`, or `{"error": "…"}` on one line with `--json`.

use anyhow::Result;
use serde::Serialize;
use std::process::ExitCode;
pub use stephost::base::units::one_line;

/// Prints `value` as pretty JSON, or as `text` renders it for people.
pub fn emit<T: Serialize + ?Sized>(json: bool, value: &T, text: impl FnOnce(&T) -> String) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        print!("{}", text(value));
    }
    Ok(())
}

/// Writes one error line to stderr and returns exit code 2.
pub fn fail(json: bool, line: &str) -> ExitCode {
    if json {
        eprintln!("{}", serde_json::json!({ "error": line }));
    } else {
        eprintln!("error: {line}");
    }
    ExitCode::from(2)
}

/// A clap error's first line, without its `error: `.
pub fn clap_line(error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let first = rendered.lines().next().unwrap_or_default();
    first.strip_prefix("error: ").unwrap_or(first).to_string()
}
