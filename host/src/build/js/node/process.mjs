// `process`: the global the prelude sets up.
export default globalThis.process;
export const env = globalThis.process.env;
