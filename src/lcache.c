/* lcache.c: a direct-mapped, time-bounded cache private to one worker. */
#include "lcache.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

#define SLOTS 256		/* a power of two */
_Static_assert((SLOTS & (SLOTS - 1)) == 0, "SLOTS must be a power of two");
#define KEY_MAX 48

struct slot {
	char key[KEY_MAX];
	char *value;		/* owned */
	size_t len;
	int64_t expires_ms;	/* monotonic */
};

static struct slot slots[SLOTS];

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Keys are short ASCII; collisions just evict. */
static struct slot *
slot_for(const char *key)
{
	return &slots[util_fnv1a(key) & (SLOTS - 1)];
}

const char *
lcache_get(const char *key, size_t *len)
{
	struct slot *s = slot_for(key);

	if (s->value == NULL || strcmp(s->key, key) != 0 || now_ms() >= s->expires_ms)
		return NULL;
	*len = s->len;
	return s->value;
}

void
lcache_put(const char *key, const char *value, size_t len, long ttl_ms)
{
	struct slot *s = slot_for(key);
	char *copy;

	if (ttl_ms <= 0 || strlen(key) >= KEY_MAX || (copy = malloc(len + 1)) == NULL)
		return;
	memcpy(copy, value, len);
	copy[len] = '\0';
	free(s->value);
	strcpy(s->key, key);
	s->value = copy;
	s->len = len;
	s->expires_ms = now_ms() + ttl_ms;
}

void
lcache_clear(void)
{
	size_t i;

	for (i = 0; i < SLOTS; i++) {
		free(slots[i].value);
		slots[i].value = NULL;
	}
}
