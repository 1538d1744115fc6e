// `url`: WHATWG URL plus the legacy helpers.
export const URL = globalThis.URL;
export const URLSearchParams = globalThis.URLSearchParams;
export const fileURLToPath = (u) => decodeURIComponent(new URL(String(u)).pathname);
export const pathToFileURL = (p) => new URL('file://' + encodeURI(p));
export function parse(text) {
  const u = new URL(text);
  return { protocol: u.protocol, host: u.host, hostname: u.hostname, port: u.port || null, pathname: u.pathname, search: u.search || null, query: u.search.slice(1) || null, hash: u.hash || null, path: u.pathname + u.search, href: u.href, auth: u.username ? `${u.username}:${u.password}` : null };
}
export const format = (u) => (typeof u === 'string' ? u : u instanceof URL ? u.href : `${u.protocol}//${u.host ?? u.hostname + (u.port ? ':' + u.port : '')}${u.pathname ?? ''}${u.search ?? ''}${u.hash ?? ''}`);
export const resolve = (from, to) => new URL(to, from).href;
export default { URL, URLSearchParams, fileURLToPath, pathToFileURL, parse, format, resolve };
