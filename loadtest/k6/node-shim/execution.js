// execution.js: shim of `k6/execution` (the parts the scripts use).
import { shim } from './state.js';

const exec = {
  get scenario() {
    return { name: 'smoke', iterationInTest: shim.iterationInTest, iterationInInstance: shim.iterationInTest };
  },
  get vu() {
    return { idInTest: globalThis.__VU, idInInstance: globalThis.__VU, iterationInScenario: globalThis.__ITER };
  },
};

export default exec;
