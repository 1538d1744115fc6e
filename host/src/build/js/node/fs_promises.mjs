// `fs/promises`: see fs.mjs.
import { promises } from './fs.mjs';
export const { readFile, stat, lstat, readdir, access, writeFile, appendFile, mkdir, unlink, rm } = promises;
export default promises;
