/* Pool benchmark, against dsql-local (TLS gateway, IAM tokens) when it has
 * been built, else a throwaway local PostgreSQL. One line per case:
 *   <case>: key=value ...
 * - uncontended_*: one thread, acquire + release of an idle connection,
 *   median and p99 per pair over batches of BATCH pairs; with the socket
 *   check on or off, with the default reset on release (one round trip:
 *   identity, settings, prepared statements, cursors, LISTEN, advisory
 *   locks, temporary objects) and with RESET ALL alone, for comparison.
 * - threads8: 8 threads doing acquire / SELECT 1 / release on a pool of 8
 *   against the same loop on one dedicated connection per thread; the
 *   ratio is pool throughput / dedicated throughput (medians of alternating
 *   1 s rounds); with the default reset on release and without.
 * - occ_retry: time per transaction whose first attempt conflicts (OC000
 *   raised by the server, as DSQL reports it) minus the time of a clean
 *   transaction: the cost of one conflict (rollback + backoff + re-run). */
#include <pthread.h>
#include <time.h>

#include "../test/pool_harness.h"
#include "benchutil.h"

#define BATCH 1000
#define BATCHES 200
#define THREADS 8

/* A pool of `size` connections, all opened up front; NULL after saying why. */
static dsql_pq_pool *full_pool(unsigned size, uint32_t check_idle_ms, const char *reset)
{
    dsql_pq_pool_options o;
    dsql_pq_pool_options_init(&o);
    o.max_size = size;
    o.min_size = size;
    o.check_idle_ms = check_idle_ms;
    o.reset_query = reset;
    dsql_error err = {0};
    dsql_pq_pool *p = harness_pool(&o, &err);
    if (!p)
        fprintf(stderr, "pool-bench: %s\n", err.message);
    return p;
}

static int uncontended(const char *name, uint32_t check_idle_ms, const char *reset,
                       int batches)
{
    dsql_pq_pool *p = full_pool(1, check_idle_ms, reset);
    if (!p)
        return 0;
    dsql_error err = {0};
    static double samples[BATCHES];
    int batch = !reset || *reset ? 20 : BATCH; /* NULL: the default reset */
    for (int b = -5; b < batches; b++) {
        double t0 = now_ns();
        for (int i = 0; i < batch; i++) {
            PGconn *c = dsql_pq_pool_acquire(p, -1, &err);
            if (!c) {
                fprintf(stderr, "pool-bench: %s\n", err.message);
                dsql_pq_pool_free(p);
                return 0;
            }
            dsql_pq_pool_release(p, c);
        }
        if (b >= 0)
            samples[b] = (now_ns() - t0) / batch;
    }
    qsort(samples, (size_t)batches, sizeof samples[0], cmp_double);
    dsql_pq_pool_stats s = {.version = DSQL_STRUCT_VERSION};
    dsql_pq_pool_stats_get(p, &s);
    printf("%s: median_ns=%.0f p99_ns=%.0f pairs=%d opened=%llu\n", name,
           samples[batches / 2], samples[batches * 99 / 100], batches * batch,
           (unsigned long long)s.opened);
    fflush(stdout);
    dsql_pq_pool_free(p);
    return 1;
}

typedef struct th_arg {
    dsql_pq_pool *pool; /* NULL: dedicated connection */
    PGconn *conn;
    double seconds;
    long ops, errors;
} th_arg;

static pthread_barrier_t start_line;

static void *select_loop(void *arg)
{
    th_arg *a = arg;
    dsql_error err = {0};
    pthread_barrier_wait(&start_line);
    double end = now_ns() + a->seconds * 1e9;
    while (now_ns() < end) {
        for (int i = 0; i < 50; i++) {
            PGconn *c = a->pool ? dsql_pq_pool_acquire(a->pool, -1, &err) : a->conn;
            if (!c) {
                a->errors++;
                continue;
            }
            PGresult *r = PQexec(c, "SELECT 1");
            if (PQresultStatus(r) != PGRES_TUPLES_OK)
                a->errors++;
            PQclear(r);
            if (a->pool)
                dsql_pq_pool_release(a->pool, c);
            a->ops++;
        }
    }
    return NULL;
}

static double run_threads(dsql_pq_pool *pool, PGconn **conns, double seconds, long *errors)
{
    pthread_t th[THREADS];
    th_arg args[THREADS];
    pthread_barrier_init(&start_line, NULL, THREADS + 1);
    for (int i = 0; i < THREADS; i++) {
        args[i] = (th_arg){pool, conns ? conns[i] : NULL, seconds, 0, 0};
        pthread_create(&th[i], NULL, select_loop, &args[i]);
    }
    double t0 = now_ns();
    pthread_barrier_wait(&start_line);
    long ops = 0;
    *errors = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        ops += args[i].ops;
        *errors += args[i].errors;
    }
    double dt = (now_ns() - t0) / 1e9;
    pthread_barrier_destroy(&start_line);
    return (double)ops / dt;
}

static double median3(double *v, int n)
{
    qsort(v, (size_t)n, sizeof v[0], cmp_double);
    return v[n / 2];
}

/* Alternate rounds (dedicated, pool, dedicated, pool...) so that load from
 * elsewhere on the machine hits both alike; report the medians. */
static int threads8(const char *name, const char *reset, double seconds, int rounds)
{
    PGconn *conns[THREADS];
    for (int i = 0; i < THREADS; i++)
        if (!(conns[i] = harness_connect()))
            return 0;
    dsql_pq_pool *p = full_pool(THREADS, DSQL_PQ_POOL_DEFAULT_CHECK_IDLE_MS, reset);
    if (!p)
        return 0;
    double ded[16], pool[16];
    long errors = 0, e;
    for (int r = 0; r < rounds && r < 16; r++) {
        ded[r] = run_threads(NULL, conns, seconds, &e);
        errors += e;
        pool[r] = run_threads(p, NULL, seconds, &e);
        errors += e;
    }
    for (int i = 0; i < THREADS; i++)
        PQfinish(conns[i]);
    dsql_pq_pool_stats s = {.version = DSQL_STRUCT_VERSION};
    dsql_pq_pool_stats_get(p, &s);
    dsql_pq_pool_free(p);
    double pooled = median3(pool, rounds), dedicated = median3(ded, rounds);
    printf("%s: pool_ops_per_s=%.0f dedicated_ops_per_s=%.0f ratio=%.3f rounds=%d errors=%ld "
           "waits=%llu opened=%llu\n", name, pooled, dedicated, pooled / dedicated, rounds,
           errors, (unsigned long long)s.waits, (unsigned long long)s.opened);
    fflush(stdout);
    return errors == 0;
}

static dsql_status body(PGconn *conn, const dsql_pq_txn_info *info, void *arg, dsql_error *err)
{
    int conflict_first = *(int *)arg;
    const char *sql = conflict_first && info->attempt == 1
        ? "DO $$ BEGIN RAISE EXCEPTION 'change conflicts with another transaction, "
          "please retry: (OC000)' USING ERRCODE = '40001'; END $$"
        : "SELECT 1";
    PGresult *r = PQexec(conn, sql);
    dsql_status st = dsql_pq_result_status(conn, r, err);
    PQclear(r);
    return st;
}

static double txn_us(PGconn *c, int conflict_first, const dsql_pq_txn_options *t, int n)
{
    dsql_error err = {0};
    double t0 = now_ns();
    for (int i = 0; i < n; i++) {
        dsql_pq_txn_result res;
        if (dsql_pq_run_transaction(c, body, &conflict_first, t, &res, &err) != DSQL_OK ||
            res.attempts != (unsigned)(conflict_first ? 2 : 1)) {
            fprintf(stderr, "pool-bench: transaction: %s\n", err.message);
            return -1;
        }
    }
    return (now_ns() - t0) / n / 1e3;
}

static int occ_retry(int n)
{
    PGconn *c = harness_connect();
    if (!c)
        return 0;
    dsql_pq_txn_options def, zero;
    dsql_pq_txn_options_init(&def);
    dsql_pq_txn_options_init(&zero);
    zero.retry.base_delay_us = zero.retry.max_delay_us = 0;
    /* warm up, then interleave rounds and keep each case's best */
    if (txn_us(c, 0, &def, n / 10 + 1) < 0 || txn_us(c, 1, &zero, n / 10 + 1) < 0) {
        PQfinish(c);
        return 0;
    }
    double clean = 1e18, with_backoff = 1e18, no_backoff = 1e18;
    for (int round = 0; round < 3; round++) {
        double a = txn_us(c, 0, &def, n), b = txn_us(c, 1, &def, n), d = txn_us(c, 1, &zero, n);
        if (a < 0 || b < 0 || d < 0)
            break;
        clean = a < clean ? a : clean;
        with_backoff = b < with_backoff ? b : with_backoff;
        no_backoff = d < no_backoff ? d : no_backoff;
    }
    PQfinish(c);
    if (clean > 1e17 || with_backoff > 1e17 || no_backoff > 1e17)
        return 0;
    printf("occ_retry: clean_txn_us=%.1f conflict_txn_us=%.1f overhead_per_conflict_us=%.1f "
           "overhead_without_backoff_us=%.1f default_backoff_us=1000+-25%% txns=%d\n",
           clean, with_backoff, with_backoff - clean, no_backoff - clean, n);
    fflush(stdout);
    return 1;
}

int main(int argc, char **argv)
{
    (void)argc;
    harness_maybe_reexec(argv);
    if (pool_server_start() != 0) {
        pool_server_stop();
        fprintf(stderr, "pool-bench: no PostgreSQL to run against\n");
        return 1;
    }
    printf("pool-bench: against %s\n",
           srv.via_dsql_local ? "dsql-local (TLS gateway, IAM tokens)" : "a local PostgreSQL");
    int ok = uncontended("uncontended_no_check", UINT32_MAX, "", BATCHES) &&
             uncontended("uncontended_socket_check", 0, "", BATCHES) &&
             uncontended("uncontended_reset_all_only", 0, "RESET ALL", 50) &&
             uncontended("uncontended_default_reset", 0, NULL, 50) &&
             threads8("threads8_default_reset", NULL, 1.0, 5) &&
             threads8("threads8_no_reset", "", 1.0, 5) && occ_retry(300);
    pool_server_stop();
    return ok ? 0 : 1;
}
