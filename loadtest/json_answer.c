/*
 * json_answer.c: the cost of the queue answers' JSON, written with snprintf()
 * as src/h_queue.c does, or built with json-c as http_reply() would.
 *
 *   cc -O2 -g -o json_answer loadtest/json_answer.c $(pkg-config --cflags --libs json-c)
 *   valgrind --tool=callgrind --toggle-collect='by_snprintf*' ./json_answer snprintf
 *   valgrind --tool=callgrind --toggle-collect='by_jsonc*' ./json_answer jsonc
 *
 * Each run writes the ACTIVE join answer 100,000 times (see
 * docs/performance.md, "JSON of the queue answers", for the figures).
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 100000
static const char tok[] = "v1.eyJrIjoxLCJ1IjoiMDAwMDAwMDAtMDAwMC00MDAwLTgwMDAtMDAwMDAwMDAwMDQyIiwiYyI6MywibiI6MTIzNCwiaSI6MTc2NDkwMDAwMCwiZSI6MTc2NDkwMDMwMH0.abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ";
static volatile size_t sink;

/* The ACTIVE join answer, as place_reply() writes it. */
__attribute__((noinline)) static void
by_snprintf(long long number, long long concert, long long position, const char *until)
{
	char body[1024], untilq[40];
	int n;

	snprintf(untilq, sizeof(untilq), "\"%s\"", until);
	n = snprintf(body, sizeof(body),
		     "{\"token\":\"%s\",\"queueNumber\":%lld,\"concertId\":%lld,"
		     "\"status\":\"%s\",\"position\":%lld,\"etaSeconds\":%s,"
		     "\"activeUntil\":%s%s}", tok, number, concert, "ACTIVE", position, "0",
		     untilq, ",\"rejoined\":false");
	char *out = malloc((size_t)n + 1);	/* http_reply_raw() keeps a copy */
	memcpy(out, body, (size_t)n + 1);
	sink += (size_t)n;
	free(out);
}

/* The same answer built as a json-c object and serialised as http_reply() does. */
__attribute__((noinline)) static void
by_jsonc(long long number, long long concert, long long position, const char *until)
{
	struct json_object *o = json_object_new_object();
	const char *s;

	json_object_object_add(o, "token", json_object_new_string(tok));
	json_object_object_add(o, "queueNumber", json_object_new_int64(number));
	json_object_object_add(o, "concertId", json_object_new_int64(concert));
	json_object_object_add(o, "status", json_object_new_string("ACTIVE"));
	json_object_object_add(o, "position", json_object_new_int64(position));
	json_object_object_add(o, "etaSeconds", json_object_new_int64(0));
	json_object_object_add(o, "activeUntil", json_object_new_string(until));
	json_object_object_add(o, "rejoined", json_object_new_boolean(0));
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	sink += strlen(s);
	json_object_put(o);
}

int
main(int argc, char **argv)
{
	int i, jc = argc > 1 && strcmp(argv[1], "jsonc") == 0;

	for (i = 0; i < N; i++) {
		if (jc)
			by_jsonc(1234 + i, 3, 0, "2026-12-05T07:30:00.000Z");
		else
			by_snprintf(1234 + i, 3, 0, "2026-12-05T07:30:00.000Z");
	}
	return 0;
}
