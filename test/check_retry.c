/* The shared retry schedule (dsqlauth/retry.h): backoff values, option
 * checks, deadline and cancellation. Waits that must not happen are set to a
 * minute: a wait that ignored the deadline or the cancel callback would run
 * into Check's per-test timeout and fail. */
#include "testutil.h"

static dsql_retry_options no_jitter(uint32_t base, uint32_t cap)
{
    dsql_retry_options o;
    dsql_retry_options_init(&o);
    o.base_delay_us = base;
    o.max_delay_us = cap;
    o.jitter = 0;
    return o;
}

START_TEST(test_defaults)
{
    dsql_retry_options o;
    dsql_retry_options_init(&o);
    ck_assert_int_eq(o.version, DSQL_STRUCT_VERSION);
    ck_assert_uint_eq(o.max_retries, 3);
    ck_assert_uint_eq(o.base_delay_us, 1000);
    ck_assert_uint_eq(o.max_delay_us, 100000);
    ck_assert(o.jitter == 0.25);
    ck_assert(o.deadline_ms == 0 && o.cancelled == NULL && o.cancel_arg == NULL);
    ck_assert_int_eq(dsql_retry_options_check(&o, NULL, NULL), DSQL_OK);
    ck_assert_int_eq(dsql_retry_options_check(NULL, NULL, NULL), DSQL_OK);
}
END_TEST

START_TEST(test_schedule_doubles_to_the_cap)
{
    dsql_retry_options o = no_jitter(1000, 5000);
    const uint64_t want[] = {1000, 2000, 4000, 5000, 5000};
    for (unsigned n = 1; n <= 5; n++)
        ck_assert_msg(dsql_retry_delay_us(&o, n, 0.3) == want[n - 1], "retry %u: %llu, want %llu",
                      n, (unsigned long long)dsql_retry_delay_us(&o, n, 0.3),
                      (unsigned long long)want[n - 1]);
    ck_assert_uint_eq(dsql_retry_delay_us(&o, 1000, 0.3), 5000);
}
END_TEST

START_TEST(test_schedule_jitter_bounds)
{
    dsql_retry_options o = no_jitter(1000, 100000);
    o.jitter = 0.25;
    ck_assert_uint_eq(dsql_retry_delay_us(&o, 3, 0.0), 3000);  /* 4000 * 0.75 */
    ck_assert_uint_eq(dsql_retry_delay_us(&o, 3, 0.5), 4000);
    ck_assert_uint_eq(dsql_retry_delay_us(&o, 3, 0.75), 4500);
    ck_assert_uint_eq(dsql_retry_delay_us(&o, 3, 7.0), 4000);  /* out of range: 0.5 */
}
END_TEST

START_TEST(test_check_names_the_field)
{
    dsql_error err;
    dsql_retry_options o;
    dsql_retry_options_init(&o);
    o.max_retries = 101;
    ck_assert_int_eq(dsql_retry_options_check(&o, "transaction options", &err), DSQL_EINVAL);
    ck_assert_msg(strstr(err.message, "transaction options: max_retries 101"), "%s", err.message);
    dsql_retry_options_init(&o);
    o.jitter = 1.5;
    ck_assert_int_eq(dsql_retry_options_check(&o, NULL, &err), DSQL_EINVAL);
    ck_assert_msg(strstr(err.message, "retry options: jitter"), "%s", err.message);
    dsql_retry_options_init(&o);
    o.base_delay_us = 10, o.max_delay_us = 5;
    ck_assert_int_eq(dsql_retry_options_check(&o, NULL, &err), DSQL_EINVAL);
    ck_assert_msg(strstr(err.message, "base_delay_us"), "%s", err.message);
    dsql_retry_options_init(&o);
    o.deadline_ms = -1;
    ck_assert_int_eq(dsql_retry_options_check(&o, NULL, &err), DSQL_EINVAL);
    ck_assert_msg(strstr(err.message, "deadline_ms"), "%s", err.message);
    dsql_retry_options_init(&o);
    o.version = 0;
    ck_assert_int_eq(dsql_retry_options_check(&o, NULL, &err), DSQL_EINVAL);
    ck_assert_msg(strstr(err.message, "version"), "%s", err.message);
}
END_TEST

START_TEST(test_wait_never_sleeps_past_the_deadline)
{
    dsql_retry_options o = no_jitter(60000000, 60000000); /* one minute */
    o.deadline_ms = dsql_monotonic_ms() + 1000;
    dsql_error err;
    ck_assert_int_eq(dsql_retry_wait(&o, 1, &err), DSQL_ETIMEOUT);
    ck_assert_int_eq(err.status, DSQL_ETIMEOUT);
    ck_assert_msg(strstr(err.message, "deadline"), "%s", err.message);
}
END_TEST

START_TEST(test_passed_deadline_stops_at_once)
{
    dsql_retry_options o = no_jitter(0, 0);
    o.deadline_ms = dsql_monotonic_ms() - 1;
    dsql_error err;
    ck_assert_int_eq(dsql_retry_check(&o, &err), DSQL_ETIMEOUT);
    ck_assert_int_eq(dsql_retry_wait(&o, 1, &err), DSQL_ETIMEOUT);
    o.deadline_ms = dsql_monotonic_ms() + 60000;
    ck_assert_int_eq(dsql_retry_check(&o, &err), DSQL_OK);
    ck_assert_int_eq(dsql_retry_wait(&o, 1, &err), DSQL_OK); /* a 0 us wait fits */
}
END_TEST

static int cancel_after(void *arg)
{
    int *calls = arg;
    return ++*calls >= 3;
}

START_TEST(test_cancel_interrupts_a_wait)
{
    dsql_retry_options o = no_jitter(60000000, 60000000);
    int calls = 0;
    o.cancelled = cancel_after;
    o.cancel_arg = &calls;
    dsql_error err;
    ck_assert_int_eq(dsql_retry_wait(&o, 1, &err), DSQL_ECANCELLED);
    ck_assert_int_eq(err.status, DSQL_ECANCELLED);
    ck_assert_int_eq(calls, 3); /* once before, twice while waiting */
    ck_assert_str_eq(dsql_status_name(DSQL_ECANCELLED), "DSQL_ECANCELLED");
    ck_assert_str_eq(dsql_status_name(DSQL_ETIMEOUT), "DSQL_ETIMEOUT");
}
END_TEST

START_TEST(test_cancel_wins_over_the_deadline)
{
    dsql_retry_options o = no_jitter(0, 0);
    int calls = 10;
    o.cancelled = cancel_after;
    o.cancel_arg = &calls;
    o.deadline_ms = dsql_monotonic_ms() - 1;
    ck_assert_int_eq(dsql_retry_check(&o, NULL), DSQL_ECANCELLED);
}
END_TEST

/* ---- the loop's steps (dsql_retry_before_attempt, _after_conflict) ---- */

START_TEST(test_before_attempt_keeps_the_last_error)
{
    dsql_retry_options o = no_jitter(0, 0);
    dsql_error err = {DSQL_ECONFLICT, "40001", "mutation conflicts (OC000)"};
    ck_assert_int_eq(dsql_retry_before_attempt(&o, 1, &err), DSQL_OK);
    ck_assert_str_eq(err.message, "mutation conflicts (OC000)"); /* untouched */
    o.deadline_ms = dsql_monotonic_ms() - 1;
    ck_assert_int_eq(dsql_retry_before_attempt(&o, 2, &err), DSQL_ETIMEOUT);
    ck_assert_int_eq(err.status, DSQL_ETIMEOUT);
    ck_assert_str_eq(err.sqlstate, ""); /* not the server's status */
    ck_assert_str_eq(err.message,
                     "the deadline passed after 2 attempts; the last: mutation conflicts (OC000)");
    ck_assert_int_eq(dsql_retry_before_attempt(&o, 0, &err), DSQL_ETIMEOUT);
    ck_assert_str_eq(err.message, "the deadline passed");
    ck_assert_int_eq(dsql_retry_before_attempt(&o, 0, NULL), DSQL_ETIMEOUT);
}
END_TEST

START_TEST(test_after_conflict_counts_each_kind)
{
    dsql_retry_options o = no_jitter(0, 0);
    o.max_retries = 3;
    dsql_retry_result r;
    memset(&r, 0, sizeof r);
    dsql_error err = {DSQL_ECONFLICT, "40001", "x"};
    ck_assert_int_eq(dsql_retry_after_conflict(&o, 1, DSQL_CONFLICT_SCHEMA, &r, &err), DSQL_OK);
    ck_assert_int_eq(dsql_retry_after_conflict(&o, 2, DSQL_CONFLICT_NONE, &r, &err), DSQL_OK);
    ck_assert_int_eq(dsql_retry_after_conflict(&o, 3, DSQL_CONFLICT_DATA, &r, &err), DSQL_OK);
    ck_assert_uint_eq(r.conflicts, 3);
    ck_assert_uint_eq(r.schema_conflicts, 1);
    ck_assert_uint_eq(r.unknown_conflicts, 1); /* NONE: a conflict of unknown kind */
    ck_assert_uint_eq(r.data_conflicts, 1);
    ck_assert_int_eq(r.last_conflict, DSQL_CONFLICT_DATA);
    ck_assert_uint_eq(r.attempts, 0); /* the loop's own count */
    ck_assert_int_eq(dsql_retry_after_conflict(&o, 2, DSQL_CONFLICT_DATA, NULL, &err), DSQL_OK);
}
END_TEST

START_TEST(test_after_conflict_stops_after_the_last_attempt)
{
    dsql_retry_options o = no_jitter(60000000, 60000000); /* never slept */
    o.max_retries = 2;
    dsql_retry_result r;
    memset(&r, 0, sizeof r);
    dsql_error err = {DSQL_ECONFLICT, "40001", "schema has been updated (OC001)"};
    ck_assert_int_eq(dsql_retry_after_conflict(&o, 3, DSQL_CONFLICT_SCHEMA, &r, &err),
                     DSQL_ECONFLICT);
    ck_assert_int_eq(err.status, DSQL_ECONFLICT); /* the conflict's own error */
    ck_assert_str_eq(err.sqlstate, "40001");
    ck_assert_str_eq(err.message, "schema has been updated (OC001)");
    ck_assert_uint_eq(r.conflicts, 1);
    o.max_retries = 0;
    ck_assert_int_eq(dsql_retry_after_conflict(&o, 1, DSQL_CONFLICT_DATA, &r, &err),
                     DSQL_ECONFLICT);
}
END_TEST

START_TEST(test_after_conflict_never_waits_past_the_deadline)
{
    dsql_retry_options o = no_jitter(60000000, 60000000);
    o.deadline_ms = dsql_monotonic_ms() + 60000; /* shorter than the wait */
    dsql_error err = {DSQL_ECONFLICT, "40001", "mutation conflicts (OC000)"};
    ck_assert_int_eq(dsql_retry_after_conflict(&o, 1, DSQL_CONFLICT_DATA, NULL, &err),
                     DSQL_ETIMEOUT);
    ck_assert_str_eq(err.sqlstate, "");
    ck_assert_msg(strstr(err.message, "after 1 attempt; the last: mutation conflicts (OC000)"),
                  "%s", err.message);
    int calls = 0;
    o.deadline_ms = 0;
    o.cancelled = cancel_after;
    o.cancel_arg = &calls;
    err = (dsql_error){DSQL_ECONFLICT, "40001", "c"};
    ck_assert_int_eq(dsql_retry_after_conflict(&o, 1, DSQL_CONFLICT_DATA, NULL, &err),
                     DSQL_ECANCELLED);
    ck_assert_str_eq(err.message, "cancelled by the caller after 1 attempt; the last: c");
}
END_TEST

static Suite *retry_suite(void)
{
    Suite *s = suite_create("retry");
    TCase *tc = tcase_create("schedule");
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_schedule_doubles_to_the_cap);
    tcase_add_test(tc, test_schedule_jitter_bounds);
    tcase_add_test(tc, test_check_names_the_field);
    tcase_add_test(tc, test_wait_never_sleeps_past_the_deadline);
    tcase_add_test(tc, test_passed_deadline_stops_at_once);
    tcase_add_test(tc, test_cancel_interrupts_a_wait);
    tcase_add_test(tc, test_cancel_wins_over_the_deadline);
    tcase_add_test(tc, test_before_attempt_keeps_the_last_error);
    tcase_add_test(tc, test_after_conflict_counts_each_kind);
    tcase_add_test(tc, test_after_conflict_stops_after_the_last_attempt);
    tcase_add_test(tc, test_after_conflict_never_waits_past_the_deadline);
    suite_add_tcase(s, tc);
    return s;
}

TEST_MAIN(retry_suite)
