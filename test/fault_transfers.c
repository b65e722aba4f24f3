/* A transfer workload through the pool and dsql_pq_pool_run_transaction
 * against dsql-local's injected faults (run by test/t-dsql-local-faults.sh
 * inside `dsql-local run`):
 *
 *   fault_transfers setup
 *   fault_transfers run FAULTS_OFF_CMD
 *
 * run: WORKERS threads make TRANSFERS transfers each; every transfer is one
 * transaction that records itself in `transfers` (its id the primary key)
 * and moves the amount. Conflicts are retried; an ambiguous commit
 * (DSQL_EUNKNOWN_COMMIT) is reported, never retried. Then FAULTS_OFF_CMD
 * turns the faults off and the checks run: the balances add up, each
 * account's balance is what the recorded transfers made it (no transfer
 * applied twice or half), every committed transfer is recorded, and the
 * ambiguous ones are either recorded or not at all. Prints the counts (the
 * script compares the ambiguous count with the gateway's log). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "dsqlauth.h"
#include "dsqlauth/pool.h"

#define WORKERS 4
#define TRANSFERS 50
#define ACCOUNTS 4
#define START_BALANCE 1000

static dsql_pq_pool *pool;
static int outcome[WORKERS][TRANSFERS]; /* 1 committed, 2 ambiguous, 3 failed */

typedef struct transfer {
    int id, src, dst, amount;
} transfer;

static dsql_status exec_sql(PGconn *conn, const char *sql, dsql_error *err)
{
    PGresult *r = PQexec(conn, sql);
    dsql_status st = dsql_pq_result_status(conn, r, err);
    PQclear(r);
    return st;
}

static dsql_status one_statement(PGconn *conn, const dsql_pq_txn_info *info, void *arg,
                                 dsql_error *err)
{
    (void)info;
    return exec_sql(conn, arg, err);
}

static dsql_status do_transfer(PGconn *conn, const dsql_pq_txn_info *info, void *arg,
                               dsql_error *err)
{
    const transfer *t = arg;
    char sql[256];
    dsql_status st;

    (void)info;
    snprintf(sql, sizeof sql, "INSERT INTO transfers VALUES (%d, %d, %d, %d)", t->id, t->src,
             t->dst, t->amount);
    if ((st = exec_sql(conn, sql, err)) != DSQL_OK)
        return st;
    snprintf(sql, sizeof sql, "UPDATE accounts SET balance = balance - %d WHERE id = %d",
             t->amount, t->src);
    if ((st = exec_sql(conn, sql, err)) != DSQL_OK)
        return st;
    snprintf(sql, sizeof sql, "UPDATE accounts SET balance = balance + %d WHERE id = %d",
             t->amount, t->dst);
    return exec_sql(conn, sql, err);
}

static void *worker(void *arg)
{
    int w = (int)(long)arg, i;
    dsql_pq_txn_options o;

    dsql_pq_txn_options_init(&o);
    o.retry.max_retries = 100;
    for (i = 0; i < TRANSFERS; i++) {
        transfer t = {w * 1000 + i, 1 + (w + i) % ACCOUNTS, 1 + (w + i + 1) % ACCOUNTS, 1 + i};
        dsql_error err = {0};
        dsql_status st = dsql_pq_pool_run_transaction(pool, do_transfer, &t, &o, NULL, &err);
        outcome[w][i] = st == DSQL_OK ? 1 : st == DSQL_EUNKNOWN_COMMIT ? 2 : 3;
        if (outcome[w][i] == 3)
            fprintf(stderr, "transfer %d: %s: %s\n", t.id, dsql_status_name(st), err.message);
    }
    return NULL;
}

static long query_long(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    long v = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 ? atol(PQgetvalue(r, 0, 0))
                                                                       : -1;
    PQclear(r);
    return v;
}

static int check(int ok, const char *what)
{
    printf("%s %s\n", ok ? "ok  " : "FAIL", what);
    return ok ? 0 : 1;
}

static int verify(void)
{
    dsql_error err = {0};
    PGconn *c = dsql_pq_pool_acquire(pool, -1, &err);
    int fails = 0, w, i, committed = 0, ambiguous = 0, failed = 0, amb_applied = 0;
    char sql[128], line[200];

    if (!c)
        return check(0, err.message);
    for (w = 0; w < WORKERS; w++) {
        for (i = 0; i < TRANSFERS; i++) {
            long there;
            snprintf(sql, sizeof sql, "SELECT count(*) FROM transfers WHERE id = %d", w * 1000 + i);
            there = query_long(c, sql);
            committed += outcome[w][i] == 1;
            ambiguous += outcome[w][i] == 2;
            failed += outcome[w][i] == 3;
            if (outcome[w][i] == 1 && there != 1)
                fails += check(0, "a committed transfer is recorded");
            if (outcome[w][i] == 2)
                amb_applied += there == 1;
        }
    }
    printf("committed %d, ambiguous %d (%d of them applied), failed %d\n", committed, ambiguous,
           amb_applied, failed);
    fails += check(failed == 0, "no transfer failed (conflicts were retried)");
    fails += check(query_long(c, "SELECT sum(balance) FROM accounts") ==
                       (long)ACCOUNTS * START_BALANCE,
                   "the balances add up");
    fails += check(query_long(c, "SELECT count(*) FROM transfers") == committed + amb_applied,
                   "recorded transfers = committed + ambiguous ones that were applied");
    fails += check(query_long(c, "SELECT count(*) FROM accounts a WHERE a.balance <> 1000 "
                                 "- coalesce((SELECT sum(amount) FROM transfers WHERE src = a.id), 0) "
                                 "+ coalesce((SELECT sum(amount) FROM transfers WHERE dst = a.id), 0)") == 0,
                   "every balance is what its recorded transfers made it (none applied twice)");
    {
        dsql_pq_pool_stats s = {.version = DSQL_STRUCT_VERSION};
        dsql_pq_pool_stats_get(pool, &s);
        printf("attempts retried after conflicts or broken connections: %llu\n",
               (unsigned long long)s.txn_retries);
    }
    snprintf(line, sizeof line, "ambiguous commits reported: %d", ambiguous);
    puts(line);
    dsql_pq_pool_release(pool, c);
    return fails;
}

static int setup(void)
{
    static const char *const steps[] = {
        "DROP TABLE IF EXISTS transfers",
        "DROP TABLE IF EXISTS accounts",
        "CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL)",
        "CREATE TABLE transfers (id int PRIMARY KEY, src int, dst int, amount int)",
        "INSERT INTO accounts SELECT g, 1000 FROM generate_series(1, 4) g",
    };
    size_t i;

    for (i = 0; i < sizeof steps / sizeof *steps; i++) {
        dsql_error err = {0};
        if (dsql_pq_pool_run_transaction(pool, one_statement, (void *)steps[i], NULL, NULL,
                                         &err) != DSQL_OK) {
            fprintf(stderr, "setup: %s: %s\n", steps[i], err.message);
            return 1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    dsql_error err = {0};
    dsql_config *cfg = dsql_config_new(&err);
    dsql_pq_pool_options o;
    pthread_t th[WORKERS];
    int rc = 0;
    long w;

    if (argc < 2 || (strcmp(argv[1], "run") == 0 && argc < 3)) {
        fprintf(stderr, "usage: fault_transfers setup | run FAULTS_OFF_CMD\n");
        return 2;
    }
    if (!cfg || dsql_config_load_env(cfg, &err) != DSQL_OK) {
        fprintf(stderr, "config: %s\n", err.message);
        return 1;
    }
    dsql_pq_pool_options_init(&o);
    o.max_size = WORKERS;
    pool = dsql_pq_pool_new(cfg, NULL, &o, &err);
    dsql_config_free(cfg);
    if (!pool) {
        fprintf(stderr, "pool: %s\n", err.message);
        return 1;
    }
    if (strcmp(argv[1], "setup") == 0) {
        rc = setup();
    } else {
        for (w = 0; w < WORKERS; w++)
            pthread_create(&th[w], NULL, worker, (void *)w);
        for (w = 0; w < WORKERS; w++)
            pthread_join(th[w], NULL);
        if (system(argv[2]) != 0) {
            fprintf(stderr, "%s failed\n", argv[2]);
            rc = 1;
        } else {
            rc = verify();
        }
    }
    dsql_pq_pool_free(pool);
    return rc == 0 ? 0 : 1;
}
