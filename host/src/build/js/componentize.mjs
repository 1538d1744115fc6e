// ---- stephost componentize driver (run by `stephost build` with node) ----
// Runs componentize-js (StarlingMonkey) on the bundled step, with three
// changes to what it does:
// - Splicing the `stephost:step-js` world into the engine gives the same
//   result for every step yet takes most of a build (5 of 8 s on 2 cores):
//   it is cached, keyed by everything it reads (the engine, the features,
//   the WIT files and the world).
// - The generated bindings get two additions: the standard classes they
//   use resolved at build time (`WARM_BINDINGS_GLOBAL`) and an `export_run`
//   that is not `async` (`DIRECT_EXPORT_RUN`).
// - A failure prints its whole cause (the user's exception while the
//   module was loaded, with its location), never only node's stack frames:
//   stdout gets `{"message": …}` and the driver exits with code 3.
//
// argv[2] is a JSON object: { componentizeJs, source, wit, world, out,
// disable, cache, toolchain } (`toolchain`: where source-map-js is, to
// name the user's line through the bundle's map `<source>.map`).

import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';

const FAILED = 3;
const config = JSON.parse(process.argv[2]);
const from = (path) => import(pathToFileURL(join(config.componentizeJs, path)).href);

/** Every file below `dir`, sorted, as [relative path, bytes]. */
function treeOf(dir, prefix = '') {
  const files = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) files.push(...treeOf(path, `${prefix}${name}/`));
    else files.push([`${prefix}${name}`, readFileSync(path)]);
  }
  return files;
}

/** Writes `bytes` to `path` whole or not at all. */
function writeAtomically(path, bytes) {
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, bytes);
  renameSync(temp, path);
}

/**
 * Appended to the generated bindings, which componentize-js runs in a
 * global of their own (not the step's): at build time, so the snapshot
 * keeps them, it resolves the standard classes every call then uses in
 * that global. SpiderMonkey creates a standard class on its first use in a
 * global; left unresolved at build time, `Uint8Array`, `String`, `Promise`,
 * async functions, iterators and saved stacks were built again on every
 * run of every step (~40% of a trivial JS step's run).
 */
const WARM_BINDINGS_GLOBAL = `
{
  const bytes = new Uint8Array(new ArrayBuffer(16), 0, 8);
  new DataView(bytes.buffer).setUint32(0, 1, true);
  TEXT_ENCODER_UTF8.encodeInto('x', bytes);
  TEXT_DECODER_UTF8.decode(bytes);
  for (const x of [String(1), \`\${2}\`]) void x;
  for (const x of new Map([[1, 1]])) void x;
  for (const x of new Set([1])) void x;
  Object.entries({ a: 1 });
  JSON.stringify(JSON.parse('{"a":[1]}'));
  Number.isInteger(1);
  BigInt(1);
  Promise.resolve(1);
  (async () => 1)();
  void new Error('warm').stack;
  void new TypeError('warm').stack;
}
`;

/**
 * Appended to the generated bindings after `WARM_BINDINGS_GLOBAL`: the
 * `export_run` the engine calls, in place of componentize-js's, which is an
 * `async` function awaiting the step's `run` (a generator object, a promise
 * made and settled, each with its captured stack, on every run). This one
 * hands `run` a callback writing the result where componentize-js's would
 * (the `result<string, string>` return area: tag, pointer, length) and
 * returns `run`'s promise, or one settled at build time when the step
 * returned at once (the engine only needs a promise to wait on).
 */
const DIRECT_EXPORT_RUN = `
{
  const settledAtBuild = Promise.resolve();
  export_run = function export_run(area) {
    const pending = run((ok, text) => {
      const { ptr, len } = _utf8AllocateAndEncode(text, $realloc, $memory);
      const view = dataView($memory);
      view.setInt8(area, ok ? 0 : 1, true);
      view.setUint32(area + 4, ptr, true);
      view.setUint32(area + 8, len, true);
    });
    return pending ?? settledAtBuild;
  };
}
`;

/** What `DIRECT_EXPORT_RUN` replaces and uses, as componentize-js generates them. */
const EXPORT_RUN_EXPECTS = [
  'async function export_run(arg0) {',
  'const hostRet0 = await run();',
  'function _utf8AllocateAndEncode(s, realloc, memory) {',
  'const dataView = mem =>',
  'dataView($memory).setUint32(arg0 + 8, len1, true);',
  'dataView($memory).setUint32(arg0 + 4, ptr1, true);',
];

/** The bindings with `export_run` replaced; throws if they are not the ones it was written for. */
function withDirectExportRun(bindings) {
  const missing = EXPORT_RUN_EXPECTS.filter((text) => !bindings.includes(text));
  if (missing.length > 0) {
    throw new Error(`componentize-js generated bindings stephost does not know (missing: ${missing.join(' | ')})`);
  }
  return bindings + WARM_BINDINGS_GLOBAL + DIRECT_EXPORT_RUN;
}

function cacheSplicing(splicer, version) {
  const splice = splicer.spliceBindings;
  splicer.spliceBindings = (...args) => {
    const spliced = cachedSplice(...args);
    return { ...spliced, jsBindings: withDirectExportRun(spliced.jsBindings) };
  };
  const cachedSplice = (engine, features, witWorld, witPath, worldName, debug) => {
    const hash = createHash('sha256');
    hash.update(`componentize-js ${version}\0${JSON.stringify([features, witWorld ?? null, worldName, debug])}\0`);
    hash.update(engine);
    if (witPath) {
      for (const [name, bytes] of treeOf(witPath)) hash.update(`${name}\0${bytes.length}\0`).update(bytes);
    }
    const key = hash.digest('hex');
    const wasmFile = join(config.cache, `${key}.wasm`);
    const restFile = join(config.cache, `${key}.json`);
    try {
      const rest = JSON.parse(readFileSync(restFile, 'utf8'));
      return { ...rest, wasm: readFileSync(wasmFile) };
    } catch {
      // Not cached yet (or unreadable): splice now.
    }
    const spliced = splice(engine, features, witWorld, witPath, worldName, debug);
    try {
      mkdirSync(config.cache, { recursive: true, mode: 0o700 });
      const { wasm, ...rest } = spliced;
      writeAtomically(wasmFile, wasm);
      writeAtomically(restFile, JSON.stringify(rest));
      // An engine spliced for an older world or release is never read again.
      for (const name of readdirSync(config.cache)) {
        if (!name.startsWith(key)) rmSync(join(config.cache, name), { force: true });
      }
    } catch {
      // A cache that cannot be written only costs the next build time.
    }
    return spliced;
  };
}

/**
 * The cause of a failed componentize, on one line: the step's own
 * exception while its module loaded (StarlingMonkey runs the top level at
 * build time), else componentize-js's message without stack frames.
 */
function causeOf(error) {
  const text = String(error?.message ?? error);
  const thrown = text.match(/Exception while evaluating top-level script\s+(\S+:\d+:\d+)\s+([^\n]+)/);
  if (thrown) {
    return `the step threw while its module was loaded (at build time): ${thrown[2].trim()} (at ${original(thrown[1])})`;
  }
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('at ') && !line.startsWith('Failed to initialize component ('))
    .slice(0, 3)
    .join(' | ');
}

/** `bundle.mjs:L:C` as the user's `file:L:C` through the bundle's map, if it can be read. */
function original(location) {
  const [, file, line, column] = location.match(/^(.*):(\d+):(\d+)$/) ?? [];
  if (!file || file !== basename(config.source)) return location;
  try {
    const require = createRequire(join(config.toolchain, 'node_modules', 'index.js'));
    const { SourceMapConsumer } = require('source-map-js');
    const map = new SourceMapConsumer(JSON.parse(readFileSync(`${config.source}.map`, 'utf8')));
    const at = map.originalPositionFor({ line: Number(line), column: Number(column) - 1 });
    return at.source ? `${at.source}:${at.line}:${at.column + 1}` : location;
  } catch {
    return location;
  }
}

try {
  const { splicer } = await from('lib/spidermonkey-embedding-splicer.js');
  const { componentize, version } = await from('src/componentize.js');
  cacheSplicing(splicer, version);
  const { component } = await componentize({
    sourcePath: config.source,
    witPath: config.wit,
    worldName: config.world,
    disableFeatures: config.disable,
  });
  writeFileSync(config.out, component);
} catch (error) {
  process.stdout.write(JSON.stringify({ message: causeOf(error) }));
  process.exit(FAILED);
}
