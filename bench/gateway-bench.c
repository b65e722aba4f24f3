/* gateway-bench: login latency through libpq, as used by
 * bench/gateway-bench.sh to compare the dsql-local gateway (TLS + IAM
 * token check) with a direct TLS PostgreSQL login (static password).
 *
 *   gateway-bench [--token] [--threads N] [--count N | --seconds S] [--query]
 *
 * Connection parameters come from the PG* environment. With --token each
 * login gets a freshly signed token (AWS_* credentials, PGHOST as the
 * signed host), as a real client does. Prints one summary line. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "dsqlauth.h"

static int use_token, run_query, threads = 1;
static long count = 200;
static double seconds;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static long started, failures;
static double *lat;
static long nlat;
static double t_end;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int take_ticket(void)
{
    int ok;
    pthread_mutex_lock(&mu);
    ok = seconds > 0 ? now_s() < t_end : started < count;
    if (ok)
        started++;
    pthread_mutex_unlock(&mu);
    return ok;
}

static int one_login(char *err, int cap)
{
    char token[4096] = "";
    const char *keys[3] = {"password", NULL, NULL};
    const char *vals[3] = {token, NULL, NULL};
    PGconn *conn;
    int ok;

    if (use_token) {
        dsql_credentials creds = {getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY"),
                                  getenv("AWS_SESSION_TOKEN"), 0};
        dsql_token_request p;
        dsql_error e;
        size_t len;
        memset(&p, 0, sizeof p);
        p.version = DSQL_STRUCT_VERSION;
        p.hostname = getenv("PGHOST");
        p.user = getenv("PGUSER");
        if (dsql_token_generate(&p, &creds, token, sizeof token, &len, &e) != DSQL_OK) {
            snprintf(err, (size_t)cap, "token: %.400s\n", e.message);
            return -1;
        }
    } else {
        keys[0] = NULL; /* PGPASSWORD from the environment */
    }
    conn = PQconnectdbParams(keys, vals, 1);
    ok = PQstatus(conn) == CONNECTION_OK;
    if (ok && run_query) {
        PGresult *r = PQexec(conn, "select 1");
        ok = PQresultStatus(r) == PGRES_TUPLES_OK;
        PQclear(r);
    }
    if (!ok && snprintf(err, (size_t)cap, "%s", PQerrorMessage(conn)) >= cap)
        err[cap - 2] = '\n';
    PQfinish(conn);
    return ok ? 0 : -1;
}

static void *worker(void *arg)
{
    char err[512];
    (void)arg;
    while (take_ticket()) {
        double t0 = now_s();
        int rc = one_login(err, (int)sizeof err);
        double dt = now_s() - t0;
        pthread_mutex_lock(&mu);
        if (rc == 0) {
            double *n = realloc(lat, (size_t)(nlat + 1) * sizeof *lat);
            if (n) {
                lat = n;
                lat[nlat++] = dt;
            }
        } else if (failures++ < 3) {
            fprintf(stderr, "gateway-bench: login failed: %s", err);
        }
        pthread_mutex_unlock(&mu);
    }
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    pthread_t tids[512];
    double t0, wall, sum = 0;
    int i;
    long k;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--token") == 0)
            use_token = 1;
        else if (strcmp(argv[i], "--query") == 0)
            run_query = 1;
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc)
            count = atol(argv[++i]);
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: gateway-bench [--token] [--query] [--threads N] "
                            "[--count N | --seconds S]\n");
            return 2;
        }
    }
    if (threads < 1 || threads > 512 || count < 1) {
        fprintf(stderr, "gateway-bench: bad --threads or --count\n");
        return 2;
    }
    t0 = now_s();
    t_end = t0 + seconds;
    for (i = 0; i < threads; i++)
        if (pthread_create(&tids[i], NULL, worker, NULL) != 0)
            return 1;
    for (i = 0; i < threads; i++)
        pthread_join(tids[i], NULL);
    wall = now_s() - t0;
    if (nlat == 0) {
        fprintf(stderr, "gateway-bench: no successful login (%ld failed)\n", failures);
        return 1;
    }
    qsort(lat, (size_t)nlat, sizeof *lat, cmp);
    for (k = 0; k < nlat; k++)
        sum += lat[k];
    printf("logins=%ld failed=%ld threads=%d wall=%.2fs rate=%.0f/s mean=%.2fms p50=%.2fms p99=%.2fms\n",
           nlat, failures, threads, wall, (double)nlat / wall, sum / (double)nlat * 1e3,
           lat[nlat / 2] * 1e3, lat[(nlat * 99) / 100 < nlat ? (nlat * 99) / 100 : nlat - 1] * 1e3);
    free(lat);
    return failures ? 1 : 0;
}
