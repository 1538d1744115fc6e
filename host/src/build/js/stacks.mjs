// ---- stephost JS stacks: a failed step's stack in the user's file and lines ----
// `bundle.cjs` appends the bundle's source map (as a string, its sources
// named as the user sees them); it is decoded only when a step fails.
import { SourceMapConsumer } from 'stephost-toolchain:source-map-js/lib/source-map-consumer.js';

const BUNDLE = /^(.*?)@(.*bundle\.mjs):(\d+):(\d+)$/;
let consumer;

function decoder() {
  if (consumer === undefined) {
    const found = globalThis[Symbol.for('stephost.sourcemap')];
    consumer = found ? { ...found, map: new SourceMapConsumer(JSON.parse(found.map)) } : null;
  }
  return consumer;
}

// One frame of SpiderMonkey's `fn@file:line:column` (1-based column) in the
// user's terms, or the frame as it was.
function frame(text, decoded) {
  const m = BUNDLE.exec(text);
  if (!m) return { text, file: null };
  const at = decoded.map.originalPositionFor({ line: Number(m[3]), column: Number(m[4]) - 1 });
  if (at.source === null) return { text, file: null };
  let column = at.column + 1;
  const open = decoded.bodyOpen;
  if (open && at.source === decoded.user && at.line === open.line && column > open.shift) column -= open.shift;
  const where = `${at.source}:${at.line}:${column}`;
  return { text: `    at ${m[1] || '<anonymous>'} (${where})`, file: at.source, where };
}

// The error's stack with each bundle frame mapped back, and where it
// happened: the first frame in the user's file (or else the first frame
// outside stephost's shims), for the step's one-line failure.
export function mappedStack(error) {
  const stack = typeof error?.stack === 'string' ? error.stack : '';
  const lines = stack.split('\n').filter((line) => line !== '');
  try {
    const decoded = decoder();
    if (decoded !== null) {
      const frames = lines.map((line) => frame(line, decoded));
      const first = frames.find((f) => f.file === decoded.user) ?? frames.find((f) => f.file && !f.file.startsWith('stephost/'));
      return { stack: [String(error), ...frames.map((f) => f.text)].join('\n'), where: first?.where ?? null };
    }
  } catch {
    // An unreadable map leaves the stack as the engine wrote it.
  }
  return { stack: [String(error), ...lines].join('\n'), where: null };
}
