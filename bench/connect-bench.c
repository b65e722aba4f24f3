/* Cost of dsql_pq_connect over a plain PQconnectdbParams with a static
 * password (one token signed up front) to the same dsql-local gateway,
 * same TLS settings. Both sides connect, run "select 1" and disconnect;
 * rounds alternate so drift hits both alike.
 *
 *   connect-bench [N]        (default 200 connections per side)
 *
 * Run under `dsql-local run --`; started without PGHOST it re-executes
 * itself that way ($DSQL_LOCAL, else dsql-local in the build directory
 * above this program's). */
#include "benchutil.h"
#include "dsqlauth/libpq.h"

static int query(PGconn *c)
{
    PGresult *r = PQexec(c, "select 1");
    int ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    PQclear(r);
    return ok;
}

int main(int argc, char **argv)
{
    bench_under_dsql_local(argc, argv, NULL);
    int n = argc > 1 ? atoi(argv[1]) : 200;
    if (n < 10)
        n = 10;
    dsql_error err = {0};
    dsql_config *cfg = bench_config_from_env("connect-bench");
    dsql_credentials_provider *creds = dsql_credentials_provider_default(NULL, &err);
    dsql_token_provider *tokens = creds ? dsql_token_provider_signing(creds, NULL, &err) : NULL;
    if (!cfg || !tokens) {
        if (!tokens)
            fprintf(stderr, "connect-bench: %s\n", err.message);
        return 1;
    }
    /* the baseline: the same parameters with a token signed once, as a
       static password (valid for 15 minutes, longer than the run) */
    const char *const *kw, *const *val;
    if (dsql_pq_params(cfg, tokens, 0, &kw, &val, &err) != DSQL_OK) {
        fprintf(stderr, "connect-bench: %s\n", err.message);
        return 1;
    }
    double *plain = calloc((size_t)n, sizeof *plain), *dsql = calloc((size_t)n, sizeof *dsql);
    double *plain_cpu = calloc((size_t)n, sizeof *plain), *dsql_cpu = calloc((size_t)n, sizeof *dsql);
    /* warm up both paths (credentials, TLS session caches, backends) */
    for (int i = 0; i < 5; i++) {
        PQfinish(PQconnectdbParams(kw, val, 0));
        PQfinish(dsql_pq_connect(cfg, tokens, &err));
    }
    for (int i = 0; i < n; i++) {
        for (int side = 0; side < 2; side++) {
            int which = (i + side) % 2; /* alternate who goes first */
            double t0 = now_ns() / 1e3, c0 = cpu_ns() / 1e3;
            PGconn *c = which == 0 ? PQconnectdbParams(kw, val, 0)
                                   : dsql_pq_connect(cfg, tokens, &err);
            if (!c || PQstatus(c) != CONNECTION_OK || !query(c)) {
                fprintf(stderr, "connect-bench: %s\n",
                        c ? PQerrorMessage(c) : err.message);
                return 1;
            }
            PQfinish(c);
            (which == 0 ? plain : dsql)[i] = now_ns() / 1e3 - t0;
            (which == 0 ? plain_cpu : dsql_cpu)[i] = cpu_ns() / 1e3 - c0;
        }
    }
    dsql_pq_params_free(kw, val);
    double sp = 0, sd = 0;
    for (int i = 0; i < n; i++) {
        sp += plain[i];
        sd += dsql[i];
    }
    qsort(plain, (size_t)n, sizeof *plain, cmp_double);
    qsort(dsql, (size_t)n, sizeof *dsql, cmp_double);
    double mp = plain[n / 2], md = dsql[n / 2];
    /* trimmed means (drop the slowest and fastest 10%): robust to load */
    double tp = 0, td = 0;
    int lo = n / 10, hi = n - n / 10;
    for (int i = lo; i < hi; i++) {
        tp += plain[i];
        td += dsql[i];
    }
    tp /= hi - lo;
    td /= hi - lo;
    qsort(plain_cpu, (size_t)n, sizeof *plain, cmp_double);
    qsort(dsql_cpu, (size_t)n, sizeof *dsql, cmp_double);
    double cp = plain_cpu[n / 2], cd = dsql_cpu[n / 2];
    /* the token alone */
    dsql_config_host h;
    dsql_config_host_at(cfg, 0, &h, NULL);
    dsql_token_request req = {DSQL_STRUCT_VERSION, h.signing_host, dsql_config_get(cfg, "user"),
                              h.region, 0, 0};
    char buf[4096];
    size_t len;
    double t0 = now_ns() / 1e3;
    for (int i = 0; i < 10000; i++)
        dsql_token_provider_get(tokens, &req, buf, sizeof buf, &len, NULL);
    double tok = (now_ns() / 1e3 - t0) / 10000;
    printf("connect + select 1 + close through dsql-local (TLS verify-full), %d each, "
           "libpq %d\n", n, PQlibVersion());
    printf("  PQconnectdbParams, static password: min %8.1f  median %8.1f  trimmed mean %8.1f "
           "us\n", plain[0], mp, tp);
    printf("  dsql_pq_connect, fresh token:       min %8.1f  median %8.1f  trimmed mean %8.1f "
           "us\n", dsql[0], md, td);
    printf("  overhead: min %+.2f%%  median %+.2f%%  trimmed mean %+.2f%%  mean %+.2f%%  "
           "(token alone: %.2f us)\n",
           (dsql[0] - plain[0]) / plain[0] * 100, (md - mp) / mp * 100, (td - tp) / tp * 100,
           (sd - sp) / sp * 100, tok);
    printf("  client CPU per connection (median): plain %.1f us, dsql_pq_connect %.1f us "
           "(%+.1f us = %+.2f%% of the plain wall time)\n",
           cp, cd, cd - cp, (cd - cp) / mp * 100);
    free(plain);
    free(dsql);
    free(plain_cpu);
    free(dsql_cpu);
    dsql_token_provider_free(tokens);
    dsql_config_free(cfg);
    return 0;
}
