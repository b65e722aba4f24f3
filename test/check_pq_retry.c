/* Retrying libpq work against a real PostgreSQL (through dsql-local's TLS
 * gateway with IAM tokens when it has been built, else a throwaway local
 * cluster; test/pool_harness.h): conflict kinds in the transaction info,
 * result and pool statistics. Conflicts are raised by the server: either
 * PostgreSQL's own serialization failures (two sessions updating one row),
 * or 40001 errors carrying Aurora DSQL's OC000/OC001 primary messages. */
#include <pthread.h>
#include <time.h>

#include "testutil.h"
#include "pool_harness.h"

#define OC000_SQL                                                                   \
    "DO $$ BEGIN RAISE EXCEPTION 'mutation conflicts with another transaction, "    \
    "retry as needed (OC000)' USING ERRCODE = '40001'; END $$"
#define OC001_SQL                                                                   \
    "DO $$ BEGIN RAISE EXCEPTION 'schema has been updated by another transaction, " \
    "please retry: (OC001)' USING ERRCODE = '40001'; END $$"

static dsql_status exec_status(PGconn *conn, const char *sql, dsql_error *err)
{
    PGresult *r = PQexec(conn, sql);
    dsql_status st = dsql_pq_result_status(conn, r, err);
    PQclear(r);
    return st;
}

static dsql_pq_pool_stats stats(dsql_pq_pool *p)
{
    dsql_pq_pool_stats s = {.version = DSQL_STRUCT_VERSION};
    ck_assert_int_eq(dsql_pq_pool_stats_get(p, &s), DSQL_OK);
    return s;
}

static dsql_pq_pool *new_pool(unsigned max_size)
{
    dsql_pq_pool_options o;
    dsql_pq_pool_options_init(&o);
    o.max_size = max_size;
    dsql_error err = {0};
    dsql_pq_pool *p = harness_pool(&o, &err);
    ck_assert_msg(p != NULL, "pool: %s", err.message);
    return p;
}

/* ---- conflict kinds (issue 16, item 3) ---- */

/* Attempt n runs script[n-1]; records what info said about the previous one. */
typedef struct kinds_arg {
    const char *script[4];
    dsql_conflict_kind seen_previous[4];
    unsigned runs;
} kinds_arg;

static dsql_status run_script(PGconn *conn, const dsql_pq_txn_info *info, void *arg,
                              dsql_error *err)
{
    kinds_arg *a = arg;
    ck_assert_uint_lt(info->attempt, 5);
    a->seen_previous[info->attempt - 1] = info->previous_conflict;
    a->runs++;
    return exec_status(conn, a->script[info->attempt - 1], err);
}

START_TEST(test_conflict_kinds_reported)
{
    dsql_pq_pool *p = new_pool(1);
    kinds_arg a = {{OC001_SQL, OC000_SQL, OC001_SQL, "SELECT 1"}, {0}, 0};
    dsql_error err = {0};
    dsql_pq_txn_result res;
    dsql_status st = dsql_pq_pool_run_transaction(p, run_script, &a, NULL, &res, &err);
    ck_assert_msg(st == DSQL_OK, "%s: %s", dsql_status_name(st), err.message);
    ck_assert_uint_eq(res.attempts, 4);
    ck_assert_uint_eq(res.conflicts, 3);
    ck_assert_uint_eq(res.schema_conflicts, 2);
    ck_assert_uint_eq(res.data_conflicts, 1);
    ck_assert_uint_eq(res.unknown_conflicts, 0);
    ck_assert_int_eq(res.last_conflict, DSQL_CONFLICT_SCHEMA);
    ck_assert_int_eq(a.seen_previous[0], DSQL_CONFLICT_NONE);
    ck_assert_int_eq(a.seen_previous[1], DSQL_CONFLICT_SCHEMA);
    ck_assert_int_eq(a.seen_previous[2], DSQL_CONFLICT_DATA);
    ck_assert_int_eq(a.seen_previous[3], DSQL_CONFLICT_SCHEMA);
    dsql_pq_pool_stats s = stats(p);
    ck_assert_uint_eq(s.txn_conflicts, 3);
    ck_assert_uint_eq(s.txn_conflicts_schema, 2);
    ck_assert_uint_eq(s.txn_conflicts_data, 1);
    ck_assert_uint_eq(s.txn_conflicts_unknown, 0);

    /* a call without conflicts says so */
    kinds_arg b = {{"SELECT 1"}, {0}, 0};
    st = dsql_pq_pool_run_transaction(p, run_script, &b, NULL, &res, &err);
    ck_assert_int_eq(st, DSQL_OK);
    ck_assert_int_eq(res.last_conflict, DSQL_CONFLICT_NONE);
    ck_assert_uint_eq(res.conflicts + res.data_conflicts + res.schema_conflicts, 0);
    dsql_pq_pool_free(p);
}
END_TEST

/* PostgreSQL's own serialization failure: 40001 without an OCC code. */
typedef struct race_arg {
    unsigned runs;
    dsql_conflict_kind previous;
} race_arg;

static dsql_status update_after_other(PGconn *conn, const dsql_pq_txn_info *info, void *arg,
                                      dsql_error *err)
{
    race_arg *a = arg;
    a->runs++;
    a->previous = info->previous_conflict;
    dsql_status st = exec_status(conn, "SELECT n FROM kinds_race WHERE id = 1", err);
    if (st != DSQL_OK)
        return st;
    if (info->attempt == 1) {
        PGconn *other = harness_connect();
        ck_assert(other && harness_exec(other, "UPDATE kinds_race SET n = n + 1 WHERE id = 1"));
        PQfinish(other);
    }
    return exec_status(conn, "UPDATE kinds_race SET n = n + 10 WHERE id = 1", err);
}

START_TEST(test_postgres_serialization_failure_is_unknown_kind)
{
    PGconn *c = harness_connect();
    ck_assert_ptr_nonnull(c);
    ck_assert(harness_exec(c, "DROP TABLE IF EXISTS kinds_race; "
                              "CREATE TABLE kinds_race (id int PRIMARY KEY, n int); "
                              "INSERT INTO kinds_race VALUES (1, 0)"));
    race_arg a = {0, DSQL_CONFLICT_NONE};
    dsql_error err = {0};
    dsql_pq_txn_result res;
    dsql_status st = dsql_pq_run_transaction(c, update_after_other, &a, NULL, &res, &err);
    ck_assert_msg(st == DSQL_OK, "%s: %s", dsql_status_name(st), err.message);
    ck_assert_uint_eq(res.attempts, 2);
    ck_assert_uint_eq(res.unknown_conflicts, 1);
    ck_assert_int_eq(res.last_conflict, DSQL_CONFLICT_UNKNOWN);
    ck_assert_int_eq(a.previous, DSQL_CONFLICT_UNKNOWN);
    ck_assert(harness_exec(c, "DROP TABLE kinds_race"));
    PQfinish(c);
}
END_TEST

static Suite *pq_retry_suite(void)
{
    Suite *s = suite_create("pq_retry");
    TCase *tc = tcase_create("pq_retry");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_conflict_kinds_reported);
    tcase_add_test(tc, test_postgres_serialization_failure_is_unknown_kind);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    (void)argc;
    harness_maybe_reexec(argv);
    if (pool_server_start() != 0) {
        pool_server_stop();
        fprintf(stderr, "check_pq_retry: no PostgreSQL to test against\n");
        return EXIT_FAILURE;
    }
    printf("check_pq_retry: against %s\n",
           srv.via_dsql_local ? "dsql-local (TLS gateway, IAM tokens)" : "a local PostgreSQL");
    int failed = test_run_suite(pq_retry_suite());
    pool_server_stop();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
