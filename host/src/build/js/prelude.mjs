// ---- stephost JS prelude: runs before the step's module and its packages ----
// `defineComponent`, the `process` Node code reads while loading, and a
// global `Buffer`.
import { getEnvironment } from 'wasi:cli/environment@0.2.12';
import { Buffer } from 'buffer';
import { lastRefusal } from 'stephost:step/egress@0.1.0';

globalThis.defineComponent = globalThis.defineComponent ?? ((component) => component);
globalThis.global = globalThis.global ?? globalThis;
globalThis.Buffer = globalThis.Buffer ?? Buffer;

const process = globalThis.process ?? {};
globalThis.process = process;
// Read when first used: the module's top level runs while the component is
// built, when there is no environment yet.
Object.defineProperty(process, 'env', {
  configurable: true,
  get() {
    const env = Object.fromEntries(getEnvironment());
    Object.defineProperty(process, 'env', { value: env, configurable: true });
    return env;
  },
});
const line = (write) => ({ isTTY: false, write(text) { write(String(text).replace(/\n$/, '')); return true; } });
Object.assign(process, {
  title: 'stephost', version: 'v20.0.0', versions: { node: '20.0.0' }, platform: 'wasi', arch: 'wasm32',
  release: { name: 'node' }, argv: ['stephost'], execArgv: [], pid: 1, ppid: 0, exitCode: undefined,
  cwd: () => '/', uptime: () => performance.now() / 1000, memoryUsage: () => ({ rss: 0, heapTotal: 0, heapUsed: 0, external: 0 }),
  hrtime: Object.assign((previous) => {
    const ns = BigInt(Math.round(performance.now() * 1e6));
    const now = [Number(ns / 1000000000n), Number(ns % 1000000000n)];
    return previous ? [now[0] - previous[0], now[1] - previous[1]] : now;
  }, { bigint: () => BigInt(Math.round(performance.now() * 1e6)) }),
  nextTick: (fn, ...args) => queueMicrotask(() => fn(...args)),
  emitWarning: () => {}, on: () => process, once: () => process, off: () => process, removeListener: () => process,
  removeAllListeners: () => process, emit: () => false, listeners: () => [],
  exit(code) { throw new Error(`process.exit(${code ?? ''}) is not available in a step: return from it instead`); },
  stdout: line((t) => console.log(t)), stderr: line((t) => console.error(t)),
});

// A refused request rejects with the host's reason, not StarlingMonkey's
// generic NetworkError (SDKs retry those for minutes).
const fetchThroughHost = globalThis.fetch;
globalThis.fetch = async function fetch(...args) {
  try {
    return await fetchThroughHost(...args);
  } catch (error) {
    const reason = lastRefusal();
    if (reason === undefined) throw error;
    throw new TypeError(`fetch refused by stephost: ${reason}`, { cause: error });
  }
};

// StarlingMonkey has no `Intl`: its `toLocale*String` ignore a locale and
// options (a time zone, a currency) and answer in UTC and its fixed format.
// Called with either, they throw a catchable error saying so instead of
// answering wrong; without arguments they answer as before. `Intl` stays
// undefined, so feature detection keeps working.
if (typeof Intl === 'undefined') {
  for (const [type, proto] of [['Date', Date.prototype], ['Number', Number.prototype], ['BigInt', BigInt.prototype]]) {
    for (const name of ['toLocaleString', 'toLocaleDateString', 'toLocaleTimeString']) {
      const native = proto[name];
      if (typeof native !== 'function') continue;
      const method = {
        [name](locales, options) {
          if (locales !== undefined || options !== undefined) {
            throw new Error(
              `${type}.prototype.${name} with a locale or options is not available in stephost: its JavaScript engine (StarlingMonkey) has no Intl, so locales, time zones and number formats cannot be honoured. Format the value yourself (toISOString(), getUTC*(), toFixed()), or call ${name}() without arguments for the engine's fixed format in UTC`,
            );
          }
          return native.call(this);
        },
      }[name];
      Object.defineProperty(proto, name, { value: method, writable: true, configurable: true });
    }
  }
}
