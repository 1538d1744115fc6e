// stephost's JavaScript bundler driver (written into each build's working
// directory by `stephost build`). `node bundle.cjs scan|bundle CONFIG`:
// `scan` lists the npm packages the step imports (JSON on stdout) before
// anything is installed; `bundle` joins the step, its packages and the
// Node built-in shims into one module for componentize-js. A problem in the
// user's code exits 3 with `{"line", "message"}` on stdout.
'use strict';
const path = require('path');
const { builtinModules } = require('module');

const [mode, configText] = process.argv.slice(2);
const config = JSON.parse(configText);
const esbuild = require(config.esbuild);

// Built-ins with a shim (a file in `config.shims`, or a package installed
// next to esbuild); the others are not available in the sandbox.
const SHIMS = {
  os: 'os.mjs', path: 'path.mjs', 'path/posix': 'path.mjs', querystring: 'querystring.mjs',
  util: 'util.mjs', stream: 'stream.mjs', 'stream/web': 'stream_web.mjs', zlib: 'zlib.mjs',
  fs: 'fs.mjs', 'fs/promises': 'fs_promises.mjs', crypto: 'crypto.mjs', url: 'url.mjs',
  timers: 'timers.mjs', 'timers/promises': 'timers_promises.mjs', process: 'process.mjs',
  string_decoder: 'string_decoder.mjs', assert: 'assert.mjs',
};
const PACKAGES = { buffer: 'buffer/', events: 'events/' };

function builtin(spec) {
  const name = spec.startsWith('node:') ? spec.slice(5) : spec;
  return builtinModules.includes(name) || builtinModules.includes(name.split('/')[0]) ? name : null;
}

// `pkg`, `@scope/pkg`, Pipedream's `pkg@1.2.3`, each with an optional subpath.
function bare(spec) {
  if (/^[./]/.test(spec) || spec.includes(':')) return null;
  const m = /^((?:@[^/@]+\/)?[^/@]+)(?:@([^/]+))?(\/.*)?$/.exec(spec);
  return m ? { name: m[1], version: m[2] ?? null, sub: m[3] ?? '' } : null;
}

const inUserCode = (args) => !args.importer.includes(`${path.sep}node_modules${path.sep}`);

function unavailable(name) {
  return `\`${name}\` is not available in the stephost sandbox (no sockets, processes or file writes; use fetch for HTTP)`;
}

const builtins = {
  name: 'stephost-builtins',
  setup(build) {
    build.onResolve({ filter: /^(stephost|wasi):/ }, (args) => ({ path: args.path, external: true }));
    build.onResolve({ filter: /^stephost-user$/ }, () => ({ path: config.user }));
    // The shims' own packages, installed with esbuild.
    build.onResolve({ filter: /^stephost-toolchain:/ }, (args) =>
      build.resolve(args.path.slice('stephost-toolchain:'.length), { kind: args.kind, resolveDir: config.toolchain, pluginData: { toolchain: true } }));
    // The body form's wrapped code stands in for the user's file.
    if (config.userCode) {
      build.onLoad({ filter: /.*/ }, (args) =>
        args.path === config.user ? { contents: require('fs').readFileSync(config.userCode, 'utf8'), loader: 'js', resolveDir: path.dirname(config.user) } : undefined);
    }
    build.onResolve({ filter: /.*/ }, (args) => {
      const name = builtin(args.path);
      if (name === null) return undefined;
      const base = name.split('/')[0];
      if (SHIMS[name]) return { path: path.join(config.shims, SHIMS[name]) };
      if (PACKAGES[base] && name === base) return { path: require.resolve(PACKAGES[base], { paths: [config.toolchain] }) };
      if (args.kind === 'dynamic-import') return { path: name, namespace: 'stephost-rejected' };
      if (inUserCode(args)) return { errors: [{ text: unavailable(name) }] };
      return { path: name, namespace: 'stephost-unavailable' };
    });
    // A dynamic import rejects with a catchable error.
    build.onLoad({ filter: /.*/, namespace: 'stephost-rejected' }, (args) => ({
      contents: `throw new Error(${JSON.stringify(unavailable(args.path))});\nexport {};\n`,
      loader: 'js',
    }));
    // A dependency's static import loads; using it throws.
    build.onLoad({ filter: /.*/, namespace: 'stephost-unavailable' }, (args) => ({
      contents: `const fail = () => { throw new Error(${JSON.stringify(unavailable(args.path))}); };
module.exports = new Proxy(fail, { get: (_, key) => (key === '__esModule' || key === 'then' || typeof key === 'symbol' ? undefined : fail), construct: fail });\n`,
      loader: 'js',
    }));
  },
};

const packages = {};
const scanner = {
  name: 'stephost-scan',
  setup(build) {
    build.onResolve({ filter: /.*/ }, (args) => {
      const pkg = bare(args.path);
      if (pkg === null || builtin(args.path) !== null || args.pluginData?.toolchain || !inUserCode(args)) return undefined;
      const known = packages[pkg.name];
      if (known && pkg.version && known !== pkg.version) {
        return { errors: [{ text: `\`${pkg.name}\` is imported at two versions, ${known} and ${pkg.version}` }] };
      }
      packages[pkg.name] = pkg.version ?? known ?? null;
      return { path: args.path, external: true };
    });
  },
};

// `pkg@1.2.3/sub` resolves as `pkg/sub` (the version was installed).
const versioned = {
  name: 'stephost-versioned',
  setup(build) {
    build.onResolve({ filter: /^(@[^/@]+\/)?[^/@.][^/@]*@/ }, (args) => {
      const pkg = bare(args.path);
      if (pkg === null || builtin(args.path) !== null) return undefined;
      return build.resolve(pkg.name + pkg.sub, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer });
    });
  },
};

function report(error) {
  const first = error.errors && error.errors[0];
  if (!first) throw error;
  const location = first.location;
  const file = location ? path.resolve(config.work, location.file) : null;
  const where = file === config.user ? location.line : 0;
  const inFile = location && where === 0 ? ` (in ${location.file}:${location.line})` : '';
  process.stdout.write(JSON.stringify({ line: where, message: first.text + inFile }));
  process.exit(3);
}

const common = {
  absWorkingDir: config.work, bundle: true, format: 'esm', platform: 'browser', write: false,
  logLevel: 'silent', mainFields: ['browser', 'module', 'main'], conditions: ['worker', 'browser'],
};

if (mode === 'scan') {
  esbuild
    .build({ ...common, entryPoints: [config.user], plugins: [builtins, scanner] })
    .then(() => process.stdout.write(JSON.stringify(packages)), report);
} else {
  esbuild
    .build({
      ...common, entryPoints: [config.entry], outfile: config.outfile, nodePaths: config.nodePaths,
      plugins: [builtins, versioned], sourcemap: 'external', sourcesContent: false,
    })
    .then(writeWithSourceMap, report);
}

// How a source shows in a run-time stack: the user's file by its name,
// a package as `node_modules/pkg/file.js`, stephost's own shims as `stephost/…`.
function shownSource(source) {
  const file = path.resolve(path.dirname(config.outfile), source);
  if (file === config.user) return path.basename(config.user);
  const inPackage = file.lastIndexOf(`${path.sep}node_modules${path.sep}`);
  if (inPackage >= 0) return file.slice(inPackage + 1).split(path.sep).join('/');
  return `stephost/${path.relative(config.work, file).split(path.sep).join('/')}`;
}

// The bundle, with its source map appended as a string: `entry.mjs` decodes
// it only when a step fails, to name the user's file and line.
function writeWithSourceMap(result) {
  const code = result.outputFiles.find((f) => f.path === config.outfile).text;
  const map = JSON.parse(result.outputFiles.find((f) => f.path === `${config.outfile}.map`).text);
  map.sources = map.sources.map(shownSource);
  const stephost = { map: JSON.stringify(map), user: path.basename(config.user), bodyOpen: config.bodyOpen ?? null };
  const appended = `\n;globalThis[Symbol.for('stephost.sourcemap')] = ${JSON.stringify(stephost)};\n`;
  require('fs').writeFileSync(config.outfile, code + appended);
  // For the componentize driver: an exception while the module loads at
  // build time is named by the user's line too.
  require('fs').writeFileSync(`${config.outfile}.map`, JSON.stringify(map));
}
