/* Retrying libpq work against a real PostgreSQL (through dsql-local's TLS
 * gateway with IAM tokens when it has been built, else a throwaway local
 * cluster; test/pool_harness.h): conflict kinds in the transaction info,
 * result and pool statistics. Conflicts are raised by the server: either
 * PostgreSQL's own serialization failures (two sessions updating one row),
 * or 40001 errors carrying Aurora DSQL's OC000/OC001 primary messages. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
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

/* ---- deadlines and cancellation (issue 16, item 4) ---- */

/* A wait that must not happen lasts 100 s: a call that ignored the
 * deadline or the cancel callback would run into the test's timeout. */
#define NEVER_US 100000000u

static dsql_pq_txn_options long_waits(void)
{
    dsql_pq_txn_options t;
    dsql_pq_txn_options_init(&t);
    t.retry.max_retries = 100;
    t.retry.base_delay_us = t.retry.max_delay_us = NEVER_US;
    t.retry.jitter = 0;
    return t;
}

static void make_race_table(const char *name)
{
    PGconn *c = harness_connect();
    ck_assert_ptr_nonnull(c);
    char sql[256];
    snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS %s; CREATE TABLE %s (id int PRIMARY KEY, "
             "n int); INSERT INTO %s VALUES (1, 0)", name, name, name);
    ck_assert(harness_exec(c, sql));
    PQfinish(c);
}

/* Every attempt: read row 1, let another session update it and commit,
 * update it here: a real 40001 each time. */
typedef struct always_arg {
    unsigned runs;
    int cancel_now; /* read by the cancel callback */
} always_arg;

static dsql_status always_conflict(PGconn *conn, const dsql_pq_txn_info *info, void *arg,
                                   dsql_error *err)
{
    (void)info;
    always_arg *a = arg;
    a->runs++;
    dsql_status st = exec_status(conn, "SELECT n FROM dl_race WHERE id = 1", err);
    if (st != DSQL_OK)
        return st;
    PGconn *other = harness_connect();
    ck_assert(other && harness_exec(other, "UPDATE dl_race SET n = n + 1 WHERE id = 1"));
    PQfinish(other);
    st = exec_status(conn, "UPDATE dl_race SET n = n + 10 WHERE id = 1", err);
    if (st == DSQL_ECONFLICT)
        a->cancel_now = 1;
    return st;
}

static int cancel_when_flagged(void *arg)
{
    return ((always_arg *)arg)->cancel_now;
}

START_TEST(test_retry_never_sleeps_past_the_deadline)
{
    make_race_table("dl_race");
    PGconn *c = harness_connect();
    dsql_pq_txn_options t = long_waits();
    t.retry.deadline_ms = dsql_monotonic_ms() + 5000;
    always_arg a = {0, 0};
    dsql_error err = {0};
    dsql_pq_txn_result res;
    dsql_status st = dsql_pq_run_transaction(c, always_conflict, &a, &t, &res, &err);
    ck_assert_msg(st == DSQL_ETIMEOUT, "%s: %s", dsql_status_name(st), err.message);
    ck_assert_int_eq(err.status, DSQL_ETIMEOUT);
    ck_assert_str_eq(err.sqlstate, ""); /* not the server's 40001: not a conflict */
    ck_assert_msg(strstr(err.message, "deadline") && strstr(err.message, "after 1 attempt") &&
                      strstr(err.message, "could not serialize"),
                  "%s", err.message);
    ck_assert_uint_eq(a.runs, 1);
    ck_assert_uint_eq(res.attempts, 1);
    ck_assert_uint_eq(res.conflicts, 1);
    ck_assert_int_eq(PQtransactionStatus(c), PQTRANS_IDLE);
    PQfinish(c);
}
END_TEST

START_TEST(test_deadline_between_attempts)
{
    make_race_table("dl_race");
    PGconn *c = harness_connect();
    dsql_pq_txn_options t;
    dsql_pq_txn_options_init(&t);
    t.retry.max_retries = 100;
    t.retry.base_delay_us = t.retry.max_delay_us = 20000; /* 20 ms */
    t.retry.deadline_ms = dsql_monotonic_ms() + 300;
    always_arg a = {0, 0};
    dsql_error err = {0};
    dsql_pq_txn_result res;
    dsql_status st = dsql_pq_run_transaction(c, always_conflict, &a, &t, &res, &err);
    ck_assert_msg(st == DSQL_ETIMEOUT, "%s: %s", dsql_status_name(st), err.message);
    ck_assert_uint_lt(res.attempts, 101); /* stopped by the deadline, not the budget */
    ck_assert_uint_eq(res.conflicts, res.attempts);
    ck_assert_uint_eq(a.runs, res.attempts);
    ck_assert_int_eq(res.last_conflict, DSQL_CONFLICT_UNKNOWN);
    PQfinish(c);
}
END_TEST

START_TEST(test_cancel_interrupts_the_backoff)
{
    make_race_table("dl_race");
    PGconn *c = harness_connect();
    dsql_pq_txn_options t = long_waits();
    always_arg a = {0, 0};
    t.retry.cancelled = cancel_when_flagged;
    t.retry.cancel_arg = &a;
    dsql_error err = {0};
    dsql_pq_txn_result res;
    dsql_status st = dsql_pq_run_transaction(c, always_conflict, &a, &t, &res, &err);
    ck_assert_msg(st == DSQL_ECANCELLED, "%s: %s", dsql_status_name(st), err.message);
    ck_assert_str_eq(err.sqlstate, "");
    ck_assert_uint_eq(res.attempts, 1);
    ck_assert_int_eq(PQtransactionStatus(c), PQTRANS_IDLE);

    /* cancelled before the start: the callback never runs */
    a.runs = 0;
    st = dsql_pq_run_transaction(c, always_conflict, &a, &t, &res, &err);
    ck_assert_int_eq(st, DSQL_ECANCELLED);
    ck_assert_uint_eq(a.runs, 0);
    ck_assert_uint_eq(res.attempts, 0);
    PQfinish(c);
}
END_TEST

static int count_then_cancel(void *arg)
{
    int *calls = arg;
    return ++*calls >= 5;
}

START_TEST(test_pool_acquire_deadline_and_cancel)
{
    dsql_pq_pool *p = new_pool(1);
    dsql_error err = {0};
    PGconn *held = dsql_pq_pool_acquire(p, -1, &err);
    ck_assert_msg(held != NULL, "%s", err.message);
    dsql_retry_options until;
    dsql_retry_options_init(&until);
    until.deadline_ms = dsql_monotonic_ms() + 200;
    ck_assert_ptr_null(dsql_pq_pool_acquire_until(p, 100000, &until, &err));
    ck_assert_int_eq(err.status, DSQL_ETIMEOUT);
    ck_assert_msg(strstr(err.message, "deadline"), "%s", err.message);

    dsql_retry_options_init(&until);
    int calls = 0;
    until.cancelled = count_then_cancel;
    until.cancel_arg = &calls;
    ck_assert_ptr_null(dsql_pq_pool_acquire_until(p, 100000, &until, &err));
    ck_assert_int_eq(err.status, DSQL_ECANCELLED);
    ck_assert_int_eq(calls, 5);

    /* the pool's transaction waits no longer than its deadline either */
    dsql_pq_txn_options t;
    dsql_pq_txn_options_init(&t);
    t.retry.deadline_ms = dsql_monotonic_ms() + 200;
    always_arg a = {0, 0};
    dsql_pq_txn_result res;
    ck_assert_int_eq(dsql_pq_pool_run_transaction(p, always_conflict, &a, &t, &res, &err),
                     DSQL_ETIMEOUT);
    ck_assert_uint_eq(a.runs, 0);
    dsql_pq_pool_stats s = stats(p);
    ck_assert_uint_eq(s.timeouts, 2);
    ck_assert_uint_eq(s.txn_failures, 1);
    ck_assert_int_eq(dsql_pq_pool_release(p, held), DSQL_OK);

    /* with a free connection the same call goes through */
    until.cancelled = NULL;
    until.deadline_ms = dsql_monotonic_ms() + 60000;
    PGconn *c = dsql_pq_pool_acquire_until(p, 100000, &until, &err);
    ck_assert_msg(c != NULL, "%s", err.message);
    ck_assert_int_eq(dsql_pq_pool_release(p, c), DSQL_OK);
    dsql_pq_pool_free(p);
}
END_TEST

/* A server that accepts TCP connections and never says a word: the
 * connect would wait forever (no connect_timeout) without the deadline. */
static int silent_listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(fd, 8), 0);
    socklen_t len = sizeof a;
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

START_TEST(test_connect_deadline_and_cancel)
{
    int port, lfd = silent_listener(&port);
    char conninfo[200];
    snprintf(conninfo, sizeof conninfo,
             "host=127.0.0.1 port=%d user=admin dbname=postgres region=us-east-1", port);
    dsql_error err = {0};
    dsql_config *cfg = dsql_config_new(&err);
    ck_assert_ptr_nonnull(cfg);
    ck_assert_msg(dsql_config_parse(cfg, conninfo, &err) == DSQL_OK, "%s", err.message);
    dsql_token_provider *tp = srv.counting;
    dsql_retry_options until;
    dsql_retry_options_init(&until);
    until.deadline_ms = dsql_monotonic_ms() + 300;
    ck_assert_ptr_null(dsql_pq_connect_until(cfg, tp, &until, &err));
    ck_assert_msg(err.status == DSQL_ETIMEOUT, "%s: %s", dsql_status_name(err.status),
                  err.message);
    dsql_retry_options_init(&until);
    int calls = 0;
    until.cancelled = count_then_cancel;
    until.cancel_arg = &calls;
    ck_assert_ptr_null(dsql_pq_connect_until(cfg, tp, &until, &err));
    ck_assert_msg(err.status == DSQL_ECANCELLED, "%s: %s", dsql_status_name(err.status),
                  err.message);
    ck_assert_int_eq(calls, 5);
    until.version = 0;
    ck_assert_ptr_null(dsql_pq_connect_until(cfg, tp, &until, &err));
    ck_assert_int_eq(err.status, DSQL_EINVAL);
    dsql_config_free(cfg);
    close(lfd);
}
END_TEST

/* ---- a single statement with retry (issue 16, item 2) ---- */

/* Session B holds row 1 of ex_race in an open transaction; once the
 * statement under test waits for that row lock, B commits: the waiting
 * UPDATE's snapshot is older than B's commit, a real 40001. */
typedef struct committer {
    PGconn *b;
    int ok;
} committer;

static void *commit_when_blocked(void *arg)
{
    committer *cm = arg;
    PGconn *watch = harness_connect();
    for (int i = 0; watch && i < 2000; i++) {
        PGresult *r = PQexec(watch, "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = "
                                    "'Lock' AND query LIKE 'UPDATE ex_race%'");
        int blocked = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0;
        PQclear(r);
        if (blocked)
            break;
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    PQfinish(watch);
    PGresult *r = PQexec(cm->b, "COMMIT");
    cm->ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    return NULL;
}

static void ex_race_setup(PGconn **b)
{
    make_race_table("ex_race");
    *b = harness_connect();
    ck_assert_ptr_nonnull(*b);
    ck_assert(harness_exec(*b, "BEGIN ISOLATION LEVEL REPEATABLE READ"));
    ck_assert(harness_exec(*b, "UPDATE ex_race SET n = n + 1 WHERE id = 1"));
}

static int ex_race_value(PGconn *c)
{
    PGresult *r = PQexec(c, "SELECT n FROM ex_race WHERE id = 1");
    ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
    int n = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    return n;
}

START_TEST(test_exec_with_retry_two_sessions)
{
    PGconn *b;
    ex_race_setup(&b);
    PGconn *c = harness_connect();
    ck_assert(harness_exec(c, "SET default_transaction_isolation = 'repeatable read'"));
    committer cm = {b, 0};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, commit_when_blocked, &cm), 0);
    const char *values[] = {"10"};
    dsql_error err = {0};
    dsql_pq_txn_result res;
    PGresult *r = dsql_pq_exec_with_retry(c, "UPDATE ex_race SET n = n + $1::int WHERE id = 1",
                                          1, values, NULL, &res, &err);
    pthread_join(th, NULL);
    ck_assert(cm.ok);
    ck_assert_msg(r != NULL, "%s: %s", dsql_status_name(err.status), err.message);
    ck_assert_int_eq(PQresultStatus(r), PGRES_COMMAND_OK);
    ck_assert_str_eq(PQcmdTuples(r), "1");
    PQclear(r);
    ck_assert_uint_eq(res.attempts, 2);
    ck_assert_uint_eq(res.conflicts, 1);
    ck_assert_int_eq(res.last_conflict, DSQL_CONFLICT_UNKNOWN); /* PostgreSQL's own text */
    ck_assert_int_eq(ex_race_value(c), 11);                     /* both applied once */
    ck_assert_int_eq(PQtransactionStatus(c), PQTRANS_IDLE);     /* autocommit */

    /* retries off: the same race is reported as the conflict it is */
    PQfinish(b);
    ex_race_setup(&b);
    cm = (committer){b, 0};
    ck_assert_int_eq(pthread_create(&th, NULL, commit_when_blocked, &cm), 0);
    dsql_retry_options o;
    dsql_retry_options_init(&o);
    o.max_retries = 0;
    r = dsql_pq_exec_with_retry(c, "UPDATE ex_race SET n = n + 10 WHERE id = 1", 0, NULL, &o,
                                &res, &err);
    pthread_join(th, NULL);
    ck_assert_ptr_null(r);
    ck_assert_int_eq(err.status, DSQL_ECONFLICT);
    ck_assert_str_eq(err.sqlstate, "40001");
    ck_assert_uint_eq(res.attempts, 1);
    ck_assert_int_eq(ex_race_value(c), 1);
    PQfinish(b);
    PQfinish(c);
}
END_TEST

/* A migration step that meets a schema conflict (OC001, raised by the
 * server the first time only: a sequence survives the rollback) and then
 * goes through, as DDL does after another session's DDL in Aurora DSQL. */
START_TEST(test_exec_with_retry_ddl_schema_conflict)
{
    PGconn *c = harness_connect();
    ck_assert(harness_exec(c, "DROP TABLE IF EXISTS mig_t; DROP SEQUENCE IF EXISTS mig_try; "
                              "CREATE SEQUENCE mig_try"));
    const char *step =
        "DO $$ BEGIN IF nextval('mig_try') = 1 THEN RAISE EXCEPTION USING ERRCODE = '40001', "
        "MESSAGE = 'schema has been updated by another transaction, please retry: (OC001)'; "
        "END IF; EXECUTE 'CREATE TABLE mig_t (id int PRIMARY KEY)'; END $$";
    dsql_error err = {0};
    dsql_pq_txn_result res;
    PGresult *r = dsql_pq_exec_with_retry(c, step, 0, NULL, NULL, &res, &err);
    ck_assert_msg(r != NULL, "%s: %s", dsql_status_name(err.status), err.message);
    PQclear(r);
    ck_assert_uint_eq(res.attempts, 2);
    ck_assert_uint_eq(res.schema_conflicts, 1);
    ck_assert_int_eq(res.last_conflict, DSQL_CONFLICT_SCHEMA);
    ck_assert(harness_exec(c, "INSERT INTO mig_t VALUES (1)"));

    /* a plain error is not retried and keeps the server's SQLSTATE */
    r = dsql_pq_exec_with_retry(c, "INSERT INTO mig_t VALUES (1)", 0, NULL, NULL, &res, &err);
    ck_assert_ptr_null(r);
    ck_assert_int_eq(err.status, DSQL_ESERVER);
    ck_assert_str_eq(err.sqlstate, "23505");
    ck_assert_uint_eq(res.attempts, 1);
    ck_assert(harness_exec(c, "DROP TABLE mig_t; DROP SEQUENCE mig_try"));
    PQfinish(c);
}
END_TEST

START_TEST(test_exec_with_retry_deadline_cancels_the_statement)
{
    PGconn *c = harness_connect();
    dsql_retry_options o;
    dsql_retry_options_init(&o);
    o.deadline_ms = dsql_monotonic_ms() + 300;
    dsql_error err = {0};
    PGresult *r = dsql_pq_exec_with_retry(c, "SELECT pg_sleep(100)", 0, NULL, &o, NULL, &err);
    ck_assert_ptr_null(r);
    ck_assert_msg(err.status == DSQL_ETIMEOUT, "%s: %s", dsql_status_name(err.status),
                  err.message);
    ck_assert_str_eq(err.sqlstate, "");
    /* the connection is usable at once: the server cancelled the sleep */
    ck_assert_int_eq(PQtransactionStatus(c), PQTRANS_IDLE);
    r = dsql_pq_exec_with_retry(c, "SELECT $1::int + 1", 1, (const char *const[]){"41"}, NULL,
                                NULL, &err);
    ck_assert_msg(r != NULL, "%s", err.message);
    ck_assert_str_eq(PQgetvalue(r, 0, 0), "42");
    PQclear(r);
    PQfinish(c);
}
END_TEST

START_TEST(test_pool_exec_with_retry)
{
    dsql_pq_pool *p = new_pool(1);
    dsql_error err = {0};
    dsql_pq_txn_result res;
    const char *values[] = {"41", NULL};
    PGresult *r = dsql_pq_pool_exec_with_retry(p, "SELECT $1::int + 1, $2::text IS NULL", 2,
                                               values, NULL, &res, &err);
    ck_assert_msg(r != NULL, "%s", err.message);
    ck_assert_str_eq(PQgetvalue(r, 0, 0), "42");
    ck_assert_str_eq(PQgetvalue(r, 0, 1), "t");
    PQclear(r);
    ck_assert_uint_eq(res.attempts, 1);
    r = dsql_pq_pool_exec_with_retry(p, OC000_SQL, 0, NULL, NULL, &res, &err);
    ck_assert_ptr_null(r);
    ck_assert_int_eq(err.status, DSQL_ECONFLICT);
    ck_assert_uint_eq(res.attempts, 4); /* the pool's txn.retry: 3 retries */
    ck_assert_uint_eq(res.data_conflicts, 4);
    dsql_pq_pool_stats s = stats(p);
    ck_assert_uint_eq(s.txn_commits, 1);
    ck_assert_uint_eq(s.txn_failures, 1);
    ck_assert_uint_eq(s.txn_conflicts_data, 4);
    ck_assert_uint_eq(s.in_use, 0);
    ck_assert_ptr_null(dsql_pq_pool_exec_with_retry(p, NULL, 0, NULL, NULL, NULL, &err));
    ck_assert_int_eq(err.status, DSQL_EINVAL);
    ck_assert_ptr_null(dsql_pq_pool_exec_with_retry(p, "SELECT 1", 1, NULL, NULL, NULL, &err));
    ck_assert_int_eq(err.status, DSQL_EINVAL);
    dsql_pq_pool_free(p);
}
END_TEST

/* ---- no interleaved transactions (issue 16, item 5) ---- */

typedef struct count_arg {
    unsigned calls;
    dsql_status inner;
} count_arg;

static dsql_status count_only(PGconn *conn, const dsql_pq_txn_info *info, void *arg,
                              dsql_error *err)
{
    (void)conn, (void)info, (void)err;
    ((count_arg *)arg)->calls++;
    return DSQL_OK;
}

static dsql_status run_nested(PGconn *conn, const dsql_pq_txn_info *info, void *arg,
                              dsql_error *err)
{
    (void)info, (void)err;
    count_arg *a = arg;
    dsql_error e = {0};
    a->inner = dsql_pq_run_transaction(conn, count_only, a, NULL, NULL, &e);
    return DSQL_OK;
}

START_TEST(test_refuses_a_connection_inside_a_transaction)
{
    PGconn *c = harness_connect();
    ck_assert(harness_exec(c, "DROP TABLE IF EXISTS mine; CREATE TABLE mine (id int)"));
    ck_assert(harness_exec(c, "BEGIN"));
    ck_assert(harness_exec(c, "INSERT INTO mine VALUES (1)"));
    count_arg a = {0, DSQL_OK};
    dsql_error err = {0};
    dsql_pq_txn_result res;
    ck_assert_int_eq(dsql_pq_run_transaction(c, count_only, &a, NULL, &res, &err), DSQL_EINVAL);
    ck_assert_msg(strstr(err.message, "not idle"), "%s", err.message);
    ck_assert_uint_eq(a.calls, 0);
    ck_assert_ptr_null(dsql_pq_exec_with_retry(c, "SELECT 1", 0, NULL, NULL, NULL, &err));
    ck_assert_int_eq(err.status, DSQL_EINVAL);
    /* the caller's transaction is untouched: still open, its insert there */
    ck_assert_int_eq(PQtransactionStatus(c), PQTRANS_INTRANS);
    PGresult *r = PQexec(c, "SELECT count(*) FROM mine");
    ck_assert_str_eq(PQgetvalue(r, 0, 0), "1");
    PQclear(r);
    ck_assert(harness_exec(c, "COMMIT"));

    /* a run inside a run on the same connection */
    ck_assert_int_eq(dsql_pq_run_transaction(c, run_nested, &a, NULL, &res, &err), DSQL_OK);
    ck_assert_int_eq(a.inner, DSQL_EINVAL);
    ck_assert_uint_eq(a.calls, 0);
    ck_assert(harness_exec(c, "DROP TABLE mine"));
    PQfinish(c);
}
END_TEST

START_TEST(test_refuses_a_busy_connection)
{
    PGconn *c = harness_connect();
    ck_assert(PQsendQuery(c, "SELECT 7, pg_sleep(0.2)"));
    count_arg a = {0, DSQL_OK};
    dsql_error err = {0};
    ck_assert_int_eq(dsql_pq_run_transaction(c, count_only, &a, NULL, NULL, &err), DSQL_EINVAL);
    ck_assert_uint_eq(a.calls, 0);
    ck_assert_ptr_null(dsql_pq_exec_with_retry(c, "SELECT 1", 0, NULL, NULL, NULL, &err));
    ck_assert_int_eq(err.status, DSQL_EINVAL);
    /* the caller's command still delivers its own result */
    PGresult *r = PQgetResult(c);
    ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
    ck_assert_str_eq(PQgetvalue(r, 0, 0), "7");
    PQclear(r);
    ck_assert_ptr_null(PQgetResult(c));
    ck_assert_int_eq(dsql_pq_run_transaction(c, count_only, &a, NULL, NULL, &err), DSQL_OK);
    ck_assert_uint_eq(a.calls, 1);
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
    tcase_add_test(tc, test_retry_never_sleeps_past_the_deadline);
    tcase_add_test(tc, test_deadline_between_attempts);
    tcase_add_test(tc, test_cancel_interrupts_the_backoff);
    tcase_add_test(tc, test_pool_acquire_deadline_and_cancel);
    tcase_add_test(tc, test_connect_deadline_and_cancel);
    tcase_add_test(tc, test_exec_with_retry_two_sessions);
    tcase_add_test(tc, test_exec_with_retry_ddl_schema_conflict);
    tcase_add_test(tc, test_exec_with_retry_deadline_cancels_the_statement);
    tcase_add_test(tc, test_pool_exec_with_retry);
    tcase_add_test(tc, test_refuses_a_connection_inside_a_transaction);
    tcase_add_test(tc, test_refuses_a_busy_connection);
    suite_add_tcase(s, tc);
    return s;
}

POOL_HARNESS_MAIN("check_pq_retry", pq_retry_suite)
