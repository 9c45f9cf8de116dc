// schedules.js: GET /api/concerts/{id}/schedules (public, cached), with an
// occasional GET /api/concerts, as browsers do before choosing a show.
//
//   k6 run loadtest/k6/schedules.js
import http from 'k6/http';
import { check } from 'k6';
import { cfg, loadOptions, pause, url, randInt, jsonBody } from './lib/common.js';

export const options = loadOptions({
  'http_req_duration{name:schedules}': ['p(99)<1000'],
});

http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }));

export default function () {
  if (Math.random() < 0.1) {
    const r = http.get(url('/api/concerts'), { tags: { name: 'concerts' } });
    const b = jsonBody(r);
    check(r, {
      'concerts 200': (x) => x.status === 200,
      'a concert list': () => b !== null && Array.isArray(b.concerts),
    });
  }
  const concert = randInt(1, cfg.concerts);
  const res = http.get(url(`/api/concerts/${concert}/schedules`), { tags: { name: 'schedules' } });
  const b = jsonBody(res);
  check(res, {
    'schedules 200': (r) => r.status === 200,
    'every schedule of the concert': () => b !== null && Array.isArray(b.schedules) &&
      b.schedules.length === cfg.schedules,
    'free seats never above total': () => b !== null && Array.isArray(b.schedules) &&
      b.schedules.every((s) => s.availableSeats >= 0 && s.availableSeats <= s.totalSeats),
  });
  pause();
}
