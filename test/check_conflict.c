/* dsql_conflict_classify: a conflict if and only if the SQLSTATE is 40001;
 * the kind from the primary message alone (issue 13, item 9). */
#include "testutil.h"

START_TEST(test_not_40001_is_never_a_conflict)
{
    const char *states[] = {"23505", "40P01", "22P02", "P0001", "4000", "400010", "", "XX000"};
    const char *messages[] = {NULL, "", "mutation conflicts with another transaction, "
                                        "retry as needed (OC000)",
                              "schema has been updated by another transaction, please retry: "
                              "(OC001)"};
    for (size_t i = 0; i < sizeof states / sizeof states[0]; i++)
        for (size_t k = 0; k < sizeof messages / sizeof messages[0]; k++)
            ck_assert_msg(dsql_conflict_classify(states[i], messages[k]) == DSQL_CONFLICT_NONE,
                          "'%s' with '%s'", states[i], messages[k] ? messages[k] : "(null)");
    ck_assert_int_eq(dsql_conflict_classify(NULL, "(OC000)"), DSQL_CONFLICT_NONE);
    ck_assert_int_eq(dsql_conflict_classify(NULL, NULL), DSQL_CONFLICT_NONE);
}
END_TEST

START_TEST(test_data_conflict)
{
    ck_assert_int_eq(dsql_conflict_classify("40001", "mutation conflicts with another "
                                                     "transaction, retry as needed (OC000)"),
                     DSQL_CONFLICT_DATA);
    ck_assert_int_eq(dsql_conflict_classify("40001", "change conflicts with another transaction, "
                                                     "please retry: (OC000)"),
                     DSQL_CONFLICT_DATA);
}
END_TEST

START_TEST(test_schema_conflict)
{
    ck_assert_int_eq(dsql_conflict_classify("40001", "schema has been updated by another "
                                                     "transaction, please retry: (OC001)"),
                     DSQL_CONFLICT_SCHEMA);
}
END_TEST

START_TEST(test_unknown_conflict)
{
    ck_assert_int_eq(dsql_conflict_classify("40001", NULL), DSQL_CONFLICT_UNKNOWN);
    ck_assert_int_eq(dsql_conflict_classify("40001", ""), DSQL_CONFLICT_UNKNOWN);
    ck_assert_int_eq(dsql_conflict_classify("40001", "could not serialize access due to "
                                                     "concurrent update"),
                     DSQL_CONFLICT_UNKNOWN);
    ck_assert_int_eq(dsql_conflict_classify("40001", "a new code (OC002)"),
                     DSQL_CONFLICT_UNKNOWN);
}
END_TEST

START_TEST(test_both_codes_take_the_first)
{
    ck_assert_int_eq(dsql_conflict_classify("40001", "(OC001) then (OC000)"),
                     DSQL_CONFLICT_SCHEMA);
    ck_assert_int_eq(dsql_conflict_classify("40001", "(OC000) then (OC001)"), DSQL_CONFLICT_DATA);
}
END_TEST

START_TEST(test_kind_names)
{
    ck_assert_str_eq(dsql_conflict_kind_name(DSQL_CONFLICT_NONE), "DSQL_CONFLICT_NONE");
    ck_assert_str_eq(dsql_conflict_kind_name(DSQL_CONFLICT_DATA), "DSQL_CONFLICT_DATA");
    ck_assert_str_eq(dsql_conflict_kind_name(DSQL_CONFLICT_SCHEMA), "DSQL_CONFLICT_SCHEMA");
    ck_assert_str_eq(dsql_conflict_kind_name(DSQL_CONFLICT_UNKNOWN), "DSQL_CONFLICT_UNKNOWN");
    ck_assert_str_eq(dsql_conflict_kind_name((dsql_conflict_kind)42), "?");
}
END_TEST

static Suite *conflict_suite(void)
{
    Suite *s = suite_create("conflict");
    TCase *tc = tcase_create("classify");
    tcase_add_test(tc, test_not_40001_is_never_a_conflict);
    tcase_add_test(tc, test_data_conflict);
    tcase_add_test(tc, test_schema_conflict);
    tcase_add_test(tc, test_unknown_conflict);
    tcase_add_test(tc, test_both_codes_take_the_first);
    tcase_add_test(tc, test_kind_names);
    suite_add_tcase(s, tc);
    return s;
}

TEST_MAIN(conflict_suite)
