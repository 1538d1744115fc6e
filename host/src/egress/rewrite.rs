//! Find-and-replace over a byte stream that may split a needle across
//! chunks: the swap of placeholders for real secrets on the way out (exact
//! needles), and the redaction of every form of a real secret on the way
//! back (the vault's [`Redaction`]).

use crate::secrets::Redaction;
use aho_corasick::{AhoCorasick, MatchKind};
use bytes::Bytes;
use futures::Stream;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// What to do where a needle is found.
#[derive(Clone)]
pub(crate) enum Action {
    /// Put these bytes in its place.
    Replace(Vec<u8>),
    /// Stop: the stream fails with this reason.
    Refuse(String),
}

/// The needles of a run, compiled once: building a matcher costs far more
/// than running one, so every request of the run shares it.
pub(crate) struct Needles {
    matcher: AhoCorasick,
    hold: usize,
}

impl Needles {
    /// Compiles `patterns` (indexes are kept: an empty pattern never
    /// matches); `None` when there is nothing to look for.
    pub(crate) fn new<P: AsRef<[u8]>>(patterns: &[P]) -> Option<Arc<Self>> {
        const NEVER: &[u8] = b"\0stephost: a needle that never matches\0";
        if patterns.iter().all(|p| p.as_ref().is_empty()) {
            return None;
        }
        let patterns: Vec<&[u8]> =
            patterns.iter().map(|p| if p.as_ref().is_empty() { NEVER } else { p.as_ref() }).collect();
        let longest = patterns.iter().map(|p| p.len()).max().unwrap_or(1);
        let matcher = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&patterns)
            .expect("needles are plain bytes");
        Some(Arc::new(Self { matcher, hold: longest - 1 }))
    }

    /// Whether any needle occurs in `data`.
    pub(crate) fn found_in(&self, data: &[u8]) -> bool {
        self.matcher.is_match(data)
    }
}

/// What a rewriter does where it finds something.
#[derive(Clone)]
pub(crate) enum Rule {
    /// The swap on the way out: where needle `i` is found, `actions[i]`.
    Swap { needles: Arc<Needles>, actions: Arc<[Action]> },
    /// Redaction on the way back: every form of a sensitive value becomes
    /// its replacement.
    Redact(Arc<Redaction>),
}

impl Rule {
    /// Bytes to hold back: a match may start in them.
    fn hold(&self) -> usize {
        match self {
            Rule::Swap { needles, .. } => needles.hold,
            Rule::Redact(redaction) => redaction.hold(),
        }
    }
}

/// A stream rewriter: holds back the last `longest - 1` bytes of what it has
/// seen, since they may be the start of a needle.
pub(crate) struct Rewriter {
    rule: Rule,
    pending: Vec<u8>,
    seen: usize,
    limit: usize,
    /// Indexes of the swap needles that were replaced at least once.
    pub(crate) hits: Vec<usize>,
}

impl Rewriter {
    /// A rewriter applying `rule`, failing once more than `limit` bytes pass.
    pub(crate) fn new(rule: Rule, limit: usize) -> Self {
        Self { rule, pending: Vec::new(), seen: 0, limit, hits: Vec::new() }
    }

    /// Rewrites a whole buffer at once.
    pub(crate) fn rewrite_all(mut self, data: &[u8]) -> Result<(Vec<u8>, Vec<usize>), String> {
        let mut out = self.push(data)?.to_vec();
        out.extend_from_slice(&self.finish()?);
        Ok((out, self.hits))
    }

    /// Takes the next chunk; returns what can be passed on already.
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Result<Bytes, String> {
        self.seen += chunk.len();
        if self.seen > self.limit {
            return Err(format!(
                "the body is over the {} limit for secret scanning",
                crate::base::units::human_bytes(self.limit)
            ));
        }
        self.pending.extend_from_slice(chunk);
        let safe = self.pending.len().saturating_sub(self.rule.hold());
        self.drain(safe)
    }

    /// Passes on everything held back.
    pub(crate) fn finish(&mut self) -> Result<Bytes, String> {
        let all = self.pending.len();
        self.drain(all)
    }

    /// Rewrites matches that start before `safe` and emits up to the later
    /// of `safe` and the end of the last rewritten match.
    fn drain(&mut self, safe: usize) -> Result<Bytes, String> {
        let pending = &self.pending;
        let mut out = Vec::with_capacity(pending.len());
        let mut consumed = 0;
        match &self.rule {
            Rule::Swap { needles, actions } => {
                for found in needles.matcher.find_iter(pending) {
                    if found.start() >= safe {
                        break;
                    }
                    out.extend_from_slice(&pending[consumed..found.start()]);
                    let pattern = found.pattern().as_usize();
                    match &actions[pattern] {
                        Action::Replace(with) => out.extend_from_slice(with),
                        Action::Refuse(reason) => return Err(reason.clone()),
                    }
                    if !self.hits.contains(&pattern) {
                        self.hits.push(pattern);
                    }
                    consumed = found.end();
                }
            }
            Rule::Redact(redaction) => redaction.each_match(pending, |start, end, with| {
                if start >= safe {
                    return false;
                }
                out.extend_from_slice(&pending[consumed..start]);
                out.extend_from_slice(with);
                consumed = end;
                true
            }),
        }
        let emit = safe.max(consumed);
        out.extend_from_slice(&self.pending[consumed..emit]);
        self.pending.drain(..emit);
        Ok(Bytes::from(out))
    }
}

/// What a streaming rewrite did, read by the request's record: which rules
/// matched, and why it stopped the stream if it did.
#[derive(Default)]
pub(crate) struct Report {
    pub(crate) hits: Vec<usize>,
    pub(crate) refused: Option<String>,
}

/// A [`Report`] shared between the stream and the record.
pub(crate) type SharedReport = Arc<Mutex<Report>>;

/// A body stream passed through a [`Rewriter`].
pub(crate) struct RewriteStream<S> {
    inner: S,
    rewriter: Rewriter,
    report: SharedReport,
    finished: bool,
}

impl<S> RewriteStream<S> {
    pub(crate) fn new(inner: S, rewriter: Rewriter, report: SharedReport) -> Self {
        Self { inner, rewriter, report, finished: false }
    }
}

/// The error a rewritten stream ends with.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RewriteError<E> {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Inner(E),
}

impl<S, E> Stream for RewriteStream<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    type Item = Result<Bytes, RewriteError<E>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.finished {
                return Poll::Ready(None);
            }
            let step = match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(RewriteError::Inner(e)))),
                Poll::Ready(Some(Ok(chunk))) => this.rewriter.push(&chunk),
                Poll::Ready(None) => {
                    this.finished = true;
                    this.rewriter.finish()
                }
            };
            let mut report = this.report.lock().unwrap_or_else(|p| p.into_inner());
            report.hits.clone_from(&this.rewriter.hits);
            match step {
                Ok(out) if out.is_empty() => continue,
                Ok(out) => return Poll::Ready(Some(Ok(out))),
                Err(reason) => {
                    this.finished = true;
                    report.refused = Some(reason.clone());
                    return Poll::Ready(Some(Err(RewriteError::Refused(reason))));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewriter(rules: Vec<(&str, Action)>, limit: usize) -> Rewriter {
        let needles: Vec<&str> = rules.iter().map(|(n, _)| *n).collect();
        let actions = rules.into_iter().map(|(_, a)| a).collect();
        Rewriter::new(Rule::Swap { needles: Needles::new(&needles).unwrap(), actions }, limit)
    }

    fn swap(from: &'static str, to: &str) -> (&'static str, Action) {
        (from, Action::Replace(to.as_bytes().to_vec()))
    }

    fn run_in_chunks(rules: Vec<(&str, Action)>, input: &str, chunk: usize) -> Result<String, String> {
        let mut rewriter = rewriter(rules, usize::MAX);
        let mut out = Vec::new();
        for piece in input.as_bytes().chunks(chunk) {
            out.extend_from_slice(&rewriter.push(piece)?);
        }
        out.extend_from_slice(&rewriter.finish()?);
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn needles_split_across_chunks_of_any_size_are_replaced() {
        let input = "a PLACEHOLDER_1 b PLACEHOLDER_22 c PLACEHOLDER_1";
        let expected = "a real-one b real-two c real-one";
        for chunk in 1..=input.len() {
            let rules = vec![swap("PLACEHOLDER_1", "real-one"), swap("PLACEHOLDER_22", "real-two")];
            assert_eq!(run_in_chunks(rules, input, chunk).unwrap(), expected, "chunk size {chunk}");
        }
    }

    #[test]
    fn a_refused_needle_stops_the_stream_before_it_is_emitted() {
        let mut rewriter = rewriter(vec![("SECRET", Action::Refuse("not here".into()))], usize::MAX);
        let first = rewriter.push(b"hello SEC").unwrap();
        assert!(!first.windows(3).any(|w| w == b"SEC"), "the possible start is held back");
        assert_eq!(rewriter.push(b"RET tail").unwrap_err(), "not here");
    }

    #[test]
    fn empty_needles_never_match_and_keep_indexes() {
        let needles = Needles::new(&["", "b"]).unwrap();
        let actions = vec![Action::Refuse("empty".into()), Action::Replace(b"B".to_vec())];
        let rule = Rule::Swap { needles, actions: actions.into() };
        let (out, hits) = Rewriter::new(rule, usize::MAX).rewrite_all(b"abc").unwrap();
        assert_eq!((out.as_slice(), hits), (b"aBc".as_slice(), vec![1]));
        assert!(Needles::new(&[""]).is_none());
    }

    #[test]
    fn encoded_forms_split_across_chunks_of_any_size_are_redacted() {
        use crate::secrets::{Binding, Vault};
        let mut vault = Vault::default();
        let nowhere = Binding { hosts: Arc::default(), placements: Vec::new() };
        let placeholder = vault.seal("x.key", "real-secret-value-0123", nowhere);
        let body = format!(
            "raw real-secret-value-0123 json real\\u002dsecret-value-0123 hex {} b64 {}",
            hex::encode("real-secret-value-0123"),
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "x:real-secret-value-0123")
        );
        for chunk in 1..=body.len() {
            let mut rewriter = Rewriter::new(Rule::Redact(vault.redaction()), usize::MAX);
            let mut out = Vec::new();
            for piece in body.as_bytes().chunks(chunk) {
                out.extend_from_slice(&rewriter.push(piece).unwrap());
            }
            out.extend_from_slice(&rewriter.finish().unwrap());
            let out = String::from_utf8(out).unwrap();
            assert_eq!(out.matches(&placeholder).count(), 4, "chunk size {chunk}: {out}");
        }
    }

    #[test]
    fn the_limit_is_enforced() {
        let mut rewriter = rewriter(vec![swap("x", "y")], 10);
        assert!(rewriter.push(b"0123456789").is_ok());
        assert!(rewriter.push(b"!").unwrap_err().contains("limit"));
    }
}
