// ---- stephost JS entry (bundled with the step's module by `stephost build`) ----
// Gives the step Pipedream's surface over the stephost:step imports: the
// `async (event, steps, auths) => …` and `defineComponent({ … })` forms and
// `run` for the host to call (`prelude.mjs` runs first: `process`,
// `defineComponent`, `Buffer`). `console.*` is the step's log and `fetch`
// goes out through the host's egress proxy.
import './prelude.mjs';
import { mappedStack } from './stacks.mjs';
import * as __stephostEvent from 'stephost:step/event@0.1.0';
import * as __stephostSteps from 'stephost:step/steps@0.1.0';
import * as __stephostAuths from 'stephost:step/auths@0.1.0';
import * as __stephostFlow from 'stephost:step/flow@0.1.0';
import __stephostDefault from 'stephost-user';

function __stephostReadSteps() {
  const steps = {};
  for (const name of __stephostSteps.names()) {
    const result = __stephostSteps.get(name);
    if (result !== undefined) steps[name] = JSON.parse(result);
  }
  return steps;
}

function __stephostReadAuths() {
  const auths = {};
  for (const app of __stephostAuths.apps()) {
    const account = {};
    for (const key of __stephostAuths.keys(app)) account[key] = __stephostAuths.get(app, key);
    auths[app] = account;
  }
  return auths;
}

function __stephostBytes(body) {
  if (body === undefined || body === null) return new Uint8Array();
  if (body instanceof Uint8Array) return body;
  return new TextEncoder().encode(typeof body === 'string' ? body : JSON.stringify(body));
}

const __stephostDollar = {
  export(name, value) {
    __stephostFlow.export(String(name), JSON.stringify(value === undefined ? null : value));
  },
  flow: {
    // As in Pipedream: the workflow ends after this step, the rest of the
    // step still runs (`return $.flow.exit()` ends it here).
    exit(reason) {
      __stephostFlow.end(reason === undefined ? '' : String(reason));
    },
  },
  respond({ status = 200, headers = {}, body } = {}) {
    const isJson = body !== undefined && body !== null && typeof body === 'object' && !(body instanceof Uint8Array);
    const pairs = Object.entries(headers).map(([name, value]) => [String(name), String(value)]);
    if (isJson && !pairs.some(([name]) => name.toLowerCase() === 'content-type')) {
      pairs.push(['content-type', 'application/json']);
    }
    __stephostFlow.respond(status, pairs, __stephostBytes(body));
  },
};

// Called by the bindings' `export_run` (`componentize.mjs`) with `settle`,
// which writes the outcome (`ok`, the JSON text or the one-line error)
// where the host reads it. Neither this nor `export_run` is an `async`
// function, and a step that returns at once settles with no promise at
// all: every promise SpiderMonkey builds records the stack where it was
// made and where it settled, and every async frame is a generator object
// of its own, a fifth of a trivial step's run when the bindings awaited an
// async `run`. Returns the promise the engine's event loop drives to the
// end, or nothing when the step is already settled.
export function run(settle) {
  const fail = (error) => settle(false, __stephostFailureText(error));
  const succeed = (value) => {
    let text;
    try {
      text = __stephostResult(value);
    } catch (error) {
      return fail(error);
    }
    settle(true, text);
  };
  let value;
  try {
    const step = __stephostDefault;
    const event = JSON.parse(__stephostEvent.get());
    const steps = __stephostReadSteps();
    steps.trigger = steps.trigger ?? { event };
    const auths = __stephostReadAuths();
    if (typeof step === 'function') {
      value = step(event, steps, auths);
    } else if (step && typeof step.run === 'function') {
      const self = {};
      for (const [prop, spec] of Object.entries(step.props ?? {})) {
        if (spec && spec.type === 'app') self[prop] = { $auth: auths[spec.app ?? prop] ?? {} };
      }
      value = step.run.call(self, { steps, $: __stephostDollar });
    } else {
      throw new Error('the default export must be `async (event, steps, auths) => { … }` or `defineComponent({ … })`');
    }
    if (typeof value?.then === 'function') return Promise.resolve(value).then(succeed, fail);
  } catch (error) {
    return fail(error);
  }
  return succeed(value);
}

/** The step's value as JSON text (`null` for `undefined`); throws what JSON throws (a BigInt, a cycle). */
function __stephostResult(value) {
  const text = JSON.stringify(value === undefined ? null : value);
  if (text === undefined) throw new TypeError(`the step returned ${typeof value === 'function' ? 'a function' : 'a symbol'}, which is not JSON: return data (an object, array, string, number, boolean or null)`);
  return text;
}

// The stack, in the user's file and lines, goes to the step's log; the
// error itself stays one line, with where it happened.
function __stephostFailureText(error) {
  const { stack, where } = mappedStack(error);
  if (error && error.stack) console.error(stack);
  const line = String(error).split('\n')[0];
  return where === null ? line : `${line} (at ${where})`;
}
