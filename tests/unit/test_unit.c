/* test_unit.c: unit tests for routing, validation, configuration, tokens and auth levels. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "auth.h"
#include "cache.h"
#include "config.h"
#include "gate.h"
#include "handlers.h"
#include "http.h"
#include "jsoncheck.h"
#include "keys.h"
#include "lua_scripts.h"
#include "pool.h"
#include "route.h"
#include "token.h"
#include "valid.h"

/* The pool of a pattern, through a route made for it (route_pool reads only the pattern). */
static int
pool_of(const char *pattern)
{
	struct route rt = { "GET", pattern, AUTH_NONE, NULL, 0, 0, 0, 0 };

	return route_pool(&rt);
}

START_TEST(route_pools_by_prefix)
{
	const struct route *table;
	struct config conf;
	char err[256];
	int i, n, c, seen[POOL__MAX] = { 0 };

	ck_assert_int_eq(pool_of("/api/queues/token"), POOL_QUEUE);
	ck_assert_int_eq(pool_of("/api/queues/status"), POOL_QUEUE);
	ck_assert_int_eq(pool_of("/api/queues/{concertId}/progress"), POOL_QUEUE);
	ck_assert_int_eq(pool_of("/api/sessions"), POOL_SIGNIN);
	ck_assert_int_eq(pool_of("/api/sessions/oidc"), POOL_SIGNIN);
	ck_assert_int_eq(pool_of("/api/accounts"), POOL_SIGNIN);
	ck_assert_int_eq(pool_of("/api/providers/{name}"), POOL_SIGNIN);
	ck_assert_int_eq(pool_of("/api/ping"), POOL_ALL);
	ck_assert_int_eq(pool_of("/api/health"), POOL_ALL);
	ck_assert_int_eq(pool_of("/metrics"), POOL_ALL);
	/* Everything else, routes added later included, is booking. */
	ck_assert_int_eq(pool_of("/api/concerts"), POOL_BOOKING);
	ck_assert_int_eq(pool_of("/api/payments"), POOL_BOOKING);
	ck_assert_int_eq(pool_of("/api/me/tickets"), POOL_BOOKING);
	ck_assert_int_eq(pool_of("/api/tickets/{code}"), POOL_BOOKING);
	ck_assert_int_eq(pool_of("/api/users/{userId}/tickets"), POOL_BOOKING);
	/* Whole segments only. */
	ck_assert_int_eq(pool_of("/api/queuesx"), POOL_BOOKING);
	ck_assert_int_eq(pool_of("/api/sessionsx"), POOL_BOOKING);
	ck_assert_int_eq(pool_of("/api/pingx"), POOL_BOOKING);
	/* Every route of the table has a pool; each pool serves something. */
	table = route_table(&n);
	for (i = 0; i < n; i++) {
		c = route_pool(&table[i]);
		ck_assert(c >= POOL_ALL && c < POOL__MAX);
		seen[c]++;
	}
	for (c = 0; c < POOL__MAX; c++)
		ck_assert_msg(seen[c] > 0, "no route in pool %s", pool_names[c]);
	/* The pools' sizes: settings with bounds, all processes by default. */
	config_defaults(&conf);
	ck_assert_int_eq(conf.pool_queue, 64);
	ck_assert_int_eq(conf.pool_signin, 64);
	ck_assert_int_eq(conf.pool_booking, 64);
	ck_assert_int_eq(config_set(&conf, "pools", "queue", "4", err, sizeof(err)), 0);
	ck_assert_int_eq(conf.pool_queue, 4);
	ck_assert_int_eq(config_set(&conf, "pools", "booking", "0", err, sizeof(err)), -1);
	ck_assert_int_eq(config_set(&conf, "pools", "signin", "65", err, sizeof(err)), -1);
	ck_assert_int_eq(config_set(&conf, "pools", "tickets", "1", err, sizeof(err)), -1);
	ck_assert_int_eq(pool_parse("queue"), POOL_QUEUE);
	ck_assert_int_eq(pool_parse("signin"), POOL_SIGNIN);
	ck_assert_int_eq(pool_parse("booking"), POOL_BOOKING);
	ck_assert_int_eq(pool_parse("all"), POOL_ALL);
	ck_assert_int_eq(pool_parse("tickets"), -1);
	ck_assert_int_eq(pool_parse(""), -1);
}
END_TEST

START_TEST(route_matches_patterns_and_captures)
{
	const struct route *rt = NULL;
	struct route_captures caps;

	ck_assert_int_eq(route_find("GET", "/api/concerts/7/schedules/12/seats", &rt, &caps), ROUTE_OK);
	ck_assert_ptr_eq(rt->handler, h_seats);
	ck_assert_int_eq(caps.n, 2);
	ck_assert_int_eq(caps.field[0], F_CONCERT_ID);
	ck_assert_str_eq(caps.value[0], "7");
	ck_assert_int_eq(caps.field[1], F_SCHEDULE_ID);
	ck_assert_str_eq(caps.value[1], "12");
	ck_assert_int_eq(route_find("HEAD", "/api/ping", &rt, &caps), ROUTE_OK);
	ck_assert_int_eq(route_find("DELETE", "/api/reservations/x", &rt, &caps), ROUTE_OK);
	ck_assert_ptr_eq(rt->handler, h_reservation_release);
}
END_TEST

START_TEST(route_rejects_unknown_paths_and_methods)
{
	const struct route *rt = NULL;
	struct route_captures caps;

	ck_assert_int_eq(route_find("GET", "/api/nope", &rt, &caps), ROUTE_NO_PATH);
	ck_assert_int_eq(route_find("GET", "/api/concerts/", &rt, &caps), ROUTE_NO_PATH);
	ck_assert_int_eq(route_find("GET", "/api/concerts//schedules", &rt, &caps), ROUTE_NO_PATH);
	ck_assert_int_eq(route_find("GET", "/api/ping/", &rt, &caps), ROUTE_NO_PATH);
	ck_assert_int_eq(route_find("GET", "", &rt, &caps), ROUTE_NO_PATH);
	ck_assert_int_eq(route_find("DELETE", "/api/ping", &rt, &caps), ROUTE_NO_METHOD);
	ck_assert_int_eq(route_find("GET", "/api/queues/token", &rt, &caps), ROUTE_NO_METHOD);
	/* A capture longer than a segment may be is no match, not a crash. */
	{
		char path[300] = "/api/concerts/";
		memset(path + 14, '9', 200);
		strcpy(path + 214, "/schedules");
		ck_assert_int_eq(route_find("GET", path, &rt, &caps), ROUTE_NO_PATH);
	}
}
END_TEST

START_TEST(valid_integers_from_json_and_strings)
{
	struct fields f;
	struct json_object *v;

	memset(&f, 0, sizeof(f));
	v = json_object_new_int64(42);
	ck_assert_int_eq(valid_field(F_CONCERT_ID, v, NULL, &f), VALID_OK);
	ck_assert_int_eq(f.concert_id, 42);
	ck_assert(FIELD_HAVE(&f, F_CONCERT_ID));
	json_object_put(v);

	v = json_object_new_int64(0);
	ck_assert_int_eq(valid_field(F_CONCERT_ID, v, NULL, &f), VALID_RANGE);
	json_object_put(v);
	v = json_object_new_int64(-5);
	ck_assert_int_eq(valid_field(F_AMOUNT, v, NULL, &f), VALID_RANGE);
	json_object_put(v);
	v = json_object_new_int64(INT64_MAX);
	ck_assert_int_eq(valid_field(F_AMOUNT, v, NULL, &f), VALID_RANGE);
	json_object_put(v);
	v = json_object_new_double(1.5);
	ck_assert_int_eq(valid_field(F_AMOUNT, v, NULL, &f), VALID_TYPE);
	json_object_put(v);
	v = json_object_new_string("12");
	ck_assert_int_eq(valid_field(F_SEAT_NUMBER, v, NULL, &f), VALID_TYPE);
	json_object_put(v);

	ck_assert_int_eq(valid_field(F_SCHEDULE_ID, NULL, "17", &f), VALID_OK);
	ck_assert_int_eq(f.schedule_id, 17);
	ck_assert_int_eq(valid_field(F_SCHEDULE_ID, NULL, "017", &f), VALID_FORMAT);
	ck_assert_int_eq(valid_field(F_SCHEDULE_ID, NULL, "+1", &f), VALID_FORMAT);
	ck_assert_int_eq(valid_field(F_SCHEDULE_ID, NULL, "1e3", &f), VALID_FORMAT);
	ck_assert_int_eq(valid_field(F_SCHEDULE_ID, NULL, "99999999999999999999", &f), VALID_FORMAT);
	ck_assert_int_eq(valid_field(F_SCHEDULE_ID, NULL, "", &f), VALID_FORMAT);
}
END_TEST

START_TEST(valid_uuids_and_keys)
{
	struct fields f;
	struct json_object *v;

	memset(&f, 0, sizeof(f));
	v = json_object_new_string("00000000-0000-4000-8000-00000000000A");
	ck_assert_int_eq(valid_field(F_USER_ID, v, NULL, &f), VALID_OK);
	ck_assert_str_eq(f.user_id, "00000000-0000-4000-8000-00000000000a");
	json_object_put(v);
	ck_assert_int_eq(valid_field(F_USER_ID, NULL, "00000000-0000-4000-8000-00000000000", &f), VALID_FORMAT);
	ck_assert_int_eq(valid_field(F_USER_ID, NULL, "00000000x0000-4000-8000-000000000001", &f), VALID_FORMAT);
	ck_assert_int_eq(valid_field(F_USER_ID, NULL, "' OR 1=1 --", &f), VALID_FORMAT);
	v = json_object_new_string_len("00000000-0000-4000-8000-0000000000\0001", 36);
	ck_assert_int_eq(valid_field(F_USER_ID, v, NULL, &f), VALID_FORMAT);
	json_object_put(v);
	v = json_object_new_int(5);
	ck_assert_int_eq(valid_field(F_USER_ID, v, NULL, &f), VALID_TYPE);
	json_object_put(v);

	ck_assert_int_eq(valid_field(F_IDEM_KEY, NULL, "order-123_abc", &f), VALID_OK);
	ck_assert_str_eq(f.idem_key, "order-123_abc");
	ck_assert_int_eq(valid_field(F_IDEM_KEY, NULL, "has space", &f), VALID_FORMAT);
	ck_assert_int_eq(valid_field(F_IDEM_KEY, NULL, "", &f), VALID_LENGTH);
	{
		char longkey[200];
		memset(longkey, 'k', sizeof(longkey) - 1);
		longkey[sizeof(longkey) - 1] = '\0';
		ck_assert_int_eq(valid_field(F_IDEM_KEY, NULL, longkey, &f), VALID_LENGTH);
	}
	ck_assert_int_eq(valid_lookup("concertId"), F_CONCERT_ID);
	ck_assert_int_eq(valid_lookup("nope"), -1);

	/* Door codes: Crockford's base32 read leniently, stored canonical. */
	ck_assert_int_eq(valid_field(F_TICKET_CODE, NULL, "0123456789ABCDEFGHJK", &f), VALID_OK);
	ck_assert_str_eq(f.ticket_code, "0123456789ABCDEFGHJK");
	ck_assert_int_eq(valid_field(F_TICKET_CODE, NULL, "oil23-45678-9abcd-efghj", &f),
			 VALID_OK);
	ck_assert_str_eq(f.ticket_code, "01123456789ABCDEFGHJ");
	ck_assert_int_eq(valid_field(F_TICKET_CODE, NULL, "oil23-45678-9abcd-efgh", &f),
			 VALID_FORMAT);	/* 19 characters */
	ck_assert_int_eq(valid_field(F_TICKET_CODE, NULL, "0123456789ABCDEFGHJKM", &f),
			 VALID_FORMAT);	/* 21 characters */
	ck_assert_int_eq(valid_field(F_TICKET_CODE, NULL, "MNPQRSTVWXYZ0000000U", &f),
			 VALID_FORMAT);	/* U is not in the alphabet */
	ck_assert_int_eq(valid_field(F_TICKET_CODE, NULL, "ABC", &f), VALID_FORMAT);
	ck_assert_int_eq(valid_field(F_TICKET_CODE, NULL, "' OR 1=1 --AAAAAAAAAA", &f),
			 VALID_FORMAT);
	ck_assert_int_eq(valid_field(F_TICKET_ID, NULL, "0a0c0e55-0000-4000-8000-000000000002", &f),
			 VALID_OK);
}
END_TEST

/* A list of distinct UUIDs, 1 to 100 of them, stored canonical in order. */
START_TEST(valid_uuid_lists)
{
	static const char *a = "00000000-0000-4000-8000-00000000000A";
	static const char *b = "00000000-0000-4000-8000-00000000000b";
	struct fields f;
	struct json_object *v;
	int i;

	memset(&f, 0, sizeof(f));
	v = json_tokener_parse("[]");
	ck_assert_int_eq(valid_field(F_RESERVATION_IDS, v, NULL, &f), VALID_LENGTH);
	json_object_put(v);
	ck_assert(!FIELD_HAVE(&f, F_RESERVATION_IDS));

	v = json_object_new_array();
	json_object_array_add(v, json_object_new_string(b));
	json_object_array_add(v, json_object_new_string(a));
	ck_assert_int_eq(valid_field(F_RESERVATION_IDS, v, NULL, &f), VALID_OK);
	ck_assert(FIELD_HAVE(&f, F_RESERVATION_IDS));
	ck_assert_uint_eq(f.n_reservation_ids, 2);
	ck_assert_str_eq(f.reservation_ids[0], "00000000-0000-4000-8000-00000000000b");
	ck_assert_str_eq(f.reservation_ids[1], "00000000-0000-4000-8000-00000000000a");
	/* one id in two spellings is a duplicate, and *out keeps the last list */
	json_object_array_add(v, json_object_new_string("00000000-0000-4000-8000-00000000000a"));
	ck_assert_int_eq(valid_field(F_RESERVATION_IDS, v, NULL, &f), VALID_DUPLICATE);
	ck_assert_uint_eq(f.n_reservation_ids, 2);
	json_object_put(v);

	v = json_object_new_array();
	json_object_array_add(v, json_object_new_string(a));
	json_object_array_add(v, json_object_new_int(7));
	ck_assert_int_eq(valid_field(F_RESERVATION_IDS, v, NULL, &f), VALID_TYPE);
	json_object_put(v);
	v = json_object_new_array();
	json_object_array_add(v, json_object_new_string("not-a-uuid"));
	ck_assert_int_eq(valid_field(F_RESERVATION_IDS, v, NULL, &f), VALID_FORMAT);
	json_object_put(v);
	v = json_object_new_string(a);
	ck_assert_int_eq(valid_field(F_RESERVATION_IDS, v, NULL, &f), VALID_TYPE);
	json_object_put(v);
	ck_assert_int_eq(valid_field(F_RESERVATION_IDS, NULL, a, &f), VALID_TYPE);

	/* 100 distinct ids pass, 101 are too many */
	v = json_object_new_array();
	for (i = 0; i < 101; i++) {
		char id[UUID_STR];

		snprintf(id, sizeof(id), "00000000-0000-4000-8000-%012d", i);
		if (i == 100) {
			ck_assert_int_eq(valid_field(F_RESERVATION_IDS, v, NULL, &f), VALID_OK);
			ck_assert_uint_eq(f.n_reservation_ids, 100);
		}
		json_object_array_add(v, json_object_new_string(id));
	}
	ck_assert_int_eq(valid_field(F_RESERVATION_IDS, v, NULL, &f), VALID_LENGTH);
	json_object_put(v);
	ck_assert_int_eq(valid_lookup("reservationIds"), F_RESERVATION_IDS);
}
END_TEST

/* Content-Length: 1*DIGIT, leading zeros allowed, no overflow. */
static const struct {
	const char *in;
	int ok;
	int64_t value;
} lengths[] = {
	{ "0", 1, 0 }, { "12", 1, 12 }, { "012", 1, 12 }, { "0000", 1, 0 },
	{ "00000000000000000000000000000016000", 1, 16000 },
	{ "999999999999999999", 1, 999999999999999999LL },
	{ "9223372036854775807", 1, INT64_MAX },
	{ "9223372036854775806", 1, INT64_MAX - 1 },
	{ "9223372036854775808", 1, INT64_MAX },		/* saturates */
	{ "18446744073709551618", 1, INT64_MAX },
	{ "", 0, 0 }, { "+12", 0, 0 }, { "-2", 0, 0 }, { "1 2", 0, 0 }, { " 12", 0, 0 },
	{ "12 ", 0, 0 }, { "2e0", 0, 0 }, { "0x10", 0, 0 }, { "abc", 0, 0 }, { "12,12", 0, 0 },
	{ "1.0", 0, 0 }, { "\xef\xbc\x91", 0, 0 },		/* a fullwidth 1 */
};

/* Content-Type: application/json and parameters, nothing else. */
static const struct {
	const char *in;
	int ok;
} types[] = {
	{ "application/json", 1 }, { "Application/JSON", 1 }, { "APPLICATION/json", 1 },
	{ "application/json; charset=utf-8", 1 }, { "application/json;charset=UTF-8", 1 },
	{ "application/json ; charset=utf-8", 1 }, { "application/json\t;\tcharset=utf-8", 1 },
	{ "application/json;", 1 }, { "application/json; ;charset=utf-8", 1 },
	{ "application/json; charset=\"utf-8\"", 1 }, { "application/json; a=\"x\\\"y; z\"", 1 },
	{ "application/json; charset=utf-16", 1 },	/* the body decides (400 BAD_JSON) */
	{ " application/json ", 1 }, { "application/json; charset=utf-8; q=1", 1 },
	{ "application/json garbage", 0 }, { "application/json garbage; charset=utf-8", 0 },
	{ "application/json; charset=utf-8 garbage", 0 }, { "application/json charset=utf-8", 0 },
	{ "application/json,text/plain", 0 }, { "application/json/x", 0 },
	{ "application/jsonx", 0 }, { "application/json-seq", 0 }, { "application /json", 0 },
	{ "application/ json", 0 }, { "application/*", 0 }, { "text/json", 0 }, { "json", 0 },
	{ ";application/json", 0 }, { "", 0 }, { "/json", 0 }, { "application/", 0 },
	{ "application/json; charset", 0 }, { "application/json; charset=", 0 },
	{ "application/json; charset = utf-8", 0 }, { "application/json; =utf-8", 0 },
	{ "application/json; charset=\"utf-8", 0 }, { "application/json; charset=\"a\\", 0 },
	{ "application/json; charset=utf 8", 0 }, { "application/json; a=\"\x01\"", 0 },
	{ "application/json\x01", 0 }, { "application/json\r\nX-Evil: 1", 0 },
	{ "application/json; charset=utf-8\x7f", 0 },
};

START_TEST(valid_content_lengths_and_types)
{
	int64_t v;
	size_t i;

	for (i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
		v = -1;
		ck_assert_msg(valid_content_length(lengths[i].in, &v) == lengths[i].ok,
			      "Content-Length \"%s\"", lengths[i].in);
		if (lengths[i].ok)
			ck_assert_msg(v == lengths[i].value, "Content-Length \"%s\" is %lld",
				      lengths[i].in, (long long)v);
		else
			ck_assert_msg(v == -1, "\"%s\": *out set on failure", lengths[i].in);
	}
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		ck_assert_msg(valid_media_type(types[i].in, "application/json") == types[i].ok,
			      "Content-Type \"%s\"", types[i].in);
	ck_assert_int_eq(valid_media_type("text/plain; charset=utf-8", "text/plain"), 1);
	ck_assert_int_eq(valid_media_type("application/json", "application/jso"), 0);
}
END_TEST

static char *
write_temp(const char *text)
{
	static char path[64];
	int fd;

	strcpy(path, "/tmp/boxoffice-unit-XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

START_TEST(valid_emails_and_passwords)
{
	struct fields f;
	struct json_object *v;
	char big[1100];

	memset(&f, 0, sizeof(f));
	ck_assert_int_eq(valid_field(F_EMAIL, NULL, "  Ann.Lee@Example.COM ", &f), VALID_OK);
	ck_assert_str_eq(f.email, "ann.lee@example.com");
	ck_assert_int_eq(valid_field(F_EMAIL, NULL, "not an address", &f), VALID_FORMAT);
	ck_assert_int_eq(valid_field(F_EMAIL, NULL, "a@b..c", &f), VALID_FORMAT);
	ck_assert_int_eq(valid_field(F_EMAIL, NULL, "\"q\"@example.com", &f), VALID_FORMAT);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ck_assert_int_eq(valid_field(F_EMAIL, NULL, big, &f), VALID_LENGTH);
	ck_assert_str_eq(f.email, "ann.lee@example.com");	/* untouched on failure */

	/* Any text of 1 to 1024 bytes; the policy judges it elsewhere. */
	v = json_object_new_string("pa ss\twörd");
	ck_assert_int_eq(valid_field(F_PASSWORD, v, NULL, &f), VALID_OK);
	ck_assert_str_eq(f.password, "pa ss\twörd");
	json_object_put(v);
	ck_assert_int_eq(valid_field(F_PASSWORD, NULL, "", &f), VALID_LENGTH);
	big[1024] = '\0';
	ck_assert_int_eq(valid_field(F_PASSWORD, NULL, big, &f), VALID_OK);
	big[1024] = 'a';
	big[1025] = '\0';
	ck_assert_int_eq(valid_field(F_PASSWORD, NULL, big, &f), VALID_LENGTH);
	v = json_object_new_int(12345);
	ck_assert_int_eq(valid_field(F_PASSWORD, v, NULL, &f), VALID_TYPE);
	json_object_put(v);
	v = json_object_new_string_len("secret\0more", 11);
	ck_assert_int_eq(valid_field(F_PASSWORD, v, NULL, &f), VALID_FORMAT);
	json_object_put(v);
}
END_TEST

START_TEST(cookies_are_found_by_exact_name)
{
	struct req r;
	char out[64];

	memset(&r, 0, sizeof(r));
	ck_assert_int_eq(http_cookie(&r, "boxoffice_session", out, sizeof(out)), -1);
	r.cookie = "a=1; xboxoffice_session=no; boxoffice_session=v1.s.tok ; b=2";
	ck_assert_int_eq(http_cookie(&r, "boxoffice_session", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "v1.s.tok");
	r.cookie = "boxoffice_session=first;boxoffice_session=second";
	ck_assert_int_eq(http_cookie(&r, "boxoffice_session", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "first");
	r.cookie = "boxoffice_session=; other=1";
	ck_assert_int_eq(http_cookie(&r, "boxoffice_session", out, sizeof(out)), -1);
	r.cookie = "boxoffice_sessionx=1";
	ck_assert_int_eq(http_cookie(&r, "boxoffice_session", out, sizeof(out)), -1);
	r.cookie = "boxoffice_session=0123456789";
	ck_assert_int_eq(http_cookie(&r, "boxoffice_session", out, 10), -1);	/* too long */
}
END_TEST

START_TEST(config_defaults_and_file)
{
	struct config c;
	char err[256];
	char *path;

	config_defaults(&c);
	ck_assert_int_eq(c.max_active, 200);
	ck_assert_int_eq(c.hold_ttl, 300);
	ck_assert_int_eq(c.read_routing, ROUTE_REPLICA);
	ck_assert_int_eq(c.replica_count, 0);

	path = write_temp("[database]\nprimary_dsn = host=x\nreplica_dsn = host=a\n"
			  "replica_dsn = host=b\nread_routing = primary\n"
			  "[queue]\nmax_active = 7\n[redis]\ncache = bypass\n");
	ck_assert_int_eq(config_load(path, &c, err, sizeof(err)), 0);
	ck_assert_str_eq(c.primary_dsn, "host=x");
	ck_assert_int_eq(c.replica_count, 2);
	ck_assert_str_eq(c.replica_dsn[1], "host=b");
	ck_assert_int_eq(c.read_routing, ROUTE_PRIMARY);
	ck_assert_int_eq(c.max_active, 7);
	ck_assert_int_eq(c.cache, CACHE_BYPASS);
	unlink(path);
}
END_TEST

START_TEST(config_rejects_bad_values)
{
	struct config c;
	char err[256];
	char *path;

	config_defaults(&c);
	ck_assert_int_eq(config_set(&c, "queue", "max_active", "0", err, sizeof(err)), -1);
	ck_assert(strstr(err, "max_active") != NULL);
	ck_assert_int_eq(config_set(&c, "queue", "max_active", "12abc", err, sizeof(err)), -1);
	ck_assert_int_eq(config_set(&c, "queue", "max_active", "99999999999999999999", err, sizeof(err)), -1);
	ck_assert_int_eq(config_set(&c, "redis", "cache", "maybe", err, sizeof(err)), -1);
	ck_assert_int_eq(config_set(&c, "nope", "x", "1", err, sizeof(err)), -1);
	ck_assert_int_eq(c.max_active, 200);
	/* a retired setting is accepted (with a warning) and changes nothing */
	ck_assert_int_eq(config_set(&c, "queue", "abandon_after", "5", err, sizeof(err)), 0);
	ck_assert_int_eq(c.claim_window, 60);
	ck_assert_int_eq(config_set(&c, "queue", "claim_window", "0", err, sizeof(err)), -1);
	ck_assert_int_eq(config_set(&c, "queue", "claim_window", "3601", err, sizeof(err)), -1);

	path = write_temp("[queue]\nmax_active = 5\nclaim_window = 0\n");
	ck_assert_int_eq(config_load(path, &c, err, sizeof(err)), -1);
	ck_assert(strstr(err, ":3:") != NULL);
	unlink(path);
	ck_assert_int_eq(config_load("/nonexistent/boxoffice.conf", &c, err, sizeof(err)), -1);
}
END_TEST

START_TEST(config_redis_sentinels)
{
	struct config c, d;
	struct timeval tv = { 0, 200000 };
	redisContext *rc = NULL;
	char err[256];

	config_defaults(&c);
	ck_assert_str_eq(c.redis_sentinels, "");
	ck_assert_str_eq(c.redis_master_name, "boxoffice");
	ck_assert_int_eq(c.redis_wait_replica_ms, 0);
	ck_assert_int_eq(config_set(&c, "redis", "wait_replica_ms", "60001", err,
				    sizeof(err)), -1);
	ck_assert_int_eq(config_load_string("[redis]\nsentinels = 10.0.0.1:26379,"
					    "10.0.0.2:26379\nmaster_name = m1\n"
					    "wait_replica_ms = 50\n", &c, err, sizeof(err)), 0);
	ck_assert_str_eq(c.redis_sentinels, "10.0.0.1:26379,10.0.0.2:26379");
	ck_assert_str_eq(c.redis_master_name, "m1");
	ck_assert_int_eq(c.redis_wait_replica_ms, 50);
	/* A changed Sentinel list or master name means a new connection. */
	d = c;
	ck_assert(!cache_conn_settings_differ(&c, &d));
	strcpy(d.redis_master_name, "m2");
	ck_assert(cache_conn_settings_differ(&c, &d));
	/* No Sentinel answers and the first guess refuses: an error context. */
	config_defaults(&cfg);
	strcpy(cfg.redis_sentinels, "127.0.0.1:1, bogus, 127.0.0.1:99999");
	cfg.redis_port = 1;
	rc = cache_connect(tv);
	ck_assert(rc != NULL && rc->err != 0);
	redisFree(rc);
	config_defaults(&cfg);
}
END_TEST

START_TEST(token_round_trip_and_tampering)
{
	struct token t, got;
	char buf[TOKEN_MAX], *key, *old;
	char err[256];
	size_t n, i;

	key = strdup(write_temp("0123456789abcdef0123456789abcdef-key-one"));
	old = strdup(write_temp("fedcba9876543210fedcba9876543210-key-two"));
	ck_assert_int_eq(token_load_keys(key, "", err, sizeof(err)), 0);

	memset(&t, 0, sizeof(t));
	t.kind = TOKEN_ACTIVE;
	strcpy(t.user, "00000000-0000-4000-8000-000000000001");
	t.concert = 3;
	t.number = 99;
	t.iat = 1000;
	t.exp = 5000;
	n = token_sign(&t, buf, sizeof(buf));
	ck_assert_uint_gt(n, 0);
	ck_assert_int_eq(token_verify(buf, 2000, &got), TOKEN_OK);
	ck_assert_str_eq(got.user, t.user);
	ck_assert_int_eq(got.concert, 3);
	ck_assert_int_eq(got.number, 99);
	ck_assert_int_eq(got.kind, TOKEN_ACTIVE);
	ck_assert_int_eq(token_verify(buf, 5000, &got), TOKEN_EXPIRED);
	{
		char hdr[TOKEN_MAX + 8];
		snprintf(hdr, sizeof(hdr), "Bearer %s", buf);
		ck_assert_int_eq(token_verify(hdr, 2000, &got), TOKEN_OK);
	}
	/* Every single flipped byte is caught. */
	for (i = 0; i < n; i++) {
		char bad[TOKEN_MAX];
		strcpy(bad, buf);
		bad[i] ^= 0x01;
		ck_assert_int_ne(token_verify(bad, 2000, &got), TOKEN_OK);
	}
	ck_assert_int_eq(token_verify("", 2000, &got), TOKEN_MISSING);
	ck_assert_int_eq(token_verify("Bearer ", 2000, &got), TOKEN_MISSING);
	ck_assert_int_eq(token_verify("garbage", 2000, &got), TOKEN_MALFORMED);

	/* Rotation: signed with the old key, still accepted as the old key. */
	ck_assert_int_eq(token_load_keys(old, "", err, sizeof(err)), 0);
	n = token_sign(&t, buf, sizeof(buf));
	ck_assert_int_eq(token_load_keys(key, old, err, sizeof(err)), 0);
	ck_assert_int_eq(token_verify(buf, 2000, &got), TOKEN_OK);
	ck_assert_int_eq(token_load_keys(key, "", err, sizeof(err)), 0);
	ck_assert_int_eq(token_verify(buf, 2000, &got), TOKEN_BAD_SIGNATURE);
	unlink(key);
	unlink(old);
	free(key);
	free(old);
}
END_TEST

/*
 * Run auth_check() on a fresh request with the given header, address and
 * path user; returns the result, with the answer's status and error code
 * in *status and code ("" when none was set).
 */
static enum auth_result
check_auth(enum auth_need need, const char *header, const char *addr, const char *user,
	   int *status, char code[32], struct token *t)
{
	struct json_object *err, *c;
	enum auth_result res;
	struct req r;

	memset(&r, 0, sizeof(r));
	r.authorization = header;
	r.remote_addr = addr;
	if (user != NULL)
		ck_assert_int_eq(valid_field(F_USER_ID, NULL, user, &r.f), VALID_OK);
	res = auth_check(&r, need);
	*status = r.status;
	code[0] = '\0';
	if (r.out != NULL && json_object_object_get_ex(r.out, "error", &err) &&
	    json_object_object_get_ex(err, "code", &c))
		snprintf(code, 32, "%s", json_object_get_string(c));
	*t = r.token;
	http_req_free(&r);
	return res;
}

START_TEST(auth_levels_check_tokens_and_addresses)
{
	static const char alice[] = "00000000-0000-4000-8000-000000000001";
	static const char bob[] = "00000000-0000-4000-8000-000000000002";
	char key_err[256], *key, code[32], user_tok[TOKEN_MAX], wait_tok[TOKEN_MAX];
	char old_tok[TOKEN_MAX], door_tok[TOKEN_MAX];
	const struct route *rt;
	struct token t, got;
	int status, n, i;

	key = strdup(write_temp("0123456789abcdef0123456789abcdef-key-auth"));
	ck_assert_int_eq(token_load_keys(key, "", key_err, sizeof(key_err)), 0);
	memset(&t, 0, sizeof(t));
	t.kind = TOKEN_USER;
	strcpy(t.user, alice);
	t.iat = time(NULL);
	t.exp = t.iat + 600;
	ck_assert_uint_gt(token_sign(&t, user_tok, sizeof(user_tok)), 0);
	t.kind = TOKEN_WAITING;
	t.concert = 4;
	t.number = 7;
	ck_assert_uint_gt(token_sign(&t, wait_tok, sizeof(wait_tok)), 0);
	t.exp = t.iat - 1;
	ck_assert_uint_gt(token_sign(&t, old_tok, sizeof(old_tok)), 0);

	/* No token level asks for one; loopback asks for the address alone. */
	ck_assert_int_eq(check_auth(AUTH_NONE, NULL, "192.0.2.7", NULL, &status, code, &got),
			 AUTH_PASS);
	ck_assert_int_eq(check_auth(AUTH_LOOPBACK, user_tok, "192.0.2.7", NULL, &status, code,
				    &got), AUTH_DENIED);
	ck_assert_int_eq(status, 403);
	ck_assert_str_eq(code, "FORBIDDEN");
	ck_assert_int_eq(check_auth(AUTH_LOOPBACK, NULL, NULL, NULL, &status, code, &got),
			 AUTH_DENIED);
	ck_assert_int_eq(check_auth(AUTH_LOOPBACK, NULL, "127.0.0.1", NULL, &status, code, &got),
			 AUTH_PASS);
	ck_assert_int_eq(check_auth(AUTH_LOOPBACK, NULL, "::1", NULL, &status, code, &got),
			 AUTH_PASS);

	/* Every route of the table that needs a token refuses a request without one. */
	rt = route_table(&n);
	for (i = 0; i < n; i++) {
		if (rt[i].auth == AUTH_NONE || rt[i].auth == AUTH_LOOPBACK)
			continue;
		ck_assert_int_eq(check_auth(rt[i].auth, NULL, "127.0.0.1", alice, &status, code,
					    &got), AUTH_DENIED);
		ck_assert_msg(status == 401 && strcmp(code, "TOKEN_MISSING") == 0,
			      "%s %s: %d %s", rt[i].method, rt[i].pattern, status, code);
		if (rt[i].auth == AUTH_PROVIDER) {
			/* a provider's JWT, never ours; no provider keys are loaded */
			ck_assert_int_eq(check_auth(rt[i].auth, user_tok, "127.0.0.1", alice,
						    &status, code, &got), AUTH_DENIED);
			ck_assert_int_eq(status, 404);
			ck_assert_str_eq(code, "NOT_CONFIGURED");
			continue;
		}
		ck_assert_int_eq(check_auth(rt[i].auth, old_tok, "127.0.0.1", alice, &status,
					    code, &got), AUTH_DENIED);
		ck_assert_str_eq(code, "TOKEN_EXPIRED");
		ck_assert_str_eq(got.user, "");	/* a refused token's claims are cleared */
		ck_assert_int_eq(check_auth(rt[i].auth, "Bearer garbage", "127.0.0.1", alice,
					    &status, code, &got), AUTH_DENIED);
		ck_assert_str_eq(code, "TOKEN_INVALID");
	}

	/* Any genuine token; the verified claims are the request's. */
	ck_assert_int_eq(check_auth(AUTH_TOKEN, wait_tok, NULL, NULL, &status, code, &got),
			 AUTH_PASS);
	ck_assert_str_eq(got.user, alice);
	ck_assert_int_eq(got.concert, 4);
	/* Queue tokens only. */
	ck_assert_int_eq(check_auth(AUTH_QUEUE, wait_tok, NULL, NULL, &status, code, &got),
			 AUTH_PASS);
	ck_assert_int_eq(check_auth(AUTH_QUEUE, user_tok, NULL, NULL, &status, code, &got),
			 AUTH_DENIED);
	ck_assert_str_eq(code, "TOKEN_WRONG_KIND");
	/* ACTIVE tokens only (the turn itself is Redis's, see test_access.py). */
	ck_assert_int_eq(check_auth(AUTH_ACTIVE, wait_tok, NULL, NULL, &status, code, &got),
			 AUTH_DENIED);
	ck_assert_str_eq(code, "NOT_ACTIVE");
	ck_assert_int_eq(check_auth(AUTH_ACTIVE, user_tok, NULL, NULL, &status, code, &got),
			 AUTH_DENIED);
	ck_assert_str_eq(code, "NOT_ACTIVE");
	/* The path's user's token only, of any kind. */
	ck_assert_int_eq(check_auth(AUTH_USER, user_tok, NULL, alice, &status, code, &got),
			 AUTH_PASS);
	ck_assert_int_eq(check_auth(AUTH_USER, wait_tok, NULL, alice, &status, code, &got),
			 AUTH_PASS);
	ck_assert_int_eq(check_auth(AUTH_USER, user_tok, NULL, bob, &status, code, &got),
			 AUTH_DENIED);
	ck_assert_int_eq(status, 403);
	ck_assert_str_eq(code, "FORBIDDEN");
	/* A signed-in user (a user token here; sessions in test_access.py):
	 * the body's userId, if any, must be the credential's. */
	ck_assert_int_eq(check_auth(AUTH_SIGNED_IN, user_tok, NULL, NULL, &status, code, &got),
			 AUTH_PASS);
	ck_assert_str_eq(got.user, alice);
	ck_assert_int_eq(check_auth(AUTH_SIGNED_IN, user_tok, NULL, alice, &status, code, &got),
			 AUTH_PASS);
	ck_assert_int_eq(check_auth(AUTH_SIGNED_IN, user_tok, NULL, bob, &status, code, &got),
			 AUTH_DENIED);
	ck_assert_int_eq(status, 403);
	ck_assert_str_eq(code, "USER_MISMATCH");
	ck_assert_int_eq(check_auth(AUTH_SIGNED_IN, wait_tok, NULL, NULL, &status, code, &got),
			 AUTH_DENIED);
	ck_assert_int_eq(status, 403);
	ck_assert_str_eq(code, "TOKEN_WRONG_KIND");
	/* A door token opens the door and nothing else; only it opens the door. */
	memset(&t, 0, sizeof(t));
	t.kind = TOKEN_DOOR;
	strcpy(t.user, TOKEN_NO_USER);
	t.concert = 3;
	t.iat = time(NULL);
	t.exp = t.iat + 600;
	ck_assert_uint_gt(token_sign(&t, door_tok, sizeof(door_tok)), 0);
	ck_assert_int_eq(check_auth(AUTH_DOOR, door_tok, NULL, NULL, &status, code, &got),
			 AUTH_PASS);
	ck_assert_int_eq(got.concert, 3);
	ck_assert_int_eq(check_auth(AUTH_DOOR, user_tok, NULL, NULL, &status, code, &got),
			 AUTH_DENIED);
	ck_assert_int_eq(status, 403);
	ck_assert_str_eq(code, "TOKEN_WRONG_KIND");
	ck_assert_int_eq(check_auth(AUTH_TOKEN, door_tok, NULL, NULL, &status, code, &got),
			 AUTH_DENIED);
	ck_assert_int_eq(check_auth(AUTH_USER, door_tok, NULL, TOKEN_NO_USER, &status, code,
				    &got), AUTH_DENIED);
	ck_assert_int_eq(check_auth(AUTH_QUEUE, door_tok, NULL, NULL, &status, code, &got),
			 AUTH_DENIED);
	unlink(key);
	free(key);
}
END_TEST

START_TEST(jsoncheck_accepts_json_and_only_json)
{
	static const char *const good[] = {
		"{}", " {\"a\":1} \n", "[1,-0,2.5e-3,true,false,null]", "\"\\u00e9\\ud83d\\ude00\"",
		"{\"k\":\"caf\xc3\xa9 \xf0\x9f\x8e\xb5\"}", "0", "[[[]]]",
	};
	static const char *const bad[] = {
		"", "{", "{'a':1}", "{\"a\":1,}", "[1,]", "NaN", "1.", ".5", "01", "+1", "{\"a\" 1}",
		"\"\t\"", "\"\\u0000\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\x\"",
		"\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "\"\xf5\x80\x80\x80\"", "\"\xe2\x82\"",
		"{} {}", "tru", "[[[[[[[[[1]]]]]]]]]",
	};
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(jsoncheck_valid(good[i], strlen(good[i]), 8), "refused: %s", good[i]);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(!jsoncheck_valid(bad[i], strlen(bad[i]), 8), "accepted: %s", bad[i]);
}
END_TEST

/* Does json-c, set up as http.c sets it up, take text as one value? */
static int
jsonc_strict_accepts(const char *text, size_t len, int depth)
{
	struct json_tokener *tok = json_tokener_new_ex(depth);
	struct json_object *o;
	int ok;

	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, text, (int)len);
	ok = o != NULL && json_tokener_get_error(tok) == json_tokener_success &&
	     json_tokener_get_parse_end(tok) == len;
	json_object_put(o);
	json_tokener_free(tok);
	return ok;
}

/*
 * Each case the comment of jsoncheck.c lists: json-c's strict mode takes
 * it, jsoncheck refuses it. When json-c starts refusing one, drop it here
 * and there.
 */
START_TEST(jsoncheck_refuses_what_jsonc_strict_accepts)
{
	static const struct {
		const char *what, *text;
	} cases[] = {
		{ "single quotes", "{'a':1}" },
		{ "raw tab in a string", "{\"a\":\"\t\"}" },
		{ "raw control character in a string", "{\"a\":\"\x01\"}" },
		{ "NaN", "{\"a\":NaN}" },
		{ "Infinity", "{\"a\":Infinity}" },
		{ "number ending in its point", "{\"a\":1.}" },
		{ "leading zeros", "{\"a\":00}" },
		{ "overlong UTF-8", "{\"a\":\"\xc0\xaf\"}" },
		{ "surrogate encoded in UTF-8", "{\"a\":\"\xed\xa0\x80\"}" },
		{ "UTF-8 past U+10FFFF", "{\"a\":\"\xf5\x80\x80\x80\"}" },
		{ "lone high surrogate escape", "{\"a\":\"\\ud800\"}" },
		{ "lone low surrogate escape", "{\"a\":\"\\udc00\"}" },
		{ "high surrogate escape without its low half", "{\"a\":\"\\ud800\\u0041\"}" },
		{ "escaped NUL in a key", "{\"a\\u0000b\":1}" },
	};
	int depth = JSONCHECK_TOKENER_DEPTH(JSONCHECK_MAX_DEPTH);
	size_t i, n;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		n = strlen(cases[i].text);
		ck_assert_msg(jsonc_strict_accepts(cases[i].text, n, depth),
			      "json-c now refuses %s: drop the case", cases[i].what);
		ck_assert_msg(!jsoncheck_valid(cases[i].text, n, JSONCHECK_MAX_DEPTH),
			      "jsoncheck accepts %s", cases[i].what);
	}
}
END_TEST

/* jsoncheck and json-c agree on the nesting limit, on both sides of it. */
START_TEST(jsoncheck_and_jsonc_share_the_depth_limit)
{
	int depth = JSONCHECK_TOKENER_DEPTH(JSONCHECK_MAX_DEPTH), levels, i, ok;
	char text[256];
	size_t n;

	for (levels = JSONCHECK_MAX_DEPTH - 1; levels <= JSONCHECK_MAX_DEPTH + 1; levels++) {
		/* {"a":{"a":...1...}}, levels objects deep */
		for (n = 0, i = 0; i < levels; i++)
			n += (size_t)snprintf(text + n, sizeof(text) - n, "{\"a\":");
		text[n++] = '1';
		for (i = 0; i < levels; i++)
			text[n++] = '}';
		text[n] = '\0';
		ok = levels <= JSONCHECK_MAX_DEPTH;
		ck_assert_msg(jsoncheck_valid(text, n, JSONCHECK_MAX_DEPTH) == ok,
			      "jsoncheck at %d levels", levels);
		ck_assert_msg(jsonc_strict_accepts(text, n, depth) == ok, "json-c at %d levels", levels);
		/* the same with arrays: [[...[1]...]] */
		memset(text, '[', (size_t)levels);
		text[levels] = '1';
		memset(text + levels + 1, ']', (size_t)levels);
		n = (size_t)(2 * levels + 1);
		ck_assert_msg(jsoncheck_valid(text, n, JSONCHECK_MAX_DEPTH) == ok,
			      "jsoncheck at %d array levels", levels);
		ck_assert_msg(jsonc_strict_accepts(text, n, depth) == ok,
			      "json-c at %d array levels", levels);
	}
}
END_TEST

/* The queue scripts name their KEYS in the order of the C key table. */
START_TEST(queue_scripts_name_keys_in_table_order)
{
	char want[256] = "local ", key[64];
	int i;

	for (i = 0; i < KP__MAX; i++) {
		strcat(want, keys_parts[i].name);
		strcat(want, ", ");
	}
	strcat(want, "known_users, sale_key =\n  unpack(KEYS)\n");
	ck_assert_msg(strstr(LUA_QUEUE_PROLOGUE, want) != NULL, "the prologue does not start: %s", want);
	keys_queue(key, sizeof(key), 42, KP_ADMITS);
	ck_assert_str_eq(key, "q:{42}:admits");
	ck_assert_int_eq(keys_queue_concert(key, KP_ADMITS), 42);
	ck_assert_int_eq(keys_queue_concert(key, KP_SEQ), 0);
	ck_assert_int_eq(keys_queue_concert("q:{x}:admits", KP_ADMITS), 0);
	keys_queue_pattern(key, sizeof(key), KP_SEQ);
	ck_assert_str_eq(key, "q:{*}:seq");
}
END_TEST

/* Run gate_enter(cap) in a child that reports its answer ('0' or '1') on
 * fd_report, then holds on until the pipe hold is closed by the parent.
 * Returns the child's pid. */
static pid_t
gate_child(int cap, const int hold[2], int fd_report)
{
	pid_t pid = fork();
	char c = 0;

	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		close(hold[1]);
		c = (char)('0' + gate_enter(cap));
		if (write(fd_report, &c, 1) != 1)
			_exit(2);
		(void)!read(hold[0], &c, 1);
		_exit(0);
	}
	return pid;
}

START_TEST(gate_caps_live_holders_and_reclaims_dead_ones)
{
	const char *conf = write_temp("");	/* names the gate's segment */
	int hold[2], rep[2];
	pid_t a;
	char c;

	ck_assert_int_eq(pipe(hold), 0);
	ck_assert_int_eq(pipe(rep), 0);
	gate_attach(conf);
	/* a live child holds the one place: we are turned away */
	a = gate_child(1, hold, rep[1]);
	ck_assert_int_eq(read(rep[0], &c, 1), 1);
	ck_assert_int_eq(c, '1');
	ck_assert_int_eq(gate_enter(1), 0);
	/* two places: the second is ours; given back, it is free again */
	ck_assert_int_eq(gate_enter(2), 1);
	gate_leave();
	/* the holder dies without giving its place back: the place is reused */
	close(hold[1]);
	ck_assert_int_eq(waitpid(a, NULL, 0), a);
	ck_assert_int_eq(gate_enter(1), 1);
	gate_leave();
	unlink(conf);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("boxoffice");
	TCase *tc = tcase_create("unit");

	tcase_add_test(tc, route_matches_patterns_and_captures);
	tcase_add_test(tc, route_pools_by_prefix);
	tcase_add_test(tc, route_rejects_unknown_paths_and_methods);
	tcase_add_test(tc, valid_integers_from_json_and_strings);
	tcase_add_test(tc, valid_uuids_and_keys);
	tcase_add_test(tc, valid_uuid_lists);
	tcase_add_test(tc, valid_emails_and_passwords);
	tcase_add_test(tc, valid_content_lengths_and_types);
	tcase_add_test(tc, cookies_are_found_by_exact_name);
	tcase_add_test(tc, config_defaults_and_file);
	tcase_add_test(tc, config_rejects_bad_values);
	tcase_add_test(tc, config_redis_sentinels);
	tcase_add_test(tc, token_round_trip_and_tampering);
	tcase_add_test(tc, jsoncheck_accepts_json_and_only_json);
	tcase_add_test(tc, auth_levels_check_tokens_and_addresses);
	tcase_add_test(tc, jsoncheck_refuses_what_jsonc_strict_accepts);
	tcase_add_test(tc, jsoncheck_and_jsonc_share_the_depth_limit);
	tcase_add_test(tc, queue_scripts_name_keys_in_table_order);
	tcase_add_test(tc, gate_caps_live_holders_and_reclaims_dead_ones);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
