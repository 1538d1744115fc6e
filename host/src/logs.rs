//! The step's stdout and stderr, captured line by line with a timestamp, up
//! to the run's log limit; beyond it bytes are dropped (never blocking or
//! failing the guest) and a notice says how many.

use bytes::Bytes;
use std::sync::{Arc, Mutex};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Which stream a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    /// The step's standard output.
    Stdout,
    /// The step's standard error, where a Rust guest's panic message goes.
    Stderr,
    /// A line the host adds, e.g. the truncation notice.
    Host,
}

/// One line of a step's logs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogLine {
    /// Where the line came from: the step's stdout or stderr, or the host.
    pub stream: LogStream,
    /// Milliseconds since the Unix epoch when the line was completed.
    pub at_ms: u64,
    /// The line without its line ending; invalid UTF-8 is replaced by U+FFFD.
    pub text: String,
}

/// The most a guest may hand over in one write; keeps each copy small.
const WRITE_PERMIT: usize = 64 * 1024;

#[derive(Default)]
struct Capture {
    lines: Vec<LogLine>,
    partial: [Vec<u8>; 2],
    kept: usize,
    dropped: usize,
    notes: usize,
}

/// Host notes kept per run (a step refused a million times gets a hundred).
const MAX_NOTES: usize = 100;

/// Shared sink for one run's stdout and stderr.
#[derive(Clone)]
pub(crate) struct LogSink {
    limit: usize,
    capture: Arc<Mutex<Capture>>,
}

impl LogSink {
    pub(crate) fn new(limit: usize) -> Self {
        Self { limit, capture: Arc::default() }
    }

    /// A WASI output stream writing into this sink as `stream`.
    pub(crate) fn pipe(&self, stream: LogStream) -> LogPipe {
        LogPipe { sink: self.clone(), stream }
    }

    /// Adds a line from the host (e.g. why a request was refused) among the
    /// step's logs, where its author looks first.
    pub(crate) fn note(&self, text: &str) {
        let mut capture = self.capture.lock().unwrap_or_else(|p| p.into_inner());
        capture.notes += 1;
        if capture.notes <= MAX_NOTES {
            capture.lines.push(line_of(LogStream::Host, text.as_bytes()));
        }
    }

    fn write(&self, stream: LogStream, mut bytes: &[u8]) {
        let mut capture = self.capture.lock().unwrap_or_else(|p| p.into_inner());
        let room = self.limit.saturating_sub(capture.kept);
        if bytes.len() > room {
            capture.dropped += bytes.len() - room;
            bytes = &bytes[..room];
        }
        capture.kept += bytes.len();
        let slot = usize::from(stream == LogStream::Stderr);
        for piece in bytes.split_inclusive(|b| *b == b'\n') {
            if let Some(line) = piece.strip_suffix(b"\n") {
                let mut full = std::mem::take(&mut capture.partial[slot]);
                full.extend_from_slice(line);
                capture.lines.push(line_of(stream, &full));
            } else {
                capture.partial[slot].extend_from_slice(piece);
            }
        }
    }

    /// All lines, unfinished ones included, plus the truncation notice if
    /// anything was dropped; and whether logs were truncated.
    pub(crate) fn finish(&self) -> (Vec<LogLine>, bool) {
        let mut capture = self.capture.lock().unwrap_or_else(|p| p.into_inner());
        for (slot, stream) in [(0, LogStream::Stdout), (1, LogStream::Stderr)] {
            let rest = std::mem::take(&mut capture.partial[slot]);
            if !rest.is_empty() {
                capture.lines.push(line_of(stream, &rest));
            }
        }
        let truncated = capture.dropped > 0;
        if truncated {
            let notice = format!(
                "[stephost] logs truncated: the step wrote more than its {} log limit; {} more bytes were dropped",
                crate::base::units::human_bytes(self.limit),
                capture.dropped
            );
            capture.lines.push(line_of(LogStream::Host, notice.as_bytes()));
        }
        (std::mem::take(&mut capture.lines), truncated)
    }
}

fn line_of(stream: LogStream, bytes: &[u8]) -> LogLine {
    let at_ms = crate::base::clock::now_ms() as u64;
    let text = String::from_utf8_lossy(bytes);
    LogLine { stream, at_ms, text: text.strip_suffix('\r').unwrap_or(&text).to_string() }
}

/// One stream (stdout or stderr) of a [`LogSink`], as WASI sees it.
#[derive(Clone)]
pub(crate) struct LogPipe {
    sink: LogSink,
    stream: LogStream,
}

impl IsTerminal for LogPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Pollable for LogPipe {
    async fn ready(&mut self) {}
}

impl OutputStream for LogPipe {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.sink.write(self.stream, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT)
    }
}

impl tokio::io::AsyncWrite for LogPipe {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.sink.write(self.stream, buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_per_stream_and_partial_lines_kept() {
        let sink = LogSink::new(1024);
        sink.write(LogStream::Stdout, b"hel");
        sink.write(LogStream::Stderr, b"oops\n");
        sink.write(LogStream::Stdout, b"lo\nrest");
        let (lines, truncated) = sink.finish();
        let got: Vec<_> = lines.iter().map(|l| (l.stream, l.text.as_str())).collect();
        assert_eq!(
            got,
            [(LogStream::Stderr, "oops"), (LogStream::Stdout, "hello"), (LogStream::Stdout, "rest")]
        );
        assert!(!truncated);
    }

    #[test]
    fn logs_beyond_the_limit_are_dropped_with_a_notice() {
        let sink = LogSink::new(10);
        sink.write(LogStream::Stdout, b"0123456789abcdef\n");
        let (lines, truncated) = sink.finish();
        assert!(truncated);
        assert_eq!(lines[0].text, "0123456789");
        assert_eq!(lines[1].stream, LogStream::Host);
        assert!(lines[1].text.contains("7 more bytes were dropped"), "{}", lines[1].text);
    }
}
