// `fs`: a step has no files. Reads find nothing; writes are refused.
const missing = (path) => Object.assign(new Error(`ENOENT: no such file or directory, '${path}' (a stephost step has no files)`), { code: 'ENOENT', path });
const refused = () => { throw Object.assign(new Error('writing files is not available in the stephost sandbox'), { code: 'EROFS' }); };
const read = (path) => { throw missing(path); };
const wrap = (fn) => (...args) => { const cb = args.pop(); let value; try { value = fn(...args); } catch (e) { queueMicrotask(() => cb(e)); return; } queueMicrotask(() => cb(null, value)); };
export const existsSync = () => false;
export const readFileSync = read, statSync = read, lstatSync = read, readdirSync = read, realpathSync = read, accessSync = read, openSync = read, createReadStream = read;
export const writeFileSync = refused, appendFileSync = refused, mkdirSync = refused, rmSync = refused, unlinkSync = refused, renameSync = refused, copyFileSync = refused, createWriteStream = refused, mkdtempSync = refused;
export const readFile = wrap(read), stat = wrap(read), lstat = wrap(read), readdir = wrap(read), access = wrap(read);
export const writeFile = wrap(refused), appendFile = wrap(refused), mkdir = wrap(refused), unlink = wrap(refused), rm = wrap(refused);
export const exists = (path, cb) => queueMicrotask(() => cb(false));
export const constants = { F_OK: 0, R_OK: 4, W_OK: 2, X_OK: 1 };
const asPromise = (fn) => async (...args) => fn(...args);
export const promises = {
  readFile: asPromise(read), stat: asPromise(read), lstat: asPromise(read), readdir: asPromise(read), access: asPromise(read),
  writeFile: asPromise(refused), appendFile: asPromise(refused), mkdir: asPromise(refused), unlink: asPromise(refused), rm: asPromise(refused),
};
export default { existsSync, readFileSync, statSync, lstatSync, readdirSync, realpathSync, accessSync, openSync, createReadStream, writeFileSync, appendFileSync, mkdirSync, rmSync, unlinkSync, renameSync, copyFileSync, createWriteStream, mkdtempSync, readFile, stat, lstat, readdir, access, writeFile, appendFile, mkdir, unlink, rm, exists, constants, promises };
