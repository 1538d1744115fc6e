// The inspector in a real browser: Debian's Chromium, headless, driven by
// playwright-core (both installed by scripts/lib/browser.sh). Run by
// tests/e2e/browser.rs against an in-process `stephost serve` it filled
// with real runs; what to look at comes in the environment:
//
//   STEPHOST_BASE_URL     the server, http://127.0.0.1:PORT
//   STEPHOST_TOKEN        its API token
//   STEPHOST_WORKFLOW     the workflow the runs belong to (steps hello, probe)
//   STEPHOST_RUNS         its runs' ids, oldest first, comma-separated
//   STEPHOST_HOSTILE_RUN  a run whose probe step logged and exported markup
//   STEPHOST_FAILED_RUN   a run whose probe step failed
//   STEPHOST_SECRET       the real token the host swapped into the hostile
//                         run's request to Slack: never on any page
//   STEPHOST_SCREENSHOT   optional: where to save a screenshot of a run page
//
// Every check runs even when an earlier one failed (where it can), so one
// run names every broken part; the exit code is 1 if any failed.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import fs from 'node:fs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const tools = path.join(repo, 'target/tools/browser');
if (!fs.existsSync(path.join(tools, 'node_modules/playwright-core/package.json'))) {
  console.error(`playwright-core is not installed in ${tools}: run scripts/test.sh (it installs it)`);
  process.exit(2);
}
const { chromium } = createRequire(path.join(tools, 'package.json'))('playwright-core');

function need(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} is not set (tests/e2e/browser.rs sets it)`);
    process.exit(2);
  }
  return value;
}

const base = need('STEPHOST_BASE_URL');
const token = need('STEPHOST_TOKEN');
const workflow = need('STEPHOST_WORKFLOW');
const runs = need('STEPHOST_RUNS').split(',');
const hostile = need('STEPHOST_HOSTILE_RUN');
const failed = need('STEPHOST_FAILED_RUN');
const secret = need('STEPHOST_SECRET');
const screenshot = process.env.STEPHOST_SCREENSHOT || '';

const SCRIPT = '<script>window.__pwned=1</script>';
const IMG = '"><img src=x onerror="window.__pwned=1">';
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
// Every wait has this deadline: far beyond what any step takes on a loaded
// machine, so only a broken page reaches it.
const DEADLINE_MS = 60000;

const results = [];
async function check(name, body) {
  try {
    await body();
    results.push([name, null]);
    console.log(`ok   ${name}`);
  } catch (e) {
    results.push([name, e]);
    console.log(`FAIL ${name}: ${String(e.message || e).split('\n')[0]}`);
  }
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

async function api(method, route, body) {
  const response = await fetch(`${base}/v1${route}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  // playwright-core gives each launch a fresh, empty profile directory.
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
// Counts the policy's refusals: the page itself must need none.
await context.addInitScript(() => {
  window.__violations = [];
  document.addEventListener('securitypolicyviolation', (e) =>
    window.__violations.push(`${e.violatedDirective} ${e.blockedURI}`),
  );
});
const page = await context.newPage();
page.setDefaultTimeout(DEADLINE_MS);
const pageErrors = [];
page.on('pageerror', (e) => pageErrors.push(e.message));
const assetHeaders = new Map();
page.on('response', (r) => {
  const url = new URL(r.url());
  if (url.pathname === '/' || url.pathname.startsWith('/ui/')) assetHeaders.set(url.pathname, r.headers());
});

/** Waits for `wanted`; when the page shows an error line instead (or
 * nothing by the deadline), fails with what the page says. */
async function expectShown(wanted, what, timeout = DEADLINE_MS) {
  const error = page.locator('main .error');
  await wanted.or(error).first().waitFor({ timeout }).catch(() => {});
  if (await wanted.count()) return;
  const said = (await error.count()) ? await error.first().textContent() : 'nothing';
  throw new Error(`${what} is not shown; the page says: ${said}`);
}

const runRow = (id) => page.locator(`tr[data-run="${id}"]`);
const runPage = (id) => page.locator(`main.run[data-run="${id}"]`);
const step = (name) => page.locator(`section.step[data-step="${name}"]`);

async function signIn(value) {
  await page.fill('#token', value);
  await page.click('.signin button[type=submit]');
}

/** Waits until the page shows a run other than `from`; its id. */
async function newRunAfter(from) {
  await page.waitForFunction(
    (old) => /^#\/runs\/[0-9a-f]+$/.test(location.hash) && location.hash !== `#/runs/${old}`,
    from,
  );
  const id = decodeURIComponent(await page.evaluate(() => location.hash.slice('#/runs/'.length)));
  await runPage(id).waitFor();
  return id;
}

/** Waits until the run page shows the run finished. */
async function finished(id) {
  await page.waitForFunction(
    (run) => {
      const main = document.querySelector(`main.run[data-run="${run}"]`);
      return main && !['queued', 'running'].includes(main.dataset.status);
    },
    id,
  );
}

await check('the page and its assets carry the strict CSP, nosniff and no-referrer', async () => {
  const response = await page.goto(`${base}/`);
  assert(response.status() === 200, `GET / answered ${response.status()}`);
  await page.locator('#token').waitFor();
  for (const asset of ['/', '/ui/app.js', '/ui/style.css', '/ui/preact-htm.js']) {
    const headers = assetHeaders.get(asset);
    assert(headers, `the page did not load ${asset}`);
    assert(headers['content-security-policy'] === CSP, `${asset}: CSP is ${headers['content-security-policy']}`);
    assert(headers['x-content-type-options'] === 'nosniff', `${asset}: no nosniff`);
    assert(headers['referrer-policy'] === 'no-referrer', `${asset}: no Referrer-Policy`);
  }
  assert(assetHeaders.get('/ui/app.js')['content-type'].startsWith('text/javascript'), 'app.js content type');
  assert(assetHeaders.get('/ui/style.css')['content-type'].startsWith('text/css'), 'style.css content type');
});

await check('a wrong token is refused with a clear message and not kept', async () => {
  await signIn('sht_wrong');
  const error = page.locator('.signin .error');
  await error.waitFor();
  const text = await error.textContent();
  assert(/refused/.test(text) && /401/.test(text), `the sign-in error says: ${text}`);
  assert((await page.evaluate(() => sessionStorage.getItem('stephost.token'))) === null, 'the wrong token was kept');
  assert((await page.locator('nav a[href="#/runs"]').count()) === 0, 'the app opened with a wrong token');
});

await check('the right token signs in and is kept for the tab', async () => {
  await signIn(token);
  await page.locator('header.top nav').waitFor();
  assert((await page.evaluate(() => sessionStorage.getItem('stephost.token'))) === token, 'token not in sessionStorage');
});

await check('the runs list shows the workflow runs newest first', async () => {
  await page.goto(`${base}/#/runs?workflow=${workflow}`);
  for (const id of runs) await runRow(id).waitFor();
  const shown = await page.locator('table.runs tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.run));
  const expected = [...runs].reverse();
  assert(JSON.stringify(shown) === JSON.stringify(expected), `rows ${shown} instead of ${expected}`);
  assert((await runRow(failed).getAttribute('data-status')) === 'failed', 'the failed run is not shown failed');
});

await check('the runs list filters by status', async () => {
  await page.selectOption('select[name=status]', 'failed');
  await page.waitForFunction(() => location.hash.includes('status=failed'));
  await page.waitForFunction(
    (id) => {
      const rows = [...document.querySelectorAll('table.runs tbody tr')];
      return rows.length > 0 && rows.every((r) => r.dataset.status === 'failed') && rows.some((r) => r.dataset.run === id);
    },
    failed,
  );
});

await check('the runs list pages with `before`/`next` (contract item 3)', async () => {
  await page.goto(`${base}/#/runs?workflow=${workflow}&limit=2`);
  const newest = [...runs].reverse();
  await runRow(newest[0]).waitFor();
  const first = await page.locator('table.runs tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.run));
  assert(JSON.stringify(first) === JSON.stringify(newest.slice(0, 2)), `first page ${first}`);
  const older = page.locator('nav.pager a[rel=next]');
  await older.waitFor({ timeout: 5000 }).catch(() => {
    throw new Error('no "Older" link: GET /v1/runs gave no `next`');
  });
  await older.click();
  await runRow(newest[2]).waitFor();
  const second = await page.locator('table.runs tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.run));
  assert(JSON.stringify(second) === JSON.stringify(newest.slice(2, 4)), `second page ${second}`);
});

await check('a run opens from the list', async () => {
  await page.goto(`${base}/#/runs?workflow=${workflow}`);
  await runRow(hostile).locator('a').first().click();
  await runPage(hostile).waitFor();
  assert((await page.evaluate(() => location.hash)) === `#/runs/${hostile}`, 'the hash is not the run');
});

await check("each step's logs appear below that step, in order", async () => {
  await step('probe').waitFor();
  const order = await page.evaluate(() => {
    const sections = [...document.querySelectorAll('section.step')];
    const before = (a, b) => Boolean(a.compareDocumentPosition(b) & Node.DOCUMENT_POSITION_FOLLOWING);
    return sections.map((s, i) => {
      const header = s.querySelector('header');
      const lines = [...s.querySelectorAll('.logs .log-line')];
      const next = sections[i + 1]?.querySelector('header');
      return {
        step: s.dataset.step,
        lines: lines.map((l) => [l.dataset.stream, l.querySelector('.text').textContent, l.querySelector('time').textContent]),
        below: lines.every((l) => before(header, l) && (!next || before(l, next))),
      };
    });
  });
  assert(JSON.stringify(order.map((s) => s.step)) === '["hello","probe"]', `steps ${order.map((s) => s.step)}`);
  const [hello, probe] = order;
  assert(hello.below && probe.below, 'a log line is not between its step and the next');
  assert(hello.lines.some(([, text]) => text.startsWith('hello: the event has')), `hello's logs: ${hello.lines}`);
  assert(!hello.lines.some(([, text]) => text === SCRIPT), "the probe's log line is under hello");
  const streams = probe.lines.map(([stream, text]) => `${stream}:${text}`);
  assert(streams.includes(`stdout:${SCRIPT}`), `probe's logs: ${streams}`);
  assert(streams.includes(`stderr:${IMG}`), `probe's logs: ${streams}`);
  assert(probe.lines.every(([, , time]) => /^\d\d:\d\d:\d\d\.\d{3}$/.test(time)), 'a log line has no timestamp');
});

await check('hostile step output is shown as text and never runs', async () => {
  const exported = await step('probe').locator('dl.exports').textContent();
  assert(exported.includes('<img src=x onerror='), `the export shows: ${exported}`);
  const returned = await step('probe').locator('.return-value').textContent();
  assert(returned.includes('<script>window.__pwned=1</script>'), 'the return value does not show the script text');
  const dom = await page.evaluate(() => ({
    pwned: typeof window.__pwned,
    images: document.querySelectorAll('img').length,
    scripts: [...document.scripts].map((s) => s.src),
    onerror: document.querySelectorAll('[onerror]').length,
  }));
  assert(dom.pwned === 'undefined', 'window.__pwned was set: step output ran');
  assert(dom.images === 0, `${dom.images} <img> in the page: step output became markup`);
  assert(dom.onerror === 0, 'an element with onerror is in the page');
  assert(dom.scripts.length === 1 && dom.scripts[0].endsWith('/ui/app.js'), `scripts in the page: ${dom.scripts}`);
});

await check('a run shows the response its caller got, and how an exited run ended', async () => {
  await page.goto(`${base}/#/runs/${runs[0]}`);
  await step('probe').waitFor();
  const caller = await page.locator('section.caller').textContent();
  assert(caller.includes('HTTP 201') && caller.includes('made it'), `the caller's response: ${caller}`);
  await page.goto(`${base}/#/runs/${runs[2]}`);
  await step('probe').waitFor();
  const outcome = await page.locator('main.run .outcome-exited').first().textContent();
  assert(outcome.includes('probe') && outcome.includes('nothing to do'), `the exited run says: ${outcome}`);
});

await check("a step's HTTP requests show host and verdict", async () => {
  await page.goto(`${base}/#/runs/${hostile}`);
  const row = step('probe').locator('table.egress tbody tr').first();
  const text = await row.textContent();
  assert(text.includes('api.example.com') && text.includes('refused'), `the request row: ${text}`);
});

await check('a request that had a secret swapped in names the secret, never its value', async () => {
  await page.goto(`${base}/#/runs/${hostile}`);
  const row = step('probe').locator('table.egress tbody tr', { hasText: 'slack.com' });
  await row.waitFor({ timeout: DEADLINE_MS });
  const text = await row.textContent();
  assert(text.includes('slack.oauth_access_token') && text.includes('200'), `the request row: ${text}`);
  const html = await page.content();
  assert(!html.includes(secret), 'the real token is in the page');
});

await check('live: the runs list hears a new run over GET /v1/events (contract item 8)', async () => {
  await page.goto(`${base}/#/runs?workflow=${workflow}`);
  await page.locator('#live[data-state=live]').waitFor({ timeout: 15000 }).catch(async () => {
    const state = await page.locator('#live').getAttribute('data-state');
    throw new Error(`the event stream is not connected (state ${state})`);
  });
  const heard = Number(await page.locator('#live').getAttribute('data-events'));
  const queued = await api('POST', `/workflows/${workflow}/runs`, { actions: [{ do: 'stdout', text: 'live' }] });
  assert(queued.status === 202, `manual run answered ${queued.status}`);
  await runRow(queued.body.run).waitFor();
  await page.waitForFunction((n) => Number(document.querySelector('#live').dataset.events) > n, heard);
});

await check('"Replay" queues a replay and opens the new run', async () => {
  await page.goto(`${base}/#/runs/${failed}`);
  await runPage(failed).waitFor();
  await page.getByRole('button', { name: 'Replay', exact: true }).click();
  const replay = await newRunAfter(failed);
  await finished(replay);
  assert((await runPage(replay).getAttribute('data-status')) === 'failed', 'the replay did not fail like the run');
});

await check('a replay names the run it replays (contract item 4: replay_of)', async () => {
  const facts = await page.locator('main.run dl.facts').textContent();
  assert(facts.includes('Replay of') && facts.includes(failed), `the run's facts: ${facts}`);
});

await check('"Replay from failed step" reuses the steps before it (contract item 5)', async () => {
  await page.goto(`${base}/#/runs/${failed}`);
  await runPage(failed).waitFor();
  const button = page.getByRole('button', { name: 'Replay from failed step' });
  await button.click();
  const replay = await newRunAfter(failed);
  await finished(replay);
  const reused = step('hello').locator('.reused');
  assert((await reused.count()) === 1, 'step hello is not marked as reused');
  assert((await reused.getAttribute('data-reused-from')) === failed, 'step hello is reused from another run');
  assert((await step('probe').locator('.reused').count()) === 0, 'the failed step was not run again');
});

await check('the workflows page lists the workflow with its endpoint', async () => {
  await page.goto(`${base}/#/workflows`);
  const row = page.locator(`tr[data-workflow="${workflow}"]`);
  await row.waitFor();
  const text = await row.textContent();
  assert(text.includes(`${base}/e/`), `the workflow row: ${text}`);
});

await check('the workflows page shows the last runs with their status (contract item 1)', async () => {
  const dots = page.locator(`tr[data-workflow="${workflow}"] .last-runs a`);
  await dots.first().waitFor({ timeout: 5000 }).catch(() => {
    throw new Error('no last runs in the workflow row (WorkflowView has no `last_runs`?)');
  });
  const count = await dots.count();
  assert(count >= 1 && count <= 5, `${count} last runs shown`);
});

await check("a workflow's versions are listed (contract item 2)", async () => {
  await page.goto(`${base}/#/workflows/${workflow}`);
  await expectShown(page.locator('.versions .version-list li').first(), 'the version list');
  const text = await page.locator('.versions').textContent();
  assert(text.includes('Version 1') && text.includes('[[steps]]'), `versions: ${text}`);
});

await check('"Replay all failed" replays the failed runs (contract item 6)', async () => {
  await page.goto(`${base}/#/workflows/${workflow}`);
  await page.getByRole('button', { name: 'Replay all failed' }).click();
  await page.getByRole('button', { name: 'Yes, replay them' }).click();
  const notice = page.locator('main .notice[role=status]');
  await expectShown(notice, 'the replays queued');
  const text = await notice.textContent();
  assert(/Queued \d+ replays?/.test(text), `after replaying: ${text}`);
});

await check('the steps page lists names, short ids, sizes and users (contract item 7)', async () => {
  await page.goto(`${base}/#/steps`);
  const rows = page.locator('table.steps-table tbody tr');
  await rows.first().waitFor();
  const text = await page.locator('table.steps-table').textContent();
  assert(text.includes('probe') && text.includes('hello'), `the steps table: ${text}`);
  assert(text.includes(workflow), `the steps table names no user: ${text}`);
});

await check('a token the server stops accepting returns to sign-in with a message', async () => {
  await page.evaluate(() => sessionStorage.setItem('stephost.token', 'sht_revoked'));
  await page.goto(`${base}/#/runs`);
  const notice = page.locator('.signin .notice');
  await notice.waitFor();
  assert(/401/.test(await notice.textContent()), 'no 401 message');
  await signIn(token);
  await page.locator('header.top nav').waitFor();
});

if (screenshot) {
  await check(`a screenshot of a run page is saved to ${screenshot}`, async () => {
    await page.goto(`${base}/#/runs/${hostile}`);
    await step('probe').waitFor();
    await page.screenshot({ path: screenshot, fullPage: true });
  });
}

await check('on a phone the run page fits the screen: no sideways scrolling, logs still below their step', async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  try {
    await page.goto(`${base}/#/runs/${hostile}`);
    await step('probe').waitFor();
    const fits = await page.evaluate(() => ({
      page: document.documentElement.scrollWidth,
      screen: window.innerWidth,
    }));
    assert(fits.page <= fits.screen, `the page is ${fits.page} px wide on a ${fits.screen} px screen`);
    const logs = await step('probe').locator('.log-line').first().boundingBox();
    assert(logs && logs.width <= fits.screen, 'the logs are wider than the screen');
    await page.goto(`${base}/#/runs?workflow=${workflow}`);
    await expectShown(runRow(hostile), 'the runs list on a phone');
    const list = await page.evaluate(() => document.documentElement.scrollWidth);
    assert(list <= fits.screen, `the runs list is ${list} px wide on a ${fits.screen} px screen`);
  } finally {
    await page.setViewportSize({ width: 1280, height: 900 });
  }
});

await check('sign out forgets the token', async () => {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.locator('#token').waitFor();
  assert((await page.evaluate(() => sessionStorage.getItem('stephost.token'))) === null, 'the token stays');
});

await check('the page broke no CSP rule and threw no error', async () => {
  const violations = await page.evaluate(() => window.__violations);
  assert(violations.length === 0, `CSP violations: ${violations}`);
  assert(pageErrors.length === 0, `page errors: ${pageErrors}`);
});

await browser.close();
const broken = results.filter(([, e]) => e);
console.log(`inspector: ${results.length - broken.length} of ${results.length} checks ok`);
for (const [name, e] of broken) console.log(`broken: ${name}\n  ${String(e.stack || e).split('\n').slice(0, 3).join('\n  ')}`);
process.exit(broken.length ? 1 : 0);
