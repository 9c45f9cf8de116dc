/* lcache.h: a small per-worker cache of recent answers, so hot public reads cost no round trip. */
#ifndef BOXOFFICE_LCACHE_H
#define BOXOFFICE_LCACHE_H

#include <stddef.h>

/*
 * The value stored under key if it has not expired, else NULL. The pointer
 * stays valid until the next lcache_put() or lcache_clear(): copy it
 * before calling either.
 */
const char *lcache_get(const char *key, size_t *len);

/* Keep a copy of value under key for ttl_ms (no-op if ttl_ms <= 0). */
void lcache_put(const char *key, const char *value, size_t len, long ttl_ms);

/* Forget everything: after a reload, since settings may have changed. */
void lcache_clear(void);

#endif
