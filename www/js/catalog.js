// catalog.js: concerts and schedules (public, cacheable answers), memoised
// for the life of the page so that every step can name the concert and date.

import { request } from './api.js';

let concertsPromise = null;
const schedulePromises = new Map();

/** The concert list answer (memoised only when it succeeded). */
export async function loadConcerts(force) {
  if (!concertsPromise || force) {
    concertsPromise = request('GET', '/api/concerts').then((res) => {
      if (!res.ok) concertsPromise = null;
      return res;
    });
  }
  return concertsPromise;
}

export async function loadSchedules(concertId, force) {
  const key = String(concertId);
  if (!schedulePromises.has(key) || force) {
    schedulePromises.set(key, request('GET', `/api/concerts/${encodeURIComponent(concertId)}/schedules`)
      .then((res) => {
        if (!res.ok) schedulePromises.delete(key);
        return res;
      }));
  }
  return schedulePromises.get(key);
}

/** {title, venue} of a concert, or a plain fallback when it cannot be read. */
export async function concertInfo(concertId) {
  const res = await loadConcerts();
  const list = res.ok && Array.isArray(res.data.concerts) ? res.data.concerts : [];
  const c = list.find((x) => String(x.id) === String(concertId));
  return c || { id: Number(concertId), title: `Concert ${concertId}`, venue: '' };
}

/** A schedule of a concert ({id, startsAt, ...}) or null. */
export async function scheduleInfo(concertId, scheduleId) {
  const res = await loadSchedules(concertId);
  const list = res.ok && Array.isArray(res.data.schedules) ? res.data.schedules : [];
  return list.find((x) => String(x.id) === String(scheduleId)) || null;
}
