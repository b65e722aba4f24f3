/* The pool across a real gateway restart (run by test/t-pool-restart.sh
 * inside the environment `dsql-local start` prints).
 *
 *   pool_restart STOP_CMD START_CMD
 *
 * Worker threads run dsql_pq_pool_run_transaction in a loop for the whole
 * test. After a warm-up the main thread runs STOP_CMD (dsql-local stops:
 * gateway and PostgreSQL go away, every pooled connection dies), waits,
 * runs START_CMD (same port, keys, hostname and state dir; dsql-local
 * makes a NEW CA at the same PGSSLROOTCERT path, which libpq re-reads on
 * every connect), and lets the workers run on. Then it checks:
 *  (a) every failed transaction overlapped the window from STOP_CMD's
 *      start to START_CMD's return; none failed before or after;
 *  (b) every transaction begun after the restart committed on its first
 *      attempt with no reconnect (the pool never handed out one of the dead
 *      connections), direct acquires after the restart give working
 *      connections, new connections were opened after the restart, and the
 *      wrapping token provider was called once per connection attempt
 *      (opened + open_failures): each new connection signed a fresh token;
 *  (c) the stats count the dead connections as closed_broken (or
 *      closed_dirty), nothing as lifetime/idle, and opened - closed = size.
 * Exit 0 when all hold; prints one line per check and the timings. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dsqlauth.h"
#include "dsqlauth/pool.h"

#define WORKERS 4
#define MAX_EVENTS 200000
#define WARMUP_MS 1500
#define DOWN_MS 1000
#define AFTER_MS 2500

static atomic_long token_calls;
static atomic_int stop_workers;
static dsql_token_provider *inner;
static dsql_pq_pool *pool;
static int failures;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static void check(int ok, const char *what)
{
    printf("%s %s\n", ok ? "ok  " : "FAIL", what);
    if (!ok)
        failures++;
}

/* The wrapping provider: counts, then signs with the real one. */
static dsql_status counting_token(void *self, const dsql_token_request *req, char *buf,
                                  size_t cap, size_t *len, dsql_error *err)
{
    (void)self;
    atomic_fetch_add(&token_calls, 1);
    return dsql_token_provider_get(inner, req, buf, cap, len, err);
}

static const dsql_token_provider_vtable counting_vt = {DSQL_STRUCT_VERSION, counting_token, NULL};

typedef struct event {
    int64_t begin, end;
    dsql_status status;
    unsigned attempts, reconnects;
} event;

typedef struct worker {
    pthread_t tid;
    event *ev;
    size_t n;
    int overflow;
    char first_error[300];
} worker;

static dsql_status body(PGconn *conn, const dsql_pq_txn_info *info, void *arg, dsql_error *err)
{
    (void)info;
    (void)arg;
    PGresult *r = PQexec(conn, "SELECT pg_backend_pid()");
    dsql_status st = dsql_pq_result_status(conn, r, err);
    PQclear(r);
    return st;
}

static void *work(void *arg)
{
    worker *w = arg;
    while (!atomic_load(&stop_workers)) {
        dsql_error err = {0};
        dsql_pq_txn_result res;
        int64_t b = now_ms();
        dsql_status st = dsql_pq_pool_run_transaction(pool, body, NULL, NULL, &res, &err);
        int64_t e = now_ms();
        if (w->n == MAX_EVENTS) {
            w->overflow = 1;
            break;
        }
        w->ev[w->n++] = (event){b, e, st, res.attempts, res.reconnects};
        if (st != DSQL_OK) {
            if (!w->first_error[0])
                snprintf(w->first_error, sizeof w->first_error, "%s: %.250s",
                         dsql_status_name(st), err.message);
            sleep_ms(20); /* do not spin while the gateway is down */
        } else {
            sleep_ms(2);
        }
    }
    return NULL;
}

static dsql_pq_pool_stats stats(void)
{
    dsql_pq_pool_stats s;
    memset(&s, 0, sizeof s);
    s.version = DSQL_STRUCT_VERSION;
    if (dsql_pq_pool_stats_get(pool, &s) != DSQL_OK) {
        fprintf(stderr, "pool_restart: stats failed\n");
        exit(1);
    }
    return s;
}

static void print_stats(const char *when, const dsql_pq_pool_stats *s)
{
    printf("stats %-7s size %u idle %u in_use %u opened %llu open_failures %llu closed: "
           "broken %llu dirty %llu lifetime %llu idle %llu pool %llu; commits %llu "
           "failures %llu retries %llu; tokens %ld\n",
           when, s->size, s->idle, s->in_use, (unsigned long long)s->opened,
           (unsigned long long)s->open_failures, (unsigned long long)s->closed_broken,
           (unsigned long long)s->closed_dirty, (unsigned long long)s->closed_lifetime,
           (unsigned long long)s->closed_idle, (unsigned long long)s->closed_pool,
           (unsigned long long)s->txn_commits, (unsigned long long)s->txn_failures,
           (unsigned long long)s->txn_retries, atomic_load(&token_calls));
}

static int run_cmd(const char *what, const char *cmd)
{
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "pool_restart: %s command failed (%d): %s\n", what, rc, cmd);
    return rc == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: pool_restart STOP_CMD START_CMD (inside dsql-local's environment)\n");
        return 2;
    }
    dsql_error err = {0};
    dsql_config *cfg = dsql_config_new(&err);
    if (!cfg || dsql_config_load_env(cfg, &err) != DSQL_OK ||
        dsql_config_resolve(cfg, &err) != DSQL_OK) {
        fprintf(stderr, "pool_restart: config: %s\n", err.message);
        return 1;
    }
    dsql_credentials_provider *cp = dsql_credentials_provider_env(&err);
    if (!cp || !(inner = dsql_token_provider_signing(cp, NULL, &err))) {
        fprintf(stderr, "pool_restart: provider: %s\n", err.message);
        return 1;
    }
    dsql_token_provider *counting = dsql_token_provider_new(&counting_vt, NULL, &err);
    if (!counting) {
        fprintf(stderr, "pool_restart: %s\n", err.message);
        return 1;
    }
    dsql_pq_pool_options o;
    dsql_pq_pool_options_init(&o);
    o.min_size = 2;
    o.max_size = 6; /* more than the workers: some connections sit idle */
    o.acquire_timeout_ms = 2000;
    pool = dsql_pq_pool_new(cfg, counting, &o, &err);
    if (!pool) {
        fprintf(stderr, "pool_restart: pool: %s\n", err.message);
        return 1;
    }

    worker w[WORKERS];
    memset(w, 0, sizeof w);
    int64_t t0 = now_ms();
    for (int i = 0; i < WORKERS; i++) {
        w[i].ev = malloc(MAX_EVENTS * sizeof *w[i].ev);
        if (!w[i].ev || pthread_create(&w[i].tid, NULL, work, &w[i]) != 0) {
            fprintf(stderr, "pool_restart: cannot start a worker\n");
            return 1;
        }
    }
    sleep_ms(WARMUP_MS);
    dsql_pq_pool_stats before = stats();
    print_stats("before", &before);

    int64_t t_stop = now_ms();
    int cmd_ok = run_cmd("stop", argv[1]) == 0;
    int64_t t_stopped = now_ms();
    sleep_ms(DOWN_MS);
    int64_t t_start = now_ms();
    cmd_ok = cmd_ok && run_cmd("start", argv[2]) == 0;
    int64_t t_up = now_ms();
    dsql_pq_pool_stats up = stats();
    print_stats("up", &up);

    /* direct acquires after the restart: never a dead connection */
    int direct_ok = 1;
    for (int i = 0; i < 10 && cmd_ok; i++) {
        dsql_error e2 = {0};
        PGconn *c = dsql_pq_pool_acquire(pool, -1, &e2);
        if (!c) {
            fprintf(stderr, "pool_restart: acquire after restart: %s\n", e2.message);
            direct_ok = 0;
            continue;
        }
        PGresult *r = PQexec(c, "SELECT 1");
        if (PQstatus(c) != CONNECTION_OK || PQresultStatus(r) != PGRES_TUPLES_OK) {
            fprintf(stderr, "pool_restart: a connection acquired after the restart is broken: %s",
                    PQerrorMessage(c));
            direct_ok = 0;
        }
        PQclear(r);
        dsql_pq_pool_release(pool, c);
    }
    sleep_ms(AFTER_MS);
    atomic_store(&stop_workers, 1);
    for (int i = 0; i < WORKERS; i++)
        pthread_join(w[i].tid, NULL);
    int64_t t_end = now_ms();
    dsql_pq_pool_stats after = stats();
    print_stats("after", &after);

    printf("timing: warm-up %lld ms; stop took %lld ms; gateway down %lld ms (stop start -> "
           "start returned, incl. a %d ms pause); start took %lld ms; total %lld ms\n",
           (long long)(t_stop - t0), (long long)(t_stopped - t_stop),
           (long long)(t_up - t_stop), DOWN_MS, (long long)(t_up - t_start),
           (long long)(t_end - t0));

    /* classify every transaction */
    long before_ok = 0, before_fail = 0, window_ok = 0, window_fail = 0, after_ok = 0,
         after_bad = 0, overflow = 0;
    int64_t first_fail = -1, last_fail = -1, longest_ok = 0;
    for (int i = 0; i < WORKERS; i++) {
        overflow |= w[i].overflow;
        for (size_t k = 0; k < w[i].n; k++) {
            const event *e = &w[i].ev[k];
            int ok = e->status == DSQL_OK;
            if (!ok) {
                if (first_fail < 0 || e->end < first_fail)
                    first_fail = e->end;
                if (e->end > last_fail)
                    last_fail = e->end;
            }
            if (e->begin > t_up) { /* wholly after the restart */
                if (ok && e->attempts == 1 && e->reconnects == 0)
                    after_ok++;
                else
                    after_bad++;
            } else if (e->end < t_stop) { /* wholly before the stop */
                ok ? before_ok++ : before_fail++;
            } else {
                ok ? window_ok++ : window_fail++;
                if (ok && e->end - e->begin > longest_ok)
                    longest_ok = e->end - e->begin;
            }
        }
        if (w[i].first_error[0])
            printf("worker %d: first error: %s\n", i, w[i].first_error);
    }
    printf("transactions: before %ld ok / %ld failed; overlapping the restart %ld ok / %ld "
           "failed; after %ld ok / %ld not clean\n",
           before_ok, before_fail, window_ok, window_fail, after_ok, after_bad);
    if (first_fail >= 0)
        printf("errors seen from +%lld ms to +%lld ms after the stop began (start returned at "
               "+%lld ms)\n",
               (long long)(first_fail - t_stop), (long long)(last_fail - t_stop),
               (long long)(t_up - t_stop));
    /* dsql-local listens again before its PostgreSQL is up (it binds the
     * port first): connects made then wait in the gateway's backlog and
     * succeed once it serves, so callers block rather than fail then */
    printf("longest successful transaction overlapping the restart: %lld ms (waited for "
           "dsql-local to finish starting)\n",
           (long long)longest_ok);

    check(cmd_ok, "dsql-local stopped and started again on the same port");
    check(!overflow, "event log large enough");
    check(before_ok > 0 && before_fail == 0, "(a) no errors before the gateway stopped");
    check(window_fail > 0,
          "(a) callers saw errors while the gateway was down (connect fails at once, the "
          "acquire timeout does not cover it)");
    check(after_ok > 50 && after_bad == 0,
          "(a)+(b) every transaction begun after the restart committed on its first attempt, "
          "no reconnect (no dead connection handed out)");
    check(direct_ok, "(b) 10 direct acquires after the restart gave working connections");
    check(after.opened > before.opened,
          "(b) new connections opened after the restart (TLS verified against the new CA)");
    check(after.open_failures > 0, "(a) connection attempts failed while down (open_failures)");
    long tokens = atomic_load(&token_calls);
    check((uint64_t)tokens == after.opened + after.open_failures,
          "(b) one token-provider call per connection attempt (opened + open_failures): a fresh "
          "token each");
    uint64_t died = (after.closed_broken - before.closed_broken) +
                    (after.closed_dirty - before.closed_dirty);
    check(after.closed_broken > before.closed_broken && died >= before.size,
          "(c) the connections open at the stop were closed as broken/dirty");
    check(after.closed_lifetime == 0 && after.closed_idle == 0 && after.closed_pool == 0,
          "(c) no close for another reason");
    check(after.opened - after.closed_broken - after.closed_dirty - after.closed_lifetime -
                  after.closed_idle - after.closed_pool ==
              after.size,
          "(c) opened - closed == size");
    check(after.txn_failures == (uint64_t)window_fail,
          "(c) txn_failures counts exactly the failed transactions");

    for (int i = 0; i < WORKERS; i++)
        free(w[i].ev);
    dsql_pq_pool_free(pool);
    dsql_token_provider_free(counting);
    dsql_token_provider_free(inner);
    dsql_config_free(cfg);
    printf("%s\n", failures ? "FAIL pool_restart" : "PASS pool_restart");
    return failures ? 1 : 0;
}
