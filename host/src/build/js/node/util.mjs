// `util`: the parts SDKs use while loading and formatting.
export const TextDecoder = globalThis.TextDecoder;
export const TextEncoder = globalThis.TextEncoder;
export function inspect(value) {
  if (typeof value === 'string') return `'${value}'`;
  try { return JSON.stringify(value) ?? String(value); } catch { return String(value); }
}
inspect.custom = Symbol.for('nodejs.util.inspect.custom');
export function format(first, ...args) {
  if (typeof first !== 'string') return [first, ...args].map(inspect).join(' ');
  let i = 0;
  const out = first.replace(/%[sdifjoO%]/g, (m) => {
    if (m === '%%') return '%';
    if (i >= args.length) return m;
    const a = args[i++];
    return m === '%s' ? String(a) : m === '%d' || m === '%i' ? String(parseInt(a, 10)) : m === '%f' ? String(parseFloat(a)) : inspect(a);
  });
  return [out, ...args.slice(i).map((a) => (typeof a === 'string' ? a : inspect(a)))].join(' ');
}
export const promisify = (fn) => (...args) => new Promise((resolve, reject) => fn(...args, (err, value) => (err ? reject(err) : resolve(value))));
promisify.custom = Symbol.for('nodejs.util.promisify.custom');
export const callbackify = (fn) => (...args) => { const cb = args.pop(); fn(...args).then((v) => cb(null, v), cb); };
export const deprecate = (fn) => fn;
export const debuglog = () => () => {};
export const inherits = (ctor, superCtor) => { Object.setPrototypeOf(ctor.prototype, superCtor.prototype); Object.setPrototypeOf(ctor, superCtor); ctor.super_ = superCtor; };
export const isDeepStrictEqual = (a, b) => JSON.stringify(a) === JSON.stringify(b);
export const types = {
  isUint8Array: (v) => v instanceof Uint8Array, isArrayBuffer: (v) => v instanceof ArrayBuffer,
  isDate: (v) => v instanceof Date, isRegExp: (v) => v instanceof RegExp, isPromise: (v) => v instanceof Promise,
  isTypedArray: (v) => ArrayBuffer.isView(v) && !(v instanceof DataView),
};
export default { TextDecoder, TextEncoder, inspect, format, promisify, callbackify, deprecate, debuglog, inherits, isDeepStrictEqual, types };
