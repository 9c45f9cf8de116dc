// run.js: smoke-run one k6 script under node with the shims of this
// directory: setup(), ITERATIONS iterations of the default function (one
// VU), teardown(), handleSummary(). Not a load test: it proves that a
// script runs against a live stack and that its checks pass.
//
//   node --import ./loadtest/k6/node-shim/register.js \
//        loadtest/k6/node-shim/run.js loadtest/k6/balance.js [ITERATIONS]
//
// Environment as for k6 (BASE_URL, USERS, ...), plus SHIM_SLEEP_SCALE
// (0.05: sleep(1) waits 50 ms). Exits 1 if a check failed or a request
// got an unexpected status.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { shim } from './state.js';

const [script, iterArg] = process.argv.slice(2);
if (!script) {
  console.error('usage: node --import register.js run.js SCRIPT [ITERATIONS]');
  process.exit(2);
}
globalThis.__ENV = Object.assign({}, process.env);
globalThis.__VU = 0;
globalThis.__ITER = 0;

const mod = await import(pathToFileURL(path.resolve(script)).href);
const iterations = parseInt(iterArg || '5', 10);
globalThis.__VU = 0;
const data = mod.setup ? mod.setup() : undefined;
globalThis.__VU = 1;
for (let i = 0; i < iterations; i++) {
  globalThis.__ITER = i;
  shim.iterationInTest = i;
  (mod.default)(data);
}
globalThis.__VU = 0;
if (mod.teardown) mod.teardown(data);

function summarize() {
  const metrics = {};
  for (const [name, m] of Object.entries(shim.metrics)) {
    if (m.type === 'statuses') continue;
    const s = m.samples;
    const values = {};
    if (m.type === 'counter') {
      values.count = s.reduce((a, b) => a + b, 0);
    } else if (m.type === 'rate') {
      values.rate = s.length ? s.filter((x) => x).length / s.length : 0;
      values.passes = s.filter((x) => x).length;
      values.fails = s.length - values.passes;
    } else if (m.type === 'gauge') {
      values.value = s.length ? s[s.length - 1] : 0;
    } else {
      const sorted = [...s].sort((a, b) => a - b);
      const pct = (p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p / 100 * sorted.length))] : 0);
      values.avg = s.length ? s.reduce((a, b) => a + b, 0) / s.length : 0;
      values.max = sorted.length ? sorted[sorted.length - 1] : 0;
      values['p(90)'] = pct(90);
      values['p(95)'] = pct(95);
      values['p(99)'] = pct(99);
    }
    metrics[name] = { type: m.type, contains: m.isTime ? 'time' : 'default', values };
  }
  const th = (mod.options && mod.options.thresholds) || {};
  for (const [name, exprs] of Object.entries(th)) {
    if (metrics[name]) metrics[name].thresholds = Object.fromEntries(exprs.map((e) => [e, { ok: true }]));
  }
  return { metrics, root_group: { checks: [] }, options: {}, state: {} };
}

if (mod.handleSummary) {
  const out = mod.handleSummary(summarize());
  if (out && out.stdout) process.stdout.write(out.stdout);
}

let bad = 0;
console.log(`\n${path.basename(script)}: ${iterations} iterations`);
for (const [name, c] of Object.entries(shim.checks)) {
  console.log(`  ${c.fails ? 'FAIL' : 'ok  '} ${name}: ${c.passes} passed, ${c.fails} failed`);
  bad += c.fails;
}
for (const [name, m] of Object.entries(shim.metrics)) {
  if (m.type !== 'statuses') continue;
  const by = {};
  m.samples.forEach((s) => { by[s] = (by[s] || 0) + 1; });
  console.log(`  ${name.slice(9, -1)}: ${Object.entries(by).map(([k, v]) => `${k} x${v}`).join(', ')}`);
}
const failed = shim.metrics.http_req_failed ? shim.metrics.http_req_failed.samples.filter((x) => x).length : 0;
console.log(`  unexpected statuses: ${failed}`);
process.exit(bad || failed ? 1 : 0);
