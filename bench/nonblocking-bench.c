/* How long can one call of the non-blocking connect take when the
 * credentials must be fetched first? A loopback IMDS (test/aws_test_server.py)
 * answers the credentials request after 800 ms; each round starts with a
 * cold cache (a new provider) and drives dsql_pq_connect_start / _poll with
 * poll(2) to a connection through dsql-local (TLS, IAM token, verify-full),
 * timing every single call. Then the same with a warm cache, and the
 * blocking dsql_pq_connect with a cold cache for comparison.
 *
 *   nonblocking-bench [ROUNDS]   (default 5)
 *
 * Prints, per case, the median and the worst over the rounds of the
 * longest single call (the goal: at most 1 ms for the non-blocking calls,
 * whatever the fetch takes), and the time to a connection. Reported, never
 * checked. Run under `dsql-local run --temporary-credentials --`; started
 * without PGHOST it re-executes itself that way. */
#include <poll.h>

#include "../test/aws_server.h"
#include "benchutil.h"
#include "dsqlauth/libpq.h"

#define IMDS_DELAY_S 0.8
#define MAX_ROUNDS 20

static dsql_config *cfg;

static dsql_token_provider *cold_provider(void)
{
    dsql_error err = {0};
    dsql_credentials_provider *imds = dsql_credentials_provider_imds(&err);
    dsql_credentials_provider *c = imds ? dsql_credentials_provider_cached(imds, &err) : NULL;
    dsql_token_provider *tp = c ? dsql_token_provider_signing(c, NULL, &err) : NULL;
    if (!tp)
        fprintf(stderr, "nonblocking-bench: %s\n", err.message);
    return tp;
}

/* One non-blocking connect: the longest single call (*longest_us) and the
 * time to the connection (ms); -1 on failure. */
static double connect_nb(dsql_token_provider *tp, double *longest_us)
{
    dsql_error err = {0};
    double t0 = now_ns(), t = now_ns();
    dsql_pq_connecting *c = dsql_pq_connect_start(cfg, tp, &err);
    *longest_us = (now_ns() - t) / 1e3;
    if (!c) {
        fprintf(stderr, "nonblocking-bench: %s\n", err.message);
        return -1;
    }
    for (;;) {
        int fd = -1, tmo = -1;
        t = now_ns();
        dsql_pq_poll_status s = dsql_pq_connect_poll(c, &fd, &tmo, &err);
        double us = (now_ns() - t) / 1e3;
        if (us > *longest_us)
            *longest_us = us;
        if (s == DSQL_PQ_POLL_OK || s == DSQL_PQ_POLL_FAILED) {
            PGconn *conn = dsql_pq_connect_finish(c);
            double ms = (now_ns() - t0) / 1e6;
            if (!conn)
                fprintf(stderr, "nonblocking-bench: %s\n", err.message);
            PQfinish(conn);
            return conn ? ms : -1;
        }
        struct pollfd p = {fd, s == DSQL_PQ_POLL_WRITING ? POLLOUT : POLLIN, 0};
        poll(&p, fd < 0 ? 0 : 1, tmo < 0 ? 10000 : tmo);
    }
}

static double connect_blocking(dsql_token_provider *tp, double *longest_us)
{
    dsql_error err = {0};
    double t0 = now_ns();
    PGconn *conn = dsql_pq_connect(cfg, tp, &err);
    double ms = (now_ns() - t0) / 1e6;
    *longest_us = ms * 1e3;
    if (!conn)
        fprintf(stderr, "nonblocking-bench: %s\n", err.message);
    PQfinish(conn);
    return conn ? ms : -1;
}

/* IMDS serves dsql-local's key, after the delay. */
static int serve_local_key(void)
{
    dsql_credentials c;
    if (bench_take_local_key(&c) != 0 || !c.session_token ||
        bench_serve_key(&c, "imds_creds", IMDS_DELAY_S) != 0)
        return -1;
    unsetenv("AWS_EC2_METADATA_DISABLED");
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", aws_server_url, 1);
    return 0;
}

static void report(const char *name, double *longest_us, double *ms, int rounds)
{
    double worst = 0;
    for (int i = 0; i < rounds; i++)
        if (longest_us[i] > worst)
            worst = longest_us[i];
    double med = percentile(longest_us, (size_t)rounds, 50);
    printf("%s: longest_single_call_us median=%.0f worst=%.0f connected_ms median=%.0f\n", name,
           med, worst, percentile(ms, (size_t)rounds, 50));
}

int main(int argc, char **argv)
{
    bench_under_dsql_local(argc, argv, "--temporary-credentials");
    int rounds = argc > 1 ? atoi(argv[1]) : 5;
    if (rounds < 1 || rounds > MAX_ROUNDS) {
        fprintf(stderr, "usage: nonblocking-bench [ROUNDS (1..%d)]\n", MAX_ROUNDS);
        return 2;
    }
    if (!(cfg = bench_config_from_env("nonblocking-bench")))
        return 1;
    if (aws_server_start_clean() != 0) /* leaves the AWS keys alone */
        return 1;
    if (serve_local_key() != 0) {
        fprintf(stderr, "nonblocking-bench: needs dsql-local's temporary credentials\n");
        aws_server_stop();
        return 1;
    }
    printf("# IMDS answers the credentials request after %.0f ms; %d rounds, each with a new "
           "(cold) cache\n", IMDS_DELAY_S * 1000, rounds);
    double nb[MAX_ROUNDS], nb_ms[MAX_ROUNDS], warm[MAX_ROUNDS], warm_ms[MAX_ROUNDS];
    double bl[MAX_ROUNDS], bl_ms[MAX_ROUNDS];
    int failed = 0;
    for (int i = 0; i < rounds; i++) {
        dsql_token_provider *tp = cold_provider();
        if (!tp)
            return 1;
        nb_ms[i] = connect_nb(tp, &nb[i]);
        warm_ms[i] = connect_nb(tp, &warm[i]);
        dsql_token_provider_free(tp);
        tp = cold_provider();
        bl_ms[i] = connect_blocking(tp, &bl[i]);
        dsql_token_provider_free(tp);
        failed |= nb_ms[i] < 0 || warm_ms[i] < 0 || bl_ms[i] < 0;
    }
    report("nonblocking_cold_cache", nb, nb_ms, rounds);
    report("nonblocking_warm_cache", warm, warm_ms, rounds);
    report("blocking_cold_cache (one call)", bl, bl_ms, rounds);
    aws_server_stop();
    dsql_config_free(cfg);
    return failed;
}
