// `zlib`: loads; (de)compressing is not available in the sandbox.
const message = '`zlib` is not available in the stephost sandbox (fetch already decodes compressed responses)';
const sync = () => { throw new Error(message); };
const async = (...args) => { const cb = args.pop(); if (typeof cb === 'function') queueMicrotask(() => cb(new Error(message))); else sync(); };
export const constants = {};
export const gzip = async, gunzip = async, deflate = async, inflate = async, unzip = async, brotliCompress = async, brotliDecompress = async;
export const gzipSync = sync, gunzipSync = sync, deflateSync = sync, inflateSync = sync, unzipSync = sync;
export const createGzip = sync, createGunzip = sync, createDeflate = sync, createInflate = sync, createUnzip = sync;
export default { constants, gzip, gunzip, deflate, inflate, unzip, brotliCompress, brotliDecompress, gzipSync, gunzipSync, deflateSync, inflateSync, unzipSync, createGzip, createGunzip, createDeflate, createInflate, createUnzip };
