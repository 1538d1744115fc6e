// `timers`: the globals.
export const setTimeout = globalThis.setTimeout, clearTimeout = globalThis.clearTimeout;
export const setInterval = globalThis.setInterval, clearInterval = globalThis.clearInterval;
export const setImmediate = (fn, ...args) => globalThis.setTimeout(fn, 0, ...args);
export const clearImmediate = (id) => globalThis.clearTimeout(id);
export default { setTimeout, clearTimeout, setInterval, clearInterval, setImmediate, clearImmediate };
