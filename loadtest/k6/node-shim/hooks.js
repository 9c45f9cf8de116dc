// hooks.js: module resolution hooks for register.js.
const SHIMS = {
  k6: 'k6.js',
  'k6/http': 'http.js',
  'k6/metrics': 'metrics.js',
  'k6/execution': 'execution.js',
};

export async function resolve(specifier, context, next) {
  if (Object.prototype.hasOwnProperty.call(SHIMS, specifier)) {
    return { url: new URL(SHIMS[specifier], import.meta.url).href, shortCircuit: true };
  }
  return next(specifier, context);
}
