/* A connection pool shared by four threads moving money between accounts in
 * transactions that are retried on optimistic-concurrency conflicts.
 *
 * Connection settings come from the PG* / AWS_* environment, so under
 * dsql-local:   dsql-local run -- build/examples/pool-transfers
 * and against a cluster:
 *   PGHOST=<id>.dsql.<region>.on.aws build/examples/pool-transfers */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include <dsqlauth.h>
#include <dsqlauth/pool.h>

#define THREADS 4
#define TRANSFERS 100

static dsql_pq_pool *pool;

typedef struct transfer {
    int from, to;
} transfer;

/* Runs inside BEGIN ... COMMIT; again from the top after a conflict. */
static dsql_status move_one(PGconn *conn, const dsql_pq_txn_info *info, void *arg,
                            dsql_error *err)
{
    (void)info;
    const transfer *t = arg;
    /* rows in id order: the PostgreSQL behind dsql-local takes row locks and
     * would report deadlocks (40P01) otherwise; DSQL itself takes none */
    char sql[256];
    snprintf(sql, sizeof sql,
             "UPDATE pool_demo SET balance = balance + %d WHERE id = 1;"
             "UPDATE pool_demo SET balance = balance + %d WHERE id = 2",
             t->from == 1 ? -1 : 1, t->from == 1 ? 1 : -1);
    PGresult *r = PQexec(conn, sql);
    dsql_status st = dsql_pq_result_status(conn, r, err);
    PQclear(r);
    return st;
}

static void *worker(void *arg)
{
    unsigned seed = (unsigned)(size_t)arg;
    long failed = 0;
    for (int i = 0; i < TRANSFERS; i++) {
        transfer t = {1 + (int)(rand_r(&seed) % 2), 0};
        t.to = 3 - t.from;
        dsql_error err;
        dsql_status st = dsql_pq_pool_run_transaction(pool, move_one, &t, NULL, NULL, &err);
        if (st != DSQL_OK) {
            fprintf(stderr, "transfer: %s (%s) %s\n", dsql_status_name(st), err.sqlstate,
                    err.message);
            failed++;
        }
    }
    return (void *)failed;
}

/* One statement of the setup (arg). DSQL takes one DDL statement per
 * transaction and no DML with it, so each is a transaction of its own. */
static dsql_status setup(PGconn *conn, const dsql_pq_txn_info *info, void *arg,
                         dsql_error *err)
{
    (void)info;
    PGresult *r = PQexec(conn, arg);
    dsql_status st = dsql_pq_result_status(conn, r, err);
    PQclear(r);
    return st;
}

int main(void)
{
    dsql_error err;
    dsql_config *cfg = dsql_config_new(&err);
    if (!cfg || dsql_config_load_env(cfg, &err) != DSQL_OK) {
        fprintf(stderr, "config: %s\n", err.message);
        return 1;
    }
    dsql_pq_pool_options o;
    dsql_pq_pool_options_init(&o);
    o.max_size = THREADS;
    o.txn.retry.max_retries = 20; /* four writers on two rows conflict a lot */
    /* provider NULL: tokens signed with the AWS_* environment credentials */
    pool = dsql_pq_pool_new(cfg, NULL, &o, &err);
    dsql_config_free(cfg); /* the pool keeps its own copy */
    if (!pool) {
        fprintf(stderr, "pool: %s: %s\n", dsql_status_name(err.status), err.message);
        return 1;
    }
    static const char *const setup_sql[] = {
        "DROP TABLE IF EXISTS pool_demo",
        "CREATE TABLE pool_demo (id int PRIMARY KEY, balance int)",
        "INSERT INTO pool_demo VALUES (1, 1000), (2, 1000)",
    };
    for (size_t i = 0; i < sizeof setup_sql / sizeof *setup_sql; i++) {
        if (dsql_pq_pool_run_transaction(pool, setup, (void *)setup_sql[i], NULL, NULL, &err) !=
            DSQL_OK) {
            fprintf(stderr, "setup: %s\n", err.message);
            dsql_pq_pool_free(pool);
            return 1;
        }
    }
    pthread_t th[THREADS];
    for (size_t i = 0; i < THREADS; i++)
        pthread_create(&th[i], NULL, worker, (void *)(i + 1));
    long failed = 0;
    for (int i = 0; i < THREADS; i++) {
        void *f;
        pthread_join(th[i], &f);
        failed += (long)f;
    }
    PGconn *c = dsql_pq_pool_acquire(pool, -1, &err);
    PGresult *r = c ? PQexec(c, "SELECT sum(balance) FROM pool_demo") : NULL;
    const char *total = r && PQresultStatus(r) == PGRES_TUPLES_OK ? PQgetvalue(r, 0, 0) : "?";
    dsql_pq_pool_stats s = {.version = DSQL_STRUCT_VERSION};
    dsql_pq_pool_stats_get(pool, &s);
    printf("%d transfers by %d threads: %llu committed, %llu retried after conflicts, "
           "%ld failed; total balance %s (was 2000); %u connections\n",
           THREADS * TRANSFERS, THREADS,
           (unsigned long long)(s.txn_commits - sizeof setup_sql / sizeof *setup_sql),
           (unsigned long long)s.txn_retries, failed, total, s.size);
    PQclear(r);
    dsql_pq_pool_release(pool, c);
    dsql_pq_pool_free(pool);
    return failed == 0 ? 0 : 1;
}
