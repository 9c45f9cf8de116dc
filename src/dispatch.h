/* dispatch.h: one request from route lookup through validation and auth to its handler. */
#ifndef BOXOFFICE_DISPATCH_H
#define BOXOFFICE_DISPATCH_H

struct req;

struct route;

/*
 * Validate the fields of the parsed body r->in that route rt takes into
 * r->f. Returns 0, or -1 after setting the 400 answer.
 */
int dispatch_validate_body(struct req *r, const struct route *rt);

/*
 * Route r, validate its fields, check its caller against the route's auth
 * level and call the handler; the answer is left in r for http_req_end().
 */
void dispatch(struct req *r);

#endif
