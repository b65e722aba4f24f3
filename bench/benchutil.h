/* Timing helpers and realistic inputs shared by the benchmarks. */
#ifndef DSQL_BENCHUTIL_H
#define DSQL_BENCHUTIL_H

#ifndef OPENSSL_SUPPRESS_DEPRECATED
#define OPENSSL_SUPPRESS_DEPRECATED /* the low-level SHA256 the signer uses too */
#endif

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/sha.h>
#include <unistd.h>

#include "dsqlauth.h"

static inline double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static inline int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts samples in place; the value at the given percentile (0..100). */
static inline double percentile(double *samples, size_t n, unsigned pct)
{
    qsort(samples, n, sizeof samples[0], cmp_double);
    return samples[n * pct / 100 < n ? n * pct / 100 : n - 1];
}

/* CPU time of the whole process, in ns. */
static inline double cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* Hosts and users the benchmarks rotate through, so that no two tokens in
 * a row are alike (both actions, several clusters of one region). */
static const char *const BENCH_HOSTS[] = {
    "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws",
    "a1b2c3d4e5f6g7h8i9j0k1l2m3.dsql.us-east-1.on.aws",
    "zyxwvutsrqponmlkjihgfedcba.dsql.us-east-1.on.aws",
    "q1w2e3r4t5y6u7i8o9p0a1s2d3.dsql.us-east-1.on.aws"};
static const char *const BENCH_USERS[] = {"admin", "app_reader", "admin", "app_writer"};
#define BENCH_ROTATION 4

/* A session token of exactly len bytes that looks like STS's: base64
 * (A-Z a-z 0-9 '+' '/') behind STS's usual "IQoJb3JpZ2luX2Vj" start,
 * '=' padded, so about one byte in 30 needs percent-encoding as in real
 * tokens. Deterministic. buf holds len + 1 bytes. */
static inline void bench_session_token(char *buf, size_t len)
{
    static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    static const char START[] = "IQoJb3JpZ2luX2Vj";
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        buf[i] = i < sizeof START - 1 ? START[i] : B64[x >> 58];
    }
    if (len >= 2)
        buf[len - 1] = buf[len - 2] = '=';
    buf[len] = '\0';
}

/* Length, decoded, of the session token inside a signed token (what was
 * really signed), or 0 when the token carries none. */
static inline size_t bench_signed_session_len(const char *token)
{
    const char *p = strstr(token, "X-Amz-Security-Token=");
    if (!p)
        return 0;
    size_t n = 0;
    for (p += strlen("X-Amz-Security-Token="); *p && *p != '&'; n++)
        p += *p == '%' ? 3 : 1;
    return n;
}

/* Bytes of the canonical request hashed for this token: the same query
 * (other order), "GET\n/\n" before it, and the host header, signed-header
 * list and empty-payload hash after it. */
static inline size_t bench_canonical_len(const char *token)
{
    const char *q = strstr(token, "/?"), *sig = strstr(token, "&X-Amz-Signature=");
    if (!q || !sig)
        return 0;
    size_t host = (size_t)(q - token), query = (size_t)(sig - (q + 2));
    return 6 + query + 1 + 5 + host + 1 + 1 + 4 + 1 + 64;
}

/* Exits unless the token signed the session token length intended. */
static inline void bench_require_session_len(const char *what, const char *token, size_t want)
{
    size_t got = bench_signed_session_len(token);
    if (got != want) {
        fprintf(stderr, "%s: signed a %zu-byte session token; intended %zu: refusing to run\n",
                what, got, want);
        exit(1);
    }
}

/* The SHA-256 floor: ns per hash of n bytes in one call (SHA256_Init, one
 * SHA256_Update, SHA256_Final) from a cache-warm aligned buffer, from one
 * batch of per hashes. */
static inline double bench_sha256_batch_ns(size_t n, int per)
{
    static _Alignas(64) unsigned char data[1 << 16];
    unsigned char md[SHA256_DIGEST_LENGTH];
    if (n > sizeof data)
        n = sizeof data;
    double t0 = now_ns();
    for (int i = 0; i < per; i++) {
        data[0] = (unsigned char)i;
        SHA256_CTX c;
        SHA256_Init(&c);
        SHA256_Update(&c, data, n);
        SHA256_Final(md, &c);
    }
    return (now_ns() - t0) / per;
}

/* One token for benchmark step i into buf; 0 when signing failed. */
typedef int (*bench_token_fn)(void *ctx, unsigned i, char *buf, size_t cap);

#define BENCH_ROUNDS 5

typedef struct bench_stats {
    double median_ns, p99_ns; /* per token, over every batch of the run */
    double floor_ns;          /* median SHA-256 floor over every batch; 0: none */
    double ratio;             /* median over the rounds of round_ratio */
    double ratio_min, ratio_max;
    double round_ratio[BENCH_ROUNDS]; /* a round's median of its pairs' ratios */
} bench_stats;

/* Times tokens tokens, batch at a time, in BENCH_ROUNDS rounds; *k counts
 * the steps. With floor_bytes, every batch of tokens is paired with a
 * batch of SHA-256 floor hashes of floor_bytes, taken alternately just
 * before and just after it, so the two see the same load (other jobs on
 * the machine move both); the pair's ratio is token time / floor time.
 * Returns 0 when a token failed. */
static inline int bench_measure(bench_token_fn fn, void *ctx, unsigned *k, char *buf,
                                size_t cap, size_t floor_bytes, int tokens, int batch,
                                bench_stats *out)
{
    int batches = tokens / batch, per_round = batches / BENCH_ROUNDS;
    double *tok = calloc((size_t)batches, sizeof *tok);
    double *flo = calloc((size_t)batches, sizeof *flo);
    double *pair = calloc((size_t)per_round, sizeof *pair);
    int ok = tok && flo && pair && per_round > 0;
    memset(out, 0, sizeof *out);
    for (int b = 0; ok && b < per_round * BENCH_ROUNDS; b++) {
        if (floor_bytes && b % 2)
            flo[b] = bench_sha256_batch_ns(floor_bytes, batch);
        double t0 = now_ns();
        for (int i = 0; ok && i < batch; i++)
            ok = fn(ctx, (*k)++, buf, cap);
        tok[b] = (now_ns() - t0) / batch;
        if (floor_bytes && b % 2 == 0)
            flo[b] = bench_sha256_batch_ns(floor_bytes, batch);
        if (floor_bytes && (b + 1) % per_round == 0) {
            int r = b / per_round, first = r * per_round;
            for (int j = 0; j < per_round; j++)
                pair[j] = tok[first + j] / flo[first + j];
            out->round_ratio[r] = percentile(pair, (size_t)per_round, 50);
        }
    }
    if (ok) {
        size_t n = (size_t)per_round * BENCH_ROUNDS;
        out->median_ns = percentile(tok, n, 50);
        out->p99_ns = percentile(tok, n, 99);
        if (floor_bytes) {
            double r[BENCH_ROUNDS];
            memcpy(r, out->round_ratio, sizeof r);
            out->floor_ns = percentile(flo, n, 50);
            out->ratio = percentile(r, BENCH_ROUNDS, 50);
            out->ratio_min = r[0]; /* sorted by percentile() */
            out->ratio_max = r[BENCH_ROUNDS - 1];
        }
    }
    free(tok);
    free(flo);
    free(pair);
    return ok;
}

/* " sha256_floor_ns=<n> ratio=<median of rounds> rounds=<r1,r2,...>" */
static inline void bench_print_floor(const bench_stats *s)
{
    if (!s->floor_ns)
        return;
    printf(" sha256_floor_ns=%.0f ratio=%.2f rounds=", s->floor_ns, s->ratio);
    for (int r = 0; r < BENCH_ROUNDS; r++)
        printf("%s%.2f", r ? "," : "", s->round_ratio[r]);
}

/* ---- benchmarks through dsql-local ---------------------------------- */

/* Started without PGHOST: re-executes this program (with up to three of
 * its arguments) as `dsql-local run [option] -- argv...`, from $DSQL_LOCAL
 * or else the build directory above this program's ($B/bench/x ->
 * $B/dsql-local). option NULL: none. Returns only when PGHOST is set. */
static inline void bench_under_dsql_local(int argc, char **argv, const char *option)
{
    if (getenv("PGHOST"))
        return;
    char self[1024], guess[1100];
    snprintf(self, sizeof self, "%s", argv[0]);
    char *slash = strrchr(self, '/');
    if (slash)
        *slash = '\0';
    snprintf(guess, sizeof guess, "%s/../dsql-local", slash ? self : ".");
    const char *dl = getenv("DSQL_LOCAL") ? getenv("DSQL_LOCAL") : guess;
    char *args[10] = {(char *)dl, "run"};
    int n = 2;
    if (option)
        args[n++] = (char *)option;
    args[n++] = "--";
    for (int i = 0; i < argc && i < 4; i++)
        args[n++] = argv[i];
    execv(dl, args);
    perror(dl);
    exit(1);
}

/* The configuration dsql-local's PG* variables and AWS_REGION describe;
 * NULL (the reason printed, prefixed with who) when there is none. */
static inline dsql_config *bench_config_from_env(const char *who)
{
    dsql_error err = {0};
    dsql_config *cfg = dsql_config_new(&err);
    if (!cfg || dsql_config_load_env(cfg, &err) != DSQL_OK ||
        dsql_config_resolve(cfg, &err) != DSQL_OK) {
        fprintf(stderr, "%s: %s\n", who, err.message);
        dsql_config_free(cfg);
        return NULL;
    }
    return cfg;
}

/* Moves dsql-local's key (AWS_ACCESS_KEY_ID, _SECRET_ACCESS_KEY,
 * _SESSION_TOKEN) out of the environment into *c, so that only the
 * endpoint the benchmark serves it from can supply it. -1 when the key id
 * or secret is missing. */
static inline int bench_take_local_key(dsql_credentials *c)
{
    const char *akid = getenv("AWS_ACCESS_KEY_ID"), *secret = getenv("AWS_SECRET_ACCESS_KEY"),
               *session = getenv("AWS_SESSION_TOKEN");
    if (!akid || !secret)
        return -1;
    c->access_key_id = strdup(akid);
    c->secret_access_key = strdup(secret);
    c->session_token = session && *session ? strdup(session) : NULL;
    c->expiration = 0;
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
    return c->access_key_id && c->secret_access_key ? 0 : -1;
}

#ifdef DSQL_AWS_SERVER_H /* for benchmarks that include test/aws_server.h first */
/* Has the loopback AWS server hand out c from every credentials route,
 * the one named by fault (e.g. "ecs", "imds_creds") answering after delay
 * seconds; resets its request counters. */
static inline int bench_serve_key(const dsql_credentials *c, const char *fault, double delay)
{
    cJSON *j = cJSON_CreateObject(), *faults = cJSON_AddObjectToObject(j, "faults");
    cJSON_AddStringToObject(j, "access_key_id", c->access_key_id);
    cJSON_AddStringToObject(j, "secret_access_key", c->secret_access_key);
    if (c->session_token)
        cJSON_AddStringToObject(j, "session_token", c->session_token);
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(faults, fault), "delay", delay);
    char *text = cJSON_PrintUnformatted(j);
    int rc = text ? aws_server_config(text) : -1;
    free(text);
    cJSON_Delete(j);
    return rc;
}
#endif

#endif
