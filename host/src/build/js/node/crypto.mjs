// `crypto`: the web platform's crypto, plus Node's hashes and HMACs
// (`createHash`, `createHmac`: what webhook-signature SDKs use) from
// @noble/hashes, audited pure JS.
import { Buffer } from 'buffer';
import { sha1, md5 } from 'stephost-toolchain:@noble/hashes/legacy.js';
import { sha224, sha256, sha384, sha512 } from 'stephost-toolchain:@noble/hashes/sha2.js';
import { hmac } from 'stephost-toolchain:@noble/hashes/hmac.js';

export const webcrypto = globalThis.crypto;
export const subtle = globalThis.crypto?.subtle;
export const randomUUID = () => globalThis.crypto.randomUUID();
export const getRandomValues = (array) => globalThis.crypto.getRandomValues(array);
export const randomBytes = (n, cb) => {
  const bytes = Buffer.from(globalThis.crypto.getRandomValues(new Uint8Array(n)));
  if (cb) queueMicrotask(() => cb(null, bytes));
  return bytes;
};

const HASHES = { md5, sha1, sha224, sha256, sha384, sha512 };

function hashNamed(algorithm) {
  const name = String(algorithm).toLowerCase().replace(/^rsa-/, '').replace(/^sha-/, 'sha');
  const hash = Object.hasOwn(HASHES, name) ? HASHES[name] : undefined;
  if (hash === undefined) {
    throw new Error(`Digest method not supported: \`${algorithm}\` (stephost's crypto offers ${Object.keys(HASHES).join(', ')})`);
  }
  return hash;
}

function bytes(data, encoding) {
  if (typeof data === 'string') return Buffer.from(data, encoding ?? 'utf8');
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  throw new TypeError('The "data" argument must be a string, Buffer, TypedArray or DataView');
}

// Node's Hash/Hmac surface over a noble hash state.
class Digest {
  #state;
  constructor(state) {
    this.#state = state;
  }
  update(data, encoding) {
    this.#state.update(bytes(data, encoding));
    return this;
  }
  digest(encoding) {
    const out = Buffer.from(this.#state.digest());
    return encoding === undefined || encoding === 'buffer' ? out : out.toString(encoding);
  }
}

export const createHash = (algorithm) => new Digest(hashNamed(algorithm).create());
export const createHmac = (algorithm, key) => new Digest(hmac.create(hashNamed(algorithm), bytes(key)));
export const getHashes = () => Object.keys(HASHES);

export const timingSafeEqual = (a, b) => {
  const x = bytes(a);
  const y = bytes(b);
  if (x.byteLength !== y.byteLength) throw new RangeError('Input buffers must have the same byte length');
  let diff = 0;
  for (let i = 0; i < x.byteLength; i++) diff |= x[i] ^ y[i];
  return diff === 0;
};

const unavailable = (name) => () => { throw new Error(`\`crypto.${name}\` is not available in the stephost sandbox; use crypto.subtle`); };
export const createCipheriv = unavailable('createCipheriv'), createDecipheriv = unavailable('createDecipheriv'), createSign = unavailable('createSign'), createVerify = unavailable('createVerify');
export default { webcrypto, subtle, randomUUID, getRandomValues, randomBytes, createHash, createHmac, getHashes, timingSafeEqual, createCipheriv, createDecipheriv, createSign, createVerify };
