/* dsql-local's catalog history (tools/dsql-local/catalog.c): which
 * relations DDL committed since a generation changed, and "any relation"
 * when that is no longer known. Through a real gateway:
 * test/t-dsql-local-occ.sh. Each test starts from the generation it finds
 * (the history is per process). */
#include <stdlib.h>

#include "catalog.h"
#include "testutil.h"

START_TEST(nothing_changed_since_now)
{
    unsigned out[4];

    ck_assert_uint_eq(dl_catalog_changed_since(dl_catalog_gen(), out, 4), 0);
}
END_TEST

START_TEST(changes_after_a_generation_only)
{
    unsigned out[8], a[] = {10, 11}, b[] = {12};
    unsigned long g0 = dl_catalog_gen();

    dl_catalog_committed(a, 2);
    ck_assert_uint_eq(dl_catalog_gen(), g0 + 1);
    dl_catalog_committed(b, 1);
    ck_assert_uint_eq(dl_catalog_changed_since(g0, out, 8), 3);
    ck_assert_uint_eq(out[0], 10);
    ck_assert_uint_eq(out[1], 11);
    ck_assert_uint_eq(out[2], 12);
    ck_assert_uint_eq(dl_catalog_changed_since(g0 + 1, out, 8), 1);
    ck_assert_uint_eq(out[0], 12);
    ck_assert_uint_eq(dl_catalog_changed_since(g0 + 2, out, 8), 0);
}
END_TEST

START_TEST(an_unknown_change_means_any_relation)
{
    unsigned out[8], a[] = {20};
    unsigned long g0 = dl_catalog_gen();

    dl_catalog_committed(a, 1);
    dl_catalog_committed(NULL, 0);
    ck_assert_uint_eq(dl_catalog_changed_since(g0, out, 8), 1);
    ck_assert_uint_eq(out[0], DL_CATALOG_ANY);
}
END_TEST

START_TEST(more_than_fit_means_any_relation)
{
    unsigned out[2], a[] = {30, 31, 32};
    unsigned long g0 = dl_catalog_gen();

    dl_catalog_committed(a, 3);
    ck_assert_uint_eq(dl_catalog_changed_since(g0, out, 2), 1);
    ck_assert_uint_eq(out[0], DL_CATALOG_ANY);
}
END_TEST

START_TEST(forgotten_history_means_any_relation)
{
    static unsigned out[DL_CATALOG_HISTORY + 8]; /* room: only forgetting makes it "any" */
    unsigned one;
    size_t cap = sizeof out / sizeof *out;
    unsigned long g0 = dl_catalog_gen();
    int i;

    for (i = 0; i <= DL_CATALOG_HISTORY; i++) {
        one = 1000u + (unsigned)i;
        dl_catalog_committed(&one, 1);
    }
    ck_assert_uint_eq(dl_catalog_changed_since(g0, out, cap), 1);
    ck_assert_uint_eq(out[0], DL_CATALOG_ANY);
    /* the newest ones are still known */
    ck_assert_uint_eq(dl_catalog_changed_since(g0 + 1, out, cap), DL_CATALOG_HISTORY);
    ck_assert_uint_eq(dl_catalog_changed_since(dl_catalog_gen() - 1, out, cap), 1);
    ck_assert_uint_eq(out[0], 1000u + DL_CATALOG_HISTORY);
}
END_TEST

static Suite *catalog_suite(void)
{
    Suite *s = suite_create("catalog");
    TCase *tc = tcase_create("history");

    tcase_add_test(tc, nothing_changed_since_now);
    tcase_add_test(tc, changes_after_a_generation_only);
    tcase_add_test(tc, an_unknown_change_means_any_relation);
    tcase_add_test(tc, more_than_fit_means_any_relation);
    tcase_add_test(tc, forgotten_history_means_any_relation);
    suite_add_tcase(s, tc);
    return s;
}

TEST_MAIN(catalog_suite)
