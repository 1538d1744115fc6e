// `crypto`: what the web platform's crypto offers.
import { Buffer } from 'buffer';
export const webcrypto = globalThis.crypto;
export const subtle = globalThis.crypto?.subtle;
export const randomUUID = () => globalThis.crypto.randomUUID();
export const getRandomValues = (array) => globalThis.crypto.getRandomValues(array);
export const randomBytes = (n, cb) => {
  const bytes = Buffer.from(globalThis.crypto.getRandomValues(new Uint8Array(n)));
  if (cb) queueMicrotask(() => cb(null, bytes));
  return bytes;
};
const unavailable = (name) => () => { throw new Error(`\`crypto.${name}\` is not available in the stephost sandbox; use crypto.subtle`); };
export const createHash = unavailable('createHash'), createHmac = unavailable('createHmac'), createCipheriv = unavailable('createCipheriv'), createSign = unavailable('createSign');
export default { webcrypto, subtle, randomUUID, getRandomValues, randomBytes, createHash, createHmac, createCipheriv, createSign };
