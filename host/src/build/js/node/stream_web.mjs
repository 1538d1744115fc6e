// `stream/web`: the web streams StarlingMonkey has.
export const ReadableStream = globalThis.ReadableStream;
export const WritableStream = globalThis.WritableStream;
export const TransformStream = globalThis.TransformStream;
export default { ReadableStream, WritableStream, TransformStream };
