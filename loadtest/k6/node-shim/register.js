// register.js: `node --import ./register.js run.js SCRIPT` resolves the k6
// modules (k6, k6/http, k6/metrics, k6/execution) to the shims in this
// directory, so that a k6 script can be smoke-run under node.
import { register } from 'node:module';

register('./hooks.js', import.meta.url);
