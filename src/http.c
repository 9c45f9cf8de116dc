/* http.c: FastCGI request input, body limits, JSON answers and cleanup. */
#include "http.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsoncheck.h"
#include "log.h"

void
http_req_begin(struct req *r, FCGX_Request *fcgx)
{
	const char *uri;
	size_t n;

	memset(r, 0, sizeof(*r));
	clock_gettime(CLOCK_MONOTONIC, &r->start);
	r->fcgx = fcgx;
	r->method = FCGX_GetParam("REQUEST_METHOD", fcgx->envp);
	if (r->method == NULL)
		r->method = "GET";
	r->content_type = FCGX_GetParam("CONTENT_TYPE", fcgx->envp);
	r->authorization = FCGX_GetParam("HTTP_AUTHORIZATION", fcgx->envp);
	r->cookie = FCGX_GetParam("HTTP_COOKIE", fcgx->envp);
	r->remote_addr = FCGX_GetParam("REMOTE_ADDR", fcgx->envp);

	/* The raw (undecoded) path: ids in it are digits or UUIDs, so any
	 * percent-encoding simply fails validation instead of being decoded. */
	uri = FCGX_GetParam("REQUEST_URI", fcgx->envp);
	if (uri == NULL)
		uri = FCGX_GetParam("SCRIPT_NAME", fcgx->envp);
	if (uri == NULL)
		uri = "/";
	n = strcspn(uri, "?#");
	if (n >= sizeof(r->path)) {
		r->path_too_long = true;
		n = sizeof(r->path) - 1;
	}
	memcpy(r->path, uri, n);
	r->path[n] = '\0';
}

int
http_read_json(struct req *r, int64_t max)
{
	const char *cl = FCGX_GetParam("CONTENT_LENGTH", r->fcgx->envp);
	int64_t len = 0;
	int got, rc = -1;

	/* Digits only, leading zeros allowed (RFC 9110 8.6); nginx checks the
	 * same before passing it on, the worker checks again for any front end. */
	if (cl != NULL && *cl != '\0' && !valid_content_length(cl, &len)) {
		http_error(r, 400, "BAD_REQUEST", "Content-Length is not a number");
		goto out;
	}
	if (len > max) {
		http_error(r, 413, "BODY_TOO_LARGE", "request body exceeds %lld bytes",
			   (long long)max);
		goto out;
	}
	/* application/json and nothing else, parameters such as charset allowed. */
	if (r->content_type == NULL || !valid_media_type(r->content_type, "application/json")) {
		http_error(r, 415, "UNSUPPORTED_MEDIA_TYPE",
			   "Content-Type must be application/json, optionally with parameters "
			   "(application/json; charset=utf-8)");
		goto out;
	}
	/* Read one byte past the declared length to catch a lying client. */
	r->body = malloc((size_t)len + 2);
	if (r->body == NULL) {
		http_error(r, 503, "UNAVAILABLE", "out of memory");
		goto out;
	}
	got = FCGX_GetStr(r->body, (int)len + 1, r->fcgx->in);
	if (got < 0 || got != len) {
		http_error(r, 400, "BAD_REQUEST", "request body does not match Content-Length");
		goto out;
	}
	r->body[got] = '\0';
	r->body_len = (size_t)got;
	rc = http_parse_json(r);
out:
	return rc;
}

int
http_parse_json(struct req *r)
{
	struct json_tokener *tok = NULL;
	enum json_tokener_error jerr;
	size_t end;
	int rc = -1;

	if (strlen(r->body) != r->body_len) {
		http_error(r, 400, "BAD_JSON", "request body contains a NUL byte");
		goto out;
	}
	/* json-c is lenient even in strict mode: the grammar is checked first. */
	if (!jsoncheck_valid(r->body, r->body_len, JSONCHECK_MAX_DEPTH)) {
		http_error(r, 400, "BAD_JSON", "request body is not valid JSON (RFC 8259, "
			   "UTF-8, nesting up to %d)", JSONCHECK_MAX_DEPTH);
		goto out;
	}

	tok = json_tokener_new_ex(JSONCHECK_TOKENER_DEPTH(JSONCHECK_MAX_DEPTH));
	if (tok == NULL) {
		http_error(r, 503, "UNAVAILABLE", "out of memory");
		goto out;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	r->in = json_tokener_parse_ex(tok, r->body, (int)r->body_len);
	jerr = json_tokener_get_error(tok);
	/* White space may follow the value; anything else may not. */
	end = json_tokener_get_parse_end(tok);
	while (end < r->body_len && strchr(" \t\r\n", r->body[end]) != NULL)
		end++;
	if (r->in == NULL || jerr != json_tokener_success || end != r->body_len) {
		http_error(r, 400, "BAD_JSON", "request body is not valid JSON: %s",
			   r->in == NULL || jerr != json_tokener_success ?
			   json_tokener_error_desc(jerr) : "trailing data");
		goto out;
	}
	if (!json_object_is_type(r->in, json_type_object)) {
		http_error(r, 400, "BAD_JSON", "request body must be a JSON object");
		goto out;
	}
	rc = 0;
out:
	if (tok != NULL)
		json_tokener_free(tok);
	return rc;
}

static void
reset_answer(struct req *r)
{
	json_object_put(r->out);
	r->out = NULL;
	free(r->raw_out);
	r->raw_out = NULL;
}

void
http_reply(struct req *r, int status, struct json_object *obj)
{
	reset_answer(r);
	r->status = status;
	r->out = obj;
}

void
http_reply_raw(struct req *r, int status, const char *json, size_t len)
{
	reset_answer(r);
	r->status = status;
	r->raw_out = strndup(json, len);
}

int
http_error(struct req *r, int status, const char *code, const char *fmt, ...)
{
	struct json_object *err, *wrap;
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	err = json_object_new_object();
	json_object_object_add(err, "code", json_object_new_string(code));
	json_object_object_add(err, "message", json_object_new_string(msg));
	wrap = json_object_new_object();
	json_object_object_add(wrap, "error", err);
	http_reply(r, status, wrap);
	if (status == 503 && r->retry_after == 0)
		r->retry_after = 2;
	return -1;
}

const char *
http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 402: return "Payment Required";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Entity";
	case 429: return "Too Many Requests";
	case 503: return "Service Unavailable";
	default: return "Internal Server Error";
	}
}

double
http_elapsed_ms(const struct req *r)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - r->start.tv_sec) * 1e3 +
	       (double)(now.tv_nsec - r->start.tv_nsec) / 1e6;
}

void
http_req_end(struct req *r)
{
	const char *body;
	char head[256 + sizeof(r->set_cookie)];
	size_t len;
	int n;

	if (r->status == 0)
		http_error(r, 500, "INTERNAL", "no answer was produced");
	if (r->raw_out != NULL)
		body = r->raw_out;
	else
		body = json_object_to_json_string_ext(r->out, JSON_C_TO_STRING_PLAIN);
	len = strlen(body);

	/* libfcgi's own printf lacks %zu: format the head with snprintf. */
	n = snprintf(head, sizeof(head),
		     "Status: %d %s\r\n"
		     "Content-Type: %s\r\n"
		     "Content-Length: %zu\r\n"
		     "Cache-Control: %s\r\n",
		     r->status, http_reason(r->status),
		     r->content_type_out != NULL ? r->content_type_out : "application/json", len,
		     r->cache_control != NULL ? r->cache_control : "no-store");
	if (r->retry_after > 0)
		n += snprintf(head + n, sizeof(head) - (size_t)n, "Retry-After: %d\r\n",
			      r->retry_after);
	if (r->set_cookie[0] != '\0')
		n += snprintf(head + n, sizeof(head) - (size_t)n, "Set-Cookie: %s\r\n",
			      r->set_cookie);
	n += snprintf(head + n, sizeof(head) - (size_t)n, "\r\n");
	FCGX_PutStr(head, n, r->fcgx->out);
	FCGX_PutStr(body, (int)len, r->fcgx->out);

	log_access(r->method, r->path, r->status, http_elapsed_ms(r));
	http_req_free(r);
}

int
http_cookie(const struct req *r, const char *name, char *out, size_t outlen)
{
	const char *p = r->cookie;
	size_t nlen = strlen(name), vlen;

	/* Cookie: a=1; b=2 (RFC 6265 5.4): pairs separated by "; ". */
	while (p != NULL && *p != '\0') {
		while (*p == ' ' || *p == ';')
			p++;
		if (strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
			p += nlen + 1;
			vlen = strcspn(p, ";");
			while (vlen > 0 && p[vlen - 1] == ' ')
				vlen--;
			if (vlen == 0 || vlen >= outlen)
				return -1;
			memcpy(out, p, vlen);
			out[vlen] = '\0';
			return 0;
		}
		p = strchr(p, ';');
	}
	return -1;
}

void
http_req_free(struct req *r)
{
	reset_answer(r);
	json_object_put(r->in);
	r->in = NULL;
	/* Bodies and fields may hold a password: nothing of it outlives the request. */
	if (r->body != NULL)
		sodium_memzero(r->body, r->body_len);
	if (FIELD_HAVE(&r->f, F_PASSWORD))
		sodium_memzero(r->f.password, sizeof(r->f.password));
	free(r->body);
	r->body = NULL;
}
