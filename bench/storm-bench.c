/* Connection storms: N connections opened at once, with the default
 * credentials chain pointed at a loopback container-credentials endpoint
 * (test/aws_test_server.py) that answers after 50 ms, through dsql-local
 * (TLS gateway, IAM tokens, verify-full).
 *
 *   storm-bench [N] [ROUNDS]   (default 200 connections, 7 rounds)
 *
 * Storms: "threads" (N threads call dsql_pq_connect together) and "pool"
 * (N threads call dsql_pq_pool_acquire together on an empty pool of N, so
 * each opens a connection: a pool warming up under load); each with
 *   shared  one explicit dsql_token_provider_signing over
 *           dsql_credentials_provider_default, shared by all threads,
 *   null    a NULL provider (the process-wide dsql_token_provider_shared),
 *   static  static credentials (no fetch at all), for comparison,
 *   static_again  the static storm once more: its ratio to static is the
 *           storms' own noise, the yardstick for the other ratios.
 * Every storm runs in a new process (so the NULL provider starts cold) and
 * a new credentials cache. A round runs the four providers' storms back
 * to back, a different one first each round, so each round's storms see
 * about the same load. One line per storm kind and provider:
 *   <storm>_<provider>: connections=<n> credentials_fetches=<per storm>
 *       all_connected_ms=<median> [tokens_ready_ms=<median>]
 *       [vs_static=<median of the rounds' ratios> rounds=<r1,...>]
 * tokens_ready_ms (explicit providers, which the benchmark wraps to see
 * them hand out tokens) is when every thread had its token: the
 * credentials stage alone. vs_static is, per round, this storm's time over
 * that round's static storm. Then one line per storm kind:
 *   <storm>: fetch_cost_ms=<median of tokens_ready shared - static>
 *       expected_ms=50 share_of_static=<fetch cost / static all_connected>
 * credentials_fetches counts the endpoint's requests during each storm;
 * the benchmark fails unless every storm connected all N and made exactly
 * one fetch (none with static credentials). Timing is reported, never
 * checked (test/t-storm.sh runs a short storm in make check).
 *
 * Run under `dsql-local run --temporary-credentials --`; started without
 * PGHOST it re-executes itself that way ($DSQL_LOCAL, else dsql-local in
 * the build directory above this program's). */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>

#include "../test/aws_server.h"
#include "benchutil.h"
#include "dsqlauth/libpq.h"
#include "dsqlauth/pool.h"

#define ENDPOINT_DELAY_S 0.05
#define MAX_ROUNDS 9
#define DEFAULT_ROUNDS 7

enum storm { STORM_THREADS, STORM_POOL };
enum prov { PROV_SHARED, PROV_NULL, PROV_STATIC, PROV_STATIC_AGAIN, N_PROVS };
static const char *const STORM_NAMES[] = {"threads", "pool"};
static const char *const PROV_NAMES[] = {"shared", "null", "static", "static_again"};

static dsql_config *cfg;
static dsql_credentials local_creds; /* dsql-local's key, served by the endpoint */
static int n_conns;

/* ---- one storm, in a child process ----------------------------------- */

/* Wraps an explicit provider and notes when the last token was handed
 * out, so a storm's credentials stage shows apart from its logins. */
typedef struct timed_provider {
    dsql_token_provider *inner;
    atomic_llong last_ns;
} timed_provider;

static dsql_status timed_token(void *self, const dsql_token_request *req, char *buf,
                               size_t cap, size_t *len, dsql_error *err)
{
    timed_provider *t = self;
    dsql_status st = dsql_token_provider_get(t->inner, req, buf, cap, len, err);
    long long now = (long long)now_ns(), seen = atomic_load(&t->last_ns);
    while (now > seen && !atomic_compare_exchange_weak(&t->last_ns, &seen, now))
        ;
    return st;
}

static void timed_destroy(void *self)
{
    timed_provider *t = self;
    dsql_token_provider_free(t->inner);
    free(t);
}

static const dsql_token_provider_vtable TIMED = {DSQL_STRUCT_VERSION, timed_token,
                                                 timed_destroy};

typedef struct storm_times {
    double all_connected_ms, tokens_ready_ms; /* -1: failed / not seen */
} storm_times;

typedef struct storm_run {
    enum storm storm;
    dsql_token_provider *tp;
    dsql_pq_pool *pool;
    pthread_barrier_t start, hold;
    double t0;
} storm_run;

typedef struct conn_slot {
    storm_run *run;
    PGconn *conn;
    double done_ns;
    char error[sizeof ((dsql_error *)0)->message];
} conn_slot;

static void *connect_one(void *arg)
{
    conn_slot *s = arg;
    storm_run *r = s->run;
    dsql_error err = {0};
    pthread_barrier_wait(&r->start);
    s->conn = r->storm == STORM_POOL ? dsql_pq_pool_acquire(r->pool, -1, &err)
                                     : dsql_pq_connect(cfg, r->tp, &err);
    s->done_ns = now_ns();
    if (!s->conn)
        snprintf(s->error, sizeof s->error, "%s", err.message);
    /* pool: hold it until all are in, so every acquire opens its own */
    pthread_barrier_wait(&r->hold);
    if (s->conn && r->storm == STORM_POOL)
        dsql_pq_pool_release(r->pool, s->conn);
    else if (s->conn)
        PQfinish(s->conn);
    return NULL;
}

/* NULL for the NULL provider; else the provider, wrapped in *timed. */
static dsql_token_provider *make_provider(enum prov prov, timed_provider **timed,
                                          dsql_error *err)
{
    *timed = NULL;
    if (prov == PROV_NULL)
        return NULL;
    dsql_credentials_provider *cp = prov == PROV_STATIC || prov == PROV_STATIC_AGAIN
                                        ? dsql_credentials_provider_static(&local_creds, err)
                                        : dsql_credentials_provider_default(NULL, err);
    dsql_token_provider *inner = cp ? dsql_token_provider_signing(cp, NULL, err) : NULL;
    timed_provider *t = inner ? calloc(1, sizeof *t) : NULL;
    dsql_token_provider *tp = t ? dsql_token_provider_new(&TIMED, t, err) : NULL;
    if (!tp) {
        dsql_token_provider_free(inner);
        free(t);
        return NULL;
    }
    t->inner = inner;
    *timed = t;
    return tp;
}

/* Runs the storm: the ms until all were connected (-1: failed) and until
 * all had their token (-1: not seen, with the NULL provider). */
static storm_times storm_child(enum storm storm, enum prov prov)
{
    dsql_error err = {0};
    storm_times out = {-1, -1};
    storm_run r = {.storm = storm};
    timed_provider *timed;
    r.tp = make_provider(prov, &timed, &err);
    if (prov != PROV_NULL && !r.tp) {
        fprintf(stderr, "storm-bench: provider: %s\n", err.message);
        return out;
    }
    if (storm == STORM_POOL) {
        dsql_pq_pool_options o;
        dsql_pq_pool_options_init(&o);
        o.max_size = (unsigned)n_conns;
        o.acquire_timeout_ms = 120000;
        if (!(r.pool = dsql_pq_pool_new(cfg, r.tp, &o, &err))) {
            fprintf(stderr, "storm-bench: pool: %s\n", err.message);
            return out;
        }
    }
    conn_slot *slots = calloc((size_t)n_conns, sizeof *slots);
    pthread_t *th = calloc((size_t)n_conns, sizeof *th);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 512 * 1024);
    pthread_barrier_init(&r.start, NULL, (unsigned)n_conns + 1);
    pthread_barrier_init(&r.hold, NULL, (unsigned)n_conns + 1);
    for (int i = 0; i < n_conns; i++) {
        slots[i].run = &r;
        if (pthread_create(&th[i], &attr, connect_one, &slots[i]) != 0) {
            fprintf(stderr, "storm-bench: cannot start thread %d\n", i);
            exit(1);
        }
    }
    pthread_barrier_wait(&r.start);
    double t0 = now_ns(), last = t0;
    pthread_barrier_wait(&r.hold);
    int ok = 1;
    for (int i = 0; i < n_conns; i++) {
        pthread_join(th[i], NULL);
        if (!slots[i].conn) {
            if (ok)
                fprintf(stderr, "storm-bench: connection %d: %s\n", i, slots[i].error);
            ok = 0;
        }
        if (slots[i].done_ns > last)
            last = slots[i].done_ns;
    }
    if (ok)
        out.all_connected_ms = (last - t0) / 1e6;
    if (ok && timed)
        out.tokens_ready_ms = ((double)atomic_load(&timed->last_ns) - t0) / 1e6;
    dsql_pq_pool_free(r.pool);
    dsql_token_provider_free(r.tp);
    free(slots);
    free(th);
    return out;
}

/* ---- the parent: endpoint set-up, one process per storm --------------- */

/* One storm in a new process: its times (all_connected_ms -1: failed)
 * and the endpoint's credentials requests during it. */
static storm_times storm(enum storm s, enum prov p, int *fetches)
{
    storm_times t = {-1, -1};
    int fds[2];
    /* dsql-local's key from the container endpoint, after the delay */
    if (bench_serve_key(&local_creds, "ecs", ENDPOINT_DELAY_S) != 0 || pipe(fds) != 0)
        return t;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        t = storm_child(s, p);
        ssize_t w = write(fds[1], &t, sizeof t);
        _exit(w == (ssize_t)sizeof t ? 0 : 1);
    }
    close(fds[1]);
    int status = 0;
    if (pid < 0 || read(fds[0], &t, sizeof t) != (ssize_t)sizeof t)
        t.all_connected_ms = -1;
    close(fds[0]);
    if (pid > 0)
        waitpid(pid, &status, 0);
    *fetches = aws_server_count("ecs");
    if (status != 0)
        t.all_connected_ms = -1;
    return t;
}

/* The default chain finds nothing but the endpoint: no keys, no profile
 * files, no IMDS. Keeps dsql-local's key to serve from it. */
static int point_chain_at_endpoint(char *home, size_t cap)
{
    if (bench_take_local_key(&local_creds) != 0)
        return -1;
    static const char *const vars[] = {"AWS_PROFILE", "AWS_CONFIG_FILE",
                                       "AWS_SHARED_CREDENTIALS_FILE",
                                       "AWS_WEB_IDENTITY_TOKEN_FILE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
    snprintf(home, cap, "/tmp/dsql-storm-bench-XXXXXX");
    if (!mkdtemp(home))
        return -1;
    setenv("HOME", home, 1);
    char url[128];
    snprintf(url, sizeof url, "%s/ecs/credentials", aws_server_url);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    return 0;
}

/* One line for provider p's storms (rounds of them); vs_static pairs each
 * with the same round's static storm. */
static void report(enum storm s, enum prov p, int rounds, const storm_times *t,
                   const storm_times *stat, int fetches, int bad_fetches)
{
    double all[MAX_ROUNDS], ready[MAX_ROUNDS], ratio[MAX_ROUNDS], sorted[MAX_ROUNDS];
    for (int r = 0; r < rounds; r++) {
        all[r] = t[r].all_connected_ms;
        ready[r] = t[r].tokens_ready_ms;
        ratio[r] = t[r].all_connected_ms / stat[r].all_connected_ms;
    }
    printf("%s_%s: connections=%d credentials_fetches=%s%d all_connected_ms=%.0f",
           STORM_NAMES[s], PROV_NAMES[p], n_conns, bad_fetches ? "WRONG:" : "", fetches,
           percentile(all, (size_t)rounds, 50));
    if (p != PROV_NULL)
        printf(" tokens_ready_ms=%.0f", percentile(ready, (size_t)rounds, 50));
    if (p != PROV_STATIC) {
        memcpy(sorted, ratio, sizeof ratio);
        printf(" vs_static=%.3f rounds=", percentile(sorted, (size_t)rounds, 50));
        for (int r = 0; r < rounds; r++)
            printf("%s%.2f", r ? "," : "", ratio[r]);
    }
    printf("\n");
}

/* Rounds of one storm kind, the providers in a new order each round;
 * returns nonzero when a storm failed or fetched other than once (never
 * with static credentials). */
static int storm_kind(enum storm s, int rounds)
{
    storm_times t[N_PROVS][MAX_ROUNDS];
    int bad_fetches[N_PROVS] = {0}, fetches_seen[N_PROVS] = {0}, failed = 0;
    for (int round = 0; round < rounds; round++)
        for (int k = 0; k < N_PROVS; k++) {
            int p = (k + round) % N_PROVS; /* rotate who goes first */
            int fetches = -1, want = p == PROV_STATIC || p == PROV_STATIC_AGAIN ? 0 : 1;
            t[p][round] = storm(s, (enum prov)p, &fetches);
            fetches_seen[p] = fetches;
            bad_fetches[p] |= fetches != want;
            failed |= t[p][round].all_connected_ms < 0 || fetches != want;
        }
    for (int p = 0; p < N_PROVS; p++)
        report(s, (enum prov)p, rounds, t[p], t[PROV_STATIC], fetches_seen[p], bad_fetches[p]);
    if (failed)
        return 1;
    /* what the one fetch costs: the credentials stage over static's */
    double cost[MAX_ROUNDS], stat_all[MAX_ROUNDS];
    for (int r = 0; r < rounds; r++) {
        cost[r] = t[PROV_SHARED][r].tokens_ready_ms - t[PROV_STATIC][r].tokens_ready_ms;
        stat_all[r] = t[PROV_STATIC][r].all_connected_ms;
    }
    double c = percentile(cost, (size_t)rounds, 50), base = percentile(stat_all, (size_t)rounds, 50);
    printf("%s: fetch_cost_ms=%.0f expected_ms=%.0f share_of_static=%.3f\n", STORM_NAMES[s], c,
           ENDPOINT_DELAY_S * 1000, c / base);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    bench_under_dsql_local(argc, argv, "--temporary-credentials");
    n_conns = argc > 1 ? atoi(argv[1]) : 200;
    int rounds = argc > 2 ? atoi(argv[2]) : DEFAULT_ROUNDS;
    if (n_conns < 1 || n_conns > 250 || rounds < 1 || rounds > MAX_ROUNDS) {
        fprintf(stderr, "usage: storm-bench [N (1..250)] [ROUNDS (1..%d)]\n", MAX_ROUNDS);
        return 2;
    }
    /* the configuration from dsql-local's PG* / AWS_REGION first */
    if (!(cfg = bench_config_from_env("storm-bench")))
        return 1;
    if (aws_server_start_clean() != 0) /* leaves the AWS keys alone */
        return 1;
    char home[64];
    if (point_chain_at_endpoint(home, sizeof home) != 0) {
        fprintf(stderr, "storm-bench: needs dsql-local's AWS_ACCESS_KEY_ID and secret\n");
        aws_server_stop();
        return 1;
    }
    printf("# %d connections per storm, %d rounds, credentials endpoint answers after %.0f ms, "
           "session token %zu bytes\n",
           n_conns, rounds, ENDPOINT_DELAY_S * 1000,
           local_creds.session_token ? strlen(local_creds.session_token) : (size_t)0);
    int failed = 0;
    for (int s = STORM_THREADS; s <= STORM_POOL; s++)
        failed |= storm_kind((enum storm)s, rounds);
    aws_server_stop();
    rmdir(home);
    if (failed)
        fprintf(stderr, "storm-bench: a storm failed or did not make exactly one credentials "
                        "fetch (none with static credentials)\n");
    return failed ? 1 : 0;
}
