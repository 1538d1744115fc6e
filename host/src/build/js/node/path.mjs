// POSIX `path`.
export const sep = '/';
export const delimiter = ':';
export function normalize(p) {
  const absolute = p.startsWith('/');
  const parts = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..' && parts.length && parts[parts.length - 1] !== '..') parts.pop();
    else if (part !== '..' || !absolute) parts.push(part);
  }
  const joined = parts.join('/');
  return absolute ? '/' + joined : joined || '.';
}
export const join = (...parts) => normalize(parts.filter((p) => p !== '').join('/') || '.');
export const resolve = (...parts) => {
  let out = '';
  for (const p of parts) out = p.startsWith('/') ? p : out + '/' + p;
  return normalize('/' + out);
};
export const isAbsolute = (p) => p.startsWith('/');
export function basename(p, ext) {
  const base = p.replace(/\/+$/, '').split('/').pop() ?? '';
  return ext && base.endsWith(ext) && base !== ext ? base.slice(0, -ext.length) : base;
}
export function dirname(p) {
  const trimmed = p.replace(/\/+$/, '');
  const i = trimmed.lastIndexOf('/');
  return i < 0 ? '.' : i === 0 ? '/' : trimmed.slice(0, i);
}
export function extname(p) {
  const base = basename(p);
  const i = base.lastIndexOf('.');
  return i <= 0 ? '' : base.slice(i);
}
export function relative(from, to) {
  const a = resolve(from).split('/').filter(Boolean);
  const b = resolve(to).split('/').filter(Boolean);
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  return [...a.slice(i).map(() => '..'), ...b.slice(i)].join('/');
}
export const parse = (p) => {
  const base = basename(p);
  const ext = extname(p);
  return { root: p.startsWith('/') ? '/' : '', dir: dirname(p), base, ext, name: ext ? base.slice(0, -ext.length) : base };
};
export const format = (o) => (o.dir ? o.dir + '/' : '') + (o.base ?? (o.name ?? '') + (o.ext ?? ''));
const path = { sep, delimiter, normalize, join, resolve, isAbsolute, basename, dirname, extname, relative, parse, format };
path.posix = path;
export const posix = path;
export default path;
