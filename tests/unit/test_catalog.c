/* test_catalog.c: unit tests of the catalogue file: the line of a path, the checks, ISO-8601 times. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"

static const char doc_text[] =
	"{\n"						/* 1 */
	"  \"venues\": [\n"				/* 2 */
	"    {\"key\": \"hall\", \"name\": \"Hall\",\n"	/* 3 */
	"     \"sections\": [{\"name\": \"S\", \"rows\": [\n"	/* 4 */
	"        {\"row\": \"A\", \"seats\": 2, \"tier\": \"gold\"},\n"	/* 5 */
	"        {\"row\": \"B\",\n"			/* 6 */
	"         \"seats\": 3, \"tier\": \"silver\"}]}]}\n"	/* 7 */
	"  ],\n"					/* 8 */
	"  \"concerts\": [{\n"				/* 9 */
	"    \"key\": \"c1\", \"title\": \"T [x] {y}, \\\"q\\\"\",\n"	/* 10 */
	"    \"venue\": \"hall\",\n"			/* 11 */
	"    \"prices\": {\"gold\": 10,\n"		/* 12 */
	"               \"silver\": 5},\n"		/* 13 */
	"    \"schedules\": [\n"			/* 14 */
	"      {\"key\": \"s1\", \"startsAt\": \"2027-06-01T19:30:00Z\"},\n"	/* 15 */
	"      {\"key\": \"s2\",\n"			/* 16 */
	"       \"startsAt\": \"2027-06-02T19:30:00+02:00\"}\n"	/* 17 */
	"    ]\n"					/* 18 */
	"  }]\n"					/* 19 */
	"}\n";

static int
line(const char *path)
{
	return catalog_line_of(doc_text, strlen(doc_text), path);
}

START_TEST(line_of_finds_values_by_path)
{
	ck_assert_int_eq(line(""), 1);
	ck_assert_int_eq(line("venues"), 2);
	ck_assert_int_eq(line("venues[0]"), 3);
	ck_assert_int_eq(line("venues[0].sections[0].rows[1]"), 6);
	ck_assert_int_eq(line("venues[0].sections[0].rows[1].seats"), 7);
	ck_assert_int_eq(line("venues[0].sections[0].rows[1].tier"), 7);
	ck_assert_int_eq(line("concerts[0]"), 9);
	/* brackets, braces and quotes inside strings are no structure */
	ck_assert_int_eq(line("concerts[0].venue"), 11);
	ck_assert_int_eq(line("concerts[0].prices.silver"), 13);
	ck_assert_int_eq(line("concerts[0].schedules[1].startsAt"), 17);
	ck_assert_int_eq(line("concerts[0].schedules[0].startsAt"), 15);
}
END_TEST

START_TEST(line_of_a_missing_value_is_the_nearest_on_the_way)
{
	/* a member the object lacks: the object's line */
	ck_assert_int_eq(line("concerts[0].schedules[1].id"), 16);
	ck_assert_int_eq(line("concerts[0].prices.bronze"), 12);
	/* an index past the end: the array's line */
	ck_assert_int_eq(line("concerts[0].schedules[5].startsAt"), 14);
	ck_assert_int_eq(line("concerts[3]"), 9);
	/* a path that does not fit the shape stops where it stops fitting */
	ck_assert_int_eq(line("venues.key"), 2);
	ck_assert_int_eq(line("concerts[0].venue[1]"), 11);
	ck_assert_int_eq(catalog_line_of("", 0, "a.b"), 1);
	ck_assert_int_eq(catalog_line_of("\n\n[1,\n2]", 7, "[1]"), 4);
}
END_TEST

static char path[CATALOG_PATH_MAX], msg[CATALOG_MSG_MAX];

/* Check text as a catalogue: 0 if good, else -1 with path and msg set. */
static int
check(const char *text)
{
	int ln;
	struct json_object *doc = catalog_parse(text, strlen(text), &ln, msg, sizeof(msg));
	int rc;

	ck_assert_msg(doc != NULL, "not parsed: %d: %s", ln, msg);
	rc = catalog_check(doc, path, sizeof(path), msg, sizeof(msg));
	json_object_put(doc);
	return rc;
}

START_TEST(check_accepts_a_catalogue_and_names_the_first_fault)
{
	char buf[4096];

	ck_assert_int_eq(check(doc_text), 0);
	ck_assert_int_eq(check("{\"venues\": [], \"concerts\": []}"), 0);
	ck_assert_int_eq(check("[]"), -1);
	ck_assert_int_eq(check("{\"venues\": []}"), -1);
	ck_assert_str_eq(path, "concerts");
	ck_assert_int_eq(check("{\"venues\": [], \"concerts\": [], \"x\": 1}"), -1);
	ck_assert_str_eq(path, "x");

	/* each fault of one document in turn */
	static const struct { const char *from, *to, *path; } faults[] = {
		{ "\"2027-06-02T19:30:00+02:00\"", "\"tomorrow\"", "concerts[0].schedules[1].startsAt" },
		{ "\"2027-06-01T19:30:00Z\"", "1", "concerts[0].schedules[0].startsAt" },
		{ "\"silver\": 5", "\"silver\": -5", "concerts[0].prices.silver" },
		{ "\"silver\": 5", "\"bronze\": 5", "concerts[0].prices" },
		{ "\"seats\": 3", "\"seats\": 0", "venues[0].sections[0].rows[1].seats" },
		{ "\"seats\": 3", "\"seats\": 2.5", "venues[0].sections[0].rows[1].seats" },
		{ "\"venue\": \"hall\"", "\"venue\": \"barn\"", "concerts[0].venue" },
		{ "\"key\": \"s2\"", "\"key\": \"s1\"", "concerts[0].schedules[1].key" },
		{ "\"key\": \"s2\"", "\"key\": \"s 2\"", "concerts[0].schedules[1].key" },
		{ "\"key\": \"s2\",", "", "concerts[0].schedules[1].key" },
		{ "\"tier\": \"gold\"", "\"tier\": \"gold\", \"x\": 1", "venues[0].sections[0].rows[0].x" },
		{ "\"title\": \"T", "\"title\": \"", NULL },	/* still a title */
		{ "\"key\": \"c1\"", "\"key\": \"c1\", \"saleOpensAt\": \"2027-01-02T00:00:00Z\", "
		  "\"saleClosesAt\": \"2027-01-01T00:00:00Z\"", "concerts[0].saleClosesAt" },
	};
	size_t i;

	for (i = 0; i < sizeof(faults) / sizeof(faults[0]); i++) {
		const char *at = strstr(doc_text, faults[i].from);

		ck_assert_ptr_nonnull(at);
		snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(at - doc_text), doc_text, faults[i].to,
			 at + strlen(faults[i].from));
		if (faults[i].path == NULL) {
			ck_assert_msg(check(buf) == 0, "case %zu: %s: %s", i, path, msg);
			continue;
		}
		ck_assert_msg(check(buf) == -1, "case %zu accepted", i);
		ck_assert_msg(strcmp(path, faults[i].path) == 0, "case %zu: %s: %s", i, path, msg);
	}
}
END_TEST

START_TEST(parse_errors_say_their_line)
{
	int ln = 0;
	const char *bad = "{\n \"venues\": [],\n \"concerts\": [\n  {\"key\" \"c\"}\n ]\n}\n";

	ck_assert_ptr_null(catalog_parse(bad, strlen(bad), &ln, msg, sizeof(msg)));
	ck_assert_int_eq(ln, 4);
	ck_assert_ptr_null(catalog_parse("{\n\"a\": [1,\n", 11, &ln, msg, sizeof(msg)));
	ck_assert_int_eq(ln, 3);
	ck_assert_ptr_null(catalog_parse("{} {}", 5, &ln, msg, sizeof(msg)));
	ck_assert_ptr_null(catalog_parse("{\"a\": NaN}", 10, &ln, msg, sizeof(msg)));
	ck_assert_ptr_null(catalog_parse("{\"a\": \"x\0\"}", 11, &ln, msg, sizeof(msg)));
}
END_TEST

START_TEST(times_are_iso_8601_with_a_zone)
{
	long long t = 0;

	ck_assert(catalog_time_valid("2027-06-01T19:30:00Z", &t));
	ck_assert_int_eq(t, 1811878200LL);
	ck_assert(catalog_time_valid("2027-06-01T21:30:00.250+02:00", &t));
	ck_assert_int_eq(t, 1811878200LL);
	ck_assert(catalog_time_valid("2028-02-29T00:00:00-05:30", NULL));
	ck_assert(!catalog_time_valid("2027-02-29T00:00:00Z", NULL));
	ck_assert(!catalog_time_valid("2027-06-01T19:30:00", NULL));
	ck_assert(!catalog_time_valid("2027-06-01 19:30:00Z", NULL));
	ck_assert(!catalog_time_valid("2027-06-01T24:00:00Z", NULL));
	ck_assert(!catalog_time_valid("2027-13-01T19:30:00Z", NULL));
	ck_assert(!catalog_time_valid("2027-06-01T19:30:00.Z", NULL));
	ck_assert(!catalog_time_valid("2027-06-01T19:30:00+0200", NULL));
	ck_assert(!catalog_time_valid("2027-06-01T19:30:00Zjunk", NULL));
	ck_assert(!catalog_time_valid("next friday", NULL));
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("catalog");
	TCase *tc = tcase_create("catalog");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, line_of_finds_values_by_path);
	tcase_add_test(tc, line_of_a_missing_value_is_the_nearest_on_the_way);
	tcase_add_test(tc, check_accepts_a_catalogue_and_names_the_first_fault);
	tcase_add_test(tc, parse_errors_say_their_line);
	tcase_add_test(tc, times_are_iso_8601_with_a_zone);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
