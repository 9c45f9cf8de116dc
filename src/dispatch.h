/* dispatch.h: one request from route lookup through validation to its handler. */
#ifndef BOXOFFICE_DISPATCH_H
#define BOXOFFICE_DISPATCH_H

struct req;

/* Route, validate and handle r; the answer is left in r for http_req_end(). */
void dispatch(struct req *r);

#endif
