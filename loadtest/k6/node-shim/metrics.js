// metrics.js: shim of `k6/metrics`.
import { metric } from './state.js';

class Metric {
  constructor(name, type, isTime) {
    this.name = name;
    this.m = metric(name, type, isTime);
  }

  add(v) {
    this.m.samples.push(typeof v === 'boolean' ? (v ? 1 : 0) : Number(v));
  }
}

export class Counter extends Metric {
  constructor(name) { super(name, 'counter'); }
}
export class Gauge extends Metric {
  constructor(name) { super(name, 'gauge'); }
}
export class Rate extends Metric {
  constructor(name) { super(name, 'rate'); }
}
export class Trend extends Metric {
  constructor(name, isTime) { super(name, 'trend', isTime); }
}

export default { Counter, Gauge, Rate, Trend };
