/* pool.h: which worker processes take requests, and for which class of routes (the bulkheads). */
#ifndef BOXOFFICE_POOL_H
#define BOXOFFICE_POOL_H

#include <stdbool.h>

#define POOL_MAX 64

struct util_buf;

/*
 * The worker pools. POOL_ALL is the undivided service (every route, sized
 * by http.workers); the others each serve one class of routes, sized by
 * [pools], on their own socket, so that a slow dependency of one class
 * (the primary, for booking) holds that pool's workers only. As a route's
 * class, POOL_ALL means "any pool may answer it" (ping, health, metrics).
 */
enum pool_class { POOL_ALL, POOL_QUEUE, POOL_SIGNIN, POOL_BOOKING, POOL__MAX };

/* "all", "queue", "signin", "booking": the -p names and metric labels. */
extern const char *const pool_names[POOL__MAX];

/* The pool named name, or -1. */
int pool_parse(const char *name);

/*
 * Claim the lowest free slot among pool p's workers (a slot is free if its
 * process is gone), in shared memory named after the configuration file
 * and the pool. Returns the slot, or -1 if shared memory cannot be had
 * (then this worker always takes requests).
 */
int pool_join(const char *config_path, enum pool_class p);

/* This worker's pool (POOL_ALL until pool_join says otherwise). */
enum pool_class pool_mine(void);

/*
 * Should this worker take requests now? Workers whose slot is below their
 * pool's size (http.workers, or pools.queue/signin/booking) do; the others
 * wait idle, so a pool grows and shrinks with a reload, up to the number
 * of processes multiwatch started for it.
 */
bool pool_active(void);

/* May this worker answer a route of class c? */
bool pool_serves(enum pool_class c);

/* Mark this worker busy (a request in hand) or idle, for the gauges. */
void pool_busy(bool busy);

/*
 * Append boxoffice_pool_size and boxoffice_pool_workers{pool,state} to b:
 * for an undivided worker its pool ("all"), for a pool's worker each of
 * the three pools with a live worker. The worker writing them counts as
 * idle: a scrape should not make a pool look fuller than it is.
 */
void pool_text(struct util_buf *b);

#endif
