// state.js: what the shims record (metrics, checks) and the run's context.
export const shim = globalThis.__k6shim || (globalThis.__k6shim = {
  metrics: {},          // name -> { type, isTime, samples: [] }
  checks: {},           // name -> { passes, fails }
  iterationInTest: 0,
  sleepScale: Number(process.env.SHIM_SLEEP_SCALE || '0.05'),
});

export function metric(name, type, isTime) {
  if (!shim.metrics[name]) shim.metrics[name] = { type, isTime: !!isTime, samples: [] };
  return shim.metrics[name];
}
