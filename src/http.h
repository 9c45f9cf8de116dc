/* http.h: one FastCGI request: its input, validated fields and JSON answer. */
#ifndef BOXOFFICE_HTTP_H
#define BOXOFFICE_HTTP_H

#include <fcgiapp.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "jwt.h"
#include "token.h"
#include "valid.h"

#define HTTP_PATH_MAX 512
#define HTTP_MAX_CAPTURES 3

struct route;

/*
 * Everything one request owns. http_req_begin() fills the input side;
 * handlers set the answer with http_reply()/http_error(); http_req_end()
 * writes it, logs it and frees everything the request allocated.
 */
struct req {
	FCGX_Request *fcgx;
	const char *method;		/* points into the FastCGI environment */
	char path[HTTP_PATH_MAX];	/* request path without the query */
	bool path_too_long;
	const char *content_type;
	const char *authorization;	/* never logged */
	const char *cookie;		/* the Cookie header; never logged */
	const char *remote_addr;
	char *body;			/* owned; NUL-terminated */
	size_t body_len;
	struct json_object *in;		/* owned; parsed body, NULL if none */
	struct fields f;		/* validated fields */
	const struct route *route;	/* matched route, NULL if none */
	struct token token;		/* the caller's token, as the route's auth level
					   verified it (see auth.h); zero if none */
	bool cookie_credential;		/* r->token came from the session cookie */
	char subject[JWT_SUB_MAX];	/* AUTH_PROVIDER: the verified token's "sub" */
	bool turn_ended;		/* the ACTIVE token's turn has ended (routes
					   with R_AFTER_TURN only, see route.h) */

	int status;			/* answer */
	struct json_object *out;	/* owned; answer body */
	char *raw_out;			/* owned; preformatted JSON answer */
	int retry_after;		/* seconds, 0 for none */
	char set_cookie[TOKEN_MAX + 160];	/* a Set-Cookie value, "" for none */
	const char *cache_control;	/* static string or NULL */
	const char *content_type_out;	/* static string; NULL for JSON */
	struct timespec start;
};

/* Read the request line, headers and path of a freshly accepted request. */
void http_req_begin(struct req *r, FCGX_Request *fcgx);

/*
 * Read the body (at most max bytes) and parse it as one JSON object.
 * Returns 0, or -1 after setting the error answer (413, 415 or 400).
 */
int http_read_json(struct req *r, int64_t max);

/*
 * Parse r->body (r->body_len bytes, NUL-terminated) as one JSON object
 * into r->in. Returns 0, or -1 after setting the 400 answer.
 */
int http_parse_json(struct req *r);

/* Answer status with body obj; the request takes ownership of obj. */
void http_reply(struct req *r, int status, struct json_object *obj);

/* Answer status with an already serialised JSON body (copied). */
void http_reply_raw(struct req *r, int status, const char *json, size_t len);

/*
 * Answer with the error format of the API:
 * {"error":{"code":code,"message":...}}. Always returns -1 so that
 * functions whose -1 means "answer set" can "return http_error(...)".
 */
int http_error(struct req *r, int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Write the answer, log the request, free everything it allocated. */
void http_req_end(struct req *r);

/* Free everything the request allocated (http_req_end() calls it). */
void http_req_free(struct req *r);

/*
 * The value of cookie name in the request's Cookie header, copied into
 * out (outlen bytes). Returns 0, or -1 if there is none or it does not
 * fit.
 */
int http_cookie(const struct req *r, const char *name, char *out, size_t outlen);

/* Milliseconds since the request began. */
double http_elapsed_ms(const struct req *r);

/* Reason phrase for a status code. */
const char *http_reason(int status);

#endif
