// k6.js: shim of the `k6` module (sleep, check, fail, group).
import { shim, metric } from './state.js';

const cell = new Int32Array(new SharedArrayBuffer(4));

export function sleep(seconds) {
  const ms = Math.max(0, Number(seconds) || 0) * 1000 * shim.sleepScale;
  if (ms > 0) Atomics.wait(cell, 0, 0, ms);
}

export function check(value, sets) {
  let all = true;
  for (const [name, fn] of Object.entries(sets)) {
    let ok = false;
    try {
      ok = !!(typeof fn === 'function' ? fn(value) : fn);
    } catch (e) {
      ok = false;
    }
    const c = shim.checks[name] || (shim.checks[name] = { passes: 0, fails: 0 });
    if (ok) c.passes++; else c.fails++;
    metric('checks', 'rate').samples.push(ok ? 1 : 0);
    all = all && ok;
  }
  return all;
}

export function fail(msg) {
  throw new Error(msg);
}

export function group(name, fn) {
  return fn();
}

export default { sleep, check, fail, group };
