// `querystring`, over encodeURIComponent.
export const escape = encodeURIComponent;
export const unescape = (s) => decodeURIComponent(s.replace(/\+/g, ' '));
const value = (v) => (typeof v === 'string' || typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean' ? String(v) : '');
export function stringify(object, sep = '&', eq = '=') {
  if (!object || typeof object !== 'object') return '';
  return Object.entries(object)
    .map(([k, v]) => (Array.isArray(v) ? v : [v]).map((x) => escape(k) + eq + escape(value(x))).join(sep))
    .filter(Boolean)
    .join(sep);
}
export function parse(text, sep = '&', eq = '=') {
  const out = {};
  for (const pair of String(text ?? '').split(sep)) {
    if (!pair) continue;
    const i = pair.indexOf(eq);
    const k = unescape(i < 0 ? pair : pair.slice(0, i));
    const v = i < 0 ? '' : unescape(pair.slice(i + eq.length));
    if (k in out) out[k] = [].concat(out[k], v);
    else out[k] = v;
  }
  return out;
}
export const encode = stringify;
export const decode = parse;
export default { escape, unescape, stringify, parse, encode, decode };
