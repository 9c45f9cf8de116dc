/* test_unit.c: unit tests for routing, validation, configuration and tokens. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "config.h"
#include "handlers.h"
#include "jsoncheck.h"
#include "route.h"
#include "token.h"
#include "valid.h"

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

	path = write_temp("[queue]\nmax_active = 5\nabandon_after = 1\n");
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

static Suite *
suite(void)
{
	Suite *s = suite_create("boxoffice");
	TCase *tc = tcase_create("unit");

	tcase_add_test(tc, route_matches_patterns_and_captures);
	tcase_add_test(tc, route_rejects_unknown_paths_and_methods);
	tcase_add_test(tc, valid_integers_from_json_and_strings);
	tcase_add_test(tc, valid_uuids_and_keys);
	tcase_add_test(tc, config_defaults_and_file);
	tcase_add_test(tc, config_rejects_bad_values);
	tcase_add_test(tc, config_redis_sentinels);
	tcase_add_test(tc, token_round_trip_and_tampering);
	tcase_add_test(tc, jsoncheck_accepts_json_and_only_json);
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
