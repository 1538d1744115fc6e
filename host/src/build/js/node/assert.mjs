// `assert`: the common checks.
export class AssertionError extends Error {}
const fail = (message, fallback) => { throw message instanceof Error ? message : new AssertionError(message ?? fallback); };
export default function assert(value, message) { if (!value) fail(message, 'assertion failed'); }
export const ok = assert;
export const equal = (a, b, m) => { if (a != b) fail(m, `${a} == ${b}`); };
export const strictEqual = (a, b, m) => { if (!Object.is(a, b)) fail(m, `${a} === ${b}`); };
export const notStrictEqual = (a, b, m) => { if (Object.is(a, b)) fail(m, `${a} !== ${b}`); };
export const deepStrictEqual = (a, b, m) => { if (JSON.stringify(a) !== JSON.stringify(b)) fail(m, 'values are not deeply equal'); };
Object.assign(assert, { ok, equal, strictEqual, notStrictEqual, deepStrictEqual, AssertionError });
